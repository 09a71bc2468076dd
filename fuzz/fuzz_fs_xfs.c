/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target for the XFS reader (lib/fs/xfs.c): the input is a sparse XFS image (see
 * fs_fuzz_layout.h; corpus: real mkfs.xfs v4/v5 filesystems reduced to their AG headers, free-
 * space btree blocks and log head by fuzz/gen_corpus_fs_xfs.sh), or the raw start of one.
 *
 * The fixup recomputes the v5 CRCs the reader checks (superblock, AGF, AGFL, short-form
 * btree blocks inside the input's ranges), so mutations reach the structure checks.
 */
#include <ext2fs/ext2fs.h>

#include "fs_fuzz_layout.h"
#include "fuzz.h"

extern const struct fs_driver fs_xfs_driver;

/* mkfs.xfs makes filesystems of 300 MiB and more: room for those. */
#define XFS_VIRT (384ull << 20)

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Recompute the CRC of the len-byte structure at `at` (crc field at crc_off). */
static void fix_crc(int fd, uint64_t at, size_t len, size_t crc_off)
{
	static uint8_t buf[65536];
	if (len > sizeof(buf) || crc_off + 4 > len || pread(fd, buf, len, (off_t)at) != (ssize_t)len)
		return;
	memset(buf + crc_off, 0, 4);
	uint32_t c = ~ext2fs_crc32c_le(~0u, buf, len);
	uint8_t le[4] = { (uint8_t)c, (uint8_t)(c >> 8), (uint8_t)(c >> 16), (uint8_t)(c >> 24) };
	if (pwrite(fd, le, 4, (off_t)(at + crc_off)) != 4)
		return;
}

static int is_v5_sbtree_magic(uint32_t m)
{
	/* AB3B bnobt, AB3C cntbt, IAB3 inobt, FIB3 finobt, RMB3 rmapbt, R3FC refcountbt */
	return m == 0x41423342u || m == 0x41423343u || m == 0x49414233u || m == 0x46494233u ||
	       m == 0x524d4233u || m == 0x52334643u;
}

static void xfs_fixup(int fd, uint64_t base, uint64_t virt, const struct fs_fuzz_range *rg,
		      size_t nrg)
{
	uint8_t sb[512];
	if (pread(fd, sb, sizeof(sb), (off_t)base) != (ssize_t)sizeof(sb) ||
	    get_be32(sb) != 0x58465342u || (sb[101] & 0xF) != 5)
		return;
	uint32_t bs = get_be32(sb + 4), agblocks = get_be32(sb + 84), agcount = get_be32(sb + 88);
	uint32_t sect = (uint32_t)(sb[102] << 8 | sb[103]);
	if (sect < 512 || sect > 32768 || (sect & (sect - 1)) || bs < 512 || bs > 65536 ||
	    (bs & (bs - 1)) || !agblocks)
		return;
	fix_crc(fd, base, sect, 224);
	for (uint64_t ag = 0; ag < agcount && ag < 1024; ag++) {
		uint64_t ag_off = ag * agblocks * (uint64_t)bs;
		if (ag_off + 4ull * sect > virt)
			break;
		fix_crc(fd, base + ag_off + sect, sect, 216);       /* AGF */
		fix_crc(fd, base + ag_off + 2ull * sect, sect, 312); /* AGI */
		fix_crc(fd, base + ag_off + 3ull * sect, sect, 32);  /* AGFL */
	}
	for (size_t i = 0; i < nrg; i++) {
		uint64_t first = rg[i].off / bs, end = (rg[i].off + rg[i].len + bs - 1) / bs;
		for (uint64_t b = first; b < end && b - first < 4096; b++) {
			uint8_t m[4];
			if (pread(fd, m, 4, (off_t)(base + b * bs)) == 4 && is_v5_sbtree_magic(get_be32(m)))
				fix_crc(fd, base + b * bs, bs, 52);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fs_fuzz_run(&fs_xfs_driver, data, size, XFS_VIRT, xfs_fixup);
}
