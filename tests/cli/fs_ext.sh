#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The ext2/3/4 allocation reader (lib/fs/ext*.c) against real filesystems made by
# e2fsprogs and filled through the kernel, checked with tests/fsmap against outside tools:
#   - facts: type, label and UUID as libblkid (blkid -p) reads them; block size, size,
#     used and free bytes as dumpe2fs -h reports them;
#   - the FREE set is exactly the free blocks dumpe2fs lists group by group (the blocks a
#     scrubbed copy has overwritten with 0xA5 are compared with dumpe2fs's lists);
#   - the scrubbed copy (every FREE byte overwritten) passes e2fsck -fn and mounts with a
#     file tree identical to the original's (diff -r and a SHA-256 of every file);
# for ext2, ext3, ext4 with defaults (flex_bg, 64bit, metadata_csum), mke2fs -d with
# BLOCK_UNINIT groups, 1 KiB blocks, bigalloc (64 KiB clusters), no flex_bg, meta_bg,
# sparse_super2, and ext4 inside a partitioned disk. The filled ones hold
# thousands of files, written, half deleted, written again (fragmented), partly deleted
# (stale data in free space). States: a journal needing recovery, not cleanly unmounted,
# errors recorded -> flags, nothing FREE. Damage: bad magic, truncation, descriptors
# pointing outside, overlapping metadata, checksum mismatches, unknown features -> a clean
# refusal.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_root
need python3 mke2fs mkfs.ext2 mkfs.ext3 mkfs.ext4 dumpe2fs e2fsck debugfs blkid sfdisk \
	losetup mount umount diff sha256sum truncate
FSMAP=${IMAGO_BUILD:-}/tests/fsmap
[[ -x $FSMAP ]] || die_setup "no fsmap at $FSMAP (IMAGO_BUILD=${IMAGO_BUILD:-unset})"

MiB=$((1024 * 1024))

# ---------------------------------------------------------------- source trees

# Made once: S1 (about 2000 small C headers and two large files), S2 (about 1500 files of
# /usr/share/doc, a sparse file, an empty file, a symlink).
S1=$W/s1
S2=$W/s2
mk_sources() {
	mkdir -p "$S1" "$S2"
	(cd /usr/include && find . -type f -size -32k | sort | awk 'NR <= 2000' |
		xargs -d '\n' cp --parents -t "$S1") || die_setup "cannot copy /usr/include"
	(cd /usr/share/doc && find . -type f | sort | awk 'NR <= 1500' |
		xargs -d '\n' cp --parents -t "$S2") || die_setup "cannot copy /usr/share/doc"
	make_random "$S1/big-random" $((3 * MiB)) 7
	make_text "$S2/big-text" $((2 * MiB))
	truncate -s 5M "$S2/sparse"
	printf 'tail' >>"$S2/sparse"
	: >"$S2/empty"
	ln -s big-text "$S2/link"
	(($(find "$S1" -type f | wc -l) > 1000 && $(find "$S2" -type f | wc -l) > 1000)) ||
		die_setup "too few source files"
}

# populate MNT [light]: fill a mounted filesystem: S1, every other file of it deleted, S2
# into the holes, two files grown in turns (fragmented), a third of S2 deleted (its data
# stays in free space). light: S2 only, for bigalloc (64 KiB per small file).
populate() {
	local mnt=$1 i
	if [[ ${2:-} != light ]]; then
		cp -a "$S1" "$mnt/a"
		(cd "$mnt/a" && find . -type f | sort | awk 'NR % 2 == 0' | xargs -d '\n' rm -f)
	fi
	cp -a "$S2" "$mnt/b"
	# O_DIRECT: each piece is allocated when written (no delayed allocation to merge
	# them), so the two files interleave.
	for i in $(seq 0 15); do
		dd if="$S1/big-random" of="$mnt/frag1" bs=64k count=1 skip="$i" seek="$i" \
			conv=notrunc oflag=direct status=none
		dd if="$S2/big-text" of="$mnt/frag2" bs=64k count=1 skip="$i" seek="$i" \
			conv=notrunc oflag=direct status=none
	done
	(cd "$mnt/b" && find . -type f | sort | awk 'NR % 3 == 0' | xargs -d '\n' rm -f)
}

# fill IMG [light]: mount IMG, populate it, unmount (the superblock counts are written).
fill() {
	local mnt=$W/fill
	mkdir -p "$mnt"
	mount -o loop "$1" "$mnt" || { err "cannot mount ${1##*/}"; return 1; }
	populate "$mnt" "${2:-}"
	umount "$mnt" || err "cannot unmount ${1##*/}"
}

# ---------------------------------------------------------------- facts

declare -A F D

# fsmap_run WANT ARGS...: run fsmap; its "key value" lines into F.
fsmap_run() {
	local want=$1 k v
	shift
	F=()
	run "$want" "$FSMAP" "$@" || return 1
	while read -r k v; do F[$k]=$v; done <"$W/stdout"
}

# dumpe2fs_facts DEV: dumpe2fs -h into D (block_count, free_blocks, block_size, features).
dumpe2fs_facts() {
	D=()
	local line
	while IFS= read -r line; do
		case $line in
		'Block count:'*) D[block_count]=${line##* } ;;
		'Free blocks:'*) D[free_blocks]=${line##* } ;;
		'Block size:'*) D[block_size]=${line##* } ;;
		'Filesystem features:'*) D[features]=${line#*:} ;;
		esac
	done < <(dumpe2fs -h "$1" 2>/dev/null)
	[[ -n ${D[block_count]:-} && -n ${D[free_blocks]:-} && -n ${D[block_size]:-} ]] || {
		err "dumpe2fs -h ${1##*/} gives no block counts"
		return 1
	}
}

# want KEY VALUE: fsmap's fact KEY is VALUE.
want() {
	[[ ${F[$1]-} == "$2" ]] || err "fsmap $1 is '${F[$1]-}', want '$2'"
}

# free_set_matches DEV OUT OFFSET: the blocks of OUT (from OFFSET) that fsmap --scrub
# filled with 0xA5 are exactly the free blocks dumpe2fs DEV lists, group by group.
free_set_matches() {
	local res
	res=$("$PY" - "$1" "$2" "$3" <<'EOF'
import re, subprocess, sys
dev, out, off = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = subprocess.run(["dumpe2fs", dev], capture_output=True, text=True).stdout
bs = int(re.search(r"^Block size:\s+(\d+)", d, re.M).group(1))
blocks = int(re.search(r"^Block count:\s+(\d+)", d, re.M).group(1))
cs = re.search(r"^Cluster size:\s+(\d+)", d, re.M)
ratio = int(cs.group(1)) // bs if cs else 1
free = []
for m in re.finditer(r"^\s+Free blocks: (.*)$", d, re.M):
    for part in m.group(1).split(","):
        part = part.strip()
        if part:
            a, _, b = part.partition("-")
            # A run of free clusters is printed as its first block - the first block of
            # its last cluster: the run ends with that cluster.
            free.append((int(a), min((int(b or a) // ratio + 1) * ratio, blocks)))
scrubbed, pat, start = [], b"\xa5" * bs, None
with open(out, "rb") as f:
    f.seek(off)
    for blk in range(blocks):
        hit = f.read(bs) == pat
        if hit and start is None:
            start = blk
        elif not hit and start is not None:
            scrubbed.append((start, blk))
            start = None
    if start is not None:
        scrubbed.append((start, blocks))
def merged(v):
    r = []
    for a, b in sorted(v):
        if r and r[-1][1] == a:
            r[-1] = (r[-1][0], b)
        else:
            r.append((a, b))
    return r
A, B = merged(free), merged(scrubbed)
if A == B:
    print("ok")
else:
    sa = {x for a, b in A for x in range(a, b)}
    sb = {x for a, b in B for x in range(a, b)}
    print("dumpe2fs lists %d free blocks, %d scrubbed; free not scrubbed: %s; scrubbed "
          "not free: %s" % (len(sa), len(sb), sorted(sa - sb)[:5], sorted(sb - sa)[:5]))
EOF
	)
	[[ $res == ok ]] || err "FREE set differs from dumpe2fs: $res"
}

# same_trees DEV1 DEV2: both mount (read-only, no journal replay) with identical trees.
same_trees() {
	local a=$W/m1 b=$W/m2 opts=ro
	[[ ${D[features]} == *has_journal* ]] && opts=ro,noload
	mkdir -p "$a" "$b"
	if ! mount -o "$opts" "$1" "$a" 2>/dev/null; then
		err "cannot mount the original"
		return 1
	fi
	if ! mount -o "$opts" "$2" "$b" 2>/dev/null; then
		umount "$a"
		err "cannot mount the scrubbed copy"
		return 1
	fi
	local d
	d=$(diff -r --no-dereference "$a" "$b" 2>&1 | head -c 300) || err "trees differ: $d"
	(cd "$a" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) >"$W/sum1"
	(cd "$b" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) >"$W/sum2"
	cmp -s "$W/sum1" "$W/sum2" || err "file checksums differ"
	(($(wc -l <"$W/sum1") > 0)) || err "no files in the original"
	umount "$a" "$b"
}

# ro_loop FILE OFFSET SIZE: a read-only loop device over a byte range (LOOP).
ro_loop() {
	loop_attach "$1" -r -o "$2" --sizelimit "$3"
}

# check_fs IMG [OFFSET SIZE]: the whole proof for a clean filesystem in IMG (or in the
# byte range of a disk image).
check_fs() {
	local img=$1 off=${2:-0} size=${3:-} dev=$1 out=$W/scrubbed.img sdev
	local args=()
	if [[ -n $size ]]; then
		args=(--offset "$off" --size "$size")
		ro_loop "$img" "$off" "$size"
		dev=$LOOP
	fi
	dumpe2fs_facts "$dev" || return 1
	local bs=${D[block_size]} bc=${D[block_count]} fb=${D[free_blocks]}
	fsmap_run 0 "${args[@]}" --scrub "$out" "$img" || return 1
	want driver ext
	want type "$(blkid -p -o value -s TYPE "$dev")"
	want uuid "$(blkid -p -o value -s UUID "$dev")"
	want label "$(blkid -p -o value -s LABEL "$dev")"
	want block_size "$bs"
	want fs_size $((bc * bs))
	want used_bytes $(((bc - fb) * bs))
	want free_bytes $((fb * bs))
	want flags 0
	free_set_matches "$dev" "$out" "$off"
	sdev=$out
	if [[ -n $size ]]; then
		ro_loop "$out" "$off" "$size"
		sdev=$LOOP
	fi
	e2fsck -fn "$sdev" >"$W/fsck.log" 2>&1 ||
		err "e2fsck -fn on the scrubbed copy: $(grep -v '^Pass\|^e2fsck' "$W/fsck.log" | head -c 300)"
	same_trees "$dev" "$sdev"
	rm -f "$out"
}

# mkimg IMG SIZE MKFS [options...]: a sparse file made into a filesystem.
mkimg() {
	local img=$1 size=$2
	shift 2
	rm -f "$img"
	truncate -s "$size" "$img"
	"$@" -q -F "$img" >"$W/mkfs.log" 2>&1 || die_setup "$* failed: $(head -c 300 "$W/mkfs.log")"
}

# Images live on a tmpfs: the cases write and read about 2 GiB of images (scrubbed copies
# are full-size), which on a disk costs more in fsync and writeback than in the checks.
# Only the pages written take memory (a few hundred MiB at a time).
mount_at "$W/t" -t tmpfs -o size=1536m tmpfs
W=$W/t
mk_sources
img=$W/fs.img

# ---------------------------------------------------------------- clean filesystems

begin ext2
mkimg "$img" 128M mkfs.ext2 -L ext2-label
fill "$img" && check_fs "$img"
want type ext2
finish

begin ext3
mkimg "$img" 128M mkfs.ext3 -b 4096 -U 0e3e3e3e-1111-4222-8333-444455556666
fill "$img" && check_fs "$img"
want type ext3
want uuid 0e3e3e3e-1111-4222-8333-444455556666
finish

begin ext4-defaults
# No options: what mkfs.ext4 gives a volume of this size (below 512 MiB its "small"
# profile: 1 KiB blocks, block 0 the boot block, groups from block 1).
mkimg "$img" 128M mkfs.ext4 -L ext4-label
fill "$img" && check_fs "$img"
want type ext4
want label ext4-label
want block_size 1024
[[ ${D[features]} == *metadata_csum* && ${D[features]} == *flex_bg* && ${D[features]} == *64bit* ]] ||
	err "mkfs.ext4 made no metadata_csum/flex_bg/64bit filesystem: ${D[features]}"
[[ $(dumpe2fs -h "$img" 2>/dev/null | awk '/^First block:/{print $3}') == 1 ]] ||
	err "1 KiB blocks but first block is not 1"
finish

begin ext4-mkfs-d-block-uninit
# Filled by mke2fs -d (libext2fs allocates from the first groups on, unlike the kernel,
# whose Orlov allocator may spread directories over every group) in the ordinary profile
# (-T default: 4 KiB blocks): the last groups stay BLOCK_UNINIT (no bitmap on disk;
# libext2fs and the reader synthesise it).
mkimg "$img" 256M mkfs.ext4 -T default -g 8192 -d "$S1"
check_fs "$img"
want block_size 4096
# (grep -c, not -q: -q would stop reading, and pipefail would count dumpe2fs's SIGPIPE.)
(($(dumpe2fs "$img" 2>/dev/null | grep -c BLOCK_UNINIT) > 0)) ||
	err "no BLOCK_UNINIT group left to test"
finish

begin ext4-1k-blocks
mkimg "$img" 128M mkfs.ext4 -T default -b 1024
fill "$img" && check_fs "$img"
want block_size 1024
finish

begin ext4-bigalloc
# 64 KiB clusters of 16 blocks: one bitmap bit per cluster.
mkimg "$img" 256M mkfs.ext4 -b 4096 -O bigalloc -C 65536
fill "$img" light && check_fs "$img"
[[ ${D[features]} == *bigalloc* ]] || err "no bigalloc: ${D[features]}"
finish

begin ext4-no-flex-bg
mkimg "$img" 128M mkfs.ext4 -b 4096 -g 8192 -O ^flex_bg
fill "$img" && check_fs "$img"
finish

begin ext4-meta-bg
# 1 KiB blocks, 32 groups of 64-byte descriptors: two descriptor blocks, two meta groups.
mkimg "$img" 256M mkfs.ext4 -b 1024 -O meta_bg,^resize_inode
fill "$img" && check_fs "$img"
[[ ${D[features]} == *meta_bg* ]] || err "no meta_bg: ${D[features]}"
finish

begin ext4-sparse-super2
mkimg "$img" 128M mkfs.ext4 -b 4096 -g 8192 -O sparse_super2
fill "$img" && check_fs "$img"
finish

begin ext4-in-partition
disk=$W/disk.img
rm -f "$disk"
truncate -s 200M "$disk"
printf 'label: dos\nstart=2048, size=32768, type=83\nstart=34816, size=262144, type=83\n' |
	sfdisk -q "$disk" >/dev/null 2>&1 || die_setup "sfdisk failed"
p1=$((2048 * 512)) p2=$((34816 * 512)) p2size=$((262144 * 512))
if ! mke2fs -q -F -t ext2 -E offset=$p1 "$disk" 16M >/dev/null 2>&1 ||
	! mke2fs -q -F -t ext4 -L in-part -E offset=$p2 "$disk" $((p2size / 1024))k >/dev/null 2>&1; then
	die_setup "mke2fs -E offset failed"
fi
loop_attach "$disk" -o "$p2" --sizelimit "$p2size"
mkdir -p "$W/pm"
if mount "$LOOP" "$W/pm"; then
	populate "$W/pm"
	umount "$W/pm" || err "cannot unmount the partition"
else
	err "cannot mount the partition"
fi
cp --sparse=always "$disk" "$W/disk.orig"
check_fs "$disk" "$p2" "$p2size"
want label in-part
# The scrubbed copy is gone (check_fs removes it); scrub again and look outside p2.
fsmap_run 0 --offset "$p2" --size "$p2size" --scrub "$W/scrubbed.img" "$disk"
same "$W/disk.orig" "$W/scrubbed.img" "$p2"
cmp -s -i "$((p2 + p2size))" "$W/disk.orig" "$W/scrubbed.img" ||
	err "bytes after the partition changed"
unchanged "$disk" "$W/disk.orig"
rm -f "$W/scrubbed.img" "$W/disk.orig"
finish

# ---------------------------------------------------------------- states

# A copy taken while mounted read-write: ext4 sets needs_recovery at mount.
begin needs-recovery-mounted-copy
mkimg "$img" 64M mkfs.ext4
mkdir -p "$W/live"
if mount -o loop "$img" "$W/live"; then
	cp -a "$S2" "$W/live/b"
	sync
	cp --sparse=always "$img" "$W/snap.img"
	umount "$W/live"
	fsmap_run 0 "$W/snap.img"
	want flags 2
	want free_bytes 0
	[[ ${F[state]} == *'journal needs recovery'* ]] || err "state: ${F[state]}"
	# After e2fsck replays the journal it reads as a clean filesystem.
	e2fsck -fy "$W/snap.img" >/dev/null 2>&1
	dumpe2fs_facts "$W/snap.img"
	fsmap_run 0 "$W/snap.img"
	want flags 0
	want used_bytes $(((D[block_count] - D[free_blocks]) * D[block_size]))
else
	err "cannot mount"
fi
rm -f "$W/snap.img"
finish

begin needs-recovery-flag
mkimg "$img" 64M mkfs.ext4
debugfs -w -R "feature needs_recovery" "$img" >/dev/null 2>&1
fsmap_run 0 "$img"
want flags 2
want free_bytes 0
want used_map_bytes $((64 * MiB))
finish

# ext2 has no journal: the kernel clears VALID in the superblock while it is mounted.
begin dirty-mounted-copy
mkimg "$img" 64M mkfs.ext2
if mount -o loop "$img" "$W/live"; then
	cp -a "$S2" "$W/live/b"
	sync
	cp --sparse=always "$img" "$W/snap.img"
	umount "$W/live"
	fsmap_run 0 "$W/snap.img"
	want type ext2
	want flags 1
	want free_bytes 0
	[[ ${F[state]} == *'not cleanly unmounted'* ]] || err "state: ${F[state]}"
else
	err "cannot mount"
fi
rm -f "$W/snap.img"
finish

begin errors-recorded
mkimg "$img" 64M mkfs.ext4
debugfs -w -R "ssv state 3" "$img" >/dev/null 2>&1   # VALID | ERROR_FS
fsmap_run 0 "$img"
want flags 8
want free_bytes 0
finish

# ---------------------------------------------------------------- damage

mkimg "$W/good.img" 64M mkfs.ext4
# A filesystem without checksums, so that debugfs can change descriptors consistently.
mkimg "$W/plain.img" 64M mkfs.ext4 -O ^metadata_csum,^uninit_bg

begin damaged-magic
cp "$W/good.img" "$img"
flip "$img" 1080 0xff
fsmap_run 3 "$img"
want driver none
finish

begin damaged-truncated
cp "$W/good.img" "$img"
truncate -s 40M "$img"
fsmap_run 1 "$img"
grep -q 'truncated image' "$W/stderr" || err "message: $(head -c 300 "$W/stderr")"
finish

begin damaged-bitmap-pointer
cp "$W/plain.img" "$img"
debugfs -w -R "set_bg 1 block_bitmap 9999999" "$img" >/dev/null 2>&1
fsmap_run 1 "$img"
grep -q 'group descriptor 1 .*block bitmap at block 9999999.*lies outside' "$W/stderr" ||
	err "message: $(head -c 300 "$W/stderr")"
finish

begin damaged-overlap
cp "$W/plain.img" "$img"
itable=$(dumpe2fs "$img" 2>/dev/null | awk '/^Group 0/{g=1} g && /Inode table at/{split($4, a, "-"); print a[1]; exit}')
debugfs -w -R "set_bg 3 inode_table $itable" "$img" >/dev/null 2>&1
fsmap_run 1 "$img"
grep -q 'overlaps' "$W/stderr" || err "message: $(head -c 300 "$W/stderr")"
finish

begin damaged-descriptor-checksum
cp "$W/good.img" "$img"
debugfs -w -R "set_bg 2 checksum 0" "$img" >/dev/null 2>&1
fsmap_run 1 "$img"
grep -q 'group descriptor 2 .*checksum mismatch' "$W/stderr" ||
	err "message: $(head -c 300 "$W/stderr")"
finish

begin damaged-bitmap-checksum
cp "$W/good.img" "$img"
bb=$(dumpe2fs "$img" 2>/dev/null | awk '/^Group 0/{g=1} g && /Block bitmap at/{print $4; exit}')
flip "$img" $((bb * 1024 + 100)) 0x55
fsmap_run 1 "$img"
grep -q 'group 0: block bitmap .*does not match its checksum' "$W/stderr" ||
	err "message: $(head -c 300 "$W/stderr")"
finish

begin unknown-incompat-feature
cp "$W/plain.img" "$img"
debugfs -w -R "ssv feature_incompat 0x10000002" "$img" >/dev/null 2>&1  # filetype + unknown
fsmap_run 1 "$img"
grep -q 'unknown to libext2fs' "$W/stderr" || err "message: $(head -c 300 "$W/stderr")"
finish

begin journal-device-not-a-filesystem
rm -f "$img"
truncate -s 16M "$img"
mke2fs -q -F -O journal_dev "$img" >/dev/null 2>&1 || die_setup "mke2fs -O journal_dev failed"
fsmap_run 3 "$img"
finish

done_testing
