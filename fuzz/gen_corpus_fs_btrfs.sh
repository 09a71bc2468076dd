#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Regenerate the seed corpus of the btrfs reader's fuzz target, fuzz/corpus/fs_btrfs/seed-*:
# real filesystems made by mkfs.btrfs with 4 KiB nodes (so trees have several blocks in
# little space): metadata DUP, single, mixed block groups, xxhash checksums, and one with
# a pending tree log; given a few hundred files with mount, some deleted. Each is reduced
# to its superblock and the first copy of every block of the chunk, root, device and
# extent trees (found with btrfs inspect-internal dump-tree), written in the fuzz target's
# sparse form ("IMSPARSE" + offset/length/bytes records, fs_fuzz_layout.h).
#
#   fuzz/gen_corpus_fs_btrfs.sh          (as root: loop mounts)
#
# Needs mkfs.btrfs, btrfs, xfs_io, mount. Placement depends on the kernel, so
# regenerating changes the bytes, not what is covered. Files not named seed-* are left
# alone.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$src/fuzz/corpus/fs_btrfs
tmp=$(mktemp -d)
mnt=$tmp/mnt
mkdir -p "$mnt" "$out"
cleanup() {
	umount "$mnt" 2>/dev/null || true
	rm -rf -- "$tmp"
}
trap cleanup EXIT
rm -f "$out"/seed-*

# extract IMG OUT
extract() {
	python3 - "$1" "$2" <<'EOF'
import re, struct, subprocess, sys
img, outp = sys.argv[1], sys.argv[2]
def dump(*a):
    return subprocess.run(["btrfs", "inspect-internal"] + list(a) + [img], check=True,
                          capture_output=True, text=True).stdout
sup = dict(l.split(None, 1) for l in dump("dump-super").splitlines() if len(l.split(None, 1)) == 2)
ns = int(sup["nodesize"])
chunks, cur = [], None
for line in dump("dump-tree", "-t", "chunk").splitlines():
    m = re.search(r"CHUNK_ITEM (\d+)\)", line)
    if m:
        cur = [int(m.group(1)), 0, []]; chunks.append(cur); continue
    m = re.search(r"^\s+length (\d+) owner", line)
    if m and cur:
        cur[1] = int(m.group(1))
    m = re.search(r"stripe \d+ devid \d+ offset (\d+)", line)
    if m and cur:
        cur[2].append(int(m.group(1)))
def phys(logical):
    for lo, ln, ph in chunks:
        if lo <= logical < lo + ln:
            return ph[0] + logical - lo
    sys.exit(f"logical {logical} in no chunk")
blocks = set()
for tree in ("chunk", "root", "dev", "extent"):
    for m in re.finditer(r"^(?:node|leaf) (\d+) ", dump("dump-tree", "-t", tree), re.M):
        blocks.add(phys(int(m.group(1))))
ranges = sorted([(65536, 4096)] + [(b, ns) for b in blocks])
merged = []
for o, n in ranges:
    if merged and o <= merged[-1][0] + merged[-1][1]:
        mo, mn = merged[-1]
        merged[-1] = (mo, max(mn, o + n - mo))
    else:
        merged.append((o, n))
f = open(img, "rb")
data = bytearray(b"IMSPARSE")
for o, n in merged:
    f.seek(o)
    data += struct.pack("<QI", o, n) + f.read(n)
if len(data) > 256 * 1024:
    sys.exit(f"{outp}: {len(data)} bytes, more than 256 KiB")
open(outp, "wb").write(data)
EOF
}

# fill: files and directories, every third file deleted.
fill() {
	local d i
	for d in 1 2 3; do
		mkdir -p "$mnt/d$d"
		for ((i = 0; i < 150; i++)); do
			head -c $((i * 97 % 20000 + 1)) /usr/share/common-licenses/GPL-3 >"$mnt/d$d/f$i"
		done
	done
	head -c 3000000 /dev/zero | tr '\0' 'x' >"$mnt/big"
	rm -f "$mnt"/d*/f*[036]
	sync -f "$mnt"
}

mkimg() {
	rm -f "$tmp/img"
	truncate -s "$1" "$tmp/img"
	shift
	mkfs.btrfs -q -f -n 4096 "$@" "$tmp/img" >/dev/null 2>&1
}

mkimg 128M -L dup -U 11111111-2222-3333-4444-555555555501
mount -o loop "$tmp/img" "$mnt"; fill; umount "$mnt"
extract "$tmp/img" "$out/seed-dup"

mkimg 128M -m single -d single -U 11111111-2222-3333-4444-555555555502
mount -o loop "$tmp/img" "$mnt"; fill; umount "$mnt"
extract "$tmp/img" "$out/seed-single"

mkimg 64M -M -L mixed -U 11111111-2222-3333-4444-555555555503
mount -o loop "$tmp/img" "$mnt"; fill; umount "$mnt"
extract "$tmp/img" "$out/seed-mixed"

mkimg 128M --csum xxhash -U 11111111-2222-3333-4444-555555555504
mount -o loop "$tmp/img" "$mnt"; fill; umount "$mnt"
extract "$tmp/img" "$out/seed-xxhash"

# A pending tree log: fsync, then copy before the transaction commits.
mkimg 128M -m single -U 11111111-2222-3333-4444-555555555505
mount -o loop,commit=300 "$tmp/img" "$mnt"
fill
head -c 100000 /usr/share/common-licenses/GPL-2 >"$mnt/fsynced"
xfs_io -c fsync "$mnt/fsynced"
cp --sparse=always "$tmp/img" "$tmp/log.img"
umount "$mnt"
extract "$tmp/log.img" "$out/seed-tree-log"

ls -l "$out"
