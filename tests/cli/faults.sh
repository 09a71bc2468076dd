#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Faults (issue 2, item 7): output full, unreadable source (EIO), unwritable target,
# a closed output pipe, create killed or interrupted. Each gives its documented exit code
# and one line on stderr, never a hang, and never a file under the final image name
# (nor, when imago could clean up, a temporary one).
#
# The unreadable source is real EIO from the kernel: a file on btrfs whose data block was
# damaged underneath (btrfs checks data checksums), read directly and through a loop
# device, so it needs neither device-mapper nor a special driver.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_imago
need_root
need python3 losetup mount umount mkfs.ext4 mkfs.btrfs truncate

MiB=$((1024 * 1024))

make_random "$W/rnd" $((4 * MiB)) 11
begin setup_image
run 0 "$IMAGO" create -q "$W/rnd" "$W/rnd.imago" || die_setup "cannot make the test image"
finish

# gone DIR NAME: neither DIR/NAME nor a temporary for it is there.
gone() {
	absent "$1/$2"
	no_temp "$1"
}

# ---------------------------------------------------------------- out of space

mount_at "$W/tmpfs" -t tmpfs -o size=1m,mode=755 tmpfs
begin create_out_of_space_tmpfs
run 1 "$IMAGO" create -q "$W/rnd" "$W/tmpfs/full.imago" && stderr_one_line '^imago: create: ' 'space' 'full\.imago'
gone "$W/tmpfs" full.imago
finish

begin create_out_of_space_tmpfs_force_keeps_old
echo old >"$W/tmpfs/old.imago"
run 1 "$IMAGO" create -q --force "$W/rnd" "$W/tmpfs/old.imago" && stderr_one_line '^imago: create: ' 'space'
[[ $(cat "$W/tmpfs/old.imago" 2>/dev/null) == old ]] || err "the file under the final name was replaced or removed"
no_temp "$W/tmpfs"
rm -f -- "$W/tmpfs/old.imago"
finish

begin restore_out_of_space_tmpfs
run 1 "$IMAGO" restore -q "$W/rnd.imago" "$W/tmpfs/full.out" && stderr_one_line '^imago: restore: ' 'space' 'full\.out'
rm -f -- "$W/tmpfs/full.out"
finish

begin restore_from_pipe_out_of_space_tmpfs
run_in "$W/rnd.imago" 1 "$IMAGO" restore -q - "$W/tmpfs/full.out" && stderr_one_line '^imago: restore: ' 'space'
rm -f -- "$W/tmpfs/full.out"
finish

truncate -s $((4 * MiB)) "$W/small.ext4"
mkfs.ext4 -q -F "$W/small.ext4" >/dev/null 2>&1 || die_setup "mkfs.ext4 failed"
loop_attach "$W/small.ext4"
mount_at "$W/ext4" "$LOOP"
make_random "$W/rnd8" $((8 * MiB)) 12
begin create_out_of_space_ext4
run 1 "$IMAGO" create -q "$W/rnd8" "$W/ext4/full.imago" && stderr_one_line '^imago: create: ' 'space'
gone "$W/ext4" full.imago
finish

begin create_to_dev_full_stdout
timeout -k 5 "$T_TIMEOUT" "$IMAGO" create -q "$W/rnd" - >/dev/full 2>"$W/stderr"
RC=$?
check_rc 1 "$IMAGO" create -q "$W/rnd" - && stderr_one_line '^imago: create: ' 'space'
finish

# ---------------------------------------------------------------- closed output pipe

begin create_to_closed_pipe
timeout -k 5 "$T_TIMEOUT" "$IMAGO" create -q "$W/rnd" - 2>"$W/stderr" | head -c 1000 >/dev/null
RC=${PIPESTATUS[0]}
check_rc 1 "$IMAGO" create -q "$W/rnd" - '|' head && stderr_one_line '^imago: create: '
finish

# ---------------------------------------------------------------- unwritable target

mkdir -p "$W/rw" "$W/ro"
mount_at "$W/ro" --bind "$W/rw"
mount -o remount,ro,bind "$W/ro" || die_setup "cannot remount $W/ro read-only"
begin create_into_read_only_dir
run 1 "$IMAGO" create -q "$W/rnd" "$W/ro/x.imago" && stderr_one_line '^imago: create: ' 'x\.imago'
gone "$W/rw" x.imago
finish
begin restore_into_read_only_dir
run 1 "$IMAGO" restore -q "$W/rnd.imago" "$W/ro/x.out" && stderr_one_line '^imago: restore: ' 'x\.out'
absent "$W/rw/x.out"
finish
cp -- "$W/rnd" "$W/rw/existing"
begin restore_over_file_on_read_only_fs
run 1 "$IMAGO" restore -q --force "$W/rnd.imago" "$W/ro/existing" && stderr_one_line '^imago: restore: ' existing
finish

begin create_missing_source
run 1 "$IMAGO" create -q "$W/no-such-source" "$W/m.imago" && stderr_one_line '^imago: create: ' 'no-such-source'
gone "$W" m.imago
finish

begin create_into_missing_dir
run 1 "$IMAGO" create -q "$W/rnd" "$W/no-such-dir/m.imago" && stderr_one_line '^imago: create: ' 'no-such-dir'
finish

# ---------------------------------------------------------------- killed and interrupted

# A source slow to compress (text at level 19, one thread), so that create is still
# running when the signal comes.
make_text "$W/slow" $((64 * MiB))
mkdir -p "$W/k"

# start_create NAME: start create of $W/slow into $W/k/NAME in the background with
# default signal dispositions (a background job of a script ignores SIGINT otherwise);
# sets PID once its temporary file exists and has data.
start_create() {
	local i
	"$PY" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "$IMAGO" create -q -T 1 --level 19 "$W/slow" "$W/k/$1" \
		</dev/null >/dev/null 2>"$W/stderr" &
	PID=$!
	for ((i = 0; i < 300; i++)); do
		if compgen -G "$W/k/$1.imago-tmp-*" >/dev/null; then
			[[ -n $(find "$W/k" -name "$1.imago-tmp-*" -size +0 2>/dev/null) ]] && break
		fi
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.05
	done
	((i < 300)) || err "no temporary file $1.imago-tmp-* with data after 15 s"
	compgen -G "$W/k/$1.imago-tmp-*" >/dev/null || err "no temporary file $1.imago-tmp-* seen"
	sleep 0.3
	kill -0 "$PID" 2>/dev/null || err "create ended before the signal (the test cannot interrupt it)"
}

# reap: wait for PID (30 s at most), set RC.
reap() {
	local i
	for ((i = 0; i < 300; i++)); do
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$PID" 2>/dev/null; then
		err "create still running 30 s after the signal"
		kill -9 "$PID" 2>/dev/null
	fi
	wait "$PID" 2>/dev/null
	RC=$?
}

begin kill_9_during_create
start_create k9.imago
{ # the shell's own "Killed" notice is not a test line
	kill -9 "$PID"
	reap
} 2>/dev/null
((RC == 137)) || err "exit status $RC, want 137 (killed)"
absent "$W/k/k9.imago"
rm -f -- "$W"/k/k9.imago.imago-tmp-* # what a killed process cannot remove
finish

for sig in INT TERM; do
	begin "sig${sig,,}_during_create"
	start_create "s$sig.imago"
	kill -s "$sig" "$PID" 2>/dev/null
	reap
	((RC != 0)) || err "create exited 0 after SIG$sig"
	[[ -s $W/stderr ]] && stderr_one_line '^imago: create: '
	gone "$W/k" "s$sig.imago"
	finish
done

# ---------------------------------------------------------------- unreadable source (EIO)

# eio_setup: a btrfs holding a copy of $W/rnd whose block at 1 MiB is damaged; sets
# EIO_FILE and EIO_LOOP (a loop device over it). Returns nonzero, with EIO_WHY, when the
# machine cannot do it (the EIO cases then fail, the rest of the script goes on).
eio_setup() {
	EIO_WHY="mkfs.btrfs failed"
	truncate -s $((128 * MiB)) "$W/btrfs.img"
	mkfs.btrfs -q -f "$W/btrfs.img" >/dev/null 2>&1 || return 1
	loop_attach "$W/btrfs.img"
	local bt_loop=$LOOP
	EIO_WHY="cannot mount the btrfs (no btrfs in the kernel?)"
	mkdir -p "$W/bt"
	mount "$bt_loop" "$W/bt" 2>/dev/null || return 1
	defer umount -l "$W/bt"
	cp -- "$W/rnd" "$W/bt/src"
	EIO_WHY="cannot unmount the btrfs"
	umount "$W/bt" || return 1
	# Damage the data block holding device byte 1 MiB + 100, underneath btrfs.
	EIO_WHY="cannot find the source's data in the btrfs image"
	"$PY" - "$W/rnd" "$W/btrfs.img" <<'EOF' || return 1
import sys
data = open(sys.argv[1], "rb").read()
needle = data[1 << 20:(1 << 20) + 4096]
with open(sys.argv[2], "r+b") as f:
    fs = f.read()
    at = fs.find(needle)
    if at < 0 or fs.find(needle, at + 1) >= 0:
        sys.exit(1)
    f.seek(at + 100)
    f.write(bytes([fs[at + 100] ^ 0xFF]))
EOF
	EIO_WHY="cannot mount the btrfs again"
	mount "$bt_loop" "$W/bt" || return 1
	EIO_WHY="the damaged btrfs file reads without error"
	dd if="$W/bt/src" of=/dev/null bs=64k status=none 2>/dev/null && return 1
	EIO_FILE=$W/bt/src
	loop_attach "$EIO_FILE" -r
	EIO_LOOP=$LOOP
}

if ! eio_setup; then
	for c in create_eio_source_file create_eio_source_device create_eio_source_to_stdout \
		verify_against_eio_source; do
		fail "$c" "setup: $EIO_WHY"
	done
else
begin create_eio_source_file
run 1 "$IMAGO" create -q "$EIO_FILE" "$W/eio.imago" && stderr_one_line '^imago: create: ' 'src' '1048576|0x100000'
gone "$W" eio.imago
finish

begin create_eio_source_device
run 1 "$IMAGO" create -q "$EIO_LOOP" "$W/eio.imago" && stderr_one_line '^imago: create: ' "${EIO_LOOP##*/}" '1048576|0x100000'
gone "$W" eio.imago
finish

begin create_eio_source_to_stdout
run 1 "$IMAGO" create -q "$EIO_FILE" - && stderr_one_line '^imago: create: ' '1048576|0x100000'
finish

begin verify_against_eio_source
run 1 "$IMAGO" verify -q "$W/rnd.imago" --against "$EIO_FILE" && stderr_one_line '^imago: verify: ' 'src'
finish
fi

done_testing
