#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The nbdkit plugin (issue 4): a real MBR disk (sfdisk) with an ext4 partition made by
# mkfs.ext4 -d is imaged and served over a Unix socket; qemu-img compare finds it
# identical to what the image holds, nbdcopy copies it exactly, nbdinfo --map reports
# the chunks not stored as holes; read-only unless an overlay is given, whose writes
# outlive the server and never reach the image; another image's overlay and a damaged
# image are refused at start; a damaged chunk reads as an error, not data.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_imago
need nbdkit qemu-img qemu-io nbdcopy nbdinfo sfdisk mkfs.ext4 sha256sum

PLUGIN=${IMAGO_BUILD:-}/nbdkit-imago-plugin.so
[[ -f $PLUGIN ]] || die_setup "no plugin at $PLUGIN"

# ---------------------------------------------------------------- the source disk

mkdir -p "$W/tree"
find /usr/share/doc -type f -size -100k 2>/dev/null | sort | head -300 |
	while read -r f; do cp -- "$f" "$W/tree/$(echo "${f#/usr/share/doc/}" | tr / _)" 2>/dev/null; done
head -c $((2 * 1024 * 1024)) /dev/urandom >"$W/tree/big.bin"
mkfs.ext4 -q -E nodiscard -d "$W/tree" "$W/p1.ext4" 48M || die_setup "mkfs.ext4 -d"
RAW=$W/disk.raw
head -c $((64 * 1024 * 1024)) /dev/urandom >"$RAW"
printf 'label: dos\nstart=2048, size=98304, type=83\n' | sfdisk -q "$RAW" || die_setup "sfdisk"
dd if="$W/p1.ext4" of="$RAW" bs=1M seek=1 conv=notrunc status=none || die_setup "dd"
IMG=$W/disk.imago
"$IMAGO" create -q "$RAW" "$IMG" || die_setup "imago create"
"$IMAGO" restore -q "$IMG" "$W/restored.raw" >/dev/null 2>&1 || die_setup "imago restore"
IMG_SUM=$(sha256sum <"$IMG")

SOCK=$W/nbd.sock
URI="nbd+unix:///?socket=$SOCK"
SRV=

# serve ARGS...: start nbdkit in the foreground of a background job; 0 once it listens.
serve() {
	rm -f "$SOCK"
	nbdkit -f --exit-with-parent -U "$SOCK" "$PLUGIN" "$@" 2>"$W/nbdkit.err" &
	SRV=$!
	local i
	for i in $(seq 100); do
		[[ -S $SOCK ]] && return 0
		kill -0 "$SRV" 2>/dev/null || break
		sleep 0.05
	done
	wait "$SRV" 2>/dev/null
	SRV=
	return 1
}

stop() {
	[[ -n $SRV ]] || return 0
	kill "$SRV" 2>/dev/null
	wait "$SRV" 2>/dev/null
	SRV=
}
defer stop

# ---------------------------------------------------------------- read-only

begin qemu_img_compare
if serve image="$IMG"; then
	run 0 qemu-img compare -f raw -F raw "$W/restored.raw" "$URI"
	grep -q identical "$W/stdout" || err "qemu-img compare: $(cat "$W/stdout")"
else
	err "nbdkit did not start: $(cat "$W/nbdkit.err")"
fi
finish

begin nbdcopy_exact
run 0 nbdcopy "$URI" "$W/copy.raw"
same "$W/copy.raw" "$W/restored.raw"
finish

begin block_status_holes
run 0 nbdinfo --map "$URI"
awk '{s += $2} END {print s}' "$W/stdout" >"$W/sum"
[[ $(cat "$W/sum") == $(fsize "$RAW") ]] || err "map covers $(cat "$W/sum") bytes"
grep -q 'hole,zero' "$W/stdout" || err "no holes reported: $(head -3 "$W/stdout")"
# every byte the map calls a hole reads as zero
while read -r off len _ what; do
	[[ $what == hole,zero ]] || continue
	cmp -n "$len" <(tail -c +$((off + 1)) "$W/copy.raw") /dev/zero >/dev/null ||
		err "hole at $off is not zero"
done <"$W/stdout"
finish

begin read_only_without_overlay
run 1 qemu-io -f raw -c 'write -P 0x5a 0 4k' "$URI"
grep -qi "permission denied\|read-only" "$W/stderr" || err "not refused as read-only: $(head -c 200 "$W/stderr")"
stop
[[ $(sha256sum <"$IMG") == "$IMG_SUM" ]] || err "image changed"
finish

# ---------------------------------------------------------------- overlay

OVL=$W/nbd.ovl
begin overlay_writes_persist
if serve image="$IMG" overlay="$OVL"; then
	run 0 qemu-io -f raw -c 'write -P 0x5a 1048576 64k' -c 'write -P 0xa5 5000 3000' "$URI"
	stop
	serve image="$IMG" overlay="$OVL" || err "restart: $(cat "$W/nbdkit.err")"
	run 0 qemu-io -f raw -c 'read -P 0x5a 1048576 64k' -c 'read -P 0xa5 5000 3000' "$URI"
	grep -q 'Pattern verification failed' "$W/stdout" && err "pattern: $(head -3 "$W/stdout")"
	# the rest is the image's
	run 0 nbdcopy "$URI" "$W/copy2.raw"
	cp "$W/restored.raw" "$W/want.raw"
	head -c 65536 /dev/zero | tr '\0' '\132' | dd of="$W/want.raw" bs=1 seek=1048576 conv=notrunc status=none
	head -c 3000 /dev/zero | tr '\0' '\245' | dd of="$W/want.raw" bs=1 seek=5000 conv=notrunc status=none
	same "$W/copy2.raw" "$W/want.raw"
	stop
else
	err "nbdkit did not start: $(cat "$W/nbdkit.err")"
fi
[[ $(sha256sum <"$IMG") == "$IMG_SUM" ]] || err "image changed"
run 0 "$IMAGO" verify "$IMG"
# without the overlay: the image as it was
serve image="$IMG" || err "restart without overlay"
run 0 qemu-img compare -f raw -F raw "$W/restored.raw" "$URI"
stop
finish

begin overlay_of_another_image_refused
"$IMAGO" create -q --sector "$W/p1.ext4" "$W/other.imago" || err "create other"
if serve image="$W/other.imago" overlay="$OVL"; then
	err "nbdkit started with another image's overlay"
	stop
fi
grep -q 'another image' "$W/nbdkit.err" || err "message: $(cat "$W/nbdkit.err")"
finish

begin damaged_image_refused
cp "$IMG" "$W/trunc.imago"
truncate -s $(($(fsize "$IMG") - 100)) "$W/trunc.imago"
if serve image="$W/trunc.imago"; then
	err "nbdkit served a truncated image"
	stop
fi
grep -qi 'incomplete\|damaged\|trailer' "$W/nbdkit.err" || err "message: $(cat "$W/nbdkit.err")"
finish

begin damaged_chunk_is_an_error
cp "$IMG" "$W/bad.imago"
read -r foff _ lo _ sl < <(frames "$W/bad.imago" | awk '$2 != 3 && $3 >= 1048576 && $5 > 4096' | head -1)
if [[ -z ${foff:-} ]]; then
	err "no data frame"
else
	flip "$W/bad.imago" $((foff + 48 + sl / 2)) 0x40
	if serve image="$W/bad.imago"; then
		run 1 nbdcopy "$URI" "$W/copy3.raw"
		grep -qi 'input/output\|error' "$W/stderr" || err "nbdcopy: $(head -c 300 "$W/stderr")"
		grep -q 'damaged' "$W/nbdkit.err" || err "server log: $(head -c 300 "$W/nbdkit.err")"
		# what is not damaged still reads (a fresh server: nbdkit 1.32 can abort on an
		# assertion in raw_send_socket when nbdcopy drops its connections after the error)
		stop
		serve image="$W/bad.imago" || err "restart: $(cat "$W/nbdkit.err")"
		run 0 qemu-io -r -f raw -c "read 0 $lo" "$URI"
		run 1 qemu-io -r -f raw -c "read $lo 4096" "$URI"
		stop
	else
		err "nbdkit did not start: $(cat "$W/nbdkit.err")"
	fi
fi
finish

done_testing
