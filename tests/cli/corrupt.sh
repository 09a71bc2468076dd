#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The corruption and truncation matrix (issue 2, item 7). A small image with many frames
# of every kind (DATA_RAW, DATA_ZSTD, ZERO) is checked against docs/FORMAT.md, then
# damaged region by region: bytes flipped at fixed and seeded positions in the header,
# frame headers, payloads, the three sections and the trailer; frames swapped; the file
# cut at many lengths or extended; not an image at all; versions and features a reader
# must refuse (with valid checksums, so only the field itself is wrong) or accept.
# Every damaged image must give exit code 3 from verify, from restore to a file and from
# restore reading stdin, with one line on stderr naming where.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_imago
need python3 xxhsum xxd dd awk fold tac zstd

# A seeded LCG in this shell (not $RANDOM, which bash reseeds in every $(...) subshell):
# the positions and masks are the same on every run. `rnd N` and `mask` set $R.
seed=20240601

# rnd N: a seeded number in [0, N).
next_seed() { seed=$(((seed * 1103515245 + 12345) % 2147483648)); }
rnd() { next_seed; R=$(((seed >> 8) % $1)); }
mask() { next_seed; R=$(((seed >> 8) % 255 + 1)); }

# ---------------------------------------------------------------- the image

export SOURCE_DATE_EPOCH=1700000000
make_mixed "$W/src"
base=$W/base.imago
begin make_image
run 0 "$IMAGO" create -q --chunk-size 64K "$W/src" "$base" || die_setup "cannot make the test image"
run 0 "$IMAGO" verify -q "$base"
finish
chmod a-w "$base"

layout "$base"
SIZE=$L_SIZE META=$L_META EXT=$L_EXT IDX=$L_IDX TRAIL=$L_TRAIL ALLOC=512 FRAMES=$(u64 "$base" 56)
frames "$base" >"$W/frames" || die_setup "cannot walk the frames: $(tail -1 "$W/frames")"

# Frames by kind: "file_offset type logical_offset logical_length stored_length".
F_FIRST=$(head -1 "$W/frames")
F_LAST=$(tail -1 "$W/frames")
F_RAW=$(awk '$2 == 1' "$W/frames" | sed -n 2p)
F_RAW2=$(awk '$2 == 1 && $5 == 65536' "$W/frames" | sed -n 3p)
F_ZSTD=$(awk '$2 == 2' "$W/frames" | sed -n 2p)
F_ZERO=$(awk '$2 == 3' "$W/frames" | sed -n 2p)

# ---------------------------------------------------------------- the layout is the spec's

begin layout_header
[[ $(bytes_hex "$base" 0 8) == 89494d470d0a1a0a ]] || err "header magic $(bytes_hex "$base" 0 8)"
[[ $(u16 "$base" 8) == 1 && $(u16 "$base" 10) == 0 ]] || err "version $(u16 "$base" 8).$(u16 "$base" 10), want 1.0"
[[ $(u32 "$base" 12) == 512 ]] || err "header_size $(u32 "$base" 12)"
[[ $(u64 "$base" 32) == "$(fsize "$W/src")" ]] || err "device_size $(u64 "$base" 32), want $(fsize "$W/src")"
[[ $(u32 "$base" 40) == 65536 ]] || err "chunk_size $(u32 "$base" 40)"
[[ $(u8 "$base" 52) == 1 ]] || err "codec $(u8 "$base" 52)"
# sector mode: the allocation map is one USED run, so the frames start after 512 + 24 + 24 + 8
((FRAMES == 512 + 24 + 24 + 8)) || err "frames_offset $FRAMES, want $((512 + 56))"
[[ $(bytes_hex "$base" 504 8) == "$(xxh3_le "$base" 0 504)" ]] || err "header_checksum is not XXH3 of bytes 0..503"
finish

begin layout_trailer
[[ $(bytes_hex "$base" "$TRAIL" 8) == "$(printf IMGTRAIL | xxd -p)" ]] || err "trailer magic"
[[ $(bytes_hex "$base" $((TRAIL + 120)) 8) == "$(xxh3_le "$base" "$TRAIL" 120)" ]] || err "trailer_checksum is not XXH3 of its bytes 0..119"
[[ $(bytes_hex "$base" $((TRAIL + 96)) 8) == "$(bytes_hex "$base" 504 8)" ]] || err "trailer header_checksum is not the header's"
[[ $(u64 "$base" $((TRAIL + 56))) == "$(fsize "$W/src")" ]] || err "trailer device_size"
finish

# section_len OFFSET: the payload length of the section at OFFSET.
section_len() { u64 "$base" $(($1 + 16)); }
begin layout_sections
for s in "IMGA $ALLOC" "IMGM $META" "IMGE $EXT" "IMGI $IDX"; do
	m=${s% *} o=${s#* }
	[[ $(bytes_hex "$base" "$o" 4) == "$(printf '%s' "$m" | xxd -p)" ]] || err "no $m at $o"
	len=$(section_len "$o")
	[[ $(bytes_hex "$base" $((o + 24 + len)) 8) == "$(xxh3_le "$base" "$o" $((24 + len)))" ]] ||
		err "$m checksum is not XXH3 of the section"
done
((META < EXT && EXT < IDX)) || err "sections out of order: $META $EXT $IDX"
((ALLOC + 24 + $(section_len "$ALLOC") + 8 == FRAMES)) || err "the frames do not start where IMGA ends"
[[ $(u64 "$base" $((ALLOC + 8))) == 1 && $(u64 "$base" $((ALLOC + 24))) == 0 &&
	$(u64 "$base" $((ALLOC + 32))) == "$(fsize "$W/src")" && $(u32 "$base" $((ALLOC + 40))) == 1 ]] ||
	err "IMGA is not one USED run over the device"
((META + 24 + $(section_len "$META") + 8 == EXT)) || err "IMGE does not follow IMGM"
((EXT + 24 + $(section_len "$EXT") + 8 == IDX)) || err "IMGI does not follow IMGE"
((IDX + 24 + $(section_len "$IDX") + 8 == TRAIL)) || err "the index does not end where the trailer begins"
finish

begin layout_frames
n_data=$(awk '$2 == 1 || $2 == 2' "$W/frames" | wc -l)
n_zero=$(awk '$2 == 3' "$W/frames" | wc -l)
stored=$(awk '$2 == 1 || $2 == 2 {s += $5} END {print s + 0}' "$W/frames")
[[ -n $F_RAW && -n $F_RAW2 && -n $F_ZSTD && -n $F_ZERO ]] ||
	err "the test image lacks a kind of frame (raw: '$F_RAW', zstd: '$F_ZSTD', zero: '$F_ZERO')"
[[ $(u64 "$base" $((TRAIL + 32))) == "$n_data" ]] || err "trailer data_frames $(u64 "$base" $((TRAIL + 32))), frames: $n_data"
[[ $(u64 "$base" $((TRAIL + 40))) == "$n_zero" ]] || err "trailer zero_frames $(u64 "$base" $((TRAIL + 40))), frames: $n_zero"
[[ $(u64 "$base" $((TRAIL + 48))) == "$stored" ]] || err "trailer stored_bytes $(u64 "$base" $((TRAIL + 48))), frames: $stored"
prev=-1 end=0
while read -r fo ty lo ll sl; do
	[[ $(bytes_hex "$base" $((fo + 40)) 8) == "$(xxh3_le "$base" "$fo" 40)" ]] || err "frame at $fo: header_checksum"
	((lo > prev)) || err "frame at $fo: logical_offset $lo not ascending"
	((lo == end)) || err "frame at $fo: logical_offset $lo leaves a gap (sector mode covers everything)"
	((lo % 65536 == 0)) || err "frame at $fo: logical_offset $lo not on the chunk grid"
	case $ty in
	1) ((sl == ll)) || err "raw frame at $fo: stored_length $sl != logical_length $ll" ;;
	2) ((sl < ll)) || err "zstd frame at $fo: not smaller than raw" ;;
	3) ((sl == 0)) || err "zero frame at $fo: stored_length $sl" ;;
	*) err "frame at $fo: type $ty" ;;
	esac
	prev=$lo end=$((lo + ll))
done <"$W/frames"
((end == $(fsize "$W/src"))) || err "frames cover $end bytes, device is $(fsize "$W/src")"
finish

begin layout_index
cnt=$(u64 "$base" $((IDX + 8)))
((cnt == n_data)) || err "index count $cnt, DATA frames $n_data"
(($(section_len "$IDX") == cnt * 32)) || err "index length $(section_len "$IDX") for $cnt entries"
i=0
while read -r fo ty lo ll sl; do
	[[ $ty == 3 ]] && continue
	e=$((IDX + 24 + i * 32))
	[[ $(u64 "$base" "$e") == "$lo" && $(u64 "$base" $((e + 8))) == "$fo" &&
		$(u32 "$base" $((e + 16))) == "$ll" && $(u32 "$base" $((e + 20))) == "$sl" &&
		$(bytes_hex "$base" $((e + 24)) 8) == "$(bytes_hex "$base" $((fo + 32)) 8)" ]] ||
		err "index entry $i does not match the frame at $fo"
	i=$((i + 1))
done <"$W/frames"
finish

begin rechecksum_helper_is_exact
cp -- "$base" "$W/same.imago"
chmod u+w "$W/same.imago"
rechecksum "$W/same.imago"
same "$base" "$W/same.imago"
rm -f -- "$W/same.imago"
finish

# ---------------------------------------------------------------- checking damage

# damaged IMG [ERE...]: every reader refuses IMG with exit 3 and one line naming where:
# verify and restore name the image file, plus each ERE given. Restore reads stdin from
# a pipe (sequentially); REDIR=1 also from the file redirected (seekable stdin). INFO=1
# also checks info (it reads header, trailer and sections, not chunks).
INFO=0 REDIR=0
damaged() {
	local img=$1 name
	shift
	name=${img##*/}
	name=${name//./\\.}
	run 3 "$IMAGO" verify -q "$img" && stderr_one_line '^imago: verify: ' "$name" "$@"
	run 3 "$IMAGO" restore -q "$img" "$W/target" && stderr_one_line '^imago: restore: ' "$name" "$@"
	rm -f -- "$W/target"
	run_in "$img" 3 "$IMAGO" restore -q - "$W/target" && stderr_one_line '^imago: restore: ' "$@"
	rm -f -- "$W/target"
	if ((REDIR)); then
		run_redir "$img" 3 "$IMAGO" restore -q - "$W/target" && stderr_one_line '^imago: restore: ' "$@"
		rm -f -- "$W/target"
	fi
	if ((INFO)); then
		run 3 "$IMAGO" info "$img" && stderr_one_line '^imago: info: ' "$name"
		run 3 "$IMAGO" info --json "$img"
	fi
}

# flip_case NAME OFFSET [ERE...]: flip a byte of a copy of the image with a seeded mask.
flip_case() {
	local name=$1 off=$2 m
	shift 2
	mask
	m=$R
	begin "$name"
	cp -- "$base" "$W/bad.imago"
	chmod u+w "$W/bad.imago"
	flip "$W/bad.imago" "$off" "$m"
	damaged "$W/bad.imago" "$@"
	rm -f -- "$W/bad.imago"
	finish
}

# ---------------------------------------------------------------- header

INFO=1 REDIR=1
rnd 512; r1=$R; rnd 512; r2=$R; rnd 512; r3=$R
for off in 0 7 8 9 10 12 16 23 24 32 39 40 44 48 52 53 54 56 300 503 504 511 "$r1" "$r2" "$r3"; do
	flip_case "flip_header_$off" "$off"
done

# ---------------------------------------------------------------- frame headers and payloads

INFO=0 REDIR=0
chunk_re=(chunk offset)
# num N: an ERE matching the number N on its own (not inside a longer number).
num() { echo "(^|[^0-9])$1([^0-9]|\$)"; }
fh() { # fh NAME FRAME-LINE FIELD-OFFSET...: the message names the frame's chunk
	local name=$1 fo lo f
	read -r fo _ lo _ <<<"$2"
	shift 2
	for f in "$@"; do
		flip_case "flip_${name}_header_$f" $((fo + f)) "${chunk_re[@]}" "$(num "$fo")" "$(num "$lo")"
	done
}
rnd 48
fh first "$F_FIRST" 0 3 4 5 7 8 15 16 23 24 31 32 39 40 47 "$R"
fh raw "$F_RAW" 8 24 32
fh zstd "$F_ZSTD" 8 16 24 32 40
fh zero "$F_ZERO" 4 8 16 24 40
fh last "$F_LAST" 16 24 32

# pl NAME FRAME-LINE POSITION...: flip payload bytes (position relative to the payload).
pl() {
	local name=$1 fo lo sl p
	read -r fo _ lo _ sl <<<"$2"
	shift 2
	for p in "$@"; do
		((p < sl)) || continue
		flip_case "flip_${name}_payload_$p" $((fo + 48 + p)) "${chunk_re[@]}" "$(num "$fo")" "$(num "$lo")"
	done
}
zsl=$(awk '{print $5}' <<<"$F_ZSTD")
rsl=$(awk '{print $5}' <<<"$F_RAW")
lsl=$(awk '{print $5}' <<<"$F_LAST")
rnd "$rsl"; r1=$R; rnd "$rsl"; r2=$R
pl raw "$F_RAW" 0 "$r1" "$r2" $((rsl - 1))
rnd "$zsl"; r1=$R; rnd "$zsl"; r2=$R; rnd "$zsl"; r3=$R; rnd "$zsl"; r4=$R
pl zstd "$F_ZSTD" 0 1 4 5 "$r1" "$r2" "$r3" "$r4" $((zsl / 2)) $((zsl - 1))
rnd "$lsl"
pl last "$F_LAST" 0 "$R" $((lsl - 1))

# Frames moved: payloads of two raw chunks swapped; two whole raw frames swapped; one
# raw frame copied over another (a chunk in the wrong place, or twice).
swap_case() { # swap_case NAME A-OFFSET B-OFFSET LENGTH [once]: the message names frame A
	# or frame B (a sequential reader may only see the damage at B: a gap is legal).
	begin "$1"
	cp -- "$base" "$W/bad.imago"
	chmod u+w "$W/bad.imago"
	dd if="$base" of="$W/a" bs=1 skip="$2" count="$4" status=none
	dd if="$base" of="$W/b" bs=1 skip="$3" count="$4" status=none
	dd if="$W/b" of="$W/bad.imago" bs=1 seek="$2" conv=notrunc status=none
	[[ -n ${5:-} ]] || dd if="$W/a" of="$W/bad.imago" bs=1 seek="$3" conv=notrunc status=none
	damaged "$W/bad.imago" "${chunk_re[@]}" "$(num "$ra")|$(num "$rb")"
	rm -f -- "$W/bad.imago" "$W/a" "$W/b"
	finish
}
# The first damaged chunk is named: two payloads damaged, the earlier one is reported.
begin first_damaged_chunk_named
cp -- "$base" "$W/bad.imago"
chmod u+w "$W/bad.imago"
read -r zfo _ zlo _ zsl <<<"$F_ZSTD"
read -r lfo _ llo _ _ <<<"$F_LAST"
flip "$W/bad.imago" $((zfo + 48 + zsl / 2)) 16
flip "$W/bad.imago" $((lfo + 48)) 16
damaged "$W/bad.imago" "${chunk_re[@]}" "$(num "$zfo")" "$(num "$zlo")"
grep -Eq "$(num "$lfo")|$(num "$llo")" "$W/stderr" && err "names the later damaged chunk too: $(head -c 300 "$W/stderr")"
rm -f -- "$W/bad.imago"
finish

ra=${F_RAW%% *} rb=${F_RAW2%% *}
swap_case swap_raw_payloads $((ra + 48)) $((rb + 48)) 65536
swap_case swap_raw_frames "$ra" "$rb" $((48 + 65536))
swap_case copy_raw_frame_over_another "$ra" "$rb" $((48 + 65536)) once

# ---------------------------------------------------------------- sections

INFO=1
sec() { # sec NAME OFFSET: flip the section header, payload and checksum
	local name=$1 o=$2 len
	len=$(section_len "$o")
	local a b
	rnd "$len"; a=$R; rnd "$len"; b=$R
	for f in 0 3 4 8 15 16 23 24 $((24 + a)) $((24 + b)) $((24 + len - 1)) \
		$((24 + len)) $((24 + len + 7)); do
		flip_case "flip_${name}_$f" $((o + f))
	done
}
sec alloc "$ALLOC"
sec metadata "$META"
sec extents "$EXT"
sec index "$IDX"
# Each field of the second index entry.
for f in 0 7 8 16 20 24 31; do
	flip_case "flip_index_entry1_$f" $((IDX + 24 + 32 + f))
done

# ---------------------------------------------------------------- trailer

rnd 128
for f in 0 7 8 16 24 32 40 48 56 64 95 96 104 119 120 127 "$R"; do
	flip_case "flip_trailer_$f" $((TRAIL + f))
done

# ---------------------------------------------------------------- truncation and extension

INFO=1 REDIR=1
cut_case() { # cut_case NAME LENGTH
	begin "$1"
	head -c "$2" -- "$base" >"$W/cut.imago"
	damaged "$W/cut.imago"
	rm -f -- "$W/cut.imago"
	finish
}
fz=${F_ZSTD%% *}
for len in 0 1 8 511 512 513 $((512 + 47)) $((512 + 48)) $((512 + 48 + 1000)) \
	"$fz" $((fz + 48 + 10)) $((META / 2)) $((META - 1)) "$META" $((META + 10)) \
	"$EXT" $((EXT + 30)) "$IDX" $((IDX + 24 + 40)) $((TRAIL - 1)) "$TRAIL" $((TRAIL + 1)) \
	$((SIZE - 64)) $((SIZE - 8)) $((SIZE - 1)); do
	cut_case "truncate_$len" "$len"
done

ext_case() { # ext_case NAME FILE: a copy of the image with FILE appended
	begin "$1"
	cat -- "$base" "$2" >"$W/ext.imago"
	run 3 "$IMAGO" verify -q "$W/ext.imago" && stderr_one_line '^imago: verify: ' 'ext\.imago'
	run 3 "$IMAGO" restore -q "$W/ext.imago" "$W/target" && stderr_one_line '^imago: restore: '
	run 3 "$IMAGO" info "$W/ext.imago"
	rm -f -- "$W/ext.imago" "$W/target"
	finish
}
printf x >"$W/x"
ext_case append_1_byte "$W/x"
head -c 4096 /dev/zero >"$W/x"
ext_case append_4k_zeros "$W/x"
ext_case append_a_second_image "$base"

# ---------------------------------------------------------------- not an image

INFO=1
make_text "$W/text.txt" 100000
begin not_an_image_text
damaged "$W/text.txt"
finish
: >"$W/empty.img"
begin not_an_image_empty
damaged "$W/empty.img"
finish
make_random "$W/noise.img" 300000 5
begin not_an_image_random
damaged "$W/noise.img"
finish
# A valid zstd stream is not an image either.
zstd -q -c -- "$W/src" >"$W/src.zst"
begin not_an_image_zstd
damaged "$W/src.zst"
finish
begin not_an_image_header_only
head -c 512 -- "$base" >"$W/hdr.img"
damaged "$W/hdr.img"
finish

# ---------------------------------------------------------------- versions and features

# patched NAME FIELD-OFFSET HEX WANT [ERE...]: patch a header field, make every checksum
# valid again, and expect WANT (3: refused, with ERE in the message; 0: read normally).
patched() {
	local name=$1 off=$2 hex=$3 want=$4
	shift 4
	begin "$name"
	cp -- "$base" "$W/v.imago"
	chmod u+w "$W/v.imago"
	poke_hex "$W/v.imago" "$off" "$hex"
	rechecksum "$W/v.imago"
	if ((want == 3)); then
		damaged "$W/v.imago" "$@"
	elif run 0 "$IMAGO" verify -q "$W/v.imago" && run 0 "$IMAGO" restore -q "$W/v.imago" "$W/target"; then
		same "$W/src" "$W/target"
		rm -f -- "$W/target"
		run_in "$W/v.imago" 0 "$IMAGO" restore -q - "$W/target" && same "$W/src" "$W/target"
	fi
	rm -f -- "$W/v.imago" "$W/target"
	finish
}
INFO=1
patched version_major_2 8 0200 3 version
patched version_major_0 8 0000 3 version
patched version_major_65535 8 ffff 3 version
patched incompat_bit_0 16 0100000000000000 3 feature
patched incompat_bit_63 16 0000000000000080 3 feature
patched header_size_1024 12 00040000 3
patched chunk_size_3000 40 b80b0000 3
patched chunk_size_32k 40 00800000 3
patched chunk_size_32m 40 00000002 3
patched chunk_size_128k 40 00000200 3
patched codec_0 52 00 3
patched codec_2 52 02 3
patched codec_255 52 ff 3
# Later minor versions and compat features only add what a 1.0 reader may ignore.
patched version_minor_1_is_read 10 0100 0
patched compat_bit_0_is_read 24 0100000000000000 0
patched compat_bit_63_is_read 24 0000000000000080 0

# device_size changed in the header and in the trailer, all checksums valid: the extent
# map no longer covers the device.
for d in 1 $(($(fsize "$W/src") - 1)) $(($(fsize "$W/src") + 1)) $(($(fsize "$W/src") + 65536)); do
	begin "device_size_lie_$d"
	cp -- "$base" "$W/v.imago"
	chmod u+w "$W/v.imago"
	poke_u64 "$W/v.imago" 32 "$d"
	poke_u64 "$W/v.imago" $((TRAIL + 56)) "$d"
	rechecksum "$W/v.imago"
	damaged "$W/v.imago"
	rm -f -- "$W/v.imago"
	finish
done

# ---------------------------------------------------------------- consistent lies

# reforge IN OUT MUTATION: rebuild the three sections and the trailer of IN with one
# change, every checksum and offset made valid again, so that only the meaning is wrong
# and only the reader's own checks (docs/FORMAT.md §8) can find it.
reforge() {
	"$PY" - "$@" <<'EOF'
import struct, subprocess, sys

src, dst, what = sys.argv[1], sys.argv[2], sys.argv[3]
img = bytearray(open(src, "rb").read())


def xxh3(b):
    out = subprocess.run(["xxhsum", "-H3", "-"], input=bytes(b), capture_output=True, check=True)
    return struct.pack("<Q", int(out.stdout.split()[-1], 16))


t = len(img) - 128
trailer = bytearray(img[t:])
offs = struct.unpack_from("<3Q", trailer, 8)


def section(off):
    magic, _, count, length = struct.unpack_from("<4sIQQ", img, off)
    return [magic, count, bytes(img[off + 24:off + 24 + length]), None]


frames = bytes(img[:offs[0]])
meta, ext, idx = (section(o) for o in offs)
kv, p = [], meta[2]
while p:
    kl, vl = struct.unpack_from("<HI", p)
    kv.append((p[6:6 + kl], p[6 + kl:6 + kl + vl]))
    p = p[6 + kl + vl:]
exts = [list(struct.unpack_from("<QQII", ext[2], i * 24)) for i in range(ext[1])]
ents = [list(struct.unpack_from("<QQIIQ", idx[2], i * 32)) for i in range(idx[1])]
by_state = lambda s: [i for i, e in enumerate(exts) if e[2] == s]

if what == "meta_unknown_key":
    kv.append((b"future.key", b"a value a 1.0 reader ignores"))
elif what == "ext_not_coalesced":
    e = exts[0]
    exts[0:1] = [[e[0], e[1] // 2, e[2], 0], [e[0] + e[1] // 2, e[1] - e[1] // 2, e[2], 0]]
elif what == "ext_unknown_state":
    exts[0][2] = 7
elif what == "ext_state_zero_value":
    exts[0][2] = 0
elif what == "ext_gap_at_end":
    exts[-1][1] -= 1
elif what == "ext_overlap":
    exts[0][1] += 1
elif what == "ext_empty_entry":
    exts.insert(1, [exts[1][0], 0, 2, 0])
elif what == "ext_zero_said_used":
    # a ZERO extent between two USED ones becomes USED: the map and the index disagree
    i = by_state(3)[0]
    exts[i - 1][1] += exts[i][1] + exts[i + 1][1]
    del exts[i:i + 2]
elif what == "ext_used_said_zero":
    i = by_state(1)[1]
    exts[i - 1][1] += exts[i][1] + exts[i + 1][1]
    del exts[i:i + 2]
elif what == "ext_used_said_free":
    exts[by_state(1)[1]][2] = 2
elif what == "ext_count_lie":
    ext[1] += 1
elif what == "ext_length_huge":
    ext[3] = 1 << 62
elif what == "meta_count_huge":
    meta[1] = 1 << 40
elif what == "idx_count_lie":
    idx[1] -= 1
elif what == "idx_drop_entry":
    del ents[1]
elif what == "idx_swap_entries":
    ents[1], ents[2] = ents[2], ents[1]
elif what == "idx_duplicate_entry":
    ents[2] = list(ents[1])
elif what == "idx_file_offset_to_neighbour":
    ents[1][1] = ents[2][1]
elif what == "idx_file_offset_past_data":
    ents[1][1] = len(frames) + 10
elif what == "idx_file_offset_huge":
    ents[1][1] = 1 << 60
elif what == "idx_lengths_lie":
    ents[1][3] += 1
elif what == "idx_checksum_lie":
    ents[1][4] ^= 1
elif what == "idx_sync_checksums":
    # copy each frame's data_checksum into its entry (after a frame was transplanted)
    for e in ents:
        e[4] = struct.unpack_from("<Q", frames, e[1] + 32)[0]
elif what == "digest_lie":
    trailer[64] ^= 1
elif what == "trailer_meta_at_ext":
    pass  # offsets changed below
elif what == "trailer_data_frames_lie":
    struct.pack_into("<Q", trailer, 32, struct.unpack_from("<Q", trailer, 32)[0] + 1)
elif what == "trailer_stored_bytes_lie":
    struct.pack_into("<Q", trailer, 48, struct.unpack_from("<Q", trailer, 48)[0] + 1)
elif what == "alloc_all_free":
    # the allocation map (right after the header) says every byte is FREE, with a valid
    # checksum: it no longer agrees with the extent map's USED runs
    cnt, length = struct.unpack_from("<QQ", img, 512 + 8)
    assert cnt == 1
    struct.pack_into("<I", img, 512 + 24 + 16, 2)
    img[512 + 24 + length:512 + 24 + length + 8] = xxh3(img[512:512 + 24 + length])
    frames = bytes(img[:offs[0]])
elif what != "none":
    sys.exit("unknown mutation " + what)


def build(sec, payload):
    h = struct.pack("<4sIQQ", sec[0], 0, sec[1], len(payload) if sec[3] is None else sec[3])
    h += payload
    return h + xxh3(h)


if what != "meta_count_huge":
    meta[1] = len(kv)
if what not in ("ext_count_lie", "idx_count_lie"):
    ext[1], idx[1] = len(exts), len(ents)
M = build(meta, b"".join(struct.pack("<HI", len(k), len(v)) + k + v for k, v in kv))
E = build(ext, b"".join(struct.pack("<QQII", *e) for e in exts))
I = build(idx, b"".join(struct.pack("<QQIIQ", *e) for e in ents))
m = len(frames)
struct.pack_into("<3Q", trailer, 8, m, m + len(M), m + len(M) + len(E))
if what == "trailer_meta_at_ext":
    struct.pack_into("<Q", trailer, 8, m + len(M))
trailer[120:128] = xxh3(trailer[:120])
open(dst, "wb").write(frames + M + E + I + trailer)
EOF
}

# lie NAME MUTATION WANT [ERE...]: the reforged image gives WANT from every reader.
lie() {
	local name=$1 what=$2 want=$3
	shift 3
	begin "$name"
	if reforge "$W/lie.in" "$W/lie.imago" "$what" 2>"$W/reforge.err"; then
		if ((want == 3)); then
			damaged "$W/lie.imago" "$@"
		elif run 0 "$IMAGO" verify -q "$W/lie.imago" && run 0 "$IMAGO" restore -q "$W/lie.imago" "$W/target"; then
			same "$W/src" "$W/target"
			rm -f -- "$W/target"
			run_in "$W/lie.imago" 0 "$IMAGO" restore -q - "$W/target" && same "$W/src" "$W/target"
		fi
	else
		err "cannot reforge the image ($what): $(tail -1 "$W/reforge.err")"
	fi
	rm -f -- "$W/lie.imago" "$W/target"
	finish
}

cp -- "$base" "$W/lie.in"
begin reforge_helper_is_exact
reforge "$W/lie.in" "$W/lie.imago" none && same "$base" "$W/lie.imago"
rm -f -- "$W/lie.imago"
finish

INFO=0 REDIR=0
lie meta_unknown_key_is_read meta_unknown_key 0
# What opening the image checks (§8 items 3 and 4): info refuses these too.
INFO=1
for what in ext_not_coalesced ext_unknown_state ext_state_zero_value ext_gap_at_end \
	ext_overlap ext_empty_entry ext_zero_said_used ext_used_said_zero ext_used_said_free \
	ext_count_lie ext_length_huge meta_count_huge idx_count_lie idx_drop_entry \
	idx_swap_entries idx_duplicate_entry idx_file_offset_to_neighbour \
	idx_file_offset_past_data idx_file_offset_huge idx_lengths_lie trailer_meta_at_ext \
	alloc_all_free; do
	lie "lie_$what" "$what" 3
done
# What only reading the chunks finds (§8 items 5 and 6).
INFO=0
lie lie_idx_checksum_lie idx_checksum_lie 3 "${chunk_re[@]}"
lie lie_digest digest_lie 3 digest

# A chunk from another image of a different source, at the same place: its frame is
# sound (its checksum is seeded with the same offset) and the index is made to agree,
# so only the content digest can tell.
cp -- "$W/src" "$W/src2"
read -r tfo _ tlo tll _ <<<"$F_RAW"
make_random "$W/other-chunk" "$tll" 99
dd if="$W/other-chunk" of="$W/src2" bs=1 seek="$tlo" conv=notrunc status=none
run 0 "$IMAGO" create -q --chunk-size 64K "$W/src2" "$W/other.imago" >/dev/null || die_setup "cannot make the second image"
[[ $(bytes_hex "$W/other.imago" "$tfo" 24) == "$(bytes_hex "$base" "$tfo" 24)" ]] ||
	die_setup "the second image's frame at $tfo is not in the same place"
cp -- "$base" "$W/lie.in"
chmod u+w "$W/lie.in"
dd if="$W/other.imago" of="$W/lie.in" bs=1 skip="$tfo" seek="$tfo" count=$((48 + tll)) conv=notrunc status=none
lie chunk_from_another_image_index_agrees idx_sync_checksums 3 digest
begin chunk_from_another_image
damaged "$W/lie.in"
finish
rm -f -- "$W/lie.in" "$W/other.imago" "$W/src2"

done_testing
