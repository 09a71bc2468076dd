/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/evp.h>

#include "image/digest.h"
#include "image/format.h"
#include "util/zero.h"

static const char tree_tag[] = "imago-sha256-tree-v1";

#define ZERO_BATCH 256

static const uint8_t zeros64k[FMT_LEAF_SIZE];
/* ZERO_BATCH copies of the hash of a full zero leaf: runs of zeros are fed from here. */
static uint8_t zero_batch[ZERO_BATCH * DIGEST_LEAF_HASH];
static pthread_once_t zero_once = PTHREAD_ONCE_INIT;

static void zero_init(void)
{
	unsigned int n = 0;
	EVP_Digest(zeros64k, FMT_LEAF_SIZE, zero_batch, &n, EVP_sha256(), NULL);
	for (int i = 1; i < ZERO_BATCH; i++)
		memcpy(zero_batch + i * DIGEST_LEAF_HASH, zero_batch, DIGEST_LEAF_HASH);
}

int digest_leaves(const void *buf, size_t len, uint8_t *out)
{
	pthread_once(&zero_once, zero_init);
	const uint8_t *p = buf;
	EVP_MD_CTX *ctx = NULL;
	for (size_t off = 0; off < len; off += FMT_LEAF_SIZE, out += DIGEST_LEAF_HASH) {
		size_t n = len - off < FMT_LEAF_SIZE ? len - off : FMT_LEAF_SIZE;
		if (n == FMT_LEAF_SIZE && buf_is_zero(p + off, n)) {
			memcpy(out, zero_batch, DIGEST_LEAF_HASH);
			continue;
		}
		if (!ctx && !(ctx = EVP_MD_CTX_new()))
			return -ENOMEM;
		unsigned int hl = 0;
		if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
		    !EVP_DigestUpdate(ctx, p + off, n) || !EVP_DigestFinal_ex(ctx, out, &hl)) {
			EVP_MD_CTX_free(ctx);
			return -ENOMEM;
		}
	}
	EVP_MD_CTX_free(ctx);
	return 0;
}

int digest_acc_init(struct digest_acc *a, uint64_t device_size)
{
	pthread_once(&zero_once, zero_init);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md)
		return -ENOMEM;
	uint8_t size_le[8];
	put_le64(size_le, device_size);
	if (!EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(md, tree_tag, sizeof(tree_tag) - 1) ||
	    !EVP_DigestUpdate(md, size_le, 8)) {
		EVP_MD_CTX_free(md);
		return -ENOMEM;
	}
	a->md = md;
	a->device_size = device_size;
	a->pos = 0;
	a->tick = NULL;
	a->tick_opaque = NULL;
	return 0;
}

void digest_acc_free(struct digest_acc *a)
{
	EVP_MD_CTX_free(a->md);
	a->md = NULL;
}

static int check_span(const struct digest_acc *a, uint64_t len)
{
	if (len > a->device_size - a->pos)
		return -EINVAL;
	if (a->pos + len != a->device_size && len % FMT_LEAF_SIZE)
		return -EINVAL;
	return 0;
}

int digest_acc_leaves(struct digest_acc *a, const uint8_t *leaves, uint64_t len)
{
	if (check_span(a, len))
		return -EINVAL;
	if (!EVP_DigestUpdate(a->md, leaves, digest_leaf_count(len) * DIGEST_LEAF_HASH))
		return -ENOMEM;
	a->pos += len;
	return 0;
}

int digest_acc_zeros(struct digest_acc *a, uint64_t len)
{
	if (check_span(a, len))
		return -EINVAL;
	uint64_t full = len / FMT_LEAF_SIZE, done = 0;
	/* Runs of zeros never hash zeros: they feed the precomputed leaf hash, in batches.
	 * Every 4096 batches (64 GiB of device, 32 MiB hashed) the tick may cancel. */
	for (unsigned batches = 1; full; batches++) {
		uint64_t n = full < ZERO_BATCH ? full : ZERO_BATCH;
		if (!EVP_DigestUpdate(a->md, zero_batch, (size_t)n * DIGEST_LEAF_HASH))
			return -ENOMEM;
		full -= n;
		done += n;
		if (a->tick && batches % 4096 == 0 &&
		    a->tick(a->tick_opaque, a->pos + done * FMT_LEAF_SIZE))
			return -ECANCELED;
	}
	uint64_t rest = len % FMT_LEAF_SIZE;
	if (rest) {
		uint8_t h[DIGEST_LEAF_HASH];
		unsigned int hl = 0;
		if (!EVP_Digest(zeros64k, (size_t)rest, h, &hl, EVP_sha256(), NULL) ||
		    !EVP_DigestUpdate(a->md, h, sizeof(h)))
			return -ENOMEM;
	}
	a->pos += len;
	return 0;
}

int digest_acc_final(struct digest_acc *a, uint8_t out[IMAGO_DIGEST_LEN])
{
	if (a->pos != a->device_size)
		return -EINVAL;
	unsigned int hl = 0;
	if (!EVP_DigestFinal_ex(a->md, out, &hl))
		return -ENOMEM;
	return 0;
}
