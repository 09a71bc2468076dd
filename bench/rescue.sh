#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# bench/rescue.sh [SIZE_GIB] [WORKDIR]
#
# imago rescue side by side with GNU ddrescue on the same failing disk: the source of
# bench/make-source.sh (a used ext4 disk, default 1 GiB) served by the fault-injecting FUSE
# device (tests/tools/faultdev) with scattered faults made from a fixed seed:
#   - BAD areas (EIO) of 1 to 64 sectors, and a few larger ones (up to 1 MiB);
#   - SLOW areas (1 to 8 MiB, each read touching them takes SLOW_MS longer);
#   - WEAK sectors (fail twice, then read);
#   - every failing read takes ERR_MS (a drive's internal retries).
# Both tools get the same limits: RETRIES retry passes (default 1), default everything
# else (ddrescue: its 64 KiB clusters; imago: its 1 MiB copying reads). Each run gets a
# fresh mount of the fault device (weak sectors fail again) and a new output on WORKDIR;
# the time includes syncing the output file (imago syncs it before each map save, so
# that a saved map never claims bytes a crash could lose; ddrescue does not, unless -y).
# Prints, per tool: bytes recovered (finished in its map), bytes unreadable, wall time,
# failed reads (as the device counted them); and the ratios. Checks that every finished
# byte equals the source, for both; asserts nothing about speed.
#
# Environment: IMAGO (default build/imago), FAULTDEV (default build/tests/faultdev),
# RETRIES, SLOW_MS (default 40), ERR_MS (default 5), N_BAD (default 60), N_SLOW (default 8),
# N_WEAK (default 20), SEED (default 1), REPEAT (default 1; the median is kept).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
size_gib=${1:-1}
workdir=${2:-/var/tmp/imago-bench}
IMAGO=$(realpath "${IMAGO:-build/imago}")
FAULTDEV=$(realpath "${FAULTDEV:-build/tests/faultdev}")
RETRIES=${RETRIES:-1}
SLOW_MS=${SLOW_MS:-40}
ERR_MS=${ERR_MS:-5}
N_BAD=${N_BAD:-60}
N_SLOW=${N_SLOW:-8}
N_WEAK=${N_WEAK:-20}
SEED=${SEED:-1}
REPEAT=${REPEAT:-1}
die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }
for t in ddrescue fusermount3 python3; do
	command -v "$t" >/dev/null || die "$t is missing (scripts/deps.sh installs it)"
done
[[ -x $IMAGO && -x $FAULTDEV ]] || die "build first (ninja -C build): no $IMAGO or $FAULTDEV"

src=$("$here/make-source.sh" "$size_gib" "$workdir" | tail -n 1)
[[ -f $src ]] || die "make-source.sh gave no source"
out=$workdir/rescue-out
mnt=$workdir/rescue-mnt
cleanup() { fusermount3 -u "$mnt" 2>/dev/null || true; }
trap cleanup EXIT
cleanup
rm -rf "$out"
mkdir -p "$out" "$mnt"
size=$(stat -c %s "$src")

python3 - "$size" "$SEED" "$N_BAD" "$N_SLOW" "$N_WEAK" "$SLOW_MS" "$ERR_MS" >"$out/faults" <<'EOF'
import random, sys
size, seed, nbad, nslow, nweak, slow_ms, err_ms = map(int, sys.argv[1:])
r = random.Random(seed)
print("errdelay", err_ms)
for i in range(nbad):
    n = r.choice([1, 1, 2, 8, 16, 64]) * 512 if i % 10 else r.randrange(64, 2048) * 512
    print("bad", r.randrange(0, size - n) // 512 * 512, n)
for i in range(nslow):
    n = r.randrange(1, 9) << 20
    print("slow", r.randrange(0, size - n) // 512 * 512, n, slow_ms)
for i in range(nweak):
    print("weak", r.randrange(0, size - 512) // 512 * 512, 512, 2)
EOF
say "source $src ($size bytes); faults: $(grep -c ^bad "$out/faults") bad, $(grep -c ^slow "$out/faults") slow, $(grep -c ^weak "$out/faults") weak; $ERR_MS ms per failed read, $SLOW_MS ms per slow read"

mount_fault() {
	"$FAULTDEV" "$src" "$out/faults" "$mnt" || die "faultdev failed"
	local i
	for i in $(seq 50); do [[ -f $mnt/disk ]] && return 0; sleep 0.1; done
	die "faultdev did not come up"
}
failed_reads() { awk '/^failed/ {print $2}' "$mnt/stats"; }

# map_bytes MAP STATUS
map_bytes() {
	python3 - "$1" "$2" <<'EOF'
import sys
n, first = 0, True
for line in open(sys.argv[1]):
    f = line.split('#')[0].split()
    if not f:
        continue
    if first:
        first = False
        continue
    if f[2] in sys.argv[2]:
        n += int(f[1], 0)
print(n)
EOF
}

# check SRC OUT MAP: every finished byte equals the source
check() {
	python3 - "$1" "$2" "$3" <<'EOF'
import sys
s, o = open(sys.argv[1], 'rb'), open(sys.argv[2], 'rb')
first = True
for line in open(sys.argv[3]):
    f = line.split('#')[0].split()
    if not f:
        continue
    if first:
        first = False
        continue
    if f[2] != '+':
        continue
    p, n = int(f[0], 0), int(f[1], 0)
    while n:
        k = min(n, 1 << 24)
        s.seek(p); o.seek(p)
        if s.read(k) != o.read(k):
            sys.exit("finished bytes at %d differ from the source" % p)
        p += k; n -= k
EOF
}

declare -A T GOOD BAD ERRS
run_tool() {
	local name=$1 i ts=() s e
	shift
	for ((i = 0; i < REPEAT; i++)); do
		rm -f "$out/$name.img" "$out/$name.map"
		mount_fault
		cat "$src" >/dev/null   # warm page cache under the fault device
		sync
		s=$(date +%s.%N)
		"$@" "$mnt/disk" "$out/$name.img" "$out/$name.map" || true
		sync "$out/$name.img"   # both end with the output durable (imago syncs before
		                        # each map save; ddrescue does not by default)
		e=$(date +%s.%N)
		ERRS[$name]=$(failed_reads)
		fusermount3 -u "$mnt"
		ts+=("$(python3 -c "print(round($e - $s, 2))")")
	done
	T[$name]=$(printf '%s\n' "${ts[@]}" | sort -n | sed -n "$(((REPEAT + 1) / 2))p")
	GOOD[$name]=$(map_bytes "$out/$name.map" '+')
	BAD[$name]=$(map_bytes "$out/$name.map" '-*/?')
	check "$src" "$out/$name.img" "$out/$name.map" || die "$name: recovered bytes differ"
	say "$name: ${ts[*]} s, recovered ${GOOD[$name]}, unreadable ${BAD[$name]}, ${ERRS[$name]} failed reads"
}
imago_run() { "$IMAGO" rescue -q -r "$RETRIES" "$1" "$2" --map "$3" >/dev/null; }
ddrescue_run() { ddrescue -q -r "$RETRIES" "$1" "$2" "$3" >/dev/null 2>&1; }

run_tool ddrescue ddrescue_run
run_tool imago imago_run

printf '\n%-10s %16s %14s %10s %12s\n' tool "recovered B" "unreadable B" "time s" "failed reads"
for t in imago ddrescue; do
	printf '%-10s %16s %14s %10s %12s\n' "$t" "${GOOD[$t]}" "${BAD[$t]}" "${T[$t]}" "${ERRS[$t]}"
done
python3 - "${GOOD[imago]}" "${GOOD[ddrescue]}" "${T[imago]}" "${T[ddrescue]}" <<'EOF'
import sys
gi, gd, ti, td = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
print("\nrecovered: imago - ddrescue = %+d bytes; time: ddrescue / imago = %.2fx" %
      (gi - gd, td / ti if ti else float('inf')))
EOF
