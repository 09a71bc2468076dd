/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * What every command shares: exit codes, one-line error messages, argument parsing of
 * sizes and counts, formatting of sizes and digests, JSON string output, and the
 * SIGINT/SIGTERM flag that long operations poll through their progress callback.
 */
#ifndef IMAGO_CLI_COMMON_H
#define IMAGO_CLI_COMMON_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "imago.h"
#include "progress.h"

/* Exit codes, as documented in docs/imago.1.md. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,      /* the operation failed (I/O error, out of space, ...) */
	EXIT_USAGE = 2,     /* bad option or argument */
	EXIT_DAMAGED = 3,   /* the image is damaged, incomplete, or not an image */
	EXIT_DIFFERS = 4,   /* verify --against: sound image, different content */
	EXIT_REFUSED = 5,   /* refused for safety */
	EXIT_UNREADABLE = 6, /* acquire, rescue: finished, but part of the source was not read */
};

/* The running command, for the "imago: COMMAND:" prefix of every message. */
extern const char *cli_cmd;

/* Set by SIGINT/SIGTERM once cli_signals_install() ran; progress callbacks return
 * nonzero when it is set so the library unwinds cleanly (-ECANCELED). */
extern volatile sig_atomic_t cli_interrupted;

/* Catch SIGINT/SIGTERM (set cli_interrupted) and ignore SIGPIPE (a closed pipe becomes
 * EPIPE, reported like any write error). A second signal unlinks cleanup_path (if set)
 * and exits at once, for a user who does not want to wait for the unwinding. */
void cli_signals_install(void);
/* Path to unlink on a second signal; NULL for none. The string must stay valid. */
void cli_signals_cleanup_path(const char *path);

/* Exit code for a negative errno returned by the library. */
int cli_exit_code(int code);

/* "imago: CMD: " + formatted text + newline, on stderr. */
void cli_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Report a library failure in one line:
 *   imago: CMD: <err->msg or strerror(code)>: <path, chunk, offsets>: <todo>
 * path may be NULL; err may be NULL; todo NULL picks a hint from the code. Parts already
 * named in err->msg are not repeated. Returns cli_exit_code(code). */
int cli_fail(int code, const struct imago_err *err, const char *path, const char *todo);

/* Report a failed system call on path: "imago: CMD: what: path: strerror: todo".
 * Returns EXIT_FAIL. */
int cli_sys_fail(int errnum, const char *what, const char *path, const char *todo);

/* A hint for what to do about code (a negative errno). */
const char *cli_hint(int code);

/* Print "imago: CMD: msg" plus "Try 'imago CMD --help'." and return EXIT_USAGE. */
/* getopt value of --progress, the same in every command. */
#define CLI_OPT_PROGRESS 300

/* The options every long-running command shares: -T/--threads and --progress. Returns 0
 * when c was one of them and was taken, -1 when it is not one of them, or a usage exit
 * code for a bad value. */
int cli_work_option(int c, const char *arg, unsigned *threads, enum progress_mode *progress);

/* Open IMAGE for reading ("-" is stdin). *name is what messages call it. 0 or an exit code. */
int cli_open_image(const char *path, int *fd, const char **name);

int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse "65536", "64K", "64KiB", "1M", "1MiB", "2G", ... (binary multiples). */
int cli_parse_size(const char *s, uint64_t *out);
/* Parse a decimal unsigned in [min, max]. */
int cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);

/* CPUs this process may run on (the default thread count). */
unsigned cli_online_cpus(void);

/* "1.2 GiB", "512 B". */
void cli_fmt_bytes(uint64_t n, char *buf, size_t len);
/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void cli_hex(const uint8_t *in, size_t len, char *out);

/* Monotonic seconds. */
double cli_now(void);

/* Print s as a JSON string literal (with quotes). */
void cli_json_str(FILE *f, const char *s);

#endif
