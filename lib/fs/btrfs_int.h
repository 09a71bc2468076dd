/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * btrfs reader internals, shared by btrfs.c (the driver: superblock, which trees, what
 * becomes FREE) and btrfs_tree.c (the chunk map, reading and checking tree blocks,
 * walking a tree). On-disk layouts: btrfs-progs kernel-shared/ctree.h and the kernel's
 * include/uapi/linux/btrfs_tree.h; all little-endian.
 */
#ifndef IMAGO_FS_BTRFS_INT_H
#define IMAGO_FS_BTRFS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "fs/fs.h"

#define BTRFS_SUPER_OFFSET 65536u
#define BTRFS_SUPER_SIZE 4096u
#define BTRFS_MAGIC "_BHRfS_M"
#define BTRFS_HEADER_SIZE 101u   /* struct btrfs_header */
#define BTRFS_ITEM_SIZE 25u      /* struct btrfs_item: key + offset + size */
#define BTRFS_KEY_PTR_SIZE 33u   /* struct btrfs_key_ptr: key + blockptr + generation */
#define BTRFS_MAX_LEVEL 8
#define BTRFS_CSUM_MAX 32
#define BTRFS_RESERVED_BYTES (1u << 20)  /* the first MiB of a device is never allocated */

/* Item types (btrfs_tree.h). */
#define BTRFS_ROOT_ITEM_KEY 132
#define BTRFS_EXTENT_ITEM_KEY 168
#define BTRFS_METADATA_ITEM_KEY 169
#define BTRFS_BLOCK_GROUP_ITEM_KEY 192
#define BTRFS_DEV_EXTENT_KEY 204
#define BTRFS_CHUNK_ITEM_KEY 228

/* Tree ids. */
#define BTRFS_EXTENT_TREE_OBJECTID 2
#define BTRFS_DEV_TREE_OBJECTID 4
#define BTRFS_BLOCK_GROUP_TREE_OBJECTID 11
#define BTRFS_FIRST_CHUNK_TREE_OBJECTID 256

/* Block group / chunk profile bits. */
#define BTRFS_BLOCK_GROUP_DATA (1ull << 0)
#define BTRFS_BLOCK_GROUP_SYSTEM (1ull << 1)
#define BTRFS_BLOCK_GROUP_METADATA (1ull << 2)
#define BTRFS_BLOCK_GROUP_DUP (1ull << 5)
#define BTRFS_BLOCK_GROUP_TYPE_MASK 0x7ull
/* RAID0, RAID1, RAID10, RAID5, RAID6, RAID1C3, RAID1C4 */
#define BTRFS_BLOCK_GROUP_RAID_MASK ((1ull << 3) | (1ull << 4) | (1ull << 6) | (1ull << 7) | \
				     (1ull << 8) | (1ull << 9) | (1ull << 10))

struct btrfs_key {
	uint64_t objectid;
	uint8_t type;
	uint64_t offset;
};

/* One chunk: a logical range stored at one (single) or two (DUP) physical places. */
struct btrfs_chunk_ent {
	uint64_t logical, length, type;
	unsigned copies;         /* 1 or 2 */
	uint64_t phys[2];
	uint64_t bg_used;        /* the block group's "used" (from its BLOCK_GROUP_ITEM) */
	int have_bg;
	uint64_t ext_used;       /* sum of the extents found in it */
};

struct btrfs_chunk_map {
	struct btrfs_chunk_ent *v;  /* sorted by logical, non-overlapping */
	size_t n, cap;
};

struct btrfs_fs {
	const struct region *r;
	struct imago_err *err;
	uint32_t sectorsize, nodesize;
	uint16_t csum_type;
	size_t csum_size;
	uint8_t fsid[16], meta_fsid[16];
	uint64_t devid, dev_total, total_bytes, bytes_used, generation;
	uint64_t flags, incompat, compat_ro;
	uint64_t root, chunk_root, log_root;
	uint8_t root_level, chunk_root_level;
	char label[256];
	struct btrfs_chunk_map sys;    /* from the superblock's sys_chunk_array */
	struct btrfs_chunk_map full;   /* from the chunk tree */
	uint8_t *nodebuf[BTRFS_MAX_LEVEL];
	uint64_t nodes_visited, nodes_cap;
};

static inline uint16_t btrfs_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t btrfs_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t btrfs_le64(const uint8_t *p)
{
	return (uint64_t)btrfs_le32(p) | (uint64_t)btrfs_le32(p + 4) << 32;
}

static inline void btrfs_key_read(const uint8_t *p, struct btrfs_key *k)
{
	k->objectid = btrfs_le64(p);
	k->type = p[8];
	k->offset = btrfs_le64(p + 9);
}

/* <0, 0, >0 as a sorts before, equal to, after b. */
static inline int btrfs_key_cmp(const struct btrfs_key *a, const struct btrfs_key *b)
{
	if (a->objectid != b->objectid)
		return a->objectid < b->objectid ? -1 : 1;
	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if (a->offset != b->offset)
		return a->offset < b->offset ? -1 : 1;
	return 0;
}

/* Checksum of len bytes in the filesystem's csum type into out (csum_size bytes): 0, or
 * -EOPNOTSUPP for a type we cannot compute. */
int btrfs_csum(const struct btrfs_fs *fs, const uint8_t *p, size_t len, uint8_t *out);

/* Parse one chunk item (struct btrfs_chunk, `size` bytes at p) describing logical start
 * `logical` into e, checked against the filesystem (single device, SINGLE or DUP, inside
 * the device, clear of its first MiB). 0, or a negative errno with err set (`where` names
 * the item for the message). */
int btrfs_chunk_parse(struct btrfs_fs *fs, uint64_t logical, const uint8_t *p, size_t size,
		      struct btrfs_chunk_ent *e, const char *where);

/* Add e to map, which must stay sorted and non-overlapping (entries come in key order). */
int btrfs_chunk_add(struct btrfs_fs *fs, struct btrfs_chunk_map *map,
		    const struct btrfs_chunk_ent *e, const char *where);

/* The chunk holding logical, or NULL. */
struct btrfs_chunk_ent *btrfs_chunk_find(const struct btrfs_chunk_map *map, uint64_t logical);

/* Called for each leaf item in key order; data/size are the item's payload. */
typedef int (*btrfs_item_fn)(struct btrfs_fs *fs, void *ctx, const struct btrfs_key *key,
			     const uint8_t *data, uint32_t size);

/* Walk the tree rooted at logical `root` (level `level`, generation `gen`, or 0 when
 * unknown) through `map`, checking every block (checksum, fsid, bytenr, level, parent
 * generation, item layout, strictly increasing keys), calling fn for each leaf item. */
int btrfs_walk(struct btrfs_fs *fs, const struct btrfs_chunk_map *map, const char *name,
	       uint64_t root, unsigned level, uint64_t gen, btrfs_item_fn fn, void *ctx);

#endif
