/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target for the partition-table readers (lib/part/): the input is a whole disk.
 * It is read with sector size 0 (512, then 4096), 512 and 4096, and every table read is
 * checked against what part_read promises:
 *   - counts within their bounds, every string terminated, names valid UTF-8;
 *   - entries sorted by number, numbers unique, no zero-length entry; areas sorted,
 *     nonempty and inside the disk; PART_NONE has neither;
 *   - a table that is not odd (part_table_is_odd) has no partition past the end and no
 *     two partitions, or a partition and a table area, sharing bytes (checked here
 *     independently; an extended partition may hold logicals and EBRs);
 *   - part_min_disk_size covers every partition (and, for MBR, every area);
 *   - every failure fills struct imago_err with its code.
 * A GPT that is not odd is then relocated (gpt_relocate) to its minimum size, to a size
 * that is not a multiple of the sector size, and to a larger disk; each result is read
 * back and must be a sound GPT (no backup flags) with the same partitions, GUIDs,
 * attributes and names. Below the minimum it must say -ENOSPC.
 *
 * GPT headers and entry arrays carry CRC32s a mutating fuzzer can practically never get
 * right, so each input is also run with every CRC recomputed (fix_crcs): the headers at
 * LBA 1, at the last LBA and where they point, for 512- and 4096-byte sectors.
 *
 * A disagreement is a finding: a message on stderr, then abort().
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz.h"
#include "part/part.h"

#define TARGET_MAX (4u << 20)    /* relocated disks up to this are built and read back */
#define FIX_INPUT_MAX (8u << 20)

static void finding(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void finding(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz_part: FINDING: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	abort();
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> 8 * i);
}

/* ------------------------------------------------------------ CRC fix-up */

/* Recompute the array CRC and the header CRC of a GPT header at lba, if one is there. */
static void fix_header(uint8_t *b, size_t n, uint32_t ss, uint64_t lba)
{
	if (lba >= n / ss)
		return;
	uint8_t *h = b + lba * ss;
	if (memcmp(h, "EFI PART", 8) != 0)
		return;
	uint64_t entries = rd64(h + 72), array = (uint64_t)rd32(h + 80) * rd32(h + 84);
	if (entries < n / ss && array <= n - entries * ss)
		wr32(h + 88, (uint32_t)crc32(0, b + entries * ss, (uInt)array));
	uint32_t hs = rd32(h + 12);
	if (hs < 92 || hs > ss)
		hs = 92;
	wr32(h + 16, 0);
	wr32(h + 16, (uint32_t)crc32(0, h, hs));
}

static void fix_crcs(uint8_t *b, size_t n)
{
	static const uint32_t sizes[] = { 512, 4096 };
	for (int k = 0; k < 2; k++) {
		uint32_t ss = sizes[k];
		if (n / ss < 3)
			continue;
		uint64_t last = n / ss - 1;
		fix_header(b, n, ss, 1);
		fix_header(b, n, ss, last);
		if (memcmp(b + ss, "EFI PART", 8) == 0) {
			uint64_t alt = rd64(b + ss + 32);
			if (alt != last && alt != 1)
				fix_header(b, n, ss, alt);
		}
	}
}

/* ------------------------------------------------------------ table checks */

static uint64_t end_of(uint64_t a, uint64_t n)
{
	return n > UINT64_MAX - a ? UINT64_MAX : a + n;
}

static int share(uint64_t a, uint64_t an, uint64_t b, uint64_t bn)
{
	return an && bn && a < end_of(b, bn) && b < end_of(a, an);
}

static void check_utf8(const char *s, size_t cap, unsigned number)
{
	const unsigned char *p = (const unsigned char *)s;
	if (!memchr(s, '\0', cap))
		finding("partition %u: name not terminated", number);
	while (*p) {
		size_t len = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
			   : (*p & 0xF8) == 0xF0 ? 4 : 0;
		if (!len)
			finding("partition %u: name has a bad UTF-8 lead byte 0x%02x", number, *p);
		for (size_t i = 1; i < len; i++)
			if ((p[i] & 0xC0) != 0x80)
				finding("partition %u: name has a truncated UTF-8 sequence", number);
		p += len;
	}
}

static void check_table(const struct part_table *t, uint64_t disk, uint32_t ss_given)
{
	if (t->scheme != PART_NONE && t->scheme != PART_MBR && t->scheme != PART_GPT)
		finding("scheme %d", (int)t->scheme);
	if (t->disk_size != disk)
		finding("disk_size %llu, region %llu", (unsigned long long)t->disk_size,
			(unsigned long long)disk);
	if (ss_given && t->sector_size != ss_given)
		finding("sector size %u, asked %u", t->sector_size, ss_given);
	if (t->sector_size != 512 && t->sector_size != 4096)
		finding("sector size %u", t->sector_size);
	if (t->n_entries > PART_MAX_ENTRIES || t->n_areas > PART_MAX_AREAS ||
	    t->n_warnings > PART_MAX_WARNINGS)
		finding("counts %zu %zu %zu", t->n_entries, t->n_areas, t->n_warnings);
	for (size_t i = 0; i < t->n_warnings; i++)
		if (!memchr(t->warnings[i], '\0', sizeof(t->warnings[i])))
			finding("warning %zu not terminated", i);
	if (t->scheme == PART_NONE && (t->n_entries || t->n_areas || t->flags))
		finding("PART_NONE with %zu entries, %zu areas, flags 0x%x", t->n_entries,
			t->n_areas, t->flags);

	for (size_t i = 0; i < t->n_entries; i++) {
		const struct part_entry *e = &t->entries[i];
		if (!e->size)
			finding("partition %u has size 0", e->number);
		if (i && t->entries[i - 1].number >= e->number)
			finding("partitions %u and %u out of order or repeated",
				t->entries[i - 1].number, e->number);
		check_utf8(e->name, sizeof(e->name), e->number);
		if (e->start % t->sector_size || e->size % t->sector_size)
			finding("partition %u not sector-aligned", e->number);
		if ((e->flags & PART_LOGICAL) && (e->number < 5 || t->scheme != PART_MBR))
			finding("logical partition numbered %u", e->number);
		if (t->scheme == PART_GPT && (e->number < 1 || e->number > t->n_gpt_entries))
			finding("GPT partition %u of %u entries", e->number, t->n_gpt_entries);
	}
	for (size_t i = 0; i < t->n_areas; i++) {
		const struct part_area *a = &t->areas[i];
		if (!a->what || !a->size || a->start >= disk || a->size > disk - a->start)
			finding("area %zu (%llu +%llu) empty or outside the disk", i,
				(unsigned long long)a->start, (unsigned long long)a->size);
		if (i && t->areas[i - 1].start > a->start)
			finding("areas out of order");
	}

	uint64_t min = part_min_disk_size(t);
	for (size_t i = 0; i < t->n_entries; i++)
		if (!(t->entries[i].flags & PART_EXTENDED) &&
		    end_of(t->entries[i].start, t->entries[i].size) > min)
			finding("min size %llu < end of partition %u", (unsigned long long)min,
				t->entries[i].number);
	if (t->scheme == PART_MBR)
		for (size_t i = 0; i < t->n_areas; i++)
			if (end_of(t->areas[i].start, t->areas[i].size) > min)
				finding("min size below an area");

	if (part_table_is_odd(t))
		return;
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct part_entry *a = &t->entries[i];
		if (end_of(a->start, a->size) > disk)
			finding("partition %u past the end, not flagged", a->number);
		for (size_t j = i + 1; j < t->n_entries; j++) {
			const struct part_entry *b = &t->entries[j];
			int nested = ((a->flags | b->flags) & PART_EXTENDED) &&
				     ((a->flags | b->flags) & PART_LOGICAL);
			if (!nested && share(a->start, a->size, b->start, b->size))
				finding("partitions %u and %u overlap, not flagged", a->number,
					b->number);
		}
		for (size_t k = 0; k < t->n_areas; k++) {
			if ((a->flags & PART_EXTENDED) && strcmp(t->areas[k].what, "EBR") == 0)
				continue;
			if (share(a->start, a->size, t->areas[k].start, t->areas[k].size))
				finding("partition %u overlaps the %s, not flagged", a->number,
					t->areas[k].what);
		}
	}
}

/* ------------------------------------------------------------ relocation */

struct target {
	uint8_t *d;        /* NULL: only check the bounds */
	uint64_t size;
	unsigned pieces;
};

static int tgt_write(void *opaque, const void *buf, size_t len, uint64_t off)
{
	struct target *t = opaque;
	if (off > t->size || len > t->size - off)
		finding("gpt_relocate writes %zu bytes at %llu of a %llu-byte disk", len,
			(unsigned long long)off, (unsigned long long)t->size);
	if (t->d)
		memcpy(t->d + off, buf, len);
	t->pieces++;
	return 0;
}

static void relocate_one(const struct part_table *t, const uint8_t *d, size_t n,
			 uint64_t new_size)
{
	static struct part_table back;
	struct imago_err err;
	struct target tg = { .size = new_size };
	uint64_t min = part_min_disk_size(t);

	if (new_size <= TARGET_MAX) {
		tg.d = calloc(1, new_size ? new_size : 1);
		if (!tg.d)
			return;
		memcpy(tg.d, d, n < new_size ? n : new_size);
	}
	memset(&err, 0, sizeof(err));
	err.code = 1;
	int rc = gpt_relocate(t, d, n, new_size, tgt_write, &tg, &err);
	if (rc < 0 && (err.code != rc || !memchr(err.msg, '\0', sizeof(err.msg))))
		finding("gpt_relocate returned %d, err.code %d", rc, err.code);
	if (new_size < min) {
		if (rc != -ENOSPC || tg.pieces)
			finding("relocation to %llu bytes (min %llu) gave %d after %u pieces",
				(unsigned long long)new_size, (unsigned long long)min, rc, tg.pieces);
		goto out;
	}
	if (rc == -EBADMSG) /* a primary array that does not fit before the first usable LBA */
		goto out;
	if (rc != 0)
		finding("relocation to %llu bytes (min %llu) failed: %d %s",
			(unsigned long long)new_size, (unsigned long long)min, rc, err.msg);
	if (!tg.d)
		goto out;

	struct region r = region_mem(tg.d, new_size, "relocated");
	rc = part_read(&r, t->sector_size, &back, &err);
	if (rc != 0 || back.scheme != PART_GPT)
		finding("relocated disk (%llu bytes) reads as %d, scheme %d: %s",
			(unsigned long long)new_size, rc, (int)back.scheme, rc ? err.msg : "");
	check_table(&back, new_size, t->sector_size);
	if (back.flags != (t->flags & PART_HYBRID_MBR))
		finding("relocated disk has flags 0x%x (source 0x%x): %s", back.flags, t->flags,
			back.n_warnings ? back.warnings[0] : "");
	if (back.n_entries != t->n_entries)
		finding("relocated disk has %zu partitions, source %zu", back.n_entries,
			t->n_entries);
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct part_entry *a = &t->entries[i], *b = &back.entries[i];
		if (a->number != b->number || a->start != b->start || a->size != b->size ||
		    memcmp(a->type_guid, b->type_guid, 16) || memcmp(a->part_guid, b->part_guid, 16) ||
		    a->gpt_attrs != b->gpt_attrs || a->flags != b->flags || strcmp(a->name, b->name))
			finding("relocated partition %u differs", a->number);
	}
	uint64_t ss = t->sector_size, last = new_size / ss - 1;
	if (back.backup_lba != last || back.alternate_lba != last || back.header_lba != 1 ||
	    memcmp(back.disk_guid, t->disk_guid, 16) ||
	    back.first_usable_lba != t->first_usable_lba)
		finding("relocated header fields wrong");
out:
	free(tg.d);
}

static void relocate_all(const struct part_table *t, const uint8_t *d, size_t n)
{
	uint64_t min = part_min_disk_size(t), ss = t->sector_size;
	if (min == UINT64_MAX)
		return;
	relocate_one(t, d, n, min);
	if (min >= ss)
		relocate_one(t, d, n, min - 1);
	relocate_one(t, d, n, min + 3 * ss + 100);
	relocate_one(t, d, n, (min > n ? min : n) + (1u << 20));
}

/* ------------------------------------------------------------ driver */

/* An MBR that is not odd fits a disk of its minimum size (the extended container
 * shortened), and reads back there with the same partitions. */
static void fit_mbr(const struct part_table *t, const uint8_t *d, size_t n)
{
	uint64_t min = part_min_disk_size(t);
	if (n < 512 || min < 512 || min > n)
		return;
	uint8_t *c = malloc((size_t)min);
	if (!c)
		return;
	memcpy(c, d, (size_t)min);
	int rc = mbr_fit_extended(t, c, min);
	if (rc < 0 && rc != -EINVAL)
		finding("mbr_fit_extended to the minimum size %llu returned %d", (unsigned long long)min, rc);
	if (rc == 1) {
		static struct part_table back;
		struct imago_err err;
		memset(&err, 0, sizeof(err));
		struct region r = region_mem(c, (size_t)min, "fitted");
		if (part_read(&r, t->sector_size, &back, &err) < 0 || back.scheme != PART_MBR)
			finding("the fitted MBR does not read back: %s", err.msg);
		size_t a = 0, b = 0;
		for (size_t i = 0; i < t->n_entries; i++)
			a += !(t->entries[i].flags & PART_EXTENDED);
		for (size_t i = 0; i < back.n_entries; i++)
			b += !(back.entries[i].flags & PART_EXTENDED);
		if (a != b || part_table_is_odd(&back))
			finding("the fitted MBR reads back with %zu partitions instead of %zu%s", b, a,
				part_table_is_odd(&back) ? " (odd)" : "");
	}
	free(c);
}

static void run_one(const uint8_t *d, size_t n)
{
	static const uint32_t sizes[] = { 0, 512, 4096 };
	static struct part_table t;
	struct imago_err err;
	struct region r = region_mem(d, n, "fuzz");

	for (int k = 0; k < 3; k++) {
		memset(&err, 0, sizeof(err));
		err.code = 1;
		int rc = part_read(&r, sizes[k], &t, &err);
		if (getenv("IMAGO_FUZZ_VERBOSE"))
			fprintf(stderr, "fuzz_part: %zu bytes, ss %u: rc %d scheme %d, %zu parts, "
				"flags 0x%x%s%s\n", n, sizes[k], rc, (int)t.scheme, t.n_entries,
				t.flags, rc ? ": " : "", rc ? err.msg : "");
		if (rc < 0) {
			if (err.code != rc || !memchr(err.msg, '\0', sizeof(err.msg)) || !err.msg[0])
				finding("part_read returned %d with err.code %d", rc, err.code);
			if (rc != -EBADMSG && rc != -E2BIG && rc != -EIO)
				finding("part_read returned %d", rc);
			if (t.scheme != PART_NONE || t.n_entries)
				finding("failed part_read left a table");
			continue;
		}
		if (rc != 0)
			finding("part_read returned %d", rc);
		check_table(&t, n, sizes[k]);
		if (k == 0 && t.scheme == PART_GPT && !part_table_is_odd(&t))
			relocate_all(&t, d, n);
		if (t.scheme == PART_MBR && !part_table_is_odd(&t))
			fit_mbr(&t, d, n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run_one(data, size);
	if (size == 0 || size > FIX_INPUT_MAX)
		return 0;
	uint8_t *fixed = malloc(size);
	if (!fixed)
		return 0;
	memcpy(fixed, data, size);
	fix_crcs(fixed, size);
	if (memcmp(fixed, data, size) != 0)
		run_one(fixed, size);
	free(fixed);
	return 0;
}
