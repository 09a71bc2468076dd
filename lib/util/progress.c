/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <time.h>

#include "util/progress.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void progress_clock_init(struct progress_clock *c)
{
	c->last_ns = now_ns();
}

int progress_tick(struct progress_clock *c, uint64_t done, uint64_t total,
		  imago_progress_fn fn, void *opaque)
{
	if (!fn)
		return 0;
	uint64_t t = now_ns();
	if (t - c->last_ns < 100000000u)
		return 0;
	c->last_ns = t;
	return fn(opaque, done, total);
}

int progress_final(struct progress_clock *c, uint64_t total, imago_progress_fn fn, void *opaque)
{
	c->last_ns = now_ns();
	return fn ? fn(opaque, total, total) : 0;
}
