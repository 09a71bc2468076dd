#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# bench/chunk-size.sh [WORKDIR]
#
# Measures what the chunk size costs and buys, to justify the default chunk size
# (docs/FORMAT.md §2). On the bench source (bench/make-source.sh), for each chunk
# size, at zstd level 3:
#   - imago create time and image size, against the size of one unchunked
#     `zstd -T0 -3` stream of the same source;
#   - the cost of one random read: imago has no random-read command yet, so it is
#     estimated as the time to decompress one chunk, from `zstd -b3 -B<chunk>`
#     (independent blocks of that size, one thread) on a sample of the source.
#
# Environment: IMAGO (default build/imago), SIZE_GIB (source size, default 4),
# SLICE_GIB (use only the first SLICE_GIB GiB of the source; default all of it),
# CHUNKS (default "64K 256K 1M 4M 16M"), REPEAT (rounds, median; default 3).
# Timings are reported, never asserted.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
workdir=${1:-/var/tmp/imago-bench}
IMAGO=${IMAGO:-build/imago}
SIZE_GIB=${SIZE_GIB:-4}
SLICE_GIB=${SLICE_GIB:-}
CHUNKS=${CHUNKS:-64K 256K 1M 4M 16M}
REPEAT=${REPEAT:-3}

die() { echo "chunk-size: $*" >&2; exit 1; }
say() { echo "chunk-size: $*" >&2; }

[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive number"
[[ -x /usr/bin/time ]] || apt-get install -y -q time >&2 || die "could not install time"
command -v zstd >/dev/null || apt-get install -y -q zstd >&2 || die "could not install zstd"
have_imago=1
if [[ -x $IMAGO ]] && "$IMAGO" --version >/dev/null 2>&1; then
	IMAGO=$(realpath "$IMAGO")
else
	have_imago=0
	say "warning: '$IMAGO' is missing or does not run; only the zstd figures are given"
fi

src=$("$here/make-source.sh" "$SIZE_GIB" "$workdir")
out=$workdir/chunk
rm -rf "$out"
mkdir -p "$out"
trap 'rm -rf "$out"' EXIT
if [[ -n $SLICE_GIB ]] && ((SLICE_GIB < SIZE_GIB)); then
	dd if="$src" of="$out/slice.raw" bs=1M count=$((SLICE_GIB << 10)) status=none
	src=$out/slice.raw
fi
src_bytes=$(stat -c %s "$src")
log=$workdir/chunk-size.log
: >"$log"

bytes() {		# 64K, 1M, 16M -> bytes
	local n=${1%[KkMm]}
	case $1 in
	*[Kk]) echo $((n << 10)) ;;
	*[Mm]) echo $((n << 20)) ;;
	*) echo "$1" ;;
	esac
}

# once OUTPUT -- COMMAND...: one warm run (output deleted, dirty data synced, source
# read first); prints its wall time.
once() {
	local output=$1 tf w
	shift 2
	tf=$(mktemp)
	rm -f "$output"
	sync
	cat "$src" >/dev/null
	echo "== $*" >>"$log"
	/usr/bin/time -f '%e' -o "$tf" "$@" >>"$log" 2>&1 || { rm -f "$tf"; die "failed: $* (see $log)"; }
	w=$(cat "$tf")
	rm -f "$tf"
	echo "   wall $w s" >>"$log"
	echo "$w"
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# A 512 MiB sample for zstd -b: 8 pieces of 64 MiB spread over the source.
piece=$((64 << 20)) pieces=8
if ((src_bytes < piece * pieces)); then
	cp "$src" "$out/sample.raw"
else
	stride=$(((src_bytes - piece) / (pieces - 1) >> 20))
	for ((i = 0; i < pieces; i++)); do
		dd if="$src" bs=1M skip=$((i * stride)) count=64 status=none
	done >"$out/sample.raw"
fi

say "source: $src ($((src_bytes >> 20)) MiB); $REPEAT round(s), median wall time"
busy_ticks() { awk '/^cpu / { printf "%.0f\n", $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
own_ticks() { awk '{ printf "%.0f\n", $14 + $15 + $16 + $17 }' "/proc/$$/stat"; }
busy_start=$(busy_ticks) own_start=$(own_ticks) t_start=$(date +%s)
# Round-robin: every round runs the zstd stream and every chunk size once, so that
# whatever else loads the machine is spread over all of them alike.
declare -A walls sizes
for ((r = 1; r <= REPEAT; r++)); do
	say "round $r/$REPEAT"
	# shellcheck disable=SC2016  # "$1"... belong to the bash -c script
	walls[zstd]+="$(once "$out/s.zst" -- bash -c 'set -o pipefail; dd if="$1" bs=1M status=none | zstd -T0 -3 -q >"$2"' \
		_ "$src" "$out/s.zst") "
	sizes[zstd]=$(stat -c %s "$out/s.zst")
	rm -f "$out/s.zst"
	((have_imago)) || continue
	for cs in $CHUNKS; do
		walls[$cs]+="$(once "$out/s.imago" -- "$IMAGO" create --sector -l 3 --chunk-size "$cs" "$src" "$out/s.imago") "
		sizes[$cs]=$(stat -c %s "$out/s.imago")
		rm -f "$out/s.imago"
	done
done
busy_end=$(busy_ticks) own_end=$(own_ticks) t_end=$(date +%s)
z_wall=$(median <<<"${walls[zstd]}")
z_size=${sizes[zstd]}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

echo
echo "chunk size vs image size, speed and random-read cost ($(nproc) CPUs, level 3)"
echo "source: $src_bytes bytes ($(basename "$src")); dd | zstd -T0 -3 stream: $(mib "$z_size") MiB" \
	"(ratio $(awk -v a="$src_bytes" -v b="$z_size" 'BEGIN { printf "%.3f", a / b }')), $z_wall s" \
	"($(awk -v a="$src_bytes" -v w="$z_wall" 'BEGIN { printf "%.0f", a / 1048576 / w }') MiB/s)"
awk -v b="$((busy_end - busy_start))" -v o="$((own_end - own_start))" -v t="$((t_end - t_start))" \
	-v n="$(nproc)" -v hz="$(getconf CLK_TCK)" 'BEGIN { f = (b - o) / hz; if (f < 0) f = 0
	printf "others: other processes (and kernel writeback) used %.0f CPU-s during the %d s of timed runs (%.0f%% of the machine)\n", f, t, (t > 0 ? 100 * f / (t * n) : 0) }'
echo "create s: median of $REPEAT round(s), imago fsyncs the image; the zstd stream is not synced"
echo "random read = decompressing one chunk (zstd -b3 -B<chunk>, 1 thread, 512 MiB sample): an estimate"
echo
printf '| %10s | %11s | %9s | %14s | %9s | %10s | %11s |\n' "chunk size" "image MiB" ratio \
	"vs zstd -3" "create s" "MiB/s" "1 read ms"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' -----------: ------------: ----------: ---------------: \
	----------: -----------: ------------:
for cs in $CHUNKS; do
	cb=$(bytes "$cs")
	# Decompression speed of independent blocks of this size (MB/s, 10^6 bytes).
	dspeed=$(zstd -b3 -i1 -B"$cb" "$out/sample.raw" 2>&1 | tr '\r' '\n' |
		sed -n 's/.*(x[0-9.]*), *[0-9.]* MB\/s, *\([0-9.]*\) MB\/s.*/\1/p' | tail -1)
	read_ms=$(awk -v b="$cb" -v s="${dspeed:-0}" 'BEGIN { if (s > 0) printf "%.3f", b / (s * 1e6) * 1000; else print "?" }')
	if ((have_imago)); then
		wall=$(median <<<"${walls[$cs]}")
		isize=${sizes[$cs]}
		awk -v cs="$cs" -v i="$isize" -v z="$z_size" -v b="$src_bytes" -v w="$wall" -v r="$read_ms" 'BEGIN {
			printf "| %10s | %11.1f | %9.3f | %+13.2f%% | %9.2f | %10.0f | %11s |\n",
				cs, i / 1048576, b / i, 100 * (i - z) / z, w, b / 1048576 / w, r }'
	else
		printf '| %10s | %11s | %9s | %14s | %9s | %10s | %11s |\n' "$cs" - - - - - "$read_ms"
	fi
done
echo
echo "vs zstd -3: image size relative to the unchunked zstd -T0 -3 stream (negative = smaller)."
