// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * Several stream digests (MD5, SHA-1, SHA-256) of one byte stream, each on its own
 * thread, fed without copying: the caller hands over a buffer, gets a ticket, and keeps
 * the buffer unchanged until imago_mhash_wait(ticket) returns. The slowest digest (MD5,
 * which cannot be parallelised) then sets the pace, not the sum of the three.
 *
 * The digests themselves are OpenSSL's (libcrypto EVP); only the fan-out is ours.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "imago.h"

/* Pieces queued at once; the create pipeline has at most 2 × 256 + 2 jobs in flight. */
#define MH_QUEUE 1024u

struct mh_piece {
	const uint8_t *buf;
	size_t len;
};

struct mh_lane {
	struct imago_mhash *h;
	unsigned alg;
	EVP_MD_CTX *md;
	uint64_t done;           /* pieces hashed */
	pthread_t thread;
	bool started;
};

struct imago_mhash {
	pthread_mutex_t lock;
	pthread_cond_t more;     /* a piece was queued, or stop */
	pthread_cond_t done;     /* a lane finished a piece */
	struct mh_piece q[MH_QUEUE];
	uint64_t fed;            /* pieces queued so far; piece t lives in q[t % MH_QUEUE] */
	uint64_t bytes;
	bool stop, finished;
	unsigned nlanes;
	struct mh_lane lanes[3];
	uint8_t out[3][EVP_MAX_MD_SIZE];
	unsigned outlen[3];
};

static const unsigned alg_bits[3] = { IMAGO_HASH_MD5, IMAGO_HASH_SHA1, IMAGO_HASH_SHA256 };

const char *imago_hash_name(unsigned alg)
{
	switch (alg) {
	case IMAGO_HASH_MD5: return "md5";
	case IMAGO_HASH_SHA1: return "sha1";
	case IMAGO_HASH_SHA256: return "sha256";
	default: return NULL;
	}
}

static const EVP_MD *alg_md(unsigned alg)
{
	switch (alg) {
	case IMAGO_HASH_MD5: return EVP_md5();
	case IMAGO_HASH_SHA1: return EVP_sha1();
	default: return EVP_sha256();
	}
}

static uint64_t min_done(const struct imago_mhash *h)
{
	uint64_t m = UINT64_MAX;
	for (unsigned i = 0; i < h->nlanes; i++)
		if (h->lanes[i].done < m)
			m = h->lanes[i].done;
	return h->nlanes ? m : h->fed;
}

static void *lane_main(void *arg)
{
	struct mh_lane *l = arg;
	struct imago_mhash *h = l->h;
	pthread_mutex_lock(&h->lock);
	for (;;) {
		while (!h->stop && l->done == h->fed)
			pthread_cond_wait(&h->more, &h->lock);
		if (l->done == h->fed)
			break; /* stop, and nothing left */
		struct mh_piece p = h->q[l->done % MH_QUEUE];
		pthread_mutex_unlock(&h->lock);
		/* EVP_DigestUpdate of MD5/SHA only fails on a broken context: never here. */
		EVP_DigestUpdate(l->md, p.buf, p.len);
		pthread_mutex_lock(&h->lock);
		l->done++;
		pthread_cond_broadcast(&h->done);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

void imago_mhash_free(imago_mhash *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_cond_broadcast(&h->more);
	pthread_mutex_unlock(&h->lock);
	for (unsigned i = 0; i < h->nlanes; i++) {
		if (h->lanes[i].started)
			pthread_join(h->lanes[i].thread, NULL);
		EVP_MD_CTX_free(h->lanes[i].md);
	}
	pthread_cond_destroy(&h->more);
	pthread_cond_destroy(&h->done);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

int imago_mhash_new(unsigned algs, imago_mhash **out)
{
	*out = NULL;
	if (!algs || (algs & ~(unsigned)IMAGO_HASH_ALL))
		return -EINVAL;
	struct imago_mhash *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->more, NULL);
	pthread_cond_init(&h->done, NULL);
	int r = 0;
	for (unsigned i = 0; i < 3; i++) {
		if (!(algs & alg_bits[i]))
			continue;
		struct mh_lane *l = &h->lanes[h->nlanes++];
		l->h = h;
		l->alg = alg_bits[i];
		if (!(l->md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(l->md, alg_md(l->alg), NULL)) {
			r = -ENOMEM;
			break;
		}
		if (pthread_create(&l->thread, NULL, lane_main, l) != 0) {
			r = -EAGAIN;
			break;
		}
		l->started = true;
	}
	if (r < 0) {
		imago_mhash_free(h);
		return r;
	}
	*out = h;
	return 0;
}

unsigned imago_mhash_algs(const imago_mhash *h)
{
	unsigned a = 0;
	for (unsigned i = 0; i < h->nlanes; i++)
		a |= h->lanes[i].alg;
	return a;
}

int64_t imago_mhash_feed(imago_mhash *h, const void *buf, size_t len)
{
	pthread_mutex_lock(&h->lock);
	if (h->finished) {
		pthread_mutex_unlock(&h->lock);
		return -EINVAL;
	}
	/* Bounded queue: wait for the slowest lane to free a slot. */
	while (h->fed - min_done(h) >= MH_QUEUE)
		pthread_cond_wait(&h->done, &h->lock);
	uint64_t t = h->fed;
	h->q[t % MH_QUEUE] = (struct mh_piece){ .buf = buf, .len = len };
	h->fed++;
	h->bytes += len;
	pthread_cond_broadcast(&h->more);
	pthread_mutex_unlock(&h->lock);
	return (int64_t)t;
}

void imago_mhash_wait(imago_mhash *h, uint64_t ticket)
{
	pthread_mutex_lock(&h->lock);
	while (min_done(h) <= ticket && ticket < h->fed)
		pthread_cond_wait(&h->done, &h->lock);
	pthread_mutex_unlock(&h->lock);
}

void imago_mhash_drain(imago_mhash *h)
{
	pthread_mutex_lock(&h->lock);
	while (min_done(h) < h->fed)
		pthread_cond_wait(&h->done, &h->lock);
	pthread_mutex_unlock(&h->lock);
}

uint64_t imago_mhash_bytes(const imago_mhash *h)
{
	return h->bytes;
}

int imago_mhash_final(imago_mhash *h, struct imago_hashes *out)
{
	imago_mhash_drain(h);
	pthread_mutex_lock(&h->lock);
	if (!h->finished) {
		for (unsigned i = 0; i < h->nlanes; i++)
			if (!EVP_DigestFinal_ex(h->lanes[i].md, h->out[i], &h->outlen[i])) {
				pthread_mutex_unlock(&h->lock);
				return -ENOMEM;
			}
		h->finished = true;
	}
	pthread_mutex_unlock(&h->lock);
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < h->nlanes; i++) {
		char *hex = h->lanes[i].alg == IMAGO_HASH_MD5 ? out->md5
			    : h->lanes[i].alg == IMAGO_HASH_SHA1 ? out->sha1 : out->sha256;
		for (unsigned k = 0; k < h->outlen[i]; k++)
			snprintf(hex + 2 * k, 3, "%02x", h->out[i][k]);
		out->algs |= h->lanes[i].alg;
	}
	out->bytes = h->bytes;
	return 0;
}

const char *imago_hashes_get(const struct imago_hashes *hs, unsigned alg)
{
	if (!(hs->algs & alg))
		return NULL;
	switch (alg) {
	case IMAGO_HASH_MD5: return hs->md5;
	case IMAGO_HASH_SHA1: return hs->sha1;
	case IMAGO_HASH_SHA256: return hs->sha256;
	default: return NULL;
	}
}
