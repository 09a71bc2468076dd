// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * XFS allocation reader (fs.h).
 *
 * Written by hand: xfsprogs has no library with a stable, packaged API (libxfs is built
 * into each xfsprogs program; partclone compiles its sources in), and what we need is
 * small: the superblock, each allocation group's AGF and AGFL, and the by-block-number
 * free-space B+tree (bnobt). Layouts follow xfsprogs' libxfs/xfs_format.h and the kernel's
 * Documentation/filesystems/xfs (on-disk format); the log-state check follows the
 * kernel's log recovery (xfs_log_recover.c: find the head, the last record, an unmount
 * record). CRC32C comes from libext2fs (already linked), not from a hand-written table.
 *
 * FREE is exactly the free extents the bnobt of each AG lists (their sum must equal the
 * AGF's free-block count). Everything else stays USED: AG headers (superblock, AGF, AGI,
 * AGFL sectors), the AGFL's reserved blocks (XFS counts them free, but they are set aside
 * for btree splits: kept, to be safe), every btree block, inode chunks, the internal log,
 * file data, and everything past dblocks.
 *
 * Validation: v5 (CRC) superblocks, AGFs, AGFLs and bnobt blocks must carry a correct
 * CRC, the filesystem's UUID and their own location; records must be in order, inside
 * their AG, clear of the AG headers and of each other. The walk is bounded: depth by the
 * AGF's level (at most XFS_MAX_LEVELS), each record strictly after the previous one (a
 * block reached twice is caught by that), blocks visited per AG at most the AG's length.
 */
#include "fs/fs.h"

#include <errno.h>
#include <ext2fs/ext2fs.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

#define XFS_SB_MAGIC 0x58465342u       /* "XFSB" */
#define XFS_AGF_MAGIC 0x58414746u      /* "XAGF" */
#define XFS_AGFL_MAGIC 0x5841464Cu     /* "XAFL" */
#define XFS_ABTB_MAGIC 0x41425442u     /* "ABTB": bnobt block, v4 */
#define XFS_ABTB_CRC_MAGIC 0x41423342u /* "AB3B": bnobt block, v5 */
#define XFS_MAX_LEVELS 9               /* deepest short-form btree we accept */
#define XFS_MIN_AG_BLOCKS 64
#define XFS_NULL_AGBLOCK 0xFFFFFFFFu

/* Incompatible features this reader knows (xfs_format.h XFS_SB_FEAT_INCOMPAT_*): ftype,
 * sparse inodes, meta UUID, bigtime, needsrepair, nrext64, exchange-range, parent
 * pointers. None of them changes the AGF or the bnobt. Others (metadir, zoned, ...) might:
 * refused. */
#define XFS_INCOMPAT_FTYPE 0x1u
#define XFS_INCOMPAT_META_UUID 0x4u
#define XFS_INCOMPAT_NEEDSREPAIR 0x10u
#define XFS_INCOMPAT_KNOWN 0xFFu

/* Log (xfs_log_format.h). */
#define XLOG_HEADER_MAGIC 0xFEEDBABEu
#define XLOG_HEADER_CYCLE_SIZE (32u * 1024u)
#define XLOG_UNMOUNT_TRANS 0x20u
/* How far before the head torn writes are looked for: 8 in-core logs of 256 KiB. */
#define XLOG_VERIFY_WINDOW (8u * 256u * 1024u / 512u)
/* How far back from the head the last record header may be: one record plus header. */
#define XLOG_RECORD_SCAN (256u * 1024u / 512u + 64u + 8u)

struct xfs_sb {
	uint32_t bs, sectsize, agblocks, agcount;
	uint64_t dblocks;
	uint8_t agblklog;
	int v5;
	uint32_t incompat;
	uint8_t uuid[16], meta_uuid[16];
	char fname[13];
	uint64_t log_off;  /* byte offset of the internal log, 0 if external */
	uint64_t log_len;
	int logv2;
};

struct xfs_walk {
	const struct region *r;
	const struct xfs_sb *sb;
	struct extent_map *m;
	struct imago_err *err;
	uint32_t agno, aglen, hdr_blocks;
	uint64_t ag_off;
	uint8_t *buf[XFS_MAX_LEVELS];  /* one block buffer per level */
	uint32_t *visited;             /* btree blocks of this AG, for the overlap check */
	size_t nvisited, cvisited;
	uint64_t prev_end;             /* end (agbno) of the previous free extent */
	uint64_t free_blocks;          /* sum of the records */
	size_t runs_cap;
};

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static unsigned ilog2_32(uint32_t v)
{
	unsigned l = 0;
	while (v >>= 1)
		l++;
	return l;
}

/* XFS metadata CRC: CRC32C (seed ~0, inverted) of len bytes with the 4-byte CRC field at
 * crc_off counted as zeros; stored little-endian. */
static int xfs_crc_ok(const uint8_t *buf, size_t len, size_t crc_off)
{
	static const uint8_t zero[4];
	uint32_t c = ext2fs_crc32c_le(~0u, buf, crc_off);
	c = ext2fs_crc32c_le(c, zero, 4);
	c = ext2fs_crc32c_le(c, buf + crc_off + 4, len - crc_off - 4);
	return ~c == le32(buf + crc_off);
}

/* Validate the superblock in b (sectsize bytes when have >= sectsize, else its first
 * `have` bytes: the CRC is then checked by the caller after a full read). */
static int xfs_parse_sb(const uint8_t *b, size_t have, struct xfs_sb *sb, char *why,
			size_t whylen)
{
	memset(sb, 0, sizeof(*sb));
#define BAD(...) do { snprintf(why, whylen, __VA_ARGS__); return -1; } while (0)
	if (be32(b) != XFS_SB_MAGIC)
		BAD("no XFSB magic");
	unsigned version = be16(b + 100) & 0xF;
	if (version != 4 && version != 5)
		BAD("version %u (4 or 5 expected)", version);
	sb->v5 = version == 5;
	sb->bs = be32(b + 4);
	if (!pow2(sb->bs) || sb->bs < 512 || sb->bs > 65536 || b[120] != ilog2_32(sb->bs))
		BAD("block size %" PRIu32 " (log %u) is not a power of two in 512..65536", sb->bs,
		    b[120]);
	sb->sectsize = be16(b + 102);
	if (!pow2(sb->sectsize) || sb->sectsize < 512 || sb->sectsize > 32768 ||
	    b[121] != ilog2_32(sb->sectsize) || sb->sectsize > sb->bs)
		BAD("sector size %" PRIu32 " is not a power of two in 512..min(32768, block size)",
		    sb->sectsize);
	sb->agblocks = be32(b + 84);
	sb->agcount = be32(b + 88);
	sb->agblklog = b[124];
	if (sb->agblocks < XFS_MIN_AG_BLOCKS || sb->agblklog != ilog2_32(sb->agblocks - 1) + 1)
		BAD("AG size %" PRIu32 " blocks (log %u) is invalid", sb->agblocks, sb->agblklog);
	if (!sb->agcount)
		BAD("no allocation group");
	/* AG headers take the first four sectors of an AG. */
	if ((uint64_t)4 * sb->sectsize > (uint64_t)sb->agblocks * sb->bs)
		BAD("AG of %" PRIu32 " blocks cannot hold its headers", sb->agblocks);
	sb->dblocks = be64(b + 8);
	uint64_t full = (uint64_t)(sb->agcount - 1) * sb->agblocks;
	if (sb->dblocks < full + XFS_MIN_AG_BLOCKS ||
	    sb->dblocks > full + sb->agblocks)
		BAD("%" PRIu64 " blocks do not fit %" PRIu32 " AGs of %" PRIu32 " blocks",
		    sb->dblocks, sb->agcount, sb->agblocks);
	if (sb->dblocks > UINT64_MAX / sb->bs)
		BAD("%" PRIu64 " blocks overflow", sb->dblocks);
	if (b[126])
		BAD("mkfs did not finish (sb_inprogress set)");
	memcpy(sb->uuid, b + 32, 16);
	memcpy(sb->meta_uuid, b + 32, 16);
	if (sb->v5) {
		if (have < 264)
			BAD("short superblock");
		sb->incompat = be32(b + 216);
		if (sb->incompat & ~XFS_INCOMPAT_KNOWN)
			BAD("unknown incompatible features 0x%" PRIx32,
			    sb->incompat & ~XFS_INCOMPAT_KNOWN);
		if (sb->incompat & XFS_INCOMPAT_META_UUID)
			memcpy(sb->meta_uuid, b + 248, 16);
		if (have >= sb->sectsize && !xfs_crc_ok(b, sb->sectsize, 224))
			BAD("superblock CRC mismatch");
	}
	memcpy(sb->fname, b + 108, 12);
	sb->fname[12] = '\0';
	/* The internal log: sb_logstart is an "fsblock" (AG number above agblklog bits). */
	uint64_t logstart = be64(b + 48);
	uint32_t logblocks = be32(b + 96);
	if (logstart) {
		uint64_t agno = logstart >> sb->agblklog;
		uint64_t agbno = logstart & (((uint64_t)1 << sb->agblklog) - 1);
		uint64_t lin = agno * sb->agblocks + agbno;
		if (agno >= sb->agcount || agbno >= sb->agblocks || !logblocks ||
		    lin + logblocks > sb->dblocks)
			BAD("internal log at block %" PRIu64 " (%" PRIu32 " blocks) is outside the "
			    "filesystem", logstart, logblocks);
		sb->log_off = lin * sb->bs;
		sb->log_len = (uint64_t)logblocks * sb->bs;
	}
	/* Version-2 log: XFS_SB_VERSION_LOGV2BIT (v5 always has it). */
	sb->logv2 = sb->v5 || (be16(b + 100) & 0x0400);
#undef BAD
	return 0;
}

static int xfs_probe(const struct region *r)
{
	uint8_t b[512];
	struct xfs_sb sb;
	char why[160];
	if (region_read_exact(r, b, sizeof(b), 0) < 0 || be32(b) != XFS_SB_MAGIC)
		return 0;
	if (xfs_parse_sb(b, sizeof(b), &sb, why, sizeof(why)) < 0)
		return 0;
	if (sb.v5 && sb.sectsize > sizeof(b)) {
		uint8_t *full = malloc(sb.sectsize);
		if (!full)
			return 0;
		int ok = region_read_exact(r, full, sb.sectsize, 0) == 0 &&
			 xfs_crc_ok(full, sb.sectsize, 224);
		free(full);
		if (!ok)
			return 0;
	}
	return 90;
}

#define WERR(w, code, at, ...) \
	err_set((w)->err, (code), (int64_t)((w)->r->base + (at)), -1, -1, __VA_ARGS__)

/* Read AG block agbno of the AG being walked into buf. */
static int xfs_read_block(struct xfs_walk *w, uint32_t agbno, uint8_t *buf, const char *what)
{
	uint64_t at = w->ag_off + (uint64_t)agbno * w->sb->bs;
	int rc = region_read_exact(w->r, buf, w->sb->bs, at);
	if (rc < 0)
		return WERR(w, rc, at, "xfs AG %" PRIu32 " %s block %" PRIu32 " at byte %" PRIu64
			    ": %s", w->agno, what, agbno, at, rc == -EIO ? "read error" : "short read");
	return 0;
}

static int xfs_note_visited(struct xfs_walk *w, uint32_t agbno)
{
	if (w->nvisited == w->cvisited) {
		size_t n = w->cvisited ? w->cvisited * 2 : 64;
		if (n > FS_MEM_LIMIT / 4 / sizeof(uint32_t))
			return err_set(w->err, -E2BIG, -1, -1, -1,
				       "xfs AG %" PRIu32 ": free-space btree has too many blocks",
				       w->agno);
		uint32_t *v = realloc(w->visited, n * sizeof(*v));
		if (!v)
			return err_set(w->err, -ENOMEM, -1, -1, -1, "xfs: out of memory");
		w->visited = v;
		w->cvisited = n;
	}
	w->visited[w->nvisited++] = agbno;
	return 0;
}

/* Walk the bnobt subtree at agbno, whose blocks must be at `level`; mark its records. */
static int xfs_walk_bnobt(struct xfs_walk *w, uint32_t agbno, unsigned level, int is_root)
{
	const struct xfs_sb *sb = w->sb;
	uint64_t at = w->ag_off + (uint64_t)agbno * sb->bs;
	if (agbno < w->hdr_blocks || agbno >= w->aglen)
		return WERR(w, -EBADMSG, w->ag_off, "xfs AG %" PRIu32 ": free-space btree block %"
			    PRIu32 " is outside the AG (blocks %" PRIu32 "..%" PRIu32 ")", w->agno,
			    agbno, w->hdr_blocks, w->aglen - 1);
	if (w->nvisited >= w->aglen)
		return WERR(w, -EBADMSG, at, "xfs AG %" PRIu32 ": free-space btree visits more "
			    "blocks than the AG has (a loop?)", w->agno);
	int rc = xfs_note_visited(w, agbno);
	if (rc < 0)
		return rc;
	uint8_t *b = w->buf[level];
	rc = xfs_read_block(w, agbno, b, "free-space btree");
	if (rc < 0)
		return rc;
	size_t hdr = sb->v5 ? 56 : 16;
	uint32_t magic = be32(b);
	if (magic != (sb->v5 ? XFS_ABTB_CRC_MAGIC : XFS_ABTB_MAGIC))
		return WERR(w, -EBADMSG, at, "xfs AG %" PRIu32 " free-space btree block %" PRIu32
			    " at byte %" PRIu64 ": bad magic 0x%08" PRIx32, w->agno, agbno, at, magic);
	if (sb->v5) {
		const char *bad = NULL;
		if (!xfs_crc_ok(b, sb->bs, 52))
			bad = "CRC mismatch";
		else if (be64(b + 16) != at / 512)
			bad = "it says it lives elsewhere (blkno)";
		else if (memcmp(b + 32, sb->meta_uuid, 16))
			bad = "UUID of another filesystem";
		else if (be32(b + 48) != w->agno)
			bad = "owner is another AG";
		if (bad)
			return WERR(w, -EBADMSG, at, "xfs AG %" PRIu32 " free-space btree block %"
				    PRIu32 " at byte %" PRIu64 ": %s", w->agno, agbno, at, bad);
	}
	unsigned blevel = be16(b + 4), numrecs = be16(b + 6);
	if (blevel != level)
		return WERR(w, -EBADMSG, at, "xfs AG %" PRIu32 " free-space btree block %" PRIu32
			    " at byte %" PRIu64 ": level %u, expected %u", w->agno, agbno, at,
			    blevel, level);
	size_t maxrecs = (sb->bs - hdr) / (level ? 12 : 8);
	if (numrecs > maxrecs || (!numrecs && !(is_root && !level)))
		return WERR(w, -EBADMSG, at, "xfs AG %" PRIu32 " free-space btree block %" PRIu32
			    " at byte %" PRIu64 ": %u records (1..%zu expected)", w->agno, agbno,
			    at, numrecs, maxrecs);
	if (level) {
		for (unsigned i = 0; i < numrecs; i++) {
			/* Re-read the pointer each time: the children reuse deeper buffers only. */
			uint32_t child = be32(w->buf[level] + hdr + maxrecs * 8 + (size_t)i * 4);
			rc = xfs_walk_bnobt(w, child, level - 1, 0);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	for (unsigned i = 0; i < numrecs; i++) {
		uint32_t start = be32(b + hdr + (size_t)i * 8);
		uint32_t count = be32(b + hdr + (size_t)i * 8 + 4);
		if (!count || start < w->hdr_blocks || start < w->prev_end ||
		    (uint64_t)start + count > w->aglen)
			return WERR(w, -EBADMSG, at, "xfs AG %" PRIu32 " free-space btree block %"
				    PRIu32 " at byte %" PRIu64 ": record %u (blocks %" PRIu32 "+%"
				    PRIu32 ") is out of order or outside the AG (after block %"
				    PRIu64 ", below %" PRIu32 ")", w->agno, agbno, at, i, start, count,
				    w->prev_end, w->aglen);
		w->prev_end = (uint64_t)start + count;
		w->free_blocks += count;
		rc = extent_map_set(w->m, w->ag_off + (uint64_t)start * sb->bs,
				    (uint64_t)count * sb->bs, IMAGO_FREE);
		if (rc < 0)
			return err_set(w->err, rc, -1, -1, -1, "xfs: cannot mark free extents (%s)",
				       rc == -ENOMEM ? "out of memory" : "bad range");
		if (w->m->n > w->runs_cap)
			return err_set(w->err, -E2BIG, -1, -1, -1, "xfs: more than %zu free extents",
				       w->runs_cap);
	}
	return 0;
}

/* Blocks that must not be free: every bnobt block walked, the AGFL's blocks, the other
 * btree roots the AGF names. */
static int xfs_check_not_free(struct xfs_walk *w, uint32_t agbno, const char *what)
{
	if (agbno >= w->aglen)
		return 0;  /* range-checked where it matters; an absent root reads as NULL */
	uint64_t at = w->ag_off + (uint64_t)agbno * w->sb->bs;
	if (extent_map_range_has(w->m, at, w->sb->bs, IMAGO_FREE))
		return WERR(w, -EBADMSG, at, "xfs AG %" PRIu32 ": %s block %" PRIu32
			    " at byte %" PRIu64 " lies in a free extent", w->agno, what, agbno, at);
	return 0;
}

/* One AG: AGF, AGFL, bnobt. Adds the AG's AGF free/AGFL/btree block counts. */
static int xfs_do_ag(struct xfs_walk *w, uint8_t *sect, uint64_t *agf_free, uint64_t *agf_other)
{
	const struct xfs_sb *sb = w->sb;
	uint64_t agf_at = w->ag_off + sb->sectsize;
	int rc = region_read_exact(w->r, sect, sb->sectsize, agf_at);
	if (rc < 0)
		return WERR(w, rc, agf_at, "xfs AG %" PRIu32 " AGF at byte %" PRIu64 ": %s", w->agno,
			    agf_at, rc == -EIO ? "read error" : "short read");
	const char *bad = NULL;
	if (be32(sect) != XFS_AGF_MAGIC)
		bad = "bad magic";
	else if (be32(sect + 4) != 1)
		bad = "unknown version";
	else if (be32(sect + 8) != w->agno)
		bad = "it belongs to another AG (seqno)";
	else if (be32(sect + 12) != w->aglen)
		bad = "its length disagrees with the superblock";
	else if (sb->v5 && !xfs_crc_ok(sect, sb->sectsize, 216))
		bad = "CRC mismatch";
	else if (sb->v5 && memcmp(sect + 64, sb->meta_uuid, 16))
		bad = "UUID of another filesystem";
	if (bad)
		return WERR(w, -EBADMSG, agf_at, "xfs AG %" PRIu32 " AGF at byte %" PRIu64 ": %s",
			    w->agno, agf_at, bad);
	uint32_t bno_root = be32(sect + 16), bno_level = be32(sect + 28);
	uint32_t cnt_root = be32(sect + 20);
	uint32_t flfirst = be32(sect + 40), fllast = be32(sect + 44), flcount = be32(sect + 48);
	uint32_t freeblks = be32(sect + 52), btreeblks = be32(sect + 60);
	uint32_t refc_root = sb->v5 ? be32(sect + 88) : XFS_NULL_AGBLOCK;
	if (bno_level < 1 || bno_level > XFS_MAX_LEVELS)
		return WERR(w, -EBADMSG, agf_at, "xfs AG %" PRIu32 " AGF at byte %" PRIu64
			    ": free-space btree height %" PRIu32 " (1..%d)", w->agno, agf_at,
			    bno_level, XFS_MAX_LEVELS);
	size_t agfl_hdr = sb->v5 ? 36 : 0;
	size_t agfl_size = (sb->sectsize - agfl_hdr) / 4;
	if (flcount > agfl_size || (flcount && (flfirst >= agfl_size || fllast >= agfl_size)) ||
	    freeblks > w->aglen)
		return WERR(w, -EBADMSG, agf_at, "xfs AG %" PRIu32 " AGF at byte %" PRIu64
			    ": free list %" PRIu32 "..%" PRIu32 " (%" PRIu32 " of %zu) or %" PRIu32
			    " free blocks is impossible", w->agno, agf_at, flfirst, fllast, flcount,
			    agfl_size, freeblks);

	w->prev_end = 0;
	w->free_blocks = 0;
	w->nvisited = 0;
	rc = xfs_walk_bnobt(w, bno_root, bno_level - 1, 1);
	if (rc < 0)
		return rc;
	if (w->free_blocks != freeblks)
		return WERR(w, -EBADMSG, agf_at, "xfs AG %" PRIu32 " AGF at byte %" PRIu64
			    ": %" PRIu32 " free blocks, but its free-space btree lists %" PRIu64,
			    w->agno, agf_at, freeblks, w->free_blocks);
	for (size_t i = 0; i < w->nvisited; i++)
		if ((rc = xfs_check_not_free(w, w->visited[i], "free-space btree")) < 0)
			return rc;
	if ((rc = xfs_check_not_free(w, cnt_root, "by-size btree root")) < 0 ||
	    (rc = xfs_check_not_free(w, refc_root, "refcount btree root")) < 0)
		return rc;

	/* The AGFL: its blocks stay USED (reserved for btree splits); they must not be free. */
	uint64_t agfl_at = w->ag_off + 3ull * sb->sectsize;
	rc = region_read_exact(w->r, sect, sb->sectsize, agfl_at);
	if (rc < 0)
		return WERR(w, rc, agfl_at, "xfs AG %" PRIu32 " AGFL at byte %" PRIu64 ": %s",
			    w->agno, agfl_at, rc == -EIO ? "read error" : "short read");
	if (sb->v5 && (be32(sect) != XFS_AGFL_MAGIC || be32(sect + 4) != w->agno ||
		       memcmp(sect + 8, sb->meta_uuid, 16) || !xfs_crc_ok(sect, sb->sectsize, 32)))
		return WERR(w, -EBADMSG, agfl_at, "xfs AG %" PRIu32 " AGFL at byte %" PRIu64
			    ": bad magic, AG number, UUID or CRC", w->agno, agfl_at);
	for (uint32_t i = 0, k = flfirst; i < flcount; i++, k = (k + 1) % (uint32_t)agfl_size) {
		uint32_t blk = be32(sect + agfl_hdr + (size_t)k * 4);
		if (blk < w->hdr_blocks || blk >= w->aglen)
			return WERR(w, -EBADMSG, agfl_at, "xfs AG %" PRIu32 " AGFL at byte %" PRIu64
				    ": entry %" PRIu32 " is block %" PRIu32 ", outside the AG", w->agno,
				    agfl_at, k, blk);
		if ((rc = xfs_check_not_free(w, blk, "free-list")) < 0)
			return rc;
	}
	*agf_free += freeblks;
	*agf_other += (uint64_t)flcount + btreeblks;
	return 0;
}

/* ---------------------------------------------------------------- log state */

struct xlog {
	const struct region *r;
	uint64_t off;   /* byte offset of the log */
	uint32_t bbs;   /* 512-byte basic blocks */
};

/* The cycle number of basic block n: a record header's h_cycle, else the cycle stamped
 * in the block's first word. */
static int xlog_cycle(const struct xlog *l, uint32_t n, uint32_t *cycle)
{
	uint8_t b[8];
	int rc = region_read_exact(l->r, b, sizeof(b), l->off + (uint64_t)n * 512);
	if (rc < 0)
		return rc;
	*cycle = be32(b) == XLOG_HEADER_MAGIC ? be32(b + 4) : be32(b);
	return 0;
}

/*
 * Does the internal log need recovery? Follows xlog_find_tail(): the head is the first
 * block of the last cycle written (binary search on cycle numbers, then a look back for
 * torn writes); the last record header before it must be an unmount record ending at the
 * head, or the record's tail must equal the head. *dirty = 1 if not clean; *why says
 * what was found. Never marks anything; an unreadable log is reported dirty.
 */
static int xfs_log_dirty(const struct region *r, const struct xfs_sb *sb, int *dirty,
			 char *why, size_t whylen)
{
	*dirty = 0;
	if (!sb->log_off)
		return 0;  /* external log: not on this device, cannot be checked here */
	struct xlog l = { .r = r, .off = sb->log_off, .bbs = (uint32_t)(sb->log_len / 512) };
	if (sb->log_len / 512 > UINT32_MAX || l.bbs < 2) {
		*dirty = 1;
		snprintf(why, whylen, "log of %" PRIu64 " bytes cannot be checked", sb->log_len);
		return 0;
	}
	uint32_t first, last, head;
	int rc;
	if ((rc = xlog_cycle(&l, 0, &first)) < 0 || (rc = xlog_cycle(&l, l.bbs - 1, &last)) < 0)
		return rc;
	if (first == 0) {
		/* Never written: mkfs leaves an unmount record at block 0. */
		*dirty = 1;
		snprintf(why, whylen, "log block 0 was never written");
		return 0;
	}
	if (first == last) {
		head = 0;  /* the last pass ended exactly at the end: head wraps to 0 */
	} else {
		/* [0, lo] has cycle `first`, [hi, end] cycle `last`: find the boundary. */
		uint32_t lo = 0, hi = l.bbs - 1;
		while (hi - lo > 1) {
			uint32_t mid = lo + (hi - lo) / 2, c;
			if ((rc = xlog_cycle(&l, mid, &c)) < 0)
				return rc;
			if (c == last)
				hi = mid;
			else
				lo = mid;
		}
		head = hi;
	}
	/* Torn writes: a block before the head still holding an older cycle moves the head
	 * back to it (in-core logs are written out of order). */
	uint32_t head_cycle;
	if ((rc = xlog_cycle(&l, head ? head - 1 : l.bbs - 1, &head_cycle)) < 0)
		return rc;
	uint32_t win = XLOG_VERIFY_WINDOW < l.bbs ? XLOG_VERIFY_WINDOW : l.bbs - 1;
	for (uint32_t i = win; i >= 1; i--) {
		uint32_t n = (uint32_t)(((uint64_t)head + l.bbs - i) % l.bbs), c;
		if (head < i && first != last)
			continue;  /* before block 0 of a log not yet wrapped */
		if ((rc = xlog_cycle(&l, n, &c)) < 0)
			return rc;
		if (c != head_cycle) {
			/* everything from n on is the unfinished write */
			head = n;
			break;
		}
	}
	/* The last record header before the head. */
	uint8_t rh[512];
	uint32_t rblk = 0;
	int found = 0;
	for (uint32_t i = 1; i <= XLOG_RECORD_SCAN && i <= l.bbs; i++) {
		rblk = (uint32_t)(((uint64_t)head + l.bbs - i) % l.bbs);
		if ((rc = region_read_exact(r, rh, sizeof(rh), l.off + (uint64_t)rblk * 512)) < 0)
			return rc;
		if (be32(rh) == XLOG_HEADER_MAGIC) {
			found = 1;
			break;
		}
	}
	if (!found) {
		*dirty = 1;
		snprintf(why, whylen, "no log record header before the log head (block %" PRIu32
			 ")", head);
		return 0;
	}
	uint32_t version = be32(rh + 8), len = be32(rh + 12), nops = be32(rh + 40);
	uint32_t hsize = be32(rh + 320);
	uint32_t hblks = 1;
	if (sb->logv2 && (version & 2) && hsize > XLOG_HEADER_CYCLE_SIZE)
		hblks = (uint32_t)(((uint64_t)hsize + XLOG_HEADER_CYCLE_SIZE - 1) /
				   XLOG_HEADER_CYCLE_SIZE);
	uint64_t after = ((uint64_t)rblk + hblks + ((uint64_t)len + 511) / 512) % l.bbs;
	if (after == head && nops == 1) {
		uint8_t op[12];
		uint32_t data = (uint32_t)(((uint64_t)rblk + hblks) % l.bbs);
		if ((rc = region_read_exact(r, op, sizeof(op), l.off + (uint64_t)data * 512)) < 0)
			return rc;
		if (op[9] & XLOG_UNMOUNT_TRANS)
			return 0;  /* clean: the last thing written was the unmount record */
	}
	uint32_t tail = (uint32_t)be64(rh + 24);  /* BLOCK_LSN(h_tail_lsn) */
	if (tail == head)
		return 0;
	*dirty = 1;
	snprintf(why, whylen, "log not clean: head at block %" PRIu32 ", tail at %" PRIu32
		 ", last record at %" PRIu32 " is not an unmount record", head, tail, rblk);
	return 0;
}

/* ---------------------------------------------------------------- read_map */

static void xfs_uuid_text(const uint8_t *u, char *out, size_t outlen)
{
	snprintf(out, outlen, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

static int xfs_read_map(const struct region *r, struct extent_map *m, struct fs_facts *facts,
			struct imago_err *err)
{
	uint8_t head[512];
	struct xfs_sb sb;
	char why[200];
	int rc = region_read_exact(r, head, sizeof(head), 0);
	if (rc < 0)
		return err_set(err, rc, (int64_t)r->base, -1, -1, "xfs superblock at byte 0: %s",
			       rc == -EIO ? "read error" : "region too short");
	if (xfs_parse_sb(head, sizeof(head), &sb, why, sizeof(why)) < 0)
		return err_set(err, -EBADMSG, (int64_t)r->base, -1, -1,
			       "xfs superblock at byte 0: %s", why);
	uint8_t *sect = malloc(sb.sectsize);
	if (!sect)
		return err_set(err, -ENOMEM, -1, -1, -1, "xfs: out of memory");
	rc = region_read_exact(r, sect, sb.sectsize, 0);
	if (rc == 0 && xfs_parse_sb(sect, sb.sectsize, &sb, why, sizeof(why)) < 0)
		rc = -EBADMSG;
	if (rc < 0) {
		free(sect);
		return err_set(err, rc, (int64_t)r->base, -1, -1, "xfs superblock at byte 0: %s",
			       rc == -EBADMSG && why[0] ? why : "cannot read the whole sector");
	}
	uint64_t fs_size = sb.dblocks * sb.bs;
	if (fs_size > r->size || fs_size > m->size) {
		free(sect);
		return err_set(err, -EBADMSG, (int64_t)r->base, -1, -1,
			       "xfs superblock at byte 0: the filesystem is %" PRIu64
			       " bytes, the region only %" PRIu64 " (truncated?)", fs_size, r->size);
	}

	memset(facts, 0, sizeof(*facts));
	snprintf(facts->type, sizeof(facts->type), "xfs");
	for (size_t i = 0; i < 12 && sb.fname[i]; i++)
		facts->label[i] = sb.fname[i] >= 0x20 && sb.fname[i] < 0x7F ? sb.fname[i] : '?';
	xfs_uuid_text(sb.uuid, facts->uuid, sizeof(facts->uuid));
	facts->block_size = sb.bs;
	facts->fs_size = fs_size;
	facts->freezable = 1;

	struct xfs_walk w = {
		.r = r, .sb = &sb, .m = m, .err = err,
		.hdr_blocks = (uint32_t)((4ull * sb.sectsize + sb.bs - 1) / sb.bs),
		.runs_cap = FS_MEM_LIMIT / sizeof(struct imago_extent),
	};
	rc = 0;
	for (unsigned i = 0; i < XFS_MAX_LEVELS && rc == 0; i++)
		if (!(w.buf[i] = malloc(sb.bs)))
			rc = err_set(err, -ENOMEM, -1, -1, -1, "xfs: out of memory");
	uint64_t agf_free = 0, agf_other = 0;
	for (uint32_t ag = 0; ag < sb.agcount && rc == 0; ag++) {
		w.agno = ag;
		w.ag_off = (uint64_t)ag * sb.agblocks * sb.bs;
		uint64_t left = sb.dblocks - (uint64_t)ag * sb.agblocks;
		w.aglen = left < sb.agblocks ? (uint32_t)left : sb.agblocks;
		rc = xfs_do_ag(&w, sect, &agf_free, &agf_other);
	}
	/* The internal log is USED; a free extent inside it means damage. */
	if (rc == 0 && sb.log_off && extent_map_range_has(m, sb.log_off, sb.log_len, IMAGO_FREE))
		rc = err_set(err, -EBADMSG, (int64_t)(r->base + sb.log_off), -1, -1,
			     "xfs: a free extent overlaps the internal log at byte %" PRIu64,
			     sb.log_off);
	for (unsigned i = 0; i < XFS_MAX_LEVELS; i++)
		free(w.buf[i]);
	free(w.visited);
	free(sect);
	if (rc < 0)
		return rc;

	/*
	 * used_bytes: what XFS itself counts as used, dblocks - fdblocks, with fdblocks taken
	 * from the AGFs (free extents + free-list blocks + free-space btree blocks beyond the
	 * roots, as the kernel sums them) rather than from the superblock, whose lazy counter
	 * is stale on a filesystem that was not cleanly unmounted. The map's FREE bytes are
	 * smaller than dblocks - used by the AGFL and btree blocks, which we keep.
	 */
	uint64_t fd = agf_free + agf_other;
	facts->used_bytes = fd < sb.dblocks ? (sb.dblocks - fd) * sb.bs : 0;

	int dirty;
	why[0] = '\0';
	rc = xfs_log_dirty(r, &sb, &dirty, why, sizeof(why));
	if (rc < 0)
		return err_set(err, rc, (int64_t)(r->base + sb.log_off), -1, -1,
			       "xfs log at byte %" PRIu64 ": %s", sb.log_off,
			       rc == -EIO ? "read error" : "short read");
	if (dirty) {
		facts->flags |= FS_NEEDS_RECOVERY;
		snprintf(facts->state, sizeof(facts->state), "%.100s", why);
	}
	if (sb.incompat & XFS_INCOMPAT_NEEDSREPAIR) {
		facts->flags |= FS_ERRORS;
		snprintf(facts->state, sizeof(facts->state), "%.60s%sneeds xfs_repair (needsrepair "
			 "feature set)", dirty ? why : "", dirty ? "; " : "");
	}
	return 0;
}

const struct fs_driver fs_xfs_driver = {
	.name = "xfs",
	.probe = xfs_probe,
	.read_map = xfs_read_map,
};
