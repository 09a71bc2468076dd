#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Regenerate the seed corpus of the ext2/3/4 fuzz target, fuzz/corpus/fs_ext/seed-*.img:
# small real filesystems made by mke2fs (e2fsprogs) in the variants the reader handles,
# a few of them populated (mke2fs -d) or with their state changed by debugfs, each cut
# after its last non-zero block and at 256 KiB at most (the fuzz target pads them back
# with zeros to the size the superblock gives). Deterministic: fixed UUIDs, hash seeds and
# E2FSPROGS_FAKE_TIME.
#
#   fuzz/gen_corpus_fs_ext.sh
#
# Files in the corpus directory not named seed-* (inputs the fuzzer found) are left alone.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$src/fuzz/corpus/fs_ext
work=$(mktemp -d "${TMPDIR:-/tmp}/gen-fs-ext.XXXXXX")
trap 'rm -rf "$work"' EXIT
export E2FSPROGS_FAKE_TIME=1700000000
uuid=5eed0000-e47f-4a11-8c0a-000000000001
seed=5eed0000-e47f-4a11-8c0a-000000000002

# A small tree for the populated variants: text, a sparse file, a symlink, a subdirectory.
tree=$work/tree
mkdir -p "$tree/dir/sub"
for i in 1 2 3 4 5 6; do
	head -c $((i * 1500)) /usr/share/common-licenses/GPL-3 >"$tree/dir/file$i"
done
truncate -s 100K "$tree/sparse"
printf 'x' >"$tree/dir/sub/tiny"
ln -s dir/file1 "$tree/link"
find "$tree" -exec touch -h -d @1700000000 {} +   # mke2fs -d copies the timestamps

# cut FILE: drop the all-zero tail (1 KiB units), keep at most 256 KiB.
cut_tail() {
	python3 - "$1" <<'PY'
import sys
p = sys.argv[1]
d = open(p, "rb").read()[:256 * 1024]
n = len(d)
while n > 2048 and not any(d[n - 1024:n]):
    n -= 1024
open(p, "wb").write(d[:n])
PY
}

# mk NAME SIZE [mke2fs options...]: make seed-NAME.img.
mk() {
	local name=$1 size=$2 img=$work/$1.img
	shift 2
	rm -f "$img"
	truncate -s "$size" "$img"
	mke2fs -q -F -U "$uuid" -E hash_seed=$seed -L "${name:0:16}" "$@" "$img" >/dev/null
	post "$img"
	cut_tail "$img"
	cp "$img" "$out/seed-$name.img"
}
post() { :; }

mkdir -p "$out"
rm -f "$out"/seed-*.img
mk ext2-1k 128K -t ext2 -b 1024
mk ext2-2k 256K -t ext2 -b 2048 -N 32
mk ext2-nosparse 1M -t ext2 -b 1024 -g 256 -N 64 -O ^sparse_super,^resize_inode
mk ext3-1k 2M -t ext3 -b 1024
mk ext4-1k 2M -t ext4 -b 1024
mk ext4-4k 1M -t ext4 -b 4096 -O ^has_journal -N 32
mk ext4-groups 1M -t ext4 -b 1024 -g 256 -N 128 -O ^has_journal
mk ext4-noflex 1M -t ext4 -b 1024 -g 256 -N 128 -O ^has_journal,^flex_bg
mk ext4-uninit-bg 1M -t ext4 -b 1024 -g 256 -N 128 -O ^has_journal,^metadata_csum,uninit_bg
mk ext4-meta-bg 1M -t ext4 -b 1024 -g 256 -N 128 -O ^has_journal,meta_bg,^resize_inode
mk ext4-sparse-super2 1M -t ext4 -b 1024 -g 256 -N 128 -O ^has_journal,sparse_super2
mk ext4-32bit 1M -t ext4 -b 1024 -g 256 -N 128 -O ^has_journal,^64bit
mk ext4-bigalloc 1M -t ext4 -b 1024 -C 4096 -O ^has_journal,bigalloc -N 64
# mke2fs -d copies each file's ctime (which touch cannot set) and atime (which reading the
# file for the copy may update): set them afterwards.
post() {
	(cd "$tree" && find . -mindepth 1 | sed 's|^\.||; s|.*|sif & ctime @1700000000\nsif & atime @1700000000|') |
		debugfs -w -f - "$1" >/dev/null 2>&1
}
mk ext4-populated 1M -t ext4 -b 1024 -g 256 -N 128 -O ^has_journal -d "$tree"
mk ext2-populated 512K -t ext2 -b 1024 -d "$tree"
post() { debugfs -w -R "feature needs_recovery" "$1" >/dev/null 2>&1; }
mk ext4-needs-recovery 2M -t ext4 -b 1024
post() { debugfs -w -R "ssv state 0" "$1" >/dev/null 2>&1; }
mk ext2-dirty 128K -t ext2 -b 1024
post() { debugfs -w -R "ssv state 3" "$1" >/dev/null 2>&1; }
mk ext4-errors 1M -t ext4 -b 1024 -g 256 -N 128 -O ^has_journal
post() { :; }
ls -l "$out"
du -sh --apparent-size "$out"
