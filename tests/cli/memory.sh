#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Bounded memory (issue 2, Bar: "peak memory under 256 MiB whatever the source size"):
# the peak resident set of create, verify and restore, measured by GNU time, with the
# largest chunks, many threads and the highest level, and on a large sparse device.
# A measurement of memory, not of speed: nothing here is timed.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_imago
need python3 truncate dd
[[ -x /usr/bin/time ]] || die_setup "missing /usr/bin/time (package time)"

MiB=$((1024 * 1024))
LIMIT_KB=$((256 * 1024))
# A sanitizer build (make check-sanitize runs the suite with one) keeps shadow memory and
# a quarantine of freed blocks: its peak says nothing about imago's own bound, so there
# the limit is 1 GiB, which still catches memory that grows with the source.
if { ldd "$IMAGO" 2>/dev/null | grep -q 'libasan'; } || grep -aq '__asan_init' "$IMAGO" 2>/dev/null; then
	LIMIT_KB=$((1024 * 1024))
fi

# peak WANT-RC LIMIT-KB CMD...: run CMD under GNU time; exit code WANT-RC and a peak
# resident set (of CMD and all it waited for) under LIMIT-KB.
peak() {
	local want=$1 lim=$2 kb
	shift 2
	/usr/bin/time -o "$W/rss" -f '%M' "$@" </dev/null >"$W/stdout" 2>"$W/stderr"
	RC=$?
	check_rc "$want" "$@" || return 1
	kb=$(tail -1 "$W/rss")
	[[ $kb =~ ^[0-9]+$ ]] || {
		err "no peak memory figure from GNU time: $(head -c 200 "$W/rss")"
		return 1
	}
	((kb < lim)) || err "'$(describe "$@")' peaked at $((kb / 1024)) MiB, limit $((lim / 1024)) MiB"
}

make_random "$W/rnd" $((96 * MiB)) 21
img=$W/rnd.imago

begin create_16m_chunks_8_threads
peak 0 "$LIMIT_KB" "$IMAGO" create -q -T 8 --chunk-size 16M "$W/rnd" "$img"
finish

begin verify_16m_chunks_8_threads
peak 0 "$LIMIT_KB" "$IMAGO" verify -q "$img"
finish

begin restore_16m_chunks_8_threads
peak 0 "$LIMIT_KB" "$IMAGO" restore -q -T 8 "$img" "$W/rnd.out" && same "$W/rnd" "$W/rnd.out"
rm -f -- "$W/rnd.out"
finish

begin restore_from_pipe_16m_chunks_8_threads
printf -v cmd 'cat %q | %q restore -q -T 8 - %q' "$img" "$IMAGO" "$W/rnd.out"
peak 0 "$LIMIT_KB" bash -c "$cmd" && same "$W/rnd" "$W/rnd.out"
rm -f -- "$W/rnd.out" "$img"
finish

make_text "$W/text" $((48 * MiB))
begin create_level_19_16m_chunks_8_threads
peak 0 "$LIMIT_KB" "$IMAGO" create -q -T 8 --level 19 --chunk-size 16M "$W/text" "$W/text.imago" &&
	run 0 "$IMAGO" verify -q "$W/text.imago"
rm -f -- "$W/text.imago" "$W/text"
finish

# A 4 GiB sparse device with data at both ends and in the middle: memory does not grow
# with the device, and the restored copy is sparse too.
sp=$W/sparse
truncate -s $((4096 * MiB)) "$sp"
make_random "$W/blk" 65536 22
for at in 0 $((2048 * MiB + 12345)) $((4096 * MiB - 65536)); do
	dd if="$W/blk" of="$sp" bs=65536 seek="$at" oflag=seek_bytes conv=notrunc status=none
done
begin create_4g_sparse
peak 0 "$LIMIT_KB" "$IMAGO" create -q "$sp" "$W/sparse.imago"
finish
begin restore_4g_sparse
if peak 0 "$LIMIT_KB" "$IMAGO" restore -q "$W/sparse.imago" "$W/sparse.out"; then
	[[ $(fsize "$W/sparse.out") == $((4096 * MiB)) ]] || err "restored size $(fsize "$W/sparse.out")"
	for at in 0 $((2048 * MiB + 12345)) $((4096 * MiB - 65536)); do
		dd if="$W/sparse.out" of="$W/got" bs=65536 skip="$at" count=1 iflag=skip_bytes status=none
		same "$W/blk" "$W/got"
	done
	a=$(alloc_bytes "$W/sparse.out")
	((a < 64 * MiB)) || err "restored 4 GiB sparse file has $a bytes allocated"
fi
rm -f -- "$W/sparse.out"
finish
begin verify_against_4g_sparse
peak 0 "$LIMIT_KB" "$IMAGO" verify -q "$W/sparse.imago" --against "$sp"
finish

done_testing
