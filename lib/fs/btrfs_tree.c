// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * btrfs: the chunk map (logical -> physical), reading and checking tree blocks, and a
 * bounded tree walk. Written by hand for the same reason as btrfs.c (btrfs-progs has no
 * library that reads trees; libbtrfsutil talks to a mounted filesystem).
 *
 * A tree block is trusted only when its checksum (crc32c, xxhash64 or sha256, as the
 * superblock says), fsid, own logical address, level and generation (as its parent says)
 * all agree; a DUP block that fails is read from its second copy. Walks are bounded: depth
 * by BTRFS_MAX_LEVEL, levels must step down by one, keys must strictly increase across the
 * whole tree (so a block reached twice is an error, not a loop), every non-root block must
 * hold at least one item, and the blocks read over all walks are capped by the size of
 * the filesystem in nodes.
 */
#include <errno.h>
#include <ext2fs/ext2fs.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "fs/btrfs_int.h"
#include "util/err.h"

int btrfs_csum(const struct btrfs_fs *fs, const uint8_t *p, size_t len, uint8_t *out)
{
	memset(out, 0, BTRFS_CSUM_MAX);
	switch (fs->csum_type) {
	case 0: {  /* crc32c: seed ~0, inverted, little-endian */
		uint32_t c = ~ext2fs_crc32c_le(~0u, p, len);
		for (int i = 0; i < 4; i++)
			out[i] = (uint8_t)(c >> (8 * i));
		return 0;
	}
	case 1: {  /* xxhash64, seed 0, little-endian */
		uint64_t h = XXH64(p, len, 0);
		for (int i = 0; i < 8; i++)
			out[i] = (uint8_t)(h >> (8 * i));
		return 0;
	}
	case 2: {  /* sha256 */
		unsigned n = 0;
		return EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) && n == 32 ? 0 : -EOPNOTSUPP;
	}
	default:   /* blake2b-256 needs an OpenSSL newer than ours */
		return -EOPNOTSUPP;
	}
}

int btrfs_chunk_parse(struct btrfs_fs *fs, uint64_t logical, const uint8_t *p, size_t size,
		      struct btrfs_chunk_ent *e, const char *where)
{
	memset(e, 0, sizeof(*e));
	if (size < 48)
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs %s: chunk item of %zu bytes",
			       where, size);
	uint64_t length = btrfs_le64(p), type = btrfs_le64(p + 24);
	unsigned nstripes = btrfs_le16(p + 44);
	if (!nstripes || size < 48 + (size_t)nstripes * 32)
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs %s: chunk at logical %" PRIu64
			       " has %u stripes in %zu bytes", where, logical, nstripes, size);
	if (type & BTRFS_BLOCK_GROUP_RAID_MASK)
		return err_set(fs->err, -EOPNOTSUPP, -1, -1, -1, "btrfs %s: chunk at logical %"
			       PRIu64 " has a RAID profile (0x%" PRIx64 "): only single and DUP "
			       "are read; the filesystem is kept whole", where, logical, type);
	unsigned want = type & BTRFS_BLOCK_GROUP_DUP ? 2 : 1;
	if (nstripes != want || !(type & BTRFS_BLOCK_GROUP_TYPE_MASK))
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs %s: chunk at logical %" PRIu64
			       " of type 0x%" PRIx64 " has %u stripes", where, logical, type,
			       nstripes);
	if (!length || length % fs->sectorsize || logical % fs->sectorsize ||
	    logical > UINT64_MAX - length)
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs %s: chunk at logical %" PRIu64
			       " has length %" PRIu64, where, logical, length);
	e->logical = logical;
	e->length = length;
	e->type = type;
	e->copies = want;
	for (unsigned i = 0; i < want; i++) {
		const uint8_t *s = p + 48 + (size_t)i * 32;
		uint64_t devid = btrfs_le64(s), off = btrfs_le64(s + 8);
		if (devid != fs->devid)
			return err_set(fs->err, -EOPNOTSUPP, -1, -1, -1, "btrfs %s: chunk at logical %"
				       PRIu64 " lives on device %" PRIu64 ", not this one (%" PRIu64
				       ")", where, logical, devid, fs->devid);
		if (off < BTRFS_RESERVED_BYTES || off > fs->dev_total || length > fs->dev_total - off)
			return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs %s: chunk at logical %"
				       PRIu64 ": copy %u at byte %" PRIu64 " (%" PRIu64 " bytes) is "
				       "outside the device (%" PRIu64 " bytes, first MiB reserved)",
				       where, logical, i, off, length, fs->dev_total);
		e->phys[i] = off;
	}
	if (want == 2 && (e->phys[0] < e->phys[1] ? e->phys[1] - e->phys[0] < length
						  : e->phys[0] - e->phys[1] < length))
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs %s: chunk at logical %" PRIu64
			       ": its two copies overlap", where, logical);
	return 0;
}

int btrfs_chunk_add(struct btrfs_fs *fs, struct btrfs_chunk_map *map,
		    const struct btrfs_chunk_ent *e, const char *where)
{
	if (map->n && map->v[map->n - 1].logical + map->v[map->n - 1].length > e->logical)
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs %s: chunk at logical %" PRIu64
			       " overlaps or precedes the one before", where, e->logical);
	if (map->n == map->cap) {
		size_t n = map->cap ? map->cap * 2 : 16;
		if (n > FS_MEM_LIMIT / 4 / sizeof(*map->v))
			return err_set(fs->err, -E2BIG, -1, -1, -1, "btrfs %s: too many chunks", where);
		struct btrfs_chunk_ent *v = realloc(map->v, n * sizeof(*v));
		if (!v)
			return err_set(fs->err, -ENOMEM, -1, -1, -1, "btrfs: out of memory");
		map->v = v;
		map->cap = n;
	}
	map->v[map->n++] = *e;
	return 0;
}

struct btrfs_chunk_ent *btrfs_chunk_find(const struct btrfs_chunk_map *map, uint64_t logical)
{
	size_t lo = 0, hi = map->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct btrfs_chunk_ent *c = &map->v[mid];
		if (logical < c->logical)
			hi = mid;
		else if (logical - c->logical >= c->length)
			lo = mid + 1;
		else
			return &map->v[mid];
	}
	return NULL;
}

/* Read and check the tree block at logical into buf. */
static int btrfs_read_node(struct btrfs_fs *fs, const struct btrfs_chunk_map *map,
			   const char *name, uint64_t logical, unsigned level, uint64_t gen,
			   uint8_t *buf)
{
	const struct btrfs_chunk_ent *c = btrfs_chunk_find(map, logical);
	if (!c || logical - c->logical > c->length - fs->nodesize)
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs %s: tree block at logical %"
			       PRIu64 " is in no chunk", name, logical);
	if (++fs->nodes_visited > fs->nodes_cap)
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs %s: more tree blocks than the "
			       "filesystem can hold (%" PRIu64 ")", name, fs->nodes_cap);
	char why[160] = "";
	uint64_t bad_at = 0;
	for (unsigned i = 0; i < c->copies; i++) {
		uint64_t at = c->phys[i] + (logical - c->logical);
		int rc = region_read_exact(fs->r, buf, fs->nodesize, at);
		if (rc == -EIO)
			return err_set(fs->err, rc, (int64_t)(fs->r->base + at), -1, -1,
				       "btrfs %s: tree block at byte %" PRIu64 ": read error", name, at);
		uint8_t sum[BTRFS_CSUM_MAX];
		if (rc < 0)
			snprintf(why, sizeof(why), "short read");
		else if ((rc = btrfs_csum(fs, buf + 32, fs->nodesize - 32, sum)) < 0)
			return err_set(fs->err, rc, -1, -1, -1, "btrfs: checksum type %u is not "
				       "supported", fs->csum_type);
		else if (memcmp(sum, buf, fs->csum_size))
			snprintf(why, sizeof(why), "checksum mismatch");
		else if (memcmp(buf + 32, fs->meta_fsid, 16))
			snprintf(why, sizeof(why), "fsid of another filesystem");
		else if (btrfs_le64(buf + 48) != logical)
			snprintf(why, sizeof(why), "it says it is at logical %" PRIu64,
				 btrfs_le64(buf + 48));
		else if (buf[100] != level)
			snprintf(why, sizeof(why), "level %u, expected %u", buf[100], level);
		else if (gen && btrfs_le64(buf + 80) != gen)
			snprintf(why, sizeof(why), "generation %" PRIu64 ", expected %" PRIu64,
				 btrfs_le64(buf + 80), gen);
		else if (btrfs_le64(buf + 80) > fs->generation)
			snprintf(why, sizeof(why), "generation %" PRIu64 " is newer than the "
				 "filesystem's %" PRIu64, btrfs_le64(buf + 80), fs->generation);
		else
			return 0;
		if (!i)
			bad_at = at;
	}
	return err_set(fs->err, -EBADMSG, (int64_t)(fs->r->base + bad_at), -1, -1,
		       "btrfs %s: tree block at logical %" PRIu64 " (byte %" PRIu64 "): %s", name,
		       logical, bad_at, why);
}

struct btrfs_walk {
	struct btrfs_fs *fs;
	const struct btrfs_chunk_map *map;
	const char *name;
	btrfs_item_fn fn;
	void *ctx;
	struct btrfs_key last;
	int have_last;
};

static int btrfs_walk_node(struct btrfs_walk *w, uint64_t logical, unsigned level, uint64_t gen,
			   int is_root)
{
	struct btrfs_fs *fs = w->fs;
	uint8_t *b = fs->nodebuf[level];
	int rc = btrfs_read_node(fs, w->map, w->name, logical, level, gen, b);
	if (rc < 0)
		return rc;
	uint32_t n = btrfs_le32(b + 96);
	size_t room = fs->nodesize - BTRFS_HEADER_SIZE;
	size_t max = room / (level ? BTRFS_KEY_PTR_SIZE : BTRFS_ITEM_SIZE);
	if (n > max || (!n && !(is_root && !level)))
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs %s: tree block at logical %"
			       PRIu64 " holds %" PRIu32 " items (1..%zu expected)", w->name, logical,
			       n, max);
	const uint8_t *items = b + BTRFS_HEADER_SIZE;
	if (level) {
		struct btrfs_key prev = { 0, 0, 0 };
		for (uint32_t i = 0; i < n; i++) {
			/* Children use the buffers of lower levels: this block stays intact. */
			const uint8_t *kp = fs->nodebuf[level] + BTRFS_HEADER_SIZE +
					    (size_t)i * BTRFS_KEY_PTR_SIZE;
			struct btrfs_key k;
			btrfs_key_read(kp, &k);
			if (i && btrfs_key_cmp(&prev, &k) >= 0)
				return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs %s: node at "
					       "logical %" PRIu64 ": keys out of order at %" PRIu32,
					       w->name, logical, i);
			prev = k;
			rc = btrfs_walk_node(w, btrfs_le64(kp + 17), level - 1, btrfs_le64(kp + 25), 0);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *it = items + (size_t)i * BTRFS_ITEM_SIZE;
		struct btrfs_key k;
		btrfs_key_read(it, &k);
		uint32_t off = btrfs_le32(it + 17), size = btrfs_le32(it + 21);
		/* Item data lies after the item headers, inside the block. */
		if ((uint64_t)off + size > room || off < (uint64_t)n * BTRFS_ITEM_SIZE)
			return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs %s: leaf at logical %"
				       PRIu64 ": item %" PRIu32 " data (%" PRIu32 "+%" PRIu32
				       ") is outside the leaf", w->name, logical, i, off, size);
		if (w->have_last && btrfs_key_cmp(&w->last, &k) >= 0)
			return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs %s: leaf at logical %"
				       PRIu64 ": key (%" PRIu64 " %u %" PRIu64 ") of item %" PRIu32
				       " does not follow the previous one", w->name, logical,
				       k.objectid, k.type, k.offset, i);
		w->last = k;
		w->have_last = 1;
		rc = w->fn(fs, w->ctx, &k, items + off, size);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int btrfs_walk(struct btrfs_fs *fs, const struct btrfs_chunk_map *map, const char *name,
	       uint64_t root, unsigned level, uint64_t gen, btrfs_item_fn fn, void *ctx)
{
	if (level >= BTRFS_MAX_LEVEL)
		return err_set(fs->err, -EBADMSG, -1, -1, -1, "btrfs %s: root level %u (0..%d)",
			       name, level, BTRFS_MAX_LEVEL - 1);
	struct btrfs_walk w = { .fs = fs, .map = map, .name = name, .fn = fn, .ctx = ctx };
	return btrfs_walk_node(&w, root, level, gen, 1);
}
