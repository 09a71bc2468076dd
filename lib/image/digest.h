/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The content digest of docs/FORMAT.md §7: SHA-256 over the list of SHA-256 hashes of
 * fixed 64 KiB leaves. Leaves are hashed by the parallel workers (digest_leaves); the
 * ordered consumer feeds them to the accumulator (digest_acc_*), which also knows how to
 * add runs of zero leaves without hashing zeros.
 */
#ifndef IMAGO_IMAGE_DIGEST_H
#define IMAGO_IMAGE_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "imago.h"

#define DIGEST_LEAF_HASH 32

struct digest_acc {
	void *md;              /* EVP_MD_CTX */
	uint64_t device_size;
	uint64_t pos;          /* device bytes accounted for so far */
	/* Optional (NULL after init): called now and then inside a long run of zeros with
	 * the device position reached; nonzero cancels (-ECANCELED). An image may claim a
	 * device of up to 2^62 bytes that is all FREE, and hashing 32 bytes per 64 KiB of
	 * it takes days: the run must stay interruptible. */
	int (*tick)(void *opaque, uint64_t pos);
	void *tick_opaque;
};

/* Number of leaf hashes covering len bytes. */
static inline size_t digest_leaf_count(uint64_t len)
{
	return (size_t)((len + 65535) / 65536);
}

/* Hash every 64 KiB leaf of buf (len bytes; only the last leaf may be short) into out
 * (digest_leaf_count(len) * 32 bytes). Leaves that are all zeros cost a compare, not a
 * hash. Thread-safe. 0 or -ENOMEM. */
int digest_leaves(const void *buf, size_t len, uint8_t *out);

int digest_acc_init(struct digest_acc *a, uint64_t device_size);
void digest_acc_free(struct digest_acc *a);
/* Feed the leaves of the next len device bytes (len a multiple of 64 KiB unless it
 * reaches the device end). */
int digest_acc_leaves(struct digest_acc *a, const uint8_t *leaves, uint64_t len);
/* Feed len device bytes of zeros (same alignment rule); -ECANCELED when tick says so. */
int digest_acc_zeros(struct digest_acc *a, uint64_t len);
/* Finish; -EINVAL unless exactly device_size bytes were fed. */
int digest_acc_final(struct digest_acc *a, uint8_t out[IMAGO_DIGEST_LEN]);

#endif
