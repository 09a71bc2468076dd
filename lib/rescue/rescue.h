/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Rescue imaging of a failing source (DESIGN.md §2 BAD/UNTRIED), in the phases GNU
 * ddrescue made standard (ddrescue manual, "Algorithm"):
 *
 *   1. copying: the untried areas in large reads; a failed read marks its area
 *      non-trimmed and skips ahead (the skip doubles at each error or slow read and
 *      resets on good data), so a bad or slow region costs few reads; the skipped areas
 *      are read in a second pass backwards and a third pass forwards without skipping;
 *   2. trimming: each failed area is read sector by sector from both edges inwards until
 *      a sector fails; the middle is left non-scraped;
 *   3. scraping: every non-scraped sector is read once;
 *   4. retrying: N passes over the bad sectors, alternating direction.
 *
 * Good data goes to the output with pwrite at its own offset; bad areas are never
 * written (the output keeps what it had: a hole in a new sparse file). The map (map.h) is
 * saved atomically every save_interval seconds (after syncing the output, so the saved
 * map never claims bytes the output does not hold) and at the end, also when stopped.
 *
 * A domain (a list of ranges) restricts every phase to those bytes: --used-only runs
 * the filesystem's used areas first, then (optionally) the rest.
 */
#ifndef IMAGO_RESCUE_RESCUE_H
#define IMAGO_RESCUE_RESCUE_H

#include <stddef.h>
#include <stdint.h>

#include "imago.h"
#include "rescue/map.h"

struct rescue_stats {
	uint64_t size;
	uint64_t by_status[5];   /* bytes per status, rescue_map_totals order */
	uint64_t bytes_read;     /* good bytes read this run */
	uint64_t read_errors;    /* failed reads this run */
	uint64_t slow_reads;
	uint64_t reopens;
	uint64_t pos;            /* where reading is now */
	char phase;              /* enum rescue_phase */
	unsigned pass;
	double elapsed;          /* seconds this run */
	double last_good;        /* seconds since the last good read (-1: none yet) */
};

/* Status callback: at most ~every status_interval seconds and at each phase change.
 * Return nonzero to stop (the map is saved; rescue_run returns -ECANCELED). */
typedef int (*rescue_status_fn)(void *opaque, const struct rescue_stats *st);

struct rescue_range {
	uint64_t offset, length;
};

struct rescue_opts {
	const char *source_path;   /* reopened after errors when reopen is set */
	int source_fd;             /* open for reading (O_DIRECT when direct is set) */
	/* Optional: the caller's variable holding the source fd. When set, it is used
	 * instead of source_fd, and a reopen closes the old descriptor (a device that went
	 * away must not be held open) and stores the new one there, for the caller to close.
	 * When NULL, source_fd is never closed and reopened descriptors are closed at the end. */
	int *live_fd;
	uint64_t size;             /* bytes of the source to rescue */
	uint32_t sector_size;      /* 512 or 4096 (0 = 512): the smallest read */
	uint32_t cluster_size;     /* copying read size (0 = 1 MiB); multiple of the sector */
	uint32_t trim_cluster;     /* failed areas larger than this are split into pieces of
				      this size before trimming (0 = 64 KiB) */
	int direct;                /* O_DIRECT: reads aligned to the sector (buffer and size) */
	int reopen;                /* reopen the source after each read error */
	double reopen_wait;        /* seconds to wait for a source that went away (0 = 30) */
	double slow_seconds;       /* a read slower than this skips ahead (0 = never) */
	uint64_t skip_min, skip_max; /* skip after an error (0 = 64 KiB; 0 = min(1 GiB, 1%)) */
	unsigned retries;          /* retry passes over bad sectors */
	int no_trim, no_scrape;
	double max_seconds;        /* stop after this long (0 = no limit) */
	uint64_t max_errors;       /* stop after this many failed reads (0 = no limit) */
	const struct rescue_range *domain;  /* NULL: everything */
	size_t ndomain;
	int out_fd;                /* written with pwrite at source offsets */
	const char *map_path;      /* saved here (NULL: not saved by rescue_run) */
	const char *const *map_comments;
	size_t nmap_comments;
	double save_interval;      /* seconds between map saves (0 = 30) */
	double status_interval;    /* seconds between status calls (0 = 0.25) */
	rescue_status_fn status;
	void *status_opaque;
};

/* Run every phase over the map's areas that are not finished (inside the domain).
 * Returns 0 when every phase ran, 1 when stopped by max_seconds or max_errors, or a
 * negative errno (-ECANCELED when the status callback said stop; -EIO for a write
 * failure or a source that did not come back) with err set. The map is saved either way
 * (when map_path is set). st gets the final statistics. */
int rescue_run(const struct rescue_opts *o, struct rescue_map *m, struct rescue_stats *st,
	       struct imago_err *err);

#endif
