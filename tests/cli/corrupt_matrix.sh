#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The corruption matrix as a standing test (issue 7, item 5). Two real images, a sector
# image of mixed data (DATA_RAW, DATA_ZSTD and ZERO frames) and a smart image of an ext4
# made by mkfs.ext4 -d (allocation map of many runs, FREE space, filesystem metadata in
# the metadata section), are damaged many times, each time in one place: a seeded
# single-bit flip or a byte smash (1 to 8 bytes overwritten with random values) inside
# one region of the file: header, allocation map, frame headers, raw payloads, zstd
# payloads, metadata, extent map, index, trailer. For every damaged copy:
#   - `imago verify` exits 3 with one line on stderr;
#   - `imago restore IMAGE FILE` exits 3 with one line on stderr;
#   - `imago restore - FILE` reading the image from a pipe exits 3;
#   - tests/tools/preadcheck (imago_image_open + imago_image_pread over every byte, in
#     three read patterns) never returns a byte that differs from the source: each read
#     returns the right bytes or an error. (Random access reads only what the index
#     points to, so damage to a ZERO frame's header may read back clean there: verify
#     and restore, which read every frame, are the ones that must report it.)
# The assertion is 100% detection, with one exception the format cannot see and that is
# harmless (docs/FORMAT.md §4): a change to a zstd payload that decodes to the very same
# bytes (about 3 in 10,000 single-bit flips of a payload) passes verify; it is accepted
# only when restore, restore from a pipe and pread all return exactly the original
# device, and it is counted and printed. The seed and the counts are printed. MATRIX_SEED and
# MATRIX_CASES (mutations per region and image, default 20) change the run.

# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.bash
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.bash"

need_imago
need python3 mkfs.ext4
PREADCHECK=${IMAGO_BUILD:-}/tests/preadcheck
[[ -x $PREADCHECK ]] || die_setup "no $PREADCHECK (build the tests)"

SEED=${MATRIX_SEED:-$(date +%s)}
CASES=${MATRIX_CASES:-20}
# Under ASan (make check's second pass) every run costs several times more: fewer cases
# there; the normal pass carries the full count.
if [[ -z ${MATRIX_CASES:-} ]] && { ldd "$IMAGO" 2>/dev/null | grep -q 'libasan' || grep -aq '__asan_init' "$IMAGO" 2>/dev/null; }; then
	CASES=5
fi
echo "# corrupt_matrix: seed $SEED, $CASES mutations per region and image (MATRIX_SEED=$SEED to repeat)" >&2
export SOURCE_DATE_EPOCH=1700000000

# ---------------------------------------------------------------- the images

begin make_sector_image
make_mixed "$W/sector.src"
run 0 "$IMAGO" create -q --sector --chunk-size 64K "$W/sector.src" "$W/sector.imago" &&
	run 0 "$IMAGO" verify -q "$W/sector.imago" &&
	run 0 "$IMAGO" restore -q "$W/sector.imago" "$W/sector.ref" &&
	same "$W/sector.src" "$W/sector.ref"
finish
ok || die_setup "cannot make the sector image"

begin make_smart_image
mkdir -p "$W/tree/d1" "$W/tree/d2"
make_text "$W/tree/d1/text" 700000
make_random "$W/tree/d2/random" 300000 3
make_zero "$W/tree/zeros" 200000
append_text "$W/tree/zeros" 3000
for i in $(seq 1 40); do make_text "$W/tree/d1/small$i" $((i * 517)); done
truncate -s 8M "$W/smart.src"
mkfs.ext4 -q -F -b 1024 -g 1024 -N 256 -O ^flex_bg,^resize_inode -E root_owner=0:0 -d "$W/tree" "$W/smart.src" >/dev/null 2>&1 ||
	err "mkfs.ext4 -d failed"
# Stale bytes in the free space: a smart image leaves them out, they read as zeros.
"$PY" - "$W/smart.src" <<'EOF'
import sys, random
r = random.Random(7)
with open(sys.argv[1], "r+b") as f:
    data = bytearray(f.read())
    for i in range(0, len(data), 4096):
        if not any(data[i:i + 4096]):
            data[i:i + 4096] = r.randbytes(4096)
    f.seek(0)
    f.write(data)
EOF
ok && run 0 "$IMAGO" create -q --chunk-size 64K "$W/smart.src" "$W/smart.imago" &&
	run 0 "$IMAGO" verify -q "$W/smart.imago" &&
	run 0 "$IMAGO" restore -q "$W/smart.imago" "$W/smart.ref"
# At least 4 runs (USED, FREE, USED, FREE...): block groups of 1 MiB spread the metadata.
(($(u64 "$W/smart.imago" 56) >= 512 + 24 + 4 * 24 + 8)) || err "the smart image has no allocation map worth the name (frames_offset $(u64 "$W/smart.imago" 56))"
ok && { run 0 fsck.ext4 -n -f "$W/smart.ref" || err "restored ext4 does not fsck clean"; }
finish
ok || die_setup "cannot make the smart image"

# ---------------------------------------------------------------- the matrix

# matrix NAME: damage $W/NAME.imago region by region; one PASS/FAIL line per region.
matrix() {
	"$PY" - "$1" "$W" "$IMAGO" "$PREADCHECK" "$SEED" "$CASES" <<'EOF'
import os, random, struct, subprocess, sys

name, W, imago, preadcheck, seed, cases = sys.argv[1:7]
cases = int(cases)
base = open(f"{W}/{name}.imago", "rb").read()
ref = f"{W}/{name}.ref"
r = random.Random(f"{seed}/{name}")
u64 = lambda b, o: struct.unpack_from("<Q", b, o)[0]

# Regions of the file, each a list of [start, end) ranges (docs/FORMAT.md).
size = len(base)
trail = size - 128
meta, ext, idx = u64(base, trail + 8), u64(base, trail + 16), u64(base, trail + 24)
frames_off = u64(base, 56)
regions = {"header": [(0, 512)], "alloc_map": [(512, frames_off)],
           "frame_headers": [], "raw_payloads": [], "zstd_payloads": [],
           "metadata": [(meta, ext)], "extent_map": [(ext, idx)], "index": [(idx, trail)],
           "trailer": [(trail, size)]}
off = frames_off
while off < meta:
    assert base[off:off + 4] == b"IMGF", f"no frame at {off}"
    typ, sl = base[off + 4], u64(base, off + 24)
    regions["frame_headers"].append((off, off + 48))
    if sl:
        regions["raw_payloads" if typ == 1 else "zstd_payloads"].append((off + 48, off + 48 + sl))
    off += 48 + sl
assert off == meta

def run(args, stdin=None):
    p = subprocess.run(args, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120)
    return p.returncode, p.stderr.decode(errors="replace"), p.stdout.decode(errors="replace")

bad = f"{W}/{name}.bad.imago"
out = f"{W}/{name}.out"
total = failed = 0
for region, ranges in regions.items():
    if not ranges:
        print(f"FAIL: corrupt_matrix/{name}_{region}: the image has no {region}")
        failed += 1
        continue
    problems, harmless, kinds = [], [], {"flip": 0, "smash": 0}
    for c in range(cases):
        a, b = r.choice(ranges)
        img = bytearray(base)
        pos = r.randrange(a, b)
        if region == "zstd_payloads" and c == 0:
            # The unused bit of the zstd Frame_Header_Descriptor (RFC 8878 3.1.1.1.1.4),
            # which decoders must ignore: a change known to decode to the same bytes,
            # so that the harmless path above is exercised on every run.
            kind = "flip"
            pos = a + 4
            img[pos] ^= 0x10
            what = f"zstd unused header bit at byte {pos}"
        elif c % 2 == 0:
            kind = "flip"
            img[pos] ^= 1 << r.randrange(8)
            what = f"bit flip at byte {pos}"
        else:
            kind = "smash"
            n = min(r.randint(1, 8), b - pos)
            new = bytes(r.randrange(256) for _ in range(n))
            if new == bytes(img[pos:pos + n]):
                new = bytes([new[0] ^ 0xFF]) + new[1:]
            img[pos:pos + n] = new
            what = f"{n}-byte smash at byte {pos}"
        kinds[kind] += 1
        with open(bad, "wb") as f:
            f.write(img)
        why = []
        rc, err, _ = run([imago, "verify", "-q", bad])
        # A zstd payload may change in a bit the decoder ignores (docs/FORMAT.md §4): it
        # then decodes to the very bytes stored, which no checksum of the decoded data
        # can tell. Such a change counts as harmless only when every reader returns
        # exactly the original device: restore, restore from a pipe, and pread.
        neutral = rc == 0 and region == "zstd_payloads"
        if neutral:
            pass
        elif rc != 3:
            why.append(f"verify exited {rc}")
        elif err.count("\n") != 1 or not err.startswith("imago: verify: "):
            why.append(f"verify stderr is not one line: {err[:200]!r}")
        rc, err, _ = run([imago, "restore", "-q", bad, out])
        if neutral:
            if rc != 0 or open(out, "rb").read() != open(ref, "rb").read():
                why.append(f"verify passed, but restore exited {rc} or restored other bytes")
        elif rc != 3:
            why.append(f"restore exited {rc}")
        elif err.count("\n") != 1 or not err.startswith("imago: restore: "):
            why.append(f"restore stderr is not one line: {err[:200]!r}")
        if os.path.exists(out):
            os.unlink(out)
        with open(bad, "rb") as f:
            cat = subprocess.Popen(["cat"], stdin=f, stdout=subprocess.PIPE)
            rc, err, _ = run([imago, "restore", "-q", "-", out], stdin=cat.stdout)
            cat.stdout.close()
            cat.wait()
        if rc != (0 if neutral else 3):
            why.append(f"restore from a pipe exited {rc}")
        if os.path.exists(out):
            os.unlink(out)
        rc, _, line = run([preadcheck, bad, ref])
        if rc == 1:
            why.append(f"imago_image_pread returned wrong data ({line.strip()})")
        elif rc not in (0, 3) or (neutral and rc != 0):
            why.append(f"preadcheck exited {rc}: {line.strip()}")
        # rc 0: every byte read back right; the damage is where random access does not
        # look (a ZERO frame's header: the extent map says what it covers). verify and
        # restore, which read every frame, must still have found it.
        total += 1
        if why:
            problems.append(f"{what}: " + ", ".join(why))
        elif neutral:
            harmless.append(what)
    n = kinds["flip"] + kinds["smash"]
    if problems:
        failed += 1
        print(f"FAIL: corrupt_matrix/{name}_{region}: {len(problems)} of {n} not detected; "
              + "; ".join(problems[:4]))
    else:
        print(f"PASS: corrupt_matrix/{name}_{region}")
    print(f"# {name} {region}: {kinds['flip']} bit flips, {kinds['smash']} smashes in "
          f"{len(ranges)} range(s), {n - len(problems) - len(harmless)} detected"
          + (f", {len(harmless)} decoding to the same bytes (harmless: "
             + "; ".join(harmless) + ")" if harmless else ""), file=sys.stderr)
    sys.stdout.flush()
for p in (bad, out):
    if os.path.exists(p):
        os.unlink(p)
print(f"# {name}: {total} damaged images, {failed} region(s) with undetected damage "
      f"(seed {seed})", file=sys.stderr)
EOF
}

for img in sector smart; do
	out=$(matrix "$img")
	rc=$?
	echo "$out"
	T_PASSED=$((T_PASSED + $(grep -c '^PASS:' <<<"$out")))
	T_FAILED=$((T_FAILED + $(grep -c '^FAIL:' <<<"$out")))
	((rc == 0)) || fail "matrix_$img" "the matrix driver failed (exit $rc)"
done

done_testing
