#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Round trips: create -> verify -> restore -> the copy is byte-identical, for random,
# text, sparse, all-zero, odd-sized and empty sources, chunk sizes and levels, through
# files, pipes and loop devices; info --json agrees with the source; the content digest
# does not depend on options; images do not depend on the thread count.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_imago
need_root
need python3 jq losetup blockdev stat truncate split sha256sum

MiB=$((1024 * 1024))

# info_matches IMAGE SOURCE: info --json parses; device_size and digest are the source's.
info_matches() {
	local img=$1 src=$2 size digest json
	run 0 "$IMAGO" info --json "$img" || return 1
	json=$W/info.json
	cp -- "$W/stdout" "$json"
	if ! jq -e 'type == "object"' "$json" >/dev/null 2>&1; then
		err "info --json is not one JSON object: $(head -c 200 "$json")"
		return 1
	fi
	size=$(dev_size "$src")
	[[ $(jq -r '.device_size' "$json") == "$size" ]] ||
		err "info --json device_size=$(jq -c '.device_size' "$json"), want $size"
	digest=$(content_digest "$src")
	[[ $(jq -r '.digest' "$json") == "$digest" ]] ||
		err "info --json digest=$(jq -c '.digest' "$json"), want $digest (docs/FORMAT.md §7)"
}

# rt NAME SOURCE [create options...]: the whole round trip through files.
rt() {
	local name=$1 src=$2
	shift 2
	local img=$W/$name.imago out=$W/$name.out
	begin "$name"
	if run 0 "$IMAGO" create -q "$@" -- "$src" "$img" &&
		run 0 "$IMAGO" verify -q "$img" &&
		run 0 "$IMAGO" restore -q "$img" "$out"; then
		same "$src" "$out"
		info_matches "$img" "$src"
	fi
	finish
	RT_IMG=$img
	rm -f -- "$out"
}

# ---------------------------------------------------------------- version

begin version
run 0 "$IMAGO" --version && { grep -q '1\.0\.0' "$W/stdout" || err "--version does not say 1.0.0: $(head -c 100 "$W/stdout")"; }
finish

# ---------------------------------------------------------------- kinds of sources

make_random "$W/random" $((3 * MiB + 12345)) 1
rt random "$W/random"
rm -f -- "$RT_IMG"

make_text "$W/text" $((6 * MiB))
rt text "$W/text"
begin text_compresses
isz=$(fsize "$RT_IMG")
((isz < 6 * MiB / 2)) || err "image of 6 MiB of text is $isz bytes, want < half"
finish
rm -f -- "$RT_IMG" "$W/text"

make_zero "$W/zeros" $((8 * MiB))
rt zeros "$W/zeros"
begin zeros_stored_as_nothing
isz=$(fsize "$RT_IMG")
((isz < 4096)) || err "image of 8 MiB of zeros is $isz bytes, want < 4096"
run 0 "$IMAGO" restore -q "$RT_IMG" "$W/zeros.out" && {
	same "$W/zeros" "$W/zeros.out"
	a=$(alloc_bytes "$W/zeros.out")
	((a < MiB)) || err "restored all-zero file has $a bytes allocated, want holes (< 1 MiB)"
}
finish
rm -f -- "$RT_IMG" "$W/zeros" "$W/zeros.out"

# Sparse: 256 MiB apparent, three written 4 KiB blocks (one not sector-aligned).
sparse=$W/sparse
truncate -s $((256 * MiB)) "$sparse"
make_random "$W/blk" 4096 42
dd if="$W/blk" of="$sparse" bs=4096 seek=0 conv=notrunc status=none
dd if="$W/blk" of="$sparse" bs=1 seek=$((100 * MiB + 123)) conv=notrunc status=none
dd if="$W/blk" of="$sparse" bs=4096 seek=$((256 * MiB / 4096 - 1)) conv=notrunc status=none
rt sparse "$sparse"
begin sparse_image_small
isz=$(fsize "$RT_IMG")
((isz < MiB)) || err "image of a sparse 256 MiB file with 12 KiB of data is $isz bytes, want < 1 MiB"
finish
begin sparse_restore_has_holes
if run 0 "$IMAGO" restore -q "$RT_IMG" "$W/sparse.out"; then
	same "$sparse" "$W/sparse.out"
	a=$(alloc_bytes "$W/sparse.out")
	((a < 16 * MiB)) || err "restored file has $a bytes allocated of 256 MiB, want holes (< 16 MiB)"
fi
rm -f -- "$W/sparse.out"
finish
begin sparse_restore_stdin_has_holes
if run_in "$RT_IMG" 0 "$IMAGO" restore -q - "$W/sparse.out"; then
	same "$sparse" "$W/sparse.out"
	a=$(alloc_bytes "$W/sparse.out")
	((a < 16 * MiB)) || err "restored (from stdin) file has $a bytes allocated of 256 MiB, want holes (< 16 MiB)"
fi
rm -f -- "$W/sparse.out"
finish
rm -f -- "$RT_IMG" "$sparse"

# Odd sizes: not a multiple of the chunk or sector size.
for size in 1 511 513 4097 $((MiB + 1)) $((3 * MiB - 7)); do
	make_random "$W/odd" "$size" "$size"
	rt "odd_$size" "$W/odd"
	rm -f -- "$RT_IMG"
done
make_random "$W/odd" $((MiB + 1)) 3
rt "odd_$((MiB + 1))_chunk64k" "$W/odd" --chunk-size 64K
rm -f -- "$RT_IMG" "$W/odd"

# Empty source.
: >"$W/empty"
begin empty
if run 0 "$IMAGO" create -q "$W/empty" "$W/empty.imago" &&
	run 0 "$IMAGO" verify -q "$W/empty.imago" &&
	run 0 "$IMAGO" restore -q "$W/empty.imago" "$W/empty.out"; then
	[[ -f $W/empty.out && $(fsize "$W/empty.out") == 0 ]] || err "restored empty source is not an empty file"
	info_matches "$W/empty.imago" "$W/empty"
fi
finish
begin empty_stdin
if run 0 "$IMAGO" create -q "$W/empty" - && cp -- "$W/stdout" "$W/empty2.imago" &&
	run_in "$W/empty2.imago" 0 "$IMAGO" restore -q - "$W/empty2.out"; then
	[[ -f $W/empty2.out && $(fsize "$W/empty2.out") == 0 ]] || err "restored empty source is not an empty file"
fi
finish

# ---------------------------------------------------------------- options

make_mixed "$W/mixed"
for cs in 64K:65536 16M:16777216; do
	rt "chunk_${cs%%:*}" "$W/mixed" --chunk-size "${cs%%:*}"
	begin "chunk_${cs%%:*}_in_header"
	got=$(u32 "$RT_IMG" 40)
	[[ $got == "${cs##*:}" ]] || err "header chunk_size=$got, want ${cs##*:}"
	finish
	rm -f -- "$RT_IMG"
done

make_text "$W/text4" $((4 * MiB))
declare -A lvl_size
for lvl in 1 19; do
	rt "level_$lvl" "$W/text4" --level "$lvl"
	begin "level_${lvl}_in_header"
	got=$(u8 "$RT_IMG" 53)
	[[ $got == "$lvl" ]] || err "header level=$got, want $lvl"
	finish
	lvl_size[$lvl]=$(fsize "$RT_IMG")
	rm -f -- "$RT_IMG"
done
begin level_19_not_larger
((lvl_size[19] <= lvl_size[1])) || err "level 19 image ${lvl_size[19]} bytes > level 1 image ${lvl_size[1]} bytes"
finish

# -l and -T short forms, restore -T.
begin short_options
if run 0 "$IMAGO" create -q -l 5 -T 1 "$W/mixed" "$W/short.imago" &&
	run 0 "$IMAGO" restore -q -T 1 "$W/short.imago" "$W/short.out"; then
	same "$W/mixed" "$W/short.out"
	[[ $(u8 "$W/short.imago" 53) == 5 ]] || err "-l 5 not recorded in the header"
fi
rm -f -- "$W/short.imago" "$W/short.out"
finish

# ---------------------------------------------------------------- pipes

begin pipe_create_restore
timeout -k 5 "$T_TIMEOUT" "$IMAGO" create -q "$W/mixed" - 2>"$W/e1" |
	timeout -k 5 "$T_TIMEOUT" "$IMAGO" restore -q - "$W/pipe.out" 2>"$W/e2"
st=("${PIPESTATUS[@]}")
[[ ${st[0]} == 0 ]] || err "create to stdout exited ${st[0]}: $(head -c 200 "$W/e1")"
[[ ${st[1]} == 0 ]] || err "restore from stdin exited ${st[1]}: $(head -c 200 "$W/e2")"
ok && same "$W/mixed" "$W/pipe.out"
rm -f -- "$W/pipe.out"
finish

begin pipe_create_then_verify
export SOURCE_DATE_EPOCH=1700000000
timeout -k 5 "$T_TIMEOUT" "$IMAGO" create -q "$W/mixed" - >"$W/piped.imago" 2>"$W/e1"
rc=$?
[[ $rc == 0 ]] || err "create to stdout exited $rc: $(head -c 200 "$W/e1")"
if ok && run 0 "$IMAGO" verify -q "$W/piped.imago" && info_matches "$W/piped.imago" "$W/mixed"; then
	# The same bytes as an image written to a file: the writer never seeks.
	run 0 "$IMAGO" create -q "$W/mixed" "$W/filed.imago" && same "$W/filed.imago" "$W/piped.imago"
fi
unset SOURCE_DATE_EPOCH
rm -f -- "$W/filed.imago"
finish

begin pipe_restore_stdin_from_file
if run_in "$W/piped.imago" 0 "$IMAGO" restore -q - "$W/stdin.out"; then
	same "$W/mixed" "$W/stdin.out"
fi
rm -f -- "$W/stdin.out"
finish

begin restore_stdin_seekable
if run_redir "$W/piped.imago" 0 "$IMAGO" restore -q - "$W/stdin.out"; then
	same "$W/mixed" "$W/stdin.out"
fi
rm -f -- "$W/stdin.out" "$W/piped.imago"
finish

# ---------------------------------------------------------------- loop devices

# A 4 MiB source (a multiple of the sector size, as a loop device needs).
cp -- "$W/mixed" "$W/disk"
truncate -s $((4 * MiB)) "$W/disk"
loop_attach "$W/disk" -r
src_loop=$LOOP
rt loop_source "$src_loop"
loop_img=$RT_IMG

begin loop_source_sector_size
ls=$(u32 "$loop_img" 44)
[[ $ls == "$(blockdev --getss "$src_loop")" ]] || err "header logical_sector_size=$ls, want $(blockdev --getss "$src_loop")"
finish

# Target loop device of the same size, full of junk: zero ranges must be written as zeros.
make_random "$W/junk" $((4 * MiB)) 77
loop_attach "$W/junk"
dst_loop=$LOOP
begin loop_target
if run 0 "$IMAGO" restore -q "$loop_img" "$dst_loop"; then
	same "$W/disk" "$dst_loop"
fi
finish

make_random "$W/junk2" $((4 * MiB)) 78
loop_attach "$W/junk2"
dst_loop2=$LOOP
begin loop_target_from_stdin
if run_in "$loop_img" 0 "$IMAGO" restore -q - "$dst_loop2"; then
	same "$W/disk" "$dst_loop2"
fi
finish

make_random "$W/junk3" $((6 * MiB)) 79
loop_attach "$W/junk3"
dst_loop3=$LOOP
begin loop_target_larger
if run 0 "$IMAGO" restore -q "$loop_img" "$dst_loop3"; then
	same "$W/disk" "$dst_loop3" $((4 * MiB))
fi
finish

# An existing junk file of the same size, overwritten with --force.
make_random "$W/junkfile" $((4 * MiB)) 80
begin force_over_junk_file
if run 0 "$IMAGO" restore -q --force "$loop_img" "$W/junkfile"; then
	same "$W/disk" "$W/junkfile"
fi
finish

# An existing empty file needs no --force.
: >"$W/emptytarget"
begin existing_empty_target
if run 0 "$IMAGO" restore -q "$loop_img" "$W/emptytarget"; then
	same "$W/disk" "$W/emptytarget"
fi
finish
rm -f -- "$W/junkfile" "$W/emptytarget"

# ---------------------------------------------------------------- digest and determinism

begin digest_is_the_spec_recipe
if run 0 "$IMAGO" info --json "$loop_img"; then
	want=$(content_digest_recipe "$W/disk")
	got=$(jq -r '.digest' "$W/stdout" 2>/dev/null)
	[[ $got == "$want" ]] || err "digest $got, the shell recipe of docs/FORMAT.md §7 gives $want"
fi
finish

begin info_text
if run 0 "$IMAGO" info "$loop_img"; then
	want=$(content_digest "$W/disk")
	grep -q "$want" "$W/stdout" || err "info does not show the digest $want"
	grep -Eq '(^|[^0-9])4194304([^0-9]|$)|4(\.0+)? MiB' "$W/stdout" || err "info does not show the device size"
fi
finish

begin digest_independent_of_options
declare -A dg
for opt in "--chunk-size 64K" "--chunk-size 4M" "--level 19 --chunk-size 256K" "-T 1"; do
	# shellcheck disable=SC2086 # word splitting of the options is wanted
	run 0 "$IMAGO" create -q $opt "$W/mixed" "$W/dg.imago" || break
	run 0 "$IMAGO" info --json "$W/dg.imago" || break
	dg[$opt]=$(jq -r '.digest' "$W/stdout")
	rm -f -- "$W/dg.imago"
done
if ok; then
	first=${dg["--chunk-size 64K"]}
	[[ $first =~ ^[0-9a-f]{64}$ ]] || err "digest '$first' is not 64 hex digits"
	for opt in "${!dg[@]}"; do
		[[ ${dg[$opt]} == "$first" ]] || err "digest with '$opt' is ${dg[$opt]}, with --chunk-size 64K $first"
	done
fi
finish

make_mixed "$W/mixed2"
cat -- "$W/mixed" >>"$W/mixed2"
for cs in 64K 1M; do
	begin "deterministic_threads_chunk_$cs"
	export SOURCE_DATE_EPOCH=1700000000
	for t in 1 2 8; do
		run 0 "$IMAGO" create -q -T "$t" --chunk-size "$cs" "$W/mixed2" "$W/det$t.imago" || break
	done
	unset SOURCE_DATE_EPOCH
	if ok; then
		same "$W/det1.imago" "$W/det2.imago"
		same "$W/det1.imago" "$W/det8.imago"
	fi
	rm -f -- "$W"/det?.imago
	finish
done

# ---------------------------------------------------------------- quiet and progress

begin quiet
if run 0 "$IMAGO" create -q "$W/mixed" "$W/q.imago"; then
	stderr_empty
	[[ -s $W/stdout ]] && err "create -q wrote to stdout"
	run 0 "$IMAGO" verify -q "$W/q.imago" && {
		stderr_empty
		[[ -s $W/stdout ]] && err "verify -q wrote to stdout"
	}
fi
rm -f -- "$W/q.imago"
finish

begin progress_json
if run 0 "$IMAGO" create --progress=json "$W/mixed2" "$W/p.imago"; then
	n=0 last=
	while IFS= read -r line; do
		[[ $line == '{'* ]] || continue
		n=$((n + 1))
		last=$line
		jq -e '.op == "create" and (.done|type) == "number" and (.total|type) == "number"' <<<"$line" >/dev/null 2>&1 ||
			err "bad progress line: $line"
	done <"$W/stderr"
	((n > 0)) || err "no JSON progress line on stderr: $(head -c 200 "$W/stderr")"
	[[ -n $last ]] && { jq -e '.done == .total' <<<"$last" >/dev/null 2>&1 || err "last progress line has done != total: $last"; }
	[[ -n $last ]] && { jq -e ".total == $(fsize "$W/mixed2")" <<<"$last" >/dev/null 2>&1 || err "progress total is not the source size: $last"; }
fi
rm -f -- "$W/p.imago"
finish

done_testing
