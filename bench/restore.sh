#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# bench/restore.sh [SIZE_GIB] [WORKDIR]
#
# Restore only, side by side and repeated: imago restore against `zstd -d` of the same
# source (bench/make-source.sh), to a new file, from a pipe, and to a loop device. Every
# timed run starts the same way: the previous output deleted, `sync`, a pause of PAUSE
# seconds (so that freeing the previous 4 GiB, and the discards a `discard`-mounted
# filesystem sends for it, are over), then the input read into the page cache. Rows run
# round-robin, REPEAT rounds. Every output is compared with the source (cmp) after its
# run, outside the timing. See bench/README.md.
#
# Environment: IMAGO (default build/imago), REPEAT (default 5), PAUSE (seconds, default
# 5), LOOP (1: add the loop-device rows, the default when run as root), THREADS (imago
# -T, default: all CPUs), BASELINE (another imago binary, e.g. a build of an older
# commit: adds its restore to a file as a row, to measure a change). Timings are reported, never asserted; the script fails only
# when a tool fails or a restored output differs from the source.
#
# The bash -c scripts below take their arguments as "$1"...: single quotes are meant.
# shellcheck disable=SC2016
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
size_gib=${1:-4}
workdir=${2:-/var/tmp/imago-bench}
IMAGO=${IMAGO:-build/imago}
REPEAT=${REPEAT:-5}
PAUSE=${PAUSE:-5}
LOOP=${LOOP:-$((EUID == 0))}
THREADS=${THREADS:-}
BASELINE=${BASELINE:-}

die() { echo "restore-bench: $*" >&2; exit 1; }
say() { echo "restore-bench: $*" >&2; }

[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive number"
[[ $PAUSE =~ ^[0-9]+$ ]] || die "PAUSE must be a number of seconds"
[[ -z $THREADS || $THREADS =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive number"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (apt-get install time)"
command -v zstd >/dev/null || die "zstd is missing"
[[ -x $IMAGO ]] && "$IMAGO" --version >/dev/null 2>&1 || die "'$IMAGO' does not run (set IMAGO=...)"
IMAGO=$(realpath "$IMAGO")
if [[ -n $BASELINE ]]; then
	[[ -x $BASELINE ]] && "$BASELINE" --version >/dev/null 2>&1 || die "BASELINE '$BASELINE' does not run"
	BASELINE=$(realpath "$BASELINE")
fi
topt=()
[[ -z $THREADS ]] || topt=(-T "$THREADS")

src=$("$here/make-source.sh" "$size_gib" "$workdir")
src_bytes=$(stat -c %s "$src")
out=$workdir/restore
rm -rf "$out"
mkdir -p "$out"
log=$workdir/restore.log
: >"$log"
loops=()
cleanup() {
	local l
	for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
	rm -rf "$out"
}
trap cleanup EXIT

say "making the inputs: imago create --sector -l 3 and zstd -T0 -3 of $src"
"$IMAGO" create -q --sector -l 3 "$src" "$out/src.imago"
zstd -q -T0 -3 "$src" -o "$out/src.zst"

# --- rows ----------------------------------------------------------------------------
# row ID LABEL KIND INPUT -- COMMAND...: KIND file (the command writes $out/out.raw) or
# loop (it writes the loop device $LOOPDEV, backed by a new file each run).
declare -A D_LABEL D_KIND D_IN D_CMD W U S M
ROWS=()
row() {
	local id=$1
	D_LABEL[$id]=$2 D_KIND[$id]=$3 D_IN[$id]=$4
	shift 5
	D_CMD[$id]=$(printf '%q ' "$@")
	ROWS+=("$id")
}
o=$out/out.raw
row imago "imago restore IMG FILE" file "$out/src.imago" -- \
	"$IMAGO" restore -q "${topt[@]}" "$out/src.imago" "$o"
if [[ -n $BASELINE ]]; then
	row base "baseline imago restore IMG FILE" file "$out/src.imago" -- \
		"$BASELINE" restore -q "${topt[@]}" "$out/src.imago" "$o"
fi
row zstd "zstd -d -c > FILE; sync FILE" file "$out/src.zst" -- \
	bash -c 'zstd -d -q -c "$1" >"$2" && sync "$2"' _ "$out/src.zst" "$o"
row zstdns "zstd -d -c > FILE (no sync)" file "$out/src.zst" -- \
	bash -c 'zstd -d -q -c "$1" >"$2"' _ "$out/src.zst" "$o"
row pipe "cat IMG | imago restore - FILE" file "$out/src.imago" -- \
	bash -c 'set -o pipefail; cat "$2" | "$1" restore -q "${@:4}" - "$3"' _ "$IMAGO" "$out/src.imago" "$o" "${topt[@]}"
if ((LOOP)); then
	command -v losetup >/dev/null || die "losetup is missing"
	row imagoblk "imago restore IMG /dev/loopN" loop "$out/src.imago" -- \
		bash -c '"$1" restore -q "${@:4}" "$2" "$LOOPDEV"' _ "$IMAGO" "$out/src.imago" - "${topt[@]}"
	row zstdblk "zstd -d -c > /dev/loopN; sync" loop "$out/src.zst" -- \
		bash -c 'zstd -d -q -c "$1" >"$LOOPDEV" && sync "$LOOPDEV"' _ "$out/src.zst"
fi

# run_once ID: one run after the same preparation for every row.
run_once() {
	local id=$1 tf line w u s m target=$o back=$out/loop.back
	rm -f "$o" "$back"
	export LOOPDEV=
	if [[ ${D_KIND[$id]} == loop ]]; then
		fallocate -l "$src_bytes" "$back"
		LOOPDEV=$(losetup -f --show -- "$back")
		loops=("$LOOPDEV")
		target=$LOOPDEV
	fi
	sync
	sleep "$PAUSE"
	cat "${D_IN[$id]}" >/dev/null
	tf=$(mktemp)
	echo "== ${D_LABEL[$id]}: ${D_CMD[$id]} (LOOPDEV=$LOOPDEV)" >>"$log"
	if ! eval "/usr/bin/time -f '%e %U %S %M' -o \"\$tf\" ${D_CMD[$id]}" >>"$log" 2>&1; then
		tail -n 20 "$log" >&2
		die "'${D_LABEL[$id]}' failed (see $log)"
	fi
	read -r line <"$tf"
	rm -f "$tf"
	read -r w u s m <<<"$line"
	echo "   wall $w s, user $u s, sys $s s, peak RSS $m KiB" >>"$log"
	W[$id]+="$w " U[$id]+="$u " S[$id]+="$s "
	((m > ${M[$id]:-0})) && M[$id]=$m
	cmp -n "$src_bytes" "$src" "$target" >/dev/null ||
		die "RESTORED OUTPUT DIFFERS: ${D_LABEL[$id]} ($target) is not identical to $src"
	if [[ -n $LOOPDEV ]]; then
		losetup -d "$LOOPDEV"
		loops=()
	fi
	rm -f "$o" "$back"
}

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
minmax() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk 'NR == 1 { a = $1 } { b = $1 } END { print a "-" b }'; }

busy_ticks() { awk '/^cpu / { printf "%.0f\n", $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
own_ticks() { awk '{ printf "%.0f\n", $14 + $15 + $16 + $17 }' "/proc/$$/stat"; }
say "source: $src ($((src_bytes >> 20)) MiB); $REPEAT round(s), pause $PAUSE s; log: $log"
busy_start=$(busy_ticks) own_start=$(own_ticks) t_start=$(date +%s)
for ((round = 1; round <= REPEAT; round++)); do
	for id in "${ROWS[@]}"; do
		say "round $round/$REPEAT: ${D_LABEL[$id]}"
		run_once "$id"
	done
done
busy_end=$(busy_ticks) own_end=$(own_ticks) t_end=$(date +%s)

echo
echo "imago restore benchmark  $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r)"
echo "tools:   $("$IMAGO" --version | head -1), $(zstd -V | sed 's/^\*\*\* //; s/,.*//')"
echo "source:  $src ($((src_bytes >> 20)) MiB); image $(($(stat -c %s "$out/src.imago") >> 20)) MiB, zstd stream $(($(stat -c %s "$out/src.zst") >> 20)) MiB"
echo "method:  before each run: output deleted, sync, ${PAUSE} s pause, input read into the page cache;"
echo "         rows round-robin, $REPEAT rounds; median of each column over the rounds"
foreign=$(awk -v b="$((busy_end - busy_start))" -v o="$((own_end - own_start))" \
	-v t="$((t_end - t_start))" -v n="$(nproc)" -v hz="$(getconf CLK_TCK)" 'BEGIN {
	f = (b - o) / hz; if (f < 0) f = 0
	printf "%.0f %.0f", f, (t > 0 ? 100 * f / (t * n) : 0) }')
echo "others:  other processes used ${foreign% *} CPU-s during the $((t_end - t_start)) s run (${foreign#* }% of the machine)"
if ((${foreign#* } > 10)); then
	echo "WARNING: the machine was not idle; wall times are noisy, user+sys less so"
fi
echo
printf '%-36s %8s %12s %8s %8s %8s %8s\n' row "wall s" "wall range" "user s" "sys s" "MiB/s" "RSS MiB"
for id in "${ROWS[@]}"; do
	w=$(median "${W[$id]}")
	printf '%-36s %8.2f %12s %8.2f %8.2f %8.0f %8.1f\n' "${D_LABEL[$id]}" "$w" "$(minmax "${W[$id]}")" \
		"$(median "${U[$id]}")" "$(median "${S[$id]}")" \
		"$(awk -v b="$src_bytes" -v w="$w" 'BEGIN { print (w > 0 ? b / 1048576 / w : 0) }')" \
		"$(awk -v m="${M[$id]}" 'BEGIN { print m / 1024 }')"
done
echo
ratio() { awk -v a="$(median "${W[$1]}")" -v b="$(median "${W[$2]}")" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }'; }
verdict() { awk -v r="$1" 'BEGIN { print (r >= 1 ? "met" : "MISSED") }'; }
r=$(ratio imago zstd)
echo "speed (zstd time / imago time, > 1: imago faster):"
echo "  imago restore vs zstd -d; sync (file):       ${r}x   [bar: >= 1: $(verdict "$r")]"
echo "  imago restore vs zstd -d, no sync (file):    $(ratio imago zstdns)x"
echo "  imago restore from a pipe vs zstd -d; sync:  $(ratio pipe zstd)x"
if ((LOOP)); then
	echo "  imago restore vs zstd -d; sync (loop device): $(ratio imagoblk zstdblk)x"
fi
if [[ -n $BASELINE ]]; then
	echo "  imago restore vs the baseline ($BASELINE):  $(ratio imago base)x"
fi
echo "all restored outputs compared with cmp: identical"
