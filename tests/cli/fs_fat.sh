#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The FAT12/16/32 allocation reader (lib/fs/fat.c), proved with outside tools:
#   - FAT12, FAT16, FAT32 (512-byte sectors) and FAT32 with 4096-byte sectors, made by
#     mkfs.vfat and filled with real files by mtools (no vfat module needed), some
#     deleted;
#   - facts: type, label and serial as blkid shows them, cluster size and free space as
#     fsck.fat -v counts them (free bytes must match exactly);
#   - scrub (every FREE byte overwritten): fsck.fat -n is clean, the mounted tree is
#     identical, and the data of a deleted file (free space) is gone;
#   - a bad-cluster mark stays USED; the root-directory label beats the boot sector's;
#   - dirty bits (the boot-sector bit Linux sets while mounted read-write, the FAT[1]
#     clean-shutdown bit Windows uses) are reported as fsck.fat reports them;
#   - damaged boot sectors and truncated images fail cleanly;
#   - the same filesystem inside a partitioned disk, read at its offset.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"
# shellcheck source=fsfill.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/fsfill.bash"

need_root
need mkfs.vfat fsck.fat blkid mcopy mmd mdel mdir sfdisk truncate python3 tar diff grep
# mtools refuses images whose geometry (sectors per track, heads) looks odd.
export MTOOLS_SKIP_CHECK=1
FSMAP=${IMAGO_BUILD:-}/tests/fsmap
[[ -x $FSMAP ]] || die_setup "no fsmap test tool at $FSMAP (IMAGO_BUILD)"

MiB=$((1024 * 1024))

# fs_fill operations (fsfill.bash) on the image $FS_IMG, through mtools (fs_fill calls
# them by name, which shellcheck cannot see).
FS_IMG=
# shellcheck disable=SC2317
mt_put() {
	mmd -i "$FS_IMG" "::/$2" </dev/null >/dev/null 2>&1
	(cd -- "$1" && mcopy -s -D o -i "$FS_IMG" ./* "::/$2/" </dev/null >/dev/null 2>&1)
	return 0
}
# shellcheck disable=SC2317
mt_list() { mdir -/ -b -i "$FS_IMG" "::/$1" 2>/dev/null | grep -v '/$' | sed 's|^::/||' | LC_ALL=C sort; }
# shellcheck disable=SC2317
mt_rm() { sed 's|^|::/|' "$1" | tr '\n' '\0' | xargs -0 -r mdel -i "$FS_IMG" >/dev/null 2>&1; return 0; }
# shellcheck disable=SC2317
mt_sync() { :; }

# make_fat NAME SIZE BUDGET MKFS-ARGS...: $W/NAME.img, made by mkfs.vfat and filled with
# about BUDGET bytes.
make_fat() {
	local name=$1 size=$2 budget=$3
	FS_IMG=$W/$1.img
	shift 3
	truncate -s "$size" "$FS_IMG"
	mkfs.vfat "$@" "$FS_IMG" >"$W/mkfs.log" 2>&1 || die_setup "mkfs.vfat $* failed: $(cat "$W/mkfs.log")"
	fs_fill mt "$budget"
	fsck.fat -n "$FS_IMG" >"$W/fsck.log" 2>&1 || die_setup "the filled $name does not pass fsck.fat: $(tail -n 5 "$W/fsck.log")"
}

# fat_tree IMG DIR: extract every file of IMG into DIR (mtools).
fat_tree() {
	rm -rf -- "$2"
	mkdir -p -- "$2"
	mcopy -s -n -i "$1" ::/ "$2/" </dev/null >"$W/mcopy.log" 2>&1 || err "mcopy out of ${1##*/} failed: $(head -c 300 "$W/mcopy.log")"
}

# fsck_counts IMG: sets FK_CLUSTER (bytes per cluster), FK_USED, FK_TOTAL (clusters) from
# fsck.fat -n -v.
fsck_counts() {
	local out
	out=$(fsck.fat -n -v "$1" 2>&1)
	FK_CLUSTER=$(sed -nE 's/^ *([0-9]+) bytes per cluster$/\1/p' <<<"$out")
	FK_USED=$(sed -nE 's/.* files, ([0-9]+)\/([0-9]+) clusters$/\1/p' <<<"$out")
	FK_TOTAL=$(sed -nE 's/.* files, ([0-9]+)\/([0-9]+) clusters$/\2/p' <<<"$out")
	[[ -n $FK_CLUSTER && -n $FK_USED && -n $FK_TOTAL ]] || err "cannot read fsck.fat -v: $(head -c 300 <<<"$out")"
}

# check_facts NAME TYPE [FSMAP-ARGS...]: fsmap on NAME.img agrees with blkid and fsck.fat.
check_facts() {
	local name=$1 type=$2 img=$W/$1.img
	shift 2
	begin "${name}_facts"
	run 0 "$FSMAP" "$@" "$img"
	fsmap_expect driver fat
	fsmap_expect type "$type"
	fsmap_expect fs_size "$(fsize "$img")"
	fsmap_expect label "$(blkid -p -o value -s LABEL "$img")"
	fsmap_expect uuid "$(blkid -p -o value -s UUID "$img")"
	fsmap_expect flags 0
	fsck_counts "$img"
	if ok; then
		fsmap_expect block_size "$FK_CLUSTER"
		# FAT has no metadata outside the clusters the FAT lists: FREE is exactly the
		# clusters fsck.fat counts as unused.
		fsmap_expect free_bytes $(((FK_TOTAL - FK_USED) * FK_CLUSTER))
		fsmap_expect used_bytes $(($(fsize "$img") - (FK_TOTAL - FK_USED) * FK_CLUSTER))
		((FK_USED > 100)) || err "only $FK_USED clusters used: the fill did not work"
		(($(fsmap_get runs) > 20)) || err "only $(fsmap_get runs) runs: free space is not fragmented"
	fi
	finish
}

# check_scrub NAME: the scrubbed copy passes fsck.fat -n and holds the same tree.
check_scrub() {
	local name=$1 img=$W/$1.img out=$W/$1.scrub
	begin "${name}_scrub"
	run 0 "$FSMAP" --scrub "$out" "$img"
	cmp -s -- "$img" "$out" && err "the scrub changed nothing"
	has_marker "$img" || err "the deleted file's data is not in the image (test setup)"
	has_marker "$out" && err "the deleted file's data survived the scrub: free clusters were kept"
	run 0 fsck.fat -n "$out"
	fs_scratch
	fat_tree "$img" "$FS_SCRATCH/tree"
	fat_tree "$out" "$FS_SCRATCH/tree.scrub"
	tree_same "$FS_SCRATCH/tree" "$FS_SCRATCH/tree.scrub"
	rm -rf -- "$out" "$FS_SCRATCH/tree" "$FS_SCRATCH/tree.scrub"
	finish
}

# ---------------------------------------------------------------- the three types

make_fat f12 $((16 * MiB)) $((7 * MiB)) -F 12 -n TWELVE
check_facts f12 fat12
check_scrub f12

make_fat f16 $((64 * MiB)) $((36 * MiB)) -F 16
check_facts f16 fat16
check_scrub f16

make_fat f32 $((96 * MiB)) $((40 * MiB)) -F 32 -s 1 -n THIRTYTWO
check_facts f32 fat32
check_scrub f32

# FAT32 with 4096-byte logical sectors (mkfs.vfat -S 4096), big enough for 65525 clusters
# (mtools, like Windows, takes the type from the cluster count).
make_fat f32k $((272 * MiB)) $((24 * MiB)) -F 32 -S 4096 -n BIGSECTOR
check_facts f32k fat32
check_scrub f32k

# ---------------------------------------------------------------- labels

# The root directory's volume-label entry wins over the boot sector's label (blkid's rule).
begin label_root_dir_wins
cp --sparse=always -- "$W/f12.img" "$W/lbl.img"
poke_hex "$W/lbl.img" 43 "$(printf 'BOOTSECTOR ' | xxd -p)"
run 0 "$FSMAP" "$W/lbl.img"
fsmap_expect label TWELVE
[[ $(blkid -p -o value -s LABEL "$W/lbl.img") == TWELVE ]] || err "blkid disagrees: $(blkid -p "$W/lbl.img")"
rm -f -- "$W/lbl.img"
finish

# ---------------------------------------------------------------- bad clusters

# A free cluster marked bad (in every FAT) stays USED, as fsck.fat counts it.
begin bad_cluster_stays_used
cp --sparse=always -- "$W/f16.img" "$W/bad.img"
run 0 "$FSMAP" "$W/bad.img"
free0=$(fsmap_get free_bytes)
# The last cluster is free (the filesystem is not full): find it from the FAT geometry.
rsvd=$(u16 "$W/bad.img" 14)
fatsz=$(u16 "$W/bad.img" 22)
fsck_counts "$W/bad.img"
last=$((FK_TOTAL + 1))
for fat in 0 1; do
	at=$(((rsvd + fat * fatsz) * 512 + last * 2))
	[[ $(u16 "$W/bad.img" "$at") == 0 ]] || err "cluster $last is not free (test setup)"
	poke_u16 "$W/bad.img" "$at" $((0xFFF7))
done
run 0 "$FSMAP" "$W/bad.img"
fsmap_expect free_bytes $((free0 - FK_CLUSTER))
fsck_counts "$W/bad.img"
fsmap_expect free_bytes $(((FK_TOTAL - FK_USED) * FK_CLUSTER))
rm -f -- "$W/bad.img"
finish

# ---------------------------------------------------------------- dirty states

# sees_dirty IMG: fsck.fat -n reports the dirty bit (exit 1: it found something to fix).
sees_dirty() {
	local out
	out=$(fsck.fat -n "$1" 2>&1)
	grep -q 'Dirty bit is set' <<<"$out" || err "fsck.fat does not see the dirty bit (test setup): $(head -c 200 <<<"$out")"
}

# The boot-sector dirty bit (byte 37 on FAT12/16, 65 on FAT32) that Linux sets while the
# filesystem is mounted read-write (this kernel may have no vfat module, so it is set by
# hand; fsck.fat must see it too).
for t in f12 f32; do
	begin "dirty_boot_sector_$t"
	cp --sparse=always -- "$W/$t.img" "$W/dirty.img"
	at=37
	[[ $t == f32 ]] && at=65
	poke_hex "$W/dirty.img" "$at" 01
	sees_dirty "$W/dirty.img"
	run 0 "$FSMAP" "$W/dirty.img"
	fsmap_expect flags 1
	[[ $(fsmap_get state) == *dirty* ]] || err "state does not say dirty: $(fsmap_get state)"
	rm -f -- "$W/dirty.img"
	finish
done

# FAT16: the clean-shutdown bit (15) of FAT[1] cleared, as Windows leaves it.
begin dirty_fat16_fat1
cp --sparse=always -- "$W/f16.img" "$W/dirty.img"
rsvd=$(u16 "$W/dirty.img" 14)
poke_u16 "$W/dirty.img" $((rsvd * 512 + 2)) $((0x7FFF))
sees_dirty "$W/dirty.img"
run 0 "$FSMAP" "$W/dirty.img"
fsmap_expect flags 1
rm -f -- "$W/dirty.img"
finish

# FAT32: the clean-shutdown bit (27) of FAT[1] cleared.
begin dirty_fat32_fat1
cp --sparse=always -- "$W/f32.img" "$W/dirty.img"
rsvd=$(u16 "$W/dirty.img" 14)
poke_hex "$W/dirty.img" $((rsvd * 512 + 4)) ffffff07
sees_dirty "$W/dirty.img"
run 0 "$FSMAP" "$W/dirty.img"
fsmap_expect flags 1
rm -f -- "$W/dirty.img"
finish

# ---------------------------------------------------------------- damage

# damaged NAME SRC WANT POKE...: a copy of SRC damaged by `poke_hex FILE OFF HEX` pairs
# (or truncated: "truncate SIZE") gives fsmap exit WANT (1: recognised and refused, 3:
# not recognised), never a crash.
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
		fsmap_expect driver fat
		[[ $(wc -l <"$W/stderr") == 1 ]] || err "want one line of error, got: $(cat "$W/stderr")"
	fi
	rm -f -- "$f"
	finish
}
damaged sector_size "$W/f16.img" 3 11 0003              # 768 bytes per sector
damaged sectors_per_cluster "$W/f16.img" 3 13 03
damaged no_fats "$W/f16.img" 3 16 00
damaged no_signature "$W/f16.img" 3 510 0000
damaged no_jump "$W/f16.img" 3 0 000000
damaged fat16_too_many_clusters "$W/f12.img" 3 13 01 19 0000 32 00000010   # 256 Mi sectors, 1 per cluster
damaged truncated "$W/f16.img" 1 truncate $((40 * MiB))
# Total sectors raised as far as the FAT can address (so the boot sector is consistent)
# but past the end of the image.
f16_rsvd=$(u16 "$W/f16.img" 14)
f16_fatsz=$(u16 "$W/f16.img" 22)
f16_spc=$(u8 "$W/f16.img" 13)
f16_data=$((f16_rsvd + 2 * f16_fatsz + $(u16 "$W/f16.img" 17) * 32 / 512))
f16_tot=$((f16_data + (f16_fatsz * 512 / 2 - 2) * f16_spc))
((f16_tot > 64 * MiB / 512)) || die_setup "the FAT16 image has no room to claim more sectors"
damaged total_past_end "$W/f16.img" 1 32 "$(printf '%08x' "$f16_tot" | fold -w2 | tac | tr -d '\n')"
f32_rsvd=$(u16 "$W/f32.img" 14)
f32_root=$(u32 "$W/f32.img" 44)
damaged root_cluster_free "$W/f32.img" 1 $((f32_rsvd * 512 + f32_root * 4)) 00000000
damaged root_cluster_out_of_range "$W/f32.img" 3 44 ffffff0f

# ---------------------------------------------------------------- at an offset

# The FAT12 inside an MBR-partitioned disk, second partition: same facts and free bytes,
# and the scrubbed disk's partition is still a sound filesystem with the same files.
begin at_offset_in_partitioned_disk
disk=$W/disk.img
truncate -s $((32 * MiB)) "$disk"
sfdisk -q "$disk" >/dev/null 2>&1 <<EOF || err "sfdisk failed"
label: dos
start=2048, size=8192, type=83
start=10240, size=$((16 * MiB / 512)), type=1
EOF
off=$((10240 * 512))
dd if="$W/f12.img" of="$disk" bs=1M seek=$((off / MiB)) conv=notrunc,sparse status=none
run 0 "$FSMAP" "$W/f12.img"
want_free=$(fsmap_get free_bytes)
run 0 "$FSMAP" --offset "$off" --size $((16 * MiB)) --scrub "$W/disk.scrub" "$disk"
fsmap_expect driver fat
fsmap_expect type fat12
fsmap_expect free_bytes "$want_free"
fsmap_expect fs_size $((16 * MiB))
dd if="$W/disk.scrub" of="$W/part.img" bs=1M skip=$((off / MiB)) count=16 status=none
cmp -s -n "$off" -- "$W/disk.scrub" "$disk" || err "bytes before the partition changed"
end=$((off + 16 * MiB))
cmp -s -- <(tail -c +$((end + 1)) "$W/disk.scrub") <(tail -c +$((end + 1)) "$disk") || err "bytes after the partition changed"
run 0 fsck.fat -n "$W/part.img"
has_marker "$W/part.img" && err "free space of the partition was not scrubbed"
fs_scratch
fat_tree "$W/f12.img" "$FS_SCRATCH/tree"
fat_tree "$W/part.img" "$FS_SCRATCH/tree.part"
tree_same "$FS_SCRATCH/tree" "$FS_SCRATCH/tree.part"
rm -rf -- "$disk" "$W/disk.scrub" "$W/part.img" "$FS_SCRATCH/tree" "$FS_SCRATCH/tree.part"
finish

done_testing
