/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Checksum fix-up for fuzzing the image format (docs/FORMAT.md). Nearly every byte of an
 * image is under an XXH3 checksum that a mutating fuzzer can practically never get right,
 * which would stop almost every input at the first checksum check. fuzz_fix_checksums()
 * recomputes every checksum it can locate, so that a mutated input also reaches the
 * structural checks behind the checksums. gen_corpus.c uses it to write crafted
 * (structurally wrong, checksums right) seeds. Written from FORMAT.md alone, independently
 * of lib/image/format.c, on purpose.
 */
#ifndef IMAGO_FUZZ_FIXUP_H
#define IMAGO_FUZZ_FIXUP_H

#include <stddef.h>
#include <stdint.h>

/* Recompute in place, in this order: the header checksum (if the header magic is there);
 * for each frame found back to back from byte 512 (magic IMGF, payload inside the
 * buffer): its DATA checksum when the payload can be decoded (raw, or zstd within a
 * budget) and its header checksum; if the buffer ends in a trailer (magic IMGTRAIL): for
 * each section it points to that has the right magic and fits, the index entries' copies
 * of their frames' data checksums and the section checksum; the trailer's copy of the
 * header checksum; the trailer checksum. Nothing else is changed. */
void fuzz_fix_checksums(uint8_t *b, size_t n);

uint64_t fuzz_rd64(const uint8_t *p);
void fuzz_wr64(uint8_t *p, uint64_t v);

#endif
