/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Internal to the ext2/3/4 reader (ext.c, ext_sb.c, ext_map.c). */
#ifndef IMAGO_FS_EXT_INT_H
#define IMAGO_FS_EXT_INT_H

#include <stdint.h>

#include <ext2fs/ext2fs.h>

#include "extent/extent_map.h"
#include "fs/fs.h"
#include "io/region.h"

#define EXT_SB_OFFSET 1024
#define EXT_SB_SIZE 1024

/* Most block groups the reader takes on. What it holds per group: libext2fs's copy of
 * the descriptor (32 or 64 bytes) and at most six metadata extents of 16 bytes (ext_map.c)
 * -- under 170 MiB at this bound, inside FS_MEM_LIMIT. With 4 KiB blocks and 32768 blocks
 * per group that is a 128 TiB filesystem; a larger one gets -E2BIG (kept USED). */
#define EXT_MAX_GROUPS (1u << 20)

/* The superblock fields the reader uses, decoded (little-endian on disk) and checked by
 * ext_sb_decode(). */
struct ext_sb {
	uint32_t compat, incompat, ro_compat;
	uint32_t block_size;         /* 1024 .. 65536 */
	uint32_t cluster_ratio;      /* blocks per cluster: 1, or 2^n with bigalloc */
	uint64_t blocks_count;
	uint64_t free_blocks;        /* the superblock's count (may lag the bitmaps) */
	uint32_t first_data_block;   /* 1 with 1 KiB blocks (block 0 is the boot block), else 0 */
	uint32_t blocks_per_group;
	uint32_t clusters_per_group;
	uint32_t inodes_per_group;
	uint64_t groups;
	uint32_t desc_size;
	uint64_t desc_blocks;
	uint16_t state;              /* EXT2_VALID_FS, EXT2_ERROR_FS, EXT3_ORPHAN_FS... */
	uint8_t uuid[16];
	char label[17];              /* s_volume_name, NUL-terminated */
};

/* Decode and check the 1024-byte superblock raw. 0, or -EBADMSG with why[] saying which
 * field is wrong; -EOPNOTSUPP for an external journal device (not a filesystem). */
int ext_sb_decode(const uint8_t raw[EXT_SB_SIZE], struct ext_sb *sb, char *why, size_t why_len);

/* "ext2", "ext3" or "ext4", named by features the way libblkid does. */
const char *ext_sb_type(const struct ext_sb *sb);

/* Read every group's block bitmap of the opened fs and mark FREE in m the bytes of the
 * clusters it says are free, except the filesystem's own metadata (superblocks, group
 * descriptors, bitmaps, inode tables), which stays USED whatever the bitmap says.
 * *free_blocks gets the number of blocks the bitmaps call free. 0, or a negative errno
 * with err set. */
int ext_map_free(ext2_filsys fs, const struct ext_sb *sb, const struct region *r,
		 struct extent_map *m, uint64_t *free_blocks, struct imago_err *err);

/* A negative errno for a libext2fs error code, and a short text for messages. */
int ext_errcode_errno(errcode_t e, io_channel io);
const char *ext_errcode_text(errcode_t e);

#endif
