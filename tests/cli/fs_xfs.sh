#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The XFS allocation reader (lib/fs/xfs.c), proved with outside tools:
#   - v5 (CRC, mkfs.xfs default) filled through a loop mount with real files, some
#     deleted; v4 (-m crc=0, which this kernel may not mount) filled by mkfs.xfs -p from
#     a prototype file;
#   - facts: label and UUID as blkid shows them, block size and size from xfs_db,
#     used_bytes = (dblocks - fdblocks) x block size as xfs_db reads the superblock of a
#     cleanly unmounted filesystem;
#   - FREE is exactly xfs_db's list of free extents (freesp -d) less the AGFL blocks,
#     block for block (read back from the scrubbed copy);
#   - scrub (every FREE byte overwritten): xfs_repair -n is clean, the mounted tree is
#     identical (v5), every file's blocks still hold the file (v4, through xfs_db bmap),
#     and the data of a deleted file is gone;
#   - a log left dirty by a forced shutdown is reported (FS_NEEDS_RECOVERY), as
#     xfs_logprint says; clean after a mount/unmount;
#   - damaged superblock, AGF (CRC, counts), btree pointer, truncation: clean failures;
#   - the same filesystem inside a GPT-partitioned disk, read at its offset.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"
# shellcheck source=fsfill.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/fsfill.bash"

need_root
need mkfs.xfs xfs_db xfs_repair xfs_logprint xfs_io blkid losetup mount umount sfdisk \
	truncate python3 tar diff grep
FSMAP=${IMAGO_BUILD:-}/tests/fsmap
[[ -x $FSMAP ]] || die_setup "no fsmap test tool at $FSMAP (IMAGO_BUILD)"

MiB=$((1024 * 1024))

# xdb IMG FIELD...: print the superblock fields (one value per line).
xdb_sb() {
	local img=$1 f
	shift
	for f in "$@"; do
		xfs_db -r -c "sb 0" -c "print $f" "$img" | sed -nE 's/^[a-z_]+ = ([0-9]+)$/\1/p'
	done
}

# log_state IMG: CLEAN or DIRTY, as xfs_logprint -t says.
log_state() { xfs_logprint -t "$1" 2>&1 | sed -nE 's/.*state: <([A-Z]+)>.*/\1/p'; }

# check_facts NAME: fsmap on NAME.img agrees with blkid, xfs_db and xfs_logprint, and its
# FREE extents are exactly XFS's (checked on the scrubbed copy NAME.scrub, made here).
check_facts() {
	local name=$1 img=$W/$1.img bs dblocks fdblocks fb
	begin "${name}_facts"
	run 0 "$FSMAP" --scrub "$W/$name.scrub" "$img"
	fsmap_expect driver xfs
	fsmap_expect type xfs
	fsmap_expect label "$(blkid -p -o value -s LABEL "$img")"
	fsmap_expect uuid "$(blkid -p -o value -s UUID "$img")"
	fsmap_expect flags 0
	read -r bs dblocks fdblocks < <(xdb_sb "$img" blocksize dblocks fdblocks | tr '\n' ' ')
	fsmap_expect block_size "$bs"
	fsmap_expect fs_size $((dblocks * bs))
	fsmap_expect used_bytes $(((dblocks - fdblocks) * bs))
	[[ $(log_state "$img") == CLEAN ]] || err "xfs_logprint does not say the log is clean (test setup)"
	fb=$(fsmap_get free_bytes)
	((${fb:-0} > 10 * MiB)) || err "free_bytes ${fb:-none} is implausibly small"
	"$PY" - "$img" "$W/$name.scrub" >"$W/exact.out" 2>&1 <<'EOF' || err "free extents: $(tail -c 400 "$W/exact.out")"
# FREE must be exactly the free extents xfs_db lists (freesp -d), less the blocks on each
# AG's free list (AGFL), which the reader keeps USED. The FREE set is read back from the
# scrubbed copy: the blocks that became all 0xA5.
import re, subprocess, sys
img, scrub = sys.argv[1], sys.argv[2]
def db(*cmds):
    args = ["xfs_db", "-r"]
    for c in cmds:
        args += ["-c", c]
    return subprocess.run(args + [img], check=True, capture_output=True, text=True).stdout
sb = dict(re.findall(r"^(\w+) = (\d+)$", db("sb 0", "print blocksize agblocks agcount"), re.M))
bs, agblocks, agcount = int(sb["blocksize"]), int(sb["agblocks"]), int(sb["agcount"])
want = set()
for line in db("freesp -d").splitlines():
    f = line.split()
    if len(f) == 3 and f[0].isdigit():
        ag, agbno, n = map(int, f)
        want.update(range(ag * agblocks + agbno, ag * agblocks + agbno + n))
agfl = set()
for ag in range(agcount):
    a = dict(re.findall(r"^(\w+) = (\d+)$", db(f"agf {ag}", "print flfirst fllast flcount"), re.M))
    slots = dict((int(k), v) for k, v in re.findall(r"(\d+):(\w+)", db(f"agfl {ag}", "print bno")))
    k = int(a["flfirst"])
    for _ in range(int(a["flcount"])):
        agfl.add(ag * agblocks + int(slots[k]))
        k = (k + 1) % len(slots)
if not agfl <= want:
    sys.exit(f"AGFL blocks {sorted(agfl - want)[:5]} are not in xfs_db's free list")
want -= agfl
a5 = b"\xa5" * bs
got = set()
with open(img, "rb") as fi, open(scrub, "rb") as fs:
    n = 0
    while True:
        x, y = fi.read(bs), fs.read(bs)
        if not y:
            break
        if y == a5 and x != a5:
            got.add(n)
        n += 1
if got != want:
    extra, missing = sorted(got - want), sorted(want - got)
    sys.exit(f"FREE but not free in XFS: {len(extra)} blocks {extra[:5]}; "
             f"free in XFS but not FREE: {len(missing)} blocks {missing[:5]}")
print(f"{len(got)} free blocks match, {len(agfl)} AGFL blocks kept")
EOF
	finish
}

# check_scrub NAME: the scrubbed copy (from check_facts) passes xfs_repair -n and the data
# of the deleted file is gone.
check_scrub() {
	local name=$1 img=$W/$1.img out=$W/$1.scrub
	begin "${name}_scrub_repair"
	[[ -f $out ]] || err "no scrubbed copy"
	cmp -s -- "$img" "$out" && err "the scrub changed nothing"
	run 0 xfs_repair -n "$out"
	if [[ $name != v4 ]]; then
		has_marker "$img" || err "the deleted file's data is not in the image (test setup)"
		has_marker "$out" && err "the deleted file's data survived the scrub: free space was kept"
	fi
	finish
}

# ---------------------------------------------------------------- v5

begin setup_v5
truncate -s $((320 * MiB)) "$W/v5.img"
mkfs.xfs -q -L imago-v5 "$W/v5.img" || die_setup "mkfs.xfs failed"
FS_MNT=$W/mnt-v5
mount_at "$FS_MNT" -o loop "$W/v5.img"
fs_fill fs_mnt $((64 * MiB))
umount "$FS_MNT" || die_setup "umount failed"
finish

check_facts v5
check_scrub v5

begin v5_scrub_same_tree
mount_at "$W/ro-v5" -o loop,ro "$W/v5.img"
mount_at "$W/ro-v5.scrub" -o loop,ro,nouuid "$W/v5.scrub"
tree_same "$W/ro-v5" "$W/ro-v5.scrub"
(($(fs_count_files "$W/ro-v5") > 1000)) || err "only $(fs_count_files "$W/ro-v5") files: the fill did not work"
umount "$W/ro-v5" "$W/ro-v5.scrub"
finish

# ---------------------------------------------------------------- v4

# The prototype file: about 24 MiB of pool files in directories of 100, plus a big one.
begin setup_v4
fs_pick "$W/v4.list" $((24 * MiB)) 3000
fs_write "$W/v4-big.bin" $((6 * MiB)) random 9
"$PY" - "$W/v4.list" "$W/v4-big.bin" >"$W/v4.proto" <<'EOF'
import sys
files = [l.strip() for l in open(sys.argv[1]) if l.strip()] + [sys.argv[2]]
print("/dev/null\n0 0\nd--755 0 0")
for i in range(0, len(files), 100):
    print(f"dir{i // 100:03d} d--755 0 0")
    for j, src in enumerate(files[i:i + 100]):
        print(f"f{j:03d} ---644 0 0 {src}")
    print("$")
print("$")
EOF
truncate -s $((300 * MiB)) "$W/v4.img"
mkfs.xfs -q -m crc=0 -L imago-v4 -p "$W/v4.proto" "$W/v4.img" >/dev/null 2>&1 || die_setup "mkfs.xfs -m crc=0 -p failed"
finish

check_facts v4
check_scrub v4

# Every file of the v4 filesystem, read block by block (xfs_db bmap) from the scrubbed
# copy, is still its source file.
begin v4_scrub_files_intact
"$PY" - "$W/v4.scrub" "$W/v4.proto" "$W/v4.img" >"$W/files.out" 2>&1 <<'EOF' || err "$(tail -c 400 "$W/files.out")"
import re, subprocess, sys
scrub, proto, img = sys.argv[1:4]
def db(cmds):
    args = ["xfs_db", "-r"]
    for c in cmds:
        args += ["-c", c]
    return subprocess.run(args + [img], check=True, capture_output=True, text=True).stdout
sb = dict(re.findall(r"^(\w+) = (\d+)$", db(["sb 0", "print blocksize agblocks agblklog"]), re.M))
bs, agblocks, agblklog = int(sb["blocksize"]), int(sb["agblocks"]), int(sb["agblklog"])
# directory -> [(name, source)] from the prototype
tree, cur = {}, None
for line in open(proto).read().splitlines()[3:]:
    f = line.split()
    if len(f) == 4 and f[1].startswith("d"):
        cur = f[0]; tree[cur] = []
    elif len(f) == 5 and cur:
        tree[cur].append((f[0], f[4]))
inos = {}
out = db([f"ls /{d}" for d in tree])
d = None
for line in out.splitlines():
    m = re.match(r"^/(\S+):$", line)
    if m:
        d = m.group(1); continue
    f = line.split()
    if d and len(f) == 7 and f[2] == "regular":
        inos[(d, f[5])] = int(f[1])
files = [(d, n, src) for d in tree for n, src in tree[d]]
if len(inos) != len(files):
    sys.exit(f"xfs_db lists {len(inos)} files, the prototype {len(files)}")
cmds = []
for d, n, src in files:
    cmds += [f"inode {inos[(d, n)]}", "print core.size", "bmap"]
out = db(cmds)
checked = 0
with open(scrub, "rb") as fs:
    for chunk in re.split(r"(?m)^core\.size = ", out)[1:]:
        size = int(chunk.split()[0])
        d, n, src = files[checked]
        data = bytearray()
        for off, ag, agbno, count in re.findall(r"data offset (\d+) startblock \d+ \((\d+)/(\d+)\) count (\d+)", chunk):
            lin = int(ag) * agblocks + int(agbno)
            fs.seek(lin * bs)
            blk = fs.read(int(count) * bs)
            need = int(off) * bs + len(blk)
            if len(data) < need:
                data.extend(b"\0" * (need - len(data)))
            data[int(off) * bs:int(off) * bs + len(blk)] = blk
        if bytes(data[:size]) != open(src, "rb").read():
            sys.exit(f"/{d}/{n} (from {src}) differs in the scrubbed copy")
        checked += 1
if checked != len(files) or checked < 500:
    sys.exit(f"checked {checked} files of {len(files)}")
print(f"{checked} files intact")
EOF
finish

# ---------------------------------------------------------------- dirty log

# A forced shutdown leaves committed transactions in the log: it needs recovery. After a
# mount (which replays it) and a clean unmount, it does not.
begin dirty_log_after_shutdown
cp --sparse=always -- "$W/v5.img" "$W/dirty.img"
mount_at "$W/mnt-dirty" -o loop "$W/dirty.img"
fs_pick "$W/dirty.list" $((4 * MiB)) 9000
fs_copy_list "$W/dirty.list" "$W/mnt-dirty/late"
sync
fs_copy_list "$W/dirty.list" "$W/mnt-dirty/later"
xfs_io -x -c "shutdown -f" "$W/mnt-dirty" || err "xfs_io shutdown failed"
umount "$W/mnt-dirty"
[[ $(log_state "$W/dirty.img") == DIRTY ]] || err "xfs_logprint does not say the log is dirty (test setup)"
run 0 "$FSMAP" "$W/dirty.img"
fsmap_expect flags 2
[[ $(fsmap_get state) == *log* ]] || err "state does not mention the log: $(fsmap_get state)"
mount_at "$W/mnt-dirty" -o loop "$W/dirty.img"
umount "$W/mnt-dirty"
[[ $(log_state "$W/dirty.img") == CLEAN ]] || err "xfs_logprint does not say the replayed log is clean (test setup)"
run 0 "$FSMAP" "$W/dirty.img"
fsmap_expect flags 0
rm -f -- "$W/dirty.img"
finish

# ---------------------------------------------------------------- damage

# damaged NAME SRC WANT POKE...: like fs_fat.sh: pairs OFFSET HEX, or "truncate SIZE".
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
		fsmap_expect driver xfs
		[[ $(wc -l <"$W/stderr") == 1 ]] || err "want one line of error, got: $(cat "$W/stderr")"
	fi
	rm -f -- "$f"
	finish
}
v5_agsize=$(($(xdb_sb "$W/v5.img" agblocks) * 4096))
v4_agsize=$(($(xdb_sb "$W/v4.img" agblocks) * 4096))
damaged sb_magic "$W/v5.img" 3 0 00
damaged sb_crc "$W/v5.img" 3 108 41                     # the label, under the CRC
damaged sb_version "$W/v4.img" 3 101 03                 # version 3
damaged sb_agcount "$W/v4.img" 3 88 00000040            # 64 AGs in 300 MiB
damaged truncated "$W/v5.img" 1 truncate $((200 * MiB))
damaged agf_crc "$W/v5.img" 1 $((v5_agsize + 512 + 52)) 00000001     # AG 1 freeblks
damaged agf_magic "$W/v4.img" 1 $((2 * v4_agsize + 512)) 00
damaged agf_freeblks_v4 "$W/v4.img" 1 $((v4_agsize + 512 + 52)) 00000001
damaged bnobt_root_v4 "$W/v4.img" 1 $((v4_agsize + 512 + 16)) 00ffffff
damaged bnobt_level_v4 "$W/v4.img" 1 $((v4_agsize + 512 + 28)) 00000005
# v4 bnobt root block (no CRC): a record moved onto the AG headers.
v4_bnoroot=$(xfs_db -r -c "agf 1" -c "print bnoroot" "$W/v4.img" | sed -nE 's/^bnoroot = ([0-9]+)$/\1/p')
damaged bnobt_record_v4 "$W/v4.img" 1 $((v4_agsize + v4_bnoroot * 4096 + 16)) 00000000

# ---------------------------------------------------------------- at an offset

# The v5 filesystem as the second partition of a GPT disk: the same facts, and the
# scrubbed partition is byte for byte the scrubbed standalone image.
begin at_offset_in_gpt_disk
disk=$W/disk.img
truncate -s $((330 * MiB)) "$disk"
sfdisk -q "$disk" >/dev/null 2>&1 <<EOF
label: gpt
start=2048, size=4096
start=8192, size=$((320 * MiB / 512))
EOF
(($? == 0)) || err "sfdisk failed"
off=$((8192 * 512))
dd if="$W/v5.img" of="$disk" bs=1M seek=$((off / MiB)) conv=notrunc,sparse status=none
run 0 "$FSMAP" "$W/v5.img"
want_free=$(fsmap_get free_bytes)
want_uuid=$(fsmap_get uuid)
run 0 "$FSMAP" --offset "$off" --size $((320 * MiB)) --scrub "$W/disk.scrub" "$disk"
fsmap_expect driver xfs
fsmap_expect free_bytes "$want_free"
fsmap_expect uuid "$want_uuid"
cmp -s -n "$off" -- "$W/disk.scrub" "$disk" || err "bytes before the partition changed"
cmp -s -- <(tail -c +$((off + 320 * MiB + 1)) "$W/disk.scrub") <(tail -c +$((off + 320 * MiB + 1)) "$disk") ||
	err "bytes after the partition changed"
cmp -s -- <(tail -c +$((off + 1)) "$W/disk.scrub" | head -c $((320 * MiB))) "$W/v5.scrub" ||
	err "the scrubbed partition differs from the scrubbed standalone image"
rm -f -- "$disk" "$W/disk.scrub"
finish

done_testing
