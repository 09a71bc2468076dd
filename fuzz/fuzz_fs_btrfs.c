/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target for the btrfs reader (lib/fs/btrfs.c, btrfs_tree.c): the input is a sparse
 * btrfs image (see fs_fuzz_layout.h; corpus: real mkfs.btrfs filesystems reduced to their
 * superblock and the blocks of the chunk, root, device and extent trees by
 * fuzz/gen_corpus_fs_btrfs.sh), or the raw start of one.
 *
 * The fixup recomputes the checksums the reader checks (the superblock, and every
 * node-sized block inside the input's ranges that carries the filesystem's fsid), in the
 * superblock's checksum type (crc32c, xxhash64, sha256), so mutations reach the tree
 * parsing behind the checksums.
 */
#include <ext2fs/ext2fs.h>
#include <openssl/evp.h>
#include <xxhash.h>

#include "fs_fuzz_layout.h"
#include "fuzz.h"

extern const struct fs_driver fs_btrfs_driver;

/* mkfs.btrfs needs about 114 MiB (less with mixed groups): room for the corpus. */
#define BTRFS_VIRT (256ull << 20)

static void csum(unsigned type, const uint8_t *p, size_t len, uint8_t out[32])
{
	memset(out, 0, 32);
	if (type == 0) {
		uint32_t c = ~ext2fs_crc32c_le(~0u, p, len);
		for (int i = 0; i < 4; i++)
			out[i] = (uint8_t)(c >> (8 * i));
	} else if (type == 1) {
		uint64_t h = XXH64(p, len, 0);
		for (int i = 0; i < 8; i++)
			out[i] = (uint8_t)(h >> (8 * i));
	} else if (type == 2) {
		unsigned n = 0;
		EVP_Digest(p, len, out, &n, EVP_sha256(), NULL);
	}
}

static void fix_block(int fd, uint64_t at, size_t len, unsigned type)
{
	static uint8_t buf[65536];
	static const size_t sizes[] = { 4, 8, 32 };
	uint8_t sum[32];
	if (len > sizeof(buf) || len < 64 || pread(fd, buf, len, (off_t)at) != (ssize_t)len)
		return;
	csum(type, buf + 32, len - 32, sum);
	if (pwrite(fd, sum, sizes[type], (off_t)at) != (ssize_t)sizes[type])
		return;
}

static void btrfs_fixup(int fd, uint64_t base, uint64_t virt, const struct fs_fuzz_range *rg,
			size_t nrg)
{
	uint8_t sb[4096];
	if (virt < 65536 + sizeof(sb) ||
	    pread(fd, sb, sizeof(sb), (off_t)(base + 65536)) != (ssize_t)sizeof(sb) ||
	    memcmp(sb + 0x40, "_BHRfS_M", 8))
		return;
	unsigned type = (unsigned)(sb[0xc4] | sb[0xc5] << 8);
	uint32_t nodesize = (uint32_t)sb[0x94] | (uint32_t)sb[0x95] << 8 |
			    (uint32_t)sb[0x96] << 16 | (uint32_t)sb[0x97] << 24;
	if (type > 2 || nodesize < 4096 || nodesize > 65536 || (nodesize & (nodesize - 1)))
		return;
	const uint8_t *fsid = sb[0xbc + 1] & 0x04 ? sb + 0x23b : sb + 0x20;  /* METADATA_UUID */
	uint8_t want[16];
	memcpy(want, fsid, 16);
	for (size_t i = 0; i < nrg; i++) {
		uint64_t first = rg[i].off / nodesize;
		uint64_t end = (rg[i].off + rg[i].len + nodesize - 1) / nodesize;
		for (uint64_t b = first; b < end && b - first < 1024; b++) {
			uint8_t id[16];
			uint64_t at = base + b * nodesize;
			if (b * nodesize == 65536 ||
			    pread(fd, id, sizeof(id), (off_t)(at + 32)) != (ssize_t)sizeof(id) ||
			    memcmp(id, want, 16))
				continue;
			fix_block(fd, at, nodesize, type);
		}
	}
	fix_block(fd, base + 65536, sizeof(sb), type);  /* last: it covers nothing else */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fs_fuzz_run(&fs_btrfs_driver, data, size, BTRFS_VIRT, btrfs_fixup);
}
