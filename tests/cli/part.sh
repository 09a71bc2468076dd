#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The partition-table readers (lib/part/) against real tables made by sfdisk and sgdisk
# in sparse files, through the test tool partmap (tests/tools/partmap.c).
#
# What partmap reports is compared with what other readers say about the same file:
# `sfdisk --json` (libfdisk), `sgdisk -p` (gdisk) and `partx --show` (libblkid, which
# numbers logical partitions as the kernel does); 4Kn disks are made and read on a loop
# device with 4096-byte sectors. Damaged copies are made by zeroing or flipping bytes,
# and sgdisk is asked to confirm the damage is real. Relocated GPTs (partmap --relocate) must pass
# `sgdisk -v`, keep every partition's start, size, GUIDs, name and bytes, and equal what
# `sgdisk -e` makes of the same disk, byte for byte, in the table areas.
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

need_root
need sfdisk sgdisk jq losetup mkfs.vfat mkfs.exfat mkntfs blkid truncate dd cmp xxd od
PARTMAP=${IMAGO_BUILD:-build}/tests/partmap
[[ -x $PARTMAP ]] || die_setup "no $PARTMAP (build the tests first)"

MiB=$((1 << 20))

# pm FILE [ARGS]: run partmap (exit 0 expected); its output is in $W/stdout.
pm() {
	run 0 "$PARTMAP" "$@"
}

# field NAME: the value of "NAME value" in the last partmap output.
field() { sed -n "s/^$1 //p" "$W/stdout" | head -n 1; }

# pm_parts SECTOR_SIZE < partmap output: one line per partition,
# "NUMBER START SIZE TYPE UUID BOOT NAME" (sectors; TYPE as sfdisk writes it).
pm_parts() {
	local ss=$1 line re='^part ([0-9]+) start=([0-9]+) size=([0-9]+) type=([^ ]+) uuid=([^ ]+) attrs=([^ ]+) flags=([^ ]+) name=(.*)$'
	while IFS= read -r line; do
		[[ $line =~ $re ]] || continue
		local ty=${BASH_REMATCH[4]} boot=-
		[[ $ty == 0x* ]] && ty=$(printf '%X' $((16#${ty#0x})))
		[[ ${BASH_REMATCH[7]} == *bootable* ]] && boot=boot
		echo "${BASH_REMATCH[1]} $((BASH_REMATCH[2] / ss)) $((BASH_REMATCH[3] / ss)) $ty" \
			"${BASH_REMATCH[5]} $boot ${BASH_REMATCH[8]}"
	done
}

# sf_parts FILE-OR-DEVICE: the same lines from sfdisk --json.
sf_parts() {
	sfdisk --json "$1" 2>/dev/null | jq -r '.partitiontable.partitions[]? |
		[(.node | capture("(?<n>[0-9]+)$").n), (.start|tostring), (.size|tostring),
		 (.type | ascii_upcase), (.uuid // "-"),
		 (if (.bootable // false) or ((.attrs // "") | test("LegacyBIOSBootable"))
		  then "boot" else "-" end), (.name // "")] | join(" ")' | sort -n
}

# blkid_parts FILE: "NUMBER START SIZE" (sectors) as libblkid (partx --show) sees FILE;
# libblkid numbers logical partitions as the kernel does.
blkid_parts() {
	partx -s -g -o NR,START,SECTORS -- "$1" 2>/dev/null | awk '{print $1, $2, $3}' | sort -n
}

# same_text A B WHAT: two outputs must be equal.
same_text() {
	[[ $1 == "$2" ]] && return 0
	err "$3 differ: partmap: [$(oneline "$1")] other: [$(oneline "$2")]"
}

# has_line TEXT: the last partmap output has a line matching the ERE.
has_line() {
	grep -Eq -- "$1" "$W/stdout" && return 0
	err "no line /$1/ in partmap output: $(oneline "$(head -c 600 "$W/stdout")")"
}

sgdisk_ok() {
	local out
	out=$(sgdisk -v "$1" 2>&1)
	[[ $out == *"No problems found"* ]] && return 0
	err "sgdisk -v ${1##*/}: $(oneline "$out" | head -c 400)"
}

# put_markers FILE: 4 KiB of random bytes at the start and near the end of every
# partition, so that relocation can be seen to carry the partitions' bytes.
put_markers() {
	local f=$1 ss=$2 line
	while read -r n st sz rest; do
		dd if=/dev/urandom of="$f" bs=4096 count=1 seek=$((st * ss)) oflag=seek_bytes \
			conv=notrunc status=none
		dd if=/dev/urandom of="$f" bs=4096 count=1 seek=$(((st + sz) * ss - 8192)) \
			oflag=seek_bytes conv=notrunc status=none
	done < <(pm_parts "$ss" <"$W/stdout")
}

# same_parts_bytes A B SS PARTS: every partition's bytes equal in A and B.
same_parts_bytes() {
	local a=$1 b=$2 ss=$3 n st sz rest
	while read -r n st sz rest; do
		cmp -s -i $((st * ss)):$((st * ss)) -n $((sz * ss)) -- "$a" "$b" ||
			err "partition $n bytes differ between ${a##*/} and ${b##*/}"
	done <<<"$4"
}

# ---------------------------------------------------------------- GPT

make_gpt() {
	rm -f -- "$1"
	truncate -s 64M -- "$1"
	sgdisk -n1:2048:+8M -t1:ef00 -c1:"EFI system partition" \
		-n2:0:+16M -t2:8300 -c2:"root fs" -A2:set:2 \
		-n3:0:+4M -t3:8200 -c3:"Ünïcode ☃ swap" \
		-n4:0:+10M -t4:0700 -c4:"data" \
		-- "$1" >/dev/null || die_setup "sgdisk on $1 failed"
}

G=$W/gpt.img
make_gpt "$G"

begin gpt_named
if pm "$G"; then
	cp -- "$W/stdout" "$W/gpt.out"
	same_text "$(pm_parts 512 <"$W/stdout")" "$(sf_parts "$G")" "partitions (sfdisk --json)"
	same_text "$(field scheme) $(field sector_size) $(field flags) $(field odd)" "gpt 512 - 0" \
		"scheme, sector size, flags"
	sg=$(sgdisk -p "$G")
	[[ $sg =~ First\ usable\ sector\ is\ ([0-9]+),\ last\ usable\ sector\ is\ ([0-9]+) ]]
	same_text "$(field first_usable_lba) $(field last_usable_lba)" \
		"${BASH_REMATCH[1]} ${BASH_REMATCH[2]}" "usable LBAs (sgdisk -p)"
	[[ $sg =~ Disk\ identifier\ \(GUID\):\ ([0-9A-F-]+) ]]
	same_text "$(field disk_guid)" "${BASH_REMATCH[1]}" "disk GUID (sgdisk -p)"
	[[ $sg =~ Main\ partition\ table\ begins\ at\ sector\ ([0-9]+)\ and\ ends\ at\ sector\ ([0-9]+) ]]
	mb=${BASH_REMATCH[1]} me=${BASH_REMATCH[2]}
	last=$(($(fsize "$G") / 512 - 1))
	has_line "^area 0 512 protective MBR$"
	has_line "^area 512 512 GPT header$"
	has_line "^area $((mb * 512)) $(((me - mb + 1) * 512)) GPT entries$"
	has_line "^area $(((last - (me - mb + 1)) * 512)) $(((me - mb + 1) * 512)) backup GPT entries$"
	has_line "^area $((last * 512)) 512 backup GPT header$"
	[[ $(grep -c '^area ' "$W/stdout") == 5 ]] || err "not 5 areas"
	[[ $(grep -c '^warning ' "$W/stdout") == 0 ]] || err "warnings: $(grep '^warning' "$W/stdout")"
	same_text "$(pm_parts 512 <"$W/stdout" | cut -d' ' -f1-3)" \
		"$(blkid_parts "$G")" "partitions (partx)"
fi
finish

begin gpt_hybrid_mbr
H=$W/hybrid.img
cp --sparse=always -- "$G" "$H"
sgdisk -h 1:3 -- "$H" >/dev/null || err "sgdisk -h failed"
if pm "$H"; then
	same_text "$(field flags) $(field odd)" "hybrid_mbr 0" "flags"
	same_text "$(pm_parts 512 <"$W/stdout")" "$(pm_parts 512 <"$W/gpt.out")" "partitions"
	has_line "^area 0 512 hybrid MBR$"
	# sgdisk sees the hybrid too.
	[[ $(sgdisk -p "$H" 2>&1; sgdisk -v "$H" 2>&1) == *"No problems found"* ]] ||
		err "sgdisk -v on the hybrid disk reports problems"
fi
finish

# damaged COPY OFFSET MODE: a copy of the GPT disk with the primary/backup damaged.
damaged() {
	cp --sparse=always -- "$G" "$1"
	case $3 in
	zero) dd if=/dev/zero of="$1" bs=512 count=1 seek=$(($2 / 512)) conv=notrunc status=none ;;
	flip) flip "$1" "$2" 1 ;;
	esac
}

# expect_damage FILE WHAT: sgdisk itself must see a problem in FILE.
expect_damage() {
	local out
	out=$(sgdisk -v "$1" 2>&1)
	grep -Eq 'ERROR|Problem|corrupt|invalid' <<<"$out" || err "sgdisk -v finds no problem in $2"
}

for c in "primary_zeroed 512 zero backup_used" \
	"primary_header_flipped $((512 + 48)) flip backup_used" \
	"primary_entries_flipped $((1024 + 128 + 60)) flip backup_used" \
	"backup_header_flipped $((64 * MiB - 512 + 40)) flip backup_bad" \
	"backup_entries_flipped $((64 * MiB - 33 * 512 + 200)) flip backup_bad" \
	"backup_zeroed $((64 * MiB - 512)) zero backup_bad"; do
	read -r name off mode flag <<<"$c"
	begin "gpt_$name"
	D=$W/$name.img
	damaged "$D" "$off" "$mode"
	expect_damage "$D" "$name"
	if pm "$D"; then
		same_text "$(field flags) $(field odd)" "$flag 0" "flags"
		same_text "$(pm_parts 512 <"$W/stdout")" "$(pm_parts 512 <"$W/gpt.out")" \
			"partitions (with the undamaged disk)"
		same_text "$(field disk_guid) $(field first_usable_lba) $(field entries_crc)" \
			"$(sed -n 's/^disk_guid //p' "$W/gpt.out") 34 $(sed -n 's/^entries_crc //p' "$W/gpt.out")" \
			"disk GUID, first usable LBA, entries CRC"
		if [[ $flag == backup_used ]]; then
			has_line "^warning primary GPT header at LBA 1: .*backup at LBA $((64 * MiB / 512 - 1)) was used"
			has_line "^area 512 512 GPT header \(damaged\)$"
		else
			has_line "^warning backup GPT header at LBA $((64 * MiB / 512 - 1)): .*primary was used"
			has_line "^area $((64 * MiB - 512)) 512 backup GPT header \(damaged\)$"
		fi
	fi
	finish
done

begin gpt_both_damaged
D=$W/both.img
damaged "$D" $((512 + 48)) flip
flip "$D" $((64 * MiB - 512 + 48)) 1
run 1 "$PARTMAP" "$D"
grep -q "primary header at LBA 1: header CRC32" "$W/stderr" ||
	err "no message about the primary: $(head -c 300 "$W/stderr")"
finish

# ---------------------------------------------------------------- MBR

M=$W/mbr.img
rm -f -- "$M"
truncate -s 64M -- "$M"
sfdisk -q "$M" >/dev/null <<EOF || die_setup "sfdisk dos failed"
label: dos
start=2048, size=8M, type=c, bootable
size=6M, type=83
size=40M, type=f
size=2M, type=83
${M}5 : size=5M, type=82
${M}6 : size=7M, type=83, bootable
${M}7 : size=3M, type=7
${M}8 : size=2M, type=83
EOF

begin mbr_logicals
if pm "$M"; then
	parts=$(pm_parts 512 <"$W/stdout")
	same_text "$parts" "$(sf_parts "$M")" "partitions (sfdisk --json)"
	same_text "$(field scheme) $(field flags) $(field odd)" "mbr - 0" "scheme, flags"
	[[ $(grep -c '^part ' "$W/stdout") == 8 ]] || err "not 8 partitions"
	has_line "^part 6 .* flags=bootable,logical "
	has_line "^part 3 .* flags=extended "
	has_line "^part 5 .* flags=logical "
	has_line "^part 8 .* flags=logical "
	# libblkid agrees on numbers, starts and sizes.
	same_text "$(cut -d' ' -f1-3 <<<"$parts")" "$(blkid_parts "$M")" "partitions (partx)"
	# One EBR per logical partition, each a sector ending in 55AA.
	has_line "^area 0 512 MBR$"
	n=0
	while read -r _ st sz what; do
		[[ $what == EBR ]] || continue
		n=$((n + 1))
		[[ $(bytes_hex "$M" $((st + 510)) 2) == 55aa ]] || err "EBR at $st has no 55AA"
	done < <(grep '^area ' "$W/stdout")
	((n == 4)) || err "$n EBR areas, want 4"
	last_end=$(awk '{e = ($2 + $3) * 512; if (e > m) m = e} END {print m}' <<<"$parts")
	same_text "$(field min_size)" "$last_end" "min size"
fi
finish

# sf_odd FILE [DISK_BYTES]: "overlap" and/or "beyond_end" as computed here from
# sfdisk's view of FILE, on a disk of DISK_BYTES (default: FILE's size). An extended
# partition may hold logical ones; sector 0 counts as taken.
sf_odd() {
	local size
	size=$((${2:-$(fsize "$1")} / 512))
	sfdisk --json "$1" 2>/dev/null | jq -r --argjson size "$size" '
		[.partitiontable.partitions[] | {n: (.node | capture("(?<n>[0-9]+)$").n | tonumber),
		 s: .start, e: (.start + .size), ext: (.type == "5" or .type == "f" or .type == "85")}]
		| . as $p
		| ([$p[] as $a | $p[] as $b | select($a.n < $b.n)
		    | select(($a.ext and $b.n > 4) or ($b.ext and $a.n > 4) | not)
		    | select($a.s < $b.e and $b.s < $a.e)] + [$p[] | select(.s == 0)]
		   | if length > 0 then "overlap" else empty end),
		  ([$p[] | select(.e > $size)] | if length > 0 then "beyond_end" else empty end)' |
		paste -sd, -
}

begin odd_layouts
# Partition 2 moved over partition 1; a disk cut short; a GPT disk cut short.
cp --sparse=always -- "$M" "$W/overlap.img"
poke_hex "$W/overlap.img" $((446 + 16 + 8)) 00500000
cp --sparse=always -- "$M" "$W/cut.img"
truncate -s 40M -- "$W/cut.img"
cp --sparse=always -- "$G" "$W/gptcut.img"
truncate -s 30M -- "$W/gptcut.img"
for f in overlap cut gptcut; do
	if [[ $f == gptcut ]]; then
		# libfdisk gives up on this GPT (it sees the 0xEE entry as a dos table): the
		# partitions are those of the uncut disk.
		want=backup_bad,$(sf_odd "$G" $((30 * MiB)))
	else
		want=$(sf_odd "$W/$f.img")
	fi
	[[ -n ${want#backup_bad,} ]] || err "$f: sfdisk sees nothing odd"
	if pm "$W/$f.img"; then
		same_text "$(field flags) $(field odd)" "$want 1" "$f: flags"
		grep -q '^warning ' "$W/stdout" || err "$f: no warning"
	fi
done
finish

# ---------------------------------------------------------------- superfloppies

for fs in "fat12 mkfs.vfat 2M" "fat16 mkfs.vfat 32M" "fat32 mkfs.vfat_-F_32 64M" \
	"fat16_fake_mbr mkfs.vfat_--mbr=yes 32M" "exfat mkfs.exfat 16M" "ntfs mkntfs_-Q_-F 16M"; do
	read -r name mk size <<<"$fs"
	begin "bare_$name"
	F=$W/$name.img
	rm -f -- "$F"
	truncate -s "$size" -- "$F"
	# shellcheck disable=SC2086 # the tool's options are words
	${mk//_/ } "$F" >/dev/null 2>&1 || err "${mk//_/ } failed"
	[[ $(bytes_hex "$F" 510 2) == 55aa ]] || err "no 55AA in sector 0"
	[[ $(blkid -p -o value -s USAGE "$F") == filesystem ]] || err "blkid sees no filesystem"
	if pm "$F"; then
		same_text "$(field scheme) $(grep -c '^area ' "$W/stdout")" "none 0" "scheme"
	fi
	finish
done

# ---------------------------------------------------------------- 4Kn

K=$W/gpt4k.img
rm -f -- "$K"
truncate -s 64M -- "$K"
LK=$(losetup -f --show --sector-size 4096 -- "$K") || die_setup "losetup --sector-size 4096 failed"
sgdisk -n1:0:+8M -t1:ef00 -c1:"esp 4k" -n2:0:+16M -c2:"data" -n3:0:+4M -t3:8200 -- "$LK" \
	>/dev/null || err "sgdisk on a 4Kn loop device failed"
sync
K_SF=$(sf_parts "$LK")
K_SG=$(sgdisk -p "$LK")
losetup -d "$LK"

begin gpt_4kn
if pm "$K"; then
	same_text "$(field scheme) $(field sector_size) $(field flags)" "gpt 4096 -" "scheme"
	same_text "$(pm_parts 4096 <"$W/stdout")" "$K_SF" "partitions (sfdisk --json on 4Kn loop)"
	[[ $K_SG =~ First\ usable\ sector\ is\ ([0-9]+),\ last\ usable\ sector\ is\ ([0-9]+) ]]
	same_text "$(field first_usable_lba) $(field last_usable_lba)" \
		"${BASH_REMATCH[1]} ${BASH_REMATCH[2]}" "usable LBAs (sgdisk -p)"
	has_line "^area 4096 4096 GPT header$"
	has_line "^area $((64 * MiB - 4096)) 4096 backup GPT header$"
	cp -- "$W/stdout" "$W/gpt4k.out"
fi
run 1 "$PARTMAP" --sector-size 512 "$K"
finish

# ---------------------------------------------------------------- relocation

# check_relocated SRC OUT SS [FLAGS]: OUT is a valid GPT (sgdisk -v) with SRC's
# partitions (start, size, type, GUID, name), disk GUID and partition bytes, and partmap
# reads it with FLAGS (default none).
check_relocated() {
	local src=$1 out=$2 ss=$3 dev=$2 flags=${4:--} srcparts
	pm "$src" || return
	srcparts=$(pm_parts "$ss" <"$W/stdout")
	local guid
	guid=$(field disk_guid)
	if ((ss != 512)); then
		dev=$(losetup -f --show --sector-size "$ss" -- "$out") || { err "losetup"; return; }
	fi
	sgdisk_ok "$dev"
	same_text "$(sf_parts "$dev")" "$srcparts" "partitions after relocation (sfdisk --json)"
	[[ $(sgdisk -p "$dev") == *"Disk identifier (GUID): $guid"* ]] || err "disk GUID changed"
	((ss != 512)) && losetup -d "$dev"
	same_parts_bytes "$src" "$out" "$ss" "$srcparts"
	pm "$out" && same_text "$(field flags)" "$flags" "flags of the relocated disk"
}

GM=$W/gpt-markers.img
cp --sparse=always -- "$G" "$GM"
pm "$GM" >/dev/null
put_markers "$GM" 512

begin relocate_grow
O=$W/grown.img
if pm --relocate 100M "$O" "$GM"; then
	[[ $(fsize "$O") == $((100 * MiB)) ]] || err "OUT is $(fsize "$O") bytes"
	check_relocated "$GM" "$O" 512
	# sgdisk -e on a copy grown the same way writes the same table.
	R=$W/grown-ref.img
	cp --sparse=always -- "$GM" "$R"
	truncate -s 100M -- "$R"
	sgdisk -e -- "$R" >/dev/null 2>&1
	same "$O" "$R" $((34 * 512))
	cmp -s -i $((100 * MiB - 33 * 512)):$((100 * MiB - 33 * 512)) -- "$O" "$R" ||
		err "backup GPT differs from sgdisk -e"
	# The old backup header (LBA 131071) is no longer a GPT header.
	[[ $(bytes_hex "$O" $((64 * MiB - 512)) 8) == 0000000000000000 ]] ||
		err "old backup header left in place"
fi
finish

begin relocate_shrink_min
# The minimum from sgdisk's view: last partition's end + 32 array sectors + header.
lastend=$(sgdisk -p "$GM" | awk '/^ +[0-9]+ +[0-9]+ +[0-9]+/ {if ($3 > m) m = $3} END {print m}')
min=$(((lastend + 1 + 32 + 1) * 512))
pm "$GM"
same_text "$(field min_size)" "$min" "min size (from sgdisk -p)"
O=$W/shrunk.img
if pm --relocate "$min" "$O" "$GM"; then
	check_relocated "$GM" "$O" 512
	R=$W/shrunk-ref.img
	cp --sparse=always -- "$GM" "$R"
	truncate -s "$min" -- "$R"
	sgdisk -e -- "$R" >/dev/null 2>&1
	same "$O" "$R"
fi
finish

begin relocate_too_small
run 1 "$PARTMAP" --relocate $((min - 512)) "$W/small.img" "$GM"
grep -q "at least $min bytes" "$W/stderr" || err "message lacks the minimum: $(head -c 300 "$W/stderr")"
run 1 "$PARTMAP" --relocate 16M "$W/small.img" "$GM"
grep -q "at least $min bytes" "$W/stderr" || err "message lacks the minimum: $(head -c 300 "$W/stderr")"
finish

begin relocate_hybrid
O=$W/hybrid-grown.img
if pm --relocate 100M "$O" "$H"; then
	check_relocated "$H" "$O" 512 hybrid_mbr
	same_text "$(bytes_hex "$O" 446 64)" "$(bytes_hex "$H" 446 64)" "hybrid MBR entries"
fi
finish

begin relocate_from_backup
D=$W/primary_zeroed.img
O=$W/from-backup.img
if pm --relocate 80M "$O" "$D"; then
	check_relocated "$D" "$O" 512
	# The primary rebuilt from the parsed entries is the original array, bit for bit.
	pm "$O" && same_text "$(field entries_crc)" "$(sed -n 's/^entries_crc //p' "$W/gpt.out")" \
		"entries CRC"
	same_text "$(bytes_hex "$O" 1024 16384)" "$(bytes_hex "$G" 1024 16384)" "entry array"
fi
finish

begin relocate_mbr
# An MBR needs no change on another disk: partmap copies partitions, MBR and EBRs.
pm "$M"
mparts=$(pm_parts 512 <"$W/stdout")
mmin=$(field min_size)
O=$W/mbr-grown.img
if pm --relocate 100M "$O" "$M"; then
	same_text "$(sf_parts "$O")" "$(sf_parts "$M")" "partitions (sfdisk --json)"
	sfdisk --verify "$O" >/dev/null 2>&1 || err "sfdisk --verify fails on the copy"
	pm "$O" && same_text "$(pm_parts 512 <"$W/stdout")" "$mparts" "partitions (partmap)"
fi
run 1 "$PARTMAP" --relocate $((mmin - 512)) "$W/mbr-small.img" "$M"
grep -q "at least $mmin bytes" "$W/stderr" || err "message lacks the minimum"
finish

begin relocate_4kn
kmin=$(sed -n 's/^min_size //p' "$W/gpt4k.out")
for size in 100M "$kmin"; do
	O=$W/gpt4k-$size.img
	if pm --relocate "$size" "$O" "$K"; then
		check_relocated "$K" "$O" 4096
	fi
done
run 1 "$PARTMAP" --relocate $((kmin - 4096)) "$W/small4k.img" "$K"
grep -q "at least $kmin bytes" "$W/stderr" || err "message lacks the minimum"
finish

done_testing
