/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz inputs for the filesystem readers (fuzz_fs_*.c). A filesystem's metadata is spread
 * over a volume of a few MiB at least, while a corpus file should stay small, so an input
 * is either the raw bytes of a region, or a sparse description of a larger one:
 *
 *   "IMGSPRS1"  u32 LE total size (capped at FUZZ_FS_MAX), then pieces until the input
 *   ends, each:  u8 kind, u32 LE offset, u32 LE length, and
 *                kind 0: `length` data bytes;  kind 1: one fill byte (a run of it).
 *
 * Pieces are clipped to the region; bytes no piece covers are zero. Any input decodes to
 * some region, so the fuzzer's mutations of offsets and lengths stay meaningful.
 * fuzz/gen_corpus_fs.sh writes such files from real mkfs images.
 *
 * fuzz_fs_run() then runs a driver's probe and read_map on the region and checks what
 * they promise (fs.h); a broken promise is a finding (message, then abort()).
 */
#ifndef IMAGO_FUZZ_FS_FUZZ_H
#define IMAGO_FUZZ_FS_FUZZ_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extent/extent_map.h"
#include "fs/fs.h"

#define FUZZ_FS_MAX (16u << 20)

static inline uint32_t fuzz_fs_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The region an input describes, in a new buffer (free() it); NULL when out of memory.
 * *n gets its size (may be 0). */
static inline uint8_t *fuzz_fs_expand(const uint8_t *d, size_t len, size_t *n)
{
	if (len < 12 || memcmp(d, "IMGSPRS1", 8)) {
		uint8_t *b = malloc(len ? len : 1);
		if (b && len)
			memcpy(b, d, len);
		*n = len;
		return b;
	}
	uint32_t total = fuzz_fs_rd32(d + 8);
	if (total > FUZZ_FS_MAX)
		total = FUZZ_FS_MAX;
	uint8_t *b = calloc(total ? total : 1, 1);
	if (!b)
		return NULL;
	size_t p = 12;
	while (len - p >= 9) {
		uint8_t kind = d[p];
		uint32_t off = fuzz_fs_rd32(d + p + 1), l = fuzz_fs_rd32(d + p + 5);
		p += 9;
		if (kind == 1) {
			if (p >= len)
				break;
			uint8_t fill = d[p++];
			if (off < total)
				memset(b + off, fill, l < total - off ? l : total - off);
		} else {
			size_t avail = len - p;
			size_t take = l < avail ? l : avail;
			if (off < total)
				memcpy(b + off, d + p, take < total - off ? take : total - off);
			p += take;
		}
	}
	*n = total;
	return b;
}

static inline void fuzz_fs_finding(const char *drv, const char *what, long a, long b)
{
	fprintf(stderr, "fuzz_fs_%s: FINDING: %s (%ld, %ld)\n", drv, what, a, b);
	fflush(stderr);
	abort();
}

static inline void fuzz_fs_run(const struct fs_driver *d, const uint8_t *b, size_t n)
{
	struct region r = region_mem(b, n, "fuzz");
	int score = d->probe(&r);
	if (score < 0 || score > 100)
		fuzz_fs_finding(d->name, "probe score out of range", score, 0);
	struct extent_map m;
	if (extent_map_init(&m, n, IMAGO_USED) < 0)
		return;
	struct fs_facts f;
	memset(&f, 0x5A, sizeof(f));  /* read_map must fill every field it hands back */
	struct imago_err e = { 0 };
	int rc = d->read_map(&r, &m, &f, &e);
	if (rc < 0) {
		if (rc != -EBADMSG && rc != -ENOMEM && rc != -E2BIG && rc != -EOPNOTSUPP &&
		    rc != -EIO)
			fuzz_fs_finding(d->name, "read_map failed with an unexpected code", rc, 0);
		if (e.code != rc || !e.msg[0] || !memchr(e.msg, 0, sizeof(e.msg)))
			fuzz_fs_finding(d->name, "read_map failed without saying why", rc, e.code);
	} else {
		size_t bad;
		uint64_t tot[6];
		if (rc != 0)
			fuzz_fs_finding(d->name, "read_map returned a positive value", rc, 0);
		if (extent_map_validate(&m, &bad) < 0 || m.size != n)
			fuzz_fs_finding(d->name, "the map is broken", (long)bad, (long)m.size);
		extent_map_totals(&m, tot);
		if (f.fs_size > n || f.used_bytes > f.fs_size ||
		    tot[IMAGO_FREE] + f.used_bytes > f.fs_size)
			fuzz_fs_finding(d->name, "facts do not add up", (long)f.fs_size,
					(long)f.used_bytes);
		if (f.fs_size < n && extent_map_range_has(&m, f.fs_size, n - f.fs_size, IMAGO_FREE))
			fuzz_fs_finding(d->name, "FREE bytes past the filesystem", (long)f.fs_size, 0);
		if (n && extent_map_state_at(&m, 0) != IMAGO_USED)
			fuzz_fs_finding(d->name, "the boot sector is FREE", 0, 0);
		if (!memchr(f.type, 0, sizeof(f.type)) || !memchr(f.label, 0, sizeof(f.label)) ||
		    !memchr(f.uuid, 0, sizeof(f.uuid)) || !memchr(f.state, 0, sizeof(f.state)) ||
		    !f.type[0] || !f.block_size || (f.flags && !f.state[0]))
			fuzz_fs_finding(d->name, "facts are not filled in", (long)f.flags, 0);
	}
	extent_map_free(&m);
}

#endif
