// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * btrfs allocation reader (fs.h), single device, SINGLE and DUP profiles.
 *
 * Written by hand: btrfs-progs has no installed library that reads an unmounted
 * filesystem's trees (partclone links btrfs-progs' internal sources; libbtrfsutil only
 * talks to a mounted one). Layouts: btrfs-progs kernel-shared/ctree.h, the kernel's
 * include/uapi/linux/btrfs_tree.h and Documentation (btrfs.readthedocs.io, on-disk
 * format). Tree reading and the chunk map live in btrfs_tree.c.
 *
 * What becomes FREE:
 *   - device space outside every chunk (from the chunk tree, which must agree exactly with
 *     the device tree's DEV_EXTENT items), past the first MiB;
 *   - inside each chunk, the logical ranges no EXTENT_ITEM / METADATA_ITEM of the extent
 *     tree covers, at each physical copy (DUP: both). The extents found in a block group
 *     must add up to its BLOCK_GROUP_ITEM's "used", or the filesystem is called damaged.
 * What stays USED: the first MiB (boot area, primary superblock), every superblock mirror
 * (64 KiB, 64 MiB, 256 GiB, 1 PiB: btrfs keeps them out of allocation but lists no extent
 * for them), tree blocks and data extents, bytes past the device size, and, when the
 * filesystem has a tree log to replay (log_root set: fsync'd data and tree blocks the
 * extent tree does not list yet), everything: the trees are still checked and the facts
 * reported, but no byte is called FREE.
 * Not read: multi-device filesystems and RAID profiles (-EOPNOTSUPP: kept whole), zoned,
 * extent-tree-v2 and raid-stripe-tree filesystems, blake2b checksums.
 */
#include "fs/btrfs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* Incompatible features that do not change where extents and chunks are recorded:
 * mixed backref, default subvol, mixed groups, lzo, zstd, big metadata, extended iref,
 * skinny metadata, no holes, metadata uuid, raid1c34 (its chunks are refused one by one),
 * simple quota. */
#define BTRFS_INCOMPAT_KNOWN (uint64_t)(0x1ull | 0x2 | 0x4 | 0x8 | 0x10 | 0x20 | 0x40 | 0x100 | 0x200 | \
			      0x400 | 0x800 | 0x10000)
#define BTRFS_INCOMPAT_METADATA_UUID 0x400ull
#define BTRFS_COMPAT_RO_BLOCK_GROUP_TREE 0x8ull
#define BTRFS_SUPER_FLAG_ERROR (1ull << 2)
#define BTRFS_SUPER_FLAG_METADUMP (1ull << 33)
#define BTRFS_SUPER_FLAG_METADUMP_V2 (1ull << 34)
#define BTRFS_SUPER_FLAG_CHANGING_FSID (1ull << 35)
#define BTRFS_SUPER_FLAG_CHANGING_FSID_V2 (1ull << 36)

static const uint64_t btrfs_mirrors[] = { 65536ull, 64ull << 20, 256ull << 30, 1ull << 50 };

static int pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* Validate the superblock b (BTRFS_SUPER_SIZE bytes read at 64 KiB) into fs. 0; -1 with
 * why (not btrfs or damaged); -2 with why (btrfs, but nothing we can check: unknown
 * checksum type). */
static int btrfs_parse_sb(const uint8_t *b, struct btrfs_fs *fs, char *why, size_t whylen)
{
#define BAD(...) do { snprintf(why, whylen, __VA_ARGS__); return -1; } while (0)
	if (memcmp(b + 0x40, BTRFS_MAGIC, 8))
		BAD("no _BHRfS_M magic");
	fs->csum_type = btrfs_le16(b + 0xc4);
	static const size_t csum_sizes[] = { 4, 8, 32, 32 };
	if (fs->csum_type > 3)
		BAD("unknown checksum type %u", fs->csum_type);
	fs->csum_size = csum_sizes[fs->csum_type];
	uint8_t sum[BTRFS_CSUM_MAX];
	if (btrfs_csum(fs, b + 32, BTRFS_SUPER_SIZE - 32, sum) < 0) {
		snprintf(why, whylen, "checksum type %u (blake2b) is not supported", fs->csum_type);
		return -2;
	}
	if (memcmp(sum, b, fs->csum_size))
		BAD("superblock checksum mismatch");
	if (btrfs_le64(b + 0x30) != BTRFS_SUPER_OFFSET)
		BAD("superblock says it is at byte %" PRIu64, btrfs_le64(b + 0x30));
	fs->sectorsize = btrfs_le32(b + 0x90);
	fs->nodesize = btrfs_le32(b + 0x94);
	if (!pow2(fs->sectorsize) || fs->sectorsize < 4096 || fs->sectorsize > 65536)
		BAD("sector size %" PRIu32 " is not a power of two in 4096..65536", fs->sectorsize);
	if (!pow2(fs->nodesize) || fs->nodesize < fs->sectorsize || fs->nodesize > 65536)
		BAD("node size %" PRIu32 " is not a power of two in sector size..65536",
		    fs->nodesize);
	memcpy(fs->fsid, b + 0x20, 16);
	fs->generation = btrfs_le64(b + 0x48);
	fs->root = btrfs_le64(b + 0x50);
	fs->chunk_root = btrfs_le64(b + 0x58);
	fs->log_root = btrfs_le64(b + 0x60);
	fs->total_bytes = btrfs_le64(b + 0x70);
	fs->bytes_used = btrfs_le64(b + 0x78);
	fs->flags = btrfs_le64(b + 0x38);
	fs->compat_ro = btrfs_le64(b + 0xb4);
	fs->incompat = btrfs_le64(b + 0xbc);
	fs->root_level = b[0xc6];
	fs->chunk_root_level = b[0xc7];
	const uint8_t *dev = b + 0xc9;
	fs->devid = btrfs_le64(dev);
	fs->dev_total = btrfs_le64(dev + 8);
	memcpy(fs->meta_fsid, fs->incompat & BTRFS_INCOMPAT_METADATA_UUID ? b + 0x23b : fs->fsid,
	       16);
	if (memcmp(dev + 82, fs->fsid, 16))
		BAD("the device item belongs to another filesystem");
	if (btrfs_le32(b + 0xa0) > 2048)
		BAD("system chunk array of %" PRIu32 " bytes (2048 at most)", btrfs_le32(b + 0xa0));
	if (fs->total_bytes < BTRFS_RESERVED_BYTES || fs->dev_total < BTRFS_RESERVED_BYTES)
		BAD("filesystem of %" PRIu64 " bytes", fs->total_bytes);
	memcpy(fs->label, b + 0x12b, 255);
	fs->label[255] = '\0';
#undef BAD
	return 0;
}

static int btrfs_probe(const struct region *r)
{
	uint8_t b[BTRFS_SUPER_SIZE];
	struct btrfs_fs fs = { .r = r };
	char why[160];
	if (region_read_exact(r, b, sizeof(b), BTRFS_SUPER_OFFSET) < 0 ||
	    memcmp(b + 0x40, BTRFS_MAGIC, 8))
		return 0;
	int rc = btrfs_parse_sb(b, &fs, why, sizeof(why));
	return rc == 0 ? 95 : rc == -2 ? 60 : 0;
}

/* ---------------------------------------------------------------- trees */

static int chunk_item(struct btrfs_fs *fs, void *ctx, const struct btrfs_key *k,
		      const uint8_t *data, uint32_t size)
{
	(void)ctx;
	if (k->type != BTRFS_CHUNK_ITEM_KEY)
		return 0;
	struct btrfs_chunk_ent e;
	int rc = btrfs_chunk_parse(fs, k->offset, data, size, &e, "chunk tree");
	return rc < 0 ? rc : btrfs_chunk_add(fs, &fs->full, &e, "chunk tree");
}

struct roots {
	uint64_t bytenr[3], gen[3];  /* extent, dev, block group tree */
	unsigned level[3];
	int have[3];
};

static int root_item(struct btrfs_fs *fs, void *ctx, const struct btrfs_key *k,
		     const uint8_t *data, uint32_t size)
{
	struct roots *rt = ctx;
	if (k->type != BTRFS_ROOT_ITEM_KEY)
		return 0;
	int i = k->objectid == BTRFS_EXTENT_TREE_OBJECTID ? 0 :
		k->objectid == BTRFS_DEV_TREE_OBJECTID ? 1 :
		k->objectid == BTRFS_BLOCK_GROUP_TREE_OBJECTID ? 2 : -1;
	if (i < 0)
		return 0;
	if (size < 239)
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs root tree: root item of tree %"
			       PRIu64 " is %" PRIu32 " bytes", k->objectid, size);
	rt->gen[i] = btrfs_le64(data + 160);
	rt->bytenr[i] = btrfs_le64(data + 176);
	rt->level[i] = data[238];
	rt->have[i] = 1;
	return 0;
}

struct dev_extents {
	uint64_t (*v)[2];  /* physical, length */
	size_t n, cap;
};

static int dev_extent_item(struct btrfs_fs *fs, void *ctx, const struct btrfs_key *k,
			   const uint8_t *data, uint32_t size)
{
	struct dev_extents *d = ctx;
	if (k->type != BTRFS_DEV_EXTENT_KEY || k->objectid != fs->devid)
		return 0;
	if (size < 48)
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs device tree: extent item of %"
			       PRIu32 " bytes", size);
	if (d->n == d->cap) {
		size_t n = d->cap ? d->cap * 2 : 16;
		if (n > FS_MEM_LIMIT / 4 / sizeof(*d->v))
			return err_set(fs->err, -E2BIG, -1, -1, -1, "btrfs: too many device extents");
		void *v = realloc(d->v, n * sizeof(*d->v));
		if (!v)
			return err_set(fs->err, -ENOMEM, -1, -1, -1, "btrfs: out of memory");
		d->v = v;
		d->cap = n;
	}
	d->v[d->n][0] = k->offset;
	d->v[d->n][1] = btrfs_le64(data + 24);
	d->n++;
	return 0;
}

/* The walk of the extent tree: gaps between extents become FREE, chunk by chunk. */
struct extent_walk {
	struct extent_map *m;
	size_t ci;          /* chunk being filled */
	uint64_t cursor;    /* logical end of the last extent in it */
};

static int mark_free(struct btrfs_fs *fs, struct extent_walk *x, const struct btrfs_chunk_ent *c,
		     uint64_t start, uint64_t end)
{
	if (end <= start)
		return 0;
	for (unsigned i = 0; i < c->copies; i++) {
		int rc = extent_map_set(x->m, c->phys[i] + (start - c->logical), end - start,
					IMAGO_FREE);
		if (rc < 0)
			return err_set(fs->err, rc, -1, -1, -1, "btrfs: cannot mark free space (%s)",
				       rc == -ENOMEM ? "out of memory" : "bad range");
	}
	if (x->m->n > FS_MEM_LIMIT / sizeof(struct imago_extent))
		return err_set(fs->err, -E2BIG, -1, -1, -1, "btrfs: too many free ranges");
	return 0;
}

/* Close chunks up to (not including) chunk `upto`: the rest of each is free. */
static int finish_chunks(struct btrfs_fs *fs, struct extent_walk *x, size_t upto)
{
	while (x->ci < upto) {
		const struct btrfs_chunk_ent *c = &fs->full.v[x->ci];
		int rc = mark_free(fs, x, c, x->cursor, c->logical + c->length);
		if (rc < 0)
			return rc;
		x->ci++;
		if (x->ci < fs->full.n)
			x->cursor = fs->full.v[x->ci].logical;
	}
	return 0;
}

static int block_group_item(struct btrfs_fs *fs, const struct btrfs_key *k, const uint8_t *data,
			    uint32_t size)
{
	struct btrfs_chunk_ent *c = btrfs_chunk_find(&fs->full, k->objectid);
	if (size < 24 || !c || c->logical != k->objectid || c->length != k->offset ||
	    c->have_bg || ((btrfs_le64(data + 16) ^ c->type) & (BTRFS_BLOCK_GROUP_TYPE_MASK |
							       BTRFS_BLOCK_GROUP_DUP)))
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs: block group at logical %"
			       PRIu64 " (%" PRIu64 " bytes) matches no chunk", k->objectid,
			       k->offset);
	c->bg_used = btrfs_le64(data);
	c->have_bg = 1;
	if (c->bg_used > c->length)
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs: block group at logical %" PRIu64
			       " uses %" PRIu64 " of %" PRIu64 " bytes", k->objectid, c->bg_used,
			       c->length);
	return 0;
}

static int bg_tree_item(struct btrfs_fs *fs, void *ctx, const struct btrfs_key *k,
			const uint8_t *data, uint32_t size)
{
	(void)ctx;
	return k->type == BTRFS_BLOCK_GROUP_ITEM_KEY ? block_group_item(fs, k, data, size) : 0;
}

static int extent_tree_item(struct btrfs_fs *fs, void *ctx, const struct btrfs_key *k,
			    const uint8_t *data, uint32_t size)
{
	struct extent_walk *x = ctx;
	if (k->type == BTRFS_BLOCK_GROUP_ITEM_KEY)
		return block_group_item(fs, k, data, size);
	if (k->type != BTRFS_EXTENT_ITEM_KEY && k->type != BTRFS_METADATA_ITEM_KEY)
		return 0;
	uint64_t start = k->objectid;
	uint64_t len = k->type == BTRFS_METADATA_ITEM_KEY ? fs->nodesize : k->offset;
	struct btrfs_chunk_ent *c = btrfs_chunk_find(&fs->full, start);
	if (!len || !c || len > c->length - (start - c->logical))
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs extent tree: extent at logical %"
			       PRIu64 " (%" PRIu64 " bytes) is not inside one chunk", start, len);
	size_t idx = (size_t)(c - fs->full.v);
	if (idx < x->ci || (idx == x->ci && start < x->cursor))
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs extent tree: extent at logical %"
			       PRIu64 " overlaps the one before (which ends at %" PRIu64 ")", start,
			       x->cursor);
	int rc = finish_chunks(fs, x, idx);
	if (rc < 0)
		return rc;
	rc = mark_free(fs, x, c, x->cursor, start);
	if (rc < 0)
		return rc;
	x->cursor = start + len;
	c->ext_used += len;
	return 0;
}

static int cmp_u64pair(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Device space outside every chunk is free: the chunk tree's stripes and the device
 * tree's extents must be the same set of ranges. */
static int mark_unallocated(struct btrfs_fs *fs, struct extent_map *m, struct dev_extents *d)
{
	size_t n = 0;
	for (size_t i = 0; i < fs->full.n; i++)
		n += fs->full.v[i].copies;
	if (n != d->n)
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs: the chunk tree has %zu stripes "
			       "on this device, the device tree %zu extents", n, d->n);
	uint64_t (*s)[2] = n ? malloc(n * sizeof(*s)) : NULL;
	if (n && !s)
		return err_set(fs->err, -ENOMEM, -1, -1, -1, "btrfs: out of memory");
	size_t k = 0;
	for (size_t i = 0; i < fs->full.n; i++)
		for (unsigned j = 0; j < fs->full.v[i].copies; j++) {
			s[k][0] = fs->full.v[i].phys[j];
			s[k][1] = fs->full.v[i].length;
			k++;
		}
	if (n)
		qsort(s, n, sizeof(*s), cmp_u64pair);
	int rc = 0;
	uint64_t pos = BTRFS_RESERVED_BYTES;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (s[i][0] != d->v[i][0] || s[i][1] != d->v[i][1])
			rc = err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs: device extent at byte %"
				     PRIu64 " (%" PRIu64 " bytes) does not match the chunk stripe at %"
				     PRIu64 " (%" PRIu64 " bytes)", d->v[i][0], d->v[i][1], s[i][0],
				     s[i][1]);
		else if (s[i][0] < pos)
			rc = err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs: chunk stripes overlap at "
				     "byte %" PRIu64, s[i][0]);
		else if ((rc = extent_map_set(m, pos, s[i][0] - pos, IMAGO_FREE)) < 0)
			rc = err_set(fs->err, rc, -1, -1, -1, "btrfs: cannot mark free space");
		pos = s[i][0] + s[i][1];
	}
	if (rc == 0 && pos < fs->dev_total && extent_map_set(m, pos, fs->dev_total - pos, IMAGO_FREE) < 0)
		rc = err_set(fs->err, -ENOMEM, -1, -1, -1, "btrfs: cannot mark free space");
	free(s);
	return rc;
}

/* The system chunks the superblock carries, to find the chunk tree. */
static int read_sys_chunks(struct btrfs_fs *fs, const uint8_t *sb)
{
	uint32_t len = btrfs_le32(sb + 0xa0);
	const uint8_t *p = sb + 0x32b;
	for (uint32_t off = 0; off < len;) {
		if (len - off < 17 + 48)
			return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs superblock: system chunk "
				       "array ends inside an item (at %" PRIu32 " of %" PRIu32 ")", off,
				       len);
		struct btrfs_key k;
		btrfs_key_read(p + off, &k);
		if (k.type != BTRFS_CHUNK_ITEM_KEY)
			return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs superblock: system chunk "
				       "array holds an item of type %u", k.type);
		size_t size = 48 + (size_t)btrfs_le16(p + off + 17 + 44) * 32;
		if (size > len - off - 17)
			return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs superblock: system chunk "
				       "at logical %" PRIu64 " runs past the array", k.offset);
		struct btrfs_chunk_ent e;
		int rc = btrfs_chunk_parse(fs, k.offset, p + off + 17, size, &e, "superblock");
		if (rc == 0)
			rc = btrfs_chunk_add(fs, &fs->sys, &e, "superblock");
		if (rc < 0)
			return rc;
		off += 17 + (uint32_t)size;
	}
	if (!fs->sys.n)
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs superblock: no system chunk");
	return 0;
}

/* ---------------------------------------------------------------- read_map */

static void btrfs_uuid_text(const uint8_t *u, char *out, size_t outlen)
{
	snprintf(out, outlen, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

/* The label, cut to fit out at a UTF-8 character boundary. */
static void btrfs_label_text(const char *label, char *out, size_t outlen)
{
	size_t n = strnlen(label, 255);
	if (n >= outlen) {
		n = outlen - 1;
		while (n && ((unsigned char)label[n] & 0xC0) == 0x80)
			n--;
	}
	memcpy(out, label, n);
	out[n] = '\0';
}

static int btrfs_run(struct btrfs_fs *fs, const uint8_t *sb, struct extent_map *m,
		     struct fs_facts *facts)
{
	const struct region *r = fs->r;
	struct imago_err *err = fs->err;
	if (btrfs_le64(sb + 0x88) != 1)
		return err_set(err, -EOPNOTSUPP, -1, -1, -1, "btrfs: filesystem of %" PRIu64
			       " devices: only single-device filesystems are read; kept whole",
			       btrfs_le64(sb + 0x88));
	if (fs->incompat & ~BTRFS_INCOMPAT_KNOWN)
		return err_set(err, -EOPNOTSUPP, -1, -1, -1, "btrfs: incompatible features 0x%"
			       PRIx64 " (zoned, extent tree v2, raid-stripe tree or newer) are not "
			       "read; kept whole", fs->incompat & ~BTRFS_INCOMPAT_KNOWN);
	if (fs->total_bytes != fs->dev_total)
		return err_set(err, -EBADMSG, (int64_t)(r->base + BTRFS_SUPER_OFFSET), -1, -1,
			       "btrfs superblock: total bytes %" PRIu64 " but the device holds %"
			       PRIu64, fs->total_bytes, fs->dev_total);
	if (fs->dev_total > r->size || fs->dev_total > m->size)
		return err_set(err, -EBADMSG, (int64_t)(r->base + BTRFS_SUPER_OFFSET), -1, -1,
			       "btrfs superblock: the filesystem is %" PRIu64 " bytes, the region "
			       "only %" PRIu64 " (truncated?)", fs->dev_total, r->size);
	fs->nodes_cap = fs->dev_total / fs->nodesize + 1;
	for (int i = 0; i < BTRFS_MAX_LEVEL; i++)
		if (!(fs->nodebuf[i] = malloc(fs->nodesize)))
			return err_set(err, -ENOMEM, -1, -1, -1, "btrfs: out of memory");

	int rc = read_sys_chunks(fs, sb);
	if (rc < 0)
		return rc;
	rc = btrfs_walk(fs, &fs->sys, "chunk tree", fs->chunk_root, fs->chunk_root_level, 0,
			chunk_item, NULL);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < fs->sys.n; i++) {
		const struct btrfs_chunk_ent *a = &fs->sys.v[i];
		const struct btrfs_chunk_ent *b = btrfs_chunk_find(&fs->full, a->logical);
		if (!b || b->logical != a->logical || b->length != a->length ||
		    b->copies != a->copies || memcmp(b->phys, a->phys, sizeof(a->phys)))
			return err_set(err, -EBADMSG, -1, -1, -1, "btrfs: system chunk at logical %"
				       PRIu64 " differs between the superblock and the chunk tree",
				       a->logical);
	}

	struct roots rt = { 0 };
	rc = btrfs_walk(fs, &fs->full, "root tree", fs->root, fs->root_level, 0, root_item, &rt);
	if (rc < 0)
		return rc;
	int bgt = !!(fs->compat_ro & BTRFS_COMPAT_RO_BLOCK_GROUP_TREE);
	if (!rt.have[0] || !rt.have[1] || (bgt && !rt.have[2]))
		return err_set(err, -EBADMSG, -1, -1, -1, "btrfs root tree: no root item for the %s",
			       !rt.have[0] ? "extent tree" : !rt.have[1] ? "device tree" :
			       "block group tree");

	/* With a tree log pending, FREE is marked in a scratch map that is then dropped. */
	struct extent_map scratch = { 0 };
	struct extent_map *fm = m;
	if (fs->log_root) {
		if (extent_map_init(&scratch, m->size, IMAGO_USED) < 0)
			return err_set(err, -ENOMEM, -1, -1, -1, "btrfs: out of memory");
		fm = &scratch;
	}
	struct dev_extents d = { 0 };
	rc = btrfs_walk(fs, &fs->full, "device tree", rt.bytenr[1], rt.level[1], rt.gen[1],
			dev_extent_item, &d);
	if (rc == 0)
		rc = mark_unallocated(fs, fm, &d);
	free(d.v);
	if (rc < 0) {
		extent_map_free(&scratch);
		return rc;
	}

	if (bgt && (rc = btrfs_walk(fs, &fs->full, "block group tree", rt.bytenr[2], rt.level[2],
				    rt.gen[2], bg_tree_item, NULL)) < 0) {
		extent_map_free(&scratch);
		return rc;
	}
	struct extent_walk x = { .m = fm };
	if (fs->full.n)
		x.cursor = fs->full.v[0].logical;
	rc = btrfs_walk(fs, &fs->full, "extent tree", rt.bytenr[0], rt.level[0], rt.gen[0],
			extent_tree_item, &x);
	if (rc == 0)
		rc = finish_chunks(fs, &x, fs->full.n);
	extent_map_free(&scratch);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < fs->full.n; i++) {
		const struct btrfs_chunk_ent *c = &fs->full.v[i];
		if (!c->have_bg || c->bg_used != c->ext_used)
			return err_set(err, -EBADMSG, -1, -1, -1, "btrfs: block group at logical %"
				       PRIu64 ": %s", c->logical, !c->have_bg ? "no block group item" :
				       "its extents do not add up to its used bytes");
	}

	/* Superblock copies: never allocated, never listed in the extent tree. */
	for (size_t i = 0; i < sizeof(btrfs_mirrors) / sizeof(btrfs_mirrors[0]); i++)
		if (btrfs_mirrors[i] < fs->dev_total) {
			uint64_t len = fs->dev_total - btrfs_mirrors[i];
			if (len > BTRFS_SUPER_SIZE)
				len = BTRFS_SUPER_SIZE;
			if (extent_map_set(m, btrfs_mirrors[i], len, IMAGO_USED) < 0)
				return err_set(err, -ENOMEM, -1, -1, -1, "btrfs: out of memory");
		}

	memset(facts, 0, sizeof(*facts));
	snprintf(facts->type, sizeof(facts->type), "btrfs");
	btrfs_label_text(fs->label, facts->label, sizeof(facts->label));
	btrfs_uuid_text(fs->fsid, facts->uuid, sizeof(facts->uuid));
	facts->block_size = fs->sectorsize;
	facts->fs_size = fs->dev_total;
	facts->used_bytes = fs->bytes_used < fs->dev_total ? fs->bytes_used : fs->dev_total;
	facts->freezable = 1;
	if (fs->log_root) {
		facts->flags |= FS_NEEDS_RECOVERY;
		snprintf(facts->state, sizeof(facts->state), "tree log at logical %" PRIu64
			 " to replay (fsync'd data): kept whole", fs->log_root);
	}
	uint64_t bad = fs->flags & (BTRFS_SUPER_FLAG_ERROR | BTRFS_SUPER_FLAG_METADUMP |
				    BTRFS_SUPER_FLAG_METADUMP_V2 | BTRFS_SUPER_FLAG_CHANGING_FSID |
				    BTRFS_SUPER_FLAG_CHANGING_FSID_V2);
	if (bad) {
		facts->flags |= FS_ERRORS;
		size_t l = strlen(facts->state);
		snprintf(facts->state + l, sizeof(facts->state) - l, "%ssuperblock flags 0x%" PRIx64
			 " (%s)", l ? "; " : "", bad, bad & BTRFS_SUPER_FLAG_ERROR ? "error" :
			 bad & (BTRFS_SUPER_FLAG_METADUMP | BTRFS_SUPER_FLAG_METADUMP_V2) ?
			 "metadata dump, no data" : "fsid change in progress");
	}
	return 0;
}

static int btrfs_read_map(const struct region *r, struct extent_map *m, struct fs_facts *facts,
			  struct imago_err *err)
{
	uint8_t sb[BTRFS_SUPER_SIZE];
	struct btrfs_fs fs = { .r = r, .err = err };
	char why[200];
	int rc = region_read_exact(r, sb, sizeof(sb), BTRFS_SUPER_OFFSET);
	if (rc < 0)
		return err_set(err, rc, (int64_t)(r->base + BTRFS_SUPER_OFFSET), -1, -1,
			       "btrfs superblock at byte 65536: %s",
			       rc == -EIO ? "read error" : "region too short");
	rc = btrfs_parse_sb(sb, &fs, why, sizeof(why));
	if (rc < 0)
		return err_set(err, rc == -2 ? -EOPNOTSUPP : -EBADMSG,
			       (int64_t)(r->base + BTRFS_SUPER_OFFSET), -1, -1,
			       "btrfs superblock at byte 65536: %s", why);
	rc = btrfs_run(&fs, sb, m, facts);
	for (int i = 0; i < BTRFS_MAX_LEVEL; i++)
		free(fs.nodebuf[i]);
	free(fs.sys.v);
	free(fs.full.v);
	return rc;
}

const struct fs_driver fs_btrfs_driver = {
	.name = "btrfs",
	.probe = btrfs_probe,
	.read_map = btrfs_read_map,
};
