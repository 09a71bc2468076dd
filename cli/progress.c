/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "progress.h"

/* At most this many updates a second: more is flicker, and costs a write each. */
#define PROGRESS_INTERVAL 0.25

int progress_parse_mode(const char *s, enum progress_mode *out)
{
	static const struct {
		const char *name;
		enum progress_mode mode;
	} modes[] = {
		{"auto", PROGRESS_AUTO},
		{"tty", PROGRESS_TTY},
		{"json", PROGRESS_JSON},
		{"none", PROGRESS_NONE},
	};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(s, modes[i].name) == 0) {
			*out = modes[i].mode;
			return 0;
		}
	}
	return -1;
}

void progress_start(struct progress *p, const char *op, enum progress_mode mode, bool quiet)
{
	memset(p, 0, sizeof(*p));
	p->op = op;
	if (quiet)
		mode = PROGRESS_NONE;
	else if (mode == PROGRESS_AUTO)
		mode = isatty(STDERR_FILENO) ? PROGRESS_TTY : PROGRESS_NONE;
	p->mode = mode;
	p->start = cli_now();
	p->last = -1;
}

double progress_elapsed(const struct progress *p)
{
	return cli_now() - p->start;
}

/* "1:02:03" or "2:03"; "-:--" when unknown. */
static void fmt_eta(double s, char *buf, size_t len)
{
	if (s < 0 || s > 360000.0) {
		snprintf(buf, len, "-:--");
		return;
	}
	uint64_t t = (uint64_t)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, len, "%" PRIu64 ":%02u:%02u", t / 3600, (unsigned)(t / 60 % 60),
			 (unsigned)(t % 60));
	else
		snprintf(buf, len, "%u:%02u", (unsigned)(t / 60), (unsigned)(t % 60));
}

static void show_tty(struct progress *p, uint64_t done, uint64_t total, double rate,
		     double eta)
{
	char d[32], t[32], r[32], e[32];
	cli_fmt_bytes(done, d, sizeof(d));
	cli_fmt_bytes(total, t, sizeof(t));
	cli_fmt_bytes((uint64_t)rate, r, sizeof(r));
	fmt_eta(eta, e, sizeof(e));
	unsigned pct = total ? (unsigned)((double)done * 100.0 / (double)total) : 100;
	/* \r + erase to end of line: one line rewritten in place. */
	fprintf(stderr, "\r%-8s %s / %s  %3u%%  %s/s  ETA %s\033[K", p->op, d, t, pct, r, e);
	fflush(stderr);
	p->shown = true;
}

static void show_json(struct progress *p, uint64_t done, uint64_t total, double rate,
		      double eta)
{
	fprintf(stderr, "{\"op\":\"%s\",\"done\":%" PRIu64 ",\"total\":%" PRIu64
		",\"rate\":%" PRIu64 ",\"eta\":%" PRIu64 "}\n",
		p->op, done, total, (uint64_t)rate, eta < 0 ? (uint64_t)0 : (uint64_t)(eta + 0.5));
	fflush(stderr);
}

int progress_cb(void *opaque, uint64_t done, uint64_t total)
{
	struct progress *p = opaque;
	if (cli_interrupted)
		return 1;
	if (!p || p->mode == PROGRESS_NONE)
		return 0;
	double now = cli_now();
	bool final = total && done >= total;
	if (p->last >= 0 && now - p->last < PROGRESS_INTERVAL && !final)
		return 0;
	if (final && p->final_sent)
		return 0;
	double el = now - p->start;
	double rate = el > 0 ? (double)done / el : 0;
	double eta = (rate > 0 && total >= done) ? (double)(total - done) / rate : -1;
	if (final)
		eta = 0;
	p->last = now;
	if (p->mode == PROGRESS_JSON) {
		show_json(p, done, total, rate, eta);
		if (final)
			p->final_sent = true;
	} else {
		show_tty(p, done, total, rate, eta);
	}
	return 0;
}

void progress_end(struct progress *p)
{
	if (p && p->shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		p->shown = false;
	}
}
