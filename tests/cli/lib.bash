# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
#
# Shared helpers for the CLI tests (tests/cli/*.sh). Source it, do not run it; it is not
# named *.sh so that tests/run.sh, which runs every tests/cli/*.sh, leaves it alone.
#
# Protocol (counted by tests/run.sh): one line per case on stdout,
#   PASS: <script>/<case>
#   FAIL: <script>/<case>: <reason>
# Nothing is ever skipped: a missing tool is a FAIL.
#
# Environment: IMAGO (the binary), IMAGO_BUILD (build dir), TMPDIR (private scratch).
#
# A case is written as
#   begin name
#   run 0 "$IMAGO" verify "$img"      # checks the exit code (and that it did not hang)
#   same "$a" "$b"                    # byte-for-byte comparison
#   finish                            # prints PASS or FAIL with every problem found
# Everything a script creates (files, loop devices, mounts) is registered with
# `defer` and undone in reverse order on exit, whatever happened.

set -uo pipefail

T_SCRIPT=$(basename "${0%.sh}")
T_PASSED=0
T_FAILED=0
T_CASE=
T_ERRS=()
T_DEFER=()
RC=0

# The system python (a python3 shim on PATH, as pyenv installs, can take half a second
# to start; the helpers below run it often).
PY=/usr/bin/python3
[[ -x $PY ]] || PY=python3

# Timeout (seconds) for any single imago run: a hang is a failure, not a stuck suite.
T_TIMEOUT=${IMAGO_TEST_TIMEOUT:-120}

# ---------------------------------------------------------------- reporting

oneline() { tr '\n\r\t' '   ' <<<"$*" | sed 's/  */ /g; s/ $//'; }

pass() {
	echo "PASS: $T_SCRIPT/$1"
	T_PASSED=$((T_PASSED + 1))
}

fail() {
	local c=$1
	shift
	echo "FAIL: $T_SCRIPT/$c: $(oneline "$*")"
	T_FAILED=$((T_FAILED + 1))
}

begin() {
	T_CASE=$1
	T_ERRS=()
}

# Record a problem with the current case (the case goes on to check the rest).
err() { T_ERRS+=("$(oneline "$*")"); }

# Returns 0 when the current case has no problem so far.
ok() { ((${#T_ERRS[@]} == 0)); }

finish() {
	if ok; then
		pass "$T_CASE"
	else
		local IFS=';'
		fail "$T_CASE" "${T_ERRS[*]}"
	fi
	T_CASE=
	T_ERRS=()
}

# Print the summary and exit with 0 when every case passed.
done_testing() {
	echo "# $T_SCRIPT: $T_PASSED passed, $T_FAILED failed" >&2
	((T_FAILED == 0))
	exit $?
}

# Stop the script: what cannot be set up fails as a case of its own.
die_setup() {
	fail "${T_CASE:-setup}" "$*"
	done_testing
}

# ---------------------------------------------------------------- cleanup

# defer CMD...: run CMD at exit (last registered, first run).
defer() {
	local q
	printf -v q '%q ' "$@"
	T_DEFER+=("$q")
}

t_cleanup() {
	local i
	for ((i = ${#T_DEFER[@]} - 1; i >= 0; i--)); do
		eval "${T_DEFER[i]}" >/dev/null 2>&1 || true
	done
	T_DEFER=()
}
trap t_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The private work directory of the script.
W=$(mktemp -d "${TMPDIR:-/tmp}/imago-$T_SCRIPT.XXXXXX") || {
	fail setup "cannot make a work directory under ${TMPDIR:-/tmp}"
	exit 1
}
defer rm -rf -- "$W"

# ---------------------------------------------------------------- prerequisites

# need TOOL...: every tool must be there (CI installs them); otherwise the script fails.
need() {
	local t missing=()
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	((${#missing[@]} == 0)) || die_setup "missing tools: ${missing[*]} (scripts/deps.sh installs them)"
}

need_imago() {
	[[ -n ${IMAGO:-} ]] || die_setup "IMAGO is not set (path to the imago binary)"
	[[ -x $IMAGO ]] || die_setup "IMAGO=$IMAGO is not an executable file"
	need timeout cmp od xxd
}

need_root() {
	((EUID == 0)) || die_setup "must run as root (loop devices, mounts)"
}

# ---------------------------------------------------------------- running

# run WANT CMD...: run CMD (stdout to $W/stdout, stderr to $W/stderr, stdin /dev/null),
# set RC, record a problem when the exit code is not WANT. Returns 0 when it matched.
run() {
	local want=$1
	shift
	timeout -k 5 "$T_TIMEOUT" "$@" </dev/null >"$W/stdout" 2>"$W/stderr"
	RC=$?
	check_rc "$want" "$@"
}

# run_in INPUT WANT CMD...: like run, with INPUT fed to stdin through a pipe (not
# seekable: a sequential reader).
run_in() {
	local in=$1 want=$2
	shift 2
	cat -- "$in" 2>/dev/null | timeout -k 5 "$T_TIMEOUT" "$@" >"$W/stdout" 2>"$W/stderr"
	RC=${PIPESTATUS[1]}
	check_rc "$want" "$@"
}

# run_redir INPUT WANT CMD...: like run, with stdin redirected from the file INPUT
# (seekable).
run_redir() {
	local in=$1 want=$2
	shift 2
	timeout -k 5 "$T_TIMEOUT" "$@" <"$in" >"$W/stdout" 2>"$W/stderr"
	RC=$?
	check_rc "$want" "$@"
}

check_rc() {
	local want=$1
	shift
	if ((RC == 124 || RC == 137)); then
		err "'$(describe "$@")' hung (killed after ${T_TIMEOUT}s)"
		return 1
	fi
	if ((RC != want)); then
		err "'$(describe "$@")' exited $RC, want $want (stderr: $(head -c 300 "$W/stderr"))"
		return 1
	fi
	return 0
}

# A short description of a command line: program basename and arguments basenames.
describe() {
	local a out=()
	for a in "$@"; do
		if [[ $a == /* ]]; then out+=("${a##*/}"); else out+=("$a"); fi
	done
	echo "${out[*]}"
}

# stderr_one_line [ERE...]: the last run's stderr is exactly one line starting with
# "imago: " and matching every ERE given (case-insensitive).
stderr_one_line() {
	local lines re
	mapfile -t lines <"$W/stderr"
	if ((${#lines[@]} != 1)); then
		err "stderr has ${#lines[@]} lines, want 1: $(head -c 300 "$W/stderr")"
		return 1
	fi
	if [[ ${lines[0]} != 'imago: '* ]]; then
		err "stderr does not start with 'imago: ': ${lines[0]:0:200}"
		return 1
	fi
	shopt -s nocasematch
	for re in "$@"; do
		if ! [[ ${lines[0]} =~ $re ]]; then
			shopt -u nocasematch
			err "stderr does not match /$re/: ${lines[0]:0:300}"
			return 1
		fi
	done
	shopt -u nocasematch
	return 0
}

stderr_empty() {
	[[ -s $W/stderr ]] || return 0
	err "stderr not empty: $(head -c 200 "$W/stderr")"
	return 1
}

# same A B [N]: the files (or devices) are byte-identical (in their first N bytes).
same() {
	local out limit=()
	(($# > 2)) && limit=(-n "$3")
	out=$(cmp "${limit[@]}" -- "$1" "$2" 2>&1) && return 0
	err "${1##*/} and ${2##*/} differ: $out"
	return 1
}

# unchanged FILE COPY: FILE is still what COPY holds.
unchanged() {
	cmp -s -- "$1" "$2" && return 0
	err "${1##*/} was modified"
	return 1
}

absent() {
	[[ ! -e $1 && ! -L $1 ]] && return 0
	err "${1##*/} exists and should not"
	return 1
}

# no_temp DIR: no temporary image (*.imago-tmp-*) left in DIR.
no_temp() {
	local left
	left=$(find "$1" -maxdepth 1 -name '*.imago-tmp-*' -printf '%f ' 2>/dev/null)
	[[ -z $left ]] && return 0
	err "temporary file left behind: $left"
	return 1
}

fsize() { stat -c %s -- "$1"; }

# Apparent size of a file or the size of a block device.
dev_size() {
	if [[ -b $1 ]]; then blockdev --getsize64 "$1"; else stat -c %s -- "$1"; fi
}

# Allocated bytes of a file.
alloc_bytes() { echo $(($(stat -c '%b * %B' -- "$1"))); }

# ---------------------------------------------------------------- making sources

# make_random FILE SIZE [SEED]: SIZE pseudo-random bytes, the same for the same seed.
make_random() {
	"$PY" - "$1" "$2" "${3:-1}" <<'EOF' || die_setup "cannot make random file $1"
import random, sys
path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
with open(path, "wb") as f:
    while size > 0:
        n = min(size, 1 << 22)
        f.write(r.randbytes(n))
        size -= n
EOF
}

# The text corpus: every copyright file under /usr/share/doc, in a fixed order.
T_CORPUS=
text_corpus() {
	if [[ -z $T_CORPUS ]]; then
		T_CORPUS=$W/.corpus
		find /usr/share/doc -name copyright -type f -print0 2>/dev/null | sort -z |
			xargs -0 cat -- >"$T_CORPUS" 2>/dev/null
		[[ $(fsize "$T_CORPUS") -gt 65536 ]] || die_setup "no text under /usr/share/doc"
	fi
	echo "$T_CORPUS"
}

# make_text FILE SIZE: SIZE bytes of real text (the corpus, repeated as needed).
make_text() {
	local corpus
	text_corpus >/dev/null
	corpus=$T_CORPUS
	: >"$1"
	while (($(fsize "$1") < $2)); do
		cat -- "$corpus" >>"$1"
	done
	truncate -s "$2" -- "$1"
}

make_zero() { head -c "$2" /dev/zero >"$1"; }

# append_random FILE SIZE SEED / append_text FILE SIZE / append_zero FILE SIZE
append_random() {
	make_random "$W/.piece" "$2" "$3"
	cat -- "$W/.piece" >>"$1"
	rm -f -- "$W/.piece"
}
append_text() {
	make_text "$W/.piece" "$2"
	cat -- "$W/.piece" >>"$1"
	rm -f -- "$W/.piece"
}
append_zero() { head -c "$2" /dev/zero >>"$1"; }

# make_mixed FILE: about 3 MiB of 64 KiB pieces of random, text and zeros, with a short
# tail (not a multiple of any chunk or sector size).
make_mixed() {
	local f=$1 k=64 i
	: >"$f"
	for i in 1 2 3; do
		append_random "$f" $((k * 1024 * 3)) "$i"
		append_text "$f" $((k * 1024 * 4))
		append_zero "$f" $((k * 1024 * 5))
	done
	append_random "$f" $((k * 1024 * 2)) 9
	append_zero "$f" $((k * 1024))
	append_text "$f" 5000
}

# ---------------------------------------------------------------- image bytes

# u64 FILE OFFSET / u32 / u16 / u8: little-endian unsigned integers.
u64() { od -An -v --endian=little -t u8 -j "$2" -N 8 -- "$1" | tr -d ' \n'; }
u32() { od -An -v --endian=little -t u4 -j "$2" -N 4 -- "$1" | tr -d ' \n'; }
u16() { od -An -v --endian=little -t u2 -j "$2" -N 2 -- "$1" | tr -d ' \n'; }
u8() { od -An -v -t u1 -j "$2" -N 1 -- "$1" | tr -d ' \n'; }

# bytes_hex FILE OFFSET LEN: the bytes as lowercase hex.
bytes_hex() { od -An -v -t x1 -j "$2" -N "$3" -- "$1" | tr -d ' \n'; }

# poke_hex FILE OFFSET HEX: overwrite bytes in place.
poke_hex() {
	xxd -r -p <<<"$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# poke_u64 FILE OFFSET VALUE / poke_u16
poke_u64() { poke_hex "$1" "$2" "$(printf '%016x' "$3" | fold -w2 | tac | tr -d '\n')"; }
poke_u16() { poke_hex "$1" "$2" "$(printf '%04x' "$3" | fold -w2 | tac | tr -d '\n')"; }

# flip FILE OFFSET MASK: xor one byte with MASK (1..255).
flip() {
	local b
	b=$(u8 "$1" "$2")
	poke_hex "$1" "$2" "$(printf '%02x' $((b ^ $3)))"
}

# xxh3 FILE OFFSET LEN: XXH3-64 (seed 0) of a byte range, as 16 hex digits (big-endian).
xxh3() {
	tail -c +$(($2 + 1)) -- "$1" | head -c "$3" | xxhsum -H3 - | awk '{print $NF}'
}

# xxh3_le FILE OFFSET LEN: the same, as the 8 little-endian bytes stored in the format.
xxh3_le() { xxh3 "$@" | fold -w2 | tac | tr -d '\n'; }

# Image layout (docs/FORMAT.md): sets L_SIZE, L_META, L_EXT, L_IDX, L_TRAIL.
# shellcheck disable=SC2034 # globals for the caller
layout() {
	L_SIZE=$(fsize "$1")
	L_TRAIL=$((L_SIZE - 128))
	L_META=$(u64 "$1" $((L_TRAIL + 8)))
	L_EXT=$(u64 "$1" $((L_TRAIL + 16)))
	L_IDX=$(u64 "$1" $((L_TRAIL + 24)))
}

# frames IMAGE: one line per frame in file order: "file_offset type logical_offset
# logical_length stored_length", walking from frames_offset (header byte 56) to the
# metadata section.
frames() {
	local img=$1 off end type lo ll sl
	off=$(u64 "$img" 56)
	layout "$img"
	end=$L_META
	while ((off + 48 <= end)); do
		[[ $(bytes_hex "$img" "$off" 4) == 494d4746 ]] || {
			echo "bad-frame-magic-at $off"
			return 1
		}
		type=$(u8 "$img" $((off + 4)))
		lo=$(u64 "$img" $((off + 8)))
		ll=$(u64 "$img" $((off + 16)))
		sl=$(u64 "$img" $((off + 24)))
		echo "$off $type $lo $ll $sl"
		off=$((off + 48 + sl))
	done
	((off == end)) || {
		echo "frames-end-at $off-not-$end"
		return 1
	}
}

# Recompute the header checksum (after patching the header), its copy in the trailer,
# and the trailer checksum, so that only the patched field is wrong.
rechecksum() {
	local img=$1 h t
	t=$(($(fsize "$img") - 128))
	h=$(xxh3_le "$img" 0 504)
	poke_hex "$img" 504 "$h"
	poke_hex "$img" $((t + 96)) "$h"
	poke_hex "$img" $((t + 120)) "$(xxh3_le "$img" "$t" 120)"
}

# content_digest FILE: the content digest of docs/FORMAT.md §7 (SHA-256 over the SHA-256
# of each 64 KiB leaf), computed from the raw device bytes.
content_digest() {
	"$PY" - "$1" <<'EOF2'
import hashlib, struct, sys
with open(sys.argv[1], "rb") as f:
    size = f.seek(0, 2)
    f.seek(0)
    h = hashlib.sha256(b"imago-sha256-tree-v1" + struct.pack("<Q", size))
    while True:
        leaf = f.read(65536)
        if not leaf:
            break
        h.update(hashlib.sha256(leaf).digest())
print(h.hexdigest())
EOF2
}

# content_digest_recipe FILE: the same, with the shell recipe printed in docs/FORMAT.md §7.
content_digest_recipe() {
	local f=$1 size leaves=$W/.leaves
	size=$(dev_size "$f")
	: >"$leaves"
	if ((size > 0)); then
		split -b 65536 --filter='sha256sum | cut -c1-64 | xxd -r -p' -- "$f" >"$leaves" || return 1
	fi
	{
		printf imago-sha256-tree-v1
		printf '%016x' "$size" | fold -w2 | tac | tr -d '\n' | xxd -r -p
		cat -- "$leaves"
	} | sha256sum | cut -c1-64
	rm -f -- "$leaves"
}

# ---------------------------------------------------------------- devices and mounts

# loop_attach FILE [losetup options...]: attach FILE to a free loop device, set LOOP to
# the device path, detach at exit.
LOOP=
loop_attach() {
	local file=$1
	shift
	LOOP=$(losetup -f --show "$@" -- "$file") || die_setup "losetup $file failed"
	defer loop_release "$LOOP" "$file"
}

# loop_release DEV FILE: detach DEV if it is still FILE's loop device. A script that
# detached DEV itself earlier must not detach whatever took the number since (another
# script running at the same time, or a later case).
loop_release() {
	local back want
	back=$(losetup -n -O BACK-FILE -- "$1" 2>/dev/null) || return 0
	want=$(realpath -- "$2" 2>/dev/null) || want=$2
	[[ $back == "$want" || $back == "$want (deleted)" ]] && losetup -d "$1"
	return 0
}

# loop_partitions DEV: make the kernel see DEV's partitions (device nodes DEVpN).
loop_partitions() {
	[[ -b ${1}p1 ]] && return 0
	partx -a "$1" >/dev/null 2>&1 || blockdev --rereadpt "$1" >/dev/null 2>&1
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		[[ -b ${1}p1 ]] && return 0
		sleep 0.2
	done
	die_setup "no partition device ${1}p1"
}

# mount_at DIR MOUNT-ARGS...: mount (DIR last), unmount at exit.
mount_at() {
	local dir=$1
	shift
	mkdir -p -- "$dir"
	mount "$@" "$dir" || die_setup "mount $* $dir failed"
	defer umount -l "$dir"
}
