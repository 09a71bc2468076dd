/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target for the exFAT allocation reader (lib/fs/exfat.c): the input is a region,
 * raw or sparse-encoded (fs_fuzz.h), run through probe and read_map, whose promises (fs.h)
 * are checked by fuzz_fs_run().
 *
 * The main boot region carries a checksum (sector 11) that a mutating fuzzer practically
 * never gets right, which would stop almost every mutated input at the first check; so an
 * input that looks like exFAT runs a second time with the checksum recomputed, which is
 * what reaches the FAT, root directory and bitmap code. Seeds: fuzz/corpus/fs_exfat/, made
 * from real mkfs.exfat volumes by fuzz/gen_corpus_fs.sh.
 */
#include "fs_fuzz.h"
#include "fuzz.h"

extern const struct fs_driver fs_exfat_driver;

/* Recompute the main boot region checksum in place; 0 if it could not (not exFAT-like). */
static int fix_checksum(uint8_t *b, size_t n)
{
	if (n < 512 || memcmp(b + 3, "EXFAT   ", 8) || b[108] < 9 || b[108] > 12)
		return 0;
	size_t ss = (size_t)1 << b[108];
	if (n < 12 * ss)
		return 0;
	uint32_t sum = 0;
	for (size_t i = 0; i < 11 * ss; i++) {
		if (i == 106 || i == 107 || i == 112)
			continue;
		sum = ((sum & 1) ? 0x80000000u : 0) + (sum >> 1) + b[i];
	}
	int changed = 0;
	for (size_t i = 0; i < ss; i += 4) {
		uint8_t *p = b + 11 * ss + i;
		uint8_t w[4] = { (uint8_t)sum, (uint8_t)(sum >> 8), (uint8_t)(sum >> 16),
				 (uint8_t)(sum >> 24) };
		if (memcmp(p, w, 4)) {
			memcpy(p, w, 4);
			changed = 1;
		}
	}
	return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n;
	uint8_t *b = fuzz_fs_expand(data, size, &n);
	if (!b)
		return 0;
	fuzz_fs_run(&fs_exfat_driver, b, n);
	if (fix_checksum(b, n))
		fuzz_fs_run(&fs_exfat_driver, b, n);
	free(b);
	return 0;
}
