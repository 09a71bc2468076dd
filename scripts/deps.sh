#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Install (as root, with apt-get) every Debian 12 package that building imago, the demo,
# the test suite, the fuzzers and the benchmarks need. Idempotent: packages already
# installed are left alone, and `apt-get update` runs only when something is missing.
#
# Usage: scripts/deps.sh          (install what is missing)
#        scripts/deps.sh --list   (print the package list and exit)
set -euo pipefail

packages=(
	# build
	build-essential meson ninja-build pkg-config
	libzstd-dev libxxhash-dev libssl-dev zlib1g-dev
	# filesystem allocation readers (smart imaging)
	libext2fs-dev ntfs-3g-dev
	# fuzzing (libFuzzer) and the sanitizer build
	clang libclang-rt-14-dev
	# demo and tests: real partition tables, filesystems, loop and device-mapper devices;
	# btrfs (data checksums) gives the fault tests a real kernel EIO
	fdisk gdisk e2fsprogs dosfstools mtools btrfs-progs util-linux mount dmsetup kmod
	ntfs-3g exfatprogs exfat-fuse xfsprogs
	# peers and helpers for tests and benchmarks
	zstd xxhash qemu-utils jq python3 time coreutils xxd partclone
	# forensic: E01 interchange (libewf), its checkers, and the acquisition peers
	libewf-dev ewf-tools dc3dd
	# imago mount (FUSE) and the nbdkit plugin; nbdcopy/nbdinfo read it in tests and bench
	libfuse3-dev fuse3 nbdkit nbdkit-plugin-dev libnbd-bin
)

if [[ ${1:-} == --list ]]; then
	printf '%s\n' "${packages[@]}"
	exit 0
fi

installed() {
	[[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
	echo "deps: all ${#packages[@]} packages present"
	exit 0
fi

if ((EUID != 0)); then
	echo "deps: missing packages: ${missing[*]}" >&2
	echo "deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi

echo "deps: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp /tmp/imago-deps.XXXXXX)
trap 'rm -f "$log"' EXIT
if ! apt-get update -q >"$log" 2>&1; then
	cat "$log" >&2
	echo "deps: apt-get update failed" >&2
	exit 1
fi
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >"$log" 2>&1; then
	tail -n 40 "$log" >&2
	echo "deps: apt-get install failed for: ${missing[*]}" >&2
	exit 1
fi

still=()
for p in "${missing[@]}"; do
	installed "$p" || still+=("$p")
done
if ((${#still[@]})); then
	echo "deps: still missing after install: ${still[*]}" >&2
	exit 1
fi
echo "deps: installed ${#missing[@]} package(s)"
