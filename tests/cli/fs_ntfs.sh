#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The NTFS allocation reader (lib/fs/ntfs*.c), proved with outside tools:
#   - real volumes from mkntfs (4 KiB, 64 KiB and 512-byte clusters; 4096-byte sectors),
#     filled through ntfs-3g with thousands of real files, fragmented (every other file
#     deleted, then more written), a sparse file, big files;
#   - facts agree with ntfsinfo -m / ntfscluster -i (free clusters, exactly), ntfslabel
#     and blkid (label, serial);
#   - the copy whose FREE bytes fsmap overwrote with 0xA5 passes ntfsfix -n and mounts
#     (ntfs-3g, read-only) with a file tree identical to the source's, checksums and all;
#   - dirty flag (set in $Volume, seen by ntfsinfo, cleared by ntfsfix -d), hiberfil.sys
#     (ntfs-3g refuses such volumes) and an unclean $LogFile are reported;
#   - damaged and truncated volumes fail cleanly; a volume inside a partitioned disk reads
#     the same at its offset.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"
# shellcheck source=fsfill.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/fsfill.bash"

need_root
need mkntfs ntfs-3g ntfsfix ntfsinfo ntfscluster ntfslabel blkid sfdisk mountpoint \
	sha256sum diff find xargs python3 truncate dd cmp
FSMAP=${IMAGO_BUILD:-}/tests/fsmap
[[ -x $FSMAP ]] || die_setup "no fsmap test tool at $FSMAP (IMAGO_BUILD)"

MiB=$((1024 * 1024))

# ---------------------------------------------------------------- helpers

# ntfs-3g runs in the foreground (in the background of this shell) so that unmounting can
# wait for it to finish writing the volume.
NTFS_PID=
# nmount IMG DIR [OPTIONS]: OPTIONS as for ntfs-3g -o (comma-separated).
nmount() {
	local img=$1 dir=$2 opts=no_detach${3:+,$3} i
	mkdir -p -- "$dir"
	ntfs-3g -o "$opts" "$img" "$dir" </dev/null >"$W/ntfs-3g.log" 2>&1 &
	NTFS_PID=$!
	defer umount -l "$dir"
	for ((i = 0; i < 100; i++)); do
		mountpoint -q -- "$dir" && return 0
		kill -0 "$NTFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	return 1
}
numount() {
	umount -- "$1" || umount -l -- "$1"
	wait "$NTFS_PID" 2>/dev/null
	NTFS_PID=
}

# fact KEY: a line of the last fsmap run's output.
fact() { sed -n "s/^$1 //p" "$W/stdout" | head -n 1; }

# want_fact KEY VALUE
want_fact() {
	local got
	got=$(fact "$1")
	[[ $got == "$2" ]] || err "fsmap $1 is '$got', want '$2'"
}

# ntfsinfo_m IMG KEY: a value of ntfsinfo -m (first number after the colon).
ntfsinfo_m() {
	ntfsinfo -m "$1" 2>/dev/null | sed -n "s/^[[:space:]]*$2:[[:space:]]*\([0-9]*\).*/\1/p" | head -n 1
}

# Files to copy in: small real files (docs, Python sources), in a fixed order.
mapfile -t SMALL < <(find /usr/share/doc /usr/lib/python3* -type f -size -96k 2>/dev/null |
	LC_ALL=C sort)
((${#SMALL[@]} >= 4000)) || die_setup "only ${#SMALL[@]} small files under /usr/share/doc and /usr/lib/python3*"
BIG1=/usr/lib/x86_64-linux-gnu/libcrypto.so.3
BIG2=$(readlink -f /usr/lib/x86_64-linux-gnu/libicuuc.so.72 2>/dev/null || true)
[[ -f $BIG1 && -f $BIG2 ]] || die_setup "no large files to copy ($BIG1, $BIG2)"

# fill DIR N: N small files, a big file; delete every other small file (stale data in the
# holes); N more small files and a big file into the holes (fragmented); a sparse file;
# 200 tiny files (resident in their MFT records).
fill() {
	local d=$1 n=$2 i
	mkdir -p -- "$d/a" "$d/b" "$d/tiny"
	printf '%s\0' "${SMALL[@]:0:n}" | xargs -0 cp --parents -t "$d/a" -- || return 1
	cp -- "$BIG1" "$d/big1" || return 1
	find "$d/a" -type f -print0 | LC_ALL=C sort -z | awk 'BEGIN{RS="\0"; ORS="\0"} NR % 2' |
		xargs -0 rm -f --
	printf '%s\0' "${SMALL[@]:n:n}" | xargs -0 cp --parents -t "$d/b" -- || return 1
	cp -- "$BIG2" "$d/big2" || return 1
	truncate -s 24M "$d/sparse" && dd if="$BIG1" of="$d/sparse" bs=64k seek=100 count=4 \
		conv=notrunc status=none || return 1
	for ((i = 0; i < 200; i++)); do echo "tiny $i" >"$d/tiny/$i"; done
	# Stale data: a file of FS_MARKER (fsfill.bash), deleted; the scrub must wipe it.
	fs_write "$d/stale.bin" $((512 * 1024)) marker 0
	sync -f -- "$d"
	rm -f -- "$d/stale.bin"
}

# tree_sums DIR: sha256 of every file, by path.
tree_sums() { (cd -- "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum); }

# ---------------------------------------------------------------- variants

# variant NAME SIZE_MIB N MKNTFS-OPTIONS...: make, fill, then check facts and the scrub.
variant() {
	local name=$1 size=$2 n=$3
	shift 3
	local img=$W/$name.img out=$W/$name.scrub cs free_cl vol_cl fs_free
	begin "$name/make"
	truncate -s $((size * MiB)) "$img"
	mkntfs -Q -F -L "Tést $name" "$@" "$img" >"$W/mkntfs.log" 2>&1 ||
		err "mkntfs $* failed: $(tail -n 3 "$W/mkntfs.log")"
	if ok && nmount "$img" "$W/mnt"; then
		fill "$W/mnt" "$n" || err "filling $name through ntfs-3g failed"
		numount "$W/mnt"
	else
		err "ntfs-3g cannot mount $name: $(head -c 300 "$W/ntfs-3g.log")"
	fi
	finish
	ok || return

	begin "$name/facts"
	cs=$(ntfsinfo_m "$img" 'Cluster Size')
	free_cl=$(ntfsinfo_m "$img" 'Free Clusters')
	vol_cl=$(ntfsinfo_m "$img" 'Volume Size in Clusters')
	fs_free=$(ntfscluster -i "$img" 2>/dev/null | sed -n 's/^bytes of free space *: *//p')
	if [[ -z $cs || -z $free_cl || -z $vol_cl || -z $fs_free ]]; then
		err "ntfsinfo -m / ntfscluster -i did not report the cluster counts"
	elif run 0 "$FSMAP" "$img"; then
		want_fact driver ntfs
		want_fact type ntfs
		want_fact label "$(ntfslabel "$img" 2>/dev/null)"
		want_fact uuid "$(blkid -o value -s UUID "$img")"
		want_fact block_size "$cs"
		want_fact fs_size "$(fsize "$img")"
		want_fact flags 0
		# Exactly what the filesystem counts as free, and not one byte more.
		want_fact free_bytes $((free_cl * cs))
		want_fact free_bytes "$fs_free"
		want_fact used_bytes $(((vol_cl - free_cl) * cs))
		((free_cl * cs > 8 * MiB)) || err "test volume too full to prove much ($free_cl free clusters)"
	fi
	finish

	begin "$name/scrub"
	if run 0 "$FSMAP" --scrub "$out" "$img"; then
		cmp -s -- "$img" "$out" && err "the scrub changed nothing"
		has_marker "$img" || err "no stale data in the source volume to prove the scrub with"
		has_marker "$out" && err "stale data of a deleted file survived the scrub"
		run 0 ntfsfix -n "$out" || err "ntfsfix -n rejects the scrubbed copy"
		ntfsinfo -m "$out" >/dev/null 2>&1 || err "ntfsinfo cannot read the scrubbed copy"
		[[ $(ntfsinfo_m "$out" 'Free Clusters') == "$free_cl" ]] ||
			err "free clusters changed in the scrubbed copy"
		if nmount "$img" "$W/m1" ro && nmount "$out" "$W/m2" ro; then
			local files
			files=$(find "$W/m1" -type f | wc -l)
			((files > n)) || err "only $files files in the source volume"
			diff -r -- "$W/m1" "$W/m2" >"$W/diff.log" 2>&1 ||
				err "file trees differ: $(head -c 300 "$W/diff.log")"
			tree_sums "$W/m1" >"$W/sums1"
			tree_sums "$W/m2" >"$W/sums2"
			cmp -s "$W/sums1" "$W/sums2" || err "file checksums differ"
			umount "$W/m2"
			umount "$W/m1"
		else
			err "cannot mount the source and the scrubbed copy read-only"
		fi
	fi
	finish
	rm -f -- "$out"
}

variant c4k 128 1200 -c 4096
variant c64k 256 600 -c 65536
variant c512 64 1500 -c 512
variant s4096 96 1000 -s 4096 -c 4096
# c512 stays for the damage and offset tests below.
rm -f -- "$W/c4k.img" "$W/c64k.img" "$W/s4096.img"

# ---------------------------------------------------------------- at an offset

begin offset
base=$W/c512.img
if [[ -f $base ]]; then
	disk=$W/disk.img
	psize=$(fsize "$base")
	truncate -s $((psize + 2 * MiB)) "$disk"
	echo "start=2048, size=$((psize / 512)), type=7" | sfdisk -q "$disk" >/dev/null 2>&1 ||
		err "sfdisk failed"
	start=$(sfdisk -J "$disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][0]["start"])')
	dd if="$base" of="$disk" bs=1M seek=$((start * 512 / MiB)) conv=notrunc status=none
	cp -- "$disk" "$W/disk.orig"
	run 0 "$FSMAP" "$base" && cp -- "$W/stdout" "$W/alone.out"
	if run 0 "$FSMAP" --offset $((start * 512)) --size "$psize" --scrub "$W/disk.scrub" "$disk"; then
		diff -- "$W/alone.out" "$W/stdout" >/dev/null ||
			err "facts at an offset differ: $(diff -- "$W/alone.out" "$W/stdout" | head -c 300)"
		run 0 "$FSMAP" --scrub "$W/alone.scrub" "$base"
		# The partition was scrubbed exactly as the volume alone; nothing else was touched.
		cmp -s <(tail -c +$((start * 512 + 1)) "$W/disk.scrub" | head -c "$psize") "$W/alone.scrub" ||
			err "the partition's scrub differs from the volume's"
		cmp -s -n $((start * 512)) "$W/disk.scrub" "$W/disk.orig" || err "bytes before the partition changed"
		cmp -s <(tail -c +$((start * 512 + psize + 1)) "$W/disk.scrub") \
			<(tail -c +$((start * 512 + psize + 1)) "$W/disk.orig") || err "bytes after the partition changed"
	fi
	# A region shorter than the volume is a truncated volume.
	run 1 "$FSMAP" --offset $((start * 512)) --size $((psize - MiB)) "$disk"
	grep -qi truncated "$W/stderr" || err "short region: message does not say truncated: $(head -c 200 "$W/stderr")"
	rm -f -- "$disk" "$W/disk.orig" "$W/disk.scrub" "$W/alone.scrub"
else
	err "no c512 volume"
fi
finish

# ---------------------------------------------------------------- damage

# damaged NAME WANT-RC REGEX: fsmap on $W/dmg.img exits WANT-RC (1 error, 3 not
# recognised), its message matching REGEX; never a crash.
damaged() {
	begin "damaged/$1"
	run "$2" "$FSMAP" "$W/dmg.img"
	if [[ -n $3 ]] && ! grep -Eqi -- "$3" "$W/stderr"; then
		err "message does not match /$3/: $(head -c 300 "$W/stderr")"
	fi
	finish
}

base=$W/c512.img
mft_lcn=$(u64 "$base" 48)
mft=$((mft_lcn * 512))   # 512-byte clusters
rec6=$((mft + 6 * 1024))

cp -- "$base" "$W/dmg.img"; flip "$W/dmg.img" 3 0x20   # "NTFS" -> "nTFS"
damaged oem-id 3 ''
cp -- "$base" "$W/dmg.img"; poke_u16 "$W/dmg.img" 11 768
damaged bytes-per-sector 3 ''
cp -- "$base" "$W/dmg.img"; poke_hex "$W/dmg.img" 13 03
damaged sectors-per-cluster 3 ''
cp -- "$base" "$W/dmg.img"; poke_u64 "$W/dmg.img" 48 $((1 << 40))
damaged mft-lcn 3 ''
cp -- "$base" "$W/dmg.img"; truncate -s $(($(fsize "$base") / 2)) "$W/dmg.img"
damaged truncated 1 'truncated'
cp -- "$base" "$W/dmg.img"; poke_hex "$W/dmg.img" "$rec6" 58494c45
damaged record-signature 1 'MFT record 6'
cp -- "$base" "$W/dmg.img"; flip "$W/dmg.img" $((rec6 + 510)) 0x55
damaged torn-record 1 'torn'
cp -- "$base" "$W/dmg.img"; flip "$W/dmg.img" $((mft + 22)) 0x01
damaged mft-not-in-use 1 'not in use'
# The cluster bitmap wiped: it no longer marks $MFT and the rest in use.
bm_lcn=$(ntfsinfo -i 6 -v "$base" 2>/dev/null | awk '/Runlist:/ {getline; print $2; exit}')
if [[ -n $bm_lcn ]]; then
	cp -- "$base" "$W/dmg.img"
	dd if=/dev/zero of="$W/dmg.img" bs=512 seek=$((bm_lcn)) count=4 conv=notrunc status=none
	damaged bitmap-wiped 1 'bitmap is damaged'
else
	begin damaged/bitmap-wiped; err "ntfsinfo -i 6 shows no runlist"; finish
fi
cp -- "$base" "$W/dmg.img"; head -c 4096 /dev/urandom | dd of="$W/dmg.img" bs=1 seek=$((mft + 1024 * 3)) conv=notrunc status=none
damaged volume-record-random 1 ''
rm -f -- "$W/dmg.img"

# ---------------------------------------------------------------- volume states

st=$W/state.img
mkvol() {
	rm -f -- "$st"
	truncate -s 64M "$st"
	mkntfs -Q -F -c 4096 "$st" >/dev/null 2>&1 || err "mkntfs failed"
}

# flags_are WANT [STATE-REGEX]
flags_are() {
	run 0 "$FSMAP" "$st" || return
	want_fact flags "$1"
	if [[ -n ${2:-} ]] && ! [[ $(fact state) =~ $2 ]]; then
		err "state '$(fact state)' does not match /$2/"
	fi
}

# Dirty: set VOLUME_IS_DIRTY in $VOLUME_INFORMATION of record 3 in $MFT and $MFTMirr.
set_dirty() {
	python3 - "$st" <<'EOF'
import struct, sys
f = open(sys.argv[1], "r+b")
bs = f.read(512)
bps, spc = struct.unpack_from("<HB", bs, 11)
cs = bps * spc
mft, mirr = struct.unpack_from("<QQ", bs, 48)
v = struct.unpack_from("<b", bs, 64)[0]
rs = 1 << -v if v < 0 else v * cs
for lcn in (mft, mirr):
    off = lcn * cs + 3 * rs
    f.seek(off)
    rec = bytearray(f.read(rs))
    a = struct.unpack_from("<H", rec, 20)[0]
    while struct.unpack_from("<I", rec, a)[0] != 0x70:
        a += struct.unpack_from("<I", rec, a + 4)[0]
    val = a + struct.unpack_from("<H", rec, a + 20)[0]
    assert val + 12 < 510   # inside the first stride: no update sequence to redo
    rec[val + 10] |= 1
    f.seek(off)
    f.write(rec)
EOF
}

begin state/dirty
mkvol
set_dirty || err "cannot set the dirty flag"
# (Whole outputs, not pipes into grep -q: under pipefail, SIGPIPE would fail the pipe.)
grep -q 'scheduled for check' <<<"$(ntfsinfo -m "$st" 2>&1)" ||
	err "ntfsinfo does not refuse the dirty volume"
grep -q 'Volume Flags: 0x0001 DIRTY' <<<"$(ntfsinfo --force -m "$st" 2>/dev/null)" ||
	err "ntfsinfo does not see the dirty flag: $(ntfsinfo --force -m "$st" 2>&1 | grep -i flags)"
flags_are 1 dirty
ntfsfix -d "$st" >/dev/null 2>&1 || err "ntfsfix -d failed"
flags_are 0
finish

# hiber NAME CONTENT-CMD WANT [NTFS-3G-MESSAGE [STATE-REGEX [FILE-NAME]]]: write
# /hiberfil.sys (or FILE-NAME) through ntfs-3g.
hiber() {
	local name=$1 content=$2 want=$3 msg=${4:-} file=${6:-hiberfil.sys}
	begin "state/hiberfil-$name"
	# remove_hiberfile: ntfs-3g mounts a hibernated volume read-only otherwise.
	if nmount "$st" "$W/mnt" remove_hiberfile; then
		rm -f "$W/mnt/hiberfil.sys" "$W/mnt/HIBERFIL.SYS"
		eval "$content" >"$W/mnt/$file" || err "cannot write $file"
		numount "$W/mnt"
	else
		err "ntfs-3g cannot mount"
	fi
	flags_are "$want" "${5:-}"
	# ntfs-3g's own verdict, where it has one: it refuses to mount such a volume rw.
	if [[ -n $msg ]]; then
		nmount "$st" "$W/mnt"
		grep -q "$msg" "$W/ntfs-3g.log" || err "ntfs-3g does not say '$msg': $(head -c 200 "$W/ntfs-3g.log")"
		numount "$W/mnt"
	fi
	finish
}

mkvol
hiber hibr "{ printf hibr; head -c 16380 /dev/zero; }" 4 'Windows is hibernated' 'starts with "hibr"'
hiber zeroed "head -c 16384 /dev/zero" 0
hiber HIBR "{ printf HIBR; head -c 16380 /dev/zero; }" 4 '' 'starts with "HIBR"'
hiber wake "{ printf wake; head -c 16380 /dev/zero; }" 4 '' 'starts with "wake"'
hiber short "printf 'hibr not really'" 4 'Hibernated non-system partition' 'under 4096'
hiber upper-case-name "{ printf hibr; head -c 16380 /dev/zero; }" 4 '' 'starts with "hibr"' HIBERFIL.SYS
# A big root directory: the entry lies in an index block ($INDEX_ALLOCATION), not in the
# index root.
begin state/hiberfil-large-root
if nmount "$st" "$W/mnt" remove_hiberfile; then
	rm -f "$W/mnt/hiberfil.sys"
	for ((i = 0; i < 400; i++)); do : >"$W/mnt/file-with-a-longish-name-$i"; done
	{ printf hibr; head -c 8188 /dev/zero; } >"$W/mnt/hiberfil.sys"
	numount "$W/mnt"
fi
grep -q INDEX_ALLOCATION <<<"$(ntfsinfo --force -i 5 "$st" 2>/dev/null)" || err "the root directory has no index blocks"
flags_are 4 'starts with "hibr"'
finish
# A sparse hiberfil.sys with 300 data fragments: its runlist no longer fits its MFT
# record, so its $DATA is split over extension records listed in an $ATTRIBUTE_LIST
# (followed by the reader).
begin state/hiberfil-attribute-list
mkvol
if nmount "$st" "$W/mnt"; then
	python3 - "$W/mnt/hiberfil.sys" <<'EOF2'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"hibr" + bytes(4092))
for i in range(1, 300):
    os.pwrite(fd, b"Z" * 4096, i * 64 * 1024)
os.close(fd)
EOF2
	numount "$W/mnt"
fi
info=$(ntfsinfo --force -F /hiberfil.sys "$st" 2>/dev/null)
grep -q 'ATTRIBUTE_LIST' <<<"$info" || err "hiberfil.sys has no \$ATTRIBUTE_LIST"
# shellcheck disable=SC2016 # a literal $DATA
(($(grep -c -F 'Dumping attribute $DATA' <<<"$info") >= 2)) || err "hiberfil.sys's \$DATA is not split over records"
flags_are 4 'starts with "hibr"'
finish
begin state/hiberfil-removed
if nmount "$st" "$W/mnt" remove_hiberfile; then
	rm -f "$W/mnt/hiberfil.sys"
	numount "$W/mnt"
fi
flags_are 0
finish

# $LogFile restart page: a log client in use, flags CLEAN or not.
write_restart() {
	local lcn
	lcn=$(ntfsinfo -i 2 -v "$st" 2>/dev/null | awk '/Runlist:/ {getline; print $2; exit}')
	[[ -n $lcn ]] || { err "ntfsinfo -i 2 shows no runlist"; return 1; }
	python3 - "$st" $((lcn * 4096)) "$1" <<'EOF'
import struct, sys
path, off, clean = sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3])
page = bytearray(4096)
page[0:4] = b"RSTR"
struct.pack_into("<HHQIIHhh", page, 4, 30, 9, 0, 4096, 4096, 48, 1, 1)
ra = 48
file_size = 2 << 20
struct.pack_into("<QHHHHIHHqIHHI", page, ra, 0x123456, 1, 0xFFFF, 0,
                 2 if clean else 0, 67 - file_size.bit_length(), 64 + 160, 64,
                 file_size, 0, 48, 64, 1)
cr = ra + 64
struct.pack_into("<QQHHH", page, cr, 0x123000, 0x123400, 0xFFFF, 0xFFFF, 1)
struct.pack_into("<I", page, cr + 28, 8)
page[cr + 32:cr + 40] = "NTFS".encode("utf-16-le")
usn = b"\x01\x00"
page[30:32] = usn
for i in range(1, 9):
    end = i * 512 - 2
    page[30 + 2 * i:32 + 2 * i] = page[end:end + 2]
    page[end:end + 2] = usn
with open(path, "r+b") as f:
    f.seek(off)
    f.write(page)
EOF
}

begin state/logfile-unclean
mkvol
write_restart 0 && flags_are 2 'not shut down cleanly'
nmount "$st" "$W/mnt"
grep -q 'unclean file system' "$W/ntfs-3g.log" ||
	err "ntfs-3g does not call it unclean: $(head -c 200 "$W/ntfs-3g.log")"
numount "$W/mnt"
finish
begin state/logfile-clean
mkvol
write_restart 1 && flags_are 0
nmount "$st" "$W/mnt"
grep -q 'unclean' "$W/ntfs-3g.log" && err "ntfs-3g calls the clean log unclean"
numount "$W/mnt"
finish
begin state/logfile-garbage
mkvol
lcn=$(ntfsinfo -i 2 -v "$st" 2>/dev/null | awk '/Runlist:/ {getline; print $2; exit}')
printf 'RSTR garbage' | dd of="$st" bs=1 seek=$((lcn * 4096)) conv=notrunc status=none
flags_are 2 'no valid restart page'
finish
rm -f -- "$st"

done_testing
