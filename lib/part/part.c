// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * part_read(): which partition table a disk holds, and the checks common to every scheme
 * (partitions past the end, overlapping each other or the table).
 *
 * Written by hand rather than with libfdisk/libblkid: both want a device or file path
 * (not a struct region, so not a partition inside an image or a fuzzer's buffer), and
 * neither reports the byte ranges the table occupies or keeps the raw GUIDs, attributes
 * and both GPT copies' state that imaging and relocation need.
 */
#include "part/part.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "part/part_int.h"
#include "util/err.h"

void part_warn(struct part_table *t, const char *fmt, ...)
{
	if (t->n_warnings >= PART_MAX_WARNINGS)
		return;
	char *w = t->warnings[t->n_warnings];
	if (t->n_warnings == PART_MAX_WARNINGS - 1) {
		snprintf(w, sizeof(t->warnings[0]), "more warnings left out");
	} else {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w, sizeof(t->warnings[0]), fmt, ap);
		va_end(ap);
	}
	t->n_warnings++;
}

int part_add_area(struct part_table *t, uint64_t start, uint64_t size, const char *what,
		  struct imago_err *err)
{
	if (start >= t->disk_size || size == 0)
		return 0;
	if (size > t->disk_size - start)
		size = t->disk_size - start;
	if (t->n_areas >= PART_MAX_AREAS)
		return err_set(err, -E2BIG, -1, (int64_t)start, -1,
			       "partition table: more than %d table areas (at byte %" PRIu64 ")",
			       PART_MAX_AREAS, start);
	t->areas[t->n_areas++] = (struct part_area){ .start = start, .size = size, .what = what };
	return 0;
}

int part_add_entry(struct part_table *t, const struct part_entry *e, struct imago_err *err)
{
	if (t->n_entries >= PART_MAX_ENTRIES)
		return err_set(err, -E2BIG, -1, (int64_t)e->start, -1,
			       "partition table: more than %d partitions (partition %u at byte "
			       "%" PRIu64 ")", PART_MAX_ENTRIES, e->number, e->start);
	t->entries[t->n_entries++] = *e;
	return 0;
}

/* End of [start, start + size), saturated (sizes come from disk data). */
static uint64_t end_of(uint64_t start, uint64_t size)
{
	return size > UINT64_MAX - start ? UINT64_MAX : start + size;
}

static int overlaps(uint64_t a, uint64_t an, uint64_t b, uint64_t bn)
{
	return an && bn && a < end_of(b, bn) && b < end_of(a, an);
}

static void sort_entries(struct part_table *t)
{
	/* Insertion sort: at most PART_MAX_ENTRIES, and nearly always in order already. */
	for (size_t i = 1; i < t->n_entries; i++) {
		struct part_entry e = t->entries[i];
		size_t j = i;
		while (j > 0 && t->entries[j - 1].number > e.number) {
			t->entries[j] = t->entries[j - 1];
			j--;
		}
		t->entries[j] = e;
	}
}

static void sort_areas(struct part_table *t)
{
	for (size_t i = 1; i < t->n_areas; i++) {
		struct part_area a = t->areas[i];
		size_t j = i;
		while (j > 0 && t->areas[j - 1].start > a.start) {
			t->areas[j] = t->areas[j - 1];
			j--;
		}
		t->areas[j] = a;
	}
}

void part_finish(struct part_table *t)
{
	sort_entries(t);
	sort_areas(t);

	for (size_t i = 0; i < t->n_entries; i++) {
		const struct part_entry *e = &t->entries[i];
		if (end_of(e->start, e->size) > t->disk_size) {
			t->flags |= PART_BEYOND_END;
			part_warn(t, "partition %u (bytes %" PRIu64 "..%" PRIu64 ") ends past the "
				  "end of the disk (%" PRIu64 " bytes)", e->number, e->start,
				  end_of(e->start, e->size), t->disk_size);
		}
	}

	/* Partitions against each other. An extended partition holds its logical
	 * partitions by design; anything else sharing bytes is an overlap. */
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct part_entry *a = &t->entries[i];
		for (size_t j = i + 1; j < t->n_entries; j++) {
			const struct part_entry *b = &t->entries[j];
			if (((a->flags & PART_EXTENDED) && (b->flags & PART_LOGICAL)) ||
			    ((b->flags & PART_EXTENDED) && (a->flags & PART_LOGICAL)))
				continue;
			if (!overlaps(a->start, a->size, b->start, b->size))
				continue;
			t->flags |= PART_OVERLAP;
			part_warn(t, "partitions %u (bytes %" PRIu64 "+%" PRIu64 ") and %u (bytes %"
				  PRIu64 "+%" PRIu64 ") overlap", a->number, a->start, a->size,
				  b->number, b->start, b->size);
		}
	}

	/* Partitions against the table itself (an extended partition holds its EBRs). */
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct part_entry *e = &t->entries[i];
		for (size_t k = 0; k < t->n_areas; k++) {
			const struct part_area *a = &t->areas[k];
			if ((e->flags & PART_EXTENDED) && strcmp(a->what, "EBR") == 0)
				continue;
			if (!overlaps(e->start, e->size, a->start, a->size))
				continue;
			t->flags |= PART_OVERLAP;
			part_warn(t, "partition %u (bytes %" PRIu64 "+%" PRIu64 ") overlaps the %s "
				  "at bytes %" PRIu64 "+%" PRIu64, e->number, e->start, e->size,
				  a->what, a->start, a->size);
		}
	}
}

static void reset(struct part_table *t, const struct region *disk, uint32_t ss)
{
	memset(t, 0, sizeof(*t));
	t->disk_size = disk->size;
	t->sector_size = ss;
}

int part_read(const struct region *disk, uint32_t sector_size, struct part_table *t,
	      struct imago_err *err)
{
	if (!disk || !t)
		return err_set(err, -EINVAL, -1, -1, -1, "part_read: no disk or table");
	if (sector_size && (sector_size < 512 || sector_size > 4096 ||
			    (sector_size & (sector_size - 1))))
		return err_set(err, -EINVAL, -1, -1, -1,
			       "part_read: sector size %u is not a power of two from 512 to 4096",
			       sector_size);
	reset(t, disk, sector_size ? sector_size : 512);
	if (disk->size < MBR_SIZE)
		return 0;

	uint8_t s0[MBR_SIZE];
	int rc = region_read_exact(disk, s0, sizeof(s0), 0);
	if (rc < 0)
		return err_set(err, rc == -EBADMSG ? -EIO : rc, -1, 0, -1,
			       "%s: cannot read sector 0", disk->name ? disk->name : "disk");

	int sig = mbr_has_signature(s0), has_ee = 0, has_other = 0, boot_ok = 1;
	for (int i = 0; i < 4 && sig; i++) {
		const uint8_t *p = s0 + MBR_TABLE_OFF + i * MBR_ENTRY_SIZE;
		if (p[0] != 0 && p[0] != 0x80)
			boot_ok = 0;
		if (part_le32(p + 12) == 0)
			continue;
		if (p[4] == MBR_TYPE_GPT)
			has_ee = 1;
		else
			has_other = 1;
	}
	const char *fs = sig ? part_fs_boot_sector(s0) : NULL;
	int mbr_ok = sig && boot_ok && !fs;

	/* GPT: announced by a 0xEE entry, or found without one when sector 0 holds no
	 * usable MBR and no filesystem. Without a 0xEE entry only a sound primary counts: a
	 * lone backup or a damaged GPT is what wiping the start of a disk leaves behind. */
	int stale = 0;
	if (has_ee || (!fs && !(mbr_ok && has_other))) {
		static const uint32_t tries[] = { 512, 4096 };
		size_t n_tries = sector_size ? 1 : 2;
		int gpt_err = 0;
		uint64_t stale_lba = 0;
		struct imago_err e1;
		err_clear(&e1);
		for (size_t k = 0; k < n_tries; k++) {
			uint32_t ss = sector_size ? sector_size : tries[k];
			struct imago_err e;
			reset(t, disk, ss);
			rc = gpt_read(disk, ss, s0, t, &e);
			if (rc == 1 && !has_ee && (t->flags & PART_GPT_BACKUP_USED)) {
				stale = 1;
				stale_lba = t->header_lba;
				continue;
			}
			if (rc == 1) {
				if (!has_ee)
					part_warn(t, "GPT without a protective MBR (no 0xEE entry in "
						  "sector 0)");
				part_finish(t);
				return 0;
			}
			if (rc < 0 && !gpt_err) {
				gpt_err = rc;
				e1 = e;
			}
		}
		reset(t, disk, sector_size ? sector_size : 512);
		if (has_ee && gpt_err) {
			err_copy(err, &e1);
			return gpt_err;
		}
		if (has_ee && !fs)
			return err_set(err, -EBADMSG, -1, 0, -1,
				       "%s: sector 0 is a protective MBR (0xEE entry) but there is "
				       "no GPT header at LBA 1 or at the last LBA",
				       disk->name ? disk->name : "disk");
		if (stale)
			part_warn(t, "a backup GPT header at LBA %" PRIu64 " with neither a primary "
				  "nor a protective MBR was ignored (left over)", stale_lba);
		else if (gpt_err)
			part_warn(t, "a damaged GPT without a protective MBR was ignored: %s", e1.msg);
		stale |= gpt_err != 0;
	}
	if (fs || !mbr_ok)
		return 0;

	rc = mbr_read(disk, t->sector_size, s0, t, err);
	if (rc < 0) {
		uint32_t ss = t->sector_size;
		reset(t, disk, ss);
		return rc;
	}
	if (!stale && gpt_signature_seen(disk, t->sector_size))
		part_warn(t, "a GPT header is still on the disk but sector 0 is an MBR without "
			  "a 0xEE entry: the GPT is stale and was ignored");
	part_finish(t);
	return 0;
}

int part_table_is_odd(const struct part_table *t)
{
	return (t->flags & (PART_OVERLAP | PART_BEYOND_END | PART_ENTRY_IGNORED)) != 0;
}

uint64_t part_min_disk_size(const struct part_table *t)
{
	uint64_t end = 0;

	if (t->scheme == PART_MBR) {
		/* Of the extended container only its first sector (the first EBR) counts: a
		 * restore or clone shortens it to the disk (mbr_fit_extended); what it holds
		 * counts. */
		for (size_t i = 0; i < t->n_entries; i++) {
			const struct part_entry *p = &t->entries[i];
			uint64_t e = end_of(p->start, (p->flags & PART_EXTENDED) && p->size > t->sector_size
								 ? t->sector_size : p->size);
			if (e > end)
				end = e;
		}
		for (size_t i = 0; i < t->n_areas; i++) {
			uint64_t e = end_of(t->areas[i].start, t->areas[i].size);
			if (e > end)
				end = e;
		}
		return end;
	}
	if (t->scheme != PART_GPT || t->sector_size == 0)
		return 0;

	/* The last LBA that must stay usable: the last partition's last LBA, at least the
	 * first usable LBA; after it the backup entries and the backup header. */
	uint64_t ss = t->sector_size, last = t->first_usable_lba;
	for (size_t i = 0; i < t->n_entries; i++) {
		uint64_t e = end_of(t->entries[i].start, t->entries[i].size);
		uint64_t l = e / ss + (e % ss != 0) - 1; /* the partition's last LBA */
		if (t->entries[i].size && l > last)
			last = l;
	}
	uint64_t array = (uint64_t)t->n_gpt_entries * t->gpt_entry_size;
	uint64_t array_lbas = (array + ss - 1) / ss;
	uint64_t lbas = last + array_lbas + 2;
	if (lbas < last || lbas > UINT64_MAX / ss)
		return UINT64_MAX;
	return lbas * ss;
}
