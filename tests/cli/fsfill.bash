# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
#
# Helpers for the filesystem-reader tests (tests/cli/fs_*.sh): fill a mounted filesystem
# with real files the way a used disk looks, read tests/fsmap's output, and compare file
# trees. Source it after lib.bash; not named *.sh so that tests/run.sh leaves it alone.

# The file pool: regular files under a few system directories (sizes from a few bytes
# to several MiB), in a fixed pseudo-random order (so sizes and directories are mixed).
# One line per file: SIZE PATH.
FS_POOL=
fs_pool() {
	[[ -n $FS_POOL ]] && return 0
	FS_POOL=$W/.pool
	"$PY" - "$FS_POOL" <<'EOF' || die_setup "cannot list the file pool"
import os, random, sys
roots = ["/usr/share/doc", "/usr/share/man", "/usr/lib/python3", "/usr/share/perl5",
         "/usr/lib/x86_64-linux-gnu", "/usr/share/locale", "/usr/include"]
out = []
for root in roots:
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if os.path.islink(p) or not os.path.isfile(p) or st.st_size > (6 << 20):
                continue
            if not os.access(p, os.R_OK) or not p.isascii() or not p.isprintable() or " " in p:
                continue
            out.append((st.st_size, p))
random.Random(20240601).shuffle(out)
with open(sys.argv[1], "w") as fh:
    for s, p in out:
        fh.write(f"{s} {p}\n")
EOF
	[[ $(wc -l <"$FS_POOL") -gt 2000 ]] || die_setup "the file pool is too small"
}

# fs_scratch: a tmpfs for staged and extracted file trees (the disk under $W is slow for
# thousands of small files); sets FS_SCRATCH. Unmounted at exit.
FS_SCRATCH=
fs_scratch() {
	[[ -n $FS_SCRATCH ]] && return 0
	FS_SCRATCH=$W/.scratch
	mount_at "$FS_SCRATCH" -t tmpfs -o size=1g,mode=700 tmpfs
}

# fs_pick LIST BUDGET SKIP: write to LIST the paths of pool files (after the first SKIP
# lines) whose sizes add up to at most BUDGET bytes.
fs_pick() {
	fs_pool
	tail -n +$(($3 + 1)) -- "$FS_POOL" | awk -v b="$2" '{ if (t + $1 > b) next; t += $1; print $2 }' >"$1"
}

# fs_copy_list LIST DIR: copy the listed files under DIR, keeping their paths (errors such
# as names the filesystem cannot hold, or a full filesystem, are ignored).
fs_copy_list() {
	mkdir -p -- "$2"
	tar -C / -cf - --files-from="$1" 2>/dev/null |
		tar -C "$2" -xf - --no-same-owner --no-same-permissions -m 2>/dev/null
	return 0
}

# fs_write PATH SIZE KIND SEED: a file of SIZE bytes of KIND (random: pseudo-random from
# SEED; text: the text corpus repeated; marker: FS_MARKER repeated). A full filesystem
# just ends the file early.
FS_MARKER=IMAGO-STALE-DATA-MARKER-7f3c
fs_write() {
	local corpus=
	[[ $3 == text ]] && corpus=$(text_corpus)
	"$PY" - "$1" "$2" "$3" "$4" "$FS_MARKER" "$corpus" <<'EOF' || true
import random, sys
path, size, kind, seed, marker, corpus = sys.argv[1:7]
size, r = int(size), random.Random(int(seed))
if kind == "text":
    unit = open(corpus, "rb").read()
elif kind == "marker":
    unit = marker.encode() * (65536 // len(marker) + 1)
try:
    with open(path, "wb") as f:
        while size > 0:
            n = min(size, 1 << 20)
            if kind == "random":
                f.write(r.randbytes(n))
            else:
                k = min(n, len(unit))
                f.write(unit[:k])
                n = k
            size -= n
except OSError:
    pass
EOF
}

# fs_fill OPS BUDGET: fill a filesystem with about BUDGET bytes of real files in several
# rounds, deleting some in between, so that files are fragmented and free space holds
# stale data:
#   1. set a (55% of BUDGET) under a/, two big files (random and text) under big/;
#   2. delete every other file of a/;
#   3. set b (30%, other files) and a big random file under b/, written into the holes;
#   4. delete every 7th file of b/;
#   5. write s/stale.bin (FS_MARKER repeated), delete it: its data stays in free space.
# OPS names the functions that reach the filesystem: OPS_put LOCAL-DIR SUBDIR (copy the
# contents of a local directory into SUBDIR of the filesystem), OPS_list SUBDIR (the
# files under SUBDIR, paths relative to the root, sorted), OPS_rm LIST-FILE (delete the
# listed files), OPS_sync. fs_mnt_* below works on a mounted filesystem ($FS_MNT).
fs_fill() {
	local ops=$1 budget=$2 n st
	fs_scratch
	st=$FS_SCRATCH/stage
	fs_stage() { rm -rf -- "$st" && mkdir -p -- "$st"; }
	fs_stage
	fs_pick "$W/.set-a" $((budget * 55 / 100)) 0
	fs_copy_list "$W/.set-a" "$st"
	"${ops}_put" "$st" a
	fs_stage
	fs_write "$st/big-random.bin" $((budget * 8 / 100)) random 5
	fs_write "$st/big-text.txt" $((budget * 5 / 100)) text 0
	"${ops}_put" "$st" big
	"${ops}_sync"
	"${ops}_list" a | awk 'NR % 2 == 0' >"$W/.del"
	"${ops}_rm" "$W/.del"
	fs_stage
	n=$(wc -l <"$W/.set-a")
	fs_pick "$W/.set-b" $((budget * 30 / 100)) "$((n + 500))"
	fs_copy_list "$W/.set-b" "$st"
	fs_write "$st/late-random.bin" $((budget * 10 / 100)) random 6
	"${ops}_put" "$st" b
	"${ops}_sync"
	"${ops}_list" b | awk 'NR % 7 == 0' >"$W/.del"
	"${ops}_rm" "$W/.del"
	"${ops}_sync"
	fs_stage
	fs_write "$st/stale.bin" $((budget * 5 / 100)) marker 0
	"${ops}_put" "$st" s
	"${ops}_sync"
	"${ops}_list" s >"$W/.del"
	"${ops}_rm" "$W/.del"
	"${ops}_sync"
	rm -rf -- "$st" "$W/.del"
}

FS_MNT=
fs_mnt_put() {
	mkdir -p -- "$FS_MNT/$2"
	cp -r --no-preserve=all -- "$1/." "$FS_MNT/$2/" 2>/dev/null
	return 0
}
fs_mnt_list() { (cd -- "$FS_MNT" && find "$1" -type f | LC_ALL=C sort); }
fs_mnt_rm() { (cd -- "$FS_MNT" && tr '\n' '\0' <"$1" | xargs -0 -r rm -f --); }
fs_mnt_sync() { sync; }

# fs_count_files DIR: number of regular files under DIR.
fs_count_files() { find "$1" -type f | wc -l; }

# fsmap_get KEY: the value of KEY in the last fsmap output ($W/stdout).
fsmap_get() { awk -v k="$1" '$1 == k { sub("^[^ ]* ?", ""); print; exit }' "$W/stdout"; }

# fsmap_expect KEY VALUE: record a problem unless the last fsmap output says KEY VALUE.
fsmap_expect() {
	local got
	got=$(fsmap_get "$1")
	[[ $got == "$2" ]] && return 0
	err "fsmap $1 is '$got', want '$2'"
	return 1
}

# tree_same A B: the trees under A and B hold the same names and the same bytes
# (diff -r), and are not empty.
tree_same() {
	local out
	if ! out=$(diff -r -- "$1" "$2" 2>&1); then
		err "trees differ: $(head -c 400 <<<"$out")"
		return 1
	fi
	(($(fs_count_files "$1") > 0)) || { err "tree $1 is empty"; return 1; }
	return 0
}

# has_marker FILE: the stale-data marker of fs_fill occurs in FILE.
has_marker() { grep -q -a -F -- "$FS_MARKER" "$1"; }
