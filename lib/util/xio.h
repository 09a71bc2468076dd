/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Whole-buffer I/O that retries short transfers and EINTR. */
#ifndef IMAGO_UTIL_XIO_H
#define IMAGO_UTIL_XIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Read up to len bytes; returns bytes read (< len only at EOF) or -errno. */
ssize_t xread_full(int fd, void *buf, size_t len);
/* Positional variant. */
ssize_t xpread_full(int fd, void *buf, size_t len, uint64_t off);
/* Write all len bytes or return -errno (a zero-length write is reported as -EIO). */
int xwrite_full(int fd, const void *buf, size_t len);
int xpwrite_full(int fd, const void *buf, size_t len, uint64_t off);

#endif
