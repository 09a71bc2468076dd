#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Regenerate the seed corpus of the FAT reader's fuzz target, fuzz/corpus/fs_fat/seed-*:
# real volumes made by mkfs.vfat (FAT12, FAT16, FAT32, FAT32 with 4096-byte sectors, a
# FAT32-layout volume below 65525 clusters), given a few files and directories with
# mtools (so the FAT holds chains, free runs and a volume-label entry), one with a
# bad-cluster mark and one dirty; each trimmed to its leading metadata (boot sector,
# reserved sectors, FATs, root directory, first clusters), at most 64 KiB, so that
# libFuzzer mutates the parts the reader parses. The fuzz target puts each at the start
# of a larger sparse region, so the trimmed rest reads as zeros (free clusters).
#
#   fuzz/gen_corpus_fs_fat.sh
#
# Needs mkfs.vfat, mtools. Serial numbers are fixed (-i), so the output is stable for a
# given dosfstools/mtools version. Files not named seed-* are left alone.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$src/fuzz/corpus/fs_fat
tmp=$(mktemp -d)
trap 'rm -rf -- "$tmp"' EXIT
export MTOOLS_SKIP_CHECK=1 SOURCE_DATE_EPOCH=1700000000

mkdir -p "$out"
rm -f "$out"/seed-*

# files DIR: a small tree (text, a directory, an empty file, a long name).
mkdir -p "$tmp/tree/sub/deeper"
for i in 1 2 3 4 5 6; do
	head -c $((i * 3000)) /usr/share/common-licenses/GPL-3 >"$tmp/tree/file$i.txt"
done
cp /usr/share/common-licenses/GPL-2 "$tmp/tree/sub/a long file name.txt"
: >"$tmp/tree/sub/empty"
head -c 20000 /usr/share/common-licenses/Apache-2.0 >"$tmp/tree/sub/deeper/apache.txt"

# make NAME SIZE-KiB KEEP-KiB MKFS-ARGS...: a filled volume, trimmed to KEEP KiB.
make() {
	local name=$1 size=$2 keep=$3 img=$tmp/$1.img
	shift 3
	rm -f "$img"
	truncate -s "${size}K" "$img"
	mkfs.vfat -i 12345678 "$@" "$img" >/dev/null 2>&1
	trap 'head -c $((keep * 1024)) "$img" >"$out/seed-$name"' RETURN
	# mtools, like Windows, takes a FAT32-layout volume below 65525 clusters for FAT16
	# and cannot write it: such volumes stay empty (only the root directory and label).
	mcopy -s -D o -i "$img" "$tmp"/tree/* ::/ </dev/null >/dev/null 2>&1 || return 0
	mdel -i "$img" ::/file2.txt ::/file4.txt >/dev/null 2>&1
	mcopy -D o -i "$img" /usr/share/common-licenses/LGPL-2.1 ::/later.txt </dev/null >/dev/null 2>&1
}

make fat12-floppy 1440 64 -F 12 -n FLOPPY
make fat12 4096 64 -F 12 -s 4
make fat16 16384 64 -F 16 -s 4 -n SIXTEEN
make fat16-1fat 16384 64 -F 16 -s 8 -f 1 -r 256
make fat32-small 40960 64 -F 32 -s 8 -n SMALL32
make fat32-4k 40960 64 -F 32 -S 4096 -s 1 -R 8
make fat32 36864 64 -F 32 -s 1 -n THIRTYTWO

# A bad-cluster mark (FAT16 entry 0xFFF7 for the last cluster, both FATs) and the dirty
# bits (boot sector byte 37; FAT[1] bit 15 cleared).
cp "$out/seed-fat16" "$out/seed-fat16-bad-dirty"
printf '\x01' | dd of="$out/seed-fat16-bad-dirty" bs=1 seek=37 conv=notrunc status=none
rsvd=$(od -An -t u2 -j 14 -N 2 "$out/seed-fat16" | tr -d ' ')
fatsz=$(od -An -t u2 -j 22 -N 2 "$out/seed-fat16" | tr -d ' ')
printf '\xff\x7f' | dd of="$out/seed-fat16-bad-dirty" bs=1 seek=$((rsvd * 512 + 2)) conv=notrunc status=none
for f in 0 1; do
	printf '\xf7\xff' | dd of="$out/seed-fat16-bad-dirty" bs=1 seek=$(((rsvd + f * fatsz) * 512 + 100 * 2)) conv=notrunc status=none
done

ls -l "$out"
