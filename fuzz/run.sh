#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Build the libFuzzer targets and run each of them for a while.
#
#   fuzz/run.sh SECONDS [TARGET...]        (TARGET: image; default: every target)
#
# Builds only the fuzz_* binaries in build-fuzz/ (CC=clang, -Dfuzz=true, -Db_lundef=false,
# debugoptimized: ASan + UBSan + coverage, assertions on), then runs each target for
# SECONDS on a working corpus build-fuzz/corpus/TARGET/: the seeds of fuzz/corpus/TARGET/
# are copied into it and what the fuzzer adds stays there, so the repository is never
# written. libFuzzer runs in fork mode and goes on after a finding, so one run collects
# every distinct crash, leak, timeout (25 s per input) and out-of-memory (2 GiB) it meets.
#
# Findings are saved in build-fuzz/crashes/TARGET/ (crash-*, leak-*, timeout-*, oom-*);
# reproduce one with `build-fuzz/fuzz/fuzz_TARGET FILE` (or build/fuzz/replay_TARGET FILE).
# Prints executions and coverage per target; exit status 1 if this run made any finding.
#
# Environment: FUZZ_BUILD (build directory, default build-fuzz), FUZZ_JOBS (processes in
# parallel, default 1), FUZZ_ARGS (more libFuzzer flags).
set -euo pipefail

if (($# < 1)) || ! [[ $1 =~ ^[0-9]+$ ]] || (($1 == 0)); then
	echo "usage: fuzz/run.sh SECONDS [TARGET...]" >&2
	exit 2
fi
secs=$1
shift

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${FUZZ_BUILD:-$src/build-fuzz}
jobs=${FUZZ_JOBS:-1}
read -r -a extra <<<"${FUZZ_ARGS:-}"

if (($#)); then
	targets=("$@")
else
	targets=()
	for f in "$src"/fuzz/fuzz_*.c; do
		t=${f##*/fuzz_}
		targets+=("${t%.c}")
	done
fi

command -v clang >/dev/null || { echo "run.sh: clang is needed (scripts/deps.sh)" >&2; exit 1; }
if [[ ! -f $build/build.ninja ]]; then
	CC=clang meson setup "$build" "$src" -Dfuzz=true -Db_lundef=false \
		--buildtype=debugoptimized >"${TMPDIR:-/tmp}/imago-fuzz-setup.log" 2>&1 || {
		cat "${TMPDIR:-/tmp}/imago-fuzz-setup.log" >&2
		exit 1
	}
fi
bins=()
for t in "${targets[@]}"; do
	[[ -f $src/fuzz/fuzz_$t.c ]] || { echo "run.sh: no fuzz target '$t'" >&2; exit 2; }
	bins+=("fuzz/fuzz_$t")
done
mkdir -p "$build/logs"
if ! ninja -C "$build" "${bins[@]}" >"$build/logs/build.log" 2>&1; then
	tail -n 40 "$build/logs/build.log" >&2
	echo "run.sh: build failed (full log: $build/logs/build.log)" >&2
	exit 1
fi
for b in "${bins[@]}"; do
	[[ -x $build/$b ]] || { echo "run.sh: $build/$b was not built" >&2; exit 1; }
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

total_new=0
summary=()
for t in "${targets[@]}"; do
	seeds=$src/fuzz/corpus/$t
	work=$build/corpus/$t
	crashes=$build/crashes/$t
	log=$build/logs/$t.log
	mkdir -p "$work" "$crashes" "${log%/*}"
	if [[ -d $seeds ]]; then
		find "$seeds" -type f -exec cp -n -t "$work" {} +
	fi
	dict=()
	[[ -f $src/fuzz/$t.dict ]] && dict=(-dict="$src/fuzz/$t.dict")
	# Partition-table, filesystem and E01 seeds are real (trimmed) files of up to 256 KiB.
	max_len=65536
	[[ $t == fs_* || $t == part || $t == e01 ]] && max_len=262144
	marker=$(mktemp "${TMPDIR:-/tmp}/imago-fuzz-mark.XXXXXX")
	start_corpus=$(find "$work" -type f | wc -l)

	echo "== fuzz_$t: ${secs}s, $jobs job(s), corpus $start_corpus files, log $log"
	set +e
	(cd "$build" && "./fuzz/fuzz_$t" \
		-max_total_time="$secs" -fork="$jobs" \
		-ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
		-timeout=25 -rss_limit_mb=2048 -max_len="$max_len" -print_final_stats=1 \
		-artifact_prefix="$crashes/" "${dict[@]}" "${extra[@]}" "$work") >"$log" 2>&1 &
	pid=$!
	# Show progress: libFuzzer's stats lines, about every 30 s.
	last=0
	while kill -0 "$pid" 2>/dev/null; do
		sleep 2
		now=$(date +%s)
		if ((now - last >= 30)); then
			line=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
			[[ -n $line ]] && echo "   $line"
			last=$now
		fi
	done
	wait "$pid"
	rc=$?
	set -e

	mapfile -t new < <(find "$crashes" -type f -newer "$marker" \
		\( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
	rm -f "$marker"
	# Fork mode: "#N: cov: C ft: F corp: K exec/s: E ..."; plain mode: "#N  DONE cov: ...".
	last_stats=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
	execs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$last_stats")
	cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last_stats")
	ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last_stats")
	corp=$(find "$work" -type f | wc -l)
	line="fuzz_$t: ${secs}s, ${execs:-?} execs, cov ${cov:-?} edges, ft ${ft:-?}, corpus $start_corpus -> $corp files, ${#new[@]} new finding(s), libFuzzer exit $rc"
	echo "== $line"
	summary+=("$line")
	for f in "${new[@]}"; do
		echo "   finding: $f"
	done
	if ((${#new[@]} == 0 && rc != 0)); then
		echo "   libFuzzer exited $rc without a saved finding; see $log" >&2
		total_new=$((total_new + 1))
	fi
	total_new=$((total_new + ${#new[@]}))
done

echo "== summary"
printf '   %s\n' "${summary[@]}"
if ((total_new)); then
	echo "== $total_new finding(s); reproduce with: $build/fuzz/fuzz_TARGET FILE" >&2
	exit 1
fi
