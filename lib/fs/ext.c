// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * The ext2/ext3/ext4 driver (fs.h): probe, facts, and the FREE map from the block
 * bitmaps, read through libext2fs over our region (ext_io.c).
 *
 *   ext_sb.c   the superblock, decoded and checked before libext2fs sees it
 *   ext_map.c  group descriptors and block bitmaps, one group at a time, to FREE ranges
 *   ext_io.c   the libext2fs I/O manager over a struct region
 *
 * A filesystem that is not clean -- the journal needs recovery (needs_recovery), it was
 * not cleanly unmounted (state lacks VALID: mounted, or crashed, without a journal), or it
 * recorded errors (state has ERROR_FS) -- is reported in facts.flags, and the map keeps
 * every byte USED: its bitmaps are not to be trusted. Blocks allocated by transactions
 * still in the journal are marked in the journal's copy of the bitmaps, not on disk;
 * without a journal, the kernel writes bitmaps back lazily and e2fsck rebuilds them after
 * a crash. Marking FREE from such bitmaps would drop recently written data from the image
 * once the journal is replayed or e2fsck has run. (fsfreeze clears needs_recovery after
 * flushing the journal, so a frozen mounted ext3/ext4 is read normally.)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fs/ext_int.h"
#include "fs/ext_io.h"
#include "util/err.h"

const char *ext_errcode_text(errcode_t e)
{
	switch (e) {
	case EXT2_ET_BAD_MAGIC: return "bad superblock magic";
	case EXT2_ET_CORRUPT_SUPERBLOCK: return "the superblock is corrupt";
	case EXT2_ET_SB_CSUM_INVALID: return "superblock checksum mismatch";
	case EXT2_ET_UNKNOWN_CSUM: return "unknown metadata checksum type";
	case EXT2_ET_BAD_DESC_SIZE: return "bad group descriptor size";
	case EXT2_ET_REV_TOO_HIGH: return "filesystem revision too high";
	case EXT2_ET_UNSUPP_FEATURE: return "unsupported incompatible feature";
	case EXT2_ET_RO_UNSUPP_FEATURE: return "unsupported read-only feature";
	case EXT2_ET_SHORT_READ: return "a block lies past the end of the region";
	case EXT2_ET_LLSEEK_FAILED: return "block number out of range";
	case EXT2_ET_NO_MEMORY: return "out of memory";
	case EXT2_ET_UNEXPECTED_BLOCK_SIZE: return "unexpected block size";
	case EXT2_ET_CANT_USE_LEGACY_BITMAPS: return "needs 64-bit bitmaps";
	case EXT2_ET_BAD_DEVICE_NAME: return "bad device name";
	case EIO: return "input/output error";
	case ENOMEM: return "out of memory";
	case EROFS: return "read-only";
	default: return "libext2fs error";
	}
}

int ext_errcode_errno(errcode_t e, io_channel io)
{
	int last = ext_io_last_errno(io);
	if (last < 0)  /* the device failed a read: that, not the metadata, is the cause */
		return last == -ENOMEM ? -ENOMEM : -EIO;
	switch (e) {
	case EXT2_ET_NO_MEMORY:
	case ENOMEM:
		return -ENOMEM;
	case EIO:
		return -EIO;
	case EXT2_ET_UNSUPP_FEATURE:
	case EXT2_ET_RO_UNSUPP_FEATURE:
		return -EOPNOTSUPP;
	default:
		return -EBADMSG;
	}
}

static int ext_probe(const struct region *r)
{
	uint8_t raw[EXT_SB_SIZE];
	struct ext_sb sb;
	char why[200];
	if (region_read_exact(r, raw, sizeof(raw), EXT_SB_OFFSET) < 0)
		return 0;
	return ext_sb_decode(raw, &sb, why, sizeof(why)) == 0 ? 100 : 0;
}

static void format_uuid(const uint8_t u[16], char *out, size_t len)
{
	static const uint8_t zero[16];
	if (!memcmp(u, zero, 16)) {  /* libblkid reports no UUID for an all-zero one */
		out[0] = '\0';
		return;
	}
	snprintf(out, len,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
		 u[12], u[13], u[14], u[15]);
}

/* The label as printable text: control bytes (which would break a line-oriented listing)
 * become '?'; other bytes are kept (ext4 labels are UTF-8 by convention). */
static void copy_label(const char *src, char *out, size_t len)
{
	size_t i = 0;
	for (; src[i] && i + 1 < len; i++) {
		unsigned char c = (unsigned char)src[i];
		out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[i] = '\0';
}

static void add_state(char *state, size_t len, const char *what)
{
	size_t n = strlen(state);
	snprintf(state + n, len - n, "%s%s", n ? "; " : "", what);
}

/* Flags from the superblock; state gets what they mean. */
static unsigned clean_flags(const struct ext_sb *sb, char *state, size_t len)
{
	unsigned flags = 0;
	state[0] = '\0';
	if (sb->incompat & EXT3_FEATURE_INCOMPAT_RECOVER) {
		flags |= FS_NEEDS_RECOVERY;
		add_state(state, len, "journal needs recovery");
	}
	if (!(sb->state & EXT2_VALID_FS)) {
		flags |= FS_DIRTY;
		add_state(state, len, "not cleanly unmounted");
	}
	if (sb->state & EXT2_ERROR_FS) {
		flags |= FS_ERRORS;
		add_state(state, len, "errors recorded");
	}
	if (flags)
		add_state(state, len, "bitmaps not trusted: all blocks kept");
	return flags;
}

static int ext_read_map(const struct region *r, struct extent_map *m, struct fs_facts *facts,
			struct imago_err *err)
{
	uint8_t raw[EXT_SB_SIZE];
	struct ext_sb sb;
	char why[200];

	int rc = region_read_exact(r, raw, sizeof(raw), EXT_SB_OFFSET);
	if (rc < 0)
		return err_set(err, rc, EXT_SB_OFFSET, -1, -1, "ext superblock at byte %d: %s",
			       EXT_SB_OFFSET, rc == -EIO ? "read error" : "past the end of the region");
	rc = ext_sb_decode(raw, &sb, why, sizeof(why));
	if (rc < 0)
		return err_set(err, rc, EXT_SB_OFFSET, -1, -1, "ext superblock at byte %d: %s",
			       EXT_SB_OFFSET, why);
	const char *type = ext_sb_type(&sb);

	memset(facts, 0, sizeof(*facts));
	snprintf(facts->type, sizeof(facts->type), "%s", type);
	copy_label(sb.label, facts->label, sizeof(facts->label));
	format_uuid(sb.uuid, facts->uuid, sizeof(facts->uuid));
	facts->block_size = sb.block_size;
	facts->fs_size = sb.blocks_count * sb.block_size;  /* no overflow: ext_sb_decode */
	facts->freezable = 1;

	if (facts->fs_size > r->size)
		return err_set(err, -EBADMSG, EXT_SB_OFFSET, -1, -1,
			       "%s superblock at byte %d: the filesystem has %" PRIu64 " blocks of "
			       "%u bytes (%" PRIu64 " bytes), more than its region of %" PRIu64
			       " bytes: truncated image or wrong partition size", type,
			       EXT_SB_OFFSET, sb.blocks_count, sb.block_size, facts->fs_size,
			       r->size);
	uint32_t unknown = sb.incompat & ~(uint32_t)EXT2_LIB_FEATURE_INCOMPAT_SUPP;
	if (unknown)
		return err_set(err, -EOPNOTSUPP, EXT_SB_OFFSET, -1, -1,
			       "%s superblock at byte %d: incompatible features 0x%x unknown to "
			       "libext2fs", type, EXT_SB_OFFSET, unknown);

	facts->flags = clean_flags(&sb, facts->state, sizeof(facts->state));
	if (facts->flags) {
		/* Keep it all USED (see the top of the file); the superblock's count is the only
		 * one there is without trusting the bitmaps. */
		uint64_t free_blocks = sb.free_blocks < sb.blocks_count ? sb.free_blocks :
				       sb.blocks_count;
		facts->used_bytes = (sb.blocks_count - free_blocks) * sb.block_size;
		return 0;
	}

	if (sb.groups > EXT_MAX_GROUPS)
		return err_set(err, -E2BIG, EXT_SB_OFFSET, -1, -1,
			       "%s superblock at byte %d: %" PRIu64 " block groups, more than the %u "
			       "this reader holds in memory", type, EXT_SB_OFFSET, sb.groups,
			       EXT_MAX_GROUPS);

	char name[EXT_IO_NAME_MAX];
	ext_io_name(r, name);
	ext2_filsys fs = NULL;
	/* NOFREE_ON_ERROR: on failure fs comes back (half set up) so that the channel's
	 * last read error can tell a device error from damaged metadata; freed here. */
	errcode_t e = ext2fs_open2(name, NULL, EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP |
				   EXT2_FLAG_NOFREE_ON_ERROR, 0, 0, &ext_region_io_manager, &fs);
	if (e) {
		rc = err_set(err, ext_errcode_errno(e, fs ? fs->io : NULL), EXT_SB_OFFSET, -1, -1,
			     "%s at byte %d: libext2fs cannot open it: %s (%ld)", type,
			     EXT_SB_OFFSET, ext_errcode_text(e), (long)e);
		if (fs)
			ext2fs_free(fs);
		return rc;
	}

	uint64_t free_blocks = 0;
	rc = ext_map_free(fs, &sb, r, m, &free_blocks, err);
	ext2fs_free(fs);
	if (rc < 0)
		return rc;
	/* used_bytes from the bitmaps. On a cleanly unmounted filesystem the superblock's free
	 * count agrees with them (the kernel writes it from its counters at unmount, e2fsck
	 * recomputes it), but the kernel updates it lazily, so where the two differ the
	 * bitmaps -- which decide what is FREE -- are the truth. */
	facts->used_bytes = (sb.blocks_count - free_blocks) * sb.block_size;
	return 0;
}

const struct fs_driver fs_ext_driver = {
	.name = "ext",
	.probe = ext_probe,
	.read_map = ext_read_map,
};
