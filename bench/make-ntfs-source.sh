#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# bench/make-ntfs-source.sh [SIZE_GIB] [WORKDIR]
#
# The NTFS counterpart of make-source.sh, for bench/smart.sh: a SIZE_GIB (default 4)
# NTFS filesystem about half full of real files from /usr, whose free space holds stale
# data (the ext4 benchmark source's bytes: mkntfs --quick does not clear them). Cached as
# WORKDIR/ntfs-<SIZE>G.raw; prints its path. Needs root (ntfs-3g mount).
set -euo pipefail
RECIPE=1
size_gib=${1:-4}
workdir=${2:-/var/tmp/imago-bench}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "make-ntfs-source: $*" >&2; exit 1; }
say() { echo "make-ntfs-source: $*" >&2; }

src=$workdir/ntfs-${size_gib}G.raw
stamp=$workdir/ntfs-${size_gib}G.stamp
size=$((size_gib << 30))
if [[ -f $src && -f $stamp && $(cat "$stamp") == "recipe=$RECIPE size=$size" ]]; then
	say "reusing $src"
	echo "$src"
	exit 0
fi
for t in mkntfs ntfs-3g; do command -v "$t" >/dev/null || die "$t is missing"; done
stale=$("$here/make-source.sh" "$size_gib" "$workdir")
rm -f "$stamp"
cp -- "$stale" "$src.part"
mkntfs -F -Q -q -L imago-bench "$src.part" || die "mkntfs failed"
mnt=$workdir/ntfs-mnt.$$
mkdir -p "$mnt"
trap 'umount "$mnt" 2>/dev/null || true; rmdir "$mnt" 2>/dev/null || true' EXIT
ntfs-3g -o big_writes "$src.part" "$mnt" || die "ntfs-3g mount failed"
budget=$((size * 48 / 100)) n=1
say "copying /usr into NTFS up to $((budget >> 20)) MiB"
while (($(df -B1 --output=used "$mnt" | tail -1) < budget)); do
	mkdir -p "$mnt/copy$n"
	# stop once over budget (checked per top-level directory)
	for d in /usr/*; do
		cp -a "$d" "$mnt/copy$n/" 2>/dev/null || true
		(($(df -B1 --output=used "$mnt" | tail -1) < budget)) || break
	done
	n=$((n + 1))
done
umount "$mnt"
mv -- "$src.part" "$src"
echo "recipe=$RECIPE size=$size" >"$stamp"
echo "$src"
