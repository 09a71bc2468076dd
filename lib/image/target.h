/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The restore target: device bytes written to a file or a block device, by one thread,
 * in device order. Direct I/O where the target takes it, several writes in flight at
 * once, holes for zero blocks where the target reads as zeros already. See target.c.
 */
#ifndef IMAGO_IMAGE_TARGET_H
#define IMAGO_IMAGE_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Buffers passed to target_write are best aligned to this (pipeline buffers are). */
#define TARGET_BUF_ALIGN 4096u
/* Writes (calls of target_write with a token) in flight at most, and the bytes they
 * cover together at most (so: four 1 MiB chunks, one 4 MiB chunk, and larger chunks
 * one at a time, synchronously). */
#define TARGET_DEPTH 4u
#define TARGET_INFLIGHT_BYTES (4u << 20)

/* Called (on the writing thread, from within a later target_* call) when every byte of
 * an asynchronous target_write is written or has failed: its buffer is free again. */
typedef void (*target_release_fn)(void *token);

struct target_aio;

struct target {
	int fd;
	bool sparse;        /* reads as zeros already: zero blocks are skipped (holes) */
	bool blockdev;
	bool direct_ok;     /* direct I/O may be used (cleared for good once refused) */
	bool direct;        /* O_DIRECT is set on fd now */
	int orig_flags;     /* fd's status flags before, to put back; -1 if unknown */
	uint32_t align;     /* offset and length granularity of direct I/O */
	uint32_t mem_align; /* buffer address alignment of direct I/O */
	uint8_t *zeros;     /* zeros_len zero bytes, for targets without a zeroing call */
	size_t zeros_len;
	struct target_aio *aio; /* writes in flight; NULL: every write is synchronous */
	int err;            /* first failure (sticky), 0 if none */
	uint64_t err_off;   /* the device offset it happened at */
};

/* Set up writing to fd (flags: enum imago_restore_flags). max_write is the largest
 * length target_write is given (a chunk). release, if not NULL, allows asynchronous
 * writes (see target_write). Turns O_DIRECT on where the target supports it. 0 or
 * -ENOMEM. */
int target_open(struct target *t, int fd, unsigned flags, size_t max_write,
		target_release_fn release);
/* How many asynchronous writes t keeps in flight at most (0: none), for max_write. */
unsigned target_depth(const struct target *t);
/* Write len device bytes from buf at device offset off. On a sparse target, zero 4 KiB
 * blocks are left as holes. With a token (and a release function), the write may stay
 * in flight after the call: then it returns 1, buf must stay untouched until
 * release(token) is called, and at most target_depth() tokens are in flight (the call
 * waits for one to finish first). Pieces of one buffer written by several calls with
 * one token go between target_begin and target_end (below). Returns 0 when everything was written, 1 as
 * said, or the -errno of the first failed write, this one or an earlier one still in
 * flight (t->err_off says where); after a failure, the token may still be held. */
int target_write(struct target *t, const uint8_t *buf, uint64_t off, size_t len, void *token);
/* Several target_write calls with one token (the pieces of one buffer) as one write:
 * between target_begin and target_end nothing of the token is released, however early
 * its pieces finish. target_end returns 1 when some of them are still in flight (then
 * release(token) comes once, later, after the last), 0 when all are done (no release
 * comes), or the -errno of the first failure. A failed target_begin (-errno of an
 * earlier failure) still needs no target_end. Without asynchronous writes both do
 * nothing. */
int target_begin(struct target *t, void *token);
int target_end(struct target *t, void *token);
/* Make len bytes at off read as zeros (nothing to do on a sparse target). 0 or -errno
 * (t->err_off says where). */
int target_zero(struct target *t, uint64_t off, uint64_t len);
/* Wait until nothing is in flight (every token released). 0 or the first failure. */
int target_flush(struct target *t);
/* Flush, put the fd's flags back (O_DIRECT off) and free; the fd stays open. */
void target_close(struct target *t);

#endif
