/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Recompute the checksums of a (mutated) image: see fixup.h. */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>
#include <zstd.h>

#include "fixup.h"

#define FIX_ZSTD_BUDGET (16u << 20) /* bytes decompressed per call, at most */
#define FIX_FRAMES_MAX 65536

static const uint8_t hdr_magic[8] = { 0x89, 'I', 'M', 'G', '\r', '\n', 0x1a, '\n' };

uint64_t fuzz_rd64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

void fuzz_wr64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t sum(const void *p, size_t n, uint64_t seed)
{
	return XXH3_64bits_withSeed(p, n, seed);
}

/* DATA checksum of a frame's payload, if it can be computed within the budget. */
static int frame_data_sum(uint8_t type, const uint8_t *payload, uint64_t stored,
			  uint64_t logical_off, uint64_t logical_len, size_t *budget,
			  uint64_t *out)
{
	if (type == 1) {
		if (stored != logical_len)
			return 0;
		*out = sum(payload, (size_t)stored, logical_off);
		return 1;
	}
	if (type != 2 || logical_len == 0 || logical_len > *budget)
		return 0;
	void *buf = malloc((size_t)logical_len);
	if (!buf)
		return 0;
	*budget -= (size_t)logical_len;
	size_t r = ZSTD_decompress(buf, (size_t)logical_len, payload, (size_t)stored);
	int ok = !ZSTD_isError(r) && r == logical_len;
	if (ok)
		*out = sum(buf, (size_t)logical_len, logical_off);
	free(buf);
	return ok;
}

void fuzz_fix_checksums(uint8_t *b, size_t n)
{
	int have_header = n >= 512 && memcmp(b, hdr_magic, 8) == 0;
	size_t budget = FIX_ZSTD_BUDGET;

	if (have_header)
		fuzz_wr64(b + 504, sum(b, 504, 0));

	/* The allocation map section right after the header; frames follow it back to back. */
	size_t off = 512, frames = 0;
	if (have_header && n - 512 >= 32 && memcmp(b + 512, "IMGA", 4) == 0) {
		uint64_t len = fuzz_rd64(b + 512 + 16);
		if (len <= n - 512 - 32) {
			fuzz_wr64(b + 512 + 24 + len, sum(b + 512, (size_t)(24 + len), 0));
			off = 512 + 32 + (size_t)len;
		}
	}
	while (have_header && frames++ < FIX_FRAMES_MAX && n - off >= 48 &&
	       memcmp(b + off, "IMGF", 4) == 0) {
		uint8_t *f = b + off;
		uint64_t lo = fuzz_rd64(f + 8), ll = fuzz_rd64(f + 16), sl = fuzz_rd64(f + 24), ds;
		if (sl > n - off - 48)
			break;
		if (frame_data_sum(f[4], f + 48, sl, lo, ll, &budget, &ds))
			fuzz_wr64(f + 32, ds);
		fuzz_wr64(f + 40, sum(f, 40, 0));
		off += 48 + (size_t)sl;
	}

	if (n < 128 || memcmp(b + n - 128, "IMGTRAIL", 8) != 0)
		return;
	uint8_t *t = b + n - 128;
	size_t end = n - 128;
	static const char *const sec_magic[3] = { "IMGM", "IMGE", "IMGI" };
	for (int s = 0; s < 3; s++) {
		uint64_t so = fuzz_rd64(t + 8 + 8 * s);
		if (so > end || end - so < 32 || memcmp(b + so, sec_magic[s], 4) != 0)
			continue;
		uint8_t *sec = b + so;
		uint64_t count = fuzz_rd64(sec + 8), len = fuzz_rd64(sec + 16);
		if (len > end - so - 32)
			continue;
		if (s == 2) {
			/* Index entries carry a copy of their frame's data checksum. */
			for (uint64_t i = 0; i < count && i < len / 32; i++) {
				uint8_t *e = sec + 24 + 32 * i;
				uint64_t fo = fuzz_rd64(e + 8);
				if (fo < n && n - fo >= 48 && memcmp(b + fo, "IMGF", 4) == 0)
					memcpy(e + 24, b + fo + 32, 8);
			}
		}
		fuzz_wr64(sec + 24 + len, sum(sec, (size_t)(24 + len), 0));
	}
	if (have_header)
		memcpy(t + 96, b + 504, 8);
	fuzz_wr64(t + 120, sum(t, 120, 0));
}
