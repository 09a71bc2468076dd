// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * MBR partition tables: the four primary entries of sector 0 and the EBR chains of
 * extended partitions, numbered as Linux numbers them (primaries 1-4 by slot, logical
 * partitions 5, 6, ... in chain order across every extended partition). Also the test that
 * tells an MBR from the boot sector of a filesystem made on a whole disk ("superfloppy"),
 * which ends in the same 0x55AA signature.
 *
 * References: formats.md §1.1; the Linux kernel's block/partitions/msdos.c behaviour and
 * util-linux libblkid (partitions/dos.c, superblocks/vfat.c) for the rules, reimplemented
 * here (see part.c for why not the libraries themselves).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "part/part_int.h"
#include "util/err.h"

/* ------------------------------------------------------------ filesystem boot sectors */

static int is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/*
 * A FAT boot sector with a sane BPB, the rule libblkid uses before it believes in an
 * MBR: at least one FAT and one reserved sector, a media byte of 0xF0 or 0xF8..0xFF, a
 * power-of-two cluster size, a power-of-two sector size of 512..4096, and a cluster
 * count that fits the FAT type. OS/2 puts FAT-like pseudo-BPBs on JFS and HPFS volumes:
 * those are not FAT.
 */
static int is_fat(const uint8_t *s)
{
	static const char *const magic36[] = { "FAT12   ", "FAT16   ", "FAT     ", "MSDOS" };
	int magic = memcmp(s + 0x52, "FAT32   ", 8) == 0 || memcmp(s + 0x52, "MSWIN", 5) == 0;
	for (size_t i = 0; i < sizeof(magic36) / sizeof(magic36[0]) && !magic; i++)
		magic = memcmp(s + 0x36, magic36[i], strlen(magic36[i])) == 0;
	if (!magic && (memcmp(s + 0x36, "JFS     ", 8) == 0 ||
		       memcmp(s + 0x36, "HPFS    ", 8) == 0))
		return 0;

	uint32_t sector = part_le16(s + 0x0B), cluster = s[0x0D], reserved = part_le16(s + 0x0E);
	uint32_t fats = s[0x10], dir_entries = part_le16(s + 0x11), media = s[0x15];
	if (!fats || !reserved || !(media >= 0xF8 || media == 0xF0) || !is_pow2(cluster) ||
	    !is_pow2(sector) || sector < 512 || sector > 4096)
		return 0;

	uint64_t total = part_le16(s + 0x13);
	if (!total)
		total = part_le32(s + 0x20);
	uint64_t fat_len = part_le16(s + 0x16);
	int fat32 = !fat_len && part_le32(s + 0x24);
	if (!fat_len)
		fat_len = part_le32(s + 0x24);
	uint64_t dir_sectors = ((uint64_t)dir_entries * 32 + sector - 1) / sector;
	uint64_t overhead = reserved + fat_len * fats + dir_sectors;
	if (overhead > total)
		return 0;
	uint64_t clusters = (total - overhead) / cluster;
	uint64_t max = fat32 ? 0x0FFFFFF6 : 0xFFF4; /* FAT32 / FAT16 (FAT12 is below) */
	return clusters <= max;
}

/* NTFS: the OEM id, a sane sector and cluster size, the FAT-only BPB fields zero. */
static int is_ntfs(const uint8_t *s)
{
	if (memcmp(s + 3, "NTFS    ", 8) != 0)
		return 0;
	uint32_t sector = part_le16(s + 0x0B), spc = s[0x0D];
	if (!is_pow2(sector) || sector < 256 || sector > 4096)
		return 0;
	if (!((spc >= 1 && spc <= 128 && is_pow2(spc)) || spc >= 0xF4))
		return 0;
	if (part_le16(s + 0x0E) || s[0x10] || part_le16(s + 0x11) || part_le16(s + 0x13) ||
	    part_le16(s + 0x16) || part_le32(s + 0x20))
		return 0;
	return part_le64(s + 0x28) != 0;
}

/* exFAT: the file-system name, the MustBeZero bytes, sane shifts and FAT count. */
static int is_exfat(const uint8_t *s)
{
	if (memcmp(s + 3, "EXFAT   ", 8) != 0)
		return 0;
	for (int i = 11; i < 64; i++)
		if (s[i])
			return 0;
	uint32_t bps = s[108], spc = s[109], fats = s[110];
	return bps >= 9 && bps <= 12 && spc <= 25 - bps && (fats == 1 || fats == 2);
}

const char *part_fs_boot_sector(const uint8_t *s)
{
	if (memcmp(s + 3, "-FVE-FS-", 8) == 0)
		return "BitLocker";
	if (is_ntfs(s))
		return "NTFS";
	if (is_exfat(s))
		return "exFAT";
	if (is_fat(s))
		return "FAT";
	return NULL;
}

/* ------------------------------------------------------------ MBR and EBR chains */

struct mbr_raw {
	uint8_t boot, type;
	uint32_t start, count;   /* in sectors */
};

static struct mbr_raw mbr_entry(const uint8_t *sector, int i)
{
	const uint8_t *p = sector + MBR_TABLE_OFF + i * MBR_ENTRY_SIZE;
	return (struct mbr_raw){ .boot = p[0], .type = p[4], .start = part_le32(p + 8),
				 .count = part_le32(p + 12) };
}

struct chain {
	const struct region *disk;
	struct part_table *t;
	uint64_t ss;
	unsigned next_number;                /* the next logical partition's number */
	size_t n_ebr;                        /* EBRs read, over every extended partition */
	uint64_t ebr_lba[PART_MAX_ENTRIES];  /* their LBAs, for loop detection */
};

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/*
 * Walk the EBR chain of the extended partition at LBA ext (ext_n sectors). Each EBR's
 * data entries start relative to the EBR itself; its link to the next EBR starts
 * relative to the extended partition. As in Linux, entries 3 and 4 of an EBR count only
 * when they lie inside the EBR's part of the chain.
 */
static int read_chain(struct chain *c, unsigned ext_number, uint64_t ext, uint64_t ext_n,
		      struct imago_err *err)
{
	struct part_table *t = c->t;
	uint64_t cur = ext, cur_n = ext_n, ext_end = ext + ext_n;
	const char *dname = c->disk->name ? c->disk->name : "disk";

	for (int first = 1;; first = 0) {
		for (size_t i = 0; i < c->n_ebr; i++)
			if (c->ebr_lba[i] == cur)
				return err_set(err, -EBADMSG, -1, (int64_t)(cur * c->ss), -1,
					       "%s: the EBR chain of extended partition %u loops: "
					       "it reaches the EBR at LBA %" PRIu64 " a second time",
					       dname, ext_number, cur);
		if (c->n_ebr >= PART_MAX_ENTRIES)
			return err_set(err, -E2BIG, -1, (int64_t)(cur * c->ss), -1,
				       "%s: more than %d EBRs (extended partition %u, LBA %" PRIu64
				       ")", dname, PART_MAX_ENTRIES, ext_number, cur);

		uint8_t s[MBR_SIZE];
		uint64_t off = cur * c->ss;
		int rc = region_read_exact(c->disk, s, sizeof(s), off);
		if (rc == -EBADMSG) {
			t->flags |= PART_BEYOND_END;
			part_warn(t, "EBR at LBA %" PRIu64 " (extended partition %u) is past the "
				  "end of the disk; its logical partitions are unknown", cur,
				  ext_number);
			return 0;
		}
		if (rc < 0)
			return err_set(err, rc, -1, (int64_t)off, -1,
				       "%s: cannot read the EBR at byte %" PRIu64, dname, off);
		if (!mbr_has_signature(s)) {
			/* An empty extended partition may have a blank first sector. */
			if (!first || !all_zero(s, sizeof(s))) {
				t->flags |= PART_ENTRY_IGNORED;
				part_warn(t, "EBR at LBA %" PRIu64 " (extended partition %u) has no "
					  "0x55AA signature; the chain ends there", cur, ext_number);
			}
			return 0;
		}
		c->ebr_lba[c->n_ebr++] = cur;
		rc = part_add_area(t, off, c->ss, "EBR", err);
		if (rc < 0)
			return rc;

		for (int i = 0; i < 4; i++) {
			struct mbr_raw r = mbr_entry(s, i);
			if (!r.count || mbr_is_extended(r.type))
				continue;
			uint64_t abs = cur + r.start;
			if (i >= 2 && ((uint64_t)r.start + r.count > cur_n || abs < ext ||
				       abs + r.count > ext_end))
				continue;
			if (abs < ext || abs + r.count > ext_end)
				part_warn(t, "logical partition %u (LBA %" PRIu64 "+%" PRIu32 ") lies "
					  "outside its extended partition %u", c->next_number, abs,
					  r.count, ext_number);
			struct part_entry e = {
				.number = c->next_number++,
				.start = abs * c->ss,
				.size = (uint64_t)r.count * c->ss,
				.flags = PART_LOGICAL | (r.boot == 0x80 ? PART_BOOTABLE : 0),
				.mbr_type = r.type,
			};
			rc = part_add_entry(t, &e, err);
			if (rc < 0)
				return rc;
		}

		/* The first nonempty extended entry links to the next EBR. */
		struct mbr_raw link = { 0 };
		for (int i = 0; i < 4; i++) {
			struct mbr_raw r = mbr_entry(s, i);
			if (r.count && mbr_is_extended(r.type)) {
				link = r;
				break;
			}
		}
		if (!link.count)
			return 0;
		uint64_t next = ext + link.start;
		if (next >= ext_end) {
			t->flags |= PART_ENTRY_IGNORED;
			part_warn(t, "EBR at LBA %" PRIu64 " links to LBA %" PRIu64 ", outside "
				  "extended partition %u (LBA %" PRIu64 "+%" PRIu64 "); the chain "
				  "ends there", cur, next, ext_number, ext, ext_n);
			return 0;
		}
		cur = next;
		cur_n = link.count;
	}
}

int mbr_read(const struct region *disk, uint32_t ss, const uint8_t *s0, struct part_table *t,
	     struct imago_err *err)
{
	t->scheme = PART_MBR;
	t->sector_size = ss;
	int rc = part_add_area(t, 0, ss, "MBR", err);
	if (rc < 0)
		return rc;

	for (int i = 0; i < 4; i++) {
		struct mbr_raw r = mbr_entry(s0, i);
		if (!r.count)
			continue; /* unused; its number is not reused */
		struct part_entry e = {
			.number = (unsigned)i + 1,
			.start = (uint64_t)r.start * ss,
			.size = (uint64_t)r.count * ss,
			.flags = (r.boot == 0x80 ? PART_BOOTABLE : 0) |
				 (mbr_is_extended(r.type) ? PART_EXTENDED : 0),
			.mbr_type = r.type,
		};
		rc = part_add_entry(t, &e, err);
		if (rc < 0)
			return rc;
	}

	struct chain c = { .disk = disk, .t = t, .ss = ss, .next_number = 5 };
	for (int i = 0; i < 4; i++) {
		struct mbr_raw r = mbr_entry(s0, i);
		if (!r.count || !mbr_is_extended(r.type))
			continue;
		rc = read_chain(&c, (unsigned)i + 1, r.start, r.count, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}
