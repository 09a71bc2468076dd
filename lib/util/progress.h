/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Throttled calls of the caller's progress callback (at most ~10 a second). */
#ifndef IMAGO_UTIL_PROGRESS_H
#define IMAGO_UTIL_PROGRESS_H

#include <stdint.h>

#include "imago.h"

struct progress_clock {
	uint64_t last_ns;
};

void progress_clock_init(struct progress_clock *c);
/* Calls fn if enough time passed; returns nonzero if the callback asked to cancel. */
int progress_tick(struct progress_clock *c, uint64_t done, uint64_t total,
		  imago_progress_fn fn, void *opaque);
/* The final call (done == total), always made. */
int progress_final(struct progress_clock *c, uint64_t total, imago_progress_fn fn, void *opaque);

#endif
