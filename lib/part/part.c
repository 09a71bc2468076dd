// SPDX-License-Identifier: GPL-3.0-or-later
/* Placeholder until the partition-table readers land: finds no table. */
#include "part/part.h"

#include <errno.h>
#include <string.h>

int part_read(const struct region *disk, uint32_t sector_size, struct part_table *t,
	      struct imago_err *err)
{
	(void)sector_size; (void)err;
	memset(t, 0, sizeof(*t));
	t->disk_size = disk->size;
	t->sector_size = 512;
	return 0;
}

int part_table_is_odd(const struct part_table *t)
{
	return (t->flags & (PART_OVERLAP | PART_BEYOND_END)) != 0;
}

uint64_t part_min_disk_size(const struct part_table *t)
{
	(void)t;
	return 0;
}

int gpt_relocate(const struct part_table *t, const uint8_t *head, size_t head_len,
		 uint64_t new_size,
		 int (*write)(void *opaque, const void *buf, size_t len, uint64_t offset),
		 void *opaque, struct imago_err *err)
{
	(void)t; (void)head; (void)head_len; (void)new_size; (void)write; (void)opaque; (void)err;
	return -EOPNOTSUPP;
}
