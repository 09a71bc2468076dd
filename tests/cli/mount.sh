#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# imago mount / umount (issue 4): a real GPT disk (sgdisk) with ext4, FAT16 and NTFS
# partitions filled with real files is imaged (smart), mounted through FUSE, and read
# through the mount the way people use it: the whole disk byte for byte against a
# restore, the ext4 partition loop-mounted read-only, the FAT partition through mtools,
# the NTFS partition through ntfs-3g, each compared file by file with the source tree;
# the same disk converted to E01 (read through libewf) mounts alike;
# concurrent readers; a damaged chunk reads as EIO, not data; the copy-on-write overlay
# keeps writes across remounts and leaves the image untouched (verify, digest, bytes),
# survives a kill, never serves a torn record, and refuses another image's overlay; and
# the error cases with their exit codes.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_imago
need_root
need sgdisk sfdisk losetup partx mkfs.ext4 mkfs.vfat mcopy mkntfs ntfs-3g e2fsck diff cmp \
	fusermount3 unshare dd sha256sum findmnt flock

# ---------------------------------------------------------------- the source disk

TREE=$W/tree
mkdir -p "$TREE"
find /usr/share/doc -type f -size -100k 2>/dev/null | sort | head -400 |
	while read -r f; do
		d=$TREE/$(dirname "${f#/usr/share/}")
		mkdir -p "$d" && cp -- "$f" "$d/" 2>/dev/null
	done
head -c $((3 * 1024 * 1024)) /dev/urandom >"$TREE/big.bin"

fresh_parts() {
	local dev=$1 i
	partx -d "$dev" >/dev/null 2>&1
	partx -a "$dev" >/dev/null 2>&1 || return 1
	for i in 1 2 3 4 5 6 7 8 9 10; do
		[[ -b ${dev}p3 ]] && return 0
		sleep 0.2
	done
	return 1
}

RAW=$W/disk.raw
head -c $((100 * 1024 * 1024)) /dev/urandom >"$RAW" # stale data in free space
truncate -s 112M "$RAW"
sgdisk -o -n1:2048:+40M -t1:8300 -n2:0:+24M -t2:0700 -n3:0:+24M -t3:0700 "$RAW" >/dev/null ||
	die_setup "sgdisk"
loop_attach "$RAW"
SLOOP=$LOOP
defer partx -d "$SLOOP"
fresh_parts "$SLOOP" || die_setup "no partitions on $SLOOP"
mkfs.ext4 -q -E nodiscard -L root "${SLOOP}p1" || die_setup "mkfs.ext4"
mkdir -p "$W/fill"
mount "${SLOOP}p1" "$W/fill" || die_setup "mount ext4"
cp -r "$TREE"/. "$W/fill"/ && sync && umount "$W/fill" || die_setup "fill ext4"
mkfs.vfat -F 16 -n DATA "${SLOOP}p2" >/dev/null || die_setup "mkfs.vfat"
cat "${SLOOP}p2" >"$W/fat.img"
MTOOLS_SKIP_CHECK=1 mcopy -s -i "$W/fat.img" "$TREE"/doc "$TREE"/big.bin ::/ || die_setup "mcopy"
dd if="$W/fat.img" of="${SLOOP}p2" bs=1M conv=notrunc,fsync status=none || die_setup "write fat"
rm -f "$W/fat.img"
mkntfs -Q -q -L win "${SLOOP}p3" 2>/dev/null || die_setup "mkntfs"
ntfs-3g "${SLOOP}p3" "$W/fill" || die_setup "ntfs-3g"
cp -r "$TREE"/. "$W/fill"/ && sync && umount "$W/fill" || die_setup "fill ntfs"
sync
P1_SIZE=$((40 * 1024 * 1024))
P2_SIZE=$((24 * 1024 * 1024))

IMG=$W/disk.imago
"$IMAGO" create -q "$RAW" "$IMG" || die_setup "imago create"
# what the image holds (free space as zeros): the reference for byte comparisons
"$IMAGO" restore -q "$IMG" "$W/restored.raw" >/dev/null 2>&1 || die_setup "imago restore"
IMG_SUM=$(sha256sum <"$IMG")
"$IMAGO" verify "$IMG" >"$W/verify0" 2>&1 || die_setup "verify"
DIGEST0=$(grep -o 'digest [0-9a-f]*' "$W/verify0")

MNT=$W/mnt
mkdir -p "$MNT" "$W/m"

# imago_mount ARGS...: mount (daemon), unmount at exit.
imago_mount() {
	run 0 "$IMAGO" mount "$@" && defer umount -l "${@: -1}"
}

# same_tree A B: the same files with the same bytes (lost+found aside).
same_tree() {
	if ! diff -r -x lost+found "$1" "$2" >"$W/diff.out" 2>&1; then
		err "trees differ: $(head -3 "$W/diff.out")"
		return 1
	fi
}

# ---------------------------------------------------------------- read-only

begin files_and_sizes
imago_mount "$IMG" "$MNT"
names=$(cd "$MNT" && ls | tr '\n' ' ')
[[ $names == "disk p1 p2 p3 " ]] || err "files: '$names'"
[[ $(fsize "$MNT/disk") == $(fsize "$RAW") ]] || err "disk size $(fsize "$MNT/disk")"
[[ $(fsize "$MNT/p1") == "$P1_SIZE" ]] || err "p1 size $(fsize "$MNT/p1")"
[[ $(fsize "$MNT/p2") == "$P2_SIZE" ]] || err "p2 size $(fsize "$MNT/p2")"
[[ $(findmnt -n -o FSTYPE "$MNT") == fuse.imago ]] || err "fstype $(findmnt -n -o FSTYPE "$MNT")"
src=$(findmnt -n -o SOURCE "$MNT")
[[ $src =~ ^imago:([0-9]+):(.*)$ && ${BASH_REMATCH[2]} == "$(realpath "$IMG")" ]] || err "source '$src'"
[[ $(cat "/proc/${BASH_REMATCH[1]:-0}/comm" 2>/dev/null) == imago ]] || err "no server process ${BASH_REMATCH[1]:-}"
finish

begin disk_reads_as_restore
same "$MNT/disk" "$W/restored.raw"
# each partition file is the disk's bytes at the partition's place
same "$MNT/p2" <(tail -c +$((2048 * 512 + P1_SIZE + 1)) "$W/restored.raw" | head -c "$P2_SIZE")
finish

begin ext4_loop_mount_ro
if mount -o loop,ro "$MNT/p1" "$W/m" 2>"$W/err"; then
	same_tree "$TREE" "$W/m"
	umount "$W/m" || err "umount"
else
	err "mount -o loop,ro p1: $(cat "$W/err")"
fi
e2fsck -fn "$MNT/p1" >"$W/fsck.out" 2>&1 || err "e2fsck -fn p1: $(tail -2 "$W/fsck.out")"
finish

begin fat_mtools
rm -rf "$W/fat" && mkdir -p "$W/fat"
if MTOOLS_SKIP_CHECK=1 mcopy -s -n -i "$MNT/p2" ::/ "$W/fat"/ 2>"$W/err"; then
	same_tree "$TREE/doc" "$W/fat/doc"
	same "$TREE/big.bin" "$W/fat/big.bin"
else
	err "mcopy from p2: $(cat "$W/err")"
fi
rm -rf "$W/fat"
finish

begin ntfs_3g
if ntfs-3g -o ro "$MNT/p3" "$W/m" 2>"$W/err"; then
	same_tree "$TREE" "$W/m"
	umount "$W/m" || err "umount ntfs"
else
	err "ntfs-3g -o ro p3: $(cat "$W/err")"
fi
finish

begin concurrent_readers
pids=()
for i in 1 2 3 4; do
	cmp "$MNT/disk" "$W/restored.raw" >"$W/cmp$i" 2>&1 &
	pids+=($!)
done
for i in 1 2 3 4; do
	wait "${pids[i - 1]}" || err "reader $i: $(cat "$W/cmp$i")"
done
# readers at scattered places, with small reads, at once
for i in 1 2 3 4 5 6; do
	off=$((i * 7 * 1024 * 1024 + i * 4096))
	(dd if="$MNT/disk" bs=4k skip=$((off / 4096)) count=700 status=none |
		cmp - <(dd if="$W/restored.raw" bs=4k skip=$((off / 4096)) count=700 status=none)) \
		>"$W/cmp$i" 2>&1 &
	pids[i]=$!
done
for i in 1 2 3 4 5 6; do wait "${pids[i]}" || err "small reader $i: $(cat "$W/cmp$i")"; done
finish

begin read_only_without_overlay
if echo x 2>/dev/null >"$MNT/disk"; then err "writing disk succeeded"; fi
if touch "$MNT/new" 2>/dev/null; then err "creating a file succeeded"; fi
if mount -o loop "$MNT/p1" "$W/m" 2>/dev/null && [[ $(findmnt -n -o OPTIONS "$W/m") == rw,* ]]; then
	err "p1 mounted read-write"
fi
umount "$W/m" 2>/dev/null
finish

begin umount
run 0 "$IMAGO" umount "$MNT"
stderr_empty
findmnt "$MNT" >/dev/null && err "still mounted"
finish

begin mbr_logical_partitions
# primary 1, extended 2 (not shown: a container), logicals 5 and 6
MBR=$W/mbr.raw
head -c $((24 * 1024 * 1024)) /dev/urandom >"$MBR"
printf 'label: dos\nstart=2048, size=8192, type=83\nstart=12288, size=32768, type=5\nstart=14336, size=8192, type=83\nstart=24576, size=16384, type=7\n' |
	sfdisk -q "$MBR" || err "sfdisk"
"$IMAGO" create -q --sector "$MBR" "$W/mbr.imago" || err "create"
imago_mount "$W/mbr.imago" "$MNT"
names=$(cd "$MNT" && ls | tr '\n' ' ')
[[ $names == "disk p1 p5 p6 " ]] || err "files: '$names'"
same "$MNT/disk" "$MBR"
same "$MNT/p5" <(tail -c +$((14336 * 512 + 1)) "$MBR" | head -c $((8192 * 512)))
same "$MNT/p6" <(tail -c +$((24576 * 512 + 1)) "$MBR" | head -c $((16384 * 512)))
run 0 "$IMAGO" umount "$MNT"
finish

begin e01_through_libewf
# the same disk as an E01 (imago convert, written by libewf): the same files, the same bytes
if "$IMAGO" convert -q "$IMG" "$W/disk.E01" 2>"$W/err"; then
	imago_mount "$W/disk.E01" "$MNT"
	names=$(cd "$MNT" && ls | tr '\n' ' ')
	[[ $names == "disk p1 p2 p3 " ]] || err "files: '$names'"
	same "$MNT/disk" "$W/restored.raw"
	if mount -o loop,ro "$MNT/p1" "$W/m" 2>"$W/err"; then
		same_tree "$TREE" "$W/m"
		umount "$W/m"
	else
		err "mount -o loop,ro p1 of the E01: $(cat "$W/err")"
	fi
	run 0 "$IMAGO" umount "$MNT"
	# an overlay of the E01 takes writes, and is not the imago image's
	imago_mount -o "$W/e01.ovl" "$W/disk.E01" "$MNT"
	printf 'E01 overlay' | dd of="$MNT/disk" bs=1 seek=5000000 conv=notrunc,fsync status=none
	run 0 "$IMAGO" umount "$MNT"
	imago_mount -o "$W/e01.ovl" "$W/disk.E01" "$MNT"
	[[ $(dd if="$MNT/disk" bs=1 skip=5000000 count=11 status=none) == 'E01 overlay' ]] || err "E01 overlay write lost"
	run 0 "$IMAGO" umount "$MNT"
	run 5 "$IMAGO" mount -o "$W/e01.ovl" "$IMG" "$MNT"
	stderr_one_line 'another image'
else
	err "imago convert to E01: $(cat "$W/err")"
fi
finish

# ---------------------------------------------------------------- damage

begin damaged_chunk_reads_as_eio
cp "$IMG" "$W/bad.imago"
# the first DATA frame past the first MiB (inside p1): damage its payload
read -r foff _ lo _ sl < <(frames "$W/bad.imago" | awk '$2 != 3 && $3 >= 1048576 && $5 > 4096' | head -1)
if [[ -z ${foff:-} ]]; then
	err "no data frame found"
else
	flip "$W/bad.imago" $((foff + 48 + sl / 2)) 0x40
	imago_mount "$W/bad.imago" "$MNT"
	if dd if="$MNT/disk" of=/dev/null bs=64k skip=$((lo / 65536)) count=1 2>"$W/dd.err"; then
		err "reading the damaged chunk succeeded"
	else
		grep -qi "input/output error" "$W/dd.err" || err "not EIO: $(cat "$W/dd.err")"
	fi
	if cat "$MNT/disk" >/dev/null 2>&1; then err "reading the whole disk succeeded"; fi
	# its neighbours still read right
	same <(dd if="$MNT/disk" bs=1M count=1 status=none) <(head -c 1048576 "$W/restored.raw")
	run 0 "$IMAGO" umount "$MNT"
fi
finish

# ---------------------------------------------------------------- overlay

OVL=$W/disk.ovl
begin overlay_writes_survive_remount
imago_mount -o "$OVL" "$IMG" "$MNT"
if mount -o loop "$MNT/p1" "$W/m" 2>"$W/err"; then
	echo "written through the overlay" >"$W/m/new.txt"
	head -c 1500000 /dev/urandom >"$W/new.bin"
	cp "$W/new.bin" "$W/m/new.bin"
	rm -rf "$W/m/doc/$(ls "$W/m/doc" | head -1)"
	umount "$W/m" || err "umount p1"
else
	err "mount -o loop p1 (rw): $(cat "$W/err")"
fi
run 0 "$IMAGO" umount "$MNT"
[[ -s $OVL ]] || err "no overlay file"
# umount waited for the server: the overlay is closed (its lock free) when it returns
flock -n "$OVL" true || err "overlay still locked right after imago umount"
imago_mount -o "$OVL" "$IMG" "$MNT"
e2fsck -fn "$MNT/p1" >"$W/fsck.out" 2>&1 || err "e2fsck -fn p1 with overlay: $(tail -2 "$W/fsck.out")"
if mount -o loop,ro "$MNT/p1" "$W/m" 2>"$W/err"; then
	[[ $(cat "$W/m/new.txt" 2>/dev/null) == "written through the overlay" ]] || err "new.txt lost"
	same "$W/new.bin" "$W/m/new.bin"
	[[ $(ls "$W/m/doc" | wc -l) -eq $(($(ls "$TREE/doc" | wc -l) - 1)) ]] || err "deletion lost"
	umount "$W/m"
else
	err "mount -o loop,ro p1 with overlay: $(cat "$W/err")"
fi
run 0 "$IMAGO" umount "$MNT"
finish

begin overlay_leaves_image_untouched
[[ $(sha256sum <"$IMG") == "$IMG_SUM" ]] || err "the image file changed"
run 0 "$IMAGO" verify "$IMG"
[[ $(grep -o 'digest [0-9a-f]*' "$W/stdout") == "$DIGEST0" ]] || err "digest changed"
imago_mount "$IMG" "$MNT"
same "$MNT/disk" "$W/restored.raw"
run 0 "$IMAGO" umount "$MNT"
finish

begin overlay_of_another_image_refused
cp "$RAW" "$W/other.raw"
printf 'other' | dd of="$W/other.raw" bs=1 seek=$((100 * 1024 * 1024 + 7)) conv=notrunc status=none
"$IMAGO" create -q --sector "$W/other.raw" "$W/other.imago" || err "create other"
cp "$OVL" "$W/ovl.copy"
run 5 "$IMAGO" mount -o "$OVL" "$W/other.imago" "$MNT"
stderr_one_line 'another image'
findmnt "$MNT" >/dev/null && err "mounted anyway" && umount -l "$MNT"
unchanged "$OVL" "$W/ovl.copy"
# not an overlay at all
run 3 "$IMAGO" mount -o "$RAW" "$IMG" "$MNT"
stderr_one_line 'not an imago overlay'
finish

begin overlay_in_use_refused
imago_mount -o "$OVL" "$IMG" "$MNT"
mkdir -p "$W/mnt2"
run 5 "$IMAGO" mount -o "$OVL" "$IMG" "$W/mnt2"
stderr_one_line 'in use'
run 0 "$IMAGO" umount "$MNT"
finish

# record BLOCK: file offsets of the records of BLOCK in the overlay (4 KiB blocks:
# records of 64 + 4096 bytes after a 4096-byte header), newest first.
records_of() {
	local ovl=$1 block=$2 n off
	n=$((($(fsize "$ovl") - 4096) / 4160))
	for ((k = 0; k < n; k++)); do
		off=$((4096 + k * 4160))
		[[ $(u64 "$ovl" $((off + 16))) == "$block" ]] && echo "$(u64 "$ovl" $((off + 24))) $off"
	done | sort -rn | awk '{print $2}'
}

begin overlay_never_serves_a_torn_record
OV2=$W/torn.ovl
imago_mount -o "$OV2" "$IMG" "$MNT"
# block 5000 (device byte 20480000): v1, then v2
printf 'version-1' | dd of="$MNT/disk" bs=1 seek=20480000 conv=notrunc status=none
printf 'version-2' | dd of="$MNT/disk" bs=1 seek=20480000 conv=notrunc,fsync status=none
run 0 "$IMAGO" umount "$MNT"
mapfile -t recs < <(records_of "$OV2" 5000)
if ((${#recs[@]} != 2)); then
	err "want 2 records of block 5000, found ${#recs[@]}"
else
	# tear the newest record (as a write cut short would): the older one is served
	flip "$OV2" $((recs[0] + 64 + 100)) 0x01
	# and a record cut short at the end of the file
	head -c 1000 /dev/urandom >>"$OV2"
	imago_mount -o "$OV2" "$IMG" "$MNT"
	got=$(dd if="$MNT/disk" bs=1 skip=20480000 count=9 status=none)
	[[ $got == version-1 ]] || err "read '$got', want version-1"
	# a new write lands on the record grid and reads back
	printf 'version-3' | dd of="$MNT/disk" bs=1 seek=20480000 conv=notrunc,fsync status=none
	run 0 "$IMAGO" umount "$MNT"
	(( ($(fsize "$OV2") - 4096) % 4160 == 0 )) || err "torn tail not cut: size $(fsize "$OV2")"
	imago_mount -o "$OV2" "$IMG" "$MNT"
	got=$(dd if="$MNT/disk" bs=1 skip=20480000 count=9 status=none)
	[[ $got == version-3 ]] || err "read '$got', want version-3"
	run 0 "$IMAGO" umount "$MNT"
fi
finish

begin overlay_survives_kill
OV3=$W/kill.ovl
"$IMAGO" mount -f -o "$OV3" "$IMG" "$MNT" 2>"$W/fg.err" &
fgpid=$!
for i in $(seq 50); do findmnt "$MNT" >/dev/null && break; sleep 0.1; done
if ! findmnt "$MNT" >/dev/null; then
	err "foreground mount did not appear: $(cat "$W/fg.err")"
	kill "$fgpid" 2>/dev/null
else
	head -c $((2 * 1024 * 1024)) /dev/urandom >"$W/k.bin"
	dd if="$W/k.bin" of="$MNT/disk" bs=64k seek=$((50 * 16)) conv=notrunc,fsync status=none ||
		err "write"
	kill -9 "$fgpid"
	wait "$fgpid" 2>/dev/null
	# a mount whose server died: imago umount still takes it away
	run 0 "$IMAGO" umount "$MNT"
	findmnt "$MNT" >/dev/null && err "dead mount left" && umount -l "$MNT"
	imago_mount -o "$OV3" "$IMG" "$MNT"
	same <(dd if="$MNT/disk" bs=64k skip=$((50 * 16)) count=32 status=none) "$W/k.bin"
	same <(head -c $((50 * 1024 * 1024)) "$MNT/disk") <(head -c $((50 * 1024 * 1024)) "$W/restored.raw")
	run 0 "$IMAGO" umount "$MNT"
fi
finish

begin foreground_mount_ends_on_umount
"$IMAGO" mount --foreground "$IMG" "$MNT" 2>"$W/fg.err" &
fgpid=$!
for i in $(seq 50); do findmnt "$MNT" >/dev/null && break; sleep 0.1; done
run 0 "$IMAGO" umount "$MNT"
for i in $(seq 50); do kill -0 "$fgpid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$fgpid" 2>/dev/null; then
	err "still running after umount"
	kill "$fgpid"
else
	wait "$fgpid" || err "foreground mount exited $?: $(cat "$W/fg.err")"
fi
finish

# ---------------------------------------------------------------- errors

begin error_not_a_directory
run 2 "$IMAGO" mount "$IMG" "$RAW"
stderr_one_line 'not a directory'
run 2 "$IMAGO" mount "$IMG" "$W/nonexistent"
stderr_one_line 'no such directory'
finish

begin error_dir_busy
mkdir -p "$W/full" && touch "$W/full/x"
run 5 "$IMAGO" mount "$IMG" "$W/full"
stderr_one_line 'not empty'
imago_mount "$IMG" "$MNT"
run 5 "$IMAGO" mount "$IMG" "$MNT"
stderr_one_line 'already a mount point'
# busy: a partition of it is loop-mounted
mount -o loop,ro "$MNT/p1" "$W/m" || err "loop mount"
run 5 "$IMAGO" umount "$MNT"
stderr_one_line 'busy'
umount "$W/m"
run 0 "$IMAGO" umount "$MNT"
finish

begin error_not_an_image
run 3 "$IMAGO" mount "$RAW" "$MNT"
stderr_one_line 'not an image'
run 1 "$IMAGO" mount "$W/missing.imago" "$MNT"
stderr_one_line 'missing.imago'
findmnt "$MNT" >/dev/null && err "mounted" && umount -l "$MNT"
finish

begin error_umount_not_imago
run 5 "$IMAGO" umount "$W/m"
stderr_one_line 'not an imago mount'
finish

begin error_fuse_missing
# a private mount namespace where /dev has no fuse node
run 1 unshare -m sh -c 'mount -t tmpfs none /dev && exec "$0" mount "$1" "$2"' "$IMAGO" "$IMG" "$MNT"
stderr_one_line 'FUSE is not available'
finish

done_testing
