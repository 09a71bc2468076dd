// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * Fitting an MBR to a smaller disk: the extended partition is a container whose entry
 * (in LBA 0) often runs to the end of the original disk, past the last logical
 * partition. Logical partitions and the EBR chain are addressed relative to the
 * container's start, so only the container's length in LBA 0 has to change.
 */
#include <errno.h>
#include <string.h>

#include "part/part.h"
#include "part/part_int.h"

/* CHS of an LBA in the usual 255-head, 63-sector geometry; past cylinder 1023 the
 * "use LBA" marker (1023, 254, 63) that partitioners write. */
static void put_chs(uint8_t *p, uint64_t lba)
{
	uint64_t c = lba / (255 * 63), h = lba / 63 % 255, s = lba % 63 + 1;
	if (c > 1023) {
		c = 1023;
		h = 254;
		s = 63;
	}
	p[0] = (uint8_t)h;
	p[1] = (uint8_t)(s | ((c >> 2) & 0xC0));
	p[2] = (uint8_t)c;
}

int mbr_fit_extended(const struct part_table *t, uint8_t *sector0, uint64_t disk_size)
{
	if (t->scheme != PART_MBR || !t->sector_size)
		return -EINVAL;
	uint64_t ss = t->sector_size, need = 0;
	const struct part_entry *ext = NULL;
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct part_entry *e = &t->entries[i];
		if (e->flags & PART_EXTENDED) {
			ext = e;
			continue;
		}
		if (e->start + e->size > need)
			need = e->start + e->size;
	}
	for (size_t i = 0; i < t->n_areas; i++)
		if (t->areas[i].start + t->areas[i].size > need)
			need = t->areas[i].start + t->areas[i].size;
	if (!ext || ext->start + ext->size <= disk_size)
		return 0;
	if (ext->start + ss > need)
		need = ext->start + ss; /* the container keeps at least its first EBR */
	if (need > disk_size || ext->number < 1 || ext->number > 4 || ext->start % ss)
		return -ENOSPC;
	/* The container ends where the disk does (whole sectors), never before what it
	 * holds. */
	uint64_t end_lba = disk_size / ss, start_lba = ext->start / ss;
	if (end_lba <= start_lba || end_lba - start_lba > 0xFFFFFFFFu)
		return -ENOSPC;
	uint8_t *p = sector0 + MBR_TABLE_OFF + (ext->number - 1) * MBR_ENTRY_SIZE;
	if (part_le32(p + 8) != start_lba || !mbr_is_extended(p[4]))
		return -EINVAL; /* sector0 is not the table t was read from */
	part_put_le32(p + 12, (uint32_t)(end_lba - start_lba));
	put_chs(p + 5, end_lba - 1);
	return 1;
}
