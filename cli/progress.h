/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Progress display for long operations, driven by the library's progress callback:
 * a single updating line on a terminal, or JSON lines for programs, on stderr.
 */
#ifndef IMAGO_CLI_PROGRESS_H
#define IMAGO_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

enum progress_mode {
	PROGRESS_AUTO,   /* TTY when stderr is a terminal, else nothing */
	PROGRESS_TTY,
	PROGRESS_JSON,
	PROGRESS_NONE,
};

struct progress {
	const char *op;          /* "create", "restore", "verify" */
	enum progress_mode mode; /* resolved: TTY, JSON or NONE */
	double start;            /* cli_now() at progress_start */
	double last;             /* time of the last line shown */
	bool shown;              /* a TTY line is on screen */
	bool final_sent;         /* the done == total JSON line went out */
};

/* Parse the argument of --progress=. */
int progress_parse_mode(const char *s, enum progress_mode *out);

/* Start timing; quiet turns everything off. */
void progress_start(struct progress *p, const char *op, enum progress_mode mode, bool quiet);

/* An imago_progress_fn: opaque is a struct progress. Returns nonzero (cancel) once
 * SIGINT/SIGTERM arrived. */
int progress_cb(void *opaque, uint64_t done, uint64_t total);

/* Clear the TTY line (call before printing anything else, and at the end). */
void progress_end(struct progress *p);

/* Seconds since progress_start. */
double progress_elapsed(const struct progress *p);

#endif
