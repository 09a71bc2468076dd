#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Forensic acquisition (issue 6): acquire with MD5/SHA-1/SHA-256 equal to the coreutils'
# digests of the source (file and loop device), case metadata round trip, the log and its
# refusal to clobber, hash, verify of stored digests, E01 interchange checked by libewf's
# own tools (ewfverify, ewfinfo, ewfacquire), split raw export, a source changed during
# the acquisition, and unreadable sectors (a real kernel EIO from a damaged btrfs file)
# logged with their exact range.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_imago
need_root
need python3 jq losetup mount umount mkfs.btrfs truncate md5sum sha1sum sha256sum \
	ewfverify ewfinfo ewfacquire

MiB=$((1024 * 1024))

# A source with data and zero runs (zero chunks take the ZERO path of the writer).
make_random "$W/src" $((3 * MiB)) 21
append_zero "$W/src" $((2 * MiB))
append_random "$W/src" $((1 * MiB + 512)) 22

# sums FILE: "md5 sha1 sha256" of FILE by coreutils
sums() { echo "$(md5sum <"$1" | cut -c1-32) $(sha1sum <"$1" | cut -c1-40) $(sha256sum <"$1" | cut -c1-64)"; }
# stored IMAGE: "md5 sha1 sha256" from the image's metadata (info --json)
stored() {
	"$IMAGO" info --json "$1" | jq -r '.metadata | "\(.["hash.md5"]) \(.["hash.sha1"]) \(.["hash.sha256"])"'
}
meta() { "$IMAGO" info --json "$1" | jq -r --arg k "$2" '.metadata[$k] // "(none)"'; }

# ---------------------------------------------------------------- acquire a file

begin acquire_file_digests_equal_coreutils
run 0 "$IMAGO" acquire -q -C "CASE-17" -E "EV 3" -e "Ana Müller" -D "USB stick, blue" \
	-N "seized 2026-11-20; bag #4" "$W/src" "$W/a.imago"
want=$(sums "$W/src")
got=$(stored "$W/a.imago")
[[ $got == "$want" ]] || err "stored digests '$got', coreutils '$want'"
for h in $want; do grep -q -- "$h" "$W/a.imago.log" || err "log lacks digest $h"; done
finish

begin acquire_metadata_round_trip
[[ $(meta "$W/a.imago" case.number) == "CASE-17" ]] || err "case.number"
[[ $(meta "$W/a.imago" case.evidence) == "EV 3" ]] || err "case.evidence"
[[ $(meta "$W/a.imago" case.examiner) == "Ana Müller" ]] || err "case.examiner: $(meta "$W/a.imago" case.examiner)"
[[ $(meta "$W/a.imago" case.description) == "USB stick, blue" ]] || err "case.description"
[[ $(meta "$W/a.imago" case.notes) == "seized 2026-11-20; bag #4" ]] || err "case.notes"
[[ $(meta "$W/a.imago" source.size) == "$(fsize "$W/src")" ]] || err "source.size"
[[ $(meta "$W/a.imago" mode) == sector ]] || err "mode is not sector"
[[ $(meta "$W/a.imago" acquire.start) =~ ^20[0-9-]+T[0-9:]+Z$ ]] || err "acquire.start"
[[ $(meta "$W/a.imago" acquire.end) =~ ^20[0-9-]+T[0-9:]+Z$ ]] || err "acquire.end"
[[ $(meta "$W/a.imago" acquire.command) == *"acquire -q -C CASE-17"* ]] || err "acquire.command: $(meta "$W/a.imago" acquire.command)"
[[ $(meta "$W/a.imago" acquire.host) == "$(hostname)" ]] || err "acquire.host"
[[ $(meta "$W/a.imago" acquire.bad_bytes) == 0 ]] || err "acquire.bad_bytes"
grep -q '^Examiner: *Ana Müller$' "$W/a.imago.log" || err "log lacks the examiner"
grep -q '^Result: *acquired, every sector read' "$W/a.imago.log" || err "log lacks the result"
# every sector kept: the image's content is the source
run 0 "$IMAGO" verify -q "$W/a.imago" --against "$W/src"
finish

begin acquire_verify_reports_stored_digests
run 0 "$IMAGO" verify "$W/a.imago"
for h in $(sums "$W/src"); do grep -q -- "$h" "$W/stdout" || err "verify does not report $h"; done
finish

begin acquire_refuses_existing_image_and_log
cp -- "$W/a.imago" "$W/keep.imago"
run 5 "$IMAGO" acquire -q "$W/src" "$W/a.imago"
cmp -s "$W/a.imago" "$W/keep.imago" || err "the existing image was changed"
echo "old log" >"$W/b.imago.log"
run 5 "$IMAGO" acquire -q "$W/src" "$W/b.imago"
absent "$W/b.imago"
[[ $(cat "$W/b.imago.log") == "old log" ]] || err "the existing log was changed"
no_temp "$W"
run 0 "$IMAGO" acquire -q -f "$W/src" "$W/b.imago"
grep -q '^imago acquisition log' "$W/b.imago.log" || err "--force did not write the log"
finish

begin acquire_hash_subset
run 0 "$IMAGO" acquire -q -a md5 "$W/src" "$W/md5only.imago"
[[ $(meta "$W/md5only.imago" hash.md5) == "$(md5sum <"$W/src" | cut -c1-32)" ]] || err "md5"
[[ $(meta "$W/md5only.imago" hash.sha256) == "(none)" ]] || err "sha256 stored though not asked"
finish

# ---------------------------------------------------------------- a loop device

loop_attach "$W/src" -r
SRC_LOOP=$LOOP
begin acquire_loop_device
run 0 "$IMAGO" acquire -q -C dev "$SRC_LOOP" "$W/dev.imago"
[[ $(stored "$W/dev.imago") == "$(sums "$SRC_LOOP")" ]] || err "digests differ from coreutils' of $SRC_LOOP"
[[ $(sums "$SRC_LOOP") == "$(sums "$W/src")" ]] || err "loop device differs from its file"
[[ $(meta "$W/dev.imago" source.kind) == block ]] || err "source.kind"
[[ $(meta "$W/dev.imago" source.readonly) == yes ]] || err "source.readonly (BLKROGET of losetup -r)"
grep -q 'Kernel read-only: *yes' "$W/dev.imago.log" || err "log lacks the read-only flag"
grep -q "^Size: *$(dev_size "$SRC_LOOP") bytes" "$W/dev.imago.log" || err "log lacks the size"
finish

# ---------------------------------------------------------------- hash

begin hash_one_algorithm_like_md5sum
run 0 "$IMAGO" hash --md5 "$W/src"
[[ $(cat "$W/stdout") == "$(md5sum "$W/src")" ]] || err "'$(cat "$W/stdout")' vs md5sum"
finish

begin hash_three_algorithms_tagged
run 0 "$IMAGO" hash -a md5,sha1,sha256 "$W/src" "$SRC_LOOP"
want=$(md5sum --tag "$W/src"; sha1sum --tag "$W/src"; sha256sum --tag "$W/src"
	md5sum --tag "$SRC_LOOP"; sha1sum --tag "$SRC_LOOP"; sha256sum --tag "$SRC_LOOP")
[[ $(cat "$W/stdout") == "$want" ]] || err "output differs from the coreutils' --tag lines"
grep '^SHA256' "$W/stdout" >"$W/sha256.tag"
sha256sum -c --quiet "$W/sha256.tag" >/dev/null 2>&1 || err "sha256sum -c rejects the lines"
finish

# ---------------------------------------------------------------- E01

begin convert_to_e01_ewfverify_ewfinfo
run 0 "$IMAGO" convert -q "$W/a.imago" "$W/e.E01"
ewfverify -q "$W/e.E01" >"$W/ewfverify.out" 2>&1 || err "ewfverify failed: $(tail -3 "$W/ewfverify.out")"
ewfinfo "$W/e.E01" >"$W/ewfinfo.out" 2>&1 || err "ewfinfo failed"
read -r md5 sha1 sha256 <<<"$(sums "$W/src")"
grep -q "Case number:.*CASE-17" "$W/ewfinfo.out" || err "ewfinfo lacks the case number"
grep -q "Examiner name:.*Ana Müller" "$W/ewfinfo.out" || err "ewfinfo lacks the examiner"
grep -q "Evidence number:.*EV 3" "$W/ewfinfo.out" || err "ewfinfo lacks the evidence number"
grep -q "MD5:.*$md5" "$W/ewfinfo.out" || err "ewfinfo lacks the MD5"
grep -q "SHA1:.*$sha1" "$W/ewfinfo.out" || err "ewfinfo lacks the SHA-1"
grep -q "Media size:.*($(fsize "$W/src") bytes)" "$W/ewfinfo.out" || err "ewfinfo media size"
grep -q "$sha256" "$W/e.E01.log" || err "the conversion log lacks the SHA-256"
finish

begin e01_back_to_raw_and_imago_same_digests
run 0 "$IMAGO" verify "$W/e.E01"
grep -q "$md5" "$W/stdout" || err "verify of the E01 does not report the MD5"
run 0 "$IMAGO" convert -q "$W/e.E01" "$W/back.raw"
same "$W/back.raw" "$W/src"
run 0 "$IMAGO" convert -q "$W/e.E01" "$W/back.imago"
[[ $(stored "$W/back.imago") == "$(sums "$W/src")" ]] || err "digests of the imago made from the E01"
[[ $(meta "$W/back.imago" case.examiner) == "Ana Müller" ]] || err "case metadata lost through E01"
run 0 "$IMAGO" verify -q "$W/back.imago" --against "$W/src"
finish

begin e01_from_ewfacquire
# EnCase 6 with MD5 + SHA-1, deflate, unattended, as examiners make them.
ewfacquire -u -q -c fast -d sha1 -C EWF-1 -e examiner -t "$W/ext" "$W/src" >"$W/ewfacq.out" 2>&1 ||
	err "ewfacquire failed: $(tail -3 "$W/ewfacq.out")"
run 0 "$IMAGO" verify "$W/ext.E01"
run 0 "$IMAGO" convert -q "$W/ext.E01" "$W/ext.imago"
[[ $(stored "$W/ext.imago") == "$(sums "$W/src")" ]] || err "digests of the converted ewfacquire E01"
[[ $(meta "$W/ext.imago" case.number) == "EWF-1" ]] || err "case number from the E01 header"
finish

begin e01_damaged_is_refused
ewfacquire -u -q -c none -t "$W/plain" "$W/src" >/dev/null 2>&1 || err "ewfacquire failed"
cp -- "$W/plain.E01" "$W/bad.E01"
# a byte of chunk data in the middle of the media (uncompressed: the source's bytes)
"$PY" - "$W/src" "$W/bad.E01" <<'PYEOF' || err "cannot find the data in the E01"
import sys
src = open(sys.argv[1], "rb").read()
needle = src[1 << 20:(1 << 20) + 64]
with open(sys.argv[2], "r+b") as f:
    data = f.read()
    at = data.find(needle)
    if at < 0:
        sys.exit(1)
    f.seek(at + 10)
    f.write(bytes([data[at + 10] ^ 0x55]))
PYEOF
run 3 "$IMAGO" verify -q "$W/bad.E01"
run 3 "$IMAGO" convert -q "$W/bad.E01" "$W/bad.raw"
absent "$W/bad.raw"
finish

# ---------------------------------------------------------------- split raw

begin convert_split_raw_with_hash_log
run 0 "$IMAGO" convert -q --split 1M "$W/a.imago" "$W/split"
n=$(ls "$W"/split.[0-9][0-9][0-9] | wc -l)
((n == 7)) || err "$n pieces, want 7 (6 MiB + 512 bytes in 1 MiB pieces)"
[[ $(fsize "$W/split.001") == $MiB && $(fsize "$W/split.007") == 512 ]] || err "piece sizes"
cat "$W"/split.[0-9][0-9][0-9] >"$W/split.all"
same "$W/split.all" "$W/src"
for h in $(sums "$W/src"); do grep -q -- "$h" "$W/split.log" || err "hash log lacks $h"; done
run 5 "$IMAGO" convert -q --split 1M "$W/a.imago" "$W/split"
finish

# ---------------------------------------------------------------- a source that changes

# The acquisition is stopped (SIGSTOP) once its first chunk is in the image, the first MiB
# of the source is rewritten, and it goes on. The image holds what was read; the changed
# source no longer matches it, and verify --against says so (exit 4).
begin source_changed_during_acquisition
make_random "$W/live" $MiB 31
truncate -s $((1024 * MiB)) "$W/live" # sparse: the rest reads fast, the digests take time
timeout -k 5 "$T_TIMEOUT" "$IMAGO" acquire -q -T 1 "$W/live" "$W/live.imago" \
	</dev/null >"$W/stdout" 2>"$W/stderr" &
pid=$!
caught=
for _ in $(seq 1 2000); do
	tmpf=$(ls "$W"/live.imago.imago-tmp-* 2>/dev/null | head -1)
	if [[ -n $tmpf ]] && (($(stat -c %s -- "$tmpf" 2>/dev/null || echo 0) > MiB)); then
		kill -STOP "$pid" 2>/dev/null && caught=1
		break
	fi
	sleep 0.005
done
if [[ -n $caught && ! -e $W/live.imago ]]; then
	dd if=/dev/urandom of="$W/live" bs=4096 count=1 seek=10 conv=notrunc status=none
	kill -CONT "$pid"
else
	kill -CONT "$pid" 2>/dev/null
	err "could not stop the acquisition after its first chunk (it ran too fast)"
fi
wait $pid
RC=$?
check_rc 0 "$IMAGO" acquire "$W/live"
run 4 "$IMAGO" verify -q "$W/live.imago" --against "$W/live"
[[ $(meta "$W/live.imago" hash.md5) != "$(md5sum <"$W/live" | cut -c1-32)" ]] ||
	err "the stored MD5 equals the changed source's: the change went unnoticed"
rm -f -- "$W/live" "$W/live.imago"
finish

# ---------------------------------------------------------------- unreadable sectors

# As tests/cli/faults.sh: a btrfs file whose data block at 1 MiB is damaged underneath
# gives a real EIO for the 4096 bytes at 1 MiB, read directly and through a loop device.
make_random "$W/rnd" $((4 * MiB)) 11
eio_setup() {
	EIO_WHY="mkfs.btrfs failed"
	truncate -s $((128 * MiB)) "$W/btrfs.img"
	mkfs.btrfs -q -f "$W/btrfs.img" >/dev/null 2>&1 || return 1
	loop_attach "$W/btrfs.img"
	local bt_loop=$LOOP
	EIO_WHY="cannot mount the btrfs"
	mkdir -p "$W/bt"
	mount "$bt_loop" "$W/bt" 2>/dev/null || return 1
	defer umount -l "$W/bt"
	cp -- "$W/rnd" "$W/bt/src"
	umount "$W/bt" || return 1
	EIO_WHY="cannot find the source's data in the btrfs image"
	"$PY" - "$W/rnd" "$W/btrfs.img" <<'PYEOF' || return 1
import sys
data = open(sys.argv[1], "rb").read()
needle = data[1 << 20:(1 << 20) + 4096]
with open(sys.argv[2], "r+b") as f:
    fs = f.read()
    at = fs.find(needle)
    if at < 0 or fs.find(needle, at + 1) >= 0:
        sys.exit(1)
    f.seek(at + 100)
    f.write(bytes([fs[at + 100] ^ 0xFF]))
PYEOF
	EIO_WHY="cannot mount the btrfs again"
	mount "$bt_loop" "$W/bt" || return 1
	EIO_WHY="the damaged btrfs file reads without error"
	dd if="$W/bt/src" of=/dev/null bs=64k status=none 2>/dev/null && return 1
	EIO_FILE=$W/bt/src
	loop_attach "$EIO_FILE" -r
	EIO_LOOP=$LOOP
}
# What the digests must be: the source with the unreadable 4096 bytes as zeros.
"$PY" - "$W/rnd" "$W/rnd.zeroed" <<'PYEOF'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
d[1 << 20:(1 << 20) + 4096] = bytes(4096)
open(sys.argv[2], "wb").write(d)
PYEOF

if ! eio_setup; then
	for c in acquire_unreadable_file acquire_unreadable_device unreadable_to_e01; do
		fail "$c" "setup: $EIO_WHY"
	done
else
	for kind in file device; do
		begin "acquire_unreadable_$kind"
		srcp=$EIO_FILE
		[[ $kind == device ]] && srcp=$EIO_LOOP
		run 6 "$IMAGO" acquire -q --retries 1 "$srcp" "$W/eio-$kind.imago"
		grep -q 'unreadable: bytes 1048576-1052671 (4096 bytes)' "$W/stderr" ||
			err "stderr does not name the range: $(head -c 300 "$W/stderr")"
		grep -q '^  bytes 1048576-1052671 (4096 bytes; sectors 2048-2055): Input/output error' \
			"$W/eio-$kind.imago.log" || err "the log does not list the range"
		grep -q '^Result: *acquired, with unreadable sectors' "$W/eio-$kind.imago.log" || err "log result"
		[[ $(meta "$W/eio-$kind.imago" acquire.read_errors) == "1048576+4096" ]] ||
			err "acquire.read_errors: $(meta "$W/eio-$kind.imago" acquire.read_errors)"
		[[ $("$IMAGO" info --json "$W/eio-$kind.imago" | jq .extents.bad.bytes) == 4096 ]] ||
			err "the extent map does not hold 4096 BAD bytes"
		[[ $(stored "$W/eio-$kind.imago") == "$(sums "$W/rnd.zeroed")" ]] ||
			err "digests are not those of the source with the bad sectors as zeros"
		run 0 "$IMAGO" verify -q "$W/eio-$kind.imago"
		run 0 "$IMAGO" convert -q "$W/eio-$kind.imago" "$W/eio-$kind.raw"
		same "$W/eio-$kind.raw" "$W/rnd.zeroed"
		finish
	done

	begin unreadable_to_e01
	run 0 "$IMAGO" convert -q "$W/eio-file.imago" "$W/eio.E01"
	ewfverify -q "$W/eio.E01" >/dev/null 2>&1 || err "ewfverify rejects the E01"
	ewfinfo "$W/eio.E01" >"$W/eio.ewfinfo" 2>&1
	grep -q "2048 - 2055" "$W/eio.ewfinfo" || err "ewfinfo does not list the acquiry error: $(grep -i error "$W/eio.ewfinfo")"
	run 0 "$IMAGO" convert -q "$W/eio.E01" "$W/eio-back.imago"
	[[ $(meta "$W/eio-back.imago" acquire.read_errors) == "1048576+4096" ]] ||
		err "the acquiry error did not come back from the E01"
	finish
fi

done_testing
