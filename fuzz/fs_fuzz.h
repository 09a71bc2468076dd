/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Shared body of the filesystem-reader fuzz targets (fuzz_fs_fat.c, fuzz_fs_xfs.c,
 * fuzz_fs_btrfs.c): runs one driver's probe and read_map over the input, twice:
 *
 *   1. as a memory region of exactly the input (a short region: a reader must notice
 *      that the filesystem claims more than the region holds, and fail cleanly);
 *   2. as the first bytes of a larger, sparse region (a memfd of `virt` bytes, the rest
 *      reading as zeros), so that inputs trimmed to the leading metadata of a real image
 *      (the seed corpus) reach the allocation walk itself.
 *
 * Besides "no crash, no leak, no hang", every result is checked against the driver
 * contract (fs.h); a violation is a finding (message on stderr, then abort()):
 *   - read_map returns 0 or a negative errno, and on failure fills err with a message;
 *   - on success fs_size <= the region size, used_bytes <= fs_size, no FREE byte lies at
 *     or past fs_size, the first 512 bytes (boot sector / superblock) are never FREE,
 *     the text facts are NUL-terminated, and the map still tiles the region.
 *
 * IMAGO_FUZZ_VERBOSE=1 in the environment prints what the driver said about each input.
 */
#ifndef IMAGO_FUZZ_FS_FUZZ_H
#define IMAGO_FUZZ_FS_FUZZ_H

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "extent/extent_map.h"
#include "fs/fs.h"
#include "io/region.h"

static void fs_fuzz_finding(const char *drv, const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_fs_%s: contract violated: %s%s%s\n", drv, what,
		detail ? ": " : "", detail ? detail : "");
	abort();
}

static int fs_fuzz_terminated(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

static void fs_fuzz_region(const struct fs_driver *d, const struct region *r)
{
	static int verbose = -1;
	if (verbose < 0)
		verbose = getenv("IMAGO_FUZZ_VERBOSE") != NULL;
	int score = d->probe(r);
	if (score < 0 || score > 100)
		fs_fuzz_finding(d->name, "probe score out of 0..100", NULL);
	struct extent_map m;
	if (extent_map_init(&m, r->size, IMAGO_USED) < 0)
		return;
	struct fs_facts f;
	memset(&f, 0x5A, sizeof(f));  /* a driver must fill what it reports */
	struct imago_err err = { .code = 0, .msg = "" };
	int rc = d->read_map(r, &m, &f, &err);
	if (verbose)
		fprintf(stderr, "fuzz_fs_%s: region %" PRIu64 " bytes: probe %d, read_map %d %s\n",
			d->name, r->size, score, rc, rc < 0 ? err.msg : "");
	if (rc > 0)
		fs_fuzz_finding(d->name, "read_map returned a positive value", NULL);
	if (rc < 0) {
		if (!err.msg[0] || err.code != rc)
			fs_fuzz_finding(d->name, "failure without an error message/code", NULL);
		if (!fs_fuzz_terminated(err.msg, sizeof(err.msg)))
			fs_fuzz_finding(d->name, "error message not terminated", NULL);
		extent_map_free(&m);
		return;
	}
	if (!fs_fuzz_terminated(f.type, sizeof(f.type)) ||
	    !fs_fuzz_terminated(f.label, sizeof(f.label)) ||
	    !fs_fuzz_terminated(f.uuid, sizeof(f.uuid)) ||
	    !fs_fuzz_terminated(f.state, sizeof(f.state)))
		fs_fuzz_finding(d->name, "a text fact is not terminated", NULL);
	if (!f.type[0])
		fs_fuzz_finding(d->name, "success without a type", NULL);
	if (f.fs_size > r->size)
		fs_fuzz_finding(d->name, "fs_size larger than the region", f.type);
	if (f.used_bytes > f.fs_size)
		fs_fuzz_finding(d->name, "used_bytes larger than fs_size", f.type);
	size_t bad;
	if (extent_map_validate(&m, &bad) < 0 || m.size != r->size)
		fs_fuzz_finding(d->name, "the map no longer tiles the region", f.type);
	if (r->size && extent_map_range_has(&m, 0, r->size < 512 ? r->size : 512, IMAGO_FREE))
		fs_fuzz_finding(d->name, "the first 512 bytes were marked FREE", f.type);
	if (f.fs_size < r->size &&
	    extent_map_range_has(&m, f.fs_size, r->size - f.fs_size, IMAGO_FREE))
		fs_fuzz_finding(d->name, "bytes past fs_size were marked FREE", f.type);
	for (size_t i = 0; i < m.n; i++)
		if (m.v[i].state != IMAGO_USED && m.v[i].state != IMAGO_FREE)
			fs_fuzz_finding(d->name, "a state other than USED/FREE in the map", f.type);
	extent_map_free(&m);
}

/* Run driver d over data: as a short memory region, then at the start of a sparse region
 * of virt bytes (when virt > size). */
static int fs_fuzz_run(const struct fs_driver *d, const uint8_t *data, size_t size, uint64_t virt)
{
	struct region r = region_mem(data, size, "fuzz-input");
	fs_fuzz_region(d, &r);

	static int fd = -2;
	if (fd == -2)
		fd = memfd_create("fuzz-fs", MFD_CLOEXEC);
	if (fd < 0 || virt <= size)
		return 0;
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)virt) < 0)
		return 0;
	for (size_t off = 0; off < size;) {
		ssize_t w = pwrite(fd, data + off, size - off, (off_t)off);
		if (w <= 0)
			return 0;
		off += (size_t)w;
	}
	r = region_fd(fd, 0, virt, "fuzz-sparse");
	fs_fuzz_region(d, &r);
	/* Once more inside a larger file at an offset, as a partition would be. */
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)(virt + 2 * 4096)) < 0)
		return 0;
	for (size_t off = 0; off < size;) {
		ssize_t w = pwrite(fd, data + off, size - off, (off_t)(4096 + off));
		if (w <= 0)
			return 0;
		off += (size_t)w;
	}
	r = region_fd(fd, 4096, virt, "fuzz-partition");
	fs_fuzz_region(d, &r);
	return 0;
}

#endif
