#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Smart imaging end to end (issue 3): real disks made by sgdisk/sfdisk and the real mkfs
# tools, filled with real files, some deleted again, free space holding stale random
# data. Each is imaged (smart, the default), verified, restored to a file, to a larger
# and to a smaller-but-sufficient disk (loop devices), one partition alone, and cloned;
# every restored partition passes its fsck and holds the same file tree as the source;
# sgdisk -v is clean after the GPT moved; free space on a block target is left alone;
# what cannot be done safely is refused with exit 5.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_imago
need_root
need sgdisk sfdisk losetup partx mkfs.ext4 mkfs.vfat mcopy mkntfs ntfs-3g ntfsfix mkswap \
	e2fsck fsck.fat blkid jq debugfs diff cmp fsfreeze

# ---------------------------------------------------------------- sources

# A tree of real files: text and binaries from the system, plus a few large random files.
TREE=$W/tree
mkdir -p "$TREE"
find /usr/share/doc /usr/share/man/man1 -type f -size -200k 2>/dev/null | head -1500 |
	while read -r f; do
		d=$TREE/$(dirname "${f#/usr/share/}")
		mkdir -p "$d" && cp -- "$f" "$d/" 2>/dev/null
	done
for i in 1 2 3; do head -c $((i * 3 * 1024 * 1024)) /dev/urandom >"$TREE/big$i.bin"; done

# fresh_parts DEV: the kernel's view of DEV's partition table, made now. losetup -P does
# not create partition devices in every VM, and a loop device reused after an earlier
# case may still carry that one's partitions (added with BLKPG, they outlive the file).
fresh_parts() {
	local dev=$1 i
	partx -d "$dev" >/dev/null 2>&1
	partx -a "$dev" >/dev/null 2>&1 || return 1
	for i in 1 2 3 4 5 6 7 8 9 10; do
		[[ -b ${dev}p1 ]] && return 0
		sleep 0.2
	done
	return 1
}

# attach_disk FILE: a loop device for FILE with fresh partition devices, in LOOP; its
# partitions are dropped before it is detached.
attach_disk() {
	loop_attach "$1"
	defer partx -d "$LOOP"
	fresh_parts "$LOOP" || die_setup "no partitions on $LOOP ($1)"
}

# stale FILE SIZE: a sparse file full of random "stale" bytes (what a used disk holds).
stale() { head -c "$2" /dev/urandom >"$1"; }

# files_into_fs DEV FSTYPE: mount DEV, copy the tree, delete every third file, write a
# late file (so freed blocks hold stale data between used ones), unmount.
files_into_fs() {
	local dev=$1 t=$2 m=$W/fill
	mkdir -p "$m"
	if [[ $t == vfat ]]; then
		# No vfat in this kernel, and mtools cannot work on partition devices (no
		# geometry): fill a copy of the partition as a file, then write it back.
		local f n=0 img=$W/fat.img
		cat "$dev" >"$img" || die_setup "read $dev"
		MTOOLS_SKIP_CHECK=1 mcopy -s -D oO -i "$img" "$TREE"/doc ::/ 2>"$W/mcopy.err" || die_setup "mcopy $dev: $(tail -1 "$W/mcopy.err")"
		MTOOLS_SKIP_CHECK=1 mcopy -i "$img" "$TREE"/big1.bin "$TREE"/big2.bin ::/ || die_setup "mcopy $dev"
		while read -r f; do
			n=$((n + 1))
			((n % 3 == 0)) && MTOOLS_SKIP_CHECK=1 mdel -i "$img" "$f" 2>/dev/null
		done < <(MTOOLS_SKIP_CHECK=1 mdir -/ -b -i "$img" ::/doc 2>/dev/null | grep -v '/$' | head -300)
		head -c $((2 * 1024 * 1024)) /dev/urandom >"$W/late.bin"
		MTOOLS_SKIP_CHECK=1 mcopy -i "$img" "$W/late.bin" ::/ || die_setup "mcopy $dev"
		dd if="$img" of="$dev" bs=1M conv=notrunc,fsync status=none || die_setup "write $dev"
		rm -f "$img"
		return
	fi
	if [[ $t == ntfs ]]; then ntfs-3g "$dev" "$m" || die_setup "ntfs-3g $dev"; else mount "$dev" "$m" || die_setup "mount $dev"; fi
	cp -r "$TREE"/. "$m"/ 2>/dev/null
	find "$m" -type f | awk 'NR % 3 == 0' | xargs -r rm -f
	head -c $((2 * 1024 * 1024)) /dev/urandom >"$m/late.bin"
	sync
	umount "$m" || die_setup "umount $m"
}

# GPT disk: ext4, FAT32, NTFS, swap, and unpartitioned space at the end.
GDISK=$W/gpt.raw
# stale data where the partitions go; the space after them is zero (never written)
stale "$GDISK" $((153 * 1024 * 1024))
truncate -s 200M "$GDISK"
sgdisk -o -n1:2048:+56M -t1:8300 -c1:root -n2:0:+40M -t2:0700 -c2:data \
	-n3:0:+48M -t3:0700 -c3:windows -n4:0:+8M -t4:8200 -c4:swap "$GDISK" >/dev/null ||
	die_setup "sgdisk"
attach_disk "$GDISK"
GLOOP=$LOOP
mkfs.ext4 -q -E nodiscard -L root "${GLOOP}p1" || die_setup "mkfs.ext4"
files_into_fs "${GLOOP}p1" ext4
mkfs.vfat -F 32 -n DATA "${GLOOP}p2" >/dev/null || die_setup "mkfs.vfat"
files_into_fs "${GLOOP}p2" vfat
mkntfs -Q -q -L windows "${GLOOP}p3" || die_setup "mkntfs"
files_into_fs "${GLOOP}p3" ntfs
mkswap -L swp "${GLOOP}p4" >/dev/null || die_setup "mkswap"
sync

# MBR disk: a primary ext4, an extended partition with a FAT16 and an ext2 logical.
MDISK=$W/mbr.raw
stale "$MDISK" $((101 * 1024 * 1024))
truncate -s 120M "$MDISK"
# the extended partition ends at 107 MiB, so a 110 MiB disk holds every partition
printf 'label: dos\nstart=2048, size=81920, type=83\nstart=83968, size=135168, type=5\nstart=86016, size=61440, type=6\nstart=149504, size=61440, type=83\n' |
	sfdisk -q "$MDISK" || die_setup "sfdisk"
attach_disk "$MDISK"
MLOOP=$LOOP
for i in 1 2 3 4 5 6 7 8 9 10; do [[ -b ${MLOOP}p6 ]] && break; sleep 0.2; done
mkfs.ext4 -q -E nodiscard -L mroot "${MLOOP}p1" || die_setup "mkfs.ext4 mbr"
files_into_fs "${MLOOP}p1" ext4
mkfs.vfat -F 16 -n MFAT "${MLOOP}p5" >/dev/null || die_setup "mkfs.vfat mbr"
files_into_fs "${MLOOP}p5" vfat
mkfs.ext2 -q -E nodiscard -L mext2 "${MLOOP}p6" || die_setup "mkfs.ext2 mbr"
files_into_fs "${MLOOP}p6" ext2
sync

# fstype_of DEV: what blkid says.
fstype_of() { blkid -p -o value -s TYPE "$1" 2>/dev/null; }

# fsck_clean DEV: the right fsck, read-only, is clean.
fsck_clean() {
	local dev=$1 t
	t=$(fstype_of "$dev")
	case $t in
	ext2 | ext3 | ext4) e2fsck -fn "$dev" >"$W/fsck.out" 2>&1 ;;
	vfat) fsck.fat -n "$dev" >"$W/fsck.out" 2>&1 ;;
	ntfs) ntfsfix -n "$dev" >"$W/fsck.out" 2>&1 ;;
	swap) blkid -p "$dev" >"$W/fsck.out" 2>&1 ;;
	*) echo "unknown type '$t'" >"$W/fsck.out"; return 1 ;;
	esac
}

# same_tree SRC-DEV COPY-DEV: both mounted read-only hold identical trees.
same_tree() {
	local a=$1 b=$2 t ma=$W/ma mb=$W/mb rc=0
	t=$(fstype_of "$a")
	[[ $t == swap ]] && { [[ $(blkid -p -o value -s UUID "$a") == $(blkid -p -o value -s UUID "$b") ]]; return; }
	umount -l "$ma" 2>/dev/null
	umount -l "$mb" 2>/dev/null
	mkdir -p "$ma" "$mb"
	if [[ $t == vfat ]]; then
		MTOOLS_SKIP_CHECK=1 mcopy -s -n -i "$a" ::/ "$ma"/ 2>/dev/null &&
			MTOOLS_SKIP_CHECK=1 mcopy -s -n -i "$b" ::/ "$mb"/ 2>/dev/null || return 1
		diff -r "$ma" "$mb" >"$W/diff.out" 2>&1 || rc=1
		[[ -n $(ls "$ma") ]] || { echo "nothing extracted" >"$W/diff.out"; rc=1; }
		rm -rf "$ma" "$mb"
		return $rc
	fi
	if [[ $t == ntfs ]]; then
		ntfs-3g -o ro "$a" "$ma" && ntfs-3g -o ro "$b" "$mb" || return 1
	else
		mount -o ro "$a" "$ma" && mount -o ro "$b" "$mb" || { umount "$ma" 2>/dev/null; return 1; }
	fi
	diff -r "$ma" "$mb" >"$W/diff.out" 2>&1 || rc=1
	umount "$ma"; umount "$mb"
	return $rc
}

# check_disk SRC-LOOP COPY-LOOP PARTS...: each partition of the copy passes fsck and
# equals the source's.
check_disk() {
	local s=$1 c=$2 p
	shift 2
	fresh_parts "$c" || err "partx cannot read the table of the copy"
	defer partx -d "$c"
	for p in "$@"; do
		for i in 1 2 3 4 5 6 7 8 9 10; do [[ -b ${c}p$p ]] && break; sleep 0.2; done
		fsck_clean "${c}p$p" || err "partition $p: fsck: $(tail -3 "$W/fsck.out")"
		same_tree "${s}p$p" "${c}p$p" || err "partition $p: trees differ: $(head -5 "$W/diff.out")"
	done
}

# sgdisk_clean DEV-OR-FILE: sgdisk -v finds no problems.
sgdisk_clean() {
	sgdisk -v "$1" >"$W/sgdisk.out" 2>&1
	grep -q 'No problems found' "$W/sgdisk.out" || err "sgdisk -v $1: $(tr '\n' ' ' <"$W/sgdisk.out" | head -c 300)"
}

# ---------------------------------------------------------------- GPT disk

GIMG=$W/gpt.imago
begin gpt_create_smart
run 0 "$IMAGO" create -q "$GLOOP" "$GIMG"
run 0 "$IMAGO" verify -q "$GIMG"
run 0 "$IMAGO" create -q --sector "$GLOOP" "$W/gpt-sector.imago"
# the stale random (incompressible) bytes in free space are not stored: the smart image
# is smaller than the sector image by nearly all of its FREE bytes
run 0 "$IMAGO" info --json "$GIMG"
free=$(jq .extents.free.bytes "$W/stdout")
((free > 30 * 1024 * 1024)) || err "only $free FREE bytes found"
(($(fsize "$GIMG") + free * 8 / 10 < $(fsize "$W/gpt-sector.imago"))) ||
	err "smart image $(fsize "$GIMG") + 80% of $free FREE bytes is not below the sector image $(fsize "$W/gpt-sector.imago")"
rm -f -- "$W/gpt-sector.imago"
finish

begin gpt_info_partition_map
run 0 "$IMAGO" info --json "$GIMG"
j=$W/stdout
[[ $(jq -r .partition_map.scheme "$j") == gpt ]] || err "scheme $(jq -r .partition_map.scheme "$j")"
[[ $(jq -r '[.partition_map.partitions[].fs] | join(",")' "$j") == "ext4,fat32,ntfs,swap" ]] ||
	err "filesystems: $(jq -r '[.partition_map.partitions[].fs] | join(",")' "$j")"
[[ $(jq -r '[.partition_map.partitions[].name] | join(",")' "$j") == "root,data,windows,swap" ]] ||
	err "names: $(jq -r '[.partition_map.partitions[].name] | join(",")' "$j")"
for p in 1 2 3 4; do
	want=$(blkid -p -o value -s UUID "${GLOOP}p$p")
	got=$(jq -r ".partition_map.partitions[$((p - 1))].uuid" "$j")
	[[ ${got,,} == "${want,,}" ]] || err "partition $p: uuid '$got', blkid says '$want'"
	want=$(blkid -p -o value -s LABEL "${GLOOP}p$p")
	got=$(jq -r ".partition_map.partitions[$((p - 1))].label" "$j")
	[[ $got == "$want" ]] || err "partition $p: label '$got', blkid says '$want'"
done
# the same map read from the disk itself
run 0 "$IMAGO" info --json "$GLOOP"
a=$(jq -c '[.partition_map.partitions[] | [.number, .start, .size, .fs, .label, .uuid, .used_bytes]]' "$W/stdout")
b=$(jq -c '[.partition_map.partitions[] | [.number, .start, .size, .fs, .label, .uuid, .used_bytes]]' "$j")
[[ $a == "$b" ]] || err "info of the disk and of the image disagree: $a vs $b"
# starts and sizes are what sgdisk made
while read -r n s e; do
	got=$(jq -r ".partition_map.partitions[] | select(.number == $n) | \"\(.start) \(.size)\"" "$j")
	[[ $got == "$((s * 512)) $(((e - s + 1) * 512))" ]] || err "partition $n: $got, sgdisk says $s..$e"
done < <(sgdisk -p "$GDISK" | awk '$1 ~ /^[0-9]+$/ {print $1, $2, $3}')
finish

begin gpt_restore_to_file
run 0 "$IMAGO" restore -q "$GIMG" "$W/gpt-copy.raw"
[[ $(fsize "$W/gpt-copy.raw") == $(fsize "$GDISK") ]] || err "size $(fsize "$W/gpt-copy.raw")"
loop_attach "$W/gpt-copy.raw"
check_disk "$GLOOP" "$LOOP" 1 2 3 4
sgdisk_clean "$W/gpt-copy.raw"
finish

begin gpt_restore_from_pipe_leaves_free_space_alone
head -c $((200 * 1024 * 1024)) /dev/zero | tr '\0' '\245' >"$W/target.raw"
loop_attach "$W/target.raw"
run_in "$GIMG" 0 "$IMAGO" restore -q --force - "$LOOP"
check_disk "$GLOOP" "$LOOP" 1 2 3 4
# free space still holds the target's old bytes (0xA5), and verify --against agrees
blockdev --flushbufs "$LOOP"
n=$(tr -dc '\245' <"$LOOP" | wc -c)
((n > 10 * 1024 * 1024)) || err "only $n bytes of the target's old content are left: free space was written"
run 0 "$IMAGO" verify -q --against "$LOOP" "$GIMG"
finish

begin gpt_restore_to_larger_disk
truncate -s 260M "$W/big.raw"
loop_attach "$W/big.raw"
run 0 "$IMAGO" restore -q "$GIMG" "$LOOP"
check_disk "$GLOOP" "$LOOP" 1 2 3 4
sgdisk_clean "$LOOP"
last=$(sgdisk -p "$LOOP" | awk '/last usable sector/ {print $NF}')
((last == 260 * 2048 - 34)) || err "last usable sector $last, want $((260 * 2048 - 34))"
finish

begin gpt_restore_to_smaller_disk
run 0 "$IMAGO" restore --dry-run "$GIMG" "$W/nothing.raw"
grep -q '^Fits: *yes' "$W/stdout" || err "dry run: $(head -c 300 "$W/stdout")"
[[ ! -e $W/nothing.raw ]] || err "dry run created the target"
end=$(sgdisk -p "$GDISK" | awk '$1 == 4 {print $3}')
small=$(((end + 34 + 2047) / 2048))
truncate -s "${small}M" "$W/small.raw"
loop_attach "$W/small.raw"
run 0 "$IMAGO" restore -q "$GIMG" "$LOOP"
check_disk "$GLOOP" "$LOOP" 1 2 3 4
sgdisk_clean "$LOOP"
finish

begin gpt_restore_too_small_refused
truncate -s 100M "$W/tiny.raw"
loop_attach "$W/tiny.raw"
run 5 "$IMAGO" restore --dry-run "$GIMG" "$LOOP"
grep -q '^Fits: *NO' "$W/stdout" || err "dry run does not say it does not fit"
run 5 "$IMAGO" restore -q "$GIMG" "$LOOP"
stderr_one_line 'at least [0-9]+ bytes'
[[ $(od -An -tx1 -N 16 "$LOOP" | tr -d ' \n') == 00000000000000000000000000000000 ]] ||
	err "the refused target was written"
finish

begin gpt_restore_one_partition
run 0 "$IMAGO" restore -q --partition 1 "$GIMG" "$W/p1.raw"
[[ $(fsize "$W/p1.raw") == $((56 * 1024 * 1024)) ]] || err "partition file size $(fsize "$W/p1.raw")"
loop_attach "$W/p1.raw"
fsck_clean "$LOOP" || err "fsck: $(tail -3 "$W/fsck.out")"
same_tree "${GLOOP}p1" "$LOOP" || err "trees differ: $(head -5 "$W/diff.out")"
run 2 "$IMAGO" restore -q --partition 9 "$GIMG" "$W/p9.raw"
finish

begin gpt_clone_to_larger_disk
truncate -s 240M "$W/clone.raw"
loop_attach "$W/clone.raw"
run 0 "$IMAGO" clone -q "$GLOOP" "$LOOP"
check_disk "$GLOOP" "$LOOP" 1 2 3 4
sgdisk_clean "$LOOP"
finish

# Onto a smaller disk full of junk (the clone writes only USED bytes: the junk in FREE
# space must not matter), and into a new file (sparse, the same size as the source).
begin gpt_clone_to_smaller_disk_full_of_junk
stale "$W/clone-small.raw" $((small * 1024 * 1024))
loop_attach "$W/clone-small.raw"
run 0 "$IMAGO" clone -q "$GLOOP" "$LOOP"
check_disk "$GLOOP" "$LOOP" 1 2 3 4
sgdisk_clean "$LOOP"
finish

begin gpt_clone_to_file
run 0 "$IMAGO" clone "$GLOOP" "$W/clone-file.raw"
# the clone's digest (FREE bytes counted as zeros) is the smart image's
cdig=$(grep -o 'digest [0-9a-f]\{64\}' "$W/stdout" "$W/stderr" | head -1 | awk '{print $NF}')
run 0 "$IMAGO" info --json "$GIMG"
[[ -n $cdig && $cdig == $(jq -r .digest "$W/stdout") ]] ||
	err "clone digest '$cdig' is not the image's $(jq -r .digest "$W/stdout")"
[[ $(fsize "$W/clone-file.raw") == $(dev_size "$GLOOP") ]] ||
	err "clone file size $(fsize "$W/clone-file.raw"), want $(dev_size "$GLOOP")"
((RC == 0)) && loop_attach "$W/clone-file.raw" && check_disk "$GLOOP" "$LOOP" 1 2 3 4
run 0 "$IMAGO" verify -q --against "$W/clone-file.raw" "$GIMG"
finish

# ---------------------------------------------------------------- MBR disk

MIMG=$W/mbr.imago
begin mbr_logical_partitions_roundtrip
run 0 "$IMAGO" create -q "$MDISK" "$MIMG"
run 0 "$IMAGO" verify -q "$MIMG"
run 0 "$IMAGO" info --json "$MIMG"
[[ $(jq -r '[.partition_map.partitions[] | "\(.number):\(.fs)"] | join(",")' "$W/stdout") == "1:ext4,2:,5:fat16,6:ext2" ]] ||
	err "map: $(jq -r '[.partition_map.partitions[] | "\(.number):\(.fs)"] | join(",")' "$W/stdout")"
truncate -s 110M "$W/mbr-small.raw"
loop_attach "$W/mbr-small.raw"
run 0 "$IMAGO" restore -q "$MIMG" "$LOOP"
check_disk "$MLOOP" "$LOOP" 1 5 6
# the same table: each entry's start, size and type (device names differ)
sfdisk -d "$LOOP" | grep ' : ' | sed 's/.*: //' >"$W/a.sf"
sfdisk -d "$MDISK" | grep ' : ' | sed 's/.*: //' >"$W/b.sf"
[[ -s $W/a.sf ]] || err "no partitions on the copy"
diff "$W/a.sf" "$W/b.sf" >/dev/null || err "partition tables differ: $(diff "$W/a.sf" "$W/b.sf" | head -5)"
finish

# A disk smaller than the extended partition (107 MiB) but holding its last logical
# (which ends at 103 MiB): the container is shortened to the disk; restore and clone.
# sfdisk reads the table back clean, with the same logicals.
mbr_shrunk_ok() {
	local dev=$1 size ext_end
	size=$(($(blockdev --getsz "$dev")))
	sfdisk -V "$dev" >"$W/sfv.out" 2>&1 || err "sfdisk -V $dev: $(tr '\n' ' ' <"$W/sfv.out" | head -c 300)"
	ext_end=$(sfdisk -d "$dev" | awk -F'[=,]' '/type=5/ {print $2 + $4}' | tr -d ' ')
	[[ -n $ext_end ]] && ((ext_end <= size)) || err "extended partition ends at sector '$ext_end', the disk has $size"
	sfdisk -d "$dev" | grep ' : ' | grep -v 'type=5' | sed 's/.*: //' >"$W/a.sf"
	sfdisk -d "$MDISK" | grep ' : ' | grep -v 'type=5' | sed 's/.*: //' >"$W/b.sf"
	diff "$W/a.sf" "$W/b.sf" >/dev/null || err "partitions differ: $(diff "$W/a.sf" "$W/b.sf" | head -5)"
}
begin mbr_restore_shrinks_extended_partition
truncate -s 105M "$W/mbr-105.raw"
loop_attach "$W/mbr-105.raw"
run 0 "$IMAGO" restore "$MIMG" "$LOOP"
grep -q 'extended partition' "$W/stderr" || err "no word about the extended partition: $(head -c 300 "$W/stderr")"
mbr_shrunk_ok "$LOOP"
check_disk "$MLOOP" "$LOOP" 1 5 6
truncate -s 102M "$W/mbr-102.raw"
loop_attach "$W/mbr-102.raw"
run 5 "$IMAGO" restore -q "$MIMG" "$LOOP"
stderr_one_line 'at least [0-9]+ bytes'
finish

begin mbr_clone_shrinks_extended_partition
stale "$W/mbr-c105.raw" $((105 * 1024 * 1024))
loop_attach "$W/mbr-c105.raw"
run 0 "$IMAGO" clone -q "$MLOOP" "$LOOP"
mbr_shrunk_ok "$LOOP"
check_disk "$MLOOP" "$LOOP" 1 5 6
finish

# ---------------------------------------------------------------- odd layout

# Overlapping partitions (as hybrid ISO images have): smart imaging falls back to the
# whole disk with a warning, the image keeps every non-zero byte (its FREE count is 0)
# and restores byte for byte.
begin odd_layout_copied_whole
truncate -s 48M "$W/odd.raw"
printf 'label: dos\nstart=2048, size=40960, type=83\nstart=43008, size=51200, type=83\n' |
	sfdisk -q "$W/odd.raw" >/dev/null 2>&1 || err "sfdisk failed"
mkfs.ext4 -q -F -E offset=$((2048 * 512)),nodiscard "$W/odd.raw" 20M >/dev/null 2>&1 || err "mkfs.ext4 failed"
# entry 2 now starts inside entry 1 (start LBA 10240, little-endian at 0x1d6)
printf '\x00\x28\x00\x00' | dd of="$W/odd.raw" bs=1 seek=$((0x1d6)) conv=notrunc status=none
stale "$W/odd.stale" $((2 * 1024 * 1024))
dd if="$W/odd.stale" of="$W/odd.raw" bs=1M seek=40 conv=notrunc status=none
run 0 "$IMAGO" create "$W/odd.raw" "$W/odd.imago"
grep -q 'odd' "$W/stderr" || err "no warning about the odd layout: $(head -c 300 "$W/stderr")"
run 0 "$IMAGO" info --json "$W/odd.imago"
free=$(jq -r '.extents.free.bytes' "$W/stdout")
[[ $free == 0 ]] || err "the odd-layout image has $free FREE bytes"
run 0 "$IMAGO" restore -q "$W/odd.imago" "$W/odd.copy"
same "$W/odd.raw" "$W/odd.copy"
finish

# ---------------------------------------------------------------- safety

begin dirty_filesystem_refused
cp --sparse=always -- "$MDISK" "$W/dirty.raw"
attach_disk "$W/dirty.raw"
debugfs -w -R "feature needs_recovery" "${LOOP}p1" >/dev/null 2>&1
run 5 "$IMAGO" create -q "$LOOP" "$W/dirty.imago"
stderr_one_line 'partition 1' 'recovery' '--force'
absent "$W/dirty.imago"
run 0 "$IMAGO" create -q --force "$LOOP" "$W/dirty.imago"
run 0 "$IMAGO" info --json "$W/dirty.imago"
[[ $(jq -r '.partition_map.partitions[0].status' "$W/stdout") == unsafe ]] ||
	err "partition 1 status $(jq -r '.partition_map.partitions[0].status' "$W/stdout")"
[[ $(jq -r '.metadata["part.1.imaged"]' "$W/stdout") == "copied (unsafe)" ]] ||
	err "metadata part.1.imaged: $(jq -r '.metadata["part.1.imaged"]' "$W/stdout")"
finish

begin mounted_read_write_refused_then_frozen
mkdir -p "$W/rw"
mount "${MLOOP}p1" "$W/rw" || die_setup "mount"
run 5 "$IMAGO" create -q "$MLOOP" "$W/rw.imago"
stderr_one_line 'mounted read-write' '--freeze'
run 0 "$IMAGO" create -q --freeze "$MLOOP" "$W/rw.imago"
# thawed afterwards: a write goes through at once
timeout 10 touch "$W/rw/after-freeze" || err "the filesystem was left frozen"
umount "$W/rw"
run 0 "$IMAGO" verify -q "$W/rw.imago"
finish

done_testing
