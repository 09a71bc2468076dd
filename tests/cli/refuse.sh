#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Safety refusals (exit 5) and what --force allows; usage errors (exit 2);
# verify --against (0 identical, 4 different). docs/imago.1.md, "Exit status".

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_imago
need_root
need python3 script losetup mkfs.ext4 mount umount sfdisk partx blockdev

MiB=$((1024 * 1024))

make_mixed "$W/src"
truncate -s $((4 * MiB)) "$W/src" # a whole number of sectors, for loop devices
img=$W/src.imago
begin setup_image
run 0 "$IMAGO" create -q "$W/src" "$img" || die_setup "cannot make the test image"
finish
cp -- "$img" "$W/img.copy"

make_random "$W/other" $((2 * MiB)) 2

# ---------------------------------------------------------------- create

begin create_over_existing_image
run 5 "$IMAGO" create -q "$W/other" "$img" && stderr_one_line '^imago: create: ' 'src\.imago'
unchanged "$img" "$W/img.copy"
no_temp "$W"
finish

begin create_over_existing_file
make_text "$W/notes.txt" 5000
cp -- "$W/notes.txt" "$W/notes.copy"
run 5 "$IMAGO" create -q "$W/other" "$W/notes.txt" && stderr_one_line '^imago: create: '
unchanged "$W/notes.txt" "$W/notes.copy"
no_temp "$W"
finish

begin create_over_existing_empty_file
: >"$W/empty.imago"
run 5 "$IMAGO" create -q "$W/other" "$W/empty.imago" && stderr_one_line '^imago: create: '
[[ -s $W/empty.imago ]] && err "the existing empty file was written"
rm -f -- "$W/empty.imago"
finish

begin create_force_overwrites
cp -- "$img" "$W/forced.imago"
if run 0 "$IMAGO" create -q --force "$W/other" "$W/forced.imago" &&
	run 0 "$IMAGO" restore -q "$W/forced.imago" "$W/forced.out"; then
	same "$W/other" "$W/forced.out"
fi
no_temp "$W"
rm -f -- "$W/forced.imago" "$W/forced.out"
finish

begin create_force_short_option
cp -- "$img" "$W/forced.imago"
run 0 "$IMAGO" create -q -f "$W/other" "$W/forced.imago" && run 0 "$IMAGO" verify -q "$W/forced.imago"
rm -f -- "$W/forced.imago"
finish

begin create_onto_source_refused
cp -- "$W/other" "$W/victim"
cp -- "$W/other" "$W/victim.copy"
run 5 "$IMAGO" create -q --force "$W/victim" "$W/victim" && stderr_one_line '^imago: create: '
unchanged "$W/victim" "$W/victim.copy"
finish

begin create_onto_source_via_symlink_refused
ln -s victim "$W/victim.link"
run 5 "$IMAGO" create -q --force "$W/victim" "$W/victim.link" && stderr_one_line '^imago: create: '
unchanged "$W/victim" "$W/victim.copy"
rm -f -- "$W/victim.link"
finish

begin create_to_stdout_terminal
printf -v cmd '%q create -q %q -' "$IMAGO" "$W/other"
timeout -k 5 60 script -qec "$cmd" /dev/null </dev/null >"$W/tty.out" 2>&1
rc=$?
[[ $rc == 2 ]] || err "create to a terminal stdout exited $rc, want 2: $(head -c 200 "$W/tty.out" | tr -cd '[:print:]')"
sz=$(fsize "$W/tty.out")
((sz < 1000)) || err "$sz bytes went to the terminal"
finish

# ---------------------------------------------------------------- restore

begin restore_over_existing_file
make_random "$W/existing" 12345 3
cp -- "$W/existing" "$W/existing.copy"
run 5 "$IMAGO" restore -q "$img" "$W/existing" && stderr_one_line '^imago: restore: ' existing
unchanged "$W/existing" "$W/existing.copy"
finish

begin restore_over_existing_file_force
run 0 "$IMAGO" restore -q --force "$img" "$W/existing" && same "$W/src" "$W/existing"
finish

begin restore_from_stdin_over_existing_file
cp -- "$W/existing.copy" "$W/existing"
run_in "$img" 5 "$IMAGO" restore -q - "$W/existing" && stderr_one_line '^imago: restore: '
unchanged "$W/existing" "$W/existing.copy"
finish

begin restore_onto_the_image
run 5 "$IMAGO" restore -q "$img" "$img" && stderr_one_line '^imago: restore: '
unchanged "$img" "$W/img.copy"
finish

begin restore_onto_the_image_force
run 5 "$IMAGO" restore -q --force "$img" "$img" && stderr_one_line '^imago: restore: '
unchanged "$img" "$W/img.copy"
finish

begin restore_onto_the_image_via_symlink_force
ln -s src.imago "$W/img.link"
run 5 "$IMAGO" restore -q --force "$img" "$W/img.link" && stderr_one_line '^imago: restore: '
unchanged "$img" "$W/img.copy"
rm -f -- "$W/img.link"
finish

begin restore_onto_the_image_via_hardlink_force
ln -- "$img" "$W/img.hard"
run 5 "$IMAGO" restore -q --force "$img" "$W/img.hard" && stderr_one_line '^imago: restore: '
unchanged "$img" "$W/img.copy"
rm -f -- "$W/img.hard"
finish

# A target device smaller than the image's device.
make_random "$W/small" $((1 * MiB)) 4
cp -- "$W/small" "$W/small.copy"
loop_attach "$W/small"
small_loop=$LOOP
begin restore_to_small_device
run 5 "$IMAGO" restore -q "$img" "$small_loop" && stderr_one_line '^imago: restore: ' "${small_loop##*/}"
unchanged "$small_loop" "$W/small.copy"
finish
begin restore_to_small_device_force
run 5 "$IMAGO" restore -q --force "$img" "$small_loop" && stderr_one_line '^imago: restore: '
unchanged "$small_loop" "$W/small.copy"
finish
begin restore_from_stdin_to_small_device
run_in "$img" 5 "$IMAGO" restore -q - "$small_loop" && stderr_one_line '^imago: restore: '
unchanged "$small_loop" "$W/small.copy"
finish

# A mounted target.
truncate -s $((8 * MiB)) "$W/fs"
mkfs.ext4 -q -F "$W/fs" >/dev/null 2>&1 || die_setup "mkfs.ext4 failed"
loop_attach "$W/fs"
fs_loop=$LOOP
mount_at "$W/mnt" "$fs_loop"
echo "still here" >"$W/mnt/canary"
sync
for f in "" --force; do
	begin "restore_to_mounted_device${f:+_force}"
	run 5 "$IMAGO" restore -q $f "$img" "$fs_loop" && stderr_one_line '^imago: restore: ' mount
	[[ $(cat "$W/mnt/canary" 2>/dev/null) == "still here" ]] || err "the mounted filesystem was damaged"
	finish
done
umount "$W/mnt"

# A target with a mounted partition.
truncate -s $((16 * MiB)) "$W/disk"
echo ',,L' | sfdisk -q "$W/disk" >/dev/null 2>&1 || die_setup "sfdisk failed"
loop_attach "$W/disk" -P
disk_loop=$LOOP
loop_partitions "$disk_loop"
mkfs.ext4 -q -F "${disk_loop}p1" >/dev/null 2>&1 || die_setup "mkfs.ext4 on ${disk_loop}p1 failed"
mount_at "$W/pmnt" "${disk_loop}p1"
echo "still here" >"$W/pmnt/canary"
sync
for f in "" --force; do
	begin "restore_to_device_with_mounted_partition${f:+_force}"
	run 5 "$IMAGO" restore -q $f "$img" "$disk_loop" && stderr_one_line '^imago: restore: ' mount
	[[ $(cat "$W/pmnt/canary" 2>/dev/null) == "still here" ]] || err "the mounted filesystem was damaged"
	sfdisk -d "$disk_loop" >/dev/null 2>&1 || err "the partition table was overwritten"
	finish
done
umount "$W/pmnt"

# ---------------------------------------------------------------- usage errors

# usage NAME ARGS...: exit 2, one line, and no image made.
usage() {
	local name=$1
	shift
	begin "usage_$name"
	run 2 "$IMAGO" "$@" && stderr_one_line '^imago: '
	absent "$W/u.imago"
	rm -f -- "$W/u.imago"
	finish
}
usage no_arguments
usage unknown_command frobnicate "$W/src" "$W/u.imago"
usage unknown_option create --bogus "$W/src" "$W/u.imago"
usage unknown_global_option --bogus
usage create_missing_image create "$W/src"
usage create_no_arguments create
usage create_extra_argument create "$W/src" "$W/u.imago" extra
usage restore_missing_target restore "$img"
usage verify_no_image verify
usage verify_against_without_source verify "$img" --against
usage info_no_image info
for cs in 3000 32M 96K 32K 0 abc "" 1K 17M; do
	usage "chunk_size_${cs:-empty}" create --chunk-size "$cs" "$W/src" "$W/u.imago"
done
for l in 0 20 30 -1 abc ""; do
	usage "level_${l:-empty}" create --level "$l" "$W/src" "$W/u.imago"
done
usage level_short_30 create -l 30 "$W/src" "$W/u.imago"
usage threads_abc create -T abc "$W/src" "$W/u.imago"
usage threads_negative create -T -1 "$W/src" "$W/u.imago"
usage progress_bogus create --progress=bogus "$W/src" "$W/u.imago"
usage restore_bad_threads restore -T abc "$img" "$W/u.imago"

for h in "--help" "create --help" "restore --help" "verify --help" "info --help"; do
	begin "help_${h// /_}"
	# shellcheck disable=SC2086 # the words are the arguments
	run 0 "$IMAGO" $h && { [[ -s $W/stdout ]] || err "'imago $h' printed nothing on stdout"; }
	finish
done

# ---------------------------------------------------------------- verify --against

begin verify_against_identical
run 0 "$IMAGO" verify -q "$img" --against "$W/src"
finish

# against DIFFERENT-FILE NAME: exit 4 and one line.
against() {
	begin "verify_against_$1"
	run 4 "$IMAGO" verify -q "$img" --against "$W/diff" && stderr_one_line '^imago: verify: '
	finish
}
cp -- "$W/src" "$W/diff"
flip "$W/diff" 123457 1
against one_byte_in_data
cp -- "$W/src" "$W/diff"
# The mixed source has zeros from 448 KiB to 768 KiB: a byte there is in a ZERO extent.
[[ $(u8 "$W/src" $((500 * 1024))) == 0 ]] || die_setup "the mixed source changed layout"
flip "$W/diff" $((500 * 1024)) 255
against one_byte_in_zero_range
cp -- "$W/src" "$W/diff"
flip "$W/diff" $((4 * MiB - 1)) 4
against last_byte
cp -- "$W/src" "$W/diff"
printf x >>"$W/diff"
against longer_source
head -c $((4 * MiB - 1)) -- "$W/src" >"$W/diff"
against shorter_source

loop_attach "$W/src" -r
begin verify_against_identical_device
run 0 "$IMAGO" verify -q "$img" --against "$LOOP"
finish

done_testing
