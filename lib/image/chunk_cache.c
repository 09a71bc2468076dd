/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The chunk cache behind imago_image_pread (see chunk_cache.h).
 *
 * Slots hold decoded chunks. A slot is EMPTY, LOADING (one thread decodes into it; others
 * wanting that chunk wait on `cv`), or READY. A reader pins the slot it copies from
 * (refs), so eviction (least recently used READY slot with no pins) never pulls data from
 * under a memcpy. A chunk whose decode fails is never READY: the slot goes back to EMPTY
 * with the error kept for the readers pinned on it, and the next reader tries again (a
 * media error may be transient; damage is found again and reported again).
 *
 * Read-ahead: a few recent "stream ends" (the last chunk each sequential reader reached)
 * are kept; a read starting in or just after one of them is sequential, and the next
 * `readahead` stored chunks are queued for the workers. Queued chunks occupy LOADING
 * slots, so the queue is bounded by the cache. Each thread that decodes owns a zstd
 * context and a frame buffer: the workers their own, readers one from a pool.
 *
 * Chunk lookup is a linear scan of the slots: the cache holds tens to a few thousand
 * chunks, a scan costs well under a microsecond per chunk, and it keeps the code simple.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/chunk_cache.h"
#include "image/reader_int.h"
#include "util/err.h"

#define STREAMS 8
#define DEFAULT_BYTES (64u << 20)
#define MAX_THREADS 8u

enum { SLOT_EMPTY, SLOT_LOADING, SLOT_READY };

struct slot {
	int64_t chunk;      /* -1 when EMPTY */
	int state;
	unsigned refs;      /* readers pinned on it */
	int err;            /* the failed decode's code, for the readers pinned on it */
	uint64_t tick;      /* last use, for LRU */
	uint8_t *data;
};

struct dec_ctx {
	ZSTD_DCtx *dctx;
	uint8_t *cbuf;
	struct dec_ctx *next;
};

struct chunk_cache {
	struct imago_image *img;
	pthread_mutex_t mu;
	pthread_cond_t cv;       /* a slot changed state or was unpinned */
	pthread_cond_t work_cv;  /* the queue has work, or stop */
	struct slot *slots;
	size_t nslots;
	uint64_t tick;
	size_t cbuf_cap;
	struct dec_ctx *pool;    /* free decode contexts for readers */
	size_t *queue;           /* ring of slot numbers to decode ahead */
	size_t qhead, qlen;
	pthread_t *threads;
	unsigned nthreads, started;
	bool stop;
	unsigned readahead;
	int64_t streams[STREAMS];
	unsigned stream_next;
	struct imago_cache_stats st;
};

static struct dec_ctx *dec_new(size_t cap)
{
	struct dec_ctx *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->dctx = ZSTD_createDCtx();
	d->cbuf = malloc(cap);
	if (!d->dctx || !d->cbuf) {
		ZSTD_freeDCtx(d->dctx);
		free(d->cbuf);
		free(d);
		return NULL;
	}
	return d;
}

static void dec_free(struct dec_ctx *d)
{
	if (!d)
		return;
	ZSTD_freeDCtx(d->dctx);
	free(d->cbuf);
	free(d);
}

/* Decode chunk into slot s (the caller set it LOADING and holds no lock). */
static int load_into(struct chunk_cache *c, struct slot *s, int64_t chunk, struct dec_ctx *d,
		     struct imago_err *err)
{
	const struct fmt_index_entry *e = reader_find_chunk(c->img, (uint64_t)chunk);
	if (!e) /* cannot happen: only stored chunks are loaded */
		return err_set(err, -EINVAL, -1, -1, chunk, "chunk %lld is not stored", (long long)chunk);
	return reader_load_chunk(c->img, e, d->dctx, d->cbuf, s->data, err);
}

/* With mu held: the load of slot s ended with rc. */
static void load_done(struct chunk_cache *c, struct slot *s, int rc, const struct imago_err *err)
{
	if (rc < 0) {
		s->state = SLOT_EMPTY;
		s->chunk = -1;
		s->err = rc;
		c->st.failed++;
		err_copy(&c->img->err, err);
	} else {
		s->state = SLOT_READY;
		s->err = 0;
		s->tick = ++c->tick;
	}
	pthread_cond_broadcast(&c->cv);
}

static void *worker(void *arg)
{
	struct chunk_cache *c = arg;
	struct dec_ctx *d = dec_new(c->cbuf_cap);
	struct imago_err err;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->stop && c->qlen == 0)
			pthread_cond_wait(&c->work_cv, &c->mu);
		if (c->qlen == 0) /* stop, queue drained */
			break;
		struct slot *s = &c->slots[c->queue[c->qhead]];
		c->qhead = (c->qhead + 1) % c->nslots;
		c->qlen--;
		int64_t chunk = s->chunk;
		pthread_mutex_unlock(&c->mu);
		int rc = d ? load_into(c, s, chunk, d, &err)
			   : err_set(&err, -ENOMEM, -1, -1, chunk, "out of memory");
		pthread_mutex_lock(&c->mu);
		if (rc == 0)
			c->st.prefetched++;
		load_done(c, s, rc, &err);
	}
	pthread_mutex_unlock(&c->mu);
	dec_free(d);
	return NULL;
}

int chunk_cache_new(struct imago_image *img, const struct imago_cache_opts *o,
		    struct chunk_cache **out)
{
	struct imago_cache_opts def = { 0 };
	if (!o)
		o = &def;
	struct chunk_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	uint32_t cs = img->hdr.chunk_size;
	c->img = img;
	c->cbuf_cap = ZSTD_compressBound(cs) + FMT_FRAME_HDR_SIZE;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned nt = o->threads ? o->threads : (cpus > 0 ? (unsigned)cpus : 1);
	if (nt > MAX_THREADS)
		nt = MAX_THREADS;
	unsigned ra = o->readahead ? o->readahead : 2 * nt;
	if (ra < 4)
		ra = 4;
	if (o->flags & IMAGO_CACHE_NO_READAHEAD)
		ra = 0, nt = 0;
	if (ra > 256)
		ra = 256;
	size_t bytes = o->cache_bytes ? o->cache_bytes : DEFAULT_BYTES;
	size_t n = bytes / cs;
	if (n < 4 * (size_t)ra + 8)
		n = 4 * (size_t)ra + 8;
	c->nslots = n;
	c->readahead = ra;
	c->nthreads = nt;
	for (unsigned i = 0; i < STREAMS; i++)
		c->streams[i] = -2;
	c->slots = calloc(n, sizeof(*c->slots));
	c->queue = calloc(n, sizeof(*c->queue));
	c->threads = calloc(nt ? nt : 1, sizeof(*c->threads));
	if (!c->slots || !c->queue || !c->threads)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		c->slots[i].chunk = -1;
		/* Buffers are allocated now so a read never fails for memory mid-way;
		 * untouched pages of a large cache cost nothing until used. */
		if (!(c->slots[i].data = malloc(cs)))
			goto fail;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_cond_init(&c->work_cv, NULL);
	c->st.chunk_size = cs;
	c->st.slots = n;
	c->st.threads = nt;
	c->st.readahead = ra;
	*out = c;
	return 0;
fail:
	if (c->slots)
		for (size_t i = 0; i < n; i++)
			free(c->slots[i].data);
	free(c->slots);
	free(c->queue);
	free(c->threads);
	free(c);
	return -ENOMEM;
}

void chunk_cache_free(struct chunk_cache *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	/* Queued read-ahead nobody waits for is dropped rather than decoded. */
	while (c->qlen) {
		struct slot *s = &c->slots[c->queue[c->qhead]];
		s->state = SLOT_EMPTY;
		s->chunk = -1;
		c->qhead = (c->qhead + 1) % c->nslots;
		c->qlen--;
	}
	pthread_cond_broadcast(&c->work_cv);
	pthread_mutex_unlock(&c->mu);
	for (unsigned i = 0; i < c->started; i++)
		pthread_join(c->threads[i], NULL);
	for (size_t i = 0; i < c->nslots; i++)
		free(c->slots[i].data);
	while (c->pool) {
		struct dec_ctx *d = c->pool;
		c->pool = d->next;
		dec_free(d);
	}
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->work_cv);
	pthread_mutex_destroy(&c->mu);
	free(c->slots);
	free(c->queue);
	free(c->threads);
	free(c);
}

/* With mu held: the slot holding (or loading) chunk, or NULL. */
static struct slot *find(struct chunk_cache *c, int64_t chunk)
{
	for (size_t i = 0; i < c->nslots; i++)
		if (c->slots[i].chunk == chunk && c->slots[i].state != SLOT_EMPTY)
			return &c->slots[i];
	return NULL;
}

/* With mu held: an EMPTY slot, or else the least recently used READY one; neither may be
 * pinned. NULL when every slot is pinned or loading. */
static struct slot *victim(struct chunk_cache *c)
{
	struct slot *best = NULL;
	for (size_t i = 0; i < c->nslots; i++) {
		struct slot *s = &c->slots[i];
		if (s->refs || s->state == SLOT_LOADING)
			continue;
		if (s->state == SLOT_EMPTY)
			return s;
		if (!best || s->tick < best->tick)
			best = s;
	}
	return best;
}

/* With mu held: queue the stored chunks after `last` for the workers. */
static void read_ahead(struct chunk_cache *c, uint64_t last)
{
	uint64_t nchunks = (c->img->hdr.device_size + c->img->hdr.chunk_size - 1) / c->img->hdr.chunk_size;
	for (uint64_t k = last + 1; k <= last + c->readahead && k < nchunks; k++) {
		if (!reader_find_chunk(c->img, k) || find(c, (int64_t)k))
			continue;
		/* Never evict what is newer than the oldest read-ahead: leave a quarter. */
		struct slot *s = victim(c);
		if (!s || c->qlen >= c->nslots / 2)
			return;
		s->chunk = (int64_t)k;
		s->state = SLOT_LOADING;
		s->err = 0;
		c->queue[(c->qhead + c->qlen) % c->nslots] = (size_t)(s - c->slots);
		c->qlen++;
	}
	while (c->started < c->nthreads && c->started < c->qlen) {
		if (pthread_create(&c->threads[c->started], NULL, worker, c) != 0)
			break;
		c->started++;
	}
	if (c->started == 0) {
		/* No worker could start: take the queued chunks back. */
		while (c->qlen) {
			struct slot *s = &c->slots[c->queue[c->qhead]];
			s->state = SLOT_EMPTY;
			s->chunk = -1;
			c->qhead = (c->qhead + 1) % c->nslots;
			c->qlen--;
		}
		return;
	}
	pthread_cond_broadcast(&c->work_cv);
}

/* With mu held: note that a reader read chunks first..last; true when it reads on from
 * where a recent reader stopped. */
static bool sequential(struct chunk_cache *c, uint64_t first, uint64_t last)
{
	for (unsigned i = 0; i < STREAMS; i++) {
		int64_t e = c->streams[i];
		if (e >= 0 && (first == (uint64_t)e || first == (uint64_t)e + 1)) {
			c->streams[i] = (int64_t)last;
			return last != (uint64_t)e || first != last;
		}
	}
	c->streams[c->stream_next] = (int64_t)last;
	c->stream_next = (c->stream_next + 1) % STREAMS;
	return false;
}

/* With mu held: pin the READY slot of chunk (decoding it here if needed). 0 and *out, or
 * a negative errno (img->err filled). */
static int get_chunk(struct chunk_cache *c, int64_t chunk, struct slot **out)
{
	for (;;) {
		struct slot *s = find(c, chunk);
		if (s) {
			c->st.hits++;
			s->refs++;
			while (s->state == SLOT_LOADING)
				pthread_cond_wait(&c->cv, &c->mu);
			if (s->state == SLOT_READY && s->chunk == chunk) {
				s->tick = ++c->tick;
				*out = s;
				return 0;
			}
			/* its decode failed */
			int rc = s->err ? s->err : -EIO;
			s->refs--;
			pthread_cond_broadcast(&c->cv);
			return rc;
		}
		s = victim(c);
		if (!s) {
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		struct dec_ctx *d = c->pool;
		if (d)
			c->pool = d->next;
		s->chunk = chunk;
		s->state = SLOT_LOADING;
		s->err = 0;
		s->refs = 1;
		c->st.misses++;
		pthread_mutex_unlock(&c->mu);
		struct imago_err err;
		int rc;
		if (!d)
			d = dec_new(c->cbuf_cap);
		rc = d ? load_into(c, s, chunk, d, &err)
		       : err_set(&err, -ENOMEM, -1, -1, chunk, "out of memory");
		pthread_mutex_lock(&c->mu);
		if (d) {
			d->next = c->pool;
			c->pool = d;
		}
		load_done(c, s, rc, &err);
		if (rc < 0) {
			s->refs--;
			return rc;
		}
		*out = s;
		return 0;
	}
}

ssize_t chunk_cache_pread(struct chunk_cache *c, void *buf, size_t len, uint64_t offset)
{
	struct imago_image *img = c->img;
	uint64_t dsize = img->hdr.device_size, cs = img->hdr.chunk_size;
	if (offset >= dsize || len == 0)
		return 0;
	if (len > dsize - offset)
		len = (size_t)(dsize - offset);
	uint8_t *dst = buf;
	size_t done = 0;
	int rc = 0;
	uint64_t first = offset / cs, last = (offset + len - 1) / cs;
	pthread_mutex_lock(&c->mu);
	if (c->readahead && sequential(c, first, last))
		read_ahead(c, last);
	while (done < len) {
		uint64_t pos = offset + done, chunk = pos / cs, in = pos % cs;
		uint64_t clen = fmt_chunk_len(dsize, (uint32_t)cs, chunk);
		size_t n = (size_t)(clen - in < len - done ? clen - in : len - done);
		if (!reader_find_chunk(img, chunk)) {
			memset(dst + done, 0, n);
		} else {
			struct slot *s;
			if ((rc = get_chunk(c, (int64_t)chunk, &s)) < 0)
				break;
			pthread_mutex_unlock(&c->mu);
			memcpy(dst + done, s->data + in, n);
			pthread_mutex_lock(&c->mu);
			s->refs--;
			pthread_cond_broadcast(&c->cv);
		}
		done += n;
	}
	pthread_mutex_unlock(&c->mu);
	return rc < 0 ? rc : (ssize_t)done;
}

void chunk_cache_stats(struct chunk_cache *c, struct imago_cache_stats *s)
{
	pthread_mutex_lock(&c->mu);
	*s = c->st;
	pthread_mutex_unlock(&c->mu);
}
