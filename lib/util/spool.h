/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * An append-only byte spool: kept in memory up to a limit, then spilled to an unlinked
 * temporary file. The image writer collects its index and extent map here so that its
 * memory does not grow with the size of the device (a 20 TB disk has 20 million chunks).
 */
#ifndef IMAGO_UTIL_SPOOL_H
#define IMAGO_UTIL_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct spool {
	uint8_t *buf;
	size_t len, cap, mem_limit;
	int fd;            /* -1 until spilled */
	uint64_t spilled;  /* bytes in the file */
};

void spool_init(struct spool *s, size_t mem_limit);
void spool_free(struct spool *s);
uint64_t spool_size(const struct spool *s);
/* 0 or -errno (-ENOMEM, or the temporary file's write error). */
int spool_append(struct spool *s, const void *data, size_t len);
/* Call fn on the spooled bytes in order, in pieces; stops at a nonzero return. */
int spool_replay(struct spool *s, int (*fn)(void *opaque, const uint8_t *p, size_t len), void *opaque);

#endif
