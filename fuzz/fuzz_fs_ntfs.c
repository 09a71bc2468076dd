/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target for the NTFS allocation reader (lib/fs/ntfs*.c): the input is a region,
 * raw or sparse-encoded (fs_fuzz.h), run through probe and read_map, whose promises
 * (fs.h) are checked by fuzz_fs_run(). Seeds: fuzz/corpus/fs_ntfs/, made from real mkntfs
 * volumes by fuzz/gen_corpus_fs.sh.
 */
#include "fs_fuzz.h"
#include "fuzz.h"

extern const struct fs_driver fs_ntfs_driver;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n;
	uint8_t *b = fuzz_fs_expand(data, size, &n);
	if (!b)
		return 0;
	fuzz_fs_run(&fs_ntfs_driver, b, n);
	free(b);
	return 0;
}
