#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The Linux swap reader (lib/fs/swap.c) against areas made by mkswap, checked with
# tests/fsmap against outside tools:
#   - facts: type, label and UUID as blkid -p reads them; page size, size from the header;
#     one page used, the rest FREE;
#   - a scrubbed copy (every FREE byte overwritten with 0xA5) keeps its header page byte
#     for byte, blkid and swaplabel still read its label and UUID, and the kernel accepts it
#     (swapon on a loop device, then swapoff);
# for each page size (4, 8, 16, 64 KiB), at an offset inside a partitioned disk, written
# big-endian; hibernation signatures (which blkid reports as swsuspend) keep everything
# USED; damage (truncation, no signature, an empty or impossible header, the old v0 format)
# is refused cleanly.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_root
need python3 mkswap swaplabel swapon swapoff blkid sfdisk losetup truncate
FSMAP=${IMAGO_BUILD:-}/tests/fsmap
[[ -x $FSMAP ]] || die_setup "no fsmap at $FSMAP (IMAGO_BUILD=${IMAGO_BUILD:-unset})"

MiB=$((1024 * 1024))
KPAGE=$(getconf PAGESIZE)
UUID=5a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d

declare -A F

# fsmap_run WANT ARGS...: run fsmap; its "key value" lines into F.
fsmap_run() {
	local want=$1 k v
	shift
	F=()
	run "$want" "$FSMAP" "$@" || return 1
	while read -r k v; do F[$k]=$v; done <"$W/stdout"
}

want() {
	[[ ${F[$1]-} == "$2" ]] || err "fsmap $1 is '${F[$1]-}', want '$2'"
}

# mk_area FILE SIZE [mkswap options...]: stale random data, then mkswap over it (mkswap
# writes only the header page: the rest keeps the old bytes).
mk_area() {
	local f=$1 size=$2
	shift 2
	make_random "$f" "$size" 3
	chmod 600 "$f"
	mkswap -q "$@" "$f" >"$W/mkswap.log" 2>&1 || die_setup "mkswap $* failed: $(cat "$W/mkswap.log")"
}

# blkid_is DEV TYPE LABEL UUID
blkid_is() {
	local t l u
	t=$(blkid -p -o value -s TYPE "$1")
	l=$(blkid -p -o value -s LABEL "$1")
	u=$(blkid -p -o value -s UUID "$1")
	[[ $t == "$2" && $l == "$3" && $u == "$4" ]] ||
		err "blkid -p ${1##*/}: TYPE=$t LABEL=$l UUID=$u, want $2/$3/$4"
}

# scrubbed_ok SRC OUT OFFSET SIZE PAGE: OUT is SRC with [OFFSET+PAGE, OFFSET+SIZE) all
# 0xA5 and every other byte unchanged.
scrubbed_ok() {
	local res
	res=$("$PY" - "$@" <<'EOF'
import sys
src, out, off, size, page = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
a, b = open(src, "rb").read(), open(out, "rb").read()
lo, hi = off + page, off + size
if len(a) != len(b):
    print("sizes differ")
elif a[:lo] != b[:lo] or a[hi:] != b[hi:]:
    print("bytes outside the swap pages changed")
elif b[lo:hi] != b"\xa5" * (hi - lo):
    print("not every byte after the header page was scrubbed")
else:
    print("ok")
EOF
	)
	[[ $res == ok ]] || err "scrubbed copy: $res"
}

# kernel_accepts DEV: swapon takes it, swapoff gives it back.
kernel_accepts() {
	if swapon "$1" 2>"$W/swapon.err"; then
		grep -q "^$1 " /proc/swaps || err "swapon succeeded but $1 is not in /proc/swaps"
		swapoff "$1" || err "swapoff $1 failed"
	else
		err "swapon refused the scrubbed area: $(cat "$W/swapon.err")"
	fi
}

area=$W/swap.img
out=$W/scrubbed.img

begin swap-4k-label-uuid
mk_area "$area" $((64 * MiB)) -L swap-label -U "$UUID"
fsmap_run 0 --scrub "$out" "$area"
want driver swap
want type swap
want label swap-label
want uuid "$UUID"
want block_size 4096
want fs_size $((64 * MiB))
want used_bytes 4096
want free_bytes $((64 * MiB - 4096))
want flags 0
blkid_is "$area" swap swap-label "$UUID"
scrubbed_ok "$area" "$out" 0 $((64 * MiB)) 4096
blkid_is "$out" swap swap-label "$UUID"
[[ $(swaplabel "$out" 2>&1) == *"LABEL: swap-label"*"UUID:  $UUID"* ||
   $(swaplabel "$out" 2>&1) == *"UUID:  $UUID"*"LABEL: swap-label"* ]] ||
	err "swaplabel on the scrubbed copy: $(swaplabel "$out" 2>&1 | tr '\n' ' ')"
if ((KPAGE == 4096)); then
	loop_attach "$out"
	kernel_accepts "$LOOP"
fi
finish

begin swap-no-label
mk_area "$area" $((8 * MiB)) -U clear
fsmap_run 0 "$area"
want label ''
want uuid ''
want free_bytes $((8 * MiB - 4096))
finish

for ps in 8192 16384 65536; do
	begin "swap-page-$ps"
	mk_area "$area" $((16 * MiB)) -p "$ps" -L "page$ps" -U "$UUID"
	fsmap_run 0 --scrub "$out" "$area"
	want block_size "$ps"
	want used_bytes "$ps"
	want free_bytes $((16 * MiB - ps))
	blkid_is "$area" swap "page$ps" "$UUID"
	scrubbed_ok "$area" "$out" 0 $((16 * MiB)) "$ps"
	blkid_is "$out" swap "page$ps" "$UUID"
	if ((ps == KPAGE)); then
		loop_attach "$out"
		kernel_accepts "$LOOP"
	fi
	finish
done

begin swap-in-partition
disk=$W/disk.img
make_random "$disk" $((48 * MiB)) 5
printf 'label: gpt\nstart=2048, size=16384, type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F\nstart=18432, size=40960\n' |
	sfdisk -q "$disk" >/dev/null 2>&1 || die_setup "sfdisk failed"
p1=$((2048 * 512)) p1size=$((16384 * 512))
loop_attach "$disk" -o "$p1" --sizelimit "$p1size"
mkswap -q -L in-part -U "$UUID" "$LOOP" >/dev/null 2>&1 || die_setup "mkswap on the partition failed"
losetup -d "$LOOP"
fsmap_run 0 --offset "$p1" --size "$p1size" --scrub "$out" "$disk"
want driver swap
want label in-part
want fs_size "$p1size"
want free_bytes $((p1size - 4096))
scrubbed_ok "$disk" "$out" "$p1" "$p1size" 4096
[[ $(blkid -p -o value -s PTTYPE "$out") == gpt ]] || err "the scrubbed disk lost its GPT"
loop_attach "$out" -o "$p1" --sizelimit "$p1size"
blkid_is "$LOOP" swap in-part "$UUID"
((KPAGE == 4096)) && kernel_accepts "$LOOP"
finish

begin swap-big-endian
mk_area "$area" $((8 * MiB)) -L big -U "$UUID"
"$PY" - "$area" <<'EOF'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    for at in (1024, 1028, 1032):
        f.seek(at)
        v = struct.unpack("<I", f.read(4))[0]
        f.seek(at)
        f.write(struct.pack(">I", v))
EOF
fsmap_run 0 "$area"
want label big
want fs_size $((8 * MiB))
blkid_is "$area" swap big "$UUID"
finish

# ---------------------------------------------------------------- hibernation

for sig in 'S1SUSPEND\0' 'S2SUSPEND\0' 'ULSUSPEND\0' 'LINHIB0001'; do
	name=${sig%\\0}
	begin "hibernated-$name"
	mk_area "$area" $((8 * MiB)) -L hib -U "$UUID"
	printf '%b' "$sig" | dd of="$area" bs=1 seek=4086 conv=notrunc status=none
	fsmap_run 0 "$area"
	want type swap
	want flags 4
	want free_bytes 0
	want used_bytes $((8 * MiB))
	[[ ${F[state]} == *"$name"* ]] || err "state: ${F[state]}"
	[[ $(blkid -p -o value -s TYPE "$area") == swsuspend ]] ||
		err "blkid does not see a hibernation image: $(blkid -p "$area")"
	finish
done

begin hibernated-tuxonice
mk_area "$area" $((8 * MiB)) -L hib -U "$UUID"
printf '\355\303\002\351\230\126\345\014' | dd of="$area" bs=1 conv=notrunc status=none
fsmap_run 0 "$area"
want flags 4
want free_bytes 0
finish

# ---------------------------------------------------------------- damage

begin damaged-truncated
mk_area "$area" $((8 * MiB))
truncate -s $((4 * MiB)) "$area"
fsmap_run 1 "$area"
grep -q 'truncated image' "$W/stderr" || err "message: $(head -c 300 "$W/stderr")"
finish

begin damaged-no-signature
mk_area "$area" $((8 * MiB))
printf 'XXXXXXXXXX' | dd of="$area" bs=1 seek=4086 conv=notrunc status=none
fsmap_run 3 "$area"
finish

begin damaged-empty-header
# last_page 0: libblkid does not call it swap either.
mk_area "$area" $((8 * MiB))
printf '\0\0\0\0' | dd of="$area" bs=1 seek=1028 conv=notrunc status=none
fsmap_run 3 "$area"
[[ -z $(blkid -p -o value -s TYPE "$area") ]] || err "blkid: $(blkid -p "$area")"
finish

begin damaged-bad-pages
mk_area "$area" $((8 * MiB))
printf '\377\377\0\0' | dd of="$area" bs=1 seek=1032 conv=notrunc status=none
fsmap_run 1 "$area"
grep -q 'bad pages' "$W/stderr" || err "message: $(head -c 300 "$W/stderr")"
finish

begin swap-v0-refused
make_random "$area" $((8 * MiB)) 4
printf 'SWAP-SPACE' | dd of="$area" bs=1 seek=4086 conv=notrunc status=none
fsmap_run 1 "$area"
want driver swap
grep -q 'version 0' "$W/stderr" || err "message: $(head -c 300 "$W/stderr")"
finish

done_testing
