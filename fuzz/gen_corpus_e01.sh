#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Regenerate the seed corpus of the E01 fuzz target, fuzz/corpus/e01/seed-*.E01: real
# E01 files made by ewfacquire (libewf's acquisition tool) from small sources (random,
# text, zeros, mixed) in each EWF flavour it writes (EWF, EnCase 2-7, FTK, SMART, linen,
# ewfx), with no/fast/best compression, small and large chunks, MD5 alone and with
# SHA-1/SHA-256, case fields, and the start of the first segment of a multi-segment set
# (cut short: an error path). Plus E01 files written by `imago convert` (build/imago).
# Every file stays under 256 KiB.
#
#   fuzz/gen_corpus_e01.sh [IMAGO]      (default build/imago)
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
imago=${1:-$src/build/imago}
out=$src/fuzz/corpus/e01
work=$(mktemp -d "${TMPDIR:-/tmp}/gen-e01.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
rm -f "$out"/seed-*.E01

head -c 65536 /dev/urandom >"$work/random" || true
find /usr/share/doc -name copyright -type f | sort | head -40 | xargs cat >"$work/alltext"
head -c 98304 "$work/alltext" >"$work/text"
head -c 131072 /dev/zero >"$work/zeros"
{ head -c 32768 "$work/text"; head -c 32768 /dev/zero; head -c 16384 "$work/random"; } >"$work/mixed"

# acq NAME SOURCE [ewfacquire options...]
acq() {
	local name=$1 s=$2
	shift 2
	ewfacquire -u -q -C "case-$name" -D "seed $name" -e examiner -E "ev-$name" -N notes \
		-t "$work/$name" "$@" "$work/$s" >/dev/null 2>&1
	# EnCase/FTK/linen name it NAME.E01, "ewf" NAME.e01, SMART NAME.s01
	local f
	for f in "$work/$name.E01" "$work/$name.e01" "$work/$name.s01"; do
		[[ -f $f ]] && cp "$f" "$out/seed-$name.E01"
	done
	[[ -f $out/seed-$name.E01 ]]
}

acq encase6-fast mixed -c fast -f encase6
acq encase6-best text -c best -f encase6 -d sha1
acq encase6-none random -c none -f encase6 -d sha1,sha256
acq encase5 mixed -c fast -f encase5
acq encase4 text -c fast -f encase4
acq encase2 mixed -c none -f encase2
acq ewf text -c fast -f ewf
acq encase7 mixed -c fast -f encase7
acq ftk mixed -c fast -f ftk
acq smart mixed -c fast -f smart
acq linen6 text -c fast -f linen6
acq ewfx mixed -c fast -f ewfx -d sha1
acq zeros-small-chunk zeros -c fast -b 16
acq text-big-chunk text -c fast -b 1024
acq sector4k mixed -c fast -P 4096
# a multi-segment set: the first segment alone (the others are missing: an error path)
head -c 3145728 /dev/urandom >"$work/big" || true
ewfacquire -u -q -c none -S 1MiB -t "$work/multi" "$work/big" >/dev/null 2>&1 || true
[[ -f $work/multi.E01 ]] && head -c 200000 "$work/multi.E01" >"$out/seed-multi-first.E01"

if [[ -x $imago ]]; then
	"$imago" acquire -q -C imago-case -E 7 -e "Ana Müller" -N "ünïcode notes" "$work/mixed" \
		"$work/m.imago" >/dev/null
	"$imago" convert -q "$work/m.imago" "$work/imago-conv.E01"
	cp "$work/imago-conv.E01" "$out/seed-imago-convert.E01"
	"$imago" convert -q --e01-compression best "$work/m.imago" "$work/imago-best.E01"
	cp "$work/imago-best.E01" "$out/seed-imago-best.E01"
fi
ls -la "$out" >&2
