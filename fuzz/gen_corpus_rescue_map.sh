#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Seed corpus of the mapfile parser (fuzz/fuzz_rescue_map.c): real GNU ddrescue mapfiles,
# made by running ddrescue on the fault-injecting FUSE device (tests/tools/faultdev) in
# its phases (finished, stopped after copying, without trimming, without scraping,
# backwards, with 4096-byte sectors, over a part of the disk, interrupted), imago's own
# maps of the same device, and '@'-prefixed copies (read against a smaller source).
#
#   fuzz/gen_corpus_rescue_map.sh [BUILD_DIR]     (run as root: FUSE)
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
out=$src/fuzz/corpus/rescue_map
w=$(mktemp -d)
trap 'fusermount3 -u "$w/m" 2>/dev/null || true; rm -rf "$w"' EXIT
mkdir -p "$out" "$w/m"
head -c $((4 << 20)) /dev/urandom >"$w/src"
cat >"$w/cfg" <<EOF2
bad 0x40000 0x1000
bad 0x100200 0x200
bad 0x1FFE00 0x8400
bad 0x300000 0x30000
weak 0x280000 0x400 2
EOF2
"$build/tests/faultdev" "$w/src" "$w/cfg" "$w/m"
for i in $(seq 50); do [[ -f $w/m/disk ]] && break; sleep 0.1; done
dd() { rm -f "$w/o" "$w/map"; ddrescue -q "$@" "$w/m/disk" "$w/o" "$w/map" >/dev/null 2>&1 || true; }
dd;                     cp "$w/map" "$out/ddrescue-finished"
dd -N;                  cp "$w/map" "$out/ddrescue-notrim"
dd -n;                  cp "$w/map" "$out/ddrescue-noscrape"
dd -N -n -R;            cp "$w/map" "$out/ddrescue-reverse-copy-only"
dd -b 4096 -r 2;        cp "$w/map" "$out/ddrescue-4k-retries"
dd -N -i 1M -s 2M;      cp "$w/map" "$out/ddrescue-domain"
dd -N -c 16;            cp "$w/map" "$out/ddrescue-small-clusters"
"$build/imago" rescue -q "$w/m/disk" "$w/i" --map "$w/imap" >/dev/null 2>&1 || true
cp "$w/imap" "$out/imago-finished"
rm -f "$w/i" "$w/imap"
"$build/imago" rescue -q --no-trim --no-scrape "$w/m/disk" "$w/i" --map "$w/imap" >/dev/null 2>&1 || true
cp "$w/imap" "$out/imago-copy-only"
{ printf '@'; cat "$out/ddrescue-notrim"; } >"$out/clip-ddrescue-notrim"
# a pre-1.20 style map: a status line of two fields, C-literal decimal and octal numbers
{ echo "# Rescue Logfile. Created by GNU ddrescue version 1.19"; echo "0 +";
  echo "0 4096 +"; echo "010000 0x200 -"; echo "4608 0x1000 ?"; } >"$out/old-two-field-status"
ls -l "$out"
