// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * A read-only libext2fs I/O manager over a struct region (ext_io.h).
 *
 * Written by hand because libext2fs has no manager for "a byte range of an open file" or
 * for a memory buffer (unix_io opens a path; its offset= option would still need a path and
 * cannot read a fuzzer's buffer). The manager is small: reads go to region_pread, a short
 * read (a block past the end of the region) is zero-filled and reported as
 * EXT2_ET_SHORT_READ as unix_io does, and every write fails with EROFS.
 */
#include "fs/ext_io.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_PREFIX "imago-region:"

struct region_chan {
	const struct region *r;
	int last_errno;               /* last negative errno from region_pread, or 0 */
	struct struct_io_stats stats;
};

void ext_io_name(const struct region *r, char name[EXT_IO_NAME_MAX])
{
	snprintf(name, EXT_IO_NAME_MAX, NAME_PREFIX "%" PRIxPTR, (uintptr_t)r);
}

int ext_io_last_errno(io_channel ch)
{
	if (!ch || ch->manager != &ext_region_io_manager || !ch->private_data)
		return 0;
	return ((struct region_chan *)ch->private_data)->last_errno;
}

/* The region named by name, or NULL when name is not one ext_io_name() wrote. */
static const struct region *name_region(const char *name)
{
	size_t plen = strlen(NAME_PREFIX);
	if (!name || strncmp(name, NAME_PREFIX, plen) != 0)
		return NULL;
	const char *hex = name + plen;
	if (!*hex)
		return NULL;
	uintptr_t v = 0;
	for (const char *p = hex; *p; p++) {
		unsigned d;
		if (*p >= '0' && *p <= '9')
			d = (unsigned)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			d = (unsigned)(*p - 'a' + 10);
		else
			return NULL;
		if (v > (UINTPTR_MAX >> 4))
			return NULL;
		v = (v << 4) | d;
	}
	return (const struct region *)v;
}

static errcode_t rio_open(const char *name, int flags, io_channel *channel)
{
	if (!channel)
		return EXT2_ET_INVALID_ARGUMENT;
	if (flags & IO_FLAG_RW)
		return EROFS;
	const struct region *r = name_region(name);
	if (!r)
		return EXT2_ET_BAD_DEVICE_NAME;

	io_channel ch = calloc(1, sizeof(*ch));
	struct region_chan *rc = calloc(1, sizeof(*rc));
	char *nm = strdup(name);
	if (!ch || !rc || !nm) {
		free(ch);
		free(rc);
		free(nm);
		return EXT2_ET_NO_MEMORY;
	}
	rc->r = r;
	rc->stats.num_fields = 2;
	ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	ch->manager = &ext_region_io_manager;
	ch->name = nm;
	ch->block_size = 1024;
	ch->refcount = 1;
	ch->private_data = rc;
	*channel = ch;
	return 0;
}

static errcode_t rio_close(io_channel ch)
{
	if (!ch || ch->magic != EXT2_ET_MAGIC_IO_CHANNEL)
		return EXT2_ET_MAGIC_IO_CHANNEL;
	if (--ch->refcount > 0)
		return 0;
	free(ch->private_data);
	free(ch->name);
	free(ch);
	return 0;
}

static errcode_t rio_set_blksize(io_channel ch, int blksize)
{
	if (blksize <= 0)
		return EXT2_ET_INVALID_ARGUMENT;
	ch->block_size = blksize;
	return 0;
}

static errcode_t rio_read_blk64(io_channel ch, unsigned long long block, int count, void *data)
{
	struct region_chan *rc = ch->private_data;
	uint64_t bs = (uint64_t)ch->block_size;
	uint64_t size;

	/* libext2fs convention: a negative count is a byte count. */
	if (count < 0) {
		if (count == INT_MIN)
			return EXT2_ET_INVALID_ARGUMENT;
		size = (uint64_t)-(int64_t)count;
	} else {
		size = (uint64_t)count * bs;
	}
	if (bs == 0 || block > UINT64_MAX / bs || size > SIZE_MAX)
		return EXT2_ET_LLSEEK_FAILED;
	uint64_t off = (uint64_t)block * bs;

	ssize_t n = region_pread(rc->r, data, (size_t)size, off);
	errcode_t ret = 0;
	if (n < 0) {
		rc->last_errno = (int)n;
		ret = (errcode_t)-n;
		n = 0;
	} else if ((uint64_t)n < size) {
		ret = EXT2_ET_SHORT_READ;
	}
	rc->stats.bytes_read += (unsigned long long)n;
	if (ret) {
		memset((uint8_t *)data + n, 0, (size_t)(size - (uint64_t)n));
		if (ch->read_error)
			ret = ch->read_error(ch, (unsigned long)block, count, data, (size_t)size,
					     (int)n, ret);
	}
	return ret;
}

static errcode_t rio_read_blk(io_channel ch, unsigned long block, int count, void *data)
{
	return rio_read_blk64(ch, block, count, data);
}

static errcode_t rio_write_blk(io_channel ch, unsigned long block, int count, const void *data)
{
	(void)ch; (void)block; (void)count; (void)data;
	return EROFS;
}

static errcode_t rio_write_blk64(io_channel ch, unsigned long long block, int count,
				 const void *data)
{
	(void)ch; (void)block; (void)count; (void)data;
	return EROFS;
}

static errcode_t rio_write_byte(io_channel ch, unsigned long offset, int count, const void *data)
{
	(void)ch; (void)offset; (void)count; (void)data;
	return EROFS;
}

static errcode_t rio_discard(io_channel ch, unsigned long long block, unsigned long long count)
{
	(void)ch; (void)block; (void)count;
	return EROFS;
}

static errcode_t rio_flush(io_channel ch)
{
	(void)ch;
	return 0;
}

static errcode_t rio_set_option(io_channel ch, const char *option, const char *arg)
{
	(void)ch; (void)option; (void)arg;
	return EXT2_ET_INVALID_ARGUMENT;
}

static errcode_t rio_get_stats(io_channel ch, io_stats *stats)
{
	if (stats)
		*stats = &((struct region_chan *)ch->private_data)->stats;
	return 0;
}

struct struct_io_manager ext_region_io_manager = {
	.magic = EXT2_ET_MAGIC_IO_MANAGER,
	.name = "imago region I/O manager",
	.open = rio_open,
	.close = rio_close,
	.set_blksize = rio_set_blksize,
	.read_blk = rio_read_blk,
	.write_blk = rio_write_blk,
	.flush = rio_flush,
	.write_byte = rio_write_byte,
	.set_option = rio_set_option,
	.get_stats = rio_get_stats,
	.read_blk64 = rio_read_blk64,
	.write_blk64 = rio_write_blk64,
	.discard = rio_discard,
	.zeroout = rio_discard,
};
