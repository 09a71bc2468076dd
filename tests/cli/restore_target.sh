#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The ways restore writes its target (lib/image/target.c): direct I/O with several writes
# in flight on ext4, XFS and btrfs files and on block devices, the page cache on tmpfs,
# synchronous writes for large chunks; holes for long zero runs; a device end that is not
# a multiple of the direct I/O alignment; images from a file and from a pipe; a full
# filesystem while writes are in flight. Every restored copy is compared with the source.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_imago
need_root
need python3 losetup mount umount mkfs.ext4 mkfs.xfs mkfs.btrfs truncate

MiB=$((1024 * 1024))

# The source: 9 MiB + 3 blocks + 1234 bytes (odd-sized), in 1 MiB stretches of random
# data, zeros, text, and random data with a 8 KiB and a 128 KiB zero gap inside.
src=$W/src
"$PY" - "$src" <<'EOF'
import random, sys
r = random.Random(4242)
MiB = 1 << 20
out = bytearray()
def rnd(n): return bytes(r.getrandbits(8) for _ in range(n)) if n < 4096 else r.randbytes(n)
out += rnd(MiB)                      # 0: random
out += bytes(MiB)                    # 1: zeros (a ZERO frame)
c = bytearray(rnd(MiB))              # 2: random with a short and a long zero gap
c[100 * 1024:108 * 1024] = bytes(8 * 1024)
c[512 * 1024:640 * 1024] = bytes(128 * 1024)
out += c
text = b"".join(b"line %d of some text that compresses well\n" % i for i in range(60000))
out += text[:2 * MiB]                # 3-4: text
out += bytes(MiB)                    # 5: zeros
out += rnd(3 * MiB)                  # 6-8: random
out += rnd(3 * 4096 + 1234)          # 9: odd tail
open(sys.argv[1], "wb").write(out)
EOF
src_size=$(fsize "$src")

# hole_at FILE OFF LEN: [OFF, OFF+LEN) of FILE holds no data (SEEK_DATA skips it).
hole_at() {
	"$PY" - "$1" "$2" "$3" <<'EOF'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
off, n = int(sys.argv[2]), int(sys.argv[3])
try:
    d = os.lseek(fd, off, os.SEEK_DATA)
except OSError:
    d = os.fstat(fd).st_size
sys.exit(0 if d >= off + n else 1)
EOF
}

# Filesystems to restore onto, each on a loop device (or tmpfs), and their names.
mk_fs() {
	local name=$1 mkfs=$2 size=$3
	truncate -s "$size" "$W/$name.fs"
	$mkfs "$W/$name.fs" >/dev/null 2>&1 || die_setup "$mkfs failed"
	loop_attach "$W/$name.fs"
	mount_at "$W/mnt-$name" "$LOOP"
}
mk_fs ext4 "mkfs.ext4 -q -F" $((64 * MiB))
mk_fs xfs "mkfs.xfs -q -f" $((320 * MiB))
mk_fs btrfs "mkfs.btrfs -q -f" $((128 * MiB))
mount_at "$W/mnt-tmpfs" -t tmpfs -o size=64m,mode=755 tmpfs

# Images with 64 KiB chunks (four writes in flight), 1 MiB (the default), 4 MiB (one in
# flight) and 16 MiB (synchronous).
for cs in 64K 1M 4M 16M; do
	begin "create_chunk_$cs"
	run 0 "$IMAGO" create -q --chunk-size "$cs" "$src" "$W/src.$cs.imago"
	finish
done

for fs in ext4 xfs btrfs tmpfs; do
	d=$W/mnt-$fs
	for cs in 64K 1M 4M 16M; do
		begin "restore_${fs}_chunk_$cs"
		run 0 "$IMAGO" restore -q "$W/src.$cs.imago" "$d/out" && same "$src" "$d/out" &&
			{ [[ $(fsize "$d/out") == "$src_size" ]] || err "restored size $(fsize "$d/out"), want $src_size"; }
		rm -f -- "$d/out"
		finish
	done
	begin "restore_${fs}_from_pipe"
	run_in "$W/src.1M.imago" 0 "$IMAGO" restore -q - "$d/out" && same "$src" "$d/out" &&
		{ [[ $(fsize "$d/out") == "$src_size" ]] || err "restored size $(fsize "$d/out"), want $src_size"; }
	finish
	# The zero chunks and the 128 KiB gap are holes, through direct I/O or not.
	begin "restore_${fs}_holes"
	sync -f "$d/out"
	hole_at "$d/out" $((1 * MiB)) "$MiB" || err "zero chunk 1 is not a hole"
	hole_at "$d/out" $((2 * MiB + 512 * 1024)) $((128 * 1024)) || err "the 128 KiB zero gap in chunk 2 is not a hole"
	hole_at "$d/out" $((5 * MiB)) "$MiB" || err "zero chunk 5 is not a hole"
	rm -f -- "$d/out"
	finish
done

# Block device targets full of junk (zero ranges must become zeros), the image's end not
# a multiple of 4 KiB: a file, a pipe, a 16 MiB-chunk image.
make_random "$W/junk" $((12 * MiB)) 5
loop_attach "$W/junk"
dst=$LOOP
for how in file pipe 16M; do
	begin "restore_blockdev_$how"
	dd if="$W/junk" of="$dst" bs=1M status=none conv=fsync oflag=direct 2>/dev/null ||
		err "cannot refill $dst with junk"
	case $how in
	file) run 0 "$IMAGO" restore -q "$W/src.1M.imago" "$dst" ;;
	pipe) run_in "$W/src.1M.imago" 0 "$IMAGO" restore -q - "$dst" ;;
	16M) run 0 "$IMAGO" restore -q "$W/src.16M.imago" "$dst" ;;
	esac
	((RC == 0)) && same "$src" "$dst" "$src_size"
	finish
done

# A smart image of a fragmented ext4 (FREE runs of a few blocks inside most chunks, so
# one chunk is several writes in flight) onto a block device full of junk, from a file
# and from a pipe: every 4 KiB block of the target is either the source's (written) or
# the junk (left alone, FREE); every block ext4 uses is the source's; some free blocks
# kept their junk; e2fsck is clean.
ext=$W/frag.ext4
truncate -s $((128 * MiB)) "$ext"
mkfs.ext4 -q -F -b 4096 -E nodiscard "$ext" || die_setup "mkfs.ext4 failed"
mount_at "$W/mnt-frag" -o loop "$ext"
"$PY" - "$W/mnt-frag" <<'EOF2' || die_setup "cannot fill the fragmented ext4"
import os, random, sys
r = random.Random(77)
for i in range(2000):
    with open(os.path.join(sys.argv[1], "f%03d" % i), "wb") as f:
        f.write(r.randbytes(r.randrange(1, 20) * 4096 - r.randrange(0, 4096)))
for i in range(0, 2000, 3):
    os.unlink(os.path.join(sys.argv[1], "f%03d" % i))
EOF2
umount "$W/mnt-frag" || die_setup "cannot unmount the fragmented ext4"
dumpe2fs "$ext" 2>/dev/null | sed -n 's/^  Free blocks: //p' | tr ',' '\n' | tr -d ' ' | grep . >"$W/frag.free"
[[ -s $W/frag.free ]] || die_setup "dumpe2fs listed no free blocks"
make_random "$W/junk128" $((128 * MiB)) 8
loop_attach "$W/junk128"
fdst=$LOOP
begin create_smart_fragmented
run 0 "$IMAGO" create -q "$ext" "$W/frag.imago"
finish
for how in file pipe; do
	begin "restore_blockdev_smart_$how"
	dd if="$W/junk128" of="$fdst" bs=1M status=none conv=fsync oflag=direct 2>/dev/null ||
		err "cannot refill $fdst with junk"
	case $how in
	file) run 0 "$IMAGO" restore -q "$W/frag.imago" "$fdst" ;;
	pipe) run_in "$W/frag.imago" 0 "$IMAGO" restore -q - "$fdst" ;;
	esac
	if ((RC == 0)); then
		out=$("$PY" - "$ext" "$fdst" "$W/junk128" "$W/frag.free" <<'EOF2'
import sys
src, dst, junk = (open(p, "rb").read() for p in sys.argv[1:4])
free = set()
for line in open(sys.argv[4]):
    a, _, b = line.strip().partition("-")
    free.update(range(int(a), int(b or a) + 1))
stray = used_bad = kept_junk = 0
for blk in range(len(src) // 4096):
    s, d, j = (x[blk * 4096:(blk + 1) * 4096] for x in (src, dst, junk))
    if d != s and d != j:
        stray += 1
    if blk not in free and d != s:
        used_bad += 1
    if blk in free and d == j and s != j:
        kept_junk += 1
print(stray, used_bad, kept_junk)
EOF2
)
		read -r stray used_bad kept_junk <<<"$out"
		((stray == 0)) || err "$stray blocks of the target are neither the source's nor the junk"
		((used_bad == 0)) || err "$used_bad blocks ext4 uses differ from the source"
		((kept_junk > 0)) || err "no free block kept its junk: FREE ranges were written"
		e2fsck -fn "$fdst" >"$W/fsck.out" 2>&1 || err "e2fsck -fn: $(tail -3 "$W/fsck.out")"
	fi
	finish
done

# A full filesystem while writes are in flight: exit 1, one line naming the target.
make_random "$W/big" $((96 * MiB)) 6
begin create_big
run 0 "$IMAGO" create -q "$W/big" "$W/big.imago"
finish
begin restore_ext4_full
run 1 "$IMAGO" restore -q "$W/big.imago" "$W/mnt-ext4/full.out" &&
	stderr_one_line '^imago: restore: ' 'full|space' 'full\.out'
rm -f -- "$W/mnt-ext4/full.out"
finish
begin restore_ext4_full_from_pipe
run_in "$W/big.imago" 1 "$IMAGO" restore -q - "$W/mnt-ext4/full.out" &&
	stderr_one_line '^imago: restore: ' 'full|space'
rm -f -- "$W/mnt-ext4/full.out"
finish

done_testing
