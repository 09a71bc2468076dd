#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Regenerate the seed corpus of the XFS reader's fuzz target, fuzz/corpus/fs_xfs/seed-*:
# real filesystems made by mkfs.xfs (v5 with 1 KiB blocks, fragmented so the free-space
# btrees have two levels; v5 default; v5 with a dirty log; v4 filled by a prototype file),
# reduced to the metadata the reader parses: the superblock, each AG's header sectors and
# first blocks, every block of each by-block-number free-space btree, and the log around
# its head (kept whole where the log was little used: the reader's log check follows
# cycle numbers through it). Written in the fuzz target's sparse form ("IMSPARSE" + offset/length/bytes
# records, fs_fuzz.h), each well under 256 KiB.
#
#   fuzz/gen_corpus_fs_xfs.sh            (as root: loop mounts)
#
# Needs mkfs.xfs, xfs_io, mount. UUIDs are fixed (-m uuid=), but file placement and log
# contents depend on the kernel, so regenerating changes the bytes, not what is covered.
# Files not named seed-* are left alone.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$src/fuzz/corpus/fs_xfs
tmp=$(mktemp -d)
mnt=$tmp/mnt
mkdir -p "$mnt" "$out"
cleanup() {
	umount "$mnt" 2>/dev/null || true
	rm -rf -- "$tmp"
}
trap cleanup EXIT
rm -f "$out"/seed-*

# extract IMG OUT: the sparse seed.
extract() {
	python3 - "$1" "$2" <<'EOF'
import struct, sys
img, outp = sys.argv[1], sys.argv[2]
f = open(img, "rb")
def rd(off, n):
    f.seek(off)
    return f.read(n)
be32 = lambda b, o: struct.unpack_from(">I", b, o)[0]
be64 = lambda b, o: struct.unpack_from(">Q", b, o)[0]
sb = rd(0, 512)
bs, agblocks, agcount = be32(sb, 4), be32(sb, 84), be32(sb, 88)
sect = struct.unpack_from(">H", sb, 102)[0]
agblklog = sb[124]
v5 = (struct.unpack_from(">H", sb, 100)[0] & 0xF) == 5
hdr = 56 if v5 else 16
ranges = []
for ag in range(agcount):
    agoff = ag * agblocks * bs
    ranges.append((agoff, max(4 * sect, 8 * bs)))
    agf = rd(agoff + sect, sect)
    root, level = be32(agf, 16), be32(agf, 28)
    todo = [(root, level - 1)]
    while todo:
        blk, lvl = todo.pop()
        b = rd(agoff + blk * bs, bs)
        ranges.append((agoff + blk * bs, bs))
        n = struct.unpack_from(">H", b, 6)[0]
        if lvl > 0:
            maxrecs = (bs - hdr) // 12
            for i in range(n):
                todo.append((be32(b, hdr + maxrecs * 8 + 4 * i), lvl - 1))
# the log: its start, and 16 KiB on each side of the head
logstart, logblocks = be64(sb, 48), be32(sb, 96)
if logstart:
    lag, lbno = logstart >> agblklog, logstart & ((1 << agblklog) - 1)
    loff = (lag * agblocks + lbno) * bs
    nbb = logblocks * bs // 512
    def cyc(n):
        b = rd(loff + n * 512, 8)
        return be32(b, 4) if be32(b, 0) == 0xFEEDBABE else be32(b, 0)
    first, last = cyc(0), cyc(nbb - 1)
    lo, hi = 0, nbb - 1
    head = 0
    if first != last:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if cyc(mid) == last:
                hi = mid
            else:
                lo = mid
        head = hi
    # the start of the log (up to 64 KiB) and 16 KiB on each side of the head: the whole
    # used part when the log was little used (most seeds); otherwise the reader sees
    # zeros in between and follows them (still a useful input)
    ranges.append((loff, min(nbb * 512, head * 512 + 16384, 65536)))
    s = max(0, head * 512 - 16384)
    ranges.append((loff + s, min(32768, nbb * 512 - s)))
ranges.sort()
merged = []
for o, n in ranges:
    if merged and o <= merged[-1][0] + merged[-1][1]:
        mo, mn = merged[-1]
        merged[-1] = (mo, max(mn, o + n - mo))
    else:
        merged.append((o, n))
data = bytearray(b"IMSPARSE")
for o, n in merged:
    data += struct.pack("<QI", o, n) + rd(o, n)
if len(data) > 256 * 1024:
    sys.exit(f"{outp}: {len(data)} bytes, more than 256 KiB")
open(outp, "wb").write(data)
EOF
}

# files DIR N SIZE: N files of about SIZE bytes (licence text) in DIR.
files() {
	mkdir -p "$1"
	for ((i = 0; i < $2; i++)); do
		head -c "$3" /usr/share/common-licenses/GPL-3 >"$1/f$i"
	done
}

mkimg() {
	rm -f "$tmp/img"
	truncate -s 300M "$tmp/img"
	mkfs.xfs -q -f "$@" "$tmp/img" >/dev/null 2>&1
}

# v5, 1 KiB blocks, fragmented: every other small file deleted.
mkimg -b size=1024 -m uuid=11111111-2222-3333-4444-555555555555 -L frag
mount -o loop "$tmp/img" "$mnt"
for d in 0 1 2 3; do files "$mnt/d$d" 1500 1500; done
rm -f "$mnt"/d*/f*[02468]
umount "$mnt"
extract "$tmp/img" "$out/seed-v5-1k-fragmented"

# v5 default (4 KiB blocks, reflink), fresh and with a few files.
mkimg -m uuid=11111111-2222-3333-4444-555555555556 -L default
extract "$tmp/img" "$out/seed-v5-fresh"
mount -o loop "$tmp/img" "$mnt"
files "$mnt/a" 10 20000
cp /usr/share/common-licenses/GPL-3 "$mnt/"
umount "$mnt"
extract "$tmp/img" "$out/seed-v5-default"

# v5 with a dirty log (forced shutdown after writing).
mount -o loop "$tmp/img" "$mnt"
files "$mnt/b" 20 3000
sync
files "$mnt/c" 20 3000
xfs_io -x -c "shutdown -f" "$mnt"
umount "$mnt"
extract "$tmp/img" "$out/seed-v5-dirty-log"

# v4 (no CRCs), from a prototype file.
{
	echo "/dev/null"; echo "0 0"; echo "d--755 0 0"
	echo "d d--755 0 0"
	for f in /usr/share/common-licenses/*; do
		[[ -f $f ]] && echo "${f##*/} ---644 0 0 $f"
	done
	echo '$'; echo '$'
} >"$tmp/proto"
mkimg -m crc=0 -L version4 -p "$tmp/proto"
extract "$tmp/img" "$out/seed-v4"

# v5 with 4 KiB sectors.
mkimg -s size=4096 -m uuid=11111111-2222-3333-4444-555555555557
extract "$tmp/img" "$out/seed-v5-4k-sectors"

ls -l "$out"
