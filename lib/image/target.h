/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The restore target: device bytes written to a file or a block device, by one thread,
 * in device order. Direct I/O where the target takes it, holes for zero blocks where the
 * target reads as zeros already. See target.c for why.
 */
#ifndef IMAGO_IMAGE_TARGET_H
#define IMAGO_IMAGE_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct target {
	int fd;
	bool sparse;        /* reads as zeros already: zero blocks are skipped (holes) */
	bool blockdev;
	bool direct_ok;     /* direct I/O may be used (cleared for good once refused) */
	bool direct;        /* O_DIRECT is set on fd now */
	int orig_flags;     /* fd's status flags before, to put back; -1 if not changed */
	uint32_t align;     /* offset and length granularity of direct I/O */
	uint32_t mem_align; /* buffer address alignment of direct I/O */
	uint8_t *zeros;     /* zeros_len zero bytes, for targets without a zeroing call */
	size_t zeros_len;
};

/* Buffers passed to target_write are best aligned to this (pipeline buffers are). */
#define TARGET_BUF_ALIGN 4096u

/* Set up writing to fd (flags: enum imago_restore_flags); max_write bounds the length
 * of target_zero's fallback writes. Turns O_DIRECT on where the target supports it.
 * 0 or -ENOMEM. */
int target_open(struct target *t, int fd, unsigned flags, size_t max_write);
/* Write len device bytes from buf at device offset off. On a sparse target, zero 4 KiB
 * blocks are left as holes. 0 or -errno of the failed write. */
int target_write(struct target *t, const uint8_t *buf, uint64_t off, size_t len);
/* Make len bytes at off read as zeros (nothing to do on a sparse target). 0 or -errno. */
int target_zero(struct target *t, uint64_t off, uint64_t len);
/* Put the fd's flags back (O_DIRECT off) and free; the fd stays open. */
void target_close(struct target *t);

#endif
