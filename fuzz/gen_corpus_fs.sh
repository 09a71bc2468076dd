#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Regenerate the seed corpora of the NTFS and exFAT reader fuzz targets,
# fuzz/corpus/fs_ntfs/seed-* and fuzz/corpus/fs_exfat/seed-*, from real volumes made by
# mkntfs / mkfs.exfat and written through ntfs-3g / an exFAT mount: empty volumes, volumes
# with files (a root directory big enough for index blocks, a fragmented $MFT), other
# cluster and sector sizes, and the states the readers report (dirty, hibernated, unclean
# $LogFile). Each volume is stored sparse-encoded (fuzz/fs_fuzz.h: zero sectors left out,
# runs of one byte as a fill), so a few MiB of volume make a seed of at most 256 KiB;
# a few raw seeds (a truncated volume) are kept too.
#
#   fuzz/gen_corpus_fs.sh [ntfs|exfat]...     (as root: loop devices and FUSE mounts)
#
# Not byte-for-byte reproducible (mkntfs and mkfs.exfat put the time and a random serial
# in the volume); files in the corpus directories not named seed-* are left alone.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
targets=("$@")
((${#targets[@]})) || targets=(ntfs exfat)
((EUID == 0)) || { echo "gen_corpus_fs.sh: run as root (loop devices, mounts)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/imago-gen-fs.XXXXXX")
mnt=$tmp/mnt
mkdir -p "$mnt"
cleanup() {
	mountpoint -q "$mnt" && umount -l "$mnt"
	[[ -n ${LOOP:-} ]] && losetup -d "$LOOP" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
LOOP=

# encode IMAGE OUT: the sparse encoding of fs_fuzz.h.
encode() {
	python3 - "$1" "$2" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
S = 512
pieces = []  # (kind, off, len, payload)
for off in range(0, len(data), S):
    sec = data[off:off + S]
    if sec.count(sec[0]) == len(sec):
        if sec[0] == 0:
            continue
        kind, payload = 1, bytes([sec[0]])
    else:
        kind, payload = 0, sec
    if pieces:
        k, o, l, p = pieces[-1]
        if k == kind and o + l == off and (kind == 0 or p == payload):
            pieces[-1] = (k, o, l + len(sec), p + payload if kind == 0 else p)
            continue
    pieces.append((kind, off, len(sec), payload))
out = bytearray(b"IMGSPRS1" + struct.pack("<I", len(data)))
for k, o, l, p in pieces:
    out += struct.pack("<BII", k, o, l) + p
assert len(out) <= 256 * 1024, f"{sys.argv[2]}: {len(out)} bytes (limit 256 KiB)"
open(sys.argv[2], "wb").write(out)
EOF
}

# ---------------------------------------------------------------- NTFS

nmount() {
	ntfs-3g -o "no_detach${3:+,$3}" "$1" "$2" </dev/null >/dev/null 2>&1 &
	NPID=$!
	for _ in $(seq 50); do mountpoint -q "$2" && return 0; sleep 0.1; done
	return 1
}
numount() { umount "$1"; wait "$NPID" || true; }

mkntfs_img() {  # IMG SIZE_MIB OPTIONS...
	local img=$1 size=$2
	shift 2
	rm -f "$img"
	truncate -s "${size}M" "$img"
	mkntfs -Q -F -L "fuzz ntfs" "$@" "$img" >/dev/null 2>&1
}

# ntfs_zero_upcase IMG CLUSTER_SIZE: zero $UpCase's 128 KiB, which alone would take half
# of a seed's 256 KiB (the reader then folds names through an all-zero table; only
# seed-c512-empty keeps the real one).
ntfs_zero_upcase() {
	local lcn len
	local info
	info=$(ntfsinfo --force -i 10 -v "$1" 2>/dev/null)
	read -r lcn len < <(awk '/Runlist:/ {getline; print $2, $3; exit}' <<<"$info")
	dd if=/dev/zero of="$1" bs="$2" seek=$((lcn)) count=$((len)) conv=notrunc status=none
}

# ntfs_zero_free_records IMG: zero the MFT records not in use (deleted files), which a
# seed need not carry.
ntfs_zero_free_records() {
	local info
	info=$(ntfsinfo --force -i 0 -v "$1" 2>/dev/null)
	awk '/Runlist:/ {on = 1; next} on && /^\t\t\t0x/ {print $1, $2, $3; next} on {exit}' <<<"$info" |
		python3 -c '
import struct, sys
path = sys.argv[1]
runs = [tuple(int(x, 16) for x in l.split()) for l in sys.stdin if l.strip()]
f = open(path, "r+b")
bs = f.read(512)
bps, spc = struct.unpack_from("<HB", bs, 11)
cs = bps * spc
v = struct.unpack_from("<b", bs, 64)[0]
rs = 1 << -v if v < 0 else v * cs
for vcn, lcn, n in runs:
    for off in range(lcn * cs, (lcn + n) * cs, rs):
        f.seek(off)
        rec = f.read(rs)
        if rec[:4] == b"FILE" and not struct.unpack_from("<H", rec, 22)[0] & 1:
            f.seek(off)
            f.write(bytes(rs))
' "$1"
}

ntfs_set_dirty() {
	python3 - "$1" <<'EOF'
import struct, sys
f = open(sys.argv[1], "r+b")
bs = f.read(512)
bps, spc = struct.unpack_from("<HB", bs, 11)
cs = bps * spc
mft, mirr = struct.unpack_from("<QQ", bs, 48)
v = struct.unpack_from("<b", bs, 64)[0]
rs = 1 << -v if v < 0 else v * cs
for lcn in (mft, mirr):
    off = lcn * cs + 3 * rs
    f.seek(off); rec = bytearray(f.read(rs))
    a = struct.unpack_from("<H", rec, 20)[0]
    while struct.unpack_from("<I", rec, a)[0] != 0x70:
        a += struct.unpack_from("<I", rec, a + 4)[0]
    rec[a + struct.unpack_from("<H", rec, a + 20)[0] + 10] |= 1
    f.seek(off); f.write(rec)
EOF
}

ntfs_unclean_log() {  # IMG CLUSTER_SIZE
	local lcn info
	info=$(ntfsinfo --force -i 2 -v "$1" 2>/dev/null)
	lcn=$(awk '/Runlist:/ {getline; print $2; exit}' <<<"$info")
	python3 - "$1" $((lcn * $2)) <<'EOF'
import struct, sys
page = bytearray(4096)
page[0:4] = b"RSTR"
struct.pack_into("<HHQIIHhh", page, 4, 30, 9, 0, 4096, 4096, 48, 1, 1)
fs = 1 << 20
struct.pack_into("<QHHHHIHHqIHHI", page, 48, 0x1000, 1, 0xFFFF, 0, 0,
                 67 - fs.bit_length(), 224, 64, fs, 0, 48, 64, 1)
struct.pack_into("<QQHHH", page, 112, 0x100, 0x200, 0xFFFF, 0xFFFF, 1)
for i in range(1, 9):
    e = i * 512 - 2
    page[30 + 2 * i:32 + 2 * i] = page[e:e + 2]
    page[e:e + 2] = b"\x01\x00"
page[30:32] = b"\x01\x00"
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(page)
EOF
}

gen_ntfs() {
	local out=$src/fuzz/corpus/fs_ntfs img=$tmp/n.img i
	mkdir -p "$out"
	rm -f "$out"/seed-*

	mkntfs_img "$img" 2 -c 512
	encode "$img" "$out/seed-c512-empty"
	head -c 65536 "$img" >"$out/seed-raw-truncated"

	mkntfs_img "$img" 4 -c 4096
	nmount "$img" "$mnt"
	for ((i = 0; i < 60; i++)); do echo "file $i" >"$mnt/a-file-with-a-long-name-$i"; done
	mkdir -p "$mnt/dir/sub"
	head -c 20000 /usr/share/common-licenses/GPL-3 >"$mnt/dir/sub/text"
	truncate -s 1M "$mnt/sparse"
	{ printf hibr; head -c 8188 /dev/zero; } >"$mnt/hiberfil.sys"
	numount "$mnt"
	ntfs_zero_upcase "$img" 4096
	encode "$img" "$out/seed-c4k-files-hibernated"

	mkntfs_img "$img" 4 -c 1024
	nmount "$img" "$mnt"
	for ((i = 0; i < 40; i++)); do echo "$i" >"$mnt/f$i"; done
	for ((i = 0; i < 40; i += 2)); do rm "$mnt/f$i"; done
	for ((i = 0; i < 12; i++)); do head -c $((i * 300 + 1500)) /usr/share/common-licenses/GPL-3 >"$mnt/g$i"; done
	numount "$mnt"
	ntfs_zero_upcase "$img" 1024
	encode "$img" "$out/seed-c1k-fragmented"

	# hiberfil.sys sparse, in 300 data fragments: its runlist does not fit its MFT record,
	# so $DATA spills into extension records through an $ATTRIBUTE_LIST.
	mkntfs_img "$img" 4 -c 1024
	nmount "$img" "$mnt"
	python3 - "$mnt/hiberfil.sys" <<'EOF2'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"hibr" + bytes(1020))
for i in range(1, 300):
    os.pwrite(fd, b"Z" * 1024, i * 32 * 1024)
os.close(fd)
EOF2
	numount "$mnt"
	ntfs_zero_upcase "$img" 1024
	encode "$img" "$out/seed-hiberfil-attribute-list"

	mkntfs_img "$img" 8 -c 65536
	ntfs_zero_upcase "$img" 65536
	encode "$img" "$out/seed-c64k-empty"

	mkntfs_img "$img" 4 -s 4096 -c 4096
	ntfs_zero_upcase "$img" 4096
	encode "$img" "$out/seed-s4096-empty"

	mkntfs_img "$img" 2 -c 512
	ntfs_zero_upcase "$img" 512
	ntfs_set_dirty "$img"   # last: ntfsinfo refuses a dirty volume
	encode "$img" "$out/seed-dirty"

	mkntfs_img "$img" 2 -c 4096
	ntfs_unclean_log "$img" 4096
	ntfs_zero_upcase "$img" 4096
	encode "$img" "$out/seed-logfile-unclean"
	ls -l "$out"
}

# ---------------------------------------------------------------- exFAT

emount() {  # IMG DIR [LOSETUP OPTIONS]
	local img=$1 dir=$2
	shift 2
	LOOP=$(losetup -f --show "$@" "$img")
	if grep -qw exfat /proc/filesystems || modprobe exfat >/dev/null 2>&1; then
		mount -t exfat "$LOOP" "$dir"
	else
		mount.exfat-fuse "$LOOP" "$dir" >/dev/null 2>&1
	fi
}
eumount() { umount "$1"; losetup -d "$LOOP"; LOOP=; }

mkexfat_img() {  # IMG SIZE_MIB SECTOR OPTIONS...
	local img=$1 size=$2 sector=$3
	shift 3
	rm -f "$img"
	truncate -s "${size}M" "$img"
	LOOP=$(losetup -f --show -b "$sector" "$img")
	mkfs.exfat -L "fuzz exfat" "$@" "$LOOP" >/dev/null
	losetup -d "$LOOP"
	LOOP=
}

gen_exfat() {
	local out=$src/fuzz/corpus/fs_exfat img=$tmp/e.img i
	mkdir -p "$out"
	rm -f "$out"/seed-*

	mkexfat_img "$img" 1 512 -b 4096
	encode "$img" "$out/seed-1m-empty"
	cp "$img" "$out/seed-raw-1m-truncated"
	truncate -s 200K "$out/seed-raw-1m-truncated"

	mkexfat_img "$img" 4 512 -b 4096 -c 512
	emount "$img" "$mnt" -b 512
	for ((i = 0; i < 100; i++)); do echo "file $i" >"$mnt/file-$i"; done
	for ((i = 0; i < 100; i += 2)); do rm "$mnt/file-$i"; done
	mkdir -p "$mnt/dir/sub"
	head -c 30000 /usr/share/common-licenses/GPL-3 >"$mnt/dir/sub/text"
	eumount "$mnt"
	encode "$img" "$out/seed-c512-files"

	mkexfat_img "$img" 4 4096 -b 16384
	encode "$img" "$out/seed-s4096-empty"

	mkexfat_img "$img" 4 512 -b 4096 --pack-bitmap
	encode "$img" "$out/seed-packbitmap"

	mkexfat_img "$img" 2 512 -b 4096
	printf '\x02\x00' | dd of="$img" bs=1 seek=106 conv=notrunc status=none
	encode "$img" "$out/seed-dirty"
	ls -l "$out"
}

for t in "${targets[@]}"; do
	case $t in
	ntfs) gen_ntfs ;;
	exfat) gen_exfat ;;
	*) echo "gen_corpus_fs.sh: unknown target $t" >&2; exit 2 ;;
	esac
done
