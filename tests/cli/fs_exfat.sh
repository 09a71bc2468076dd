#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The exFAT allocation reader (lib/fs/exfat.c), proved with outside tools:
#   - real volumes from mkfs.exfat (exfatprogs): default clusters, 512-byte and 128 KiB
#     clusters, 4096-byte sectors (a 4Kn loop device), --pack-bitmap; filled through an
#     exFAT mount (the kernel driver where the kernel has one, else exfat-fuse, both on a
#     loop device) with thousands of real files, fragmented (every other file deleted,
#     then more written), big files;
#   - facts agree with dump.exfat (free clusters, exactly), exfatlabel and blkid;
#   - the copy whose FREE bytes fsmap overwrote with 0xA5 passes fsck.exfat -n and mounts
#     read-only with a file tree identical to the source's, checksums and all;
#   - VolumeDirty is reported (a copy taken while mounted; the bit set by hand);
#   - damaged and truncated volumes fail cleanly; a volume inside a partitioned disk reads
#     the same at its offset.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"
# shellcheck source=fsfill.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/fsfill.bash"

need_root
need mkfs.exfat fsck.exfat dump.exfat exfatlabel blkid sfdisk losetup mountpoint \
	sha256sum diff find xargs python3 truncate dd cmp
FSMAP=${IMAGO_BUILD:-}/tests/fsmap
[[ -x $FSMAP ]] || die_setup "no fsmap test tool at $FSMAP (IMAGO_BUILD)"

MiB=$((1024 * 1024))

# The kernel's exFAT driver if there is one, else exfat-fuse (scripts/deps.sh).
if grep -qw exfat /proc/filesystems || modprobe exfat >/dev/null 2>&1; then
	EXFAT_MOUNT=kernel
else
	need mount.exfat-fuse
	EXFAT_MOUNT=fuse
fi

# ---------------------------------------------------------------- helpers

declare -A EXFAT_LOOP=()

# emount IMG DIR [ro] [LOSETUP-OPTIONS...]: mount IMG through a loop device.
emount() {
	local img=$1 dir=$2 ro=${3:-} loop
	shift 3 2>/dev/null || shift $#
	mkdir -p -- "$dir"
	loop=$(losetup -f --show ${ro:+-r} "$@" -- "$img") || return 1
	defer loop_release "$loop" "$img"
	defer umount -l "$dir"
	EXFAT_LOOP[$dir]=$loop
	if [[ $EXFAT_MOUNT == kernel ]]; then
		mount -t exfat ${ro:+-o ro} "$loop" "$dir"
	else
		mount.exfat-fuse ${ro:+-o ro} "$loop" "$dir" >/dev/null 2>&1
	fi
}
eumount() {
	umount -- "$1" || umount -l -- "$1"
	losetup -d "${EXFAT_LOOP[$1]}"
	unset "EXFAT_LOOP[$1]"
}

fact() { sed -n "s/^$1 //p" "$W/stdout" | head -n 1; }
want_fact() {
	local got
	got=$(fact "$1")
	[[ $got == "$2" ]] || err "fsmap $1 is '$got', want '$2'"
}

# dump_val IMG KEY: a number from dump.exfat.
dump_val() { dump.exfat "$1" 2>/dev/null | sed -n "s/^$2:[[:space:]]*\([0-9]*\).*/\1/p" | head -n 1; }

mapfile -t SMALL < <(find /usr/share/doc /usr/lib/python3* -type f -size -96k 2>/dev/null |
	LC_ALL=C sort)
((${#SMALL[@]} >= 4000)) || die_setup "only ${#SMALL[@]} small files under /usr/share/doc and /usr/lib/python3*"
BIG1=/usr/lib/x86_64-linux-gnu/libcrypto.so.3
BIG2=$(readlink -f /usr/lib/x86_64-linux-gnu/libicuuc.so.72 2>/dev/null || true)
[[ -f $BIG1 && -f $BIG2 ]] || die_setup "no large files to copy ($BIG1, $BIG2)"

# fill DIR N: N small files and a big one; delete every other small file; N more small
# files and a big one into the holes (fragmented); 200 tiny files.
fill() {
	local d=$1 n=$2 i
	mkdir -p -- "$d/a" "$d/b" "$d/tiny"
	printf '%s\0' "${SMALL[@]:0:n}" | xargs -0 cp --parents -t "$d/a" -- || return 1
	cp -- "$BIG1" "$d/big1" || return 1
	find "$d/a" -type f -print0 | LC_ALL=C sort -z | awk 'BEGIN{RS="\0"; ORS="\0"} NR % 2' |
		xargs -0 rm -f --
	printf '%s\0' "${SMALL[@]:n:n}" | xargs -0 cp --parents -t "$d/b" -- || return 1
	cp -- "$BIG2" "$d/big2" || return 1
	for ((i = 0; i < 200; i++)); do echo "tiny $i" >"$d/tiny/$i"; done
	# Stale data: a file of FS_MARKER (fsfill.bash), deleted; the scrub must wipe it.
	fs_write "$d/stale.bin" $((512 * 1024)) marker 0
	sync -f -- "$d"
	rm -f -- "$d/stale.bin"
}

tree_sums() { (cd -- "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum); }

# ---------------------------------------------------------------- variants

# variant NAME SIZE_MIB N SECTOR MKFS-OPTIONS...: make (on a loop device with SECTOR-byte
# sectors), fill, then check facts and the scrub.
variant() {
	local name=$1 size=$2 n=$3 sector=$4
	shift 4
	local img=$W/$name.img out=$W/$name.scrub cs free_cl tot_cl loop
	begin "$name/make"
	truncate -s $((size * MiB)) "$img"
	loop=$(losetup -f --show -b "$sector" -- "$img") || err "losetup -b $sector failed"
	if ok; then
		mkfs.exfat -L "Té $name" "$@" "$loop" >"$W/mkfs.log" 2>&1 ||
			err "mkfs.exfat $* failed: $(tail -n 3 "$W/mkfs.log")"
		losetup -d "$loop"
	fi
	if ok && emount "$img" "$W/mnt" "" -b "$sector"; then
		fill "$W/mnt" "$n" || err "filling $name through the $EXFAT_MOUNT exFAT driver failed"
		eumount "$W/mnt"
	else
		err "cannot mount $name ($EXFAT_MOUNT driver)"
	fi
	finish
	ok || return

	begin "$name/facts"
	cs=$(dump_val "$img" 'Cluster size')
	free_cl=$(dump_val "$img" 'Free Clusters')
	tot_cl=$(dump_val "$img" 'Total Clusters')
	if [[ -z $cs || -z $free_cl || -z $tot_cl ]]; then
		err "dump.exfat did not report the cluster counts"
	elif run 0 "$FSMAP" "$img"; then
		want_fact driver exfat
		want_fact type exfat
		want_fact label "$(exfatlabel "$img" 2>/dev/null | sed -n 's/^label: //p')"
		want_fact uuid "$(blkid -o value -s UUID "$img")"
		want_fact block_size "$cs"
		want_fact fs_size "$(fsize "$img")"
		want_fact flags 0
		want_fact free_bytes $((free_cl * cs))
		want_fact used_bytes $(((tot_cl - free_cl) * cs))
		((free_cl * cs > 8 * MiB)) || err "test volume too full to prove much ($free_cl free clusters)"
	fi
	finish

	begin "$name/scrub"
	if run 0 "$FSMAP" --scrub "$out" "$img"; then
		cmp -s -- "$img" "$out" && err "the scrub changed nothing"
		has_marker "$img" || err "no stale data in the source volume to prove the scrub with"
		has_marker "$out" && err "stale data of a deleted file survived the scrub"
		run 0 fsck.exfat -n "$out" || err "fsck.exfat -n rejects the scrubbed copy"
		grep -q ': clean' "$W/stdout" || err "fsck.exfat -n does not say clean: $(tail -c 200 "$W/stdout")"
		[[ $(dump_val "$out" 'Free Clusters') == "$free_cl" ]] ||
			err "free clusters changed in the scrubbed copy"
		if emount "$img" "$W/m1" ro -b "$sector" && emount "$out" "$W/m2" ro -b "$sector"; then
			local files
			files=$(find "$W/m1" -type f | wc -l)
			((files > n)) || err "only $files files in the source volume"
			diff -r -- "$W/m1" "$W/m2" >"$W/diff.log" 2>&1 ||
				err "file trees differ: $(head -c 300 "$W/diff.log")"
			tree_sums "$W/m1" >"$W/sums1"
			tree_sums "$W/m2" >"$W/sums2"
			cmp -s "$W/sums1" "$W/sums2" || err "file checksums differ"
			eumount "$W/m2"
			eumount "$W/m1"
		else
			err "cannot mount the source and the scrubbed copy read-only"
		fi
	fi
	finish
	rm -f -- "$out"
}

variant default 128 1200 512
variant c512 64 1500 512 -c 512
variant c128k 256 500 512 -c 128K
variant s4096 96 1000 4096
variant packbm 96 1000 512 --pack-bitmap
rm -f -- "$W/c512.img" "$W/c128k.img" "$W/s4096.img" "$W/packbm.img"

# ---------------------------------------------------------------- at an offset

begin offset
base=$W/default.img
if [[ -f $base ]]; then
	disk=$W/disk.img
	psize=$(fsize "$base")
	truncate -s $((psize + 2 * MiB)) "$disk"
	echo "start=2048, size=$((psize / 512)), type=7" | sfdisk -q "$disk" >/dev/null 2>&1 ||
		err "sfdisk failed"
	start=$(sfdisk -J "$disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][0]["start"])')
	dd if="$base" of="$disk" bs=1M seek=$((start * 512 / MiB)) conv=notrunc status=none
	cp -- "$disk" "$W/disk.orig"
	run 0 "$FSMAP" "$base" && cp -- "$W/stdout" "$W/alone.out"
	if run 0 "$FSMAP" --offset $((start * 512)) --size "$psize" --scrub "$W/disk.scrub" "$disk"; then
		diff -- "$W/alone.out" "$W/stdout" >/dev/null ||
			err "facts at an offset differ: $(diff -- "$W/alone.out" "$W/stdout" | head -c 300)"
		run 0 "$FSMAP" --scrub "$W/alone.scrub" "$base"
		cmp -s <(tail -c +$((start * 512 + 1)) "$W/disk.scrub" | head -c "$psize") "$W/alone.scrub" ||
			err "the partition's scrub differs from the volume's"
		cmp -s -n $((start * 512)) "$W/disk.scrub" "$W/disk.orig" || err "bytes before the partition changed"
		cmp -s <(tail -c +$((start * 512 + psize + 1)) "$W/disk.scrub") \
			<(tail -c +$((start * 512 + psize + 1)) "$W/disk.orig") || err "bytes after the partition changed"
	fi
	run 1 "$FSMAP" --offset $((start * 512)) --size $((psize - MiB)) "$disk"
	grep -qi truncated "$W/stderr" || err "short region: message does not say truncated: $(head -c 200 "$W/stderr")"
	rm -f -- "$disk" "$W/disk.orig" "$W/disk.scrub" "$W/alone.scrub"
else
	err "no default volume"
fi
finish

# ---------------------------------------------------------------- damage

damaged() {
	begin "damaged/$1"
	run "$2" "$FSMAP" "$W/dmg.img"
	if [[ -n $3 ]] && ! grep -Eqi -- "$3" "$W/stderr"; then
		err "message does not match /$3/: $(head -c 300 "$W/stderr")"
	fi
	finish
}

sm=$W/small.img
truncate -s 64M "$sm"
mkfs.exfat -L small "$sm" >/dev/null 2>&1 || die_setup "mkfs.exfat failed"
fat=$(($(u32 "$sm" 80) * 512))
heap=$(($(u32 "$sm" 88) * 512))
cs=$((512 << $(u8 "$sm" 109)))
root=$(u32 "$sm" 96)
bm_cl=$(dump.exfat "$sm" 2>/dev/null | sed -n 's/^Bitmap start cluster:[[:space:]]*//p')
[[ -n $bm_cl ]] || die_setup "dump.exfat shows no bitmap cluster"

cp -- "$sm" "$W/dmg.img"; flip "$W/dmg.img" 3 0x20
damaged signature 3 ''
cp -- "$sm" "$W/dmg.img"; poke_hex "$W/dmg.img" 20 01
damaged must-be-zero 3 ''
cp -- "$sm" "$W/dmg.img"; poke_hex "$W/dmg.img" 108 0d
damaged sector-shift 3 ''
cp -- "$sm" "$W/dmg.img"; flip "$W/dmg.img" 300 0x01
damaged boot-code-checksum 1 'checksum'
cp -- "$sm" "$W/dmg.img"; flip "$W/dmg.img" $((11 * 512 + 4)) 0x01
damaged checksum-sector 1 'checksum'
cp -- "$sm" "$W/dmg.img"; truncate -s $((32 * MiB)) "$W/dmg.img"
damaged truncated 1 'truncated'
# The root directory's bitmap entry turned into an unused entry.
cp -- "$sm" "$W/dmg.img"
rootdir=$((heap + (root - 2) * cs))
python3 - "$W/dmg.img" "$rootdir" <<'EOF'
import sys
f = open(sys.argv[1], "r+b"); off = int(sys.argv[2])
f.seek(off); d = bytearray(f.read(4096))
for e in range(0, len(d), 32):
    if d[e] == 0x81:
        d[e] = 0x01
        break
f.seek(off); f.write(d)
EOF
damaged no-bitmap-entry 1 'no allocation bitmap'
# The bitmap's FAT entry cleared: its chain is broken.
cp -- "$sm" "$W/dmg.img"; poke_hex "$W/dmg.img" $((fat + bm_cl * 4)) 00000000
damaged bitmap-fat-chain 1 'FAT entry'
# The bitmap wiped: the root directory's cluster is no longer marked in use.
cp -- "$sm" "$W/dmg.img"
dd if=/dev/zero of="$W/dmg.img" bs=1 seek=$((heap + (bm_cl - 2) * cs)) count=64 conv=notrunc status=none
damaged bitmap-wiped 1 'bitmap is damaged'
# Root directory cluster chain looping on itself, and the directory full of entries.
cp -- "$sm" "$W/dmg.img"
poke_hex "$W/dmg.img" $((fat + root * 4)) "$(printf '%08x' "$root" | fold -w2 | tac | tr -d '\n')"
python3 - "$W/dmg.img" "$rootdir" "$cs" <<'EOF'
import sys
f = open(sys.argv[1], "r+b"); off = int(sys.argv[2]); cs = int(sys.argv[3])
f.seek(off); d = bytearray(f.read(cs))
for e in range(0, cs, 32):
    d[e] = (d[e] & 0x7F) or 0x05   # every entry unused, none the end of directory
f.seek(off); f.write(d)
EOF
damaged root-loop 1 'a loop'
rm -f -- "$W/dmg.img"

# ---------------------------------------------------------------- dirty

begin dirty/while-mounted
cp -- "$sm" "$W/d.img"
if emount "$W/d.img" "$W/mnt"; then
	cp -r /usr/share/doc/bash "$W/mnt/" 2>/dev/null
	sync -f -- "$W/mnt"
	cp -- "$W/d.img" "$W/snap.img"   # what a power cut would leave
	eumount "$W/mnt"
	(($(u16 "$W/snap.img" 106) & 2)) || err "the $EXFAT_MOUNT driver did not set VolumeDirty while mounted"
	run 0 "$FSMAP" "$W/snap.img" && { want_fact flags 1; [[ $(fact state) == *dirty* ]] || err "state '$(fact state)'"; }
	(($(u16 "$W/d.img" 106) & 2)) && err "VolumeDirty still set after unmounting"
	run 0 "$FSMAP" "$W/d.img" && want_fact flags 0
else
	err "cannot mount"
fi
finish

begin dirty/bit-set
cp -- "$sm" "$W/d.img"
# VolumeFlags is outside the boot checksum: setting the bit needs no checksum update.
poke_u16 "$W/d.img" 106 2
run 0 fsck.exfat -n "$W/d.img" || err "fsck.exfat rejects the volume with VolumeDirty set"
run 0 "$FSMAP" "$W/d.img" && want_fact flags 1
finish
rm -f -- "$W/d.img" "$W/snap.img"

done_testing
