/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Unit tests of the partition-table readers (lib/part/). Every disk is built here, in
 * memory, byte by byte (with an encoder of this file, not the library's), so that the
 * edge cases real tools never write can be made: EBR loops and chains past the end,
 * absurd GPT counts and sizes with valid CRCs, one damaged copy, entries past the end or
 * overlapping, FAT/NTFS/exFAT boot sectors that end in 0x55AA, 4096-byte sectors.
 * Relocation is checked by reading the relocated disk back with part_read.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "part/part.h"
#include "part/part_int.h"

static struct part_table T;
static struct imago_err E;

/* ---------------------------------------------------------------- disk builders */

static uint8_t *disk_new(size_t size)
{
	uint8_t *d = calloc(1, size);
	if (!d)
		abort();
	return d;
}

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

static void le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void sig(uint8_t *sector)
{
	sector[510] = 0x55;
	sector[511] = 0xAA;
}

/* MBR-style entry `slot` of the sector at s. */
static void mbr_entry(uint8_t *s, int slot, uint8_t boot, uint8_t type, uint32_t start,
		      uint32_t count)
{
	uint8_t *p = s + 446 + 16 * slot;
	p[0] = boot;
	p[4] = type;
	le32(p + 8, start);
	le32(p + 12, count);
	sig(s);
}

static int readp(const uint8_t *d, size_t size, uint32_t ss)
{
	struct region r = region_mem(d, size, "mem");
	memset(&E, 0, sizeof(E));
	return part_read(&r, ss, &T, &E);
}

static const struct part_entry *find(unsigned number)
{
	for (size_t i = 0; i < T.n_entries; i++)
		if (T.entries[i].number == number)
			return &T.entries[i];
	return NULL;
}

static int has_warning(const char *needle)
{
	for (size_t i = 0; i < T.n_warnings; i++)
		if (strstr(T.warnings[i], needle))
			return 1;
	return 0;
}

static int has_area(uint64_t start, uint64_t size, const char *what)
{
	for (size_t i = 0; i < T.n_areas; i++)
		if (T.areas[i].start == start && T.areas[i].size == size &&
		    strcmp(T.areas[i].what, what) == 0)
			return 1;
	return 0;
}

/* Areas sorted, inside the disk, nonempty. */
static int areas_sane(void)
{
	for (size_t i = 0; i < T.n_areas; i++) {
		const struct part_area *a = &T.areas[i];
		if (!a->size || a->start >= T.disk_size || a->size > T.disk_size - a->start)
			return 0;
		if (i && T.areas[i - 1].start > a->start)
			return 0;
	}
	return 1;
}

/* A GPT partition to build. */
struct tp {
	uint64_t first, last, attrs;
	const char *name;         /* ASCII */
	const uint16_t *name16;   /* or raw UTF-16 units (36 at most, 0-terminated) */
	uint32_t slot;            /* entry index */
};

struct gpt_spec {
	uint32_t ss, n, esz;
	uint64_t first_usable, last_usable;   /* 0: standard */
	uint64_t primary_entries;             /* 0: LBA 2 */
};

static void type_guid(uint8_t *p, uint32_t slot)
{
	for (int i = 0; i < 16; i++)
		p[i] = (uint8_t)(0xA0 + i + slot);
}

static void part_guid(uint8_t *p, uint32_t slot)
{
	for (int i = 0; i < 16; i++)
		p[i] = (uint8_t)(0x10 * slot + i + 1);
}

static void gpt_header(uint8_t *d, uint32_t ss, uint64_t my, uint64_t alt, uint64_t fu,
		       uint64_t lu, uint64_t entries, uint32_t n, uint32_t esz, uint32_t acrc)
{
	uint8_t *h = d + my * ss;
	memset(h, 0, ss);
	memcpy(h, "EFI PART", 8);
	le32(h + 8, 0x00010000);
	le32(h + 12, 92);
	le64(h + 24, my);
	le64(h + 32, alt);
	le64(h + 40, fu);
	le64(h + 48, lu);
	for (int i = 0; i < 16; i++)
		h[56 + i] = (uint8_t)(0x50 + i);
	le64(h + 72, entries);
	le32(h + 80, n);
	le32(h + 84, esz);
	le32(h + 88, acrc);
	le32(h + 16, (uint32_t)crc32(0, h, 92));
}

/* Recompute the header CRC of the header at lba (after a test changed a field). */
static void fix_hdr_crc(uint8_t *d, uint32_t ss, uint64_t lba)
{
	uint8_t *h = d + lba * ss;
	le32(h + 16, 0);
	le32(h + 16, (uint32_t)crc32(0, h, rd32(h + 12)));
}

/* A whole GPT disk: protective MBR, primary and backup. */
static void gpt_build(uint8_t *d, size_t size, const struct gpt_spec *s, const struct tp *p,
		      int np)
{
	uint32_t ss = s->ss, n = s->n ? s->n : 128, esz = s->esz ? s->esz : 128;
	uint64_t lbas = size / ss, last = lbas - 1;
	uint64_t alen = (uint64_t)n * esz, alba = (alen + ss - 1) / ss;
	uint64_t pe = s->primary_entries ? s->primary_entries : 2;
	uint64_t fu = s->first_usable ? s->first_usable : pe + alba;
	uint64_t lu = s->last_usable ? s->last_usable : last - alba - 1;
	uint8_t *arr = d + pe * ss;

	mbr_entry(d, 0, 0, 0xEE, 1, lbas - 1 > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)(lbas - 1));
	for (int i = 0; i < np; i++) {
		uint8_t *e = arr + (size_t)p[i].slot * esz;
		type_guid(e, p[i].slot);
		part_guid(e + 16, p[i].slot);
		le64(e + 32, p[i].first);
		le64(e + 40, p[i].last);
		le64(e + 48, p[i].attrs);
		for (int k = 0; k < 36; k++) {
			uint16_t u = p[i].name16 ? p[i].name16[k]
				   : p[i].name ? (uint16_t)(unsigned char)p[i].name[k] : 0;
			e[56 + 2 * k] = (uint8_t)u;
			e[57 + 2 * k] = (uint8_t)(u >> 8);
			if (!u)
				break;
		}
	}
	uint32_t acrc = (uint32_t)crc32(0, arr, (uInt)alen);
	memcpy(d + (last - alba) * ss, arr, alen);
	gpt_header(d, ss, 1, last, fu, lu, pe, n, esz, acrc);
	gpt_header(d, ss, last, 1, fu, lu, last - alba, n, esz, acrc);
}

/* Three partitions on a 1 MiB disk with 512-byte sectors, with a name that needs a
 * surrogate pair and one with non-ASCII BMP characters. */
static const uint16_t name_snow[] = { 0x00DC, 'n', 0x2603, ' ', 0xD83D, 0xDE00, 0 };
static const struct tp three[] = {
	{ .first = 34, .last = 99, .name = "EFI system", .slot = 0, .attrs = 1 },
	{ .first = 100, .last = 999, .name = "root", .slot = 1, .attrs = 4 | (1ull << 60) },
	{ .first = 1000, .last = 1999, .name16 = name_snow, .slot = 5 },
};
#define DISK1M (1u << 20)

static uint8_t *gpt_three(void)
{
	uint8_t *d = disk_new(DISK1M);
	struct gpt_spec s = { .ss = 512 };
	gpt_build(d, DISK1M, &s, three, 3);
	return d;
}

static void check_three(void)
{
	CHECK(T.scheme == PART_GPT);
	CHECK(T.sector_size == 512);
	CHECK(T.n_entries == 3);
	const struct part_entry *e = find(1);
	CHECK(e && e->start == 34 * 512 && e->size == 66 * 512 && strcmp(e->name, "EFI system") == 0);
	CHECK(e && e->gpt_attrs == 1 && !(e->flags & PART_BOOTABLE));
	e = find(2);
	CHECK(e && e->start == 100 * 512 && e->size == 900 * 512 && (e->flags & PART_BOOTABLE));
	CHECK(e && e->type_guid[0] == 0xA1 && e->part_guid[0] == 0x11);
	e = find(6);
	CHECK(e && e->start == 1000 * 512 && e->size == 1000 * 512);
	CHECK(e && strcmp(e->name, "\xC3\x9Cn\xE2\x98\x83 \xF0\x9F\x98\x80") == 0);
	CHECK(T.first_usable_lba == 34 && T.last_usable_lba == 2014);
	CHECK(T.n_gpt_entries == 128 && T.gpt_entry_size == 128);
	CHECK(areas_sane());
}

/* ---------------------------------------------------------------- basics */

static void test_empty_and_tiny(void)
{
	uint8_t *d = disk_new(DISK1M);
	CHECK(readp(d, DISK1M, 0) == 0);
	CHECK(T.scheme == PART_NONE && T.n_entries == 0 && T.n_areas == 0);
	CHECK(T.disk_size == DISK1M);
	CHECK(part_min_disk_size(&T) == 0);
	CHECK(readp(d, 100, 0) == 0 && T.scheme == PART_NONE);
	CHECK(readp(d, 0, 0) == 0 && T.scheme == PART_NONE);
	/* 0x55AA alone: an MBR with no partitions. */
	sig(d);
	CHECK(readp(d, DISK1M, 0) == 0 && T.scheme == PART_MBR && T.n_entries == 0);
	CHECK(T.n_areas == 1 && has_area(0, 512, "MBR"));
	free(d);
}

static void test_bad_args(void)
{
	uint8_t d[512] = { 0 };
	CHECK(readp(d, sizeof(d), 1000) == -EINVAL && E.code == -EINVAL);
	CHECK(readp(d, sizeof(d), 8192) == -EINVAL);
	CHECK(readp(d, sizeof(d), 256) == -EINVAL);
	struct region broken = { .fd = -1, .mem = NULL, .size = 1 << 20, .name = "broken" };
	CHECK(part_read(&broken, 0, &T, &E) < 0 && E.msg[0]);
}

/* ---------------------------------------------------------------- MBR */

static void test_mbr_primaries(void)
{
	uint8_t *d = disk_new(DISK1M);
	mbr_entry(d, 0, 0x80, 0x0C, 2048 / 8, 256);
	mbr_entry(d, 2, 0x00, 0x83, 600, 400); /* slot 2 used, slot 1 unused */
	mbr_entry(d, 3, 0x00, 0x83, 1500, 0);  /* zero length: left out */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.scheme == PART_MBR && T.sector_size == 512 && T.flags == 0);
	CHECK(T.n_entries == 2);
	const struct part_entry *e = find(1);
	CHECK(e && e->start == 256 * 512 && e->size == 256 * 512 && e->mbr_type == 0x0C);
	CHECK(e && e->flags == PART_BOOTABLE && e->name[0] == '\0');
	e = find(3);
	CHECK(e && e->start == 600 * 512 && e->size == 400 * 512 && e->flags == 0);
	CHECK(!find(2) && !find(4));
	CHECK(T.n_areas == 1 && has_area(0, 512, "MBR"));
	CHECK(part_min_disk_size(&T) == 1000 * 512);
	CHECK(!part_table_is_odd(&T));
	/* The same with 4096-byte sectors, when the caller says so. */
	REQUIRE(readp(d, DISK1M, 4096) == 0);
	CHECK(T.sector_size == 4096 && find(1) && find(1)->start == 256 * 4096);
	CHECK(has_area(0, 4096, "MBR"));
	CHECK(T.flags & PART_BEYOND_END); /* 1000 * 4096 > 1 MiB */
	free(d);
}

static void test_mbr_bad_boot_indicator(void)
{
	uint8_t *d = disk_new(DISK1M);
	mbr_entry(d, 0, 0x12, 0x83, 100, 100);
	CHECK(readp(d, DISK1M, 0) == 0 && T.scheme == PART_NONE);
	free(d);
}

/* Extended partition at LBA 1000 (1000 sectors) with logicals in a chain. */
static void test_mbr_logicals(void)
{
	uint8_t *d = disk_new(DISK1M);
	mbr_entry(d, 0, 0, 0x83, 100, 800);
	mbr_entry(d, 1, 0, 0x0F, 1000, 1000);
	/* EBR 1 at 1000: logical at +10 (rel. to this EBR), link to ext+300. */
	mbr_entry(d + 1000 * 512, 0, 0x80, 0x83, 10, 200);
	mbr_entry(d + 1000 * 512, 1, 0, 0x05, 300, 250);
	/* EBR 2 at 1300: logical at +5, link to ext+600. */
	mbr_entry(d + 1300 * 512, 0, 0, 0x82, 5, 100);
	mbr_entry(d + 1300 * 512, 1, 0, 0x05, 600, 400);
	/* EBR 3 at 1600: an EBR with no data partition, link to ext+700. */
	mbr_entry(d + 1600 * 512, 1, 0, 0x05, 700, 300);
	/* EBR 4 at 1700: logical at +1, end of chain. */
	mbr_entry(d + 1700 * 512, 0, 0, 0x07, 1, 299);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.scheme == PART_MBR);
	CHECK(T.n_entries == 5);
	const struct part_entry *e = find(2);
	CHECK(e && e->flags == PART_EXTENDED && e->start == 1000 * 512 && e->size == 1000 * 512);
	e = find(5);
	CHECK(e && e->start == 1010 * 512 && e->size == 200 * 512);
	CHECK(e && e->flags == (PART_LOGICAL | PART_BOOTABLE) && e->mbr_type == 0x83);
	e = find(6);
	CHECK(e && e->start == 1305 * 512 && e->size == 100 * 512 && e->mbr_type == 0x82);
	e = find(7);
	CHECK(e && e->start == 1701 * 512 && e->size == 299 * 512 && e->mbr_type == 0x07);
	CHECK(!find(8));
	CHECK(T.n_areas == 5 && has_area(0, 512, "MBR") && has_area(1000 * 512, 512, "EBR") &&
	      has_area(1300 * 512, 512, "EBR") && has_area(1600 * 512, 512, "EBR") &&
	      has_area(1700 * 512, 512, "EBR"));
	CHECK(areas_sane());
	CHECK(T.flags == 0 && T.n_warnings == 0);
	CHECK(part_min_disk_size(&T) == 2000 * 512);
	free(d);
}

static void test_mbr_empty_extended(void)
{
	uint8_t *d = disk_new(DISK1M);
	mbr_entry(d, 0, 0, 0x05, 100, 100); /* first EBR all zero: no logicals, no warning */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.n_entries == 1 && T.n_warnings == 0 && T.flags == 0);
	d[100 * 512 + 3] = 7; /* not blank, no signature: a damaged EBR */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.flags & PART_ENTRY_IGNORED);
	CHECK(has_warning("no 0x55AA signature") && part_table_is_odd(&T));
	free(d);
}

static void test_ebr_loops(void)
{
	uint8_t *d = disk_new(DISK1M);
	mbr_entry(d, 0, 0, 0x05, 1000, 1000);
	mbr_entry(d + 1000 * 512, 0, 0, 0x83, 1, 10);
	mbr_entry(d + 1000 * 512, 1, 0, 0x05, 100, 10);
	mbr_entry(d + 1100 * 512, 0, 0, 0x83, 1, 10);
	mbr_entry(d + 1100 * 512, 1, 0, 0x05, 0, 10); /* back to the first EBR */
	CHECK(readp(d, DISK1M, 0) == -EBADMSG);
	CHECK(E.code == -EBADMSG && strstr(E.msg, "loops"));
	CHECK(T.scheme == PART_NONE && T.n_entries == 0); /* nothing half-filled */
	mbr_entry(d + 1100 * 512, 1, 0, 0x05, 100, 10); /* to itself */
	CHECK(readp(d, DISK1M, 0) == -EBADMSG && strstr(E.msg, "LBA 1100"));
	free(d);
}

static void test_ebr_chain_too_long(void)
{
	size_t size = 4u << 20;
	uint8_t *d = disk_new(size);
	/* 300 EBRs, each with one logical partition: more than PART_MAX_ENTRIES. */
	mbr_entry(d, 0, 0, 0x05, 100, 3000);
	for (uint32_t i = 0; i < 300; i++) {
		uint8_t *s = d + (100 + 10 * (size_t)i) * 512;
		mbr_entry(s, 0, 0, 0x83, 1, 9);
		if (i < 299)
			mbr_entry(s, 1, 0, 0x05, 10 * (i + 1), 10);
	}
	CHECK(readp(d, size, 0) == -E2BIG && E.code == -E2BIG);
	/* The same without data partitions: the EBR count itself is bounded. */
	for (uint32_t i = 0; i < 300; i++)
		memset(d + (100 + 10 * (size_t)i) * 512 + 446, 0, 16);
	CHECK(readp(d, size, 0) == -E2BIG && strstr(E.msg, "EBR"));
	/* 250 logicals fit. */
	for (uint32_t i = 0; i < 300; i++)
		mbr_entry(d + (100 + 10 * (size_t)i) * 512, 0, 0, 0x83, 1, 9);
	memset(d + (100 + 10 * 249) * 512 + 446 + 16, 0, 16);
	REQUIRE(readp(d, size, 0) == 0);
	CHECK(T.n_entries == 251 && find(254) && !find(255));
	CHECK(T.n_areas == 251 && areas_sane());
	free(d);
}

static void test_ebr_link_outside(void)
{
	uint8_t *d = disk_new(DISK1M);
	mbr_entry(d, 0, 0, 0x05, 1000, 100);
	mbr_entry(d + 1000 * 512, 0, 0, 0x83, 1, 10);
	mbr_entry(d + 1000 * 512, 1, 0, 0x05, 500, 10); /* past the extended partition */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.n_entries == 2 && find(5));
	CHECK((T.flags & PART_ENTRY_IGNORED) && has_warning("outside"));
	CHECK(part_table_is_odd(&T));
	free(d);
}

static void test_ebr_past_end(void)
{
	uint8_t *d = disk_new(DISK1M);
	mbr_entry(d, 0, 0, 0x05, 1000, 100000); /* container runs past the end */
	mbr_entry(d + 1000 * 512, 0, 0, 0x83, 1, 10);
	mbr_entry(d + 1000 * 512, 1, 0, 0x05, 50000, 10); /* next EBR past the end */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.flags & PART_BEYOND_END);
	CHECK(has_warning("past the end"));
	CHECK(find(5) && !find(6));
	CHECK(part_min_disk_size(&T) == 1011ull * 512); /* logical 5 ends there */
	/* An extended partition entirely past the end: its first EBR cannot be read. */
	memset(d, 0, 512);
	mbr_entry(d, 0, 0, 0x0F, 0xFFFFFF00u, 0xFFu);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK((T.flags & PART_BEYOND_END) && T.n_entries == 1 && areas_sane());
	free(d);
}

static void test_ebr_entries_3_4(void)
{
	uint8_t *d = disk_new(DISK1M);
	mbr_entry(d, 0, 0, 0x05, 1000, 1000);
	uint8_t *s = d + 1000 * 512;
	mbr_entry(s, 0, 0, 0x83, 1, 10);
	mbr_entry(s, 2, 0, 0x83, 20, 10);      /* inside: counts */
	mbr_entry(s, 3, 0, 0x83, 5000, 10);    /* garbage past the container: ignored */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.n_entries == 3 && find(5) && find(6) && !find(7));
	CHECK(find(6) && find(6)->start == 1020 * 512);
	free(d);
}

static void test_mbr_overlap_and_end(void)
{
	uint8_t *d = disk_new(DISK1M);
	mbr_entry(d, 0, 0, 0x83, 100, 200);
	mbr_entry(d, 1, 0, 0x83, 250, 100); /* overlaps 1 */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK((T.flags & PART_OVERLAP) && !(T.flags & PART_BEYOND_END));
	CHECK(has_warning("overlap") && part_table_is_odd(&T));
	memset(d + 446, 0, 64);
	mbr_entry(d, 0, 0, 0x17, 0, 2048); /* hybrid ISO style: partition over the MBR */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK((T.flags & PART_OVERLAP) && has_warning("MBR"));
	memset(d + 446, 0, 64);
	mbr_entry(d, 0, 0, 0x83, 2000, 1000); /* ends past 1 MiB */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.flags == PART_BEYOND_END && part_table_is_odd(&T));
	CHECK(part_min_disk_size(&T) == 3000 * 512);
	/* 32-bit maximum start and size: no overflow. */
	mbr_entry(d, 0, 0, 0x83, 0xFFFFFFFFu, 0xFFFFFFFFu);
	REQUIRE(readp(d, DISK1M, 4096) == 0);
	CHECK(T.flags & PART_BEYOND_END);
	CHECK(find(1) && find(1)->start == 0xFFFFFFFFull * 4096);
	CHECK(part_min_disk_size(&T) == 0xFFFFFFFFull * 4096 * 2);
	free(d);
}

/* ---------------------------------------------------------------- boot sectors */

/* A FAT16 boot sector as mkfs.fat writes one for a 1 MiB "superfloppy". */
static void fat16_boot(uint8_t *s)
{
	memset(s, 0, 512);
	s[0] = 0xEB; s[1] = 0x3C; s[2] = 0x90;
	memcpy(s + 3, "mkfs.fat", 8);
	s[0x0B] = 0x00; s[0x0C] = 0x02;  /* 512 bytes a sector */
	s[0x0D] = 4;                     /* sectors a cluster */
	s[0x0E] = 4;                     /* reserved */
	s[0x10] = 2;                     /* FATs */
	s[0x11] = 0x00; s[0x12] = 0x02;  /* 512 root entries */
	s[0x13] = 0x00; s[0x14] = 0x08;  /* 2048 sectors */
	s[0x15] = 0xF8;
	s[0x16] = 2;                     /* FAT length */
	s[0x26] = 0x29;
	memcpy(s + 0x36, "FAT16   ", 8);
	sig(s);
}

static void test_fat_superfloppy(void)
{
	uint8_t *d = disk_new(DISK1M);
	fat16_boot(d);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.scheme == PART_NONE && T.n_areas == 0);
	/* mkfs.fat --mbr: a fake entry covering the disk from LBA 0. Still a filesystem. */
	mbr_entry(d, 0, 0x80, 0x06, 0, 2048);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.scheme == PART_NONE);
	/* Without the magic string it is still FAT (libblkid looks at the BPB). */
	memset(d + 0x36, ' ', 8);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.scheme == PART_NONE);
	/* An OS/2 pseudo-BPB on JFS is not FAT: the entries are an MBR. */
	memcpy(d + 0x36, "JFS     ", 8);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.scheme == PART_MBR);
	/* BPB broken one field at a time: an MBR again. */
	static const struct { int off; uint8_t v; } breaks[] = {
		{ 0x10, 0 }, { 0x0E, 0 }, { 0x15, 0x12 }, { 0x0D, 3 }, { 0x0C, 0x03 },
		{ 0x0C, 0x20 }, { 0x14, 0 },
	};
	for (size_t i = 0; i < sizeof(breaks) / sizeof(breaks[0]); i++) {
		fat16_boot(d);
		mbr_entry(d, 0, 0x80, 0x06, 0, 2048);
		d[breaks[i].off] = breaks[i].v;
		REQUIRE(readp(d, DISK1M, 0) == 0);
		CHECK(T.scheme == PART_MBR);
		if (T.scheme != PART_MBR)
			printf("# break %zu\n", i);
	}
	/* FAT32: FAT length only in the FAT32 field. */
	fat16_boot(d);
	d[0x16] = 0;
	le32(d + 0x24, 16);
	d[0x11] = d[0x12] = 0;
	memcpy(d + 0x52, "FAT32   ", 8);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.scheme == PART_NONE);
	free(d);
}

static void test_ntfs_exfat_superfloppy(void)
{
	uint8_t *d = disk_new(DISK1M);
	memcpy(d + 3, "NTFS    ", 8);
	d[0x0C] = 2;        /* 512 */
	d[0x0D] = 8;
	d[0x15] = 0xF8;
	le64(d + 0x28, 2047);
	le64(d + 0x30, 4);
	sig(d);
	mbr_entry(d, 0, 0, 0x07, 0, 2048); /* garbage that looks like an entry */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.scheme == PART_NONE);
	d[0x10] = 1; /* a FAT count: not NTFS */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.scheme == PART_MBR);

	memset(d, 0, 512);
	memcpy(d + 3, "EXFAT   ", 8);
	d[108] = 9;
	d[109] = 3;
	d[110] = 1;
	mbr_entry(d, 0, 0, 0x07, 0, 2048);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.scheme == PART_NONE);
	d[20] = 1; /* MustBeZero broken */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.scheme == PART_MBR);
	free(d);
}

/* ---------------------------------------------------------------- GPT */

static void test_gpt_basic(void)
{
	uint8_t *d = gpt_three();
	REQUIRE(readp(d, DISK1M, 0) == 0);
	check_three();
	CHECK(T.flags == 0 && T.n_warnings == 0);
	CHECK(T.header_lba == 1 && T.backup_lba == 2047 && T.alternate_lba == 2047);
	CHECK(T.entries_lba == 2);
	CHECK(T.disk_guid[0] == 0x50 && T.disk_guid[15] == 0x5F);
	CHECK(T.gpt_entries_crc == (uint32_t)crc32(0, d + 1024, 128 * 128));
	CHECK(T.n_areas == 5);
	CHECK(has_area(0, 512, "protective MBR") && has_area(512, 512, "GPT header") &&
	      has_area(1024, 16384, "GPT entries") &&
	      has_area(2015 * 512, 16384, "backup GPT entries") &&
	      has_area(2047 * 512, 512, "backup GPT header"));
	/* Last partition ends at LBA 1999: + 32 array sectors + header. */
	CHECK(part_min_disk_size(&T) == (1999 + 32 + 2) * 512);
	CHECK(!part_table_is_odd(&T));
	/* Sector size given. */
	REQUIRE(readp(d, DISK1M, 512) == 0);
	check_three();
	/* With 4096 the 0xEE entry promises a GPT that is not there. */
	CHECK(readp(d, DISK1M, 4096) == -EBADMSG && strstr(E.msg, "0xEE"));
	free(d);
}

static void test_gpt_primary_damaged(void)
{
	uint8_t *d = gpt_three();
	d[512 + 40] ^= 1; /* first usable LBA: header CRC breaks */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	check_three();
	CHECK(T.flags == PART_GPT_BACKUP_USED);
	CHECK(T.header_lba == 2047 && T.backup_lba == 2047 && T.entries_lba == 2015);
	CHECK(has_warning("primary GPT header at LBA 1: header CRC32"));
	CHECK(has_area(512, 512, "GPT header (damaged)") &&
	      has_area(1024, 32 * 512, "GPT entries (damaged)"));
	CHECK(!part_table_is_odd(&T));

	/* Primary zeroed. */
	memset(d + 512, 0, 512);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	check_three();
	CHECK(T.flags == PART_GPT_BACKUP_USED && has_warning("no GPT signature"));
	free(d);

	/* Primary entry array damaged (header sound). */
	d = gpt_three();
	d[1024 + 128 * 5 + 60] ^= 0x40;
	REQUIRE(readp(d, DISK1M, 0) == 0);
	check_three();
	CHECK(T.flags == PART_GPT_BACKUP_USED && has_warning("entry array CRC32"));
	free(d);
}

static void test_gpt_backup_damaged(void)
{
	uint8_t *d = gpt_three();
	d[2047 * 512 + 56] ^= 1; /* backup disk GUID */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	check_three();
	CHECK(T.flags == PART_GPT_BACKUP_BAD && T.backup_lba == 0);
	CHECK(has_warning("backup GPT header at LBA 2047: header CRC32"));
	CHECK(has_area(2047 * 512, 512, "backup GPT header (damaged)") &&
	      has_area(2015 * 512, 16384, "backup GPT entries (damaged)"));
	CHECK(!part_table_is_odd(&T));
	/* Backup array damaged. */
	free(d);
	d = gpt_three();
	d[2015 * 512 + 7] ^= 1;
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.flags == PART_GPT_BACKUP_BAD && has_warning("entry array CRC32"));
	/* Backup sound but different (another disk GUID, CRC fixed). */
	free(d);
	d = gpt_three();
	d[2047 * 512 + 56] ^= 1;
	fix_hdr_crc(d, 512, 2047);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.flags == PART_GPT_BACKUP_BAD && has_warning("differs from the primary (disk GUID)"));
	/* Truncated image: the backup is past the end. The last LBA holds no GPT. */
	REQUIRE(readp(d, 1500 * 512, 0) == 0);
	CHECK((T.flags & PART_GPT_BACKUP_BAD) && (T.flags & PART_BEYOND_END));
	CHECK(has_warning("past the end"));
	/* Both damaged. */
	d[512 + 40] ^= 1;
	d[2047 * 512 + 40] ^= 1;
	CHECK(readp(d, DISK1M, 0) == -EBADMSG);
	CHECK(strstr(E.msg, "primary header at LBA 1") && strstr(E.msg, "backup header"));
	CHECK(T.scheme == PART_NONE && T.n_entries == 0);
	free(d);
}

static void test_gpt_disk_grown(void)
{
	/* The GPT of a 1 MiB disk on a 2 MiB one: backup where the primary says. */
	uint8_t *d = disk_new(2 * DISK1M);
	struct gpt_spec s = { .ss = 512 };
	gpt_build(d, DISK1M, &s, three, 3);
	REQUIRE(readp(d, 2 * DISK1M, 0) == 0);
	check_three();
	CHECK(T.flags == 0 && T.backup_lba == 2047 && has_warning("larger than the GPT says"));
	/* Primary damaged too: the backup is looked for at the disk's last LBA only. */
	d[512 + 40] ^= 1;
	CHECK(readp(d, 2 * DISK1M, 0) == -EBADMSG);
	free(d);
}

/* Header fields set to absurd values, with the header CRC made right again. */
static void test_gpt_absurd_headers(void)
{
	static const struct { int off, width; uint64_t v; const char *why; } cases[] = {
		{ 80, 4, 0xFFFFFFFFu, "larger than" },           /* entry count */
		{ 80, 4, 40000, "larger than" },
		{ 84, 4, 0, "entry size 0" },
		{ 84, 4, 130, "entry size 130" },
		{ 84, 4, 0x80000000u, "larger than" },
		{ 12, 4, 91, "header size 91" },
		{ 12, 4, 513, "header size 513" },
		{ 8, 4, 0x00020000, "revision" },
		{ 24, 8, 7, "says it is at LBA 7" },
		{ 72, 8, 0xFFFFFFFFFFFFFFFFull, "past the end" },
		{ 72, 8, 2040, "past the end" },
		{ 72, 8, 0, "covers LBA 0" },
		{ 72, 8, 1, "covers LBA 0 or the header" },
		{ 40, 8, 5000, "first usable LBA 5000 is after" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *d = gpt_three();
		uint8_t *h = d + 512 + cases[i].off;
		if (cases[i].width == 4)
			le32(h, (uint32_t)cases[i].v);
		else
			le64(h, cases[i].v);
		if (cases[i].off != 12 || cases[i].v <= 512)
			fix_hdr_crc(d, 512, 1);
		if (cases[i].off == 12 && cases[i].v > 512) /* CRC over 92 bytes, size bad */
			le32(d + 512 + 16, 0), le32(d + 512 + 16, (uint32_t)crc32(0, d + 512, 92));
		REQUIRE(readp(d, DISK1M, 0) == 0);
		check_three();
		CHECK(T.flags == PART_GPT_BACKUP_USED);
		CHECK(has_warning(cases[i].why));
		if (!has_warning(cases[i].why))
			printf("# case %zu: %s\n", i, T.n_warnings ? T.warnings[0] : "(none)");
		/* The same damage in the backup too: unusable. */
		memcpy(d + 2047 * 512 + cases[i].off, d + 512 + cases[i].off, (size_t)cases[i].width);
		fix_hdr_crc(d, 512, 2047);
		int rc = readp(d, DISK1M, 0);
		CHECK(rc == -EBADMSG || (rc == 0 && T.flags == PART_GPT_BACKUP_BAD));
		free(d);
	}
}

static void test_gpt_too_many_used(void)
{
	size_t size = 2 * DISK1M;
	uint8_t *d = disk_new(size);
	static struct tp many[300];
	for (uint32_t i = 0; i < 300; i++)
		many[i] = (struct tp){ .first = 200 + 2 * i, .last = 201 + 2 * i, .name = "p", .slot = i };
	struct gpt_spec s = { .ss = 512, .n = 512 };
	gpt_build(d, size, &s, many, 300);
	CHECK(readp(d, size, 0) == -E2BIG && strstr(E.msg, "more than 256"));
	/* 256 in use: fine. */
	memset(d, 0, size);
	gpt_build(d, size, &s, many, 256);
	REQUIRE(readp(d, size, 0) == 0);
	CHECK(T.n_entries == 256 && T.flags == 0);
	CHECK(find(256) && find(256)->start == (200 + 2 * 255) * 512);
	free(d);
}

static void test_gpt_odd_entries(void)
{
	uint8_t *d = disk_new(DISK1M);
	struct gpt_spec s = { .ss = 512 };
	struct tp odd[] = {
		{ .first = 100, .last = 199, .slot = 0 },
		{ .first = 150, .last = 299, .slot = 1 },   /* overlaps 1 */
		{ .first = 500, .last = 400, .slot = 2 },   /* ends before it starts */
		{ .first = 1900, .last = 5000, .slot = 3 }, /* past the end */
		{ .first = 10, .last = 20, .slot = 4 },     /* over the primary entries */
	};
	gpt_build(d, DISK1M, &s, odd, 5);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.n_entries == 4 && !find(3));
	CHECK(T.flags == (PART_OVERLAP | PART_BEYOND_END | PART_ENTRY_IGNORED));
	CHECK(has_warning("partitions 1 ") && has_warning("make no partition"));
	CHECK(has_warning("outside the usable LBAs"));
	CHECK(part_table_is_odd(&T));
	CHECK(areas_sane());
	free(d);
}

static void test_gpt_4k(void)
{
	size_t size = 4 * DISK1M;
	uint8_t *d = disk_new(size);
	struct gpt_spec s = { .ss = 4096 };
	struct tp p[] = { { .first = 6, .last = 99, .name = "a", .slot = 0 },
			  { .first = 256, .last = 1000, .name = "b", .slot = 1 } };
	gpt_build(d, size, &s, p, 2);
	REQUIRE(readp(d, size, 0) == 0);
	CHECK(T.scheme == PART_GPT && T.sector_size == 4096 && T.flags == 0);
	CHECK(T.first_usable_lba == 6 && T.n_entries == 2);
	CHECK(find(2) && find(2)->start == 256 * 4096 && find(2)->size == 745 * 4096);
	CHECK(has_area(4096, 4096, "GPT header") && has_area(8192, 16384, "GPT entries") &&
	      has_area(size - 4096, 4096, "backup GPT header"));
	CHECK(part_min_disk_size(&T) == (1000 + 4 + 2) * 4096);
	REQUIRE(readp(d, size, 4096) == 0);
	CHECK(T.sector_size == 4096);
	CHECK(readp(d, size, 512) == -EBADMSG);
	/* Primary damaged: the 4096-byte backup is found. */
	d[4096 + 40] ^= 1;
	REQUIRE(readp(d, size, 0) == 0);
	CHECK(T.sector_size == 4096 && T.flags == PART_GPT_BACKUP_USED);
	free(d);
}

static void test_gpt_hybrid(void)
{
	uint8_t *d = gpt_three();
	/* gdisk style: 0xEE over LBA 1..33, then copies of partitions 1 and 6. */
	le32(d + 446 + 12, 33);
	mbr_entry(d, 1, 0x80, 0xEF, 34, 66);
	mbr_entry(d, 2, 0, 0x83, 1000, 1000);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	check_three();
	CHECK(T.flags == PART_HYBRID_MBR && T.n_warnings == 0);
	CHECK(has_area(0, 512, "hybrid MBR") && !part_table_is_odd(&T));
	/* A hybrid entry that matches nothing: a warning. Over a partition: an overlap. */
	mbr_entry(d, 3, 0, 0x83, 2000, 10);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.flags == (PART_HYBRID_MBR | PART_ENTRY_IGNORED));
	CHECK(has_warning("matches no GPT partition") && part_table_is_odd(&T));
	mbr_entry(d, 3, 0, 0x83, 150, 10);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK((T.flags & PART_OVERLAP) && has_warning("overlaps GPT partitions"));
	free(d);
}

static void test_gpt_without_pmbr_and_stale(void)
{
	uint8_t *d = gpt_three();
	memset(d, 0, 512);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	check_three();
	CHECK(has_warning("without a protective MBR") && has_area(0, 512, "MBR"));
	/* An MBR with entries and no 0xEE over an old GPT: the MBR wins. */
	mbr_entry(d, 0, 0, 0x83, 2048 / 4, 100);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.scheme == PART_MBR && T.n_entries == 1 && has_warning("stale"));
	/* No protective MBR, no primary: a backup left over by wiping the start of the disk
	 * is not a partition table. */
	memset(d, 0, 1024);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.scheme == PART_NONE && T.n_entries == 0 && has_warning("left over"));
	/* Nor is a GPT damaged in both copies without a protective MBR... */
	free(d);
	d = gpt_three();
	memset(d, 0, 512);
	d[512 + 40] ^= 1;
	d[2047 * 512 + 40] ^= 1;
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.scheme == PART_NONE && has_warning("damaged GPT without a protective MBR"));
	/* ...while with one it is an error. */
	mbr_entry(d, 0, 0, 0xEE, 1, 2047);
	CHECK(readp(d, DISK1M, 0) == -EBADMSG && strstr(E.msg, "unusable"));
	free(d);
}

/* ---------------------------------------------------------------- names */

static void test_utf16_names(void)
{
	char out[112];
	uint8_t in[72], back[72];
	static const uint16_t u[] = { 'A', 0xD800, 'B', 0xDC00, 0xD83D, 0xDE00, 0xDBFF, 0 };
	memset(in, 0, sizeof(in));
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		in[2 * i] = (uint8_t)u[i];
		in[2 * i + 1] = (uint8_t)(u[i] >> 8);
	}
	part_utf16le_to_utf8(in, 36, out, sizeof(out));
	CHECK(strcmp(out, "A\xEF\xBF\xBD" "B\xEF\xBF\xBD\xF0\x9F\x98\x80\xEF\xBF\xBD") == 0);
	/* 36 units of U+20AC: 108 bytes of UTF-8, all kept. */
	for (int i = 0; i < 36; i++) {
		in[2 * i] = 0xAC;
		in[2 * i + 1] = 0x20;
	}
	part_utf16le_to_utf8(in, 36, out, sizeof(out));
	CHECK(strlen(out) == 108);
	part_utf8_to_utf16le(out, back, 36);
	CHECK(memcmp(in, back, 72) == 0);
	/* A small buffer: cut before a partial character. */
	part_utf16le_to_utf8(in, 36, out, 8);
	CHECK(strlen(out) == 6);
	/* Invalid UTF-8 becomes U+FFFD; surrogate pairs are made for astral characters. */
	part_utf8_to_utf16le("\xF0\x9F\x98\x80x\xC0\xAFz\xED\xA0\x80", back, 36);
	CHECK(back[0] == 0x3D && back[1] == 0xD8 && back[2] == 0x00 && back[3] == 0xDE);
	CHECK(back[4] == 'x' && back[6] == 0xFD && back[7] == 0xFF);
	/* 36 units at most: an astral character that does not fit is left out. */
	char longs[200];
	memset(longs, 'a', 35);
	strcpy(longs + 35, "\xF0\x9F\x98\x80");
	part_utf8_to_utf16le(longs, back, 36);
	CHECK(back[70] == 0 && back[71] == 0 && back[68] == 'a');
}

/* ---------------------------------------------------------------- relocation */

struct sink {
	uint8_t *d;
	size_t size;
	int pieces, bad;
	uint8_t lba0[4096];
};

static int sink_write(void *opaque, const void *buf, size_t len, uint64_t off)
{
	struct sink *s = opaque;
	s->pieces++;
	if (off == 0 && len <= sizeof(s->lba0))
		memcpy(s->lba0, buf, len);
	if (!s->d)
		return 0;
	if (off > s->size || len > s->size - off) {
		s->bad++;
		return -EIO;
	}
	memcpy(s->d + off, buf, len);
	return 0;
}

/* Relocate the table in T (read from src, src_size bytes) to a disk of new_size bytes
 * holding src's partitions, and read it back into T. */
static int relocate_to(const uint8_t *src, size_t src_size, size_t new_size, struct sink *s)
{
	static struct part_table orig;
	orig = T;
	memset(s, 0, sizeof(*s));
	s->d = disk_new(new_size);
	s->size = new_size;
	for (size_t i = 0; i < orig.n_entries; i++) {
		const struct part_entry *e = &orig.entries[i];
		if (e->start + e->size <= new_size && e->start + e->size <= src_size)
			memcpy(s->d + e->start, src + e->start, e->size);
	}
	int rc = gpt_relocate(&orig, src, src_size < 65536 ? src_size : 65536, new_size,
			      sink_write, s, &E);
	if (rc < 0)
		return rc;
	rc = readp(s->d, new_size, orig.sector_size);
	if (rc < 0)
		return rc;
	/* Same partitions, same identity. */
	CHECK(T.n_entries == orig.n_entries);
	for (size_t i = 0; i < T.n_entries && i < orig.n_entries; i++) {
		const struct part_entry *a = &T.entries[i], *b = &orig.entries[i];
		CHECK(a->number == b->number && a->start == b->start && a->size == b->size);
		CHECK(memcmp(a->type_guid, b->type_guid, 16) == 0);
		CHECK(memcmp(a->part_guid, b->part_guid, 16) == 0);
		CHECK(a->gpt_attrs == b->gpt_attrs && strcmp(a->name, b->name) == 0);
	}
	CHECK(memcmp(T.disk_guid, orig.disk_guid, 16) == 0);
	CHECK(T.first_usable_lba == orig.first_usable_lba);
	uint64_t ss = orig.sector_size, last = new_size / ss - 1;
	uint64_t alba = ((uint64_t)orig.n_gpt_entries * orig.gpt_entry_size + ss - 1) / ss;
	CHECK(T.alternate_lba == last && T.backup_lba == last && T.header_lba == 1);
	CHECK(T.last_usable_lba == last - alba - 1);
	CHECK((T.flags & (PART_GPT_BACKUP_BAD | PART_GPT_BACKUP_USED)) == 0);
	CHECK(!has_warning("backup"));
	return 0;
}

static void test_relocate_grow_shrink(void)
{
	uint8_t *d = gpt_three();
	for (size_t i = 0; i < 3; i++) /* recognisable partition bytes */
		memset(d + three[i].first * 512, 0x31 + (int)i, 512);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	static struct part_table orig;
	orig = T;
	struct sink s;

	REQUIRE(relocate_to(d, DISK1M, 3 * DISK1M, &s) == 0);
	CHECK(s.bad == 0 && s.pieces == 6); /* MBR, header, 2 arrays, header, old backup */
	CHECK(rd32(s.lba0 + 446 + 12) == 3 * 2048 - 1);
	CHECK(memcmp(s.d + 2047 * 512, (uint8_t[512]){ 0 }, 512) == 0); /* stale header gone */
	CHECK(s.d[1000 * 512] == 0x33 && s.d[100 * 512] == 0x32);
	CHECK(T.gpt_entries_crc == orig.gpt_entries_crc);
	free(s.d);

	/* Shrink to the least that holds everything, then one sector less. */
	uint64_t min = part_min_disk_size(&orig);
	CHECK(min == (1999 + 34) * 512);
	T = orig;
	REQUIRE(relocate_to(d, DISK1M, (size_t)min, &s) == 0);
	CHECK(s.pieces == 5 && T.last_usable_lba == 1999);
	CHECK(part_min_disk_size(&T) == min);
	free(s.d);
	T = orig;
	CHECK(relocate_to(d, DISK1M, (size_t)min - 1, &s) == -ENOSPC);
	CHECK(E.code == -ENOSPC && strstr(E.msg, "at least 1040896 bytes") &&
	      strstr(E.msg, "partition 6"));
	CHECK(s.pieces == 0);
	free(s.d);
	free(d);
}

static void test_relocate_from_backup(void)
{
	uint8_t *d = gpt_three();
	uint32_t crc = (uint32_t)crc32(0, d + 1024, 128 * 128);
	memset(d + 512, 0, 512); /* primary header gone */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	REQUIRE(T.flags == PART_GPT_BACKUP_USED);
	struct sink s;
	REQUIRE(relocate_to(d, DISK1M, 2 * DISK1M, &s) == 0);
	/* The array rebuilt from the parsed entries is the original, byte for byte. */
	CHECK(T.gpt_entries_crc == crc && T.entries_lba == 2);
	CHECK(memcmp(s.d + 1024, d + 2015 * 512, 128 * 128) == 0);
	free(s.d);
	free(d);
}

static void test_relocate_4k_and_hybrid(void)
{
	size_t size = 4 * DISK1M;
	uint8_t *d = disk_new(size);
	struct gpt_spec sp = { .ss = 4096 };
	struct tp p[] = { { .first = 6, .last = 99, .name = "a", .slot = 0 },
			  { .first = 256, .last = 1000, .name = "b", .slot = 3 } };
	gpt_build(d, size, &sp, p, 2);
	REQUIRE(readp(d, size, 0) == 0);
	struct sink s;
	REQUIRE(relocate_to(d, size, 8 * DISK1M, &s) == 0);
	CHECK(T.sector_size == 4096 && rd32(s.lba0 + 446 + 12) == 2047);
	free(s.d);
	REQUIRE(readp(d, size, 0) == 0);
	REQUIRE(relocate_to(d, size, (1000 + 6) * 4096, &s) == 0);
	free(s.d);
	free(d);

	/* Hybrid: kept as it is (its 0xEE entry does not reach the end). */
	d = gpt_three();
	le32(d + 446 + 12, 33);
	mbr_entry(d, 1, 0x80, 0xEF, 34, 66);
	uint8_t mbr[512];
	memcpy(mbr, d, 512);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	REQUIRE(relocate_to(d, DISK1M, 2 * DISK1M, &s) == 0);
	CHECK(memcmp(s.lba0, mbr, 512) == 0 && (T.flags & PART_HYBRID_MBR));
	free(s.d);
	free(d);
}

static void test_relocate_empty_ee(void)
{
	/* A 0xEE entry of size 0 is no entry: relocation leaves it empty (found by
	 * fuzz_part: filling it turned an invalid MBR with another entry into a hybrid;
	 * regress-ee-count-0.img in the corpus). */
	uint8_t *d = gpt_three();
	le32(d + 446 + 12, 0);
	uint8_t mbr[512];
	memcpy(mbr, d, 512);
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.flags == 0 && has_warning("without a protective MBR"));
	struct sink s;
	REQUIRE(relocate_to(d, DISK1M, 2 * DISK1M, &s) == 0);
	CHECK(memcmp(s.lba0, mbr, 512) == 0 && T.flags == 0);
	free(s.d);
	free(d);
}

static void test_relocate_huge_and_args(void)
{
	uint8_t *d = gpt_three();
	REQUIRE(readp(d, DISK1M, 0) == 0);
	static struct part_table orig;
	orig = T;
	struct sink s;
	memset(&s, 0, sizeof(s));
	/* 3 TiB: the 0xEE size is clamped, the end CHS is FE FF FF. */
	REQUIRE(gpt_relocate(&orig, d, 65536, 3ull << 40, sink_write, &s, &E) == 0);
	CHECK(rd32(s.lba0 + 446 + 12) == 0xFFFFFFFFu);
	CHECK(s.lba0[446 + 5] == 0xFE && s.lba0[446 + 6] == 0xFF && s.lba0[446 + 7] == 0xFF);
	CHECK(s.pieces == 6); /* with the old backup header zeroed */
	/* Head too short for the entry array; head not matching the table. */
	CHECK(gpt_relocate(&orig, d, 1024, 2 * DISK1M, sink_write, &s, &E) == -EINVAL);
	CHECK(gpt_relocate(&orig, d, 100, 2 * DISK1M, sink_write, &s, &E) == -EINVAL);
	d[1024 + 3] ^= 1;
	CHECK(gpt_relocate(&orig, d, 65536, 2 * DISK1M, sink_write, &s, &E) == -EBADMSG);
	/* Not a GPT. */
	orig.scheme = PART_MBR;
	CHECK(gpt_relocate(&orig, d, 65536, 2 * DISK1M, sink_write, &s, &E) == -EINVAL);
	/* A failing writer stops it. */
	d[1024 + 3] ^= 1;
	orig.scheme = PART_GPT;
	struct sink tiny = { .d = disk_new(512), .size = 512 };
	CHECK(gpt_relocate(&orig, d, 65536, 2 * DISK1M, sink_write, &tiny, &E) == -EIO);
	CHECK(tiny.pieces == 2);
	free(tiny.d);
	free(d);
}

/* An extended container running to the end of a 1 MiB disk, holding two logicals that
 * end at sector 1200: it shrinks to a disk of 1300 sectors (entry length and CHS end),
 * not to one of 1100 (a logical would be cut), and is left alone when it fits. */
static void test_mbr_fit_extended(void)
{
	uint8_t *d = disk_new(DISK1M);
	mbr_entry(d, 0, 0, 0x83, 64, 100);
	mbr_entry(d, 1, 0, 0x0F, 1000, 2048 - 1000);
	mbr_entry(d + 1000 * 512, 0, 0, 0x83, 1, 99);     /* 5: 1001..1099 */
	mbr_entry(d + 1000 * 512, 1, 0, 0x05, 100, 101);  /* next EBR at 1100 */
	mbr_entry(d + 1100 * 512, 0, 0, 0x07, 1, 100);    /* 6: 1101..1200 */
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(T.n_entries == 4 && !part_table_is_odd(&T));
	CHECK(part_min_disk_size(&T) == 1201ull * 512);
	uint8_t s0[512];
	memcpy(s0, d, 512);
	CHECK(mbr_fit_extended(&T, s0, DISK1M) == 0);
	CHECK(memcmp(s0, d, 512) == 0);
	CHECK(mbr_fit_extended(&T, s0, 1100ull * 512) == -ENOSPC);
	CHECK(memcmp(s0, d, 512) == 0);
	CHECK(mbr_fit_extended(&T, s0, 1300ull * 512 + 100) == 1);
	const uint8_t *p = s0 + 446 + 16;
	CHECK(p[12] == (300 & 0xFF) && p[13] == (300 >> 8) && p[14] == 0 && p[15] == 0);
	/* CHS of LBA 1299 in 255/63 geometry: cylinder 0, head 20, sector 40 */
	CHECK(p[5] == 20 && p[6] == 40 && p[7] == 0);
	CHECK(memcmp(s0, d, 446 + 16 + 5) == 0 && memcmp(s0 + 446 + 32, d + 446 + 32, 512 - 446 - 32) == 0);
	/* The shrunk table reads back on the smaller disk with the same partitions. */
	memcpy(d, s0, 512);
	REQUIRE(readp(d, 1300u * 512, 0) == 0);
	CHECK(T.n_entries == 4 && find(5) && find(6) && !part_table_is_odd(&T));
	/* A table that does not match sector0 is refused. */
	uint8_t other[512];
	memset(other, 0, sizeof(other));
	REQUIRE(readp(d, DISK1M, 0) == 0);
	CHECK(mbr_fit_extended(&T, other, 1250ull * 512) == -EINVAL);
	free(d);
}

int main(void)
{
	check_prog_ = "part";
	RUN(test_empty_and_tiny);
	RUN(test_bad_args);
	RUN(test_mbr_primaries);
	RUN(test_mbr_bad_boot_indicator);
	RUN(test_mbr_logicals);
	RUN(test_mbr_empty_extended);
	RUN(test_ebr_loops);
	RUN(test_ebr_chain_too_long);
	RUN(test_ebr_link_outside);
	RUN(test_mbr_fit_extended);
	RUN(test_ebr_past_end);
	RUN(test_ebr_entries_3_4);
	RUN(test_mbr_overlap_and_end);
	RUN(test_fat_superfloppy);
	RUN(test_ntfs_exfat_superfloppy);
	RUN(test_gpt_basic);
	RUN(test_gpt_primary_damaged);
	RUN(test_gpt_backup_damaged);
	RUN(test_gpt_disk_grown);
	RUN(test_gpt_absurd_headers);
	RUN(test_gpt_too_many_used);
	RUN(test_gpt_odd_entries);
	RUN(test_gpt_4k);
	RUN(test_gpt_hybrid);
	RUN(test_gpt_without_pmbr_and_stale);
	RUN(test_utf16_names);
	RUN(test_relocate_grow_shrink);
	RUN(test_relocate_from_backup);
	RUN(test_relocate_4k_and_hybrid);
	RUN(test_relocate_empty_ee);
	RUN(test_relocate_huge_and_args);
	CHECK_MAIN_END();
}
