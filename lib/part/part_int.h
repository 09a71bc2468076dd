/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Internals shared by the partition-table readers (part.c, mbr.c, gpt.c): little-endian
 * field access, filling a struct part_table (entries, areas, warnings), and the
 * per-scheme readers that part_read() dispatches to.
 */
#ifndef IMAGO_PART_PART_INT_H
#define IMAGO_PART_PART_INT_H

#include <stdint.h>
#include <string.h>

#include "part/part.h"

#define MBR_SIZE 512
#define MBR_TABLE_OFF 446
#define MBR_ENTRY_SIZE 16
#define MBR_TYPE_GPT 0xEE

static inline uint16_t part_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t part_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t part_le64(const uint8_t *p)
{
	return (uint64_t)part_le32(p) | (uint64_t)part_le32(p + 4) << 32;
}

static inline void part_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void part_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Sector 0 ends with the 0x55 0xAA boot signature. */
static inline int mbr_has_signature(const uint8_t *s)
{
	return s[510] == 0x55 && s[511] == 0xAA;
}

static inline int mbr_is_extended(uint8_t type)
{
	return type == 0x05 || type == 0x0F || type == 0x85;
}

/* Add a warning line (printf format); when the table is full the last line says so. */
void part_warn(struct part_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record a byte range the table occupies, clipped to the disk (nothing when it lies
 * wholly past the end). -E2BIG when PART_MAX_AREAS are used. */
int part_add_area(struct part_table *t, uint64_t start, uint64_t size, const char *what,
		  struct imago_err *err);

/* Append a partition. -E2BIG (err set) when PART_MAX_ENTRIES are used. */
int part_add_entry(struct part_table *t, const struct part_entry *e, struct imago_err *err);

/* Sort entries and areas; flag and warn about partitions past the end, overlapping each
 * other or the table. */
void part_finish(struct part_table *t);

/* The filesystem whose boot sector sector 0 is ("FAT", "NTFS", "exFAT", "BitLocker"), or
 * NULL. s holds 512 bytes ending in 0x55AA. */
const char *part_fs_boot_sector(const uint8_t *s);

/* Read an MBR (with its EBR chains) whose sector 0 is s0. 0 or negative errno. */
int mbr_read(const struct region *disk, uint32_t ss, const uint8_t *s0, struct part_table *t,
	     struct imago_err *err);

/* Look for a GPT with sector size ss. Returns 1 (found: t filled), 0 (no GPT header
 * signature at LBA 1 or at the last LBA), or negative errno (a GPT is there but neither
 * copy can be used; err set). s0: sector 0 (512 bytes) for the hybrid-MBR check. */
int gpt_read(const struct region *disk, uint32_t ss, const uint8_t *s0, struct part_table *t,
	     struct imago_err *err);

/* Nonzero when the bytes at LBA 1 (or at the last LBA) start with "EFI PART". */
int gpt_signature_seen(const struct region *disk, uint32_t ss);

/* UTF-16LE (n code units, stops at NUL) to UTF-8 in out (size cap, always terminated);
 * unpaired surrogates become U+FFFD. */
void part_utf16le_to_utf8(const uint8_t *in, size_t n, char *out, size_t cap);

/* UTF-8 to UTF-16LE, at most n units (zero-filled after the text); invalid sequences
 * become U+FFFD. */
void part_utf8_to_utf16le(const char *in, uint8_t *out, size_t n);

#endif
