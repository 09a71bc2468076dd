/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The extent map (DESIGN.md §2, docs/FORMAT.md §5.2): a sorted, non-overlapping,
 * coalesced list of byte ranges of a device, each with a state. It is the one structure
 * every stage speaks: filesystem readers mark FREE, zero detection marks ZERO, rescue marks
 * BAD/UNTRIED, the image stores it, restore and mount read it.
 *
 * Kept as runs (never one bit per block): memory grows with the number of runs, not with
 * the device size. Operations are O(log n) to find + O(k) for the runs touched.
 */
#ifndef IMAGO_EXTENT_MAP_H
#define IMAGO_EXTENT_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "imago.h"

struct extent_map {
	struct imago_extent *v;  /* sorted by offset, tiles [0, size) exactly, coalesced */
	size_t n, cap;
	uint64_t size;
};

/* A new map of `size` bytes, all in `state`. size 0 gives an empty map. */
int extent_map_init(struct extent_map *m, uint64_t size, enum imago_state state);
void extent_map_free(struct extent_map *m);

/* Set [offset, offset+length) to state, splitting and coalescing runs. The range must lie
 * inside [0, size); length 0 is a no-op. -EINVAL if out of range; -ENOMEM. */
int extent_map_set(struct extent_map *m, uint64_t offset, uint64_t length, enum imago_state state);

/* Append a run at the end while building a map in order (offset must equal the current
 * end); grows size. Coalesces with the last run. Cheap: used by the image writer. */
int extent_map_append(struct extent_map *m, uint64_t length, enum imago_state state);

/* Index of the run containing offset, or -1 if offset >= size. */
ptrdiff_t extent_map_find(const struct extent_map *m, uint64_t offset);

/* State of the byte at offset (offset < size). */
enum imago_state extent_map_state_at(const struct extent_map *m, uint64_t offset);

/* Bytes in each state; out indexed by enum imago_state, length 6. */
void extent_map_totals(const struct extent_map *m, uint64_t out[6]);

/* Nonzero if any byte of [offset, offset+length) is in state. */
int extent_map_range_has(const struct extent_map *m, uint64_t offset, uint64_t length,
			 enum imago_state state);

/* Check the invariants on a map decoded from outside data (sorted, tiling [0, size),
 * non-empty runs, valid states, coalesced). 0 or -EBADMSG; *bad gets the first bad index. */
int extent_map_validate(const struct extent_map *m, size_t *bad);

/* Take ownership of an array of runs decoded from an image; validates; on failure the
 * array is not taken. */
int extent_map_adopt(struct extent_map *m, struct imago_extent *v, size_t n, uint64_t size);

/* For readers walking a sorted, coalesced run array v[0..n) that tiles [0, size) by
 * chunks of `chunk` bytes (create, clone): the offset of the first chunk at or after off
 * (a multiple of chunk) that holds a byte which is not FREE, or size when none is left.
 * *cur is the caller's cursor into v (start at 0; offsets only grow). */
uint64_t extent_runs_next_kept_chunk(const struct imago_extent *v, size_t n, size_t *cur,
				     uint64_t off, uint64_t size, uint64_t chunk);

#endif
