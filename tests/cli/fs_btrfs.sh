#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The btrfs allocation reader (lib/fs/btrfs.c, btrfs_tree.c), proved with outside tools:
#   - mkfs.btrfs default (metadata DUP, data single), -m single -d single, mixed block
#     groups (-M), xxhash and sha256 checksums; filled through a loop mount with real
#     files, some deleted, synced;
#   - facts: label and UUID as blkid shows them, sector size, total and used bytes as
#     btrfs inspect-internal dump-super says;
#   - FREE is exactly, sector for sector, the device space outside chunks (past the first
#     MiB) plus each chunk copy's space no extent item covers, less the superblock
#     mirrors: computed from btrfs inspect-internal dump-tree, read back from the
#     scrubbed copy;
#   - scrub (every FREE byte overwritten): btrfs check --readonly is clean, and every file
#     reads back (btrfs verifies data checksums) with the same SHA-256 as before;
#   - a pending tree log (fsync, copy before the transaction commits) is reported as
#     needing recovery, and nothing is then called FREE;
#   - damage: superblock magic/checksum, a tree block (one DUP copy: still read; both:
#     refused), truncation, a two-device RAID1 filesystem (refused, not supported);
#   - the same filesystem inside a GPT-partitioned disk, read at its offset.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"
# shellcheck source=fsfill.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/fsfill.bash"

need_root
need mkfs.btrfs btrfs blkid losetup mount umount sfdisk truncate python3 tar diff grep \
	sha256sum xfs_io
FSMAP=${IMAGO_BUILD:-}/tests/fsmap
[[ -x $FSMAP ]] || die_setup "no fsmap test tool at $FSMAP (IMAGO_BUILD)"

MiB=$((1024 * 1024))

# super IMG FIELD: a field of btrfs inspect-internal dump-super.
super() { btrfs inspect-internal dump-super "$1" | awk -v f="$2" '$1 == f { print $2; exit }'; }

# make_btrfs NAME SIZE BUDGET MKFS-ARGS...: $W/NAME.img, made and filled with about
# BUDGET bytes, and the SHA-256 of every file in $W/NAME.sums.
make_btrfs() {
	local name=$1 size=$2 budget=$3
	shift 3
	begin "setup_$name"
	truncate -s "$size" "$W/$name.img"
	mkfs.btrfs -q -f "$@" "$W/$name.img" >"$W/mkfs.log" 2>&1 || die_setup "mkfs.btrfs $* failed: $(cat "$W/mkfs.log")"
	FS_MNT=$W/mnt-$name
	mount_at "$FS_MNT" -o loop "$W/$name.img"
	fs_fill fs_mnt "$budget"
	(cd "$FS_MNT" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) >"$W/$name.sums"
	umount "$FS_MNT" || die_setup "umount $name failed"
	(($(wc -l <"$W/$name.sums") > 100)) || err "only $(wc -l <"$W/$name.sums") files: the fill did not work"
	finish
}

# exact_free IMG SCRUB: the sectors that became all 0xA5 in SCRUB are exactly the free
# sectors btrfs-progs' view of the trees gives.
exact_free() {
	"$PY" - "$1" "$2" >"$W/exact.out" 2>&1 <<'EOF' || err "free space: $(tail -c 500 "$W/exact.out")"
import re, subprocess, sys
img, scrub = sys.argv[1], sys.argv[2]
def tool(*a):
    return subprocess.run(["btrfs", "inspect-internal"] + list(a) + [img], check=True,
                          capture_output=True, text=True).stdout
sup = dict(l.split(None, 1) for l in tool("dump-super").splitlines() if len(l.split(None, 1)) == 2)
ss, ns, total = int(sup["sectorsize"]), int(sup["nodesize"]), int(sup["dev_item.total_bytes"])
chunks = []   # (logical, length, [physical...])
cur = None
for line in tool("dump-tree", "-t", "chunk").splitlines():
    m = re.search(r"key \(FIRST_CHUNK_TREE CHUNK_ITEM (\d+)\)", line)
    if m:
        cur = [int(m.group(1)), None, []]; chunks.append(cur); continue
    m = re.search(r"^\s+length (\d+) owner", line)
    if m and cur:
        cur[1] = int(m.group(1))
    m = re.search(r"stripe \d+ devid \d+ offset (\d+)", line)
    if m and cur:
        cur[2].append(int(m.group(1)))
used = []     # logical extents
for line in tool("dump-tree", "-t", "extent").splitlines():
    m = re.search(r"key \((\d+) (EXTENT_ITEM|METADATA_ITEM) (\d+)\)", line)
    if m:
        used.append((int(m.group(1)), ns if m.group(2) == "METADATA_ITEM" else int(m.group(3))))
# 1 = free sector: everything past the first MiB, less every extent at each chunk copy
free = bytearray(total // ss)
free[(1 << 20) // ss:] = b"\x01" * (total // ss - (1 << 20) // ss)
for lo, ln, ph in chunks:
    for p in ph:
        for s, l in used:
            if lo <= s < lo + ln:
                a = (p + s - lo) // ss
                free[a:a + l // ss] = bytes(l // ss)
for mirror in (65536, 64 << 20, 256 << 30):
    if mirror < total:
        free[mirror // ss] = 0
a5 = b"\xa5" * ss
bad_extra, bad_missing, n = [], [], 0
with open(img, "rb") as fi, open(scrub, "rb") as fs:
    for i in range(total // ss):
        x, y = fi.read(ss), fs.read(ss)
        got = y == a5 and x != a5
        want = free[i] == 1 and x != a5
        if got and not want:
            bad_extra.append(i * ss)
        elif want and not got:
            bad_missing.append(i * ss)
        n += got
if bad_extra or bad_missing:
    sys.exit(f"FREE but used: {len(bad_extra)} sectors {bad_extra[:4]}; free but not FREE: "
             f"{len(bad_missing)} sectors {bad_missing[:4]}")
print(f"{n} free sectors match")
EOF
}

# check NAME [quick]: facts, exact free space, scrub proofs (quick: no fsck/mount proof,
# for variants that differ only in their checksum type).
check() {
	local name=$1 img=$W/$1.img out=$W/$1.scrub quick=${2:-}
	begin "${name}_facts"
	run 0 "$FSMAP" --scrub "$out" "$img"
	fsmap_expect driver btrfs
	fsmap_expect type btrfs
	fsmap_expect label "$(blkid -p -o value -s LABEL "$img")"
	fsmap_expect uuid "$(blkid -p -o value -s UUID "$img")"
	fsmap_expect block_size "$(super "$img" sectorsize)"
	fsmap_expect fs_size "$(super "$img" total_bytes)"
	fsmap_expect used_bytes "$(super "$img" bytes_used)"
	fsmap_expect flags 0
	exact_free "$img" "$out"
	finish
	[[ -n $quick ]] && { rm -f -- "$out"; return 0; }

	begin "${name}_scrub"
	cmp -s -- "$img" "$out" && err "the scrub changed nothing"
	has_marker "$img" || err "the deleted file's data is not in the image (test setup)"
	has_marker "$out" && err "the deleted file's data survived the scrub: free space was kept"
	run 0 btrfs check --readonly "$out"
	# Every file reads back (btrfs checks data checksums on read) with the same content.
	mount_at "$W/ro-$name" -o loop,ro "$out"
	(cd "$W/ro-$name" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) >"$W/$name.sums2" 2>"$W/sums.err"
	umount "$W/ro-$name"
	cmp -s -- "$W/$name.sums" "$W/$name.sums2" || err "files differ after the scrub: $(diff "$W/$name.sums" "$W/$name.sums2" | head -c 300) $(head -c 200 "$W/sums.err")"
	rm -f -- "$out"
	finish
}

# ---------------------------------------------------------------- variants

make_btrfs default $((192 * MiB)) $((48 * MiB)) -L imago-default
check default
make_btrfs single $((160 * MiB)) $((32 * MiB)) -m single -d single -L single
check single
make_btrfs mixed $((128 * MiB)) $((24 * MiB)) -M -L mixed
check mixed
make_btrfs xxhash $((128 * MiB)) $((8 * MiB)) --csum xxhash
check xxhash quick
make_btrfs sha256 $((128 * MiB)) $((8 * MiB)) --csum sha256 -n 4096
check sha256 quick

# ---------------------------------------------------------------- tree log

# fsync writes a tree log and a superblock pointing at it; copied before the transaction
# commits, the image needs log replay.
begin tree_log_pending
cp --sparse=always -- "$W/single.img" "$W/live.img"
mount_at "$W/mnt-live" -o loop,commit=300 "$W/live.img"
sync -f "$W/mnt-live"
fs_write "$W/mnt-live/fsynced.bin" $((2 * MiB)) random 12
xfs_io -c fsync "$W/mnt-live/fsynced.bin"
cp --sparse=always -- "$W/live.img" "$W/log.img"
umount "$W/mnt-live"
if [[ $(super "$W/log.img" log_root) == 0 ]]; then
	err "the copy has no tree log (test setup)"
else
	run 0 "$FSMAP" --scrub "$W/log.scrub" "$W/log.img"
	fsmap_expect flags 2
	fsmap_expect free_bytes 0   # fsync'd extents and log blocks are not in the extent tree
	[[ $(fsmap_get state) == *log* ]] || err "state does not mention the log: $(fsmap_get state)"
	# With the log replayed, the fsync'd file is there and intact.
	mount_at "$W/mnt-log" -o loop "$W/log.scrub"
	cmp -s -- "$W/mnt-log/fsynced.bin" <(fs_write /dev/stdout $((2 * MiB)) random 12) ||
		err "the fsync'd file did not survive the scrub of a filesystem with a tree log"
	umount "$W/mnt-log"
fi
rm -f -- "$W/live.img" "$W/log.img" "$W/log.scrub"
finish

# ---------------------------------------------------------------- damage

damaged() {
	local name=$1 src=$2 want=$3 f=$W/damaged.img
	shift 3
	begin "damaged_$name"
	cp --sparse=always -- "$src" "$f"
	while (($#)); do
		if [[ $1 == truncate ]]; then
			truncate -s "$2" "$f"
		else
			poke_hex "$f" "$1" "$2"
		fi
		shift 2
	done
	run "$want" "$FSMAP" "$f"
	if ((want == 1)); then
		fsmap_expect driver btrfs
		[[ $(wc -l <"$W/stderr") == 1 ]] || err "want one line of error, got: $(cat "$W/stderr")"
	fi
	rm -f -- "$f"
	finish
}
damaged sb_magic "$W/default.img" 3 $((65536 + 64)) 00
damaged sb_csum "$W/default.img" 3 $((65536 + 299)) 58      # the label, under the checksum
damaged truncated "$W/default.img" 1 truncate $((150 * MiB))

# The root tree block: physical copies from the chunk map (dump-tree).
root_copies() {
	local img=$1 root
	root=$(super "$img" root)
	btrfs inspect-internal dump-tree -t chunk "$img" | "$PY" -c '
import re, sys
root = int(sys.argv[1]); cur = None
for line in sys.stdin:
    m = re.search(r"CHUNK_ITEM (\d+)\)", line)
    if m: cur = int(m.group(1)); length = None; continue
    m = re.search(r"length (\d+) owner", line)
    if m: length = int(m.group(1))
    m = re.search(r"stripe \d+ devid \d+ offset (\d+)", line)
    if m and cur is not None and cur <= root < cur + length:
        print(int(m.group(1)) + root - cur)
' "$root"
}
mapfile -t copies < <(root_copies "$W/default.img")
((${#copies[@]} == 2)) || die_setup "the default filesystem's root tree is not DUP (${#copies[@]} copies)"
damaged tree_block_one_dup_copy "$W/default.img" 0 $((copies[0] + 200)) ff
damaged tree_block_both_copies "$W/default.img" 1 $((copies[0] + 200)) ff $((copies[1] + 200)) ff
mapfile -t copies < <(root_copies "$W/single.img")
damaged tree_block_single "$W/single.img" 1 $((copies[0] + 48)) ff   # its own bytenr (under csum)

begin raid1_two_devices_refused
truncate -s $((160 * MiB)) "$W/r1.img" "$W/r2.img"
mkfs.btrfs -q -f -d raid1 -m raid1 "$W/r1.img" "$W/r2.img" >/dev/null 2>&1 || err "mkfs.btrfs raid1 failed"
run 1 "$FSMAP" "$W/r1.img"
grep -q -i 'devices' "$W/stderr" || err "the message does not say why: $(cat "$W/stderr")"
rm -f -- "$W/r1.img" "$W/r2.img"
finish

# ---------------------------------------------------------------- at an offset

begin at_offset_in_gpt_disk
disk=$W/disk.img
truncate -s $((136 * MiB)) "$disk"
sfdisk -q "$disk" >/dev/null 2>&1 <<EOF || err "sfdisk failed"
label: gpt
start=2048, size=4096
start=8192, size=$((128 * MiB / 512))
EOF
off=$((8192 * 512))
dd if="$W/mixed.img" of="$disk" bs=1M seek=$((off / MiB)) conv=notrunc,sparse status=none
run 0 "$FSMAP" --scrub "$W/mixed.scrub" "$W/mixed.img"
want_free=$(fsmap_get free_bytes)
run 0 "$FSMAP" --offset "$off" --size $((128 * MiB)) --scrub "$W/disk.scrub" "$disk"
fsmap_expect driver btrfs
fsmap_expect free_bytes "$want_free"
cmp -s -n "$off" -- "$W/disk.scrub" "$disk" || err "bytes before the partition changed"
cmp -s -- <(tail -c +$((off + 128 * MiB + 1)) "$W/disk.scrub") <(tail -c +$((off + 128 * MiB + 1)) "$disk") ||
	err "bytes after the partition changed"
cmp -s -- <(tail -c +$((off + 1)) "$W/disk.scrub" | head -c $((128 * MiB))) "$W/mixed.scrub" ||
	err "the scrubbed partition differs from the scrubbed standalone image"
rm -f -- "$disk" "$W/disk.scrub"
finish

done_testing
