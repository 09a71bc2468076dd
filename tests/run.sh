#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The imago test-suite runner.
#
#   tests/run.sh [--prefix P] [--counts FILE] BUILD_DIR
#
# Runs, one after another:
#   1. every unit-test program named in tests/meson.build (`unit_tests = [...]`), from
#      BUILD_DIR/tests/;
#   2. every tests/cli/*.sh script, in sorted order, with IMAGO=BUILD_DIR/imago,
#      IMAGO_BUILD=BUILD_DIR, IMAGO_SRC=<repo root> and a fresh, empty TMPDIR of its own;
#   3. every fuzz corpus replay program BUILD_DIR/fuzz/replay_NAME over the files of its
#      corpus fuzz/corpus/NAME/.
#
# Protocol: a test program prints one line per case, "PASS: name" or "FAIL: name: why".
# The runner counts those lines. Besides:
#   - a program that exits nonzero without printing any FAIL line counts as one FAIL
#     named after the program;
#   - a program killed by a signal or by the time limit counts as one FAIL more;
#   - a program that exits 0 having reported nothing counts as one FAIL (no results);
#   - there is no SKIP: a "SKIP:" line counts as a FAIL;
#   - a listed program that is missing, or a replay without a corpus, is a FAIL.
#
# --prefix P puts P in front of every test name printed (e.g. "asan/").
# --exclude-cli GLOB leaves the tests/cli scripts whose base name matches GLOB out of this
# run (repeatable); they are neither run nor counted, and the runner says so.
# --only GLOB runs only the unit tests and tests/cli scripts whose name (test_reader,
# threads.sh) matches GLOB (repeatable), and no fuzz corpus replay (make check-tsan).
# --counts FILE also writes "PASSED FAILED" to FILE.
# Environment: TEST_TIMEOUT (seconds per program, default 300), TEST_VERBOSE=1 (print
# every line of every program, not only FAIL lines and the per-program summary).
#
# Full logs are kept in BUILD_DIR/test-logs/ (printed at the end). The last line printed
# is always "N passed, N failed"; the exit status is 0 iff no test failed and at least one
# passed.
set -uo pipefail

prefix=""
counts_file=""
excludes=()
onlys=()
while (($#)); do
	case $1 in
	--prefix) prefix=${2?--prefix needs a value}; shift 2 ;;
	--prefix=*) prefix=${1#--prefix=}; shift ;;
	--counts) counts_file=${2?--counts needs a value}; shift 2 ;;
	--exclude-cli) excludes+=("${2?--exclude-cli needs a value}"); shift 2 ;;
	--only) onlys+=("${2?--only needs a value}"); shift 2 ;;
	--counts=*) counts_file=${1#--counts=}; shift ;;
	-h | --help) sed -n '3,/^set /{/^#/{s/^# \{0,1\}//;p}}' "$0"; exit 0 ;;
	--) shift; break ;;
	-*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
if (($# != 1)); then
	echo "usage: tests/run.sh [--prefix P] [--counts FILE] BUILD_DIR" >&2
	exit 2
fi

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "$1" 2>/dev/null && pwd) || {
	echo "run.sh: no build directory $1" >&2
	echo "0 passed, 1 failed"
	exit 1
}
timeout_s=${TEST_TIMEOUT:-300}
verbose=${TEST_VERBOSE:-0}

logdir=$build/test-logs
rm -rf "$logdir"
mkdir -p "$logdir"
rundir=$(mktemp -d "${TMPDIR:-/tmp}/imago-tests.XXXXXX")
# reap DIR — unmount what is mounted under DIR and detach loop devices backed by files
# under DIR (what a killed or careless test left behind); prints how many.
reap() {
	local dir=$1 n=0 m dev back
	while read -r m; do
		if [[ $m == "$dir"/* ]] && umount -l "$m" 2>/dev/null; then
			n=$((n + 1))
		fi
	done < <(findmnt -rn -o TARGET 2>/dev/null | LC_ALL=C sort -r)
	while read -r dev back; do
		if [[ $back == "$dir"/* ]] && losetup -d "$dev" 2>/dev/null; then
			n=$((n + 1))
		fi
	done < <(losetup -ln -O NAME,BACK-FILE 2>/dev/null)
	echo "$n"
}
cleanup() {
	# Tests clean up after themselves; this catches what a killed test left behind.
	if [[ -n ${rundir:-} && -d $rundir ]]; then
		reap "$rundir" >/dev/null
		rm -rf --one-file-system "$rundir"
	fi
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM

passed=0
failed=0
declare -a failures=()

fail() { # NAME REASON
	failed=$((failed + 1))
	failures+=("$prefix$1: $2")
	echo "FAIL: $prefix$1: $2"
}

# run_prog NAME LOGFILE COMMAND... — run one test program, count its results.
run_prog() {
	local name=$1 log=$2
	shift 2
	local t0 t1 rc np nf ns
	t0=$(date +%s.%N)
	# Under a sanitizer build (ASAN_OPTIONS/UBSAN_OPTIONS set), reports go to files of
	# their own, so they are seen even when a test script captures stderr.
	local sandir="" sanenv=()
	if [[ -n ${ASAN_OPTIONS:-}${UBSAN_OPTIONS:-} ]]; then
		sandir=$logdir/sanitizer/${name//\//_}
		mkdir -p "$sandir"
		sanenv=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$sandir/report"
			"UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$sandir/report")
	fi
	if [[ -n ${TSAN_OPTIONS:-} ]]; then
		sandir=$logdir/sanitizer/${name//\//_}
		mkdir -p "$sandir"
		sanenv=(env "TSAN_OPTIONS=$TSAN_OPTIONS:log_path=$sandir/report")
	fi
	# (the braces keep bash's own "Segmentation fault" notice out of the output)
	{ timeout -k 10 "$timeout_s" "${sanenv[@]}" "$@" </dev/null >"$log" 2>&1; } 2>/dev/null
	rc=$?
	t1=$(date +%s.%N)

	np=$(grep -c '^PASS: ' "$log")
	nf=$(grep -c '^FAIL: ' "$log")
	ns=$(grep -c '^SKIP:' "$log")
	passed=$((passed + np))

	local line
	while IFS= read -r line; do
		if [[ $line == FAIL:\ * ]]; then
			failed=$((failed + 1))
			failures+=("$prefix${line#FAIL: }")
			echo "FAIL: $prefix${line#FAIL: }"
		elif [[ $line == SKIP:* ]]; then
			failed=$((failed + 1))
			line=${line#SKIP:}
			line=${line# }
			failures+=("$prefix$line (skipped; we never skip)")
			echo "FAIL: $prefix$line (skipped; we never skip)"
		elif [[ $verbose == 1 ]]; then
			if [[ $line == PASS:\ * ]]; then
				echo "PASS: $prefix${line#PASS: }"
			else
				echo "  | $line"
			fi
		fi
	done <"$log"

	# Sanitizer reports (in files, or on the program's own output) fail the program.
	local reports=() san=""
	if [[ -n $sandir ]]; then
		mapfile -t reports < <(find "$sandir" -type f -size +0 | LC_ALL=C sort)
	fi
	if ((${#reports[@]})) || grep -q -e '^==[0-9]*==ERROR: ' -e ': runtime error: ' \
		-e '^WARNING: ThreadSanitizer: ' "$log"; then
		san=$(cat "${reports[@]}" "$log" 2>/dev/null |
			grep -m1 -e '==ERROR: ' -e ': runtime error: ' -e 'WARNING: ThreadSanitizer: ' |
			sed 's/^==[0-9]*==//')
		san=${san:-report in ${sandir:-the log}}
	fi

	local status="ok" extra=0
	if ((rc == 124 || rc == 137)); then
		fail "$name" "timed out after ${timeout_s}s"
		status="timed out"
		extra=$((extra + 1))
	elif ((rc > 128)); then
		fail "$name" "killed by signal $((rc - 128))"
		status="signal $((rc - 128))"
		extra=$((extra + 1))
	elif ((rc != 0 && nf + ns == 0)) && [[ -z $san ]]; then
		fail "$name" "exited with status $rc without reporting a failure"
		status="exit $rc"
		extra=$((extra + 1))
	elif ((rc == 0 && np + nf + ns == 0)) && [[ -z $san ]]; then
		fail "$name" "reported no results"
		status="no results"
		extra=$((extra + 1))
	elif ((rc != 0)); then
		status="exit $rc"
	fi
	if [[ -n $san ]]; then
		fail "$name" "sanitizer: $san"
		[[ $status == ok ]] && status="sanitizer"
		extra=$((extra + 1))
		if ((${#reports[@]})); then
			head -n 25 "${reports[0]}" | sed 's/^/  ! /'
		fi
	fi

	local secs
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	printf '%-40s %4d passed %3d failed  %6ss  %s\n' "$prefix$name" "$np" "$((nf + ns + extra))" "$secs" "$status"

	# For a failing program, show the end of its output (what is not a PASS line).
	if [[ $verbose != 1 ]] && { [[ $status != ok ]] || ((nf + ns + extra > 0)); }; then
		grep -v -e '^PASS: ' -e '^FAIL: ' -e '^SKIP:' "$log" | tail -n 15 | sed 's/^/  | /'
	fi
}

echo "== imago test suite: build $build${prefix:+ (prefix $prefix)}"
cd "$src" || exit 1

# 1. Unit tests named in tests/meson.build.
mapfile -t units < <(awk '
	/^[ \t]*unit_tests[ \t]*=/ { on = 1 }
	on {
		line = $0; sub(/#.*/, "", line)
		while (match(line, /'\''[^'\'']+'\''/)) {
			print substr(line, RSTART + 1, RLENGTH - 2)
			line = substr(line, RSTART + RLENGTH)
		}
		if ($0 ~ /\]/) exit
	}' "$src/tests/meson.build")
if ((${#units[@]} == 0)); then
	fail "unit" "no unit_tests list found in tests/meson.build"
fi
# only NAME: NAME is in this run (no --only given, or one matching it).
only() {
	local g
	((${#onlys[@]} == 0)) && return 0
	for g in "${onlys[@]}"; do
		# shellcheck disable=SC2053 # a glob on purpose
		[[ $1 == $g ]] && return 0
	done
	return 1
}
mkdir -p "$logdir/unit"
for u in "${units[@]}"; do
	only "$u" || continue
	if [[ ! -x $build/tests/$u ]]; then
		fail "unit/$u" "not built ($build/tests/$u missing)"
		continue
	fi
	run_prog "unit/$u" "$logdir/unit/$u.log" "$build/tests/$u"
done

# 2. CLI test scripts.
mkdir -p "$logdir/cli"
shopt -s nullglob
scripts=("$src"/tests/cli/*.sh)
if ((${#scripts[@]} == 0)); then
	fail "cli" "no tests/cli/*.sh scripts"
fi
if [[ ! -x $build/imago ]]; then
	fail "cli" "$build/imago not built"
fi
left_out=()
for s in "${scripts[@]}"; do
	base=$(basename "$s" .sh)
	skip=0
	for x in "${excludes[@]}"; do
		# shellcheck disable=SC2053 # a glob on purpose
		[[ $base.sh == $x ]] && skip=1
	done
	if ((skip)); then
		left_out+=("$base.sh")
		continue
	fi
	only "$base.sh" || continue
	tmp="$rundir/cli-$base"
	mkdir -p "$tmp"
	run_prog "cli/$base.sh" "$logdir/cli/$base.log" \
		env IMAGO="$build/imago" IMAGO_BUILD="$build" IMAGO_SRC="$src" TMPDIR="$tmp" \
		bash "$s"
	left=$(reap "$tmp")
	if ((left > 0)); then
		fail "cli/$base.sh" "left $left mount(s) or loop device(s) behind (now removed)"
	fi
	rm -rf --one-file-system "$tmp"
done

# 3. Fuzz corpus replay.
mkdir -p "$logdir/fuzz"
replays=("$build"/fuzz/replay_*)
((${#onlys[@]})) && replays=()
if ((${#replays[@]} == 0 && ${#onlys[@]} == 0)); then
	fail "fuzz" "no replay programs in $build/fuzz/"
fi
for r in "${replays[@]}"; do
	[[ -x $r && -f $r ]] || continue
	prog=$(basename "$r")
	name=${prog#replay_}
	corpus=$src/fuzz/corpus/$name
	files=()
	if [[ -d $corpus ]]; then
		mapfile -t files < <(find "$corpus" -type f | LC_ALL=C sort)
	fi
	if ((${#files[@]} == 0)); then
		fail "fuzz/$prog" "empty or missing corpus $corpus"
		continue
	fi
	run_prog "fuzz/$prog" "$logdir/fuzz/$prog.log" "$r" "${files[@]}"
done

echo "== logs: $logdir"
if ((${#left_out[@]})); then
	echo "== not in this run (--exclude-cli, not counted): ${left_out[*]}"
fi
if ((${#failures[@]})); then
	echo "== failures:"
	printf '   %s\n' "${failures[@]}"
fi
[[ -n $counts_file ]] && printf '%s %s\n' "$passed" "$failed" >"$counts_file"
echo "$passed passed, $failed failed"
((failed == 0 && passed > 0))
