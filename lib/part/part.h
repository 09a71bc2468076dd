/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Partition tables: MBR (with the extended/logical EBR chain), GPT (primary and backup,
 * all CRCs checked), protective and hybrid MBRs.
 *
 * part_read() reads a whole disk (a region) and returns what the disk holds: the scheme,
 * the partitions, the byte ranges the table itself occupies (which a smart image must keep
 * USED), and warnings for odd but real layouts. Data read from a disk may be damaged or
 * hostile: every count and offset is checked, memory is bounded, nothing is trusted.
 */
#ifndef IMAGO_PART_PART_H
#define IMAGO_PART_PART_H

#include <stddef.h>
#include <stdint.h>

#include "imago.h"
#include "io/region.h"

enum part_scheme {
	PART_NONE = 0,   /* no partition table (a bare filesystem, or nothing known) */
	PART_MBR = 1,
	PART_GPT = 2,
};

enum part_entry_flags {
	PART_BOOTABLE = 1 << 0,   /* MBR active flag / GPT legacy BIOS bootable attribute */
	PART_EXTENDED = 1 << 1,   /* MBR extended container (holds logical partitions; no fs) */
	PART_LOGICAL = 1 << 2,    /* MBR logical partition (number >= 5) */
};

struct part_entry {
	unsigned number;          /* as Linux numbers it: MBR primaries 1-4, logicals 5...;
				     GPT: entry index + 1 */
	uint64_t start, size;     /* bytes from the disk start */
	unsigned flags;           /* enum part_entry_flags */
	uint8_t mbr_type;         /* MBR system id (0 for GPT) */
	uint8_t type_guid[16];    /* GPT partition type GUID (on-disk byte order) */
	uint8_t part_guid[16];    /* GPT unique partition GUID (on-disk byte order) */
	uint64_t gpt_attrs;       /* GPT attribute bits */
	char name[112];           /* GPT name as UTF-8 ("" for MBR) */
};

/* A byte range of the disk that the partition table occupies. */
struct part_area {
	uint64_t start, size;
	const char *what;         /* "MBR", "EBR", "GPT header", "GPT entries", "backup GPT header", ... */
};

#define PART_MAX_ENTRIES 256      /* more than this is refused (-E2BIG) */
#define PART_MAX_AREAS (PART_MAX_ENTRIES + 8)
#define PART_MAX_WARNINGS 8

enum part_table_flags {
	PART_GPT_BACKUP_USED = 1 << 0,   /* primary GPT damaged: the backup was read */
	PART_GPT_BACKUP_BAD = 1 << 1,    /* backup GPT missing or damaged (primary used) */
	PART_HYBRID_MBR = 1 << 2,        /* GPT with an MBR that also lists partitions */
	PART_OVERLAP = 1 << 3,           /* two partitions overlap (e.g. hybrid ISO images) */
	PART_BEYOND_END = 1 << 4,        /* a partition ends past the end of the disk */
	PART_ENTRY_IGNORED = 1 << 5,     /* an entry or EBR link was left out (GPT entry
					    ending before it starts, EBR link outside its
					    extended partition or to a sector that is no EBR,
					    hybrid MBR entry that is no GPT partition): what it
					    described is not in the table */
};

struct part_table {
	enum part_scheme scheme;
	uint32_t sector_size;         /* the sector size the table was found with */
	uint64_t disk_size;           /* bytes of the region read */
	unsigned flags;               /* enum part_table_flags */
	struct part_entry entries[PART_MAX_ENTRIES];
	size_t n_entries;             /* sorted by number; zero-length entries are left out */
	struct part_area areas[PART_MAX_AREAS];
	size_t n_areas;               /* sorted by start, clipped to the disk */
	/* GPT only (from the header that was used): */
	uint8_t disk_guid[16];
	uint64_t first_usable_lba, last_usable_lba, alternate_lba, entries_lba;
	uint32_t n_gpt_entries, gpt_entry_size;
	uint32_t gpt_entries_crc;     /* CRC32 of the entry array */
	uint64_t header_lba;          /* LBA of the header used: 1, or the backup's LBA when
					 PART_GPT_BACKUP_USED */
	uint64_t backup_lba;          /* LBA a valid backup header was read from; 0: none */
	char warnings[PART_MAX_WARNINGS][160];  /* one line each, for odd layouts */
	size_t n_warnings;
};

/* Read the partition table of disk. sector_size: the disk's logical sector size, or 0 to
 * try 512 and then 4096 (an MBR alone does not tell its sector size: 512 is assumed).
 * Returns 0 (scheme may be PART_NONE), or -EBADMSG when a table exists but cannot be used
 * at all (both GPT copies damaged, a protective MBR without a GPT, an EBR chain loop...),
 * -EIO, -E2BIG (more than PART_MAX_ENTRIES partitions or EBRs), -EINVAL (sector_size not
 * 0 or a power of two from 512 to 4096), with err set. A sector 0 that is really a
 * FAT/NTFS/exFAT boot sector (valid BPB) is not taken for an MBR.
 *
 * Which table wins: an MBR with a 0xEE entry means GPT; an MBR with other entries and no
 * 0xEE entry means MBR (a GPT header still at LBA 1 is stale: a warning says so); a GPT
 * without any MBR (no 0x55AA, or no entries) is read, with a warning, when its primary
 * is sound (a lone backup or a damaged GPT without a 0xEE entry is what wiping the start
 * of a disk leaves: ignored, with a warning). */
int part_read(const struct region *disk, uint32_t sector_size, struct part_table *t,
	      struct imago_err *err);

/* Nonzero when the layout is too odd to restore or image by partition (overlap, beyond the
 * end, an entry left out): the caller then treats the whole disk as one USED region, with
 * a warning. */
int part_table_is_odd(const struct part_table *t);

/* Bytes a target disk needs to hold every partition and the table (for GPT: the last
 * partition's end, or the first usable LBA, plus the backup entries and header; for MBR:
 * the end of the last partition or EBR). 0 for PART_NONE. */
uint64_t part_min_disk_size(const struct part_table *t);

/* MBR on a smaller disk: when the extended partition's entry runs past disk_size but
 * every logical partition and EBR ends inside it, shorten that entry in sector0 (a copy
 * of LBA 0 of the table t was read from) to end with the disk. 1 when sector0 was
 * changed, 0 when nothing had to change, -ENOSPC when something would be cut, -EINVAL
 * when t is not an MBR or sector0 does not match it. */
int mbr_fit_extended(const struct part_table *t, uint8_t *sector0, uint64_t disk_size);

/* GPT on a disk of another size. Given the GPT as it was read (the table t, and the bytes
 * of LBA 0 .. primary entries end, `head`, head_len bytes, from the source disk), build
 * what must be written to a target of new_size bytes: a new LBA 0 (protective MBR with
 * its size field fixed, clamped at 0xFFFFFFFF sectors; a hybrid MBR is kept as it is,
 * except a 0xEE entry that reached the old end), a new primary header (alternate LBA and
 * last usable LBA moved, CRCs recomputed), the same entries, and the backup entries +
 * backup header at the new end; when the target is larger, the old backup header (if it
 * lies outside every partition) is overwritten with zeros so probers do not find two.
 * Calls write(opaque, buf, len, offset) for each piece (a nonzero return stops it and is
 * returned); call it after the partitions' bytes are written.
 *
 * head: the entry array is taken from head when the primary was used (its CRC must match
 * t->gpt_entries_crc: -EBADMSG otherwise; -EINVAL when head is too short); when the
 * backup was used (PART_GPT_BACKUP_USED) only LBA 0 is needed, the primary is rebuilt
 * at LBA 2 from t's entries (UTF-8 names back to UTF-16: exact for valid names).
 * -ENOSPC with err (giving the minimum size) if a partition does not fit; -EINVAL for a
 * table that is not GPT. */
int gpt_relocate(const struct part_table *t, const uint8_t *head, size_t head_len,
		 uint64_t new_size,
		 int (*write)(void *opaque, const void *buf, size_t len, uint64_t offset),
		 void *opaque, struct imago_err *err);

#endif
