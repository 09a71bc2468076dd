#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# bench/forensic.sh [SIZE_GIB] [WORKDIR]
#
# Forensic acquisition side by side, in one run, from a warm page cache, on the
# benchmark source of bench/make-source.sh (default 4 GiB):
#   imago acquire          MD5 + SHA-1 + SHA-256, zstd level 3 (default), all cores
#   ewfacquire             MD5 + SHA-1 + SHA-256 (-d sha1,sha256), deflate "fast"
#                          (-c fast), unattended (-u), EnCase 6 E01
#   dc3dd                  hash=md5 hash=sha1 hash=sha256, raw output (no compression)
# Every tool's output is flushed (sync) inside the timing, as imago fsyncs its image.
# The three tools' MD5/SHA-1/SHA-256 must agree with each other and with coreutils',
# or the script fails. Prints wall time, throughput, output size and the ratios of
# each peer's time to imago's. Timings are reported, never asserted.
#
# Environment: IMAGO (default build/imago), REPEAT (rounds, default 1; the median
# is reported; rounds go round-robin over the tools so background load spreads).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
size_gib=${1:-4}
workdir=${2:-/var/tmp/imago-bench}
IMAGO=$(realpath "${IMAGO:-build/imago}")
REPEAT=${REPEAT:-1}

die() { echo "forensic-bench: $*" >&2; exit 1; }
say() { echo "forensic-bench: $*" >&2; }

for t in ewfacquire dc3dd md5sum sha1sum sha256sum /usr/bin/time; do
	command -v "$t" >/dev/null || die "$t is missing (scripts/deps.sh installs it)"
done
[[ -x $IMAGO ]] || die "IMAGO=$IMAGO is not executable"

src=$("$here/make-source.sh" "$size_gib" "$workdir")
src_bytes=$(stat -c %s "$src")
out=$workdir/forensic-out
rm -rf "$out"
mkdir -p "$out"

say "reference digests (coreutils)"
ref_md5=$(md5sum <"$src" | cut -c1-32)
ref_sha1=$(sha1sum <"$src" | cut -c1-40)
ref_sha256=$(sha256sum <"$src" | cut -c1-64)

warm() { cat "$src" >/dev/null; }
calc() { awk "BEGIN { print $* }"; }

# timed NAME CMD...: run CMD (bash -c script) after warming the cache; appends the wall
# time to T_NAME.
declare -A TIMES SIZES
timed() {
	local name=$1 script=$2
	rm -rf "${out:?}/$name"
	mkdir -p "$out/$name"
	warm
	sync
	local t0 t1
	t0=$(date +%s.%N)
	bash -c "$script" _ "$src" "$out/$name" >"$out/$name.stdout" 2>"$out/$name.stderr" ||
		die "$name failed: $(tail -5 "$out/$name.stderr")"
	t1=$(date +%s.%N)
	TIMES[$name]="${TIMES[$name]:-} $(calc "$t1 - $t0")"
	SIZES[$name]=$(du -sb "$out/$name" | cut -f1)
}

# shellcheck disable=SC2016
IMAGO_CMD='"'"$IMAGO"'" acquire -q -f -C bench "$1" "$2/img.imago" && sync -f "$2/img.imago"'
# shellcheck disable=SC2016
EWF_CMD='ewfacquire -u -q -c fast -d sha1,sha256 -C bench -t "$2/ewf" "$1" && sync -f "$2/ewf.E01"'
# shellcheck disable=SC2016
DC3DD_CMD='dc3dd if="$1" of="$2/dc3dd.raw" hash=md5 hash=sha1 hash=sha256 log="$2/dc3dd.log" && sync -f "$2/dc3dd.raw"'

for ((round = 1; round <= REPEAT; round++)); do
	say "round $round/$REPEAT: imago"
	timed imago "$IMAGO_CMD"
	# keep each round's digests for the agreement check below
	cp "$out/imago/img.imago.log" "$out/imago.log"
	say "round $round/$REPEAT: ewfacquire"
	timed ewfacquire "$EWF_CMD"
	say "round $round/$REPEAT: dc3dd"
	timed dc3dd "$DC3DD_CMD"
done

# --- the digests must agree ------------------------------------------------------
lc() { tr 'A-F' 'a-f'; }
im_md5=$(awk '/^  MD5:/{print $2}' "$out/imago.log")
im_sha1=$(awk '/^  SHA-1:/{print $2}' "$out/imago.log")
im_sha256=$(awk '/^  SHA-256:/{print $2}' "$out/imago.log")
ew_md5=$(awk -F'\t+' '/^MD5 hash calculated/{print $2}' "$out/ewfacquire.stdout" | lc)
ew_sha1=$(awk -F'\t+' '/^SHA1 hash calculated/{print $2}' "$out/ewfacquire.stdout" | lc)
ew_sha256=$(awk -F'\t+' '/^SHA256 hash calculated/{print $2}' "$out/ewfacquire.stdout" | lc)
dc_md5=$(grep -E '^ *[0-9a-f]{32} \(md5\)' "$out/dc3dd/dc3dd.log" | awk '{print $1}' | head -1)
dc_sha1=$(grep -E '^ *[0-9a-f]{40} \(sha1\)' "$out/dc3dd/dc3dd.log" | awk '{print $1}' | head -1)
dc_sha256=$(grep -E '^ *[0-9a-f]{64} \(sha256\)' "$out/dc3dd/dc3dd.log" | awk '{print $1}' | head -1)
for t in im ew dc; do
	for h in md5 sha1 sha256; do
		v=${t}_$h
		r=ref_$h
		[[ ${!v} == "${!r}" ]] || die "$t $h '${!v}' differs from coreutils' '${!r}'"
	done
done
say "all three tools agree with coreutils: md5 $ref_md5"

# --- table -----------------------------------------------------------------------
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
printf '\nForensic acquisition, %s GiB source (%s), MD5+SHA-1+SHA-256, %s round(s), %s CPUs\n' \
	"$size_gib" "$src" "$REPEAT" "$(nproc)"
printf '%-12s %9s %10s %14s %8s %12s\n' tool "wall s" "MB/s" "output bytes" "% src" "time/imago"
im_t=$(median <<<"${TIMES[imago]}")
for t in imago ewfacquire dc3dd; do
	w=$(median <<<"${TIMES[$t]}")
	printf '%-12s %9.2f %10.1f %14d %7.1f%% %11.2fx\n' "$t" "$w" \
		"$(calc "$src_bytes / $w / 1000000")" "${SIZES[$t]}" \
		"$(calc "100 * ${SIZES[$t]} / $src_bytes")" "$(calc "$w / $im_t")"
done
printf '\n(all times in seconds: %s)\n' "$(for t in imago ewfacquire dc3dd; do printf '%s:%s ' "$t" "${TIMES[$t]}"; done)"
rm -rf "$out"
