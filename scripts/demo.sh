#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The imago demo (`make demo`): build a sample disk — a GPT with an ext4 and a FAT32
# partition holding real files from this machine and a swap partition, its free space
# full of stale data as on a used disk — show its partition map, image it smart (used
# data only) and sector by sector, verify, restore, and show that the copy holds the same
# data (verify --against, fsck of each filesystem) and that the sector image restores
# byte for byte, with sizes, ratios and speed; then open the image without restoring it
# (imago mount), acquire the disk as evidence with its digests, and convert that to E01.
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
for tool in sfdisk mkfs.ext4 mkfs.fat mcopy mkswap e2fsck fsck.fat cmp sha256sum md5sum ewfverify fusermount3; do
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
	umount "$work/root" 2>/dev/null || true
	"$imago" umount "$work/mnt" 2>/dev/null || true
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

step "1. A sample disk: 256 MiB, GPT, ext4 + FAT32 with real files + swap; stale free space"
disk=disk.img
# A used disk: every byte holds something (random bytes stand in for old data).
head -c $((256 * MiB)) /dev/urandom >"$disk"
sfdisk -q "$disk" <<'EOF'
label: gpt
start=2048, size=327680, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="linux"
start=329728, size=143360, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="data"
start=473088, size=49152, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, name="swap"
EOF
# Partition 1: 160 MiB ext4 at 1 MiB; 2: 70 MiB FAT32 at 161 MiB; 3: 24 MiB swap at 231 MiB.
stage files-ext4 80 any /usr/include /usr/share/doc /usr/bin /usr/lib/python3
stage files-fat 35 fat /usr/lib/x86_64-linux-gnu /usr/share /usr/lib
# nodiscard: a discard would punch holes into the file and wipe the stale data.
mkfs.ext4 -q -F -L imago-demo -E offset=$((2048 * 512)),nodiscard -d files-ext4 "$disk" $((327680 / 2))k
dd if="$disk" of=fat.img bs=1M skip=$((329728 * 512 / MiB)) count=70 status=none
mkfs.fat -F 32 -n IMAGODEMO fat.img >/dev/null
(cd files-fat && mcopy -Q -s -D o -i ../fat.img ./* ::/)
dd if=fat.img of="$disk" bs=1M seek=$((329728 * 512 / MiB)) conv=notrunc status=none
dd if="$disk" of=swap.img bs=1M skip=$((473088 * 512 / MiB)) count=24 status=none
mkswap -L demo-swap swap.img >/dev/null
dd if=swap.img of="$disk" bs=1M seek=$((473088 * 512 / MiB)) conv=notrunc status=none
rm -f fat.img swap.img
ext4_files=$(find files-ext4 -type f | wc -l)
fat_files=$(find files-fat -type f | wc -l)
ext4_bytes=$(du -sb files-ext4 | cut -f1)
fat_bytes=$(du -sb files-fat | cut -f1)
rm -rf files-ext4 files-fat
echo "ext4: $ext4_files files, $(mib "$ext4_bytes"); FAT32: $fat_files files, $(mib "$fat_bytes")"
disk_size=$(stat -c %s "$disk")

step "2. imago info --raw $disk   (what is on the disk, and what a smart image keeps)"
"$imago" info --raw "$disk"

step "3. imago create $disk disk.imago   (smart: used data only)"
t0=$(now)
"$imago" create "$disk" disk.imago
t1=$(now)
create_s=$(secs "$t0" "$t1")

step "4. imago create --sector $disk sector.imago   (every sector, for comparison)"
t0=$(now)
"$imago" create --sector "$disk" sector.imago
t1=$(now)
sector_s=$(secs "$t0" "$t1")

step "5. imago verify disk.imago"
"$imago" verify disk.imago

step "6. imago info disk.imago"
"$imago" info disk.imago

step "7. imago restore disk.imago copy.img"
t0=$(now)
"$imago" restore disk.imago copy.img
t1=$(now)
restore_s=$(secs "$t0" "$t1")

step "8. Does the copy hold the same data?"
# Every byte the image keeps (all but the filesystems' free space) equals the disk's:
"$imago" verify --against "$disk" disk.imago
"$imago" verify --against copy.img disk.imago
# and each filesystem of the copy is consistent:
dd if=copy.img of=p1.img bs=1M skip=1 count=160 status=none
e2fsck -fn p1.img
dd if=copy.img of=p2.img bs=1M skip=161 count=70 status=none
fsck.fat -n p2.img
rm -f p1.img p2.img

step "9. The sector image restores byte for byte"
"$imago" restore -q sector.imago sector-copy.img
cmp "$disk" sector-copy.img
echo "cmp: no difference"
sha256sum "$disk" sector-copy.img
rm -f sector-copy.img

step "10. imago mount disk.imago mnt   (open the image without restoring it)"
mkdir -p mnt root
"$imago" mount disk.imago mnt
ls -l mnt
# the ext4 partition, straight out of the image, read-only
mount -o loop,ro mnt/p1 root
echo "mounted mnt/p1 on root: $(find root -type f | wc -l) files, $(du -sh root | cut -f1)"
umount root
"$imago" umount mnt

step "11. imago acquire $disk evidence.imago   (forensic: every sector, MD5/SHA-1/SHA-256)"
t0=$(now)
"$imago" acquire -C DEMO-1 -E disk-01 -e "the demo" -D "sample disk" "$disk" evidence.imago
t1=$(now)
acquire_s=$(secs "$t0" "$t1")
echo "md5sum of the disk itself:"
md5sum "$disk"
"$imago" verify evidence.imago | grep -i -E 'md5|sha' || true

step "12. imago convert evidence.imago evidence.E01   (EnCase interchange, checked by ewfverify)"
"$imago" convert evidence.imago evidence.E01
ewfverify -q evidence.E01 | tail -n 3

image_size=$(stat -c %s disk.imago)
sector_size=$(stat -c %s sector.imago)
step "Summary"
printf '  %-18s %s\n' \
	"sample disk" "$(mib "$disk_size") (GPT: ext4 + FAT32 + swap, $(mib $((ext4_bytes + fat_bytes))) of files)" \
	"smart image" "$(mib "$image_size") ($(awk -v a="$disk_size" -v b="$image_size" 'BEGIN { printf "%.1f%% of the disk", 100 * b / a }'))" \
	"sector image" "$(mib "$sector_size") (stale free space is random: it does not compress)" \
	"create" "smart ${create_s} s, sector ${sector_s} s" \
	"restore" "${restore_s} s, $(rate "$disk_size" "$restore_s")" \
	"copy" "same data (verify --against, e2fsck, fsck.fat); sector copy identical (cmp)" \
	"mount" "the image's ext4 mounted read-only through imago mount" \
	"evidence" "acquired in ${acquire_s} s with MD5/SHA-1/SHA-256; E01 accepted by ewfverify"
