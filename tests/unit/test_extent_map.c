/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Unit tests of the extent map (lib/extent/extent_map.c). Hand-written cases pin down the
 * split/coalesce rules and the argument checks; a randomized case compares thousands of
 * set() calls against a byte-per-unit reference model, because the edge cases of interval
 * splitting are easy to miss by hand.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "extent/extent_map.h"

/* Compare a map with an expected list of (offset, length, state) runs. */
struct run {
	uint64_t off, len;
	int state;
};

static int map_equals(const struct extent_map *m, const struct run *r, size_t n)
{
	size_t i;

	if (m->n != n)
		return 0;
	for (i = 0; i < n; i++)
		if (m->v[i].offset != r[i].off || m->v[i].length != r[i].len ||
		    (int)m->v[i].state != r[i].state)
			return 0;
	return 1;
}

#define EXPECT_RUNS(m, ...)                                                              \
	do {                                                                             \
		static const struct run exp_[] = { __VA_ARGS__ };                        \
		CHECK(map_equals((m), exp_, sizeof(exp_) / sizeof(exp_[0])));            \
		CHECK(extent_map_validate((m), NULL) == 0);                              \
	} while (0)

enum { U = IMAGO_USED, F = IMAGO_FREE, Z = IMAGO_ZERO, B = IMAGO_BAD, T = IMAGO_UNTRIED };

/* A map built from explicit runs, for tests that need a particular starting shape. */
static void build(struct extent_map *m, const struct run *r, size_t n)
{
	size_t i;

	extent_map_init(m, 0, IMAGO_USED);
	for (i = 0; i < n; i++)
		extent_map_append(m, r[i].len, (enum imago_state)r[i].state);
}

/* ---------------------------------------------------------------- basics */

static void test_init_empty(void)
{
	struct extent_map m;
	uint64_t t[6];

	REQUIRE(extent_map_init(&m, 0, IMAGO_USED) == 0);
	CHECK(m.n == 0 && m.size == 0);
	CHECK(extent_map_validate(&m, NULL) == 0);
	CHECK(extent_map_find(&m, 0) == -1);
	CHECK(extent_map_range_has(&m, 0, 10, IMAGO_USED) == 0);
	extent_map_totals(&m, t);
	for (int i = 0; i < 6; i++)
		CHECK(t[i] == 0);
	/* Nothing to set inside an empty device. */
	CHECK(extent_map_set(&m, 0, 1, IMAGO_FREE) == -EINVAL);
	CHECK(extent_map_set(&m, 0, 0, IMAGO_FREE) == 0);
	CHECK(m.n == 0);
	extent_map_free(&m);
	CHECK(m.v == NULL && m.n == 0 && m.cap == 0 && m.size == 0);
	/* Free is idempotent and NULL-safe. */
	extent_map_free(&m);
	extent_map_free(NULL);
}

static void test_init_whole(void)
{
	struct extent_map m;

	REQUIRE(extent_map_init(&m, 1000, IMAGO_FREE) == 0);
	EXPECT_RUNS(&m, { 0, 1000, F });
	CHECK(m.cap >= m.n);
	extent_map_free(&m);

	REQUIRE(extent_map_init(&m, UINT64_MAX, IMAGO_UNTRIED) == 0);
	EXPECT_RUNS(&m, { 0, UINT64_MAX, T });
	extent_map_free(&m);
}

static void test_init_bad_state(void)
{
	struct extent_map m;

	CHECK(extent_map_init(&m, 10, (enum imago_state)0) == -EINVAL);
	CHECK(m.v == NULL && m.n == 0);
	extent_map_free(&m);
	CHECK(extent_map_init(&m, 10, (enum imago_state)6) == -EINVAL);
	extent_map_free(&m);
	CHECK(extent_map_init(&m, 10, (enum imago_state)-1) == -EINVAL);
	extent_map_free(&m);
	CHECK(extent_map_init(NULL, 10, IMAGO_USED) == -EINVAL);
}

/* ---------------------------------------------------------------- set */

static void test_set_start(void)
{
	struct extent_map m;

	extent_map_init(&m, 100, IMAGO_USED);
	REQUIRE(extent_map_set(&m, 0, 10, IMAGO_FREE) == 0);
	EXPECT_RUNS(&m, { 0, 10, F }, { 10, 90, U });
	extent_map_free(&m);
}

static void test_set_middle(void)
{
	struct extent_map m;

	extent_map_init(&m, 100, IMAGO_USED);
	REQUIRE(extent_map_set(&m, 40, 20, IMAGO_ZERO) == 0);
	EXPECT_RUNS(&m, { 0, 40, U }, { 40, 20, Z }, { 60, 40, U });
	extent_map_free(&m);
}

static void test_set_end(void)
{
	struct extent_map m;

	extent_map_init(&m, 100, IMAGO_USED);
	REQUIRE(extent_map_set(&m, 90, 10, IMAGO_BAD) == 0);
	EXPECT_RUNS(&m, { 0, 90, U }, { 90, 10, B });
	/* Setting one byte at the very end. */
	REQUIRE(extent_map_set(&m, 99, 1, IMAGO_UNTRIED) == 0);
	EXPECT_RUNS(&m, { 0, 90, U }, { 90, 9, B }, { 99, 1, T });
	extent_map_free(&m);
}

static void test_set_whole(void)
{
	struct extent_map m;

	extent_map_init(&m, 100, IMAGO_USED);
	extent_map_set(&m, 10, 10, IMAGO_FREE);
	extent_map_set(&m, 50, 10, IMAGO_BAD);
	REQUIRE(extent_map_set(&m, 0, 100, IMAGO_ZERO) == 0);
	EXPECT_RUNS(&m, { 0, 100, Z });
	extent_map_free(&m);
}

static void test_set_spanning_many(void)
{
	static const struct run r[] = { { 0, 10, U }, { 10, 10, F }, { 20, 10, Z },
					{ 30, 10, B }, { 40, 10, T }, { 50, 10, U },
					{ 60, 10, F }, { 70, 30, Z } };
	struct extent_map m;

	build(&m, r, 8);
	REQUIRE(m.n == 8);
	/* Starts inside run 1, ends inside run 6: heads and tails are kept. */
	REQUIRE(extent_map_set(&m, 15, 50, IMAGO_BAD) == 0);
	EXPECT_RUNS(&m, { 0, 10, U }, { 10, 5, F }, { 15, 50, B }, { 65, 5, F }, { 70, 30, Z });
	extent_map_free(&m);

	/* Starting and ending exactly on run boundaries. */
	build(&m, r, 8);
	REQUIRE(extent_map_set(&m, 20, 40, IMAGO_UNTRIED) == 0);
	EXPECT_RUNS(&m, { 0, 10, U }, { 10, 10, F }, { 20, 40, T }, { 60, 10, F },
		    { 70, 30, Z });
	extent_map_free(&m);

	/* Same state as the partly covered first and last runs: they are absorbed. */
	build(&m, r, 8);
	REQUIRE(extent_map_set(&m, 25, 50, IMAGO_ZERO) == 0);
	EXPECT_RUNS(&m, { 0, 10, U }, { 10, 10, F }, { 20, 80, Z });
	extent_map_free(&m);
}

static void test_set_coalesce_both(void)
{
	struct extent_map m;

	extent_map_init(&m, 30, IMAGO_USED);
	extent_map_set(&m, 10, 10, IMAGO_FREE);
	EXPECT_RUNS(&m, { 0, 10, U }, { 10, 10, F }, { 20, 10, U });
	/* Filling the hole exactly merges all three. */
	REQUIRE(extent_map_set(&m, 10, 10, IMAGO_USED) == 0);
	EXPECT_RUNS(&m, { 0, 30, U });

	/* Neighbours of the same state that are not exactly adjacent to the range. */
	extent_map_set(&m, 10, 10, IMAGO_FREE);
	REQUIRE(extent_map_set(&m, 5, 20, IMAGO_USED) == 0);
	EXPECT_RUNS(&m, { 0, 30, U });

	/* Only the left neighbour matches. */
	extent_map_set(&m, 10, 10, IMAGO_FREE);
	extent_map_set(&m, 20, 10, IMAGO_ZERO);
	REQUIRE(extent_map_set(&m, 10, 10, IMAGO_USED) == 0);
	EXPECT_RUNS(&m, { 0, 20, U }, { 20, 10, Z });

	/* Only the right neighbour matches. */
	REQUIRE(extent_map_set(&m, 10, 10, IMAGO_ZERO) == 0);
	EXPECT_RUNS(&m, { 0, 10, U }, { 10, 20, Z });
	extent_map_free(&m);
}

static void test_set_same_state_noop(void)
{
	struct extent_map m;
	struct imago_extent *before;
	size_t cap;

	extent_map_init(&m, 100, IMAGO_USED);
	extent_map_set(&m, 40, 20, IMAGO_FREE);
	before = m.v;
	cap = m.cap;
	REQUIRE(extent_map_set(&m, 45, 10, IMAGO_FREE) == 0);
	REQUIRE(extent_map_set(&m, 40, 20, IMAGO_FREE) == 0);
	REQUIRE(extent_map_set(&m, 0, 40, IMAGO_USED) == 0);
	REQUIRE(extent_map_set(&m, 0, 0, IMAGO_BAD) == 0);
	REQUIRE(extent_map_set(&m, 100, 0, IMAGO_BAD) == 0);
	EXPECT_RUNS(&m, { 0, 40, U }, { 40, 20, F }, { 60, 40, U });
	CHECK(m.v == before && m.cap == cap);
	extent_map_free(&m);
}

static void test_set_bad_args(void)
{
	struct extent_map m;

	extent_map_init(&m, 100, IMAGO_USED);
	extent_map_set(&m, 10, 10, IMAGO_FREE);
	CHECK(extent_map_set(&m, 100, 1, IMAGO_FREE) == -EINVAL);
	CHECK(extent_map_set(&m, 99, 2, IMAGO_FREE) == -EINVAL);
	CHECK(extent_map_set(&m, 0, 101, IMAGO_FREE) == -EINVAL);
	CHECK(extent_map_set(&m, 101, 0, IMAGO_FREE) == -EINVAL);
	CHECK(extent_map_set(&m, UINT64_MAX, 1, IMAGO_FREE) == -EINVAL);
	/* offset + length wraps around to something small and in range. */
	CHECK(extent_map_set(&m, 50, UINT64_MAX - 10, IMAGO_FREE) == -EINVAL);
	CHECK(extent_map_set(&m, 1, UINT64_MAX, IMAGO_FREE) == -EINVAL);
	CHECK(extent_map_set(&m, 0, 10, (enum imago_state)0) == -EINVAL);
	CHECK(extent_map_set(&m, 0, 10, (enum imago_state)6) == -EINVAL);
	CHECK(extent_map_set(NULL, 0, 10, IMAGO_FREE) == -EINVAL);
	/* Failed calls left the map alone. */
	EXPECT_RUNS(&m, { 0, 10, U }, { 10, 10, F }, { 20, 80, U });
	extent_map_free(&m);
}

static void test_set_huge_offsets(void)
{
	struct extent_map m;

	/* A device as large as u64 allows: ends must be computed without overflow. */
	extent_map_init(&m, UINT64_MAX, IMAGO_USED);
	REQUIRE(extent_map_set(&m, UINT64_MAX - 1, 1, IMAGO_BAD) == 0);
	EXPECT_RUNS(&m, { 0, UINT64_MAX - 1, U }, { UINT64_MAX - 1, 1, B });
	CHECK(extent_map_set(&m, UINT64_MAX - 1, 2, IMAGO_BAD) == -EINVAL);
	REQUIRE(extent_map_set(&m, 1ull << 63, (1ull << 63) - 1, IMAGO_FREE) == 0);
	EXPECT_RUNS(&m, { 0, 1ull << 63, U }, { 1ull << 63, (1ull << 63) - 1, F });
	CHECK(extent_map_state_at(&m, UINT64_MAX - 1) == IMAGO_FREE);
	CHECK(extent_map_find(&m, UINT64_MAX) == -1);
	CHECK(extent_map_range_has(&m, 0, UINT64_MAX, IMAGO_FREE));
	CHECK(!extent_map_range_has(&m, 0, UINT64_MAX, IMAGO_BAD));
	extent_map_free(&m);
}

/* ---------------------------------------------------------------- append */

static void test_append(void)
{
	struct extent_map m;

	extent_map_init(&m, 0, IMAGO_USED);
	REQUIRE(extent_map_append(&m, 10, IMAGO_USED) == 0);
	REQUIRE(extent_map_append(&m, 5, IMAGO_USED) == 0); /* coalesces */
	REQUIRE(extent_map_append(&m, 0, IMAGO_FREE) == 0); /* no-op */
	REQUIRE(extent_map_append(&m, 20, IMAGO_ZERO) == 0);
	REQUIRE(extent_map_append(&m, 1, IMAGO_USED) == 0);
	CHECK(m.size == 36);
	EXPECT_RUNS(&m, { 0, 15, U }, { 15, 20, Z }, { 35, 1, U });

	CHECK(extent_map_append(&m, 1, (enum imago_state)0) == -EINVAL);
	CHECK(extent_map_append(&m, 1, (enum imago_state)9) == -EINVAL);
	CHECK(extent_map_append(&m, UINT64_MAX - 35, IMAGO_FREE) == -EINVAL);
	CHECK(extent_map_append(NULL, 1, IMAGO_FREE) == -EINVAL);
	CHECK(m.size == 36 && m.n == 3);
	/* Growing right up to the largest size is fine. */
	REQUIRE(extent_map_append(&m, UINT64_MAX - 36, IMAGO_FREE) == 0);
	CHECK(m.size == UINT64_MAX);
	CHECK(extent_map_append(&m, 1, IMAGO_FREE) == -EINVAL);
	CHECK(extent_map_validate(&m, NULL) == 0);
	extent_map_free(&m);
}

static void test_append_many(void)
{
	struct extent_map m;
	uint64_t t[6];
	size_t i;
	int ok = 1;

	/* Many alternating runs: exercises growth; each run must stay separate. */
	extent_map_init(&m, 0, IMAGO_USED);
	for (i = 0; i < 100000; i++)
		if (extent_map_append(&m, i + 1, (i & 1) ? IMAGO_ZERO : IMAGO_USED) < 0)
			ok = 0;
	REQUIRE(ok);
	CHECK(m.n == 100000);
	CHECK(m.cap >= m.n && m.cap <= 2 * m.n);
	CHECK(m.size == 100000ull * 100001 / 2);
	CHECK(extent_map_validate(&m, NULL) == 0);
	extent_map_totals(&m, t);
	CHECK(t[IMAGO_USED] + t[IMAGO_ZERO] == m.size);
	CHECK(t[IMAGO_USED] == 50000ull * 50000); /* 1 + 3 + ... + 99999 */
	/* Every run boundary is found by binary search. */
	for (i = 0; i < m.n; i++) {
		if (extent_map_find(&m, m.v[i].offset) != (ptrdiff_t)i ||
		    extent_map_find(&m, m.v[i].offset + m.v[i].length - 1) != (ptrdiff_t)i)
			ok = 0;
	}
	CHECK(ok);
	/* Setting everything to one state gives the memory back. */
	REQUIRE(extent_map_set(&m, 0, m.size, IMAGO_FREE) == 0);
	CHECK(m.n == 1);
	CHECK(m.cap <= 32);
	extent_map_free(&m);
}

/* ---------------------------------------------------------------- queries */

static void test_find_boundaries(void)
{
	static const struct run r[] = { { 0, 1, U }, { 1, 9, F }, { 10, 10, Z }, { 20, 1, B } };
	struct extent_map m;

	build(&m, r, 4);
	CHECK(extent_map_find(&m, 0) == 0);
	CHECK(extent_map_find(&m, 1) == 1);
	CHECK(extent_map_find(&m, 9) == 1);
	CHECK(extent_map_find(&m, 10) == 2);
	CHECK(extent_map_find(&m, 19) == 2);
	CHECK(extent_map_find(&m, 20) == 3);
	CHECK(extent_map_find(&m, 21) == -1);
	CHECK(extent_map_find(&m, UINT64_MAX) == -1);
	CHECK(extent_map_find(NULL, 0) == -1);
	extent_map_free(&m);
}

static void test_state_at(void)
{
	static const struct run r[] = { { 0, 5, U }, { 5, 5, F }, { 10, 5, Z }, { 15, 5, B },
					{ 20, 5, T } };
	struct extent_map m;

	build(&m, r, 5);
	CHECK(extent_map_state_at(&m, 0) == IMAGO_USED);
	CHECK(extent_map_state_at(&m, 4) == IMAGO_USED);
	CHECK(extent_map_state_at(&m, 5) == IMAGO_FREE);
	CHECK(extent_map_state_at(&m, 12) == IMAGO_ZERO);
	CHECK(extent_map_state_at(&m, 15) == IMAGO_BAD);
	CHECK(extent_map_state_at(&m, 24) == IMAGO_UNTRIED);
	/* Out of range is no state at all rather than a crash. */
	CHECK((int)extent_map_state_at(&m, 25) == 0);
	CHECK(strcmp(imago_state_name(extent_map_state_at(&m, 25)), "invalid") == 0);
	extent_map_free(&m);
}

static void test_totals(void)
{
	static const struct run r[] = { { 0, 5, U }, { 5, 6, F }, { 11, 7, Z }, { 18, 8, B },
					{ 26, 9, T }, { 35, 10, U } };
	struct extent_map m;
	uint64_t t[6];

	build(&m, r, 6);
	memset(t, 0xff, sizeof(t)); /* totals must overwrite, not add */
	extent_map_totals(&m, t);
	CHECK(t[0] == 0);
	CHECK(t[IMAGO_USED] == 15);
	CHECK(t[IMAGO_FREE] == 6);
	CHECK(t[IMAGO_ZERO] == 7);
	CHECK(t[IMAGO_BAD] == 8);
	CHECK(t[IMAGO_UNTRIED] == 9);
	extent_map_free(&m);
}

static void test_range_has(void)
{
	static const struct run r[] = { { 0, 10, U }, { 10, 10, F }, { 20, 10, U } };
	struct extent_map m;

	build(&m, r, 3);
	CHECK(extent_map_range_has(&m, 0, 30, IMAGO_FREE));
	CHECK(extent_map_range_has(&m, 9, 2, IMAGO_FREE));
	CHECK(!extent_map_range_has(&m, 0, 10, IMAGO_FREE));
	CHECK(extent_map_range_has(&m, 10, 1, IMAGO_FREE));
	CHECK(extent_map_range_has(&m, 19, 1, IMAGO_FREE));
	CHECK(!extent_map_range_has(&m, 20, 10, IMAGO_FREE));
	CHECK(extent_map_range_has(&m, 15, 10, IMAGO_USED));
	CHECK(!extent_map_range_has(&m, 11, 5, IMAGO_USED));
	CHECK(!extent_map_range_has(&m, 0, 30, IMAGO_ZERO));
	/* Empty ranges hold nothing. */
	CHECK(!extent_map_range_has(&m, 10, 0, IMAGO_FREE));
	/* Beyond the device there are no bytes; what lies inside still counts. */
	CHECK(!extent_map_range_has(&m, 30, 10, IMAGO_USED));
	CHECK(!extent_map_range_has(&m, UINT64_MAX, 10, IMAGO_USED));
	CHECK(extent_map_range_has(&m, 25, 100, IMAGO_USED));
	CHECK(extent_map_range_has(&m, 5, UINT64_MAX, IMAGO_FREE));
	CHECK(!extent_map_range_has(&m, 21, UINT64_MAX, IMAGO_FREE));
	CHECK(!extent_map_range_has(NULL, 0, 1, IMAGO_USED));
	extent_map_free(&m);
}

static void test_state_names(void)
{
	CHECK(strcmp(imago_state_name(IMAGO_USED), "used") == 0);
	CHECK(strcmp(imago_state_name(IMAGO_FREE), "free") == 0);
	CHECK(strcmp(imago_state_name(IMAGO_ZERO), "zero") == 0);
	CHECK(strcmp(imago_state_name(IMAGO_BAD), "bad") == 0);
	CHECK(strcmp(imago_state_name(IMAGO_UNTRIED), "untried") == 0);
	CHECK(strcmp(imago_state_name((enum imago_state)0), "invalid") == 0);
	CHECK(strcmp(imago_state_name((enum imago_state)6), "invalid") == 0);
	CHECK(strcmp(imago_state_name((enum imago_state)-1), "invalid") == 0);
}

/* ---------------------------------------------------------------- validate / adopt */

/* Validate a raw run array without building it through the API. */
static int validate_raw(const struct imago_extent *v, size_t n, uint64_t size, size_t *bad)
{
	struct extent_map m = { .v = (struct imago_extent *)v, .n = n, .cap = n, .size = size };
	return extent_map_validate(&m, bad);
}

#define E(o, l, s) { .offset = (o), .length = (l), .state = (enum imago_state)(s) }

static void test_validate(void)
{
	size_t bad;

	{
		const struct imago_extent v[] = { E(0, 10, U), E(10, 10, F), E(20, 5, U) };
		CHECK(validate_raw(v, 3, 25, &bad) == 0);
		CHECK(validate_raw(v, 3, 25, NULL) == 0);
	}
	CHECK(validate_raw(NULL, 0, 0, &bad) == 0);
	CHECK(extent_map_validate(NULL, &bad) == -EINVAL);
	{ /* no runs but a nonzero size */
		CHECK(validate_raw(NULL, 0, 5, &bad) == -EBADMSG);
		CHECK(bad == 0);
	}
	{ /* runs but no array */
		CHECK(validate_raw(NULL, 2, 5, &bad) == -EBADMSG);
	}
	{ /* first run not at 0 */
		const struct imago_extent v[] = { E(1, 9, U) };
		CHECK(validate_raw(v, 1, 10, &bad) == -EBADMSG && bad == 0);
	}
	{ /* unsorted */
		const struct imago_extent v[] = { E(0, 10, U), E(20, 10, F), E(10, 10, U) };
		CHECK(validate_raw(v, 3, 30, &bad) == -EBADMSG && bad == 1);
	}
	{ /* gap */
		const struct imago_extent v[] = { E(0, 10, U), E(10, 5, F), E(16, 4, U) };
		CHECK(validate_raw(v, 3, 20, &bad) == -EBADMSG && bad == 2);
	}
	{ /* overlap */
		const struct imago_extent v[] = { E(0, 10, U), E(9, 11, F) };
		CHECK(validate_raw(v, 2, 20, &bad) == -EBADMSG && bad == 1);
	}
	{ /* zero-length run */
		const struct imago_extent v[] = { E(0, 10, U), E(10, 0, F), E(10, 10, Z) };
		CHECK(validate_raw(v, 3, 20, &bad) == -EBADMSG && bad == 1);
	}
	{ /* zero-length run alone on an empty device */
		const struct imago_extent v[] = { E(0, 0, U) };
		CHECK(validate_raw(v, 1, 0, &bad) == -EBADMSG && bad == 0);
	}
	{ /* state 0 */
		const struct imago_extent v[] = { E(0, 10, U), E(10, 10, 0) };
		CHECK(validate_raw(v, 2, 20, &bad) == -EBADMSG && bad == 1);
	}
	{ /* state 6 */
		const struct imago_extent v[] = { E(0, 10, 6), E(10, 10, U) };
		CHECK(validate_raw(v, 2, 20, &bad) == -EBADMSG && bad == 0);
	}
	{ /* state with the top bit set (a hostile u32 from disk) */
		const struct imago_extent v[] = { E(0, 10, U), E(10, 10, 0x80000001u) };
		CHECK(validate_raw(v, 2, 20, &bad) == -EBADMSG && bad == 1);
	}
	{ /* not coalesced */
		const struct imago_extent v[] = { E(0, 10, U), E(10, 10, F), E(20, 10, F) };
		CHECK(validate_raw(v, 3, 30, &bad) == -EBADMSG && bad == 2);
	}
	{ /* ends before size */
		const struct imago_extent v[] = { E(0, 10, U), E(10, 10, F) };
		CHECK(validate_raw(v, 2, 21, &bad) == -EBADMSG && bad == 1);
	}
	{ /* ends after size */
		const struct imago_extent v[] = { E(0, 10, U), E(10, 10, F) };
		CHECK(validate_raw(v, 2, 19, &bad) == -EBADMSG && bad == 1);
	}
	{ /* runs on a size-0 device */
		const struct imago_extent v[] = { E(0, 10, U) };
		CHECK(validate_raw(v, 1, 0, &bad) == -EBADMSG && bad == 0);
	}
	{ /* offset + length overflows u64 and wraps to exactly size */
		const struct imago_extent v[] = { E(0, 10, U), E(10, UINT64_MAX - 5, F) };
		CHECK(validate_raw(v, 2, 4, &bad) == -EBADMSG);
	}
	{ /* the wrap-around that would make the next offset look right */
		const struct imago_extent v[] = { E(0, 10, U), E(10, UINT64_MAX, F), E(9, 1, U) };
		CHECK(validate_raw(v, 3, 10, &bad) == -EBADMSG);
	}
	{ /* a map reaching exactly UINT64_MAX is fine */
		const struct imago_extent v[] = { E(0, 10, U), E(10, UINT64_MAX - 10, F) };
		CHECK(validate_raw(v, 2, UINT64_MAX, &bad) == 0);
	}
}

static void test_adopt(void)
{
	struct extent_map m;
	struct imago_extent *v;

	v = malloc(3 * sizeof(*v));
	REQUIRE(v);
	v[0] = (struct imago_extent)E(0, 10, U);
	v[1] = (struct imago_extent)E(10, 10, F);
	v[2] = (struct imago_extent)E(20, 10, U);
	REQUIRE(extent_map_adopt(&m, v, 3, 30) == 0);
	CHECK(m.v == v && m.n == 3 && m.size == 30 && m.cap >= 3);
	CHECK(extent_map_state_at(&m, 15) == IMAGO_FREE);
	/* An adopted map is a normal map: it can grow and be edited. */
	REQUIRE(extent_map_set(&m, 5, 20, IMAGO_ZERO) == 0);
	EXPECT_RUNS(&m, { 0, 5, U }, { 5, 20, Z }, { 25, 5, U });
	REQUIRE(extent_map_append(&m, 5, IMAGO_BAD) == 0);
	EXPECT_RUNS(&m, { 0, 5, U }, { 5, 20, Z }, { 25, 5, U }, { 30, 5, B });
	extent_map_free(&m);

	/* Invalid array: not taken, map left empty, caller still owns (and frees) it. */
	v = malloc(2 * sizeof(*v));
	REQUIRE(v);
	v[0] = (struct imago_extent)E(0, 10, U);
	v[1] = (struct imago_extent)E(10, 10, U);
	CHECK(extent_map_adopt(&m, v, 2, 20) == -EBADMSG);
	CHECK(m.v == NULL && m.n == 0 && m.size == 0);
	extent_map_free(&m);
	CHECK(extent_map_adopt(&m, v, 2, 25) == -EBADMSG);
	free(v);

	/* Empty. */
	REQUIRE(extent_map_adopt(&m, NULL, 0, 0) == 0);
	CHECK(m.n == 0 && m.size == 0);
	extent_map_free(&m);
	CHECK(extent_map_adopt(&m, NULL, 0, 10) == -EBADMSG);
	CHECK(extent_map_adopt(&m, NULL, 1, 10) == -EINVAL);
	CHECK(extent_map_adopt(NULL, NULL, 0, 0) == -EINVAL);
}

/* ---------------------------------------------------------------- randomized */

/* xorshift64*: a fixed, self-contained generator so the sequence is the same everywhere. */
static uint64_t rng_state;

static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

#define MODEL_UNITS 4096

/* Check every invariant of m against the model, where model unit u stands for the bytes
 * [u * scale, (u + 1) * scale). Returns 0 if all agree. */
static int check_against_model(const struct extent_map *m, const unsigned char *model,
			       uint64_t scale)
{
	uint64_t t[6], mt[6] = { 0 };
	size_t i, u = 0;

	if (extent_map_validate(m, NULL) != 0 || m->size != MODEL_UNITS * scale)
		return 1;
	/* Memory stays proportional to the number of runs. */
	if (m->cap > 32 && m->cap > 4 * m->n + 4)
		return 2;
	/* Expand the runs and compare unit by unit; runs must fall on unit boundaries since
	 * every set() did. */
	for (i = 0; i < m->n; i++) {
		const struct imago_extent *e = &m->v[i];
		if (e->offset % scale || e->length % scale)
			return 3;
		for (uint64_t k = 0; k < e->length / scale; k++, u++)
			if (model[u] != (unsigned char)e->state)
				return 4;
	}
	if (u != MODEL_UNITS)
		return 5;
	/* Coalesced means the run count equals the number of state changes + 1. */
	size_t changes = 1;
	for (u = 1; u < MODEL_UNITS; u++)
		changes += model[u] != model[u - 1];
	if (changes != m->n)
		return 6;
	extent_map_totals(m, t);
	for (u = 0; u < MODEL_UNITS; u++)
		mt[model[u]] += scale;
	if (memcmp(t, mt, sizeof(t)) != 0)
		return 7;
	/* A few random point and range queries. */
	for (int q = 0; q < 8; q++) {
		uint64_t pu = rng() % MODEL_UNITS;
		uint64_t byte = pu * scale + rng() % scale;
		ptrdiff_t f = extent_map_find(m, byte);
		if (f < 0 || m->v[f].offset > byte || byte - m->v[f].offset >= m->v[f].length)
			return 8;
		if (extent_map_state_at(m, byte) != (enum imago_state)model[pu])
			return 9;
		uint64_t lu = rng() % 64 + 1;
		int st = (int)(rng() % 5) + 1, want = 0;
		for (uint64_t k = pu; k < pu + lu && k < MODEL_UNITS; k++)
			want |= model[k] == st;
		if (!!extent_map_range_has(m, pu * scale, lu * scale, (enum imago_state)st) != want)
			return 10;
	}
	return 0;
}

static void random_run(uint64_t seed, uint64_t scale, int ops)
{
	unsigned char model[MODEL_UNITS];
	struct extent_map m;
	int op, bad = 0, first_err = 0;

	rng_state = seed;
	memset(model, IMAGO_UNTRIED, sizeof(model));
	REQUIRE(extent_map_init(&m, MODEL_UNITS * scale, IMAGO_UNTRIED) == 0);
	for (op = 0; op < ops && !bad; op++) {
		uint64_t a = rng() % MODEL_UNITS, len;
		/* Mostly short ranges (fragmenting), sometimes long ones (healing), so the map
		 * swings between many and few runs. */
		switch (rng() % 8) {
		case 0:
			len = rng() % (MODEL_UNITS - a + 1);
			break;
		case 1:
			len = 0;
			break;
		default:
			len = rng() % 16 + 1;
			if (len > MODEL_UNITS - a)
				len = MODEL_UNITS - a;
			break;
		}
		/* Skew towards two states so that coalescing happens often. */
		int st = (rng() % 4) ? (int)(rng() % 2) + 1 : (int)(rng() % 5) + 1;
		if (extent_map_set(&m, a * scale, len * scale, (enum imago_state)st) != 0) {
			bad = 100;
			break;
		}
		memset(model + a, st, len);
		bad = check_against_model(&m, model, scale);
		/* Out-of-range calls must fail and leave the map untouched. */
		if (!bad && (op % 16) == 0) {
			uint64_t over = MODEL_UNITS - a + 1 + rng() % 8;
			if (extent_map_set(&m, a * scale, over * scale, IMAGO_BAD) != -EINVAL ||
			    extent_map_set(&m, a * scale + 1, UINT64_MAX, IMAGO_BAD) != -EINVAL)
				bad = 101;
			else
				bad = check_against_model(&m, model, scale);
		}
	}
	if (bad) {
		first_err = bad;
		printf("# random_run seed=%llu scale=%llu: op %d failed with code %d\n",
		       (unsigned long long)seed, (unsigned long long)scale, op, first_err);
	}
	CHECK(!bad);
	extent_map_free(&m);
}

static void test_random_vs_model(void)
{
	random_run(0x1234567887654321ull, 1, 20000);
}

static void test_random_vs_model_scaled(void)
{
	/* Same walk with units of 2^40 bytes: offsets far beyond 32 bits, ending near 2^52. */
	random_run(0x0badc0ffee15900dull, 1ull << 40, 5000);
}

static void test_random_vs_model_unaligned_scale(void)
{
	random_run(42, 4093, 5000);
}

/* Appending random runs and then re-setting them must give the same map as setting each
 * range on an initialised map: the two ways the writer and the readers build maps. */
static void test_random_append_equals_set(void)
{
	struct extent_map a, b;
	int i, ok = 1;

	rng_state = 7;
	extent_map_init(&a, 0, IMAGO_USED);
	extent_map_init(&b, 1000000, IMAGO_USED);
	uint64_t off = 0;
	for (i = 0; i < 5000 && off < 1000000; i++) {
		uint64_t len = rng() % 400 + 1;
		int st = (int)(rng() % 3) + 1;
		if (len > 1000000 - off)
			len = 1000000 - off;
		if (extent_map_append(&a, len, (enum imago_state)st) != 0 ||
		    extent_map_set(&b, off, len, (enum imago_state)st) != 0)
			ok = 0;
		off += len;
	}
	if (off < 1000000) {
		if (extent_map_append(&a, 1000000 - off, IMAGO_USED) != 0 ||
		    extent_map_set(&b, off, 1000000 - off, IMAGO_USED) != 0)
			ok = 0;
	}
	CHECK(ok);
	CHECK(extent_map_validate(&a, NULL) == 0);
	CHECK(extent_map_validate(&b, NULL) == 0);
	CHECK(a.n == b.n && a.size == b.size);
	/* Field by field: the struct has padding that memcmp would compare. */
	for (size_t k = 0; ok && a.n == b.n && k < a.n; k++)
		ok = a.v[k].offset == b.v[k].offset && a.v[k].length == b.v[k].length &&
		     a.v[k].state == b.v[k].state;
	CHECK(ok);
	extent_map_free(&a);
	extent_map_free(&b);
}

int main(void)
{
	check_prog_ = "extent_map";
	RUN(test_init_empty);
	RUN(test_init_whole);
	RUN(test_init_bad_state);
	RUN(test_set_start);
	RUN(test_set_middle);
	RUN(test_set_end);
	RUN(test_set_whole);
	RUN(test_set_spanning_many);
	RUN(test_set_coalesce_both);
	RUN(test_set_same_state_noop);
	RUN(test_set_bad_args);
	RUN(test_set_huge_offsets);
	RUN(test_append);
	RUN(test_append_many);
	RUN(test_find_boundaries);
	RUN(test_state_at);
	RUN(test_totals);
	RUN(test_range_has);
	RUN(test_state_names);
	RUN(test_validate);
	RUN(test_adopt);
	RUN(test_random_vs_model);
	RUN(test_random_vs_model_scaled);
	RUN(test_random_vs_model_unaligned_scale);
	RUN(test_random_append_equals_set);
	CHECK_MAIN_END();
}
