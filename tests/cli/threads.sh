#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The multi-threaded paths with --threads 4 and small chunks (many chunks in flight at
# once): create (sector and smart, to a file and to a pipe), verify, verify --against,
# restore (from a file and from a pipe), clone. Every result is checked against the
# source and against the same command with --threads 1. Small and quick, so that the
# ThreadSanitizer pass (make check-tsan, part of make check) can run it: a data race
# there is a failure even when the bytes come out right.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_imago
need mkfs.ext4

export SOURCE_DATE_EPOCH=1700000000
make_mixed "$W/src"
mkdir -p "$W/tree"
make_text "$W/tree/a" 600000
make_random "$W/tree/b" 400000 4
truncate -s 8M "$W/fs"
mkfs.ext4 -q -F -E root_owner=0:0 -d "$W/tree" "$W/fs" >/dev/null 2>&1 || die_setup "mkfs.ext4 -d failed"

for s in src fs; do
	begin "create_${s}_threads_4_same_as_1"
	run 0 "$IMAGO" create -q -T 4 --chunk-size 64K "$W/$s" "$W/$s.4.imago" &&
		run 0 "$IMAGO" create -q -T 1 --chunk-size 64K "$W/$s" "$W/$s.1.imago" &&
		same "$W/$s.1.imago" "$W/$s.4.imago"
	finish

	begin "create_${s}_threads_4_to_pipe"
	printf -v cmd '%q create -q -T 4 --chunk-size 64K %q - | cat > %q' "$IMAGO" "$W/$s" "$W/$s.p.imago"
	run 0 bash -c "$cmd" && same "$W/$s.1.imago" "$W/$s.p.imago"
	finish

	begin "verify_${s}_threads_4"
	run 0 "$IMAGO" verify -q -T 4 "$W/$s.4.imago"
	finish

	begin "restore_${s}_threads_4"
	run 0 "$IMAGO" restore -q -T 4 "$W/$s.4.imago" "$W/$s.r4" &&
		run 0 "$IMAGO" restore -q -T 1 "$W/$s.4.imago" "$W/$s.r1" &&
		same "$W/$s.r1" "$W/$s.r4"
	[[ $s == src ]] && same "$W/src" "$W/$s.r4"
	finish

	begin "restore_${s}_threads_4_from_pipe"
	run_in "$W/$s.4.imago" 0 "$IMAGO" restore -q -T 4 - "$W/$s.rp" && same "$W/$s.r1" "$W/$s.rp"
	finish

	begin "verify_${s}_against_threads_4"
	run 0 "$IMAGO" verify -q -T 4 "$W/$s.4.imago" --against "$W/$s.r4"
	finish

	begin "clone_${s}_threads_4"
	run 0 "$IMAGO" clone -q -T 4 "$W/$s" "$W/$s.cl" && same "$W/$s.r1" "$W/$s.cl"
	finish
done

# A damaged chunk found by one of four workers stops the others cleanly.
begin verify_damaged_threads_4
cp -- "$W/src.4.imago" "$W/bad.imago"
flip "$W/bad.imago" $(($(u64 "$W/bad.imago" 56) + 48 + 100)) 1
run 3 "$IMAGO" verify -q -T 4 "$W/bad.imago" && stderr_one_line '^imago: verify: ' chunk
run 3 "$IMAGO" restore -q -T 4 "$W/bad.imago" "$W/bad.out" && stderr_one_line '^imago: restore: ' chunk
finish

done_testing
