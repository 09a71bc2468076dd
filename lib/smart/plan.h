/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Smart imaging plan: what a disk (or a bare filesystem) holds and which of its bytes must
 * be kept. Reads the partition table, then asks the filesystem drivers about each
 * partition, and builds the allocation map (USED/FREE over the whole disk) that create,
 * clone and info use. Anything not understood stays USED; odd layouts fall back to
 * copying the whole disk, with a warning.
 */
#ifndef IMAGO_SMART_PLAN_H
#define IMAGO_SMART_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "extent/extent_map.h"
#include "fs/fs.h"
#include "imago.h"
#include "io/region.h"
#include "part/part.h"

#define PLAN_MAX_WARNINGS 32
#define PLAN_MAX_RUNS (1u << 20)   /* a map with more runs is coarsened (small FREE gaps kept) */

enum plan_part_status {
	PLAN_FS_OK = 0,          /* recognised; FREE bytes marked */
	PLAN_FS_UNKNOWN,         /* no driver recognised it: copied whole */
	PLAN_FS_FAILED,          /* a driver recognised it but could not read it: copied whole */
	PLAN_FS_UNSAFE,          /* dirty / needs recovery / hibernated: copied whole (--force) */
	PLAN_FS_CONTAINER,       /* MBR extended container: only its EBRs matter */
};

struct plan_part {
	struct part_entry entry;         /* number 0: the whole region (a bare filesystem) */
	const struct fs_driver *driver;  /* NULL when not recognised */
	struct fs_facts facts;
	enum plan_part_status status;
	uint64_t free_bytes;             /* bytes marked FREE in this partition */
	char message[512];               /* why FAILED / UNSAFE */
};

struct smart_plan {
	struct part_table *table;        /* the partition table (scheme PART_NONE if none) */
	struct plan_part *parts;
	size_t nparts;
	struct extent_map map;           /* USED/FREE over the whole region */
	int whole_disk;                  /* the layout was too odd: everything USED */
	char warnings[PLAN_MAX_WARNINGS][256];
	size_t nwarnings;
};

enum plan_flags {
	PLAN_TRUST_UNSAFE = 1 << 0,  /* use the bitmaps of dirty filesystems anyway (never for
					needs-recovery/hibernated: their bitmaps may be stale) */
	PLAN_NO_FS = 1 << 1,         /* read the partition table only (info of a table) */
};

/* Build the plan for a disk region. sector_size: the disk's logical sector size (0 =
 * detect). Returns 0 (warnings may have been added), -ENOMEM, or -EIO when the disk could
 * not be read at all. Damaged tables and filesystems are warnings, not errors. */
int smart_plan_build(const struct region *disk, uint32_t sector_size, unsigned flags,
		     struct smart_plan *p, struct imago_err *err);
void smart_plan_free(struct smart_plan *p);

/* Nonzero when [off, off+len) lies inside one of the table's own areas (MBR, EBRs, GPTs). */
int plan_in_table_area(const struct part_table *t, uint64_t off, uint64_t len);

/* The end of the last byte in [from, to) of disk that holds data: not zero, not FREE in
 * p->map and not in the table's own areas; 0 when there is none. Reads those bytes (the
 * space after the partitions, before a restore or clone to a smaller disk). 0, or the
 * -errno of a failed read with err set. */
int plan_last_data_end(const struct region *disk, const struct smart_plan *p, uint64_t from,
		       uint64_t to, uint64_t *end, struct imago_err *err);

/* Nonzero when a partition's filesystem is dirty, needs recovery or is hibernated. */
int plan_part_unsafe(const struct plan_part *pp);

#endif
