#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Regenerate the seed corpus of the image fuzz target, fuzz/corpus/image/seed-*.img, with
# fuzz/gen_corpus.c (images made by imago_create, plus truncated and byte-flipped
# variants). Deterministic: the same library writes the same files.
#
#   fuzz/gen_corpus.sh [BUILD_DIR]     (default: build; configured if missing)
#
# Files in the corpus directory not named seed-* (reproducers of fixed bugs, inputs the
# fuzzer found) are left alone.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$src/build}
out=$src/fuzz/corpus/image

if [[ ! -f $build/build.ninja ]]; then
	meson setup "$build" "$src" >/dev/null
fi
ninja -C "$build" fuzz/gen_corpus >/dev/null

mkdir -p "$out"
rm -f "$out"/seed-*.img
export SOURCE_DATE_EPOCH=1700000000
"$build/fuzz/gen_corpus" "$out"
du -sh --apparent-size "$out"
