#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Writes the seed corpus of fuzz_part, fuzz/corpus/part/*.img: small whole disks (64 to
# 256 KiB) whose partition tables are made by the real tools (sgdisk, sfdisk, on a loop
# device with 4096-byte sectors for 4Kn), plus damaged copies made by zeroing or flipping
# bytes, and the first 64 KiB of filesystems made on a whole disk (mkfs.vfat, mkfs.exfat,
# mkntfs: the boot sector, whose 0x55AA must not pass for an MBR).
#
#   fuzz/gen_corpus_part.sh        (as root: it needs a loop device for the 4Kn disk)
#
# The output is deterministic in shape; GUIDs and filesystem serials differ per run.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$src/fuzz/corpus/part
tmp=$(mktemp -d "${TMPDIR:-/tmp}/imago-gen-part.XXXXXX")
loop=
cleanup() {
	[[ -n $loop ]] && losetup -d "$loop" 2>/dev/null
	rm -rf -- "$tmp"
}
trap cleanup EXIT

for t in sgdisk sfdisk losetup mkfs.vfat mkfs.exfat mkntfs truncate dd; do
	command -v "$t" >/dev/null || { echo "gen_corpus_part: $t missing (scripts/deps.sh)" >&2; exit 1; }
done
((EUID == 0)) || { echo "gen_corpus_part: run as root (loop device for 4Kn)" >&2; exit 1; }

mkdir -p "$out"
rm -f -- "$out"/*.img

disk() { rm -f -- "$1"; truncate -s "$2" -- "$1"; }
q() { "$@" >/dev/null 2>&1; }
# flip FILE OFFSET: xor one byte with 0x01.
flip() {
	local b
	b=$(od -An -t u1 -j "$2" -N 1 -- "$1" | tr -d ' ')
	printf "\\x$(printf '%02x' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
zero() { dd if=/dev/zero of="$1" bs=1 seek="$2" count="$3" conv=notrunc status=none; }
keep() { cp -- "$1" "$out/$2.img"; }

# ---------------------------------------------------------------- GPT, 512-byte sectors

g=$tmp/gpt.img
disk "$g" 64K
q sgdisk -a 1 -n1:34:49 -c1:"EFI system" -t1:ef00 \
	-n2:50:79 -c2:"root ☃ 😀" -A2:set:2 -n3:80:94 -c3:"swap" -t3:8200 -- "$g"
keep "$g" gpt-3named-64k

cp -- "$g" "$tmp/h.img"
q sgdisk -h 1:3 -- "$tmp/h.img"
keep "$tmp/h.img" gpt-hybrid-64k

cp -- "$g" "$tmp/d.img"; zero "$tmp/d.img" 512 512
keep "$tmp/d.img" gpt-primary-zeroed-64k
cp -- "$g" "$tmp/d.img"; flip "$tmp/d.img" $((512 + 48))
keep "$tmp/d.img" gpt-primary-header-flipped-64k
cp -- "$g" "$tmp/d.img"; flip "$tmp/d.img" $((1024 + 128 + 60))
keep "$tmp/d.img" gpt-primary-entries-flipped-64k
cp -- "$g" "$tmp/d.img"; flip "$tmp/d.img" $((64 * 1024 - 512 + 40))
keep "$tmp/d.img" gpt-backup-flipped-64k
cp -- "$g" "$tmp/d.img"; truncate -s 128K -- "$tmp/d.img"
keep "$tmp/d.img" gpt-grown-128k
cp -- "$g" "$tmp/d.img"; truncate -s 48K -- "$tmp/d.img"
keep "$tmp/d.img" gpt-truncated-48k

disk "$tmp/m.img" 256K
args=()
for i in $(seq 1 40); do
	args+=(-n"$i":$((40 + 10 * i)):$((47 + 10 * i)) -c"$i":"part $i")
done
q sgdisk -a 1 "${args[@]}" -- "$tmp/m.img"
keep "$tmp/m.img" gpt-40parts-256k

disk "$tmp/b.img" 256K
q sgdisk -a 1 -S 512 -n1:0:+16 -c1:"after a big array" -n2:0:+20 -- "$tmp/b.img"
keep "$tmp/b.img" gpt-512entries-256k

disk "$tmp/s.img" 64K
q sfdisk -q -- "$tmp/s.img" <<'EOF'
label: gpt
unit: sectors
first-lba: 34
start=40, size=20, type=L, name="sfdisk one"
start=60, size=30, type=S, attrs="LegacyBIOSBootable"
EOF
keep "$tmp/s.img" gpt-sfdisk-64k

# ---------------------------------------------------------------- GPT, 4096-byte sectors

k=$tmp/k.img
disk "$k" 128K
loop=$(losetup -f --show --sector-size 4096 -- "$k")
q sgdisk -a 1 -n1:6:10 -c1:"one 4k" -t1:ef00 -n2:11:20 -c2:"two 4k" -- "$loop"
sync
losetup -d "$loop"
loop=
keep "$k" gpt-4kn-128k
cp -- "$k" "$tmp/d.img"; zero "$tmp/d.img" 4096 4096
keep "$tmp/d.img" gpt-4kn-primary-zeroed-128k

# ---------------------------------------------------------------- MBR

disk "$tmp/p.img" 64K
q sfdisk -q -- "$tmp/p.img" <<'EOF'
label: dos
unit: sectors
start=4, size=20, type=c, bootable
start=30, size=40, type=83
start=80, size=40, type=7
EOF
keep "$tmp/p.img" mbr-primaries-64k

l=$tmp/l.img
disk "$l" 128K
q sfdisk -q -- "$l" <<EOF
label: dos
unit: sectors
start=4, size=20, type=c, bootable
start=24, size=200, type=f
start=230, size=20, type=83
${l}5 : start=30, size=20, type=82
${l}6 : start=52, size=30, type=83, bootable
${l}7 : start=84, size=40, type=7
${l}8 : start=126, size=90, type=83
EOF
keep "$l" mbr-logicals-128k

# ---------------------------------------------------------------- whole-disk filesystems

# fs NAME SIZE MKFS...: the first 64 KiB of a filesystem made on a whole disk.
fs() {
	local name=$1 size=$2
	shift 2
	disk "$tmp/f.img" "$size"
	q "$@" "$tmp/f.img"
	truncate -s 64K -- "$tmp/f.img"
	keep "$tmp/f.img" "$name"
}
fs bare-fat12-64k 1M mkfs.vfat
fs bare-fat16-mbr-64k 32M mkfs.vfat --mbr=yes
fs bare-fat32-64k 40M mkfs.vfat -F 32
fs bare-exfat-64k 8M mkfs.exfat
fs bare-ntfs-64k 8M mkntfs -Q -F

ls -l "$out"
