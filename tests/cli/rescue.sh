#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# imago rescue / imago map on a failing disk: tests/tools/faultdev (FUSE) serves a file
# with injected bad ranges (EIO), slow ranges and weak sectors (fail N times, then read);
# a loop device on top gives block-device semantics. Checked from outside: every readable
# byte against the source, the map's bad ranges against the injected ones (to the
# sector), GNU ddrescue resuming from imago's map and imago from ddrescue's, ddrescuelog's
# totals, kill -9 and resume (with the finished areas made unreadable, so a re-read would
# show), and the lost-file report against debugfs' block lists on a real ext4.
source "${IMAGO_SRC:-.}/tests/cli/lib.bash"
need_imago
need_root
need ddrescue ddrescuelog fusermount3 mkfs.ext4 debugfs dumpe2fs losetup mount sfdisk "$PY"
FAULTDEV=${IMAGO_BUILD:-build}/tests/faultdev
[[ -x $FAULTDEV ]] || die_setup "no $FAULTDEV (built with the tests)"

# mount_fault NAME BACKING CONFIG: serve BACKING with the faults of CONFIG as $W/NAME/disk.
mount_fault() {
	local m=$W/$1
	mkdir -p "$m"
	"$FAULTDEV" "$2" "$3" "$m" || die_setup "faultdev $2 failed"
	defer fusermount3 -u "$m"
	local i
	for i in $(seq 50); do
		[[ -f $m/disk ]] && return 0
		sleep 0.1
	done
	die_setup "faultdev did not come up on $m"
}
umount_fault() { fusermount3 -u "$W/$1" 2>/dev/null; }

# bad_of MAP: the '-' (and '*', '/') blocks of a mapfile as "pos size" lines, merged.
bad_of() {
	"$PY" - "$1" <<'EOF'
import sys
blocks, first = [], True
for line in open(sys.argv[1]):
    line = line.split('#')[0].split()
    if not line:
        continue
    if first:
        first = False
        continue
    p, s, st = int(line[0], 0), int(line[1], 0), line[2]
    if st != '+' and st != '?':
        if blocks and blocks[-1][0] + blocks[-1][1] == p:
            blocks[-1][1] += s
        else:
            blocks.append([p, s])
for p, s in blocks:
    print(p, s)
EOF
}

# status_bytes MAP CHAR: bytes of the map in that status.
status_bytes() {
	"$PY" - "$1" "$2" <<'EOF'
import sys
n, first = 0, True
for line in open(sys.argv[1]):
    line = line.split('#')[0].split()
    if not line:
        continue
    if first:
        first = False
        continue
    if line[2] == sys.argv[2]:
        n += int(line[1], 0)
print(n)
EOF
}

# bad_list CONFIG [SECTOR]: the injected bad ranges (rounded out to SECTOR), merged.
bad_list() {
	"$PY" - "$1" "${2:-512}" <<'EOF'
import sys
ss = int(sys.argv[2])
r = []
for line in open(sys.argv[1]):
    f = line.split('#')[0].split()
    if f and f[0] == 'bad':
        a, n = int(f[1], 0), int(f[2], 0)
        r.append([a // ss * ss, (a + n + ss - 1) // ss * ss])
r.sort()
m = []
for a, b in r:
    if m and m[-1][1] >= a:
        m[-1][1] = max(m[-1][1], b)
    else:
        m.append([a, b])
for a, b in m:
    print(a, b - a)
EOF
}

# check_output SRC OUT MAP: every byte the map has as finished equals SRC; every byte
# outside the map's failed blocks is finished; the failed blocks read as zeros in OUT
# (a new file: never written).
check_output() {
	local out
	out=$("$PY" - "$1" "$2" "$3" <<'EOF'
import sys
src, out = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read()
if len(out) != len(src):
    print("size %d != %d" % (len(out), len(src))); sys.exit()
first = True
for line in open(sys.argv[3]):
    line = line.split('#')[0].split()
    if not line:
        continue
    if first:
        first = False
        continue
    p, s, st = int(line[0], 0), int(line[1], 0), line[2]
    if st == '+':
        if out[p:p+s] != src[p:p+s]:
            print("finished block at %d differs from the source" % p); sys.exit()
    elif out[p:p+s] != bytes(s):
        print("failed block at %d was written" % p); sys.exit()
EOF
)
	[[ -z $out ]] || err "$out"
}

SIZE=$((8 << 20))
make_random "$W/src" $SIZE 7
# Faults: one cluster-crossing area, a single sector, the last sectors of the disk, weak
# sectors, and a slow area.
cat >"$W/faults" <<EOF
bad 0x100000 0x1000
bad 0x300200 0x200
bad 0x5FFE00 0x400
bad $((SIZE - 0x400)) 0x400
weak 0x400000 0x600 3
slow 0x700000 0x20000 20
EOF
grep -v weak "$W/faults" >"$W/faults-noweak"
bad_list "$W/faults" >"$W/want-bad"
bad_list "$W/faults-noweak" >"$W/want-bad5"

# ---------------------------------------------------------------- every byte, exact bad

begin exact
mount_fault f1 "$W/src" "$W/faults"
run 6 "$IMAGO" rescue -r 3 "$W/f1/disk" "$W/out1" --map "$W/out1.map"
grep -q 'rescued' "$W/stdout" || err "no summary: $(head -c 200 "$W/stdout")"
bad_of "$W/out1.map" >"$W/got-bad"
diff -q "$W/want-bad" "$W/got-bad" >/dev/null ||
	err "bad ranges $(tr '\n' ';' <"$W/got-bad") != injected $(tr '\n' ';' <"$W/want-bad")"
[[ $(status_bytes "$W/out1.map" '?') == 0 ]] || err "untried bytes left"
check_output "$W/src" "$W/out1" "$W/out1.map"
umount_fault f1
finish

begin ddrescuelog-agrees
# ddrescuelog reads imago's map: its list of bad sectors is the injected one.
ddrescuelog -l- -b512 "$W/out1.map" >"$W/dl" 2>"$W/dl.err" || err "ddrescuelog -l- failed: $(cat "$W/dl.err")"
"$PY" - "$W/want-bad" "$W/dl" <<'EOF' >"$W/dl.diff"
import sys
want = set()
for line in open(sys.argv[1]):
    a, n = map(int, line.split())
    want.update(range(a // 512, (a + n) // 512))
got = set(int(x) for x in open(sys.argv[2]).read().split())
if want != got:
    print("ddrescuelog lists %d bad sectors, want %d" % (len(got), len(want)))
EOF
[[ -s $W/dl.diff ]] && err "$(cat "$W/dl.diff")"
ddrescuelog -D "$W/out1.map" >/dev/null 2>&1 && err "ddrescuelog -D says a map with bad sectors is done"
finish

# ---------------------------------------------------------------- weak sectors

begin weak-sectors-need-retries
mount_fault f2 "$W/src" "$W/faults"
run 6 "$IMAGO" rescue -q -r 0 "$W/f2/disk" "$W/out2" --map "$W/out2.map"
bad_of "$W/out2.map" >"$W/got-bad2"
diff -q "$W/want-bad" "$W/got-bad2" >/dev/null && err "weak sectors came back without retries (are they weak?)"
grep -q "^$((0x400000)) " "$W/got-bad2" || err "the weak sectors are not bad after -r 0: $(tr '\n' ';' <"$W/got-bad2")"
# resume with retries: they come back, the bad ones stay
run 6 "$IMAGO" rescue -q -r 5 "$W/f2/disk" "$W/out2" --map "$W/out2.map"
bad_of "$W/out2.map" >"$W/got-bad2"
diff -q "$W/want-bad" "$W/got-bad2" >/dev/null ||
	err "after retries: bad $(tr '\n' ';' <"$W/got-bad2") != injected $(tr '\n' ';' <"$W/want-bad")"
same "$W/out1" "$W/out2"
umount_fault f2
finish

# ---------------------------------------------------------------- 4096-byte sectors

begin sector-4096
mount_fault f3 "$W/src" "$W/faults"
run 6 "$IMAGO" rescue -q -r 3 -b 4096 "$W/f3/disk" "$W/out3" --map "$W/out3.map"
bad_list "$W/faults" 4096 >"$W/want-bad4k"
bad_of "$W/out3.map" >"$W/got-bad3"
diff -q "$W/want-bad4k" "$W/got-bad3" >/dev/null ||
	err "bad $(tr '\n' ';' <"$W/got-bad3") != injected rounded to 4K $(tr '\n' ';' <"$W/want-bad4k")"
check_output "$W/src" "$W/out3" "$W/out3.map"
umount_fault f3
finish

# ---------------------------------------------------------------- loop device, O_DIRECT

begin loop-direct
mount_fault f4 "$W/src" "$W/faults"
loop_attach "$W/f4/disk" -r
run 6 "$IMAGO" rescue -q -r 3 --direct --reopen "$LOOP" "$W/out4" --map "$W/out4.map"
bad_of "$W/out4.map" >"$W/got-bad4"
diff -q "$W/want-bad" "$W/got-bad4" >/dev/null ||
	err "bad $(tr '\n' ';' <"$W/got-bad4") != injected $(tr '\n' ';' <"$W/want-bad")"
check_output "$W/src" "$W/out4" "$W/out4.map"
finish

# ---------------------------------------------------------------- kill -9, resume

begin kill9-resume
# Slow everywhere (20 ms a read, 64 KiB reads: about 3 s in all), saving every 0.2 s.
{ cat "$W/faults-noweak"; echo "slow 0 $SIZE 20"; } >"$W/faults-slow"
mount_fault f5 "$W/src" "$W/faults-slow"
"$IMAGO" rescue -q -c 64K --map-interval 0.2 "$W/f5/disk" "$W/out5" --map "$W/out5.map" \
	>/dev/null 2>&1 &
pid=$!
sleep 1.5
kill -9 $pid 2>/dev/null || err "the rescue ended before it could be killed"
wait $pid 2>/dev/null
umount_fault f5
if [[ ! -s $W/out5.map ]]; then
	err "no map saved before kill -9"
else
	done5=$(status_bytes "$W/out5.map" '+')
	((done5 > 0 && done5 < SIZE)) || err "map after kill -9 has $done5 finished bytes"
	# Resume on a source where every finished area is now unreadable: reading one again
	# would turn it bad.
	cp "$W/faults-noweak" "$W/faults-resume"
	"$PY" - "$W/out5.map" >>"$W/faults-resume" <<'EOF'
import sys
first = True
for line in open(sys.argv[1]):
    f = line.split('#')[0].split()
    if not f:
        continue
    if first:
        first = False
        continue
    if f[2] == '+':
        print("bad", int(f[0], 0), int(f[1], 0))
EOF
	mount_fault f6 "$W/src" "$W/faults-resume"
	run 6 "$IMAGO" rescue -q "$W/f6/disk" "$W/out5" --map "$W/out5.map"
	bad_of "$W/out5.map" >"$W/got-bad5"
	diff -q "$W/want-bad5" "$W/got-bad5" >/dev/null ||
		err "after resume: bad $(tr '\n' ';' <"$W/got-bad5") != injected $(tr '\n' ';' <"$W/want-bad5") (finished areas read again?)"
	same "$W/out1" "$W/out5"
	umount_fault f6
fi
finish

begin reopen-after-outage
# The device drops off mid-rescue (its FUSE server dies) and comes back a second later:
# with --reopen the rescue waits for it, and nothing is lost but the injected bad areas.
mkdir -p "$W/f17"
"$FAULTDEV" "$W/src" "$W/faults-slow" "$W/f17" -f 2>/dev/null &
fpid=$!
defer umount -l "$W/f17"
for i in $(seq 50); do [[ -f $W/f17/disk ]] && break; sleep 0.1; done
"$IMAGO" rescue -q -c 64K --reopen "$W/f17/disk" "$W/out17" --map "$W/out17.map" >/dev/null 2>"$W/err17" &
rpid=$!
sleep 0.7
{ kill -9 $fpid; wait $fpid; } 2>/dev/null
umount -l "$W/f17"
sleep 0.5
mount_fault f17 "$W/src" "$W/faults-slow"
wait $rpid
rc=$?
((rc == 6)) || err "rescue across the outage exited $rc, want 6: $(head -c 300 "$W/err17")"
bad_of "$W/out17.map" >"$W/got-bad17"
diff -q "$W/want-bad5" "$W/got-bad17" >/dev/null ||
	err "after the outage: bad $(tr '\n' ';' <"$W/got-bad17") != injected $(tr '\n' ';' <"$W/want-bad5")"
same "$W/out1" "$W/out17"
umount_fault f17
finish

begin sigint-saves-map
mount_fault f7 "$W/src" "$W/faults-slow"
"$IMAGO" rescue -q -c 64K "$W/f7/disk" "$W/out7" --map "$W/out7.map" >/dev/null 2>"$W/err7" &
pid=$!
sleep 1
kill -INT $pid
wait $pid
rc=$?
((rc == 1)) || err "interrupted rescue exited $rc, want 1"
grep -q 'resume' "$W/err7" || err "no word on resuming: $(head -c 200 "$W/err7")"
[[ -s $W/out7.map ]] || err "no map saved on SIGINT"
ddrescuelog -t "$W/out7.map" >/dev/null 2>&1 || err "ddrescuelog cannot read the map saved on SIGINT"
run 6 "$IMAGO" rescue -q "$W/f7/disk" "$W/out7" --map "$W/out7.map"
same "$W/out1" "$W/out7"
umount_fault f7
finish

# ---------------------------------------------------------------- ddrescue both ways

begin ddrescue-resumes-imago
mount_fault f8 "$W/src" "$W/faults-noweak"
# imago stops after copying (no trimming, no scraping): failed areas left non-trimmed
run 6 "$IMAGO" rescue -q --no-trim --no-scrape "$W/f8/disk" "$W/out8" --map "$W/out8.map"
(($(status_bytes "$W/out8.map" '*') > 0)) || err "no non-trimmed areas left for ddrescue"
ddrescue -q "$W/f8/disk" "$W/out8" "$W/out8.map" >/dev/null 2>"$W/dd8.err" ||
	err "ddrescue failed to resume from imago's map: $(head -c 200 "$W/dd8.err")"
bad_of "$W/out8.map" >"$W/got-bad8"
diff -q "$W/want-bad5" "$W/got-bad8" >/dev/null ||
	err "after ddrescue: bad $(tr '\n' ';' <"$W/got-bad8") != injected"
grep -q 'GNU ddrescue' "$W/out8.map" || err "the map was not rewritten by ddrescue"
same "$W/out1" "$W/out8"
finish

begin imago-resumes-ddrescue
# ddrescue copies half of the disk without trimming; imago does the rest
ddrescue -q -N -s $((SIZE / 2)) "$W/f8/disk" "$W/out9" "$W/out9.map" >/dev/null 2>&1 ||
	err "ddrescue failed"
grep -q 'GNU ddrescue' "$W/out9.map" || err "ddrescue wrote no map"
(($(status_bytes "$W/out9.map" '*') > 0)) || err "ddrescue left no non-trimmed area"
run 6 "$IMAGO" rescue -q "$W/f8/disk" "$W/out9" --map "$W/out9.map"
grep -q 'resuming' "$W/stderr" && err "-q printed: $(cat "$W/stderr")"
bad_of "$W/out9.map" >"$W/got-bad9"
diff -q "$W/want-bad5" "$W/got-bad9" >/dev/null ||
	err "after imago: bad $(tr '\n' ';' <"$W/got-bad9") != injected"
same "$W/out1" "$W/out9"
# imago's map of ddrescue's totals: the same as ddrescuelog's
run 0 "$IMAGO" map "$W/out9.map"
fin=$(awk '/^finished:/ {print $2}' "$W/stdout")
bad=$(awk '/^bad:/ {print $2}' "$W/stdout")
[[ $fin == $(status_bytes "$W/out9.map" '+') && $bad == $(status_bytes "$W/out9.map" '-') ]] ||
	err "imago map totals finished=$fin bad=$bad disagree with the file"
umount_fault f8
finish

# ---------------------------------------------------------------- native image

begin native-image
mount_fault f10 "$W/src" "$W/faults"
run 6 "$IMAGO" rescue -q -r 3 --image "$W/f10/disk" "$W/out10.imago" --map "$W/out10.map"
run 0 "$IMAGO" verify "$W/out10.imago"
run 0 "$IMAGO" info --json "$W/out10.imago"
want=$(awk '{s += $2} END {print s}' "$W/want-bad")
got=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["extents"]["bad"]["bytes"])' "$W/stdout" 2>/dev/null)
[[ $got == "$want" ]] || err "image has ${got:-?} bad bytes, want $want"
run 0 "$IMAGO" restore "$W/out10.imago" "$W/out10.raw"
same "$W/out1" "$W/out10.raw"
run_in "$W/out10.imago" 0 "$IMAGO" restore - "$W/out10.pipe"
same "$W/out1" "$W/out10.pipe"
umount_fault f10
finish

begin native-image-bad-chunks
# Whole chunks unreadable (2 MiB), and a partial one: chunks without data have no frame.
make_random "$W/src11" $((6 << 20)) 11
printf 'bad 0x100000 0x200000\nbad 0x400200 0x200\n' >"$W/faults11"
mount_fault f11 "$W/src11" "$W/faults11"
run 6 "$IMAGO" rescue -q --image "$W/f11/disk" "$W/out11.imago" --map "$W/out11.map"
run 0 "$IMAGO" verify "$W/out11.imago"
run 0 "$IMAGO" restore "$W/out11.imago" "$W/out11.raw"
check_output "$W/src11" "$W/out11.raw" "$W/out11.map"
(($(fsize "$W/out11.imago") < (5 << 20))) || err "unreadable chunks were stored ($(fsize "$W/out11.imago") bytes)"
# Onto a disk full of junk: the BAD bytes are never written (neither the whole bad chunks
# nor the bad sector inside a chunk with data); every other byte is the source's.
make_random "$W/junk11" $((6 << 20)) 12
cp -- "$W/junk11" "$W/disk11"
loop_attach "$W/disk11"
run 0 "$IMAGO" restore -q "$W/out11.imago" "$LOOP"
out=$("$PY" - "$W/src11" "$LOOP" "$W/junk11" 2>&1 <<'EOF2'
import sys
src, dst, junk = (open(p, "rb").read() for p in sys.argv[1:4])
bad = [(0x100000, 0x300000), (0x400200, 0x400400)]
for a, b in bad:
    if dst[a:b] != junk[a:b]:
        sys.exit(f"BAD bytes {a:#x}-{b:#x} were written")
pos = 0
for a, b in bad + [(len(src), len(src))]:
    if dst[pos:a] != src[pos:a]:
        sys.exit(f"bytes {pos:#x}-{a:#x} differ from the source")
    pos = b
EOF2
) || err "restore onto junk: $out"
umount_fault f11
finish

# ---------------------------------------------------------------- ext4 report, used-only

begin ext4-report
mkdir -p "$W/tree/docs" "$W/tree/photos"
make_random "$W/tree/docs/report.pdf" 300000 21
make_random "$W/tree/photos/holiday.jpg" 500000 22
make_random "$W/tree/keep.bin" 200000 23
make_text "$W/tree/docs/notes.txt" 100000
mkfs.ext4 -q -F -b 4096 -E lazy_itable_init=0,nodiscard -d "$W/tree" "$W/ext.img" 64M >/dev/null 2>&1 ||
	die_setup "mkfs.ext4 -d failed"
# the 3rd block of two files, as debugfs lists them
blk() { debugfs -R "blocks $1" "$W/ext.img" 2>/dev/null | awk -v n="$2" '{print $n}'; }
b1=$(blk /docs/report.pdf 3)
b2=$(blk /photos/holiday.jpg 10)
[[ -n $b1 && -n $b2 ]] || die_setup "debugfs gave no blocks"
# a free block: past the last used one, as dumpe2fs -> use the last block of the fs
bfree=$((64 * 256 - 2))
debugfs -R "testb $bfree" "$W/ext.img" 2>/dev/null | grep -q 'not in use' || err "block $bfree is in use"
printf 'bad %d 512\nbad %d 1024\nbad %d 4096\n' $((b1 * 4096 + 512)) $((b2 * 4096)) \
	$((bfree * 4096)) >"$W/faults12"
mount_fault f12 "$W/ext.img" "$W/faults12"
run 6 "$IMAGO" rescue -q "$W/f12/disk" "$W/out12" --map "$W/out12.map" --report "$W/report12"
grep -qP '^file\t0\text4\t.*\t/docs/report.pdf$' "$W/report12" || err "report does not name /docs/report.pdf: $(cat "$W/report12")"
grep -qP '^file\t0\text4\t.*\t/photos/holiday.jpg$' "$W/report12" || err "report does not name /photos/holiday.jpg"
grep -q 'keep.bin\|notes.txt' "$W/report12" && err "report names a file that lost nothing"
grep -qP '^free\t0\text4\t'$((bfree * 4096))'\t4096\t' "$W/report12" || err "the bad free block is not reported as free space"
# the lost bytes per file are the injected ones
grep -P '/docs/report.pdf$' "$W/report12" | grep -qP '\t512\t' || err "report.pdf: not 512 bytes lost"
finish

begin used-only
# --used-only never reads free space: the bad free block stays untried, every file is
# intact (fsck and a mount prove it)
mount_fault f13 "$W/ext.img" "$W/faults12"
umount_fault f12
run 6 "$IMAGO" rescue -q --used-only "$W/f13/disk" "$W/out13" --map "$W/out13.map" \
	--report "$W/report13"
(($(status_bytes "$W/out13.map" '?') > 32 << 20)) || err "free space was read (untried: $(status_bytes "$W/out13.map" '?'))"
bad_of "$W/out13.map" | grep -q "^$((bfree * 4096)) " && err "the bad free block was read"
grep -q '/docs/report.pdf' "$W/report13" || err "report.pdf not reported lost"
# the files that lost nothing are whole in the copy
mkdir -p "$W/mnt13"
mount_at "$W/mnt13" -o ro,loop,noload "$W/out13"
cmp -s "$W/tree/keep.bin" "$W/mnt13/keep.bin" || err "keep.bin differs"
cmp -s "$W/tree/docs/notes.txt" "$W/mnt13/docs/notes.txt" || err "notes.txt differs"
umount "$W/mnt13"
# --used-first: the same, then the rest: at the end every byte was tried and the bad
# ones are exactly the injected ones
run 6 "$IMAGO" rescue -q --used-first "$W/f13/disk" "$W/out13b" --map "$W/out13b.map"
[[ $(status_bytes "$W/out13b.map" '?') == 0 ]] || err "--used-first left untried bytes"
bad_list "$W/faults12" >"$W/want-bad13"
bad_of "$W/out13b.map" >"$W/got-bad13"
diff -q "$W/want-bad13" "$W/got-bad13" >/dev/null || err "--used-first: bad $(tr '\n' ';' <"$W/got-bad13")"
check_output "$W/ext.img" "$W/out13b" "$W/out13b.map"
umount_fault f13
finish

begin partitioned-report
# A GPT disk: partition 1 the ext4 above, partition 2 data imago cannot read as a
# filesystem. A bad sector in each: the file by path, the range by partition.
truncate -s 80M "$W/disk14"
printf 'label: gpt\nstart=2048, size=131072\nstart=133120, size=20480\n' |
	sfdisk -q "$W/disk14" >/dev/null 2>&1 || die_setup "sfdisk failed"
dd if="$W/ext.img" of="$W/disk14" bs=1M seek=1 conv=notrunc status=none
make_random "$W/p2" $((10 << 20)) 14
dd if="$W/p2" of="$W/disk14" bs=512 seek=133120 conv=notrunc status=none
p2bad=$((133120 * 512 + 3 * 4096))
printf 'bad %d 512\nbad %d 1024\n' $((1048576 + b1 * 4096 + 512)) $p2bad >"$W/faults14"
mount_fault f14 "$W/disk14" "$W/faults14"
run 6 "$IMAGO" rescue -q "$W/f14/disk" "$W/out14" --map "$W/out14.map" --report -
grep -qP '^file\t1\text4\t.*\t/docs/report.pdf$' "$W/stdout" || err "partition 1 file not named: $(cat "$W/stdout")"
grep -qP "^range\t2\t-\t$p2bad\t1024\t" "$W/stdout" || err "partition 2 range not reported: $(cat "$W/stdout")"
umount_fault f14
finish

begin metadata-first
# --used-first reads metadata before data: the ext4 journal and inode table (partition 1)
# and the start of partition 2 come before the file data of partition 1, which lies
# before partition 2 on the disk; the device logs every read.
{ cat "$W/faults14"; echo "log $W/log16"; } >"$W/faults16"
mount_fault f16 "$W/disk14" "$W/faults16"
run 6 "$IMAGO" rescue -q --used-first "$W/f16/disk" "$W/out16" --map "$W/out16.map"
itab=$(dumpe2fs "$W/ext.img" 2>/dev/null | awk '/Inode table at/ {split($4, a, "-"); print a[1]; exit}')
"$PY" - "$W/log16" $((1048576 + b1 * 4096)) $((133120 * 512)) $((1048576 + itab * 4096)) \
	<<'EOF' >"$W/order16"
import sys
log = [tuple(map(int, l.split()[:2])) for l in open(sys.argv[1])]
def first(at):
    return next((i for i, (o, n) in enumerate(log) if o <= at < o + n), None)
data, p2, itab = first(int(sys.argv[2])), first(int(sys.argv[3])), first(int(sys.argv[4]))
if None in (data, p2, itab):
    print("a place was never read: data %s p2 %s itab %s" % (data, p2, itab))
elif not (itab < data and p2 < data):
    print("read order: inode table #%d, partition 2 start #%d, file data #%d" % (itab, p2, data))
EOF
[[ -s $W/order16 ]] && err "$(cat "$W/order16")"
check_output "$W/disk14" "$W/out16" "$W/out16.map"
umount_fault f16
finish

begin limits
mount_fault f15 "$W/src" "$W/faults-noweak"
run 6 "$IMAGO" rescue --max-errors 1 "$W/f15/disk" "$W/out15" --map "$W/out15.map"
grep -q 'stopped by a limit' "$W/stdout" || err "no word of the limit: $(cat "$W/stdout")"
(($(status_bytes "$W/out15.map" '?') > 0)) || err "nothing left untried after --max-errors 1"
run 6 "$IMAGO" rescue -q --max-time 0.000001 "$W/f15/disk" "$W/out15" --map "$W/out15.map"
(($(status_bytes "$W/out15.map" '?') > 0)) || err "nothing left untried after --max-time"
run 6 "$IMAGO" rescue -q "$W/f15/disk" "$W/out15" --map "$W/out15.map"
same "$W/out1" "$W/out15"
umount_fault f15
finish

# ---------------------------------------------------------------- map picture, refusals

begin map-svg
run 0 "$IMAGO" map "$W/out1.map" --svg "$W/map.svg"
"$PY" - "$W/map.svg" <<'EOF' >"$W/svg.check"
import sys, xml.etree.ElementTree as ET
t = ET.parse(sys.argv[1])
fills = [e.get('fill') for e in t.iter('{http://www.w3.org/2000/svg}rect')]
if '#e02020' not in fills or '#20c040' not in fills:
    print("no bad or no finished cell")
EOF
[[ -s $W/svg.check ]] && err "$(cat "$W/svg.check")"
finish

begin refuse-existing-output
cp "$W/src" "$W/existing"
run 5 "$IMAGO" rescue -q "$W/src" "$W/existing" --map "$W/nomap.map"
unchanged "$W/existing" "$W/src"
run 2 "$IMAGO" rescue -q "$W/src" "$W/x"
printf 'garbage\n' >"$W/bad.map"
run 3 "$IMAGO" rescue -q "$W/src" "$W/y" --map "$W/bad.map"
stderr_one_line 'mapfile'
finish

done_testing
