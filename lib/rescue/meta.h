/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Where a filesystem keeps its own metadata, so that a rescue can read it before the
 * data (--used-first / --used-only): on ext2/3/4, each group's superblock copy and group
 * descriptors, bitmaps and inode table, and the journal, as libext2fs reports them from
 * the group descriptors. Other filesystems: nothing (the caller falls back to the
 * partition's first MiB).
 */
#ifndef IMAGO_RESCUE_META_H
#define IMAGO_RESCUE_META_H

#include <stddef.h>
#include <stdint.h>

#include "io/region.h"
#include "rescue/rescue.h"

/* Append the metadata ranges of the ext2/3/4 filesystem in r (offsets from r's file
 * start: r->base added) to *v (n entries, cap allocated; grown with realloc), unsorted.
 * Returns how many were added (0: not ext, or unreadable), or -ENOMEM. At most max_add. */
int rescue_ext_metadata(const struct region *r, struct rescue_range **v, size_t *n, size_t *cap,
			size_t max_add);

#endif
