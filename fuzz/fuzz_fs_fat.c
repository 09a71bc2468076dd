/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target for the FAT12/16/32 reader (lib/fs/fat.c): the input is the start of a
 * FAT volume (corpus: real mkfs.vfat images trimmed to their leading metadata, made by
 * fuzz/gen_corpus_fs_fat.sh). See fs_fuzz_layout.h for what runs and what is checked.
 */
#include "fs_fuzz_layout.h"
#include "fuzz.h"

extern const struct fs_driver fs_fat_driver;

/* The sparse region the input starts: room for the corpus' FAT12/16/32 volumes (the
 * largest is 40 MiB) and for what mutations make of their boot sectors. */
#define FAT_VIRT (64ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fs_fuzz_run(&fs_fat_driver, data, size, FAT_VIRT, NULL);
}
