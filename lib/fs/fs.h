/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Filesystem allocation readers (DESIGN.md §2, §4): one driver per filesystem, listed in
 * registry.c. A driver recognises its filesystem in a region (a partition, a partition
 * device or a bare filesystem image) and marks the bytes the filesystem does not use as
 * FREE in an extent map of that region. Everything it is not sure about stays USED:
 * a reader may over-approximate the used set, never under-approximate it.
 *
 * Drivers parse data read from a disk, which may be damaged or hostile: every size, count
 * and offset is checked before use, memory is bounded (a reader never allocates more than
 * FS_MEM_LIMIT in all), and a structure that does not add up returns -EBADMSG with an
 * imago_err that says what and where. Drivers never print.
 */
#ifndef IMAGO_FS_FS_H
#define IMAGO_FS_FS_H

#include <stdint.h>

#include "extent/extent_map.h"
#include "imago.h"
#include "io/region.h"

#define FS_MEM_LIMIT (256u << 20)  /* per read_map call, all allocations together */

enum fs_flags {
	FS_DIRTY = 1 << 0,           /* marked not cleanly unmounted (NTFS dirty, FAT dirty bit, ext state) */
	FS_NEEDS_RECOVERY = 1 << 1,  /* a journal/log must be replayed (ext3/4 needs_recovery, XFS dirty log) */
	FS_HIBERNATED = 1 << 2,      /* Windows hibernation / fast startup (NTFS) */
	FS_ERRORS = 1 << 3,          /* the filesystem records errors (ext state, btrfs) */
};

struct fs_facts {
	char type[16];          /* "ext2", "ext3", "ext4", "ntfs", "fat12", "fat16", "fat32",
				   "exfat", "xfs", "btrfs", "swap" */
	char label[64];         /* UTF-8, "" if none */
	char uuid[40];          /* canonical text (or the volume serial as the fs shows it), "" if none */
	uint32_t block_size;    /* allocation unit in bytes (cluster, block) */
	uint64_t fs_size;       /* bytes the filesystem spans from the region start (<= region size) */
	uint64_t used_bytes;    /* bytes in use by the filesystem's own accounting */
	unsigned flags;         /* enum fs_flags */
	char state[128];        /* when flags != 0: what the filesystem says, for a message */
	int freezable;          /* fsfreeze(8) works on it when mounted (ext*, xfs, btrfs) */
};

struct fs_driver {
	const char *name;       /* "ext", "ntfs", "fat", "exfat", "xfs", "btrfs", "swap" */
	/* How sure the driver is that r holds its filesystem: 0 = not mine, 1..100. Reads only
	 * a few sectors; never fails (an I/O error is a 0). */
	int (*probe)(const struct region *r);
	/* Fill facts and mark FREE ranges in m. m has r->size bytes, all USED, on entry;
	 * offsets in m are relative to the region. Bytes past fs_size stay USED. Returns 0,
	 * or a negative errno with err set (-EBADMSG damaged, -EIO read error, -ENOMEM,
	 * -E2BIG a structure larger than FS_MEM_LIMIT allows). On failure m may have been
	 * changed and the caller must treat the whole region as USED. */
	int (*read_map)(const struct region *r, struct extent_map *m, struct fs_facts *facts,
			struct imago_err *err);
};

/* The drivers, NULL-terminated, in probing order. */
extern const struct fs_driver *const fs_drivers[];

/* The driver with the highest probe score for r (ties: first listed), or NULL. */
const struct fs_driver *fs_probe(const struct region *r);

#endif
