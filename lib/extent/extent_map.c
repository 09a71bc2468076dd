/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The extent map: a sorted array of runs tiling [0, size), coalesced (DESIGN.md §2).
 *
 * Written by hand: no well-kept library offers a coalescing interval map with this exact
 * on-disk-shaped representation, and the structure is small.
 *
 * Every function either succeeds completely or leaves the map as it was: memory is
 * reserved before any run is touched, so -ENOMEM never leaves a half-edited map.
 * Offsets and lengths may come from hostile images, so every end is computed with an
 * overflow check before it is compared.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "extent/extent_map.h"

/* The smallest array we allocate: most maps have a handful of runs, and this avoids a
 * chain of tiny reallocations while building one. */
#define EXTENT_MAP_MIN_CAP 8

static int state_valid(enum imago_state s)
{
	/* Through int: the enum's underlying type may be unsigned, and a value decoded from
	 * outside data can be anything. */
	int v = (int)s;
	return v >= (int)IMAGO_USED && v <= (int)IMAGO_UNTRIED;
}

static uint64_t run_end(const struct imago_extent *e)
{
	/* Only called on runs of a map that satisfies the invariants, where this cannot
	 * overflow (every end is <= size). */
	return e->offset + e->length;
}

const char *imago_state_name(enum imago_state s)
{
	switch (s) {
	case IMAGO_USED:
		return "used";
	case IMAGO_FREE:
		return "free";
	case IMAGO_ZERO:
		return "zero";
	case IMAGO_BAD:
		return "bad";
	case IMAGO_UNTRIED:
		return "untried";
	}
	return "invalid";
}

/* Make room for at least `need` runs. Grows geometrically so that building a map run by
 * run costs amortized O(1) per run. */
static int reserve(struct extent_map *m, size_t need)
{
	size_t ncap;
	struct imago_extent *nv;

	if (need <= m->cap)
		return 0;
	ncap = m->cap < EXTENT_MAP_MIN_CAP ? EXTENT_MAP_MIN_CAP : m->cap;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / sizeof(*m->v))
		return -ENOMEM;
	nv = realloc(m->v, ncap * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	m->v = nv;
	m->cap = ncap;
	return 0;
}

/* After runs were merged away, give memory back so the array stays O(runs) even after
 * a map shrank a lot (rescue can fragment a map and later heal it). Failure to shrink is
 * harmless: the old, larger block is still valid. */
static void maybe_shrink(struct extent_map *m)
{
	size_t ncap;
	struct imago_extent *nv;

	/* Halve until at least a quarter is in use, so a single set that merged many runs
	 * gives back all the slack at once; quartering (not halving) keeps a map that
	 * oscillates around a power of two from reallocating on every call. */
	ncap = m->cap;
	while (ncap > 4 * EXTENT_MAP_MIN_CAP && m->n <= ncap / 4)
		ncap /= 2;
	if (ncap == m->cap)
		return;
	nv = realloc(m->v, ncap * sizeof(*nv));
	if (!nv)
		return;
	m->v = nv;
	m->cap = ncap;
}

int extent_map_init(struct extent_map *m, uint64_t size, enum imago_state state)
{
	int r;

	if (!m)
		return -EINVAL;
	/* Zero first so that extent_map_free() is safe whatever happens below. */
	memset(m, 0, sizeof(*m));
	if (!state_valid(state))
		return -EINVAL;
	if (size == 0)
		return 0;
	r = reserve(m, 1);
	if (r < 0)
		return r;
	m->v[0] = (struct imago_extent){ .offset = 0, .length = size, .state = state };
	m->n = 1;
	m->size = size;
	return 0;
}

void extent_map_free(struct extent_map *m)
{
	if (!m)
		return;
	free(m->v);
	memset(m, 0, sizeof(*m));
}

ptrdiff_t extent_map_find(const struct extent_map *m, uint64_t offset)
{
	size_t lo, hi;

	if (!m || offset >= m->size || m->n == 0)
		return -1;
	/* Largest index whose run starts at or before offset; runs tile [0, size), so that
	 * run contains offset. */
	lo = 0;
	hi = m->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->v[mid].offset <= offset)
			lo = mid;
		else
			hi = mid;
	}
	return (ptrdiff_t)lo;
}

enum imago_state extent_map_state_at(const struct extent_map *m, uint64_t offset)
{
	ptrdiff_t i = extent_map_find(m, offset);

	/* Out of range is a caller bug, but the library never aborts: answer with a value
	 * that is no state, which imago_state_name() calls "invalid". */
	if (i < 0)
		return (enum imago_state)0;
	return m->v[i].state;
}

int extent_map_set(struct extent_map *m, uint64_t offset, uint64_t length, enum imago_state state)
{
	struct imago_extent repl[3];
	size_t i, j, lo, hi, k = 0, removed, n_new;
	uint64_t end, new_start, new_end, jend;
	int r;

	if (!m || !state_valid(state))
		return -EINVAL;
	if (offset > m->size)
		return -EINVAL;
	if (length == 0)
		return 0;
	if (length > m->size - offset) /* also catches offset + length overflowing */
		return -EINVAL;
	end = offset + length;

	i = (size_t)extent_map_find(m, offset);
	/* Already in that state: the common case when a filesystem reader re-marks ranges. */
	if (m->v[i].state == state && run_end(&m->v[i]) >= end)
		return 0;
	j = (size_t)extent_map_find(m, end - 1);

	/* Replace runs lo..hi with up to three: the untouched head of run i, the new run
	 * (widened by any neighbour of the same state), the untouched tail of run j. */
	lo = i;
	hi = j;
	new_start = offset;
	new_end = end;
	if (m->v[i].offset < offset) {
		if (m->v[i].state == state)
			new_start = m->v[i].offset;
		else
			repl[k++] = (struct imago_extent){ .offset = m->v[i].offset,
							   .length = offset - m->v[i].offset,
							   .state = m->v[i].state };
	} else if (i > 0 && m->v[i - 1].state == state) {
		lo = i - 1;
		new_start = m->v[i - 1].offset;
	}
	/* Middle run goes after the head; the tail's index is known only now. */
	size_t mid = k++;
	jend = run_end(&m->v[j]);
	if (jend > end) {
		if (m->v[j].state == state)
			new_end = jend;
		else
			repl[k++] = (struct imago_extent){ .offset = end, .length = jend - end,
							   .state = m->v[j].state };
	} else if (j + 1 < m->n && m->v[j + 1].state == state) {
		hi = j + 1;
		new_end = run_end(&m->v[j + 1]);
	}
	repl[mid] = (struct imago_extent){ .offset = new_start, .length = new_end - new_start,
					   .state = state };

	removed = hi - lo + 1;
	n_new = m->n - removed + k;
	r = reserve(m, n_new);
	if (r < 0)
		return r;
	if (k != removed)
		memmove(&m->v[lo + k], &m->v[hi + 1], (m->n - hi - 1) * sizeof(*m->v));
	memcpy(&m->v[lo], repl, k * sizeof(*m->v));
	m->n = n_new;
	if (k < removed)
		maybe_shrink(m);
	return 0;
}

int extent_map_append(struct extent_map *m, uint64_t length, enum imago_state state)
{
	int r;

	if (!m || !state_valid(state))
		return -EINVAL;
	if (length > UINT64_MAX - m->size)
		return -EINVAL;
	if (length == 0)
		return 0;
	if (m->n > 0 && m->v[m->n - 1].state == state) {
		m->v[m->n - 1].length += length;
		m->size += length;
		return 0;
	}
	r = reserve(m, m->n + 1);
	if (r < 0)
		return r;
	m->v[m->n++] = (struct imago_extent){ .offset = m->size, .length = length, .state = state };
	m->size += length;
	return 0;
}

void extent_map_totals(const struct extent_map *m, uint64_t out[6])
{
	size_t i;

	memset(out, 0, 6 * sizeof(out[0]));
	if (!m)
		return;
	for (i = 0; i < m->n; i++)
		if (state_valid(m->v[i].state))
			out[m->v[i].state] += m->v[i].length;
}

int extent_map_range_has(const struct extent_map *m, uint64_t offset, uint64_t length,
			 enum imago_state state)
{
	uint64_t end;
	ptrdiff_t i;

	/* The answer is a yes/no, so a negative errno would read as "yes". Instead, the part
	 * of the range beyond the device is ignored: no byte there is in any state. */
	if (!m || length == 0 || offset >= m->size)
		return 0;
	end = length > m->size - offset ? m->size : offset + length;
	for (i = extent_map_find(m, offset); (size_t)i < m->n && m->v[i].offset < end; i++)
		if (m->v[i].state == state)
			return 1;
	return 0;
}

int extent_map_validate(const struct extent_map *m, size_t *bad)
{
	uint64_t expect = 0;
	size_t i;

	if (bad)
		*bad = 0;
	if (!m)
		return -EINVAL;
	if (m->n > 0 && !m->v)
		return -EBADMSG;
	for (i = 0; i < m->n; i++) {
		const struct imago_extent *e = &m->v[i];
		/* offset == expect catches unsorted runs, gaps and overlaps in one test, and
		 * the first run not starting at 0. */
		if (e->offset != expect || e->length == 0 || !state_valid(e->state) ||
		    e->length > m->size - e->offset /* past size, or overflow */ ||
		    (i > 0 && m->v[i - 1].state == e->state)) {
			if (bad)
				*bad = i;
			return -EBADMSG;
		}
		expect = e->offset + e->length;
	}
	if (expect != m->size) {
		/* Runs stop short of the device end: blame the last run (or 0 for none). */
		if (bad)
			*bad = m->n ? m->n - 1 : 0;
		return -EBADMSG;
	}
	return 0;
}

int extent_map_adopt(struct extent_map *m, struct imago_extent *v, size_t n, uint64_t size)
{
	struct extent_map tmp = { .v = v, .n = n, .cap = n, .size = size };
	int r;

	if (!m)
		return -EINVAL;
	/* Like init: m is treated as not holding a map, and is left empty on failure so
	 * that extent_map_free() is safe either way. */
	memset(m, 0, sizeof(*m));
	if (n > 0 && !v)
		return -EINVAL;
	r = extent_map_validate(&tmp, NULL);
	if (r < 0)
		return r;
	*m = tmp;
	return 0;
}

uint64_t extent_runs_next_kept_chunk(const struct imago_extent *v, size_t n, size_t *cur,
				     uint64_t off, uint64_t size, uint64_t chunk)
{
	while (off < size) {
		while (*cur < n && v[*cur].offset + v[*cur].length <= off)
			(*cur)++;
		if (*cur >= n || v[*cur].state != IMAGO_FREE)
			return off;
		uint64_t end = v[*cur].offset + v[*cur].length;
		if (end >= size)
			return size;
		uint64_t c = end / chunk * chunk; /* the chunk where the next (kept) run starts */
		if (c <= off)
			return off;
		off = c;
	}
	return size;
}
