#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The imago demo (`make demo`): build a sample disk — a GPT with an ext4 and a FAT32
# partition, both holding real files from this machine — image it, verify the image,
# restore it to a new file and show that the copy is identical, with sizes, ratio and
# speed.
#
# Usage: scripts/demo.sh [IMAGO]     (IMAGO defaults to build/imago)
# Environment: DEMO_DIR (where to work; default a new temporary directory, removed at
# the end), DEMO_KEEP=1 (keep the work directory).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
imago=${1:-$root/build/imago}
[[ $imago == /* ]] || imago=$PWD/$imago
if [[ ! -x $imago ]]; then
	echo "demo: $imago not found; run 'make build' first" >&2
	exit 1
fi
for tool in sfdisk mkfs.ext4 mkfs.fat mcopy cmp sha256sum; do
	command -v "$tool" >/dev/null || {
		echo "demo: $tool missing; run scripts/deps.sh" >&2
		exit 1
	}
done

if [[ -n ${DEMO_DIR:-} ]]; then
	work=$DEMO_DIR
	mkdir -p "$work"
else
	work=$(mktemp -d "${TMPDIR:-/var/tmp}/imago-demo.XXXXXX")
fi
cleanup() {
	if [[ ${DEMO_KEEP:-0} == 1 ]]; then
		echo "demo: kept $work"
	else
		rm -rf --one-file-system "$work"
	fi
}
trap cleanup EXIT
cd "$work"

MiB=$((1024 * 1024))
now() { date +%s.%N; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 0.001; printf "%.0f MiB/s", b / s / 1048576 }'; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
step() { printf '\n== %s\n' "$*"; }

# stage DIR BUDGET_MIB FILTER SRC... — copy regular files (under 8 MiB) from the SRC
# directories into DIR, in directory order, up to BUDGET_MIB. FILTER=fat keeps only
# files of 32 KiB or more with names valid on FAT (mcopy is slow with many small files).
stage() {
	local dir=$1 budget=$(($2 * MiB)) filter=$3 min=""
	shift 3
	[[ $filter == fat ]] && min=-size\ +32k
	mkdir -p "$dir"
	local src
	for src in "$@"; do
		# shellcheck disable=SC2086 # $min is deliberately split
		[[ -d $src ]] && find "$src" -type f -size -8M $min -printf '%s %p\n' 2>/dev/null
	done | awk -v budget="$budget" -v filter="$filter" '
		{
			size = $1; path = substr($0, length($1) + 2)
			if (filter == "fat" && path !~ /^[A-Za-z0-9._+\/-]+$/) next
			if (full || total + size > budget) { full = 1; next }
			total += size
			printf "%s%c", substr(path, 2), 0
		}' | tar -C / --null -T - -cf - 2>/dev/null | tar -C "$dir" -xf -
}

step "1. A sample disk: 256 MiB, GPT, ext4 + FAT32 with real files"
disk=disk.img
truncate -s 256M "$disk"
sfdisk -q "$disk" <<'EOF'
label: gpt
start=2048, size=360448, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="linux"
start=362496, size=159744, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="data"
EOF
# Partition 1: 176 MiB ext4 at 1 MiB; partition 2: 78 MiB FAT32 at 177 MiB.
stage files-ext4 100 any /usr/include /usr/share/doc /usr/bin /usr/lib/python3
stage files-fat 40 fat /usr/lib/x86_64-linux-gnu /usr/share /usr/lib
mkfs.ext4 -q -F -L imago-demo -E offset=$((2048 * 512)) -d files-ext4 "$disk" $((360448 / 2))k
truncate -s $((159744 * 512)) fat.img
mkfs.fat -F 32 -n IMAGODEMO fat.img >/dev/null
(cd files-fat && mcopy -Q -s -D o -i ../fat.img ./* ::/)
dd if=fat.img of="$disk" bs=1M seek=$((362496 * 512 / MiB)) conv=notrunc,sparse status=none
rm -f fat.img
ext4_files=$(find files-ext4 -type f | wc -l)
fat_files=$(find files-fat -type f | wc -l)
ext4_bytes=$(du -sb files-ext4 | cut -f1)
fat_bytes=$(du -sb files-fat | cut -f1)
rm -rf files-ext4 files-fat
sfdisk -l "$disk" | sed -n '/^Device/,$p'
echo "ext4: $ext4_files files, $(mib "$ext4_bytes"); FAT32: $fat_files files, $(mib "$fat_bytes")"
disk_size=$(stat -c %s "$disk")

step "2. imago create $disk disk.imago"
t0=$(now)
"$imago" create "$disk" disk.imago
t1=$(now)
create_s=$(secs "$t0" "$t1")

step "3. imago verify disk.imago"
"$imago" verify disk.imago

step "4. imago info disk.imago"
"$imago" info disk.imago

step "5. imago restore disk.imago copy.img"
t0=$(now)
"$imago" restore disk.imago copy.img
t1=$(now)
restore_s=$(secs "$t0" "$t1")

step "6. Is the copy identical?"
cmp "$disk" copy.img
echo "cmp: no difference"
sha256sum "$disk" copy.img
sum1=$(sha256sum <"$disk")
sum2=$(sha256sum <copy.img)
[[ $sum1 == "$sum2" ]]

image_size=$(stat -c %s disk.imago)
step "Summary"
printf '  %-18s %s\n' \
	"sample disk" "$(mib "$disk_size") (GPT: ext4 + FAT32, $(mib $((ext4_bytes + fat_bytes))) of files)" \
	"image" "$(mib "$image_size")" \
	"ratio" "$(awk -v a="$disk_size" -v b="$image_size" 'BEGIN { printf "%.2f : 1 (image is %.1f%% of the disk)", a / b, 100 * b / a }')" \
	"create" "${create_s} s, $(rate "$disk_size" "$create_s")" \
	"restore" "${restore_s} s, $(rate "$disk_size" "$restore_s")" \
	"copy" "identical (cmp and SHA-256)"
