#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Writes the seed corpus of fuzz_overlay, fuzz/corpus/overlay/*.ovl: real overlay files
# made by `imago mount --overlay` on a small image of a real GPT disk (sgdisk + mkfs.ext4),
# written through the mount with dd and through a loop mount of the ext4 partition:
# an overlay with no writes, one with scattered writes, one with blocks rewritten (two
# records each), one with 4 KiB blocks, and one with a record cut short at the end.
#
#   fuzz/gen_corpus_overlay.sh [IMAGO]     (as root: FUSE and a loop device)
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
imago=$(realpath "${1:-$src/build/imago}")
out=$src/fuzz/corpus/overlay
tmp=$(mktemp -d "${TMPDIR:-/tmp}/imago-gen-overlay.XXXXXX")
cleanup() {
	umount -l "$tmp/m" 2>/dev/null || true
	"$imago" umount "$tmp/mnt" 2>/dev/null || true
	rm -rf -- "$tmp"
}
trap cleanup EXIT
((EUID == 0)) || { echo "gen_corpus_overlay: run as root" >&2; exit 1; }

truncate -s 8M "$tmp/d.raw"
sgdisk -o -n1:2048:0 -t1:8300 "$tmp/d.raw" >/dev/null
truncate -s 6M "$tmp/p1"
mkfs.ext4 -q -b 1024 "$tmp/p1"
dd if="$tmp/p1" of="$tmp/d.raw" bs=1M seek=1 conv=notrunc status=none
"$imago" create -q "$tmp/d.raw" "$tmp/d.imago"
mkdir -p "$tmp/mnt" "$tmp/m" "$out"

with() { # with OVERLAY BLOCKSIZE CMD...: mount with the overlay, run CMD, unmount
	local ovl=$1 bs=$2
	shift 2
	"$imago" mount -o "$ovl" --overlay-block-size "$bs" "$tmp/d.imago" "$tmp/mnt"
	"$@"
	"$imago" umount "$tmp/mnt"
}
put() { printf '%s' "$1" | dd of="$tmp/mnt/disk" bs=1 seek="$2" conv=notrunc status=none; }
nothing() { :; }
scattered() { put hello 0; put world 1048576; put 'end of disk' $((8 * 1048576 - 11)); put x 3000000; }
rewrites() { scattered; put HELLO 0; put WORLD 1048576; put again 1; }
files() {
	mount -o loop "$tmp/mnt/p1" "$tmp/m"
	echo "a file written through an overlay" >"$tmp/m/note.txt"
	umount "$tmp/m"
}

with "$tmp/empty.ovl" 512 nothing
with "$tmp/scattered.ovl" 512 scattered
with "$tmp/rewrites.ovl" 512 rewrites
with "$tmp/ext4-4k.ovl" 4096 files
cp "$tmp/rewrites.ovl" "$tmp/torn-tail.ovl"
head -c 300 /dev/urandom >>"$tmp/torn-tail.ovl"
for f in empty scattered rewrites ext4-4k torn-tail; do
	cp "$tmp/$f.ovl" "$out/$f.ovl"
done
ls -l "$out"
