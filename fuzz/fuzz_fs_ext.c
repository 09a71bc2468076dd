/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target for the ext2/3/4 reader (lib/fs/ext*.c): the input is the start of a
 * filesystem. It is run twice:
 *   - as it is, a memory region of the input's size (most claim more blocks than that:
 *     the truncated-image path);
 *   - zero-padded to the size its superblock claims, when that is larger than the input
 *     and at most PAD_MAX: the corpus holds real filesystems with their zero tail cut off,
 *     and this gives them back the size that lets the reader go past the size check into
 *     the descriptors and bitmaps;
 *   - once more after fix_checksums() has recomputed, with libext2fs, the checksums a
 *     mutation broke (block bitmaps, group descriptors, superblock): a mutating fuzzer
 *     practically never gets a CRC right, and without this every metadata_csum or uninit_bg
 *     seed would stop at the first checksum.
 *
 * Besides "no crash, no leak, no hang", these are findings (message on stderr, abort()):
 *   - probe and read_map disagree (probe says no, read_map succeeds);
 *   - a failure without a message in imago_err, or with another code than returned;
 *   - a map that breaks the extent map's invariants;
 *   - after success: fs_size past the region, used_bytes past fs_size, FREE bytes more than
 *     fs_size - used_bytes, FREE bytes in the boot block/superblock or past fs_size, FREE
 *     bytes on a filesystem flagged dirty/needs-recovery/errors;
 *   - the differential check: libext2fs itself (ext2fs_read_block_bitmap, through the same
 *     region I/O manager) must call every block of every FREE run free. That is the safety
 *     property: the reader never marks FREE what the filesystem's own library calls used.
 *
 * IMAGO_FUZZ_VERBOSE=1 prints what the reader said about each input.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/ext_int.h"
#include "fs/ext_io.h"
#include "fs/fs.h"
#include "fuzz.h"

#define PAD_MAX (4u << 20)

extern const struct fs_driver fs_ext_driver;

static void finding(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void finding(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fuzz_fs_ext finding: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

/* Every FREE block must be free for libext2fs too. */
static void differential(const struct region *r, const struct extent_map *m,
			 const struct fs_facts *f)
{
	char name[EXT_IO_NAME_MAX];
	ext2_filsys fs = NULL;
	ext_io_name(r, name);
	errcode_t e = ext2fs_open2(name, NULL, EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP, 0, 0,
				   &ext_region_io_manager, &fs);
	if (e)
		finding("read_map succeeded but ext2fs_open2 fails (%ld)", (long)e);
	e = ext2fs_read_block_bitmap(fs);
	if (e)
		finding("read_map succeeded but ext2fs_read_block_bitmap fails (%ld)", (long)e);
	uint64_t bs = f->block_size;
	for (size_t i = 0; i < m->n; i++) {
		if (m->v[i].state != IMAGO_FREE)
			continue;
		if (m->v[i].offset % bs || m->v[i].length % bs)
			finding("FREE run %" PRIu64 "+%" PRIu64 " is not in whole blocks",
				m->v[i].offset, m->v[i].length);
		for (uint64_t b = m->v[i].offset / bs; b < (m->v[i].offset + m->v[i].length) / bs; b++)
			if (ext2fs_test_block_bitmap2(fs->block_map, b))
				finding("block %" PRIu64 " is FREE in the map but used for libext2fs", b);
	}
	ext2fs_free(fs);
}

static void run(const uint8_t *data, size_t size, const char *what)
{
	struct region r = region_mem(data, size, "fuzz");
	int score = fs_ext_driver.probe(&r);
	struct extent_map m;
	if (extent_map_init(&m, size, IMAGO_USED) < 0)
		return;
	struct fs_facts f;
	struct imago_err err = { .code = 0 };
	memset(&f, 0, sizeof(f));
	int rc = fs_ext_driver.read_map(&r, &m, &f, &err);
	if (getenv("IMAGO_FUZZ_VERBOSE"))
		fprintf(stderr, "%s (%zu bytes): probe %d, read_map %d %s\n", what, size, score, rc,
			rc < 0 ? err.msg : f.type);

	size_t bad;
	if (extent_map_validate(&m, &bad) < 0)
		finding("extent map broken at run %zu", bad);
	if (rc < 0) {
		if (!err.msg[0] || err.code != rc)
			finding("read_map failed (%d) without a matching message", rc);
	} else {
		if (score <= 0)
			finding("probe says not ext but read_map succeeds");
		uint64_t tot[6];
		extent_map_totals(&m, tot);
		if (f.fs_size > size || f.used_bytes > f.fs_size ||
		    tot[IMAGO_FREE] > f.fs_size - f.used_bytes)
			finding("facts do not add up: region %zu, fs_size %" PRIu64 ", used %" PRIu64
				", FREE %" PRIu64, size, f.fs_size, f.used_bytes, tot[IMAGO_FREE]);
		if (f.flags && tot[IMAGO_FREE])
			finding("FREE bytes on a filesystem flagged %u", f.flags);
		if (size > 2048 && extent_map_range_has(&m, 0, 2048, IMAGO_FREE))
			finding("FREE bytes in the boot block or the superblock");
		if (f.fs_size < size && extent_map_range_has(&m, f.fs_size, size - f.fs_size,
							     IMAGO_FREE))
			finding("FREE bytes past the end of the filesystem");
		if (tot[IMAGO_FREE])
			differential(&r, &m, &f);
	}
	extent_map_free(&m);
}

/* Recompute, in place, the checksums the reader verifies: each block bitmap's (kept in
 * its group descriptor), each group descriptor's (written back into the descriptor
 * blocks), the superblock's. Returns 1 when buf may have changed. */
static int fix_checksums(uint8_t *buf, size_t size)
{
	struct region r = region_mem(buf, size, "fix");
	char name[EXT_IO_NAME_MAX];
	ext2_filsys fs = NULL;
	ext_io_name(&r, name);
	if (ext2fs_open2(name, NULL, EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP |
			 EXT2_FLAG_IGNORE_CSUM_ERRORS, 0, 0, &ext_region_io_manager, &fs))
		return 0;
	int meta = ext2fs_has_feature_metadata_csum(fs->super);
	if (!meta && !ext2fs_has_group_desc_csum(fs)) {
		ext2fs_free(fs);
		return 0;
	}
	uint64_t bs = fs->blocksize, blocks = ext2fs_blocks_count(fs->super);
	int nbytes = EXT2_CLUSTERS_PER_GROUP(fs->super) / 8;
	for (dgrp_t g = 0; g < fs->group_desc_count; g++) {
		blk64_t b = ext2fs_block_bitmap_loc(fs, g);
		if (meta && b < blocks && (b + 1) * bs <= size && (uint64_t)nbytes <= bs)
			ext2fs_block_bitmap_csum_set(fs, g, (char *)buf + b * bs, nbytes);
		ext2fs_group_desc_csum_set(fs, g);
	}
	for (dgrp_t i = 0; i < fs->desc_blocks; i++) {
		blk64_t b = ext2fs_descriptor_block_loc2(fs, fs->super->s_first_data_block, i);
		if ((b + 1) * bs <= size)
			memcpy(buf + b * bs, (char *)fs->group_desc + (size_t)i * bs, bs);
	}
	if (meta) {
		ext2fs_superblock_csum_set(fs, fs->super);
		memcpy(buf + EXT_SB_OFFSET, fs->super, EXT_SB_SIZE);
	}
	ext2fs_free(fs);
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size, "input");

	struct ext_sb sb;
	char why[200];
	if (size < EXT_SB_OFFSET + EXT_SB_SIZE ||
	    ext_sb_decode(data + EXT_SB_OFFSET, &sb, why, sizeof(why)) < 0)
		return 0;
	uint64_t want = sb.blocks_count * sb.block_size;
	if (want > PAD_MAX || sb.groups > 4096)
		return 0;
	size_t n = want > size ? (size_t)want : size;
	uint8_t *buf = calloc(1, n);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (n > size)
		run(buf, n, "padded");
	if (fix_checksums(buf, n))
		run(buf, n, "fixed");
	free(buf);
	return 0;
}
