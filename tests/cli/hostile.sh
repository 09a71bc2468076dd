#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Hostile inputs (issue 7, item 4), written by tests/tools/mkhostile.py with every
# checksum valid so that only the lie itself is wrong:
#   - images whose sizes and counts would make a careless reader allocate without bound
#     (section counts and lengths up to 2^62, index count 2^59 whose byte size wraps to 0,
#     allocation map of 2^40 runs, device size 2^63 and 2^64-1, chunk size 2^31), index
#     entries outside the file, overlapping, out of order or duplicated, frames whose
#     stored or logical length lies, a ZERO frame of 2^62 bytes, and decompression bombs
#     (a 33 KB zstd payload that inflates to 1 GiB, one that inflates to a chunk + 1):
#     (and a DATA frame holding noise where the maps say FREE: verify and restore find
#     the digest wrong, the library's pread returns zeros there, as the format says),
#     verify, restore (file and pipe) and info each refuse with exit 3 and one line on
#     stderr, within a small peak memory (GNU time %M) (info reads no chunks, so it
#     reads the images whose lies are inside a chunk);
#   - raw disks whose partition table lies (EBR chains that loop or run to 300 links,
#     overlapping partitions, partitions past the end of the disk or reversed, GPT entry
#     arrays of 2^32 entries or 2 GiB entries): a partition table is never trusted
#     further than it checks out, so info says what is wrong in a warning and create
#     falls back to copying the whole disk; the restored disk is the original byte for
#     byte, and memory stays small.
# A valid image from the same generator is read normally, which shows the generator
# writes the format right and only the lies make the difference.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_imago
need python3 zstd
[[ -x /usr/bin/time ]] || die_setup "missing /usr/bin/time (package time)"
GEN=$IMAGO_SRC/tests/tools/mkhostile.py
[[ -f $GEN ]] || die_setup "no $GEN"

# Peak resident set allowed (KiB): the images are tiny, so anything that grows with a
# lie shows. A sanitizer build keeps shadow memory and a quarantine: 1 GiB there.
LIMIT_KB=$((64 * 1024))
if { ldd "$IMAGO" 2>/dev/null | grep -q 'libasan'; } || grep -aq '__asan_init' "$IMAGO" 2>/dev/null; then
	LIMIT_KB=$((1024 * 1024))
fi

# peak WANT CMD...: like run, under GNU time; the peak resident set must stay under
# LIMIT_KB.
peak() {
	local want=$1 kb
	shift
	timeout -k 5 "$T_TIMEOUT" /usr/bin/time -o "$W/rss" -f '%M' "$@" </dev/null >"$W/stdout" 2>"$W/stderr"
	RC=$?
	check_rc "$want" "$@" || return 1
	kb=$(tail -1 "$W/rss")
	[[ $kb =~ ^[0-9]+$ ]] || {
		err "no peak memory figure from GNU time: $(head -c 200 "$W/rss")"
		return 1
	}
	((kb < LIMIT_KB)) || err "'$(describe "$@")' peaked at $((kb / 1024)) MiB, limit $((LIMIT_KB / 1024)) MiB"
}

# ---------------------------------------------------------------- images

begin generator_valid_image
"$PY" "$GEN" image valid "$W/valid.imago" || err "mkhostile.py failed"
run 0 "$IMAGO" verify -q "$W/valid.imago" && run 0 "$IMAGO" restore -q "$W/valid.imago" "$W/valid.out"
# the device: what the generator put there (checked against the trailer's digest by verify)
[[ $(fsize "$W/valid.out" 2>/dev/null) == 267144 ]] || err "restored device is $(fsize "$W/valid.out" 2>/dev/null) bytes, want 267144"
rm -f -- "$W/valid.out"
finish

# An image of 851 bytes claiming a 2 EiB device, all FREE: its digest would take
# days to recompute. verify must stay interruptible (SIGTERM, as timeout(1) sends, and
# SIGINT) and say so in one line; restore to a file refuses the size at once.
begin free_device_2_61_interruptible
"$PY" "$GEN" image free_device_2_61 "$W/huge.imago" || err "mkhostile.py failed"
run 0 "$IMAGO" info "$W/huge.imago"
for sig in TERM INT; do
	"$PY" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "$IMAGO" verify -q "$W/huge.imago" </dev/null >/dev/null 2>"$W/stderr" &
	pid=$!
	sleep 1
	kill -s "$sig" "$pid" 2>/dev/null || err "verify of a 2 EiB device ended within 1 s (it should still be hashing)"
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		err "verify still running 5 s after SIG$sig"
		kill -9 "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	RC=$?
	((RC == 1)) || err "verify exited $RC after SIG$sig, want 1"
	stderr_one_line '^imago: verify: interrupted' 'huge\.imago'
done
run 1 "$IMAGO" restore -q "$W/huge.imago" "$W/huge.out" && stderr_one_line '^imago: restore: ' 'huge\.out'
rm -f -- "$W/huge.imago" "$W/huge.out"
finish

for c in $("$PY" "$GEN" list image); do
	[[ $c == valid || $c == free_device_2_61 ]] && continue
	begin "image_$c"
	if ! "$PY" "$GEN" image "$c" "$W/h.imago" 2>"$W/gen.err"; then
		err "mkhostile.py image $c failed: $(tail -1 "$W/gen.err")"
		finish
		continue
	fi
	peak 3 "$IMAGO" verify -q "$W/h.imago" && stderr_one_line '^imago: verify: ' 'h\.imago'
	peak 3 "$IMAGO" restore -q "$W/h.imago" "$W/out" && stderr_one_line '^imago: restore: ' 'h\.imago'
	rm -f -- "$W/out"
	printf -v cmd 'cat %q | %q restore -q - %q' "$W/h.imago" "$IMAGO" "$W/out"
	peak 3 bash -c "$cmd" && stderr_one_line '^imago: restore: '
	rm -f -- "$W/out"
	case $c in
	frame_stored_length_shorter | zero_frame_2_62 | bomb_* | free_bytes_in_data_frame)
		# info reads the structures, not the chunks (it reads those of the partition
		# map and warns when they are damaged): these lies are in chunks.
		peak 0 "$IMAGO" info "$W/h.imago" ;;
	*) peak 3 "$IMAGO" info "$W/h.imago" && stderr_one_line '^imago: info: ' 'h\.imago' ;;
	esac
	if [[ $c == free_bytes_in_data_frame ]]; then
		# the library's read path returns zeros for FREE bytes, not the frame's noise
		"$PY" "$GEN" device "$c" "$W/h.dev" &&
			run 0 "$IMAGO_BUILD/tests/preadcheck" "$W/h.imago" "$W/h.dev"
		rm -f -- "$W/h.dev"
	fi
	rm -f -- "$W/h.imago"
	finish
done

# ---------------------------------------------------------------- partition tables

# What info must say about each disk (ERE), "" for nothing in particular.
declare -A why=(
	[ebr_loop_self]='loops' [ebr_loop_two]='loops' [ebr_chain_300]='more than 256'
	[mbr_overlap]='overlap' [mbr_past_end]='past the end' [mbr_start_past_end]='past the end'
	[gpt_entries_2_32]='larger than 4194304' [gpt_entry_size_2_31]='larger than 4194304'
	[gpt_entry_size_0]='entry size 0' [gpt_overlap]='overlap' [gpt_past_end]='no partition'
	[gpt_reversed]='no partition' [gpt_first_usable_2_63]=''
)
for c in $("$PY" "$GEN" list disk); do
	begin "disk_$c"
	if ! "$PY" "$GEN" disk "$c" "$W/h.disk" 2>"$W/gen.err"; then
		err "mkhostile.py disk $c failed: $(tail -1 "$W/gen.err")"
		finish
		continue
	fi
	[[ -v why[$c] ]] || err "no expectation for disk case $c"
	peak 0 "$IMAGO" info --raw "$W/h.disk"
	if [[ -n ${why[$c]:-} ]] && ! grep -Eiq "^imago: info: warning: .*${why[$c]}" "$W/stderr"; then
		err "info does not warn /${why[$c]}/: $(head -c 300 "$W/stderr")"
	fi
	peak 0 "$IMAGO" create -q "$W/h.disk" "$W/h.imago" &&
		peak 0 "$IMAGO" restore -q "$W/h.imago" "$W/h.out" && same "$W/h.disk" "$W/h.out"
	rm -f -- "$W/h.disk" "$W/h.imago" "$W/h.out"
	finish
done

done_testing
