#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# bench/smart.sh [SIZE_GIB] [WORKDIR]
#
# Smart imaging side by side with partclone + zstd on the same filesystems, in one run:
#   - ext4 (bench/make-source.sh) and NTFS (bench/make-ntfs-source.sh), about half full,
#     free space holding stale data;
#   - create:  imago create -l 3  vs  partclone.<fs> -c -s SRC -o - | zstd -T0 -3
#   - restore: imago restore      vs  zstd -d -c IMG | partclone.<fs> -r -s - -O TARGET
#   - scaling: imago create of the same ext4 content grown to 4x the device size (sparse
#     file, resize2fs): time should follow the used bytes, not the device size.
# Peers writing files fsync inside the timing, as imago does. Median of REPEAT runs
# (default 3). Prints sizes, times and ratios; asserts nothing about speed, fails only
# when a tool fails or a restored filesystem differs (checked with cmp of used data via
# a second imago image digest).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
size_gib=${1:-4}
workdir=${2:-/var/tmp/imago-bench}
IMAGO=$(realpath "${IMAGO:-build/imago}")
REPEAT=${REPEAT:-3}
die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }
for t in partclone.extfs partclone.ntfs zstd resize2fs /usr/bin/time; do
	command -v "$t" >/dev/null || die "$t is missing (scripts/deps.sh installs it)"
done
out=$workdir/smart-out
rm -rf "$out"
mkdir -p "$out"

# timed NAME CMD...: run CMD REPEAT times (sync + short pause before each), record the
# median wall time in seconds in T[NAME].
declare -A T
timed() {
	local name=$1 i s e
	shift
	local ts=()
	for ((i = 0; i < REPEAT; i++)); do
		sync; sleep 2
		s=$(date +%s.%N)
		"$@" || die "$name failed"
		e=$(date +%s.%N)
		ts+=("$(echo "$e - $s" | bc)")
	done
	T[$name]=$(printf '%s\n' "${ts[@]}" | sort -n | sed -n "$(((REPEAT + 1) / 2))p")
	say "$name: ${ts[*]} -> median ${T[$name]} s"
}
imago_create() { "$IMAGO" create -q -f -l 3 "$1" "$2"; }
pc_create() { "partclone.$3" -q -c -s "$1" -o - 2>/dev/null | zstd -q -T0 -3 >"$2"; sync "$2"; }
imago_restore() { rm -f "$2"; "$IMAGO" restore -q "$1" "$2"; }
# partclone restores into an existing target of the filesystem's size (a device, normally).
pc_restore() {
	rm -f "$2"
	truncate -s "$4" "$2"
	zstd -q -d -c "$1" | "partclone.$3" -q -r -s - -O "$2" >"$out/partclone.log" 2>&1 &&
		[[ $(stat -c %b "$2") -gt 0 ]] && sync "$2"
}

ratio() { echo "scale=2; $1 / $2" | bc; }
rows=()
for fs in ext4 ntfs; do
	case $fs in
	ext4) src=$("$here/make-source.sh" "$size_gib" "$workdir"); pc=extfs ;;
	ntfs) src=$("$here/make-ntfs-source.sh" "$size_gib" "$workdir"); pc=ntfs ;;
	esac
	cat "$src" >/dev/null # warm cache, as the peers get it too
	timed "$fs-imago-create" imago_create "$src" "$out/$fs.imago"
	timed "$fs-partclone-create" pc_create "$src" "$out/$fs.pc.zst" "$pc"
	timed "$fs-imago-restore" imago_restore "$out/$fs.imago" "$out/$fs.restored"
	timed "$fs-partclone-restore" pc_restore "$out/$fs.pc.zst" "$out/$fs.pcrestored" "$pc" "$(stat -c %s "$src")"
	# Both restores hold the same used data: a smart image of each has the same digest.
	d1=$("$IMAGO" create -q -f "$out/$fs.restored" - | "$IMAGO" verify - | awk '{print $NF}')
	d2=$("$IMAGO" create -q -f "$out/$fs.pcrestored" - | "$IMAGO" verify - | awk '{print $NF}')
	if [[ $d1 != "$d2" ]]; then
		# partclone.ntfs does not restore the backup boot sector (the volume's last
		# sector, past the last cluster); imago keeps it. Anything else is a failure.
		# (cmp exits 1 on a difference: not a failure of this script)
		first=$(cmp "$out/$fs.restored" "$out/$fs.pcrestored" | awk '{print $5}' | tr -d ,) || true
		size=$(stat -c %s "$out/$fs.restored")
		if [[ $fs == ntfs && -n $first ]] && ((first > size - 512)); then
			say "$fs: the restores differ only in the last sector (the NTFS backup boot sector, which partclone does not restore)"
		else
			die "$fs: imago and partclone restores differ ($d1 vs $d2; first difference at byte $first)"
		fi
	fi
	rm -f "$out/$fs.restored" "$out/$fs.pcrestored"
	isz=$(stat -c %s "$out/$fs.imago") psz=$(stat -c %s "$out/$fs.pc.zst")
	rows+=("$fs $isz $psz ${T[$fs-imago-create]} ${T[$fs-partclone-create]} ${T[$fs-imago-restore]} ${T[$fs-partclone-restore]}")
done

# Scaling: the ext4 content on a 4x larger device.
src=$("$here/make-source.sh" "$size_gib" "$workdir")
grown=$out/grown.raw
cp --sparse=always -- "$src" "$grown"
truncate -s $((size_gib * 4))G "$grown"
e2fsck -fp "$grown" >/dev/null 2>&1 || true
resize2fs -f "$grown" >/dev/null 2>&1 || die "resize2fs failed"
timed "grown-imago-create" imago_create "$grown" "$out/grown.imago"
rm -f "$grown" "$out/grown.imago"

echo
printf '%-5s %14s %14s %9s %10s %10s %10s %10s %9s %9s\n' fs "imago bytes" "pc+zstd bytes" "size" \
	"imago cr" "pc cr" "imago rs" "pc rs" "create" "restore"
for r in "${rows[@]}"; do
	read -r fs isz psz ic pcc ir pcr <<<"$r"
	printf '%-5s %14d %14d %8.3fx %9.2fs %9.2fs %9.2fs %9.2fs %8.2fx %8.2fx\n' "$fs" "$isz" "$psz" \
		"$(ratio "$isz" "$psz")" "$ic" "$pcc" "$ir" "$pcr" "$(ratio "$pcc" "$ic")" "$(ratio "$pcr" "$ir")"
done
echo "(size: imago / partclone+zstd, lower is better; create/restore: partclone time / imago time, higher is better)"
printf 'scaling: ext4 %d GiB device %.2fs, same content on a %d GiB device %.2fs (%.2fx)\n' \
	"$size_gib" "${T[ext4-imago-create]}" $((size_gib * 4)) "${T[grown-imago-create]}" \
	"$(ratio "${T[grown-imago-create]}" "${T[ext4-imago-create]}")"
