#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# bench/run.sh [SIZE_GIB] [WORKDIR]
#
# Side-by-side benchmark of imago against its peers on one realistic source, in
# one run, from a warm page cache: the read limit (cat), imago create at levels 3
# and 1 against `dd | zstd -T0` at the same levels and `qemu-img convert -O qcow2
# -c`, imago restore against `zstd -d`, and imago verify against `zstd -t`.
# Peers that write a file fsync it inside the timing, as imago does.
# Prints a table and the ratios against the peers. See bench/README.md.
#
# Environment: IMAGO (default build/imago), REPEAT (runs per measurement, the
# median wall time is reported; default 3), QEMU_REPEAT (default 1: qemu-img is
# slow), PAUSE (seconds of pause after the sync before each restore row; default
# 5). Timings are reported, never asserted; the script fails only when a tool fails
# or a round trip is not byte-identical.
#
# The bash -c scripts below take their arguments as "$1"...: single quotes are meant.
# shellcheck disable=SC2016
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
size_gib=${1:-4}
workdir=${2:-/var/tmp/imago-bench}
IMAGO=${IMAGO:-build/imago}
REPEAT=${REPEAT:-3}
QEMU_REPEAT=${QEMU_REPEAT:-1}
PAUSE=${PAUSE:-5}

die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive number"
[[ $QEMU_REPEAT =~ ^[1-9][0-9]*$ ]] || die "QEMU_REPEAT must be a positive number"
[[ $PAUSE =~ ^[0-9]+$ ]] || die "PAUSE must be a number of seconds"

# --- tools -------------------------------------------------------------------------
missing=()
[[ -x /usr/bin/time ]] || missing+=(time)
command -v zstd >/dev/null || missing+=(zstd)
command -v qemu-img >/dev/null || missing+=(qemu-utils)
command -v cmp >/dev/null || missing+=(diffutils)
if ((${#missing[@]})); then
	say "installing ${missing[*]}"
	apt-get install -y -q "${missing[@]}" >&2 || die "could not install ${missing[*]}"
fi

have_imago=1
if [[ -x $IMAGO ]] && "$IMAGO" --version >/dev/null 2>&1; then
	IMAGO=$(realpath "$IMAGO")
else
	have_imago=0
	say "warning: '$IMAGO' is missing or does not run; imago rows are skipped (set IMAGO=...)"
fi

# --- source ------------------------------------------------------------------------
src=$("$here/make-source.sh" "$size_gib" "$workdir")
src_bytes=$(stat -c %s "$src")
out=$workdir/out
rm -rf "$out"
mkdir -p "$out"
log=$workdir/run.log
: >"$log"
say "log: $log"

# --- measuring ---------------------------------------------------------------------
# Rows are defined first and then run round-robin, REPEAT rounds of every row,
# so that whatever else loads the machine is spread over all the tools alike.
declare -A D_LABEL D_RUNS D_OUT D_WARM D_AFTER D_CMD D_PAUSE
declare -A R_LABEL R_WALL R_CPU R_RSS R_SIZE R_ALLOC R_WALLS R_CPUS
ROWS=()

# row ID LABEL RUNS OUTPUT WARM AFTER -- COMMAND...
# OUTPUT: the file written, or -. WARM: a file read into the page cache before each
# run besides the source, or -. AFTER: keep (the output), rm, or cmp (compare the
# output with the source, then delete it).
row() {
	local id=$1
	D_LABEL[$id]=$2 D_RUNS[$id]=$3 D_OUT[$id]=$4 D_WARM[$id]=$5 D_AFTER[$id]=$6
	shift 7
	D_CMD[$id]=$(printf '%q ' "$@")
	ROWS+=("$id")
}

# check_same FILE: a round trip must give back the source byte for byte.
check_same() {
	cmp "$src" "$1" >/dev/null || die "ROUND TRIP DIFFERS: $1 is not identical to $src"
}

# run_once ID ROUND: one warm run of a row (output deleted, dirty data synced, a pause
# for the restore rows, source and WARM file read first).
run_once() {
	local id=$1 round=$2 output=${D_OUT[$1]} tf line w u s m
	local -a warm=()
	[[ ${D_WARM[$id]} == - ]] || warm=("${D_WARM[$id]}")
	[[ $output == - ]] || rm -f "$output"
	sync
	sleep "${D_PAUSE[$id]:-0}"
	cat "$src" "${warm[@]}" >/dev/null
	tf=$(mktemp)
	echo "== ${D_LABEL[$id]} (run $round): ${D_CMD[$id]}" >>"$log"
	if ! eval "/usr/bin/time -f '%e %U %S %M' -o \"\$tf\" ${D_CMD[$id]}" >>"$log" 2>&1; then
		tail -n 20 "$log" >&2
		rm -f "$tf"
		die "'${D_LABEL[$id]}' failed (see $log)"
	fi
	read -r line <"$tf"
	rm -f "$tf"
	read -r w u s m <<<"$line"
	echo "   wall ${w} s, user ${u} s, sys ${s} s, peak RSS ${m} KiB" >>"$log"
	R_WALLS[$id]+="$w "
	R_CPUS[$id]+="$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }') "
	((m > ${R_RSS[$id]:-0})) && R_RSS[$id]=$m
	if [[ $output != - ]]; then
		R_SIZE[$id]=$(stat -c %s "$output")
		R_ALLOC[$id]=$(($(stat -c %b "$output") * $(stat -c %B "$output")))
		case ${D_AFTER[$id]} in
		cmp) check_same "$output"; rm -f "$output" ;;
		rm) rm -f "$output" ;;
		esac
	fi
}

# summarize ID: the median wall time and the CPU time of that same run.
summarize() {
	local id=$1 r
	R_LABEL[$id]=${D_LABEL[$id]}
	r=$(awk -v w="${R_WALLS[$id]}" -v c="${R_CPUS[$id]}" 'BEGIN {
		n = split(w, W, " "); split(c, C, " ")
		for (i = 1; i <= n; i++) I[i] = i
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
			if (W[I[j]] + 0 < W[I[i]] + 0) { t = I[i]; I[i] = I[j]; I[j] = t }
		k = I[int((n + 1) / 2)]
		print W[k], C[k] }')
	R_WALL[$id]=${r% *} R_CPU[$id]=${r#* }
}

# --- the rows ----------------------------------------------------------------------
# imago create and restore fsync what they write before they finish (an image or a
# restored disk is only done when it is on the medium), so the peers that write a
# file do the same here: "; sync FILE" is part of their timed command. zstd without
# the fsync is measured too, as the brief of the bar names it.
row read "read limit: cat SRC > /dev/null" "$REPEAT" - - keep -- \
	bash -c 'cat "$1" >/dev/null' _ "$src"
for l in 3 1; do
	keep="rm"
	[[ $l == 3 ]] && keep="keep"
	row "zstd$l" "dd bs=1M | zstd -T0 -$l; sync" "$REPEAT" "$out/src.$l.zst" - $keep -- \
		bash -c 'set -o pipefail; dd if="$1" bs=1M status=none | zstd -T0 -"$2" -q >"$3" && sync "$3"' \
		_ "$src" "$l" "$out/src.$l.zst"
	if [[ $l == 3 ]]; then
		row "zstd${l}ns" "dd bs=1M | zstd -T0 -$l (no fsync)" "$REPEAT" "$out/src.$l.ns.zst" - rm -- \
			bash -c 'set -o pipefail; dd if="$1" bs=1M status=none | zstd -T0 -"$2" -q >"$3"' \
			_ "$src" "$l" "$out/src.$l.ns.zst"
	fi
	if ((have_imago)); then
		row "imago$l" "imago create -l $l" "$REPEAT" "$out/src.$l.imago" - $keep -- \
			"$IMAGO" create --sector -l "$l" "$src" "$out/src.$l.imago"
	fi
done
row qcow2 "qemu-img convert -O qcow2 -c; sync" "$QEMU_REPEAT" "$out/src.qcow2" - rm -- \
	bash -c 'qemu-img convert -f raw -O qcow2 -c "$1" "$2" && sync "$2"' _ "$src" "$out/src.qcow2"
if qemu-img create -q -f qcow2 -o compression_type=zstd "$out/probe.qcow2" 1M 2>/dev/null; then
	rm -f "$out/probe.qcow2"
	row qcow2z "qemu-img ... -o compression_type=zstd; sync" "$QEMU_REPEAT" "$out/src.z.qcow2" - rm -- \
		bash -c 'qemu-img convert -f raw -O qcow2 -c -o compression_type=zstd "$1" "$2" && sync "$2"' \
		_ "$src" "$out/src.z.qcow2"
fi
if ((have_imago)); then
	row restore "imago restore (new file)" "$REPEAT" "$out/restored.raw" "$out/src.3.imago" cmp -- \
		"$IMAGO" restore "$out/src.3.imago" "$out/restored.raw"
fi
row unzstd "zstd -d -c > file; sync" "$REPEAT" "$out/restored2.raw" "$out/src.3.zst" cmp -- \
	bash -c 'zstd -d -q -c "$1" >"$2" && sync "$2"' _ "$out/src.3.zst" "$out/restored2.raw"
row unzstdns "zstd -d -c > file (no fsync)" "$REPEAT" "$out/restored3.raw" "$out/src.3.zst" cmp -- \
	bash -c 'zstd -d -q -c "$1" >"$2"' _ "$out/src.3.zst" "$out/restored3.raw"
# Every restore row starts alike: the row before it deleted a large output, and freeing
# it (with the discards of a discard-mounted filesystem, and on a VM the return of the
# freed memory to the host) goes on after the sync; the first to write after that pays
# for it. A pause lets it settle, for imago and zstd alike.
D_PAUSE[restore]=$PAUSE D_PAUSE[unzstd]=$PAUSE D_PAUSE[unzstdns]=$PAUSE
if ((have_imago)); then
	row verify "imago verify" "$REPEAT" - "$out/src.3.imago" keep -- \
		"$IMAGO" verify "$out/src.3.imago"
fi
row ztest "zstd -t (test)" "$REPEAT" - "$out/src.3.zst" keep -- zstd -t -q "$out/src.3.zst"

# --- the runs ----------------------------------------------------------------------
say "source: $src ($((src_bytes >> 20)) MiB); $REPEAT round(s) of every row, median wall time"
# CPU time (ticks) used by the whole machine, and by this script with its children:
# the difference is what other processes took while we measured.
busy_ticks() { awk '/^cpu / { printf "%.0f\n", $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
own_ticks() { awk '{ printf "%.0f\n", $14 + $15 + $16 + $17 }' "/proc/$$/stat"; }
busy_start=$(busy_ticks) own_start=$(own_ticks) t_start=$(date +%s)
for ((round = 1; round <= REPEAT || round <= QEMU_REPEAT; round++)); do
	for id in "${ROWS[@]}"; do
		((round <= D_RUNS[$id])) || continue
		say "round $round/$REPEAT: ${D_LABEL[$id]}"
		run_once "$id" "$round"
	done
done
busy_end=$(busy_ticks) own_end=$(own_ticks) t_end=$(date +%s)
for id in "${ROWS[@]}"; do summarize "$id"; done

# --- report ------------------------------------------------------------------------
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
fs_used=$(dumpe2fs -h "$src" 2>/dev/null | awk -F: '
	/^Block count/ { n = $2 } /^Free blocks/ { f = $2 }
	END { if (n) printf "%.0f%%", 100 * (n - f) / n; else print "?" }')
zero_note=""
if [[ -n ${R_ALLOC[restore]:-} ]]; then
	zero_note="imago restore wrote a file with holes for zero chunks ($(mib "${R_ALLOC[restore]}") MiB allocated of $(mib "${R_SIZE[restore]}")); zstd -d -c > file writes every byte ($(mib "${R_ALLOC[unzstd]}") MiB allocated)."
fi

echo
echo "imago benchmark  $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/^MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
imago_v="imago not run"
((have_imago)) && imago_v=$("$IMAGO" --version | head -1)
echo "tools:   $imago_v, $(zstd -V | sed 's/^\*\*\* //; s/,.*//'), $(qemu-img --version | head -1)"
echo "source:  $src: $((src_bytes >> 20)) MiB raw disk, ext4 $fs_used used (files from /usr), free space holding stale data"
echo "method:  warm page cache, outputs on the same filesystem as the source, not synced inside the"
echo "         timing (before restore rows: sync, then a ${PAUSE} s pause); rows run round-robin,"
echo "         wall = median of ${REPEAT} run(s) (qemu-img: ${QEMU_REPEAT});"
echo "         MiB/s = source bytes / wall; cpu = user+sys of all processes (of the median run);"
echo "         peak RSS = largest single process (pipelines too), highest of all runs"
foreign=$(awk -v b="$((busy_end - busy_start))" -v o="$((own_end - own_start))" \
	-v t="$((t_end - t_start))" -v n="$(nproc)" -v hz="$(getconf CLK_TCK)" 'BEGIN {
	f = (b - o) / hz; if (f < 0) f = 0
	printf "%.0f %.0f", f, (t > 0 ? 100 * f / (t * n) : 0) }')
echo "others:  other processes (and kernel writeback) used ${foreign% *} CPU-s during the $((t_end - t_start)) s run (${foreign#* }% of the machine)"
if ((${foreign#* } > 10)); then
	echo "WARNING: the machine was not idle; wall times are noisy (cpu times less so), compare within rows of this run only"
fi
echo
printf '%-42s %8s %8s %8s %11s %7s %9s\n' tool "time s" "cpu s" "MiB/s" "output MiB" ratio "RSS MiB"
printf '%-42s %8s %8s %8s %11s %7s %9s\n' ---- ------ ----- ----- ---------- ----- -------
for id in "${ROWS[@]}"; do
	size=${R_SIZE[$id]:-} osz=- ratio=-
	if [[ -n $size ]]; then
		osz=$(mib "$size")
		case $id in
		restore | unzstd*) ;;
		*) ratio=$(awk -v a="$src_bytes" -v b="$size" 'BEGIN { printf "%.3f", a / b }') ;;
		esac
	fi
	awk -v l="${R_LABEL[$id]}" -v w="${R_WALL[$id]}" -v c="${R_CPU[$id]}" -v b="$src_bytes" \
		-v o="$osz" -v r="$ratio" -v m="${R_RSS[$id]}" 'BEGIN {
		printf "%-42s %8.2f %8.2f %8.0f %11s %7s %9.1f\n", l, w, c,
			(w > 0 ? b / 1048576 / w : 0), o, r, m / 1024 }'
done
echo
{
	[[ -z $zero_note ]] || echo "note: $zero_note"
	echo "note: imago create and restore fsync their output before they finish; the peers marked '; sync' do too (sync FILE, inside the timing)."
} | fold -s -w 100
echo

# X vs Y helpers: speed = Y's time / X's time (> 1: X is faster); size = X / Y (< 1: X is smaller).
speed() { awk -v a="${R_WALL[$1]}" -v b="${R_WALL[$2]}" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }'; }
cpur() { awk -v a="${R_CPU[$1]}" -v b="${R_CPU[$2]}" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }'; }
sizer() { awk -v a="${R_SIZE[$1]}" -v b="${R_SIZE[$2]}" 'BEGIN { printf "%.3f", a / b }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
verdict() { if "$@"; then echo met; else echo MISSED; fi; }

if ((have_imago)); then
	echo "ratios (speed: peer time / imago time, > 1 = imago faster; size: imago / peer, < 1 = imago smaller)"
	for l in 3 1; do
		s=$(speed "imago$l" "zstd$l") z=$(sizer "imago$l" "zstd$l")
		printf '  imago create -%s vs dd|zstd -T0 -%s (both fsync): speed %sx, size %sx   [bar: speed >= 1, size <= 1: %s]\n' \
			"$l" "$l" "$s" "$z" "$(verdict eval "ge $s 1 && ge 1 $z")"
	done
	printf '  imago create -3 vs dd|zstd -T0 -3 without fsync: speed %sx\n' "$(speed imago3 zstd3ns)"
	printf '  cpu time, dd|zstd / imago: -3 %sx, -1 %sx (above 1: imago uses less CPU)\n' \
		"$(cpur imago3 zstd3)" "$(cpur imago1 zstd1)"
	printf '  imago create -3 vs qemu-img -c (zlib):  speed %sx, size %sx\n' \
		"$(speed imago3 qcow2)" "$(sizer imago3 qcow2)"
	s=$(speed restore unzstd)
	printf '  imago restore vs zstd -d (both fsync): %sx   [bar: >= 1: %s]; vs zstd -d without fsync: %sx\n' \
		"$s" "$(verdict ge "$s" 1)" "$(speed restore unzstdns)"
	printf '  imago verify vs zstd -t: %sx\n' "$(speed verify ztest)"
	printf '  imago create -3 vs read limit: %s%% (create -1: %s%%)\n' \
		"$(awk -v a="${R_WALL[imago3]}" -v b="${R_WALL[read]}" 'BEGIN { printf "%.0f", 100 * b / a }')" \
		"$(awk -v a="${R_WALL[imago1]}" -v b="${R_WALL[read]}" 'BEGIN { printf "%.0f", 100 * b / a }')"
	peak=$(printf '%s\n' "${R_RSS[imago3]}" "${R_RSS[imago1]}" | sort -n | tail -1)
	rss_mib=$((peak / 1024))
	printf '  peak RSS imago create: %s MiB (bar: < 256 MiB: %s); restore %s MiB, verify %s MiB\n' \
		"$rss_mib" "$(verdict test "$rss_mib" -lt 256)" \
		"$((R_RSS[restore] / 1024))" "$((R_RSS[verify] / 1024))"
else
	echo "imago was not run (no working $IMAGO): peer figures only"
	printf '  dd|zstd -T0 -3 vs read limit: %s%%\n' \
		"$(awk -v a="${R_WALL[zstd3]}" -v b="${R_WALL[read]}" 'BEGIN { printf "%.0f", 100 * b / a }')"
fi
echo "round trips: restored outputs compared with cmp: identical"
rm -rf "$out"
