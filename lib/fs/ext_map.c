// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * ext2/3/4: from the block bitmaps to FREE ranges (ext_int.h: ext_map_free).
 *
 * libext2fs parses and checks the superblock and the group descriptors (ext2fs_open2,
 * descriptor checksums, the superblock/descriptor backup layout of sparse_super,
 * sparse_super2 and meta_bg), reads every block through our region I/O manager and
 * verifies the bitmap checksums. What it does not do is hold the bitmaps in bounded
 * memory: ext2fs_read_block_bitmap() loads the whole filesystem's bitmap into a
 * libext2fs bitmap, and
 *   - the default backend (bitarray; tools set RBTREE explicitly) takes clusters/8 bytes:
 *     512 MiB for a 16 TiB ext4 with 4 KiB blocks (2^32 blocks), twice FS_MEM_LIMIT;
 *   - the rbtree backend takes about 40 bytes per run of used clusters, which a damaged or
 *     hostile bitmap (alternating bits) makes 2^31 runs: unbounded.
 * ext2fs_check_desc() likewise builds a whole-filesystem bitmap of the metadata. So this
 * file walks the groups one at a time, with one bitmap block in memory, and reproduces
 * exactly what libext2fs's read_bitmaps does per group (rw_bitmaps.c, 1.47):
 *   - a group flagged BLOCK_UNINIT, on a filesystem with group descriptor checksums
 *     (uninit_bg or metadata_csum) whose descriptor checksum verifies, has no bitmap on
 *     disk: all its clusters are free except the group's own superblock and descriptor
 *     backup, bitmaps and inode table (mark_uninit_bg_group_blocks);
 *   - any other group's bitmap block is read and, with metadata_csum, its checksum must
 *     verify;
 *   - bit i of group g is cluster B2C(first_data_block) + g * clusters_per_group + i; bits
 *     past the end of the filesystem (padding in the last group) are ignored.
 * Memory: libext2fs's descriptor table plus at most six 16-byte metadata extents per
 * group, both bounded by EXT_MAX_GROUPS; time: one bitmap block read per group.
 *
 * On top of the bitmaps, every block of the filesystem's own metadata (superblock and
 * descriptor copies, reserved GDT blocks, both bitmaps and the inode table of every group)
 * stays USED even where a bitmap calls it free: that covers BLOCK_UNINIT groups (as
 * libext2fs marks them) and a bitmap damaged in the one way that would lose metadata. The
 * same sorted list of extents checks the descriptors as ext2fs_check_desc() does: every
 * location inside the filesystem (inside its own group without flex_bg) and no two of them
 * overlapping.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fs/ext_int.h"
#include "fs/ext_io.h"
#include "util/err.h"

/* FREE runs before the reader starts dropping small ones: every run is an entry in the
 * caller's extent map (24 bytes, and the USED run between two FREE ones), so a damaged
 * bitmap of alternating bits must not make the map grow without bound. Past the budget,
 * only runs of at least 64 KiB are marked, and the minimum doubles every budget/8 runs
 * more; the runs left out stay USED (safe). A real filesystem stays far below it. */
#define FREE_RUN_BUDGET (1u << 21)

enum keep_kind { K_SUPER, K_GDT, K_META_GDT, K_BBITMAP, K_IBITMAP, K_ITABLE };

static const char *const kind_name[] = {
	[K_SUPER] = "superblock",
	[K_GDT] = "group descriptors",
	[K_META_GDT] = "meta_bg group descriptor block",
	[K_BBITMAP] = "block bitmap",
	[K_IBITMAP] = "inode bitmap",
	[K_ITABLE] = "inode table",
};

/* One entry of the list: a metadata extent in blocks while the list is built and
 * checked, then -- in place, the same 16 bytes -- a byte range to keep. len fits 32 bits
 * (an inode table or descriptor table is far smaller than 2^32 blocks), the group number
 * (< EXT_MAX_GROUPS) shares a word with the kind. */
union keep {
	struct {
		uint64_t start;        /* first block */
		uint32_t len;          /* blocks */
		uint32_t group_kind;   /* group << 3 | enum keep_kind */
	} x;
	struct {
		uint64_t start, end;   /* bytes [start, end) */
	} r;
};

struct keep_list {
	union keep *v;
	size_t n, cap;
};

#define KEEP_GROUP(e) ((e)->x.group_kind >> 3)
#define KEEP_KIND(e) kind_name[(e)->x.group_kind & 7]

/* The list is sized up front for six extents per group (the most one group adds: two
 * bitmaps, inode table, superblock, descriptor table, meta_bg descriptor block) plus one:
 * 96 bytes per group at most, reserved once (pages never written cost nothing). */
static int keep_add(struct keep_list *k, uint64_t start, uint64_t len, uint32_t group,
		    enum keep_kind kind)
{
	if (len == 0)
		return 0;
	if (k->n + 1 >= k->cap || len > UINT32_MAX)
		return -ENOMEM;
	union keep *e = &k->v[k->n++];
	e->x.start = start;
	e->x.len = (uint32_t)len;
	e->x.group_kind = group << 3 | (uint32_t)kind;
	return 0;
}

static int keep_cmp(const void *a, const void *b)
{
	const union keep *x = a, *y = b;
	if (x->x.start != y->x.start)
		return x->x.start < y->x.start ? -1 : 1;
	return x->x.len < y->x.len ? -1 : x->x.len > y->x.len;
}

static int oom(struct imago_err *err, const char *type)
{
	return err_set(err, -ENOMEM, -1, -1, -1, "%s: out of memory for the metadata extents",
		       type);
}

/* Byte offset of group g's descriptor, for messages. */
static int64_t desc_offset(ext2_filsys fs, dgrp_t g)
{
	uint32_t per = EXT2_DESC_PER_BLOCK(fs->super);
	blk64_t blk = ext2fs_descriptor_block_loc2(fs, fs->super->s_first_data_block, g / per);
	return (int64_t)(blk * fs->blocksize + (uint64_t)(g % per) * EXT2_DESC_SIZE(fs->super));
}

/* Check group g's descriptor and add its metadata extents. */
static int collect_group(ext2_filsys fs, const struct ext_sb *sb, dgrp_t g, struct keep_list *k,
			 const char *type, struct imago_err *err)
{
	uint64_t blocks = sb->blocks_count;
	int flex = ext2fs_has_feature_flex_bg(fs->super);
	int64_t doff = desc_offset(fs, g);

	if (ext2fs_has_group_desc_csum(fs) && !ext2fs_group_desc_csum_verify(fs, g))
		return err_set(err, -EBADMSG, doff, -1, -1,
			       "%s group descriptor %u at byte %" PRId64 ": checksum mismatch",
			       type, g, doff);

	/* Without flex_bg a group's bitmaps and inode table lie inside the group; with it,
	 * anywhere in the filesystem (check_desc.c). */
	uint64_t lo = flex ? sb->first_data_block : ext2fs_group_first_block2(fs, g);
	uint64_t hi = flex ? blocks - 1 : ext2fs_group_last_block2(fs, g);
	const char *where = flex ? "the filesystem" : "its group";
	struct { enum keep_kind kind; uint64_t blk, len; } loc[3] = {
		{ K_BBITMAP, ext2fs_block_bitmap_loc(fs, g), 1 },
		{ K_IBITMAP, ext2fs_inode_bitmap_loc(fs, g), 1 },
		{ K_ITABLE, ext2fs_inode_table_loc(fs, g), fs->inode_blocks_per_group },
	};
	for (int i = 0; i < 3; i++) {
		if (loc[i].blk < lo || loc[i].blk > hi || loc[i].len - 1 > hi - loc[i].blk)
			return err_set(err, -EBADMSG, doff, -1, -1,
				       "%s group descriptor %u at byte %" PRId64 ": %s at block "
				       "%" PRIu64 " (%" PRIu64 " blocks) lies outside %s (blocks "
				       "%" PRIu64 "-%" PRIu64 ")", type, g, doff, kind_name[loc[i].kind],
				       loc[i].blk, loc[i].len, where, lo, hi);
		if (keep_add(k, loc[i].blk, loc[i].len, g, loc[i].kind) < 0)
			return oom(err, type);
	}

	/* Superblock and descriptor copies, as ext2fs_reserve_super_and_bgd() marks them. */
	blk64_t super = 0, old_desc = 0, new_desc = 0;
	blk_t used = 0;
	ext2fs_super_and_bgd_loc2(fs, g, &super, &old_desc, &new_desc, &used);
	uint64_t old_blocks = ext2fs_has_feature_meta_bg(fs->super) ?
		fs->super->s_first_meta_bg :
		(uint64_t)fs->desc_blocks + fs->super->s_reserved_gdt_blocks;
	uint64_t n = old_blocks;
	if (old_desc < blocks && n > blocks - old_desc)
		n = blocks - old_desc;
	if (((super || g == 0) && super < blocks && keep_add(k, super, 1, g, K_SUPER) < 0) ||
	    (old_desc && old_desc < blocks && keep_add(k, old_desc, n, g, K_GDT) < 0) ||
	    (new_desc && new_desc < blocks && keep_add(k, new_desc, 1, g, K_META_GDT) < 0))
		return oom(err, type);
	return 0;
}

/* end rounded up to a multiple of unit, but not past limit. */
static uint64_t round_out(uint64_t end, uint64_t unit, uint64_t limit)
{
	end = (end + unit - 1) / unit * unit;
	return end < limit ? end : limit;
}

/* Sort the extents, refuse overlaps (ext2fs_check_desc's rule: no bitmap or inode table
 * on another one or on a superblock/descriptor copy), then turn them in place into sorted,
 * coalesced byte ranges rounded out to whole clusters, with block 0 .. first_data_block
 * (boot block and primary superblock) in front. */
static int keep_finish(struct keep_list *k, const struct ext_sb *sb, const char *type,
		       struct imago_err *err)
{
	qsort(k->v, k->n, sizeof(*k->v), keep_cmp);
	size_t far = 0;  /* the extent reaching farthest so far */
	for (size_t i = 1; i < k->n; i++) {
		const union keep *a = &k->v[far], *b = &k->v[i];
		uint64_t a_end = a->x.start + a->x.len, b_end = b->x.start + b->x.len;
		if (b->x.start < a_end)
			return err_set(err, -EBADMSG, -1, -1, -1,
				       "%s group %u's %s (blocks %" PRIu64 "-%" PRIu64 ") overlaps "
				       "group %u's %s (blocks %" PRIu64 "-%" PRIu64 ")", type,
				       KEEP_GROUP(b), KEEP_KIND(b), b->x.start, b_end - 1,
				       KEEP_GROUP(a), KEEP_KIND(a), a->x.start, a_end - 1);
		if (b_end > a_end)
			far = i;
	}

	/* Extents end at or before blocks_count, and blocks_count * block_size is at most the
	 * region's size (ext.c), so none of these sums overflows. Entry i is read before
	 * entry out <= i is written; the boot range makes at most n + 1 ranges, and the list
	 * has room for one more than it holds (keep_add). */
	uint64_t cbytes = (uint64_t)sb->cluster_ratio * sb->block_size;
	uint64_t fs_bytes = sb->blocks_count * sb->block_size;
	uint64_t cur_s = 0;
	uint64_t cur_e = round_out(((uint64_t)sb->first_data_block + 1) * sb->block_size, cbytes,
				   fs_bytes);
	size_t out = 0, n = k->n;
	for (size_t i = 0; i < n; i++) {
		uint64_t s = k->v[i].x.start * sb->block_size / cbytes * cbytes;
		uint64_t e = round_out((k->v[i].x.start + k->v[i].x.len) * sb->block_size, cbytes,
				       fs_bytes);
		if (s <= cur_e) {
			if (e > cur_e)
				cur_e = e;
			continue;
		}
		k->v[out].r.start = cur_s;
		k->v[out].r.end = cur_e;
		out++;
		cur_s = s;
		cur_e = e;
	}
	k->v[out].r.start = cur_s;
	k->v[out].r.end = cur_e;
	k->n = out + 1;
	return 0;
}

/* Receives free byte ranges in increasing order, takes the kept ranges out, coalesces and
 * marks the rest FREE. */
struct emitter {
	struct extent_map *m;
	const union keep *keep;
	size_t nkeep, ki;
	uint64_t pend_start, pend_end;
	int have;
	uint64_t runs, min_len, next_tighten;
	uint64_t free_bytes;   /* all pushed, including runs the budget leaves out */
};

static int flush(struct emitter *e)
{
	if (!e->have)
		return 0;
	e->have = 0;
	uint64_t len = e->pend_end - e->pend_start;
	if (len < e->min_len)
		return 0;
	int rc = extent_map_set(e->m, e->pend_start, len, IMAGO_FREE);
	if (rc < 0)
		return rc;
	if (++e->runs >= e->next_tighten) {
		e->min_len = e->min_len ? e->min_len * 2 : 64 * 1024;
		e->next_tighten += FREE_RUN_BUDGET / 8;
	}
	return 0;
}

static int push(struct emitter *e, uint64_t a, uint64_t b)
{
	e->free_bytes += b - a;
	if (e->have && a == e->pend_end) {
		e->pend_end = b;
		return 0;
	}
	int rc = flush(e);
	e->pend_start = a;
	e->pend_end = b;
	e->have = 1;
	return rc;
}

static int emit_free(struct emitter *e, uint64_t a, uint64_t b)
{
	for (;;) {
		while (e->ki < e->nkeep && e->keep[e->ki].r.end <= a)
			e->ki++;
		if (e->ki == e->nkeep || e->keep[e->ki].r.start >= b)
			return push(e, a, b);
		const union keep *k = &e->keep[e->ki];
		if (k->r.start > a) {
			int rc = push(e, a, k->r.start);
			if (rc < 0)
				return rc;
		}
		a = k->r.end;
		if (a >= b)
			return 0;
	}
}

/* First index in [i, n) whose bit equals want, or n. Bits are LSB-first in each byte. */
static uint64_t find_bit(const uint8_t *b, uint64_t i, uint64_t n, int want)
{
	const uint8_t skip = want ? 0x00 : 0xFF;
	while (i < n) {
		if ((i & 63) == 0 && n - i >= 64) {
			uint64_t w;
			memcpy(&w, b + i / 8, 8);
			if (w == (skip ? UINT64_MAX : 0)) {
				i += 64;
				continue;
			}
		}
		if ((i & 7) == 0 && n - i >= 8 && b[i / 8] == skip) {
			i += 8;
			continue;
		}
		if (((b[i / 8] >> (i & 7)) & 1) == want)
			return i;
		i++;
	}
	return n;
}

/* Read (or, for BLOCK_UNINIT, make) group g's cluster bitmap into buf. */
static int group_bitmap(ext2_filsys fs, dgrp_t g, uint8_t *buf, const char *type,
			struct imago_err *err)
{
	size_t nbytes = EXT2_CLUSTERS_PER_GROUP(fs->super) / 8;
	if (ext2fs_has_group_desc_csum(fs) && ext2fs_bg_flags_test(fs, g, EXT2_BG_BLOCK_UNINIT)) {
		/* The descriptor checksum was verified in collect_group(). */
		memset(buf, 0, nbytes);
		return 0;
	}
	blk64_t blk = ext2fs_block_bitmap_loc(fs, g);
	int64_t off = (int64_t)(blk * fs->blocksize);
	errcode_t e = io_channel_read_blk64(fs->io, blk, 1, buf);
	if (e)
		return err_set(err, ext_errcode_errno(e, fs->io), off, -1, -1,
			       "%s group %u: reading the block bitmap at block %llu (byte %" PRId64
			       ") failed: %s", type, g, (unsigned long long)blk, off,
			       ext_errcode_text(e));
	if (!ext2fs_block_bitmap_csum_verify(fs, g, (char *)buf, (int)nbytes))
		return err_set(err, -EBADMSG, off, -1, -1,
			       "%s group %u: block bitmap at block %llu (byte %" PRId64 ") does not "
			       "match its checksum", type, g, (unsigned long long)blk, off);
	return 0;
}

int ext_map_free(ext2_filsys fs, const struct ext_sb *sb, const struct region *r,
		 struct extent_map *m, uint64_t *free_blocks, struct imago_err *err)
{
	const char *type = ext_sb_type(sb);
	uint64_t groups = fs->group_desc_count;
	uint64_t bs = fs->blocksize, ratio = EXT2FS_CLUSTER_RATIO(fs);
	uint64_t blocks = ext2fs_blocks_count(fs->super);
	uint64_t cpg = EXT2_CLUSTERS_PER_GROUP(fs->super);
	int rc = 0;

	/* ext.c opened fs from this superblock; libext2fs must agree with our decoding, or
	 * the bounds below would not hold. */
	if (groups != sb->groups || blocks != sb->blocks_count || bs != sb->block_size ||
	    ratio != sb->cluster_ratio || cpg != sb->clusters_per_group ||
	    groups > EXT_MAX_GROUPS || blocks * bs > r->size)
		return err_set(err, -EBADMSG, EXT_SB_OFFSET, -1, -1,
			       "%s superblock: libext2fs reads a different geometry", type);

	struct keep_list k = { .cap = (size_t)groups * 6 + 2 };
	k.v = malloc(k.cap * sizeof(*k.v));
	uint8_t *buf = malloc(bs);
	if (!k.v || !buf) {
		rc = oom(err, type);
		goto out;
	}
	for (dgrp_t g = 0; g < groups; g++) {
		rc = collect_group(fs, sb, g, &k, type, err);
		if (rc < 0)
			goto out;
	}
	rc = keep_finish(&k, sb, type, err);
	if (rc < 0)
		goto out;

	struct emitter em = { .m = m, .keep = k.v, .nkeep = k.n,
			      .next_tighten = FREE_RUN_BUDGET };
	for (dgrp_t g = 0; g < groups; g++) {
		rc = group_bitmap(fs, g, buf, type, err);
		if (rc < 0)
			goto out;
		uint64_t c0 = sb->first_data_block / ratio + (uint64_t)g * cpg;
		uint64_t last = ext2fs_group_last_block2(fs, g);
		uint64_t nbits = last / ratio - c0 + 1;
		if (nbits > cpg)
			nbits = cpg;
		for (uint64_t i = find_bit(buf, 0, nbits, 0); i < nbits;) {
			uint64_t j = find_bit(buf, i, nbits, 1);
			uint64_t b0 = (c0 + i) * ratio, b1 = (c0 + j) * ratio;
			if (b1 > blocks)
				b1 = blocks;
			if (b0 < b1) {
				rc = emit_free(&em, b0 * bs, b1 * bs);
				if (rc < 0)
					goto map_fail;
			}
			i = find_bit(buf, j, nbits, 0);
		}
	}
	rc = flush(&em);
	if (rc < 0)
		goto map_fail;
	/* Free as libext2fs counts it: the bitmaps, with the metadata of BLOCK_UNINIT groups
	 * (and any the bitmaps wrongly call free) taken out. */
	*free_blocks = em.free_bytes / bs;
	goto out;

map_fail:
	rc = err_set(err, rc, -1, -1, -1, "%s: marking free blocks in the extent map failed",
		     type);
out:
	free(buf);
	free(k.v);
	return rc;
}
