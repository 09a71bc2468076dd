/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target for the Linux swap reader (lib/fs/swap.c): the input is the start of a swap
 * area. It is run as it is, and zero-padded to the size its header claims when that is
 * larger than the input and at most PAD_MAX (the corpus keeps only the header pages of
 * real mkswap areas).
 *
 * Findings besides crashes, leaks and hangs (message on stderr, abort()):
 *   - probe says no and read_map succeeds; a failure without a matching imago_err;
 *   - a map that breaks the extent map's invariants;
 *   - after success: anything but exactly [page, fs_size) FREE (nothing FREE when
 *     hibernated), a page size that is not 4..64 KiB, fs_size past the region, used_bytes
 *     other than one page (or fs_size when hibernated).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs.h"
#include "fuzz.h"

#define PAD_MAX (4u << 20)

extern const struct fs_driver fs_swap_driver;

static void finding(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void finding(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fuzz_fs_swap finding: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

static void run(const uint8_t *data, size_t size, const char *what)
{
	struct region r = region_mem(data, size, "fuzz");
	int score = fs_swap_driver.probe(&r);
	struct extent_map m;
	if (extent_map_init(&m, size, IMAGO_USED) < 0)
		return;
	struct fs_facts f;
	struct imago_err err = { .code = 0 };
	memset(&f, 0, sizeof(f));
	int rc = fs_swap_driver.read_map(&r, &m, &f, &err);
	if (getenv("IMAGO_FUZZ_VERBOSE"))
		fprintf(stderr, "%s (%zu bytes): probe %d, read_map %d %s\n", what, size, score, rc,
			rc < 0 ? err.msg : f.state);

	size_t bad;
	if (extent_map_validate(&m, &bad) < 0)
		finding("extent map broken at run %zu", bad);
	if (rc < 0) {
		if (!err.msg[0] || err.code != rc)
			finding("read_map failed (%d) without a matching message", rc);
	} else {
		if (score <= 0)
			finding("probe says not swap but read_map succeeds");
		uint64_t tot[6];
		extent_map_totals(&m, tot);
		uint32_t ps = f.block_size;
		if (ps < 4096 || ps > 65536 || (ps & (ps - 1)))
			finding("page size %" PRIu32, ps);
		if (f.fs_size > size || f.fs_size < ps)
			finding("fs_size %" PRIu64 " in a region of %zu", f.fs_size, size);
		if (f.flags & FS_HIBERNATED) {
			if (tot[IMAGO_FREE] || f.used_bytes != f.fs_size)
				finding("hibernated, yet %" PRIu64 " FREE bytes, used %" PRIu64,
					tot[IMAGO_FREE], f.used_bytes);
		} else {
			if (f.used_bytes != ps || tot[IMAGO_FREE] != f.fs_size - ps ||
			    extent_map_range_has(&m, 0, ps, IMAGO_FREE))
				finding("FREE is not exactly the pages after the header");
		}
	}
	extent_map_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size, "input");

	/* Pad to what a version-1 header claims (first signature found, as the reader looks). */
	static const char *const sigs[] = { "SWAPSPACE2", "S1SUSPEND", "S2SUSPEND", "ULSUSPEND",
					    "LINHIB0001" };
	for (size_t ps = 4096; ps <= 65536 && ps <= size; ps *= 2) {
		int hit = 0;
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			hit |= !memcmp(data + ps - 10, sigs[i], strlen(sigs[i]));
		if (!hit)
			continue;
		uint32_t v, last;
		memcpy(&v, data + 1024, 4);
		memcpy(&last, data + 1028, 4);
		if (v != 1)
			v = __builtin_bswap32(v), last = __builtin_bswap32(last);
		uint64_t want = ((uint64_t)last + 1) * ps;
		if (v == 1 && want > size && want <= PAD_MAX) {
			uint8_t *pad = calloc(1, (size_t)want);
			if (pad) {
				memcpy(pad, data, size);
				run(pad, (size_t)want, "padded");
				free(pad);
			}
		}
		break;
	}
	return 0;
}
