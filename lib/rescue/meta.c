// SPDX-License-Identifier: GPL-3.0-or-later
/* ext2/3/4 metadata locations for a metadata-first rescue (meta.h), from libext2fs. */
#include <errno.h>
#include <stdlib.h>

#include <ext2fs/ext2fs.h>

#include "fs/ext_io.h"
#include "rescue/meta.h"

static int push(struct rescue_range **v, size_t *n, size_t *cap, uint64_t off, uint64_t len)
{
	if (!len)
		return 0;
	if (*n && (*v)[*n - 1].offset + (*v)[*n - 1].length == off) {
		(*v)[*n - 1].length += len;   /* contiguous with the last one (flex_bg) */
		return 0;
	}
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct rescue_range *nv = realloc(*v, c * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = (struct rescue_range){off, len};
	return 1;
}

struct jctx {
	struct rescue_range **v;
	size_t *n, *cap;
	uint64_t base, bs;
	int err;
};

static int journal_block(ext2_filsys fs, blk64_t *b, e2_blkcnt_t cnt, blk64_t ref, int refoff,
			 void *priv)
{
	struct jctx *j = priv;
	if (push(j->v, j->n, j->cap, j->base + *b * j->bs, j->bs) < 0) {
		j->err = -ENOMEM;
		return BLOCK_ABORT;
	}
	return 0;
}

int rescue_ext_metadata(const struct region *r, struct rescue_range **v, size_t *n, size_t *cap,
			size_t max_add)
{
	uint8_t magic[2];
	if (region_pread(r, magic, 2, 1024 + 56) != 2 || magic[0] != 0x53 || magic[1] != 0xEF)
		return 0;
	char name[EXT_IO_NAME_MAX];
	ext_io_name(r, name);
	ext2_filsys fs = NULL;
	if (ext2fs_open2(name, NULL, EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP, 0, 0,
			 &ext_region_io_manager, &fs))
		return 0;
	size_t start = *n;
	uint64_t bs = fs->blocksize, base = r->base;
	int rc = 0;
	for (dgrp_t g = 0; g < fs->group_desc_count && rc >= 0 && *n - start < max_add; g++) {
		blk64_t sb = 0, old_desc = 0, new_desc = 0;
		blk_t used = 0;
		ext2fs_super_and_bgd_loc2(fs, g, &sb, &old_desc, &new_desc, &used);
		if (g == 0)
			rc = push(v, n, cap, base, 1024 + 1024);   /* boot block and superblock */
		if (rc >= 0 && sb)
			rc = push(v, n, cap, base + sb * bs, bs);
		if (rc >= 0 && old_desc)
			rc = push(v, n, cap, base + old_desc * bs,
				  (uint64_t)(fs->desc_blocks + fs->super->s_reserved_gdt_blocks) * bs);
		if (rc >= 0 && new_desc)
			rc = push(v, n, cap, base + new_desc * bs, bs);
		if (rc >= 0)
			rc = push(v, n, cap, base + ext2fs_block_bitmap_loc(fs, g) * bs, bs);
		if (rc >= 0)
			rc = push(v, n, cap, base + ext2fs_inode_bitmap_loc(fs, g) * bs, bs);
		if (rc >= 0)
			rc = push(v, n, cap, base + ext2fs_inode_table_loc(fs, g) * bs,
				  (uint64_t)fs->inode_blocks_per_group * bs);
	}
	/* the journal: replaying it may be what makes the filesystem consistent */
	if (rc >= 0 && ext2fs_has_feature_journal(fs->super) && fs->super->s_journal_inum &&
	    *n - start < max_add) {
		struct jctx j = {v, n, cap, base, bs, 0};
		ext2fs_block_iterate3(fs, fs->super->s_journal_inum, BLOCK_FLAG_READ_ONLY, NULL,
				      journal_block, &j);
		if (j.err)
			rc = j.err;
	}
	ext2fs_close_free(&fs);
	if (rc < 0)
		return rc;
	/* clip to the region (a damaged descriptor may point anywhere) */
	size_t w = start;
	for (size_t i = start; i < *n; i++) {
		struct rescue_range e = (*v)[i];
		if (e.offset < base || e.offset >= base + r->size)
			continue;
		if (e.length > base + r->size - e.offset)
			e.length = base + r->size - e.offset;
		(*v)[w++] = e;
	}
	*n = w;
	return (int)(w - start);
}
