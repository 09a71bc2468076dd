// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * The ext2/3/4 superblock, decoded and checked before libext2fs is given the filesystem.
 *
 * Done by hand (a few dozen field checks) rather than by ext2fs_open2 for two reasons:
 * probe must be cheap (one 1 KiB read, no allocation), and read_map must know the number
 * of block groups and the filesystem size *before* libext2fs allocates the group
 * descriptor table, so that memory stays bounded and a filesystem larger than its region
 * (a truncated image) is refused cleanly. The checks follow what the kernel
 * (fs/ext4/super.c, ext4_fill_super) and libext2fs (openfs.c) refuse.
 */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fs/ext_int.h"

static int bad(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
	return -EBADMSG;
}

static int is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

int ext_sb_decode(const uint8_t raw[EXT_SB_SIZE], struct ext_sb *sb, char *why, size_t why_len)
{
	struct ext2_super_block s;
	memcpy(&s, raw, sizeof(s));
	memset(sb, 0, sizeof(*sb));

	if (le16toh(s.s_magic) != EXT2_SUPER_MAGIC)
		return bad(why, why_len, "no ext2/3/4 superblock magic (0xEF53) at byte 1080");
	uint32_t rev = le32toh(s.s_rev_level);
	if (rev > EXT2_DYNAMIC_REV)
		return bad(why, why_len, "superblock revision %u is unknown", rev);

	sb->compat = le32toh(s.s_feature_compat);
	sb->incompat = le32toh(s.s_feature_incompat);
	sb->ro_compat = le32toh(s.s_feature_ro_compat);
	if (rev == EXT2_GOOD_OLD_REV)
		sb->compat = sb->incompat = sb->ro_compat = 0;
	if (sb->incompat & EXT3_FEATURE_INCOMPAT_JOURNAL_DEV) {
		snprintf(why, why_len, "an external ext3/ext4 journal device, not a filesystem");
		return -EOPNOTSUPP;
	}

	uint32_t log_bs = le32toh(s.s_log_block_size);
	if (log_bs > EXT2_MAX_BLOCK_LOG_SIZE - EXT2_MIN_BLOCK_LOG_SIZE)
		return bad(why, why_len, "block size 2^(10+%u) is out of range (1 KiB to 64 KiB)",
			   log_bs);
	sb->block_size = 1024u << log_bs;

	uint32_t log_cs = le32toh(s.s_log_cluster_size);
	if (sb->ro_compat & EXT4_FEATURE_RO_COMPAT_BIGALLOC) {
		/* The kernel's bound: clusters up to 2^30 bytes (EXT4_MAX_CLUSTER_LOG_SIZE). */
		if (log_cs < log_bs || log_cs > 30 - EXT2_MIN_BLOCK_LOG_SIZE)
			return bad(why, why_len, "bigalloc cluster size 2^(10+%u) does not fit block "
				   "size %u", log_cs, sb->block_size);
	} else if (log_cs != log_bs) {
		return bad(why, why_len, "cluster size 2^(10+%u) differs from block size %u "
			   "without bigalloc", log_cs, sb->block_size);
	}
	sb->cluster_ratio = 1u << (log_cs - log_bs);

	sb->blocks_count = le32toh(s.s_blocks_count);
	sb->free_blocks = le32toh(s.s_free_blocks_count);
	if (sb->incompat & EXT4_FEATURE_INCOMPAT_64BIT) {
		sb->blocks_count |= (uint64_t)le32toh(s.s_blocks_count_hi) << 32;
		sb->free_blocks |= (uint64_t)le32toh(s.s_free_blocks_hi) << 32;
	}
	/* Block 0 holds the boot block and the superblock; with 1 KiB blocks the superblock is
	 * block 1 and groups start there, except under bigalloc, where the kernel requires
	 * groups to start at block 0 (clusters are aligned on block 0). */
	sb->first_data_block = le32toh(s.s_first_data_block);
	if (sb->first_data_block >
	    (sb->block_size == 1024 && sb->cluster_ratio == 1 ? 1u : 0u))
		return bad(why, why_len, "first data block %u is impossible with %u-byte blocks%s",
			   sb->first_data_block, sb->block_size,
			   sb->cluster_ratio > 1 ? " and bigalloc" : "");
	if (sb->blocks_count <= sb->first_data_block)
		return bad(why, why_len, "block count %llu is not above the first data block %u",
			   (unsigned long long)sb->blocks_count, sb->first_data_block);
	if (sb->blocks_count > UINT64_MAX / sb->block_size)
		return bad(why, why_len, "block count %llu overflows a byte size",
			   (unsigned long long)sb->blocks_count);

	/* Groups: a cluster bitmap of one block each, clusters_per_group a multiple of 8 so
	 * the bitmap is whole bytes (mke2fs makes it so; libext2fs reads cpg/8 bytes). */
	sb->blocks_per_group = le32toh(s.s_blocks_per_group);
	sb->clusters_per_group = le32toh(s.s_clusters_per_group);
	if (!(sb->ro_compat & EXT4_FEATURE_RO_COMPAT_BIGALLOC))
		sb->clusters_per_group = sb->blocks_per_group;
	if (sb->clusters_per_group < 8 || sb->clusters_per_group % 8 ||
	    sb->clusters_per_group > 8 * sb->block_size)
		return bad(why, why_len, "%u clusters per group do not fill a %u-byte bitmap block "
			   "in whole bytes", sb->clusters_per_group, sb->block_size);
	/* mke2fs's lower bound. It also bounds the work: one bitmap block read per group is
	 * at most 1/256 of the filesystem's size, whatever a damaged superblock says. */
	if (sb->blocks_per_group < 256)
		return bad(why, why_len, "%u blocks per group, fewer than mke2fs makes (256)",
			   sb->blocks_per_group);
	if ((uint64_t)sb->clusters_per_group * sb->cluster_ratio != sb->blocks_per_group)
		return bad(why, why_len, "%u blocks per group is not %u clusters of %u blocks",
			   sb->blocks_per_group, sb->clusters_per_group, sb->cluster_ratio);

	sb->groups = (sb->blocks_count - sb->first_data_block + sb->blocks_per_group - 1) /
		     sb->blocks_per_group;
	if (sb->groups > UINT32_MAX)  /* inodes_count below is 32-bit: cannot be */
		return bad(why, why_len, "%llu block groups are more than ext4 can number",
			   (unsigned long long)sb->groups);
	sb->inodes_per_group = le32toh(s.s_inodes_per_group);
	if (sb->inodes_per_group == 0 || sb->inodes_per_group > 8 * sb->block_size)
		return bad(why, why_len, "%u inodes per group do not fit an inode bitmap block",
			   sb->inodes_per_group);
	if (sb->groups * sb->inodes_per_group != le32toh(s.s_inodes_count))
		return bad(why, why_len, "inode count %u is not %llu groups x %u inodes",
			   le32toh(s.s_inodes_count), (unsigned long long)sb->groups,
			   sb->inodes_per_group);
	uint32_t inode_size = rev == EXT2_GOOD_OLD_REV ? EXT2_GOOD_OLD_INODE_SIZE :
			      le16toh(s.s_inode_size);
	if (inode_size < EXT2_GOOD_OLD_INODE_SIZE || inode_size > sb->block_size ||
	    !is_pow2(inode_size))
		return bad(why, why_len, "inode size %u is invalid", inode_size);
	uint64_t itable_blocks = ((uint64_t)sb->inodes_per_group * inode_size +
				  sb->block_size - 1) / sb->block_size;
	if (itable_blocks >= sb->blocks_per_group)
		return bad(why, why_len, "an inode table of %llu blocks does not fit a group of %u "
			   "blocks", (unsigned long long)itable_blocks, sb->blocks_per_group);

	if (sb->incompat & EXT4_FEATURE_INCOMPAT_64BIT) {
		sb->desc_size = le16toh(s.s_desc_size);
		if (sb->desc_size < EXT2_MIN_DESC_SIZE_64BIT || sb->desc_size > EXT2_MAX_DESC_SIZE ||
		    !is_pow2(sb->desc_size) || sb->desc_size > sb->block_size)
			return bad(why, why_len, "group descriptor size %u is invalid", sb->desc_size);
	} else {
		sb->desc_size = EXT2_MIN_DESC_SIZE;
	}
	uint32_t per_block = sb->block_size / sb->desc_size;
	sb->desc_blocks = (sb->groups + per_block - 1) / per_block;
	/* The kernel's bound ("Number of reserved GDT blocks insanely large"). */
	if (le16toh(s.s_reserved_gdt_blocks) > sb->block_size / 4)
		return bad(why, why_len, "%u reserved GDT blocks is insanely large",
			   le16toh(s.s_reserved_gdt_blocks));
	if ((sb->incompat & EXT2_FEATURE_INCOMPAT_META_BG) &&
	    le32toh(s.s_first_meta_bg) > sb->desc_blocks)
		return bad(why, why_len, "first meta block group %u is past the %llu descriptor "
			   "blocks", le32toh(s.s_first_meta_bg),
			   (unsigned long long)sb->desc_blocks);

	sb->state = le16toh(s.s_state);
	memcpy(sb->uuid, s.s_uuid, sizeof(sb->uuid));
	memcpy(sb->label, s.s_volume_name, 16);
	sb->label[16] = '\0';
	return 0;
}

/* libblkid's naming (superblocks/ext.c): ext2 has no journal and only the features ext2
 * knew; ext3 has a journal and only the features ext3 knew; anything else is ext4. */
#define RO_COMPAT_BTREE_DIR 0x0004  /* never used; ext2_fs.h comments it out */
#define EXT2_KNOWN_RO (EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER | EXT2_FEATURE_RO_COMPAT_LARGE_FILE | \
		       RO_COMPAT_BTREE_DIR)
#define EXT2_KNOWN_INCOMPAT (EXT2_FEATURE_INCOMPAT_FILETYPE | EXT2_FEATURE_INCOMPAT_META_BG)
#define EXT3_KNOWN_INCOMPAT (EXT2_KNOWN_INCOMPAT | EXT3_FEATURE_INCOMPAT_RECOVER)

const char *ext_sb_type(const struct ext_sb *sb)
{
	int journal = !!(sb->compat & EXT3_FEATURE_COMPAT_HAS_JOURNAL);
	if (!(sb->ro_compat & ~EXT2_KNOWN_RO)) {
		if (!journal && !(sb->incompat & ~EXT2_KNOWN_INCOMPAT))
			return "ext2";
		if (journal && !(sb->incompat & ~EXT3_KNOWN_INCOMPAT))
			return "ext3";
	}
	return "ext4";
}
