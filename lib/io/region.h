/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * A region: a byte range of a file, a block device or a memory buffer, read with
 * positional reads relative to its start. Partition-table and filesystem parsers read
 * everything through a region, so the same parser runs on a whole disk, a partition
 * inside a disk image, a partition device, or a fuzzer's buffer.
 *
 * Reads past the end of the region are short (never an error); a region never reads
 * outside [base, base + size) of its file.
 */
#ifndef IMAGO_IO_REGION_H
#define IMAGO_IO_REGION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct region {
	int fd;                 /* -1 for a memory or callback region */
	const uint8_t *mem;     /* memory region data, or NULL */
	/* callback region (e.g. the logical device inside an image): reads up to len bytes at
	 * absolute offset off; returns bytes read or -errno. NULL otherwise. */
	ssize_t (*read)(void *opaque, void *buf, size_t len, uint64_t off);
	void *opaque;
	uint64_t base;          /* offset of the region in fd (or mem) */
	uint64_t size;          /* bytes in the region */
	const char *name;       /* for messages: path of the file or device */
};

/* A region over [base, base + size) of fd. */
struct region region_fd(int fd, uint64_t base, uint64_t size, const char *name);
/* A region over a buffer (fuzzing, tests). */
struct region region_mem(const void *buf, size_t size, const char *name);
/* A region read through a callback. */
struct region region_cb(ssize_t (*read)(void *opaque, void *buf, size_t len, uint64_t off),
			void *opaque, uint64_t size, const char *name);
/* The sub-region [off, off + len) of r, clipped to r. */
struct region region_sub(const struct region *r, uint64_t off, uint64_t len);

/* Read up to len bytes at off (relative to the region). Returns bytes read: len, or fewer
 * when the region (or file) ends first; -errno on an I/O error. */
ssize_t region_pread(const struct region *r, void *buf, size_t len, uint64_t off);

/* Read exactly len bytes at off: 0, -EIO on an I/O error, -EBADMSG if the region ends
 * first (a structure that claims to lie past the end is damaged). */
int region_read_exact(const struct region *r, void *buf, size_t len, uint64_t off);

#endif
