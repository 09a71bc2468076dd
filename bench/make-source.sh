#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# bench/make-source.sh [SIZE_GIB] [WORKDIR]
#
# Builds (once) the realistic benchmark source used by bench/run.sh and
# bench/chunk-size.sh, and prints its path on stdout. The source is a raw disk
# file of SIZE_GIB GiB (default 4) in WORKDIR (default /var/tmp/imago-bench):
#
#   1. The whole file is first filled with "stale" data, as a disk that has been
#      used before holds: real files from /usr (binaries, libraries, docs, ...)
#      concatenated in a shuffled order, with 1/8 of it overwritten by
#      incompressible random data (32 MiB at a random place in every 256 MiB).
#   2. An ext4 filesystem is made on it WITHOUT discard (mke2fs would otherwise
#      punch holes into a regular file and wipe the stale data), with inode
#      tables and journal initialised (as on a filesystem whose lazy init has
#      finished).
#   3. Real files from /usr are copied into it (loop mount) until it is about
#      half full; /usr is copied again into copy2/, copy3/, ... if it is not big
#      enough. If loop mounting is not possible, `mkfs.ext4 -d` from a staging
#      directory is used instead.
#
# The result is cached: WORKDIR/source-<SIZE>G.raw is reused when its stamp file
# says it was built completely by this recipe. Needs root (loop mount).
set -euo pipefail

RECIPE=1			# bump when the recipe changes, to rebuild caches
size_gib=${1:-4}
workdir=${2:-/var/tmp/imago-bench}

die() { echo "make-source: $*" >&2; exit 1; }
say() { echo "make-source: $*" >&2; }

[[ $size_gib =~ ^[1-9][0-9]*$ ]] || die "SIZE_GIB must be a whole number of GiB (got '$size_gib')"
mkdir -p "$workdir"
src=$workdir/source-${size_gib}G.raw
stamp=$workdir/source-${size_gib}G.stamp
size=$((size_gib << 30))

if [[ -f $src && -f $stamp && $(cat "$stamp") == "recipe=$RECIPE size=$size" &&
      $(stat -c %s "$src") -eq $size ]]; then
	say "reusing $src"
	echo "$src"
	exit 0
fi

for t in mkfs.ext4 shuf xargs; do
	command -v "$t" >/dev/null || die "$t is missing"
done
avail=$(df -B1 --output=avail "$workdir" | tail -1)
((avail > size + (1 << 30))) || die "not enough space in $workdir for a ${size_gib} GiB source"

rm -f "$stamp"
tmp=$src.part
mnt=$workdir/mnt.$$
cleanup() {
	if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt" || true; fi
	rmdir "$mnt" 2>/dev/null || true
	rm -rf "$workdir/staging.$$"
}
trap cleanup EXIT

# A reproducible byte stream for shuf --random-source.
seeded() { openssl enc -aes-128-ctr -pass "pass:imago-bench-$1" -nosalt -pbkdf2 </dev/zero 2>/dev/null; }

# All regular files of /usr as "size<TAB>path" lines (names with a newline skipped).
usr_files() { find /usr -xdev -type f -size +0 -printf '%s\t%p\n' 2>/dev/null; }

# --- 1. stale fill ------------------------------------------------------------
say "filling $size_gib GiB with stale data (shuffled /usr files + 1/8 random)"
rm -f "$tmp"
# Shuffled passes over /usr, as many as needed to cover the whole size.
usr_files >"$workdir/usr.list"
usr_total=$(awk -F'\t' '{ s += $1 } END { printf "%.0f\n", s }' "$workdir/usr.list")
((usr_total > 0)) || die "no files found in /usr"
: >"$workdir/stale.list"
covered=0 pass=0
while ((covered < size)); do
	shuf --random-source=<(seeded "$pass") "$workdir/usr.list" | cut -f2- >>"$workdir/stale.list"
	covered=$((covered + usr_total)) pass=$((pass + 1))
done
# cat stops with SIGPIPE once head has enough; that is expected.
{ xargs -d '\n' cat -- <"$workdir/stale.list" 2>/dev/null || true; } |
	head -c "$size" >"$tmp" || true
[[ $(stat -c %s "$tmp") -eq $size ]] || die "stale fill came out short"
# Incompressible random data: 32 MiB at a pseudo-random place in every 256 MiB.
seg=$((256 << 20)) rnd=$((32 << 20))
i=0
while ((i * seg < size)); do
	span=$((size - i * seg < seg ? size - i * seg : seg))
	if ((span > rnd)); then
		off=$((i * seg + (i * 7919 % ((span - rnd) >> 20)) * (1 << 20)))
		head -c "$rnd" /dev/urandom |
			dd of="$tmp" bs=1M seek=$((off >> 20)) conv=notrunc status=none iflag=fullblock
	fi
	i=$((i + 1))
done
rm -f "$workdir/stale.list"

# --- 2. + 3. filesystem and content ---------------------------------------------
# About half full: copy file bytes up to 48% of the size (block rounding, directories
# and metadata make up the rest).
budget=$((size * 48 / 100))
mkfs_opts=(-F -q -L imago-bench -E "nodiscard,lazy_itable_init=0,lazy_journal_init=0")

# Writes path lists (relative to /) for copy1, copy2, ... into
# $workdir/copy<N>.list, /usr in directory order, until the budget is reached.
make_copy_lists() {
	local n=1 left=$budget
	rm -f "$workdir"/copy*.list
	while ((left > 0)); do
		left=$(awk -F'\t' -v left="$left" -v out="$workdir/copy$n.list" '
			left > 0 { sub(/^\//, "", $2); print $2 > out; left -= $1 }
			END { printf "%.0f\n", left }' "$workdir/usr.list")
		n=$((n + 1))
	done
}
usr_files | sort -t$'\t' -k2 >"$workdir/usr.list"
make_copy_lists

copy_into() {		# copy_into DIR: copy1/, copy2/, ... under DIR
	local list dir
	for list in "$workdir"/copy*.list; do
		dir=$1/$(basename "$list" .list)
		mkdir -p "$dir"
		{ tar -C / --verbatim-files-from -T "$list" -cf - 2>/dev/null || true; } | tar -C "$dir" -xf -
	done
}

mkdir -p "$mnt"
say "making ext4 without discard"
mkfs.ext4 "${mkfs_opts[@]}" "$tmp" || die "mkfs.ext4 failed"
if mount -o loop "$tmp" "$mnt" 2>/dev/null; then
	say "copying /usr files into the filesystem (loop mount) up to ~half full"
	copy_into "$mnt"
	sync -f "$mnt"
	df -h --output=size,used,avail,pcent "$mnt" | sed 's/^/make-source:   /' >&2
	umount "$mnt"
else
	say "loop mount failed; using mkfs.ext4 -d from a staging directory"
	staging=$workdir/staging.$$
	mkdir -p "$staging"
	copy_into "$staging"
	mkfs.ext4 "${mkfs_opts[@]}" -d "$staging" "$tmp" || die "mkfs.ext4 -d failed"
	rm -rf "$staging"
fi
rm -f "$workdir"/copy*.list "$workdir/usr.list"
e2fsck -fn "$tmp" >/dev/null 2>&1 || die "e2fsck found problems in the new source"
alloc=$(($(stat -c %b "$tmp") * $(stat -c %B "$tmp")))
((alloc >= size)) || say "warning: the source file is sparse ($alloc of $size bytes allocated)"

mv "$tmp" "$src"
sync "$src"
echo "recipe=$RECIPE size=$size" >"$stamp"
say "built $src"
echo "$src"
