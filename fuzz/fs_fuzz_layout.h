/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Shared body of the filesystem-reader fuzz targets (fuzz_fs_fat.c, fuzz_fs_xfs.c,
 * fuzz_fs_btrfs.c): runs one driver's probe and read_map over the input:
 *
 *   1. as a memory region of exactly the input (a short region: a reader must notice
 *      that the filesystem claims more than the region holds, and fail cleanly);
 *   2. laid out in a larger, sparse region (a memfd of `virt` bytes, the rest reading as
 *      zeros), so that inputs trimmed to the metadata of a real image (the seed corpus)
 *      reach the allocation walk itself; as is, then with checksums recomputed by the
 *      target's fixup (a mutated block almost never has a right CRC), then once more
 *      at an offset inside a larger file, as a partition.
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
#ifndef IMAGO_FUZZ_FS_FUZZ_LAYOUT_H
#define IMAGO_FUZZ_FS_FUZZ_LAYOUT_H

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
	if (verbose) {
		uint64_t t[6];
		extent_map_totals(&m, t);
		fprintf(stderr, "fuzz_fs_%s: region %" PRIu64 " bytes: probe %d, read_map %d %s",
			d->name, r->size, score, rc, rc < 0 ? err.msg : "");
		if (rc == 0)
			fprintf(stderr, "%s free %" PRIu64 " in %zu runs, flags %u %s", f.type,
				t[IMAGO_FREE], m.n, f.flags, f.state);
		fputc('\n', stderr);
	}
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

/*
 * Inputs come in two forms:
 *   - raw: the first bytes of the region;
 *   - sparse: the magic "IMSPARSE", then records (u64 offset LE, u32 length LE, bytes),
 *     each written at its offset in the sparse region (clipped to it; a truncated last
 *     record keeps what is there). This lets a small input carry metadata that lies far
 *     apart on disk (XFS allocation groups, btrfs trees), which gen_corpus_fs_*.sh
 *     extract from real images.
 */
#define FS_FUZZ_SPARSE_MAGIC "IMSPARSE"
#define FS_FUZZ_MAX_RANGES 4096

struct fs_fuzz_range {
	uint64_t off, len;  /* where input bytes were written, relative to the region */
};

/* Called after the input was written into the sparse region at base: may recompute
 * checksums of the structures inside the written ranges (pread/pwrite on fd at base +
 * offset), so that mutated inputs get past the checksums to the parsing behind them. */
typedef void (*fs_fuzz_fixup_fn)(int fd, uint64_t base, uint64_t virt,
				 const struct fs_fuzz_range *rg, size_t nrg);

static int fs_fuzz_pwrite(int fd, const uint8_t *p, size_t n, uint64_t at)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)at);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
		at += (uint64_t)w;
	}
	return 0;
}

/* Lay the input out in fd at base (the file is emptied and sized base + virt + 4096).
 * Returns the number of ranges written, or -1. */
static long fs_fuzz_layout(int fd, const uint8_t *data, size_t size, uint64_t base,
			   uint64_t virt, struct fs_fuzz_range *rg)
{
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)(base + virt + 4096)) < 0)
		return -1;
	size_t ml = sizeof(FS_FUZZ_SPARSE_MAGIC) - 1;
	if (size < ml || memcmp(data, FS_FUZZ_SPARSE_MAGIC, ml)) {
		size_t n = size < virt ? size : (size_t)virt;
		if (fs_fuzz_pwrite(fd, data, n, base) < 0)
			return -1;
		rg[0] = (struct fs_fuzz_range){ 0, n };
		return 1;
	}
	long nrg = 0;
	for (size_t p = ml; p + 12 <= size && nrg < FS_FUZZ_MAX_RANGES;) {
		uint64_t off = 0;
		uint32_t len = 0;
		for (int i = 7; i >= 0; i--)
			off = off << 8 | data[p + (size_t)i];
		for (int i = 3; i >= 0; i--)
			len = len << 8 | data[p + 8 + (size_t)i];
		p += 12;
		size_t n = len < size - p ? len : size - p;
		if (off < virt) {
			size_t w = n < virt - off ? n : (size_t)(virt - off);
			if (fs_fuzz_pwrite(fd, data + p, w, base + off) < 0)
				return -1;
			rg[nrg++] = (struct fs_fuzz_range){ off, w };
		}
		p += n;
	}
	return nrg;
}

/* Run driver d over data: as a short memory region; at the start of a sparse region of
 * virt bytes, as is and after fixup (if any); and once more inside a larger file at an
 * offset, as a partition would be. */
static int fs_fuzz_run(const struct fs_driver *d, const uint8_t *data, size_t size,
		       uint64_t virt, fs_fuzz_fixup_fn fixup)
{
	struct region r = region_mem(data, size, "fuzz-input");
	fs_fuzz_region(d, &r);

	static int fd = -2;
	static struct fs_fuzz_range rg[FS_FUZZ_MAX_RANGES];
	if (fd == -2)
		fd = memfd_create("fuzz-fs", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	long nrg = fs_fuzz_layout(fd, data, size, 0, virt, rg);
	if (nrg < 0)
		return 0;
	r = region_fd(fd, 0, virt, "fuzz-sparse");
	fs_fuzz_region(d, &r);
	if (fixup) {
		fixup(fd, 0, virt, rg, (size_t)nrg);
		fs_fuzz_region(d, &r);
	}
	nrg = fs_fuzz_layout(fd, data, size, 4096, virt, rg);
	if (nrg < 0)
		return 0;
	if (fixup)
		fixup(fd, 4096, virt, rg, (size_t)nrg);
	r = region_fd(fd, 4096, virt, "fuzz-partition");
	fs_fuzz_region(d, &r);
	return 0;
}

#endif
