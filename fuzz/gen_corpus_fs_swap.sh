#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Regenerate the seed corpus of the swap fuzz target, fuzz/corpus/fs_swap/seed-*.img:
# header pages of swap areas made by mkswap (util-linux) with each page size, with and
# without label and UUID, with a bad-page list, written big-endian, in the old v0 format,
# and with the hibernation signatures libblkid knows written over them. Each file is the
# first page only (the fuzz target pads it back to the size the header gives).
#
#   fuzz/gen_corpus_fs_swap.sh
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$src/fuzz/corpus/fs_swap
work=$(mktemp -d "${TMPDIR:-/tmp}/gen-fs-swap.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
rm -f "$out"/seed-*.img

# mk NAME PAGESIZE [mkswap options...]: a 1 MiB swap area, first page kept.
mk() {
	local name=$1 ps=$2 img=$work/$1.img
	shift 2
	rm -f "$img"
	truncate -s 1M "$img"
	mkswap -q -p "$ps" "$@" "$img" >/dev/null 2>&1
	head -c "$ps" "$img" >"$out/seed-$name.img"
}
# poke NAME OFFSET STRING: overwrite bytes of a seed.
poke() { printf '%b' "$3" | dd of="$out/seed-$1.img" bs=1 seek="$2" conv=notrunc status=none; }

uuid=5eed0000-5a4b-4c0d-9e0f-000000000001
mk v1-4k 4096 -L swap-label -U "$uuid"
mk v1-4k-bare 4096 -U clear
mk v1-8k 8192 -L eight -U "$uuid"
mk v1-16k 16384 -L sixteen -U "$uuid"
mk v1-64k 65536 -L sixtyfour -U "$uuid"
for sig in S1SUSPEND S2SUSPEND ULSUSPEND LINHIB0001; do
	cp "$out/seed-v1-4k.img" "$out/seed-hib-$sig.img"
	poke "hib-$sig" 4086 "$sig"
	# The kernel writes HIBERNATE_SIG with its NUL: "S1SUSPEND\0" fills the 10 bytes.
	if ((${#sig} == 9)); then poke "hib-$sig" 4095 '\0'; fi
done
cp "$out/seed-v1-16k.img" "$out/seed-hib-16k.img"
poke hib-16k $((16384 - 10)) 'S1SUSPEND\0'
cp "$out/seed-v1-4k.img" "$out/seed-tuxonice.img"
poke tuxonice 0 '\355\303\002\351\230\126\345\014'
# Three bad pages listed (nr_badpages at 1032, the list at 1536).
cp "$out/seed-v1-4k.img" "$out/seed-badpages.img"
poke badpages 1032 '\003\000\000\000'
poke badpages 1536 '\005\000\000\000\007\000\000\000\011\000\000\000'
# The same header written by a big-endian machine: version, last_page, nr_badpages swapped.
cp "$out/seed-v1-4k.img" "$out/seed-big-endian.img"
python3 - "$out/seed-big-endian.img" <<'PY'
import struct, sys
p = sys.argv[1]
d = bytearray(open(p, "rb").read())
for at in (1024, 1028, 1032):
    d[at:at + 4] = struct.pack(">I", struct.unpack("<I", d[at:at + 4])[0])
open(p, "wb").write(d)
PY
# The version-0 format (no header fields; an unsupported format the reader names).
head -c 4096 /dev/zero >"$out/seed-v0.img"
poke v0 4086 'SWAP-SPACE'
ls -l "$out"
