#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Crash consistency (issue 7, item 3). imago is killed with SIGKILL at seeded random
# points during create (to a file), restore (to a file and to a loop device) and clone
# (to a file), many times:
#   - create: there is never a file under the final image name unless it is complete
#     (verify --against the source passes); a killed create leaves at most a temporary;
#   - restore and clone: running the same command again (--force: the target now holds
#     data) completes and gives a target identical to the source;
#   - the source file and the image being restored are never modified (SHA-256 before and
#     after).
# Then the target fails under a restore or a clone: out of space on a small loop-mounted
# ext4; a loop device whose backing file lies on a tmpfs that fills up half way; and real
# EIO on every write, from a loop device backed by a file on an ext4 that was shut down
# (FS_IOC_SHUTDOWN; device-mapper's dm-error would do the same, but the test kernel has
# no device-mapper): one line on stderr, exit 1, and nothing else on that filesystem
# damaged (a file written before is intact, fsck -n is clean).
# CRASH_SEED repeats a run; CRASH_ITER sets the kills per operation (default 15).

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_imago
need_root
need python3 losetup mount umount mkfs.ext4 fsck.ext4 truncate sha256sum xfs_io

MiB=$((1024 * 1024))
SEED=${CRASH_SEED:-$(date +%s)}
ITER=${CRASH_ITER:-15}
echo "# crash: seed $SEED, $ITER kills per operation (CRASH_SEED=$SEED to repeat)" >&2
seed=$SEED
next_seed() { seed=$(((seed * 1103515245 + 12345) % 2147483648)); }
rnd() { next_seed; R=$(((seed >> 8) % $1)); }

# ---------------------------------------------------------------- source and image

# 40 MiB: random, text and zeros, so that create spends time compressing and restore
# writes both data and zeros.
: >"$W/src"
for i in 1 2 3 4; do
	append_random "$W/src" $((4 * MiB)) "$i"
	append_text "$W/src" $((4 * MiB))
	append_zero "$W/src" $((2 * MiB))
done
SRC_SUM=$(sha256sum <"$W/src")
begin setup_image
run 0 "$IMAGO" create -q --chunk-size 256K "$W/src" "$W/src.imago" || die_setup "cannot make the image"
IMG_SUM=$(sha256sum <"$W/src.imago")
finish

# now_ms: milliseconds since the epoch.
now_ms() { date +%s%3N; }

# timed CMD...: run CMD to completion (it must succeed); sets MS to its duration.
timed() {
	local t0
	t0=$(now_ms)
	"$@" </dev/null >/dev/null 2>"$W/stderr" || die_setup "'$(describe "$@")' failed: $(head -c 300 "$W/stderr")"
	MS=$(($(now_ms) - t0))
	((MS > 0)) || MS=1
}

# kill_at MS CMD...: start CMD, SIGKILL it after MS milliseconds (unless it ended first);
# sets RC and KILLED (1 when the signal ended it).
kill_at() {
	local ms=$1
	shift
	"$@" </dev/null >/dev/null 2>"$W/kill.stderr" &
	local pid=$!
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	RC=$?
	# (kill succeeds on a process that has exited but is not reaped yet: the status says)
	KILLED=$((RC == 137))
}

# delays MS: ITER delays spread over [0, MS * 0.9), seeded (MS: a run's duration).
delays() {
	local i
	DELAYS=()
	for ((i = 0; i < ITER; i++)); do
		rnd $(($1 * 9 / 10 + 1))
		DELAYS+=("$R")
	done
}

sources_intact() {
	[[ $(sha256sum <"$W/src") == "$SRC_SUM" ]] || err "the source was modified"
	[[ $(sha256sum <"$W/src.imago") == "$IMG_SUM" ]] || err "the image was modified"
}

# ---------------------------------------------------------------- create

mkdir -p "$W/c"
timed "$IMAGO" create -q -T 2 --chunk-size 256K "$W/src" "$W/c/cal.imago"
rm -f -- "$W/c/cal.imago"
timed "$IMAGO" create -q -T 2 --chunk-size 256K "$W/src" "$W/c/cal.imago"
rm -f -- "$W/c/cal.imago"
delays "$MS"
begin kill_9_during_create
echo "# create takes ${MS} ms; kills at ${DELAYS[*]} ms" >&2
complete=0 killed=0
for d in "${DELAYS[@]}"; do
	{ kill_at "$d" "$IMAGO" create -q -T 2 --chunk-size 256K "$W/src" "$W/c/x.imago"; } 2>/dev/null
	((KILLED)) && killed=$((killed + 1))
	if [[ -e $W/c/x.imago ]]; then
		# Under the final name only a complete image: the rename is the last step.
		complete=$((complete + 1))
		run 0 "$IMAGO" verify -q "$W/c/x.imago" --against "$W/src" ||
			err "killed at ${d} ms (killed: $KILLED): a file under the final name does not verify"
	elif ((!KILLED)); then
		err "create ended by itself (exit $RC) but left no image"
	fi
	rm -f -- "$W/c/x.imago" "$W"/c/x.imago.imago-tmp-*
done
((killed > 0)) || err "no kill found create running (the test cannot interrupt it)"
echo "# create: $killed of $ITER runs killed, $complete left a complete image" >&2
sources_intact
finish

# ---------------------------------------------------------------- restore and clone

# again NAME TARGET CMD...: kill CMD at the seeded points; after each kill run it again
# with --force and compare TARGET with the source.
again() {
	local name=$1 target=$2 d killed=0
	shift 2
	timed "$@" --force "$target"
	timed "$@" --force "$target"
	delays "$MS"
	begin "kill_9_during_${name}_then_again"
	echo "# $name takes ${MS} ms; kills at ${DELAYS[*]} ms" >&2
	for d in "${DELAYS[@]}"; do
		{ kill_at "$d" "$@" --force "$target"; } 2>/dev/null
		((KILLED)) && killed=$((killed + 1))
		if ! { run 0 "$@" --force "$target" && same "$W/src" "$target" "$(fsize "$W/src")"; }; then
			err "after the kill at ${d} ms"
			break
		fi
	done
	((killed > 0)) || err "no kill found $name running"
	echo "# $name: $killed of $ITER runs killed, each run again to the same result" >&2
	sources_intact
	finish
}

again restore_to_file "$W/r.out" "$IMAGO" restore -q -T 2 "$W/src.imago"
rm -f -- "$W/r.out"
truncate -s $(($(fsize "$W/src") + 4 * MiB)) "$W/loop.img"
loop_attach "$W/loop.img"
again restore_to_loop "$LOOP" "$IMAGO" restore -q -T 2 "$W/src.imago"
again clone_to_file "$W/cl.out" "$IMAGO" clone -q --sector "$W/src"
rm -f -- "$W/cl.out"

# ---------------------------------------------------------------- the target fails

# A small ext4 holding a file written before: a restore or clone that runs out of space
# on it stops with one line and harms nothing else there.
truncate -s $((16 * MiB)) "$W/small.ext4"
mkfs.ext4 -q -F "$W/small.ext4" >/dev/null 2>&1 || die_setup "mkfs.ext4 failed"
loop_attach "$W/small.ext4"
SMALL=$LOOP
mount_at "$W/small" "$SMALL"
make_random "$W/small/keep" $((2 * MiB)) 5
KEEP_SUM=$(sha256sum <"$W/small/keep")
sync

full_case() { # full_case NAME COMMAND...: the last argument is the target on $W/small
	begin "$1"
	shift
	run 1 "$@" && stderr_one_line "^imago: (restore|clone): " 'space'
	rm -f -- "${!#}"
	[[ $(sha256sum <"$W/small/keep") == "$KEEP_SUM" ]] || err "a file already on the filesystem was damaged"
	finish
}
full_case restore_out_of_space_ext4 "$IMAGO" restore -q "$W/src.imago" "$W/small/r.out"
full_case restore_from_pipe_out_of_space_ext4 bash -c "cat '$W/src.imago' | '$IMAGO' restore -q - '$W/small/r.out'"
full_case clone_out_of_space_ext4 "$IMAGO" clone -q --sector "$W/src" "$W/small/c.out"

begin out_of_space_fs_intact
umount "$W/small" || err "cannot unmount the small ext4"
run 0 fsck.ext4 -n -f "$SMALL" || err "fsck -n of the filesystem that filled up: $(head -c 300 "$W/stdout")"
mount "$SMALL" "$W/small" || err "cannot mount it again"
[[ $(sha256sum <"$W/small/keep") == "$KEEP_SUM" ]] || err "the file written before was damaged"
sources_intact
finish

# Write errors from the target device: a loop device of the source's size backed by a
# sparse file on a 6 MiB tmpfs fails its writes once the tmpfs is full. A second file
# on the same tmpfs must come through untouched.
mount_at "$W/tiny" -t tmpfs -o size=6m,mode=755 tmpfs
head -c $((1 * MiB)) /dev/urandom >"$W/tiny/keep"
TINY_SUM=$(sha256sum <"$W/tiny/keep")
truncate -s "$(fsize "$W/src")" "$W/tiny/back"
loop_attach "$W/tiny/back"
BAD=$LOOP

dev_fail_case() { # dev_fail_case NAME COMMAND...
	begin "$1"
	shift
	run 1 "$@" && stderr_one_line "^imago: (restore|clone): " "${BAD##*/}" 'I/O error|space|full'
	[[ $(sha256sum <"$W/tiny/keep") == "$TINY_SUM" ]] || err "a file next to the failing device's backing file was damaged"
	sources_intact
	finish
}
dev_fail_case restore_device_backing_store_full "$IMAGO" restore -q --force "$W/src.imago" "$BAD"
dev_fail_case clone_device_backing_store_full "$IMAGO" clone -q --sector --force "$W/src" "$BAD"

# Real EIO on every write: a loop device backed by a file on an ext4 that has been shut
# down (FS_IOC_SHUTDOWN through xfs_io: the filesystem fails all I/O from then on, as
# after a fatal error). A file synced there before must survive: fsck after unmount.
truncate -s $((64 * MiB)) "$W/sd.ext4"
mkfs.ext4 -q -F "$W/sd.ext4" >/dev/null 2>&1 || die_setup "mkfs.ext4 failed"
loop_attach "$W/sd.ext4"
SD=$LOOP
mount_at "$W/sd" "$SD"
make_random "$W/sd/keep" $((1 * MiB)) 8
SD_SUM=$(sha256sum <"$W/sd/keep")
truncate -s "$(fsize "$W/src")" "$W/sd/back"
loop_attach "$W/sd/back"
EIO=$LOOP
sync
xfs_io -x -c 'shutdown -f' "$W/sd" || die_setup "xfs_io shutdown of the ext4 failed"

eio_case() { # eio_case NAME COMMAND...
	begin "$1"
	shift
	run 1 "$@" && stderr_one_line "^imago: (restore|clone): " "${EIO##*/}" 'I/O error'
	# the write failed: the target is named as the place, not the image or the source
	! grep -q -E '/src(\.imago)?, ' "$W/stderr" ||
		err "the message names the image or source as the place: $(head -c 300 "$W/stderr")"
	sources_intact
	finish
}
eio_case restore_eio_on_device "$IMAGO" restore -q --force "$W/src.imago" "$EIO"
eio_case clone_eio_on_device "$IMAGO" clone -q --sector --force "$W/src" "$EIO"

begin eio_fs_intact
losetup -d "$EIO" 2>/dev/null
umount "$W/sd" 2>/dev/null || umount -l "$W/sd"
run 0 fsck.ext4 -n -f "$SD" || err "fsck -n of the filesystem that was shut down: $(head -c 300 "$W/stdout")"
mount "$SD" "$W/sd" || err "cannot mount it again"
[[ $(sha256sum <"$W/sd/keep" 2>/dev/null) == "$SD_SUM" ]] || err "the file written before was damaged"
finish

done_testing
