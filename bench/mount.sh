#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# bench/mount.sh [SIZE_GIB] [WORKDIR]   (defaults: 4, /var/tmp/imago-bench)
#
# Reading an image through `imago mount` against `imago restore` of the same image, in one
# run, on the realistic source of bench/make-source.sh imaged in sector mode (so both move
# every byte of the device):
#   - sequential: cat MNT/disk > /dev/null  vs  imago restore IMG FILE (its own fsync
#     included, as a restore has it); prints both rates and their ratio;
#   - random: 4 KiB reads at random aligned offsets of MNT/disk (bench/randread.c,
#     one at a time, cold chunk cache and page cache of the mount): reads/s, median and
#     p99 latency, for the default chunk size (1M) and for 64K chunks.
# The image file is read once before timing so both start with it in the page cache.
# Median of REPEAT (default 3) runs. Asserts nothing about speed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
size_gib=${1:-4}
workdir=${2:-/var/tmp/imago-bench}
IMAGO=$(realpath "${IMAGO:-build/imago}")
REPEAT=${REPEAT:-3}
RANDOM_READS=${RANDOM_READS:-3000}
die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }
out=$workdir/mount-out
mnt=$out/mnt
mkdir -p "$out" "$mnt"
cleanup() {
	"$IMAGO" umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
}
trap cleanup EXIT
src=$("$here/make-source.sh" "$size_gib" "$workdir")
size=$(stat -c %s "$src")
cc -O2 -Wall -o "$out/randread" "$here/randread.c" || die "cannot build randread"

median() { sort -n | sed -n "$(((REPEAT + 1) / 2))p"; }
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null || die "$* failed"; e=$(date +%s.%N); echo "$e - $s" | bc; }
mibs() { echo "scale=1; $size / 1048576 / $1" | bc; }

for cs in 1M 64K; do
	img=$out/source-$cs.imago
	if [[ ! -f $img || $img -ot $src ]]; then
		say "imaging $src (sector mode, chunk $cs)"
		"$IMAGO" create -q -f --sector --chunk-size "$cs" "$src" "$img"
	fi
	cat "$img" >/dev/null
	if [[ $cs == 1M ]]; then
		rs=() ms=()
		for ((i = 0; i < REPEAT; i++)); do
			rm -f "$out/restored.raw"; sync; sleep 1
			rs+=("$(secs "$IMAGO" restore -q "$img" "$out/restored.raw")")
			rm -f "$out/restored.raw"; sync; sleep 1
			"$IMAGO" mount "$img" "$mnt"
			ms+=("$(secs dd if="$mnt/disk" of=/dev/null bs=1M status=none)")
			"$IMAGO" umount "$mnt"
		done
		r=$(printf '%s\n' "${rs[@]}" | median)
		m=$(printf '%s\n' "${ms[@]}" | median)
		say "restore runs: ${rs[*]} s; mount read runs: ${ms[*]} s"
		echo "sequential ($((size >> 20)) MiB, chunk $cs): imago restore $(mibs "$r") MiB/s, read through imago mount $(mibs "$m") MiB/s, mount/restore = $(echo "scale=2; $r / $m" | bc)"
	fi
	"$IMAGO" mount "$img" "$mnt"
	line=$("$out/randread" "$mnt/disk" "$RANDOM_READS" 7)
	"$IMAGO" umount "$mnt"
	echo "random 4 KiB reads through imago mount (chunk $cs): $line"
done
