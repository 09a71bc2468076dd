/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The entry point every fuzz target defines. Built two ways: with clang's libFuzzer
 * (-fsanitize=fuzzer, fuzz/run.sh), and as a plain program with fuzz/replay.c, which
 * feeds the committed corpus through the same function in `make check`.
 */
#ifndef IMAGO_FUZZ_H
#define IMAGO_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
