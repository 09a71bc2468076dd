/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "freeze.h"

const char *cli_cmd = "imago";
volatile sig_atomic_t cli_interrupted;

static const char *volatile cleanup_path;

static void on_signal(int sig)
{
	if (cli_interrupted) {
		/* Second signal: the user insists. Only async-signal-safe calls here. */
		const char *p = cleanup_path;
		if (p)
			unlink(p);
		freeze_thaw_signal_safe();
		_exit(128 + sig);
	}
	cli_interrupted = sig;
}

void cli_signals_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* SA_RESTART: the library retries EINTR anyway; restarting keeps system calls in
	 * threads we do not control from failing, and cancellation goes through the
	 * progress callback instead. */
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

void cli_signals_cleanup_path(const char *path)
{
	cleanup_path = path;
}

int cli_exit_code(int code)
{
	switch (code) {
	case 0:
		return EXIT_OK;
	case -EBADMSG:
	case -ENOTSUP:
		return EXIT_DAMAGED;
	case -EILSEQ:
		return EXIT_DIFFERS;
	default:
		return EXIT_FAIL;
	}
}

void cli_msg(const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per message, so lines from a progress display never split it. */
	fprintf(stderr, "imago: %s: %s\n", cli_cmd, line);
	fflush(stderr);
}

const char *cli_hint(int code)
{
	switch (code) {
	case -EBADMSG:
		return "the image is damaged or incomplete; use another copy";
	case -ENOTSUP:
		return "this is not an imago image, or one from a newer imago";
	case -EIO:
		return "the medium reported an I/O error; check it (dmesg) and its cabling";
	case -ENOSPC:
	case -EDQUOT:
		return "free some space or write somewhere else";
	case -EFBIG:
		return "use a larger target";
	case -EACCES:
	case -EPERM:
		return "check permissions (block devices usually need root)";
	case -ENOENT:
	case -ENOTDIR:
		return "check the path";
	case -EROFS:
		return "the target is read-only";
	case -EBUSY:
		return "the device is in use; unmount it or stop what uses it";
	case -ECANCELED:
		return "interrupted";
	case -EPIPE:
		return "the reader of the output went away";
	case -ENOMEM:
		return "not enough memory; try fewer threads";
	case -EINVAL:
		return "check the arguments";
	default:
		return "check the system log (dmesg) and try again";
	}
}

int cli_fail(int code, const struct imago_err *err, const char *path, const char *todo)
{
	if (code >= 0)
		code = -EIO;
	const char *what = (err && err->msg[0]) ? err->msg : strerror(-code);
	char where[1024];
	size_t n = 0;
	where[0] = '\0';
#define ADD(...)                                                                      \
	do {                                                                          \
		if (n < sizeof(where))                                                \
			n += (size_t)snprintf(where + n, sizeof(where) - n, __VA_ARGS__); \
	} while (0)
	/* Name each place once. Offsets are always spelled "device offset" and "file
	 * offset" so people and scripts find them, unless the message says so already. */
	if (path && !strstr(what, path))
		ADD("%s", path);
	if (err && err->chunk >= 0) {
		char c[40];
		snprintf(c, sizeof(c), "chunk %" PRId64, err->chunk);
		if (!strstr(what, c))
			ADD("%s%s", n ? ", " : "", c);
	}
	if (err && err->dev_offset >= 0 && !strstr(what, "device offset"))
		ADD("%sdevice offset %" PRId64, n ? ", " : "", err->dev_offset);
	if (err && err->file_offset >= 0 && !strstr(what, "file offset"))
		ADD("%sfile offset %" PRId64, n ? ", " : "", err->file_offset);
#undef ADD
	if (!todo)
		todo = cli_hint(code);
	if (where[0])
		cli_msg("%s: %s: %s", what, where, todo);
	else
		cli_msg("%s: %s", what, todo);
	return cli_exit_code(code);
}

int cli_sys_fail(int errnum, const char *what, const char *path, const char *todo)
{
	if (!todo)
		todo = cli_hint(-errnum);
	cli_msg("%s: %s: %s: %s", what, path, strerror(errnum), todo);
	return EXIT_FAIL;
}

int cli_usage_error(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (strcmp(cli_cmd, "imago") == 0)
		fprintf(stderr, "imago: %s: Try 'imago --help'.\n", line);
	else
		fprintf(stderr, "imago: %s: %s: Try 'imago %s --help'.\n", cli_cmd, line, cli_cmd);
	return EXIT_USAGE;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	unsigned shift = 0;
	if (*end) {
		switch (toupper((unsigned char)*end)) {
		case 'K': shift = 10; break;
		case 'M': shift = 20; break;
		case 'G': shift = 30; break;
		case 'T': shift = 40; break;
		case 'B': shift = 0; break;
		default: return -EINVAL;
		}
		const char *rest = end + 1;
		/* Accept K, KB, KiB (all binary: sizes here are powers of two anyway). */
		if (shift && *rest && strcasecmp(rest, "iB") != 0 && strcasecmp(rest, "B") != 0)
			return -EINVAL;
		if (!shift && *rest)
			return -EINVAL;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int cli_parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

unsigned cli_online_cpus(void)
{
	/* The affinity mask, not the machine's count: containers and taskset limit it. */
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		int c = CPU_COUNT(&set);
		if (c > 0)
			return (unsigned)c;
	}
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

void cli_fmt_bytes(uint64_t n, char *buf, size_t len)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	if (n < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", n);
		return;
	}
	double v = (double)n;
	unsigned u = 0;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
}

void cli_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

double cli_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *p)
{
	size_t n;
	uint32_t cp;
	if (p[0] < 0x80)
		return 1;
	else if ((p[0] & 0xe0) == 0xc0)
		n = 2, cp = p[0] & 0x1f;
	else if ((p[0] & 0xf0) == 0xe0)
		n = 3, cp = p[0] & 0x0f;
	else if ((p[0] & 0xf8) == 0xf0)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void cli_json_str(FILE *f, const char *s)
{
	putc('"', f);
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	while (*p) {
		switch (*p) {
		case '"': fputs("\\\"", f); p++; continue;
		case '\\': fputs("\\\\", f); p++; continue;
		case '\n': fputs("\\n", f); p++; continue;
		case '\r': fputs("\\r", f); p++; continue;
		case '\t': fputs("\\t", f); p++; continue;
		default: break;
		}
		if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p);
			p++;
			continue;
		}
		/* Paths need not be UTF-8, JSON must be: an invalid byte becomes U+FFFD. */
		size_t n = utf8_seq(p);
		if (!n) {
			fputs("\\ufffd", f);
			p++;
			continue;
		}
		fwrite(p, 1, n, f);
		p += n;
	}
	putc('"', f);
}

int cli_work_option(int c, const char *arg, unsigned *threads, enum progress_mode *progress)
{
	switch (c) {
	case 'T':
		if (cli_parse_uint(arg, 1, 1024, threads) < 0)
			return cli_usage_error("--threads '%s': give a count from 1 to 1024", arg);
		return 0;
	case CLI_OPT_PROGRESS:
		if (progress_parse_mode(arg, progress) < 0)
			return cli_usage_error("--progress '%s': give auto, tty, json or none", arg);
		return 0;
	default:
		return -1;
	}
}

int cli_open_image(const char *path, int *fd, const char **name)
{
	if (strcmp(path, "-") == 0) {
		*fd = STDIN_FILENO;
		*name = "(stdin)";
		return 0;
	}
	*name = path;
	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (*fd < 0)
		return cli_sys_fail(errno, "cannot open the image", path, NULL);
	return 0;
}
