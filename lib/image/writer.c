/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * imago_create: source → chunks → (zero test, leaf hashes, checksum, zstd) on N workers →
 * frames written in order, then metadata, extent map, index and trailer (FORMAT.md).
 * The output is written strictly sequentially, so it may be a pipe.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>
/* For ZSTD_estimateCCtxSize_usingCParams: the memory bound must count the contexts. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include "extent/extent_map.h"
#include "forensic/forensic.h"
#include "image/digest.h"
#include "image/format.h"
#include "pipeline/pipeline.h"
#include "util/err.h"
#include "util/zero.h"
#include "util/progress.h"
#include "util/spool.h"
#include "util/xio.h"

enum { K_RAW = FMT_FRAME_RAW, K_ZSTD = FMT_FRAME_ZSTD, K_ZERO = FMT_FRAME_ZERO, K_NONE = 99 };
/* Job fields besides u[0] (offset), u[1] (kind), u[2] (checksum), u[3] (mixed):
 * U_BAD: keep_going only: 0 all read, 1 some bytes unreadable, 2 all unreadable;
 * U_TICKET: forensic digests: 1 + the ticket of the chunk's bytes, or 0. */
enum { U_BAD = 4, U_TICKET = 5 };

struct wctx {
	const struct imago_create_opts *o;
	uint64_t size;
	uint32_t cs;
	int level;
	ZSTD_CCtx **cctx;
	unsigned nworkers;
	/* the allocation map (sector mode: one USED run); FREE bytes are neither read nor stored */
	const struct imago_extent *av;
	size_t an;
	struct imago_extent whole;
	bool smart;

	/* producer */
	uint64_t next_off;
	size_t pcur;                 /* first run not wholly before next_off */
	uint64_t bytes_read;
	struct imago_err prod_err;

	/* consumer */
	struct imago_err *err;
	uint64_t cpos;               /* device end of what was consumed */
	size_t ccur;                 /* consumer's cursor into av */
	uint64_t file_off;
	struct digest_acc dig;
	/* The index and the extent map are only written at the end: spool them (memory stays
	 * bounded on any device size). The extent run being built is kept apart. */
	struct spool idx, ext;
	uint64_t nidx, next;
	struct imago_extent run;
	uint64_t zero_start, zero_len;
	uint64_t data_frames, zero_frames, zero_chunks, stored;
	struct progress_clock clock;

	/* keep_going: unreadable ranges, appended (coalesced) by the producer in device
	 * order, read by the consumer from its cursor; the lock covers growth. */
	pthread_mutex_t bad_lock;
	struct fx_range *bad;
	size_t nbad, bad_cap, bad_cur;
	uint64_t bad_bytes;
};

static int writer_out(int fd, uint64_t *file_off, const void *buf, size_t len, struct imago_err *err)
{
	int r = xwrite_full(fd, buf, len);
	if (r < 0)
		return err_set(err, r, (int64_t)*file_off, -1, -1,
			       "cannot write the image at byte %llu: %s", (unsigned long long)*file_off,
			       r == -ENOSPC ? "no space left on the output" : strerror(-r));
	*file_off += len;
	return 0;
}

static int read_err(struct wctx *w, ssize_t r, uint64_t at, uint64_t want_end)
{
	if (r < 0)
		return err_set(&w->prod_err, (int)r, -1, (int64_t)at, (int64_t)(at / w->cs),
			       "cannot read source at byte %llu (%s): the source has an unreadable area; "
			       "use a rescue tool for failing media",
			       (unsigned long long)at, strerror((int)-r));
	return err_set(&w->prod_err, -EIO, -1, (int64_t)(at + (uint64_t)r), -1,
		       "source ended at byte %llu, before its size of %llu bytes (did it shrink?)",
		       (unsigned long long)(at + (uint64_t)r), (unsigned long long)want_end);
}

/* keep_going: note an unreadable range [off, off + len), merged with the one before. */
static int bad_add(struct wctx *w, uint64_t off, uint64_t len)
{
	pthread_mutex_lock(&w->bad_lock);
	int r = 0;
	struct fx_range *last = w->nbad ? &w->bad[w->nbad - 1] : NULL;
	if (last && last->offset + last->length == off) {
		last->length += len;
	} else {
		if (w->nbad == w->bad_cap) {
			size_t cap = w->bad_cap ? 2 * w->bad_cap : 64;
			struct fx_range *v = realloc(w->bad, cap * sizeof(*v));
			if (!v) {
				r = -ENOMEM;
				goto out;
			}
			w->bad = v;
			w->bad_cap = cap;
		}
		w->bad[w->nbad++] = (struct fx_range){ .offset = off, .length = len };
	}
	w->bad_bytes += len;
out:
	pthread_mutex_unlock(&w->bad_lock);
	return r;
}

static bool media_error(ssize_t r)
{
	return r == -EIO || r == -ENODATA;
}

/* keep_going: read one chunk, retrying, then narrowing a failure down to sectors. The
 * sectors that stay unreadable are zeros in j->in and ranges in w->bad; anything but a
 * media error (a short read: the source shrank) still fails. */
static int salvage_read(struct wctx *w, struct pl_job *j, uint64_t off, size_t len)
{
	int fd = w->o->source_fd;
	ssize_t r = 0;
	for (unsigned t = 0; t <= w->o->read_retries; t++) {
		r = xpread_full(fd, j->in, len, off);
		if (r == (ssize_t)len) {
			w->bytes_read += len;
			return 0;
		}
		if (!media_error(r))
			return read_err(w, r, off, w->size);
	}
	uint32_t sec = w->o->logical_sector_size ? w->o->logical_sector_size : 512;
	size_t badb = 0;
	uint64_t run_off = 0, run_len = 0;
	for (size_t p = 0; p < len; p += sec) {
		size_t n = len - p < sec ? len - p : sec;
		bool ok = false;
		for (unsigned t = 0; t <= w->o->read_retries && !ok; t++) {
			r = xpread_full(fd, j->in + p, n, off + p);
			if (r == (ssize_t)n)
				ok = true;
			else if (!media_error(r))
				return read_err(w, r, off + p, w->size);
		}
		if (!ok) {
			memset(j->in + p, 0, n);
			int e = bad_add(w, off + p, n);
			if (e < 0)
				return err_set(&w->prod_err, e, -1, (int64_t)(off + p), -1, "out of memory");
			if (run_len && run_off + run_len == off + p) {
				run_len += n;
			} else {
				if (run_len && w->o->on_bad)
					w->o->on_bad(w->o->on_bad_opaque, run_off, run_len, EIO);
				run_off = off + p;
				run_len = n;
			}
			badb += n;
		}
	}
	if (run_len && w->o->on_bad)
		w->o->on_bad(w->o->on_bad_opaque, run_off, run_len, EIO);
	w->bytes_read += len - badb;
	j->u[U_BAD] = badb == len ? 2 : badb ? 1 : 0;
	return 0;
}

static int produce(void *vctx, struct pl_job *j)
{
	struct wctx *w = vctx;
	if (w->smart)
		w->next_off = extent_runs_next_kept_chunk(w->av, w->an, &w->pcur, w->next_off, w->size,
							  w->cs);
	if (w->next_off >= w->size)
		return 0;
	uint64_t off = w->next_off;
	uint64_t len = w->size - off < w->cs ? w->size - off : w->cs;
	j->u[3] = j->u[U_BAD] = j->u[U_TICKET] = 0;
	if (w->o->keep_going) {
		int r = salvage_read(w, j, off, (size_t)len);
		if (r < 0)
			return r;
	} else if (!w->smart) {
		ssize_t r = xread_full(w->o->source_fd, j->in, (size_t)len);
		if (r < 0 || (uint64_t)r < len)
			return read_err(w, r, off, w->size);
		w->bytes_read += len;
	} else {
		/* Read the USED runs of the chunk; its FREE bytes are zeros in the image. */
		for (size_t i = w->pcur; i < w->an && w->av[i].offset < off + len; i++) {
			const struct imago_extent *e = &w->av[i];
			uint64_t b = e->offset > off ? e->offset : off;
			uint64_t x = e->offset + e->length < off + len ? e->offset + e->length : off + len;
			if (e->state == IMAGO_FREE) {
				memset(j->in + (b - off), 0, (size_t)(x - b));
				j->u[3] = 1; /* mixed chunk */
				continue;
			}
			ssize_t r = xpread_full(w->o->source_fd, j->in + (b - off), (size_t)(x - b), b);
			if (r < 0 || (uint64_t)r < x - b)
				return read_err(w, r, b, w->size);
			w->bytes_read += x - b;
		}
	}
	j->in_len = (size_t)len;
	j->u[0] = off;
	w->next_off += len;
	if (w->o->hash) {
		/* The digests read j->in in place; consume() waits for them before the job
		 * buffer is reused, quiesce() before it is freed. */
		int64_t t = imago_mhash_feed(w->o->hash, j->in, (size_t)len);
		if (t < 0)
			return err_set(&w->prod_err, (int)t, -1, (int64_t)off, -1,
				       "the digests were already finished");
		j->u[U_TICKET] = (uint64_t)t + 1;
	}
	return 1;
}

static int work(void *vctx, struct pl_job *j, unsigned worker)
{
	struct wctx *w = vctx;
	if (j->u[U_BAD] == 2) {
		j->u[1] = K_NONE; /* nothing could be read: no frame (FORMAT.md §2) */
		return 0;
	}
	/* A chunk with unreadable bytes is never a ZERO frame: ZERO frames cover only ZERO
	 * (and FREE) bytes, so its zeros are stored as data beside its BAD bytes. */
	if (!j->u[U_BAD] && buf_is_zero(j->in, j->in_len)) {
		j->u[1] = K_ZERO;
		return 0;
	}
	int r = digest_leaves(j->in, j->in_len, j->aux);
	if (r < 0)
		return r;
	j->u[2] = fmt_xxh3(j->in, j->in_len, j->u[0]);
	size_t c = ZSTD_compressCCtx(w->cctx[worker], j->out, ZSTD_compressBound(w->cs),
				     j->in, j->in_len, w->level);
	if (!ZSTD_isError(c) && c < j->in_len) {
		j->u[1] = K_ZSTD;
		j->out_len = c;
	} else {
		j->u[1] = K_RAW;
	}
	return 0;
}

/* Extend the current extent run, or close it into the spool and start another. */
static int extent_add(struct wctx *w, uint64_t off, uint64_t len, enum imago_state st)
{
	if (w->run.length && w->run.state == st) {
		w->run.length += len;
		return 0;
	}
	if (w->run.length) {
		uint8_t b[FMT_EXTENT_ENTRY_SIZE];
		fmt_extent_encode(&w->run, b);
		int r = spool_append(&w->ext, b, sizeof(b));
		if (r < 0)
			return r;
		w->next++;
	}
	w->run = (struct imago_extent){ .offset = off, .length = len, .state = st };
	return 0;
}

static int flush_zero(struct wctx *w)
{
	if (!w->zero_len)
		return 0;
	struct fmt_frame f = { .type = FMT_FRAME_ZERO, .logical_offset = w->zero_start,
			       .logical_length = w->zero_len };
	uint8_t hdr[FMT_FRAME_HDR_SIZE];
	fmt_frame_encode(&f, hdr);
	w->zero_len = 0;
	w->zero_frames++;
	return writer_out(w->o->out_fd, &w->file_off, hdr, sizeof(hdr), w->err);
}

/* FREE bytes [cpos, to): in the extent map, and zeros in the digest. */
static int consume_free_gap(struct wctx *w, uint64_t to)
{
	if (to <= w->cpos)
		return 0;
	int r = flush_zero(w); /* a ZERO frame covers contiguous chunks only */
	if (r < 0)
		return r;
	if ((r = extent_add(w, w->cpos, to - w->cpos, IMAGO_FREE)) < 0 ||
	    (r = digest_acc_zeros(&w->dig, to - w->cpos)) < 0)
		return err_set(w->err, r, -1, (int64_t)w->cpos, -1, "cannot keep the extent map: %s",
			       strerror(-r));
	w->cpos = to;
	return 0;
}

/* The extent-map runs of one chunk: its USED bytes get state st; in a mixed chunk (smart
 * mode) its FREE bytes stay FREE. */
static int chunk_extents(struct wctx *w, uint64_t off, uint64_t len, bool mixed, enum imago_state st)
{
	if (!mixed)
		return extent_add(w, off, len, st);
	while (w->ccur < w->an && w->av[w->ccur].offset + w->av[w->ccur].length <= off)
		w->ccur++;
	for (size_t i = w->ccur; i < w->an && w->av[i].offset < off + len; i++) {
		const struct imago_extent *e = &w->av[i];
		uint64_t b = e->offset > off ? e->offset : off;
		uint64_t x = e->offset + e->length < off + len ? e->offset + e->length : off + len;
		int r = extent_add(w, b, x - b, e->state == IMAGO_FREE ? IMAGO_FREE : st);
		if (r < 0)
			return r;
	}
	return 0;
}

/* keep_going: the extent runs of a chunk holding unreadable bytes: BAD where they are,
 * st elsewhere (sector mode only, so no FREE bytes). */
static int bad_extents(struct wctx *w, uint64_t off, uint64_t len, enum imago_state st)
{
	uint64_t pos = off, end = off + len;
	int r = 0;
	pthread_mutex_lock(&w->bad_lock);
	while (w->bad_cur < w->nbad && w->bad[w->bad_cur].offset + w->bad[w->bad_cur].length <= off)
		w->bad_cur++;
	for (size_t i = w->bad_cur; i < w->nbad && w->bad[i].offset < end && r == 0; i++) {
		uint64_t b = w->bad[i].offset > off ? w->bad[i].offset : off;
		uint64_t x = w->bad[i].offset + w->bad[i].length < end ? w->bad[i].offset + w->bad[i].length
									: end;
		if (b > pos)
			r = extent_add(w, pos, b - pos, st);
		if (r == 0)
			r = extent_add(w, b, x - b, IMAGO_BAD);
		pos = x;
	}
	pthread_mutex_unlock(&w->bad_lock);
	if (r == 0 && pos < end)
		r = extent_add(w, pos, end - pos, st);
	return r;
}

/* keep_going: a chunk of which nothing could be read has no frame. */
static int consume_unreadable(struct wctx *w, uint64_t off, uint64_t len)
{
	int r = flush_zero(w);
	if (r < 0)
		return r;
	if ((r = extent_add(w, off, len, IMAGO_BAD)) < 0 || (r = digest_acc_zeros(&w->dig, len)) < 0)
		return err_set(w->err, r, -1, (int64_t)off, -1, "cannot keep the extent map: %s",
			       strerror(-r));
	return 0;
}

static int consume(void *vctx, struct pl_job *j)
{
	struct wctx *w = vctx;
	int r;
	if (j->u[U_TICKET])
		imago_mhash_wait(w->o->hash, j->u[U_TICKET] - 1);
	if (j->status < 0) {
		if (j->status == -ENOMEM)
			return err_set(w->err, -ENOMEM, -1, (int64_t)j->u[0], -1, "out of memory");
		return err_set(w->err, j->status, -1, (int64_t)j->u[0], -1, "chunk at byte %llu: %s",
			       (unsigned long long)j->u[0], strerror(-j->status));
	}
	uint64_t off = j->u[0], len = j->in_len;
	bool mixed = j->u[3] != 0;
	if ((r = consume_free_gap(w, off)) < 0)
		return r;
	if (j->u[1] == K_NONE) {
		if ((r = consume_unreadable(w, off, len)) < 0)
			return r;
	} else if (j->u[1] == K_ZERO) {
		if (!w->zero_len)
			w->zero_start = off;
		w->zero_len += len;
		w->zero_chunks++;
		if ((r = chunk_extents(w, off, len, mixed, IMAGO_ZERO)) < 0 ||
		    (r = digest_acc_zeros(&w->dig, len)) < 0)
			return err_set(w->err, r, -1, (int64_t)off, -1, "cannot keep the extent map: %s",
				       strerror(-r));
	} else {
		if ((r = flush_zero(w)) < 0)
			return r;
		const void *payload = j->u[1] == K_ZSTD ? j->out : j->in;
		size_t plen = j->u[1] == K_ZSTD ? j->out_len : j->in_len;
		struct fmt_frame f = { .type = (uint8_t)j->u[1], .logical_offset = off,
				       .logical_length = len, .stored_length = plen,
				       .data_checksum = j->u[2] };
		uint8_t hdr[FMT_FRAME_HDR_SIZE];
		fmt_frame_encode(&f, hdr);
		struct fmt_index_entry ie = { .logical_offset = off, .file_offset = w->file_off,
					      .logical_length = (uint32_t)len, .stored_length = (uint32_t)plen,
					      .data_checksum = j->u[2] };
		uint8_t ib[FMT_INDEX_ENTRY_SIZE];
		fmt_index_entry_encode(&ie, ib);
		if ((r = spool_append(&w->idx, ib, sizeof(ib))) < 0)
			return err_set(w->err, r, -1, (int64_t)off, -1, "cannot keep the index: %s", strerror(-r));
		w->nidx++;
		if ((r = writer_out(w->o->out_fd, &w->file_off, hdr, sizeof(hdr), w->err)) < 0 ||
		    (r = writer_out(w->o->out_fd, &w->file_off, payload, plen, w->err)) < 0)
			return r;
		w->data_frames++;
		w->stored += plen;
		if ((r = j->u[U_BAD] ? bad_extents(w, off, len, IMAGO_USED)
				     : chunk_extents(w, off, len, mixed, IMAGO_USED)) < 0 ||
		    (r = digest_acc_leaves(&w->dig, j->aux, len)) < 0)
			return err_set(w->err, r, -1, (int64_t)off, -1, "cannot keep the extent map: %s",
				       strerror(-r));
	}
	w->cpos = off + len;
	if (progress_tick(&w->clock, off + len, w->size, w->o->progress, w->o->progress_opaque))
		return err_set(w->err, -ECANCELED, -1, (int64_t)(off + len), -1, "cancelled");
	return 0;
}

/* Every thread has stopped: wait for the digests still reading job buffers. */
static void quiesce(void *vctx)
{
	struct wctx *w = vctx;
	if (w->o->hash)
		imago_mhash_drain(w->o->hash);
}

struct section_sink {
	int fd;
	uint64_t *file_off;
	XXH3_state_t *st;
	struct imago_err *err;
};

static int section_piece(void *opaque, const uint8_t *p, size_t len)
{
	struct section_sink *k = opaque;
	XXH3_64bits_update(k->st, p, len);
	return writer_out(k->fd, k->file_off, p, len, k->err);
}

/* Write one section: header, payload (from a spool), checksum of both. */
static int writer_section(int fd, uint64_t *file_off, uint32_t magic, uint64_t count,
			  struct spool *payload, struct imago_err *err)
{
	uint8_t hdr[FMT_SECTION_HDR_SIZE], tail[8];
	struct fmt_section s = { .magic = magic, .count = count, .length = spool_size(payload) };
	fmt_section_encode(&s, hdr);
	struct section_sink k = { .fd = fd, .file_off = file_off, .st = XXH3_createState(), .err = err };
	if (!k.st)
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	XXH3_64bits_reset(k.st);
	int r = section_piece(&k, hdr, sizeof(hdr));
	if (r == 0 && (r = spool_replay(payload, section_piece, &k)) < 0 && err && !err->code)
		err_set(err, r, -1, -1, -1, "cannot read back the spooled index: %s", strerror(-r));
	if (r == 0) {
		put_le64(tail, XXH3_64bits_digest(k.st));
		r = writer_out(fd, file_off, tail, sizeof(tail), err);
	}
	XXH3_freeState(k.st);
	return r;
}

/* The allocation map section, right after the header (FORMAT.md §5.0). */
static int write_alloc(struct wctx *w)
{
	struct spool sp;
	spool_init(&sp, 0);
	int r = 0;
	for (size_t i = 0; i < w->an && r == 0; i++) {
		uint8_t b[FMT_EXTENT_ENTRY_SIZE];
		fmt_extent_encode(&w->av[i], b);
		r = spool_append(&sp, b, sizeof(b));
	}
	if (r < 0)
		r = err_set(w->err, r, -1, -1, -1, "cannot keep the allocation map: %s", strerror(-r));
	else
		r = writer_section(w->o->out_fd, &w->file_off, FMT_SEC_ALLOC, w->an, &sp, w->err);
	spool_free(&sp);
	return r;
}

static int meta_has(const char *const *kv, const char *key)
{
	for (; kv && kv[0]; kv += 2)
		if (strcmp(kv[0], key) == 0)
			return 1;
	return 0;
}

/* Metadata payload: the caller's pairs plus `tool` and `created` unless given. */
static int build_metadata(const char *const *user, uint8_t **out, uint64_t *len, uint64_t *count)
{
	char created[32];
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	time_t t = sde && *sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	const char *own[] = { "tool", "imago " IMAGO_VERSION_STRING, "created", created, NULL };

	size_t total = 0, n = 0;
	for (int pass = 0; pass < 2; pass++) {
		uint8_t *p = pass ? *out : NULL;
		for (int src = 0; src < 2; src++) {
			const char *const *kv = src ? user : own;
			for (; kv && kv[0] && kv[1]; kv += 2) {
				if (!src && meta_has(user, kv[0]))
					continue;
				size_t kl = strlen(kv[0]), vl = strlen(kv[1]);
				if (kl == 0 || kl > 0xffff || vl > 0xffffffffu)
					return -EINVAL;
				if (pass) {
					put_le16(p, (uint16_t)kl);
					put_le32(p + 2, (uint32_t)vl);
					memcpy(p + 6, kv[0], kl);
					memcpy(p + 6 + kl, kv[1], vl);
					p += 6 + kl + vl;
				} else {
					total += 6 + kl + vl;
					n++;
				}
			}
		}
		if (!pass && !(*out = malloc(total ? total : 1)))
			return -ENOMEM;
	}
	*len = total;
	*count = n;
	return 0;
}

static int write_tail(struct wctx *w, const uint8_t header_bytes[FMT_HEADER_SIZE],
		      struct imago_create_result *res)
{
	int r;
	int fd = w->o->out_fd;
	struct fmt_trailer t = { 0 };
	uint8_t *buf = NULL;
	uint64_t len, count;
	struct spool meta;

	if ((r = consume_free_gap(w, w->size)) < 0 || (r = flush_zero(w)) < 0)
		return r;
	if ((r = extent_add(w, w->size, 0, 0)) < 0) /* closes the last run */
		return err_set(w->err, r, -1, -1, -1, "cannot keep the extent map: %s", strerror(-r));
	if ((r = digest_acc_final(&w->dig, t.digest)) < 0)
		return err_set(w->err, r, -1, -1, -1, "internal error: digest incomplete");

	t.metadata_offset = w->file_off;
	const char **kv = NULL;
	char *pool = NULL;
	if (w->o->hash || w->o->keep_going) {
		/* Known only now: the digests, the end time and the unreadable ranges. */
		if ((r = fx_tail_metadata(w->o->metadata, w->o->hash, w->o->keep_going, w->bad, w->nbad,
					  &kv, &pool)) < 0)
			return err_set(w->err, r, -1, -1, -1, "cannot build the forensic metadata: %s",
				       strerror(-r));
	}
	r = build_metadata(kv ? kv : w->o->metadata, &buf, &len, &count);
	free(kv);
	free(pool);
	if (r < 0)
		return err_set(w->err, r, -1, -1, -1, "bad metadata (empty or oversized key)");
	spool_init(&meta, 0);
	r = spool_append(&meta, buf, (size_t)len);
	free(buf);
	if (r == 0)
		r = writer_section(fd, &w->file_off, FMT_SEC_METADATA, count, &meta, w->err);
	else
		err_set(w->err, r, -1, -1, -1, "out of memory");
	spool_free(&meta);
	if (r < 0)
		return r;

	t.extents_offset = w->file_off;
	if ((r = writer_section(fd, &w->file_off, FMT_SEC_EXTENTS, w->next, &w->ext, w->err)) < 0)
		return r;
	t.index_offset = w->file_off;
	if ((r = writer_section(fd, &w->file_off, FMT_SEC_INDEX, w->nidx, &w->idx, w->err)) < 0)
		return r;

	t.data_frames = w->data_frames;
	t.zero_frames = w->zero_frames;
	t.stored_bytes = w->stored;
	t.device_size = w->size;
	t.header_checksum = get_le64(header_bytes + 504);
	uint8_t tb[FMT_TRAILER_SIZE];
	fmt_trailer_encode(&t, tb);
	if ((r = writer_out(fd, &w->file_off, tb, sizeof(tb), w->err)) < 0)
		return r;

	if (res) {
		res->device_size = w->size;
		res->bytes_read = w->bytes_read;
		res->free_bytes = 0;
		for (size_t i = 0; i < w->an; i++)
			if (w->av[i].state == IMAGO_FREE)
				res->free_bytes += w->av[i].length;
		res->stored_bytes = w->stored;
		res->image_bytes = w->file_off;
		res->data_chunks = w->data_frames;
		res->zero_chunks = w->zero_chunks;
		memcpy(res->digest, t.digest, IMAGO_DIGEST_LEN);
		res->bad_bytes = w->bad_bytes;
		res->bad_ranges = w->nbad;
	}
	return 0;
}

int imago_create(const struct imago_create_opts *o, struct imago_create_result *res,
		 struct imago_err *err)
{
	err_clear(err);
	uint32_t cs = o->chunk_size ? o->chunk_size : IMAGO_CHUNK_DEFAULT;
	int level = o->level ? o->level : IMAGO_LEVEL_DEFAULT;
	if (!fmt_chunk_size_valid(cs))
		return err_set(err, -EINVAL, -1, -1, -1,
			       "chunk size %u is invalid: use a power of two from 64K to 16M", cs);
	if (level < 1 || level > ZSTD_maxCLevel() || level > 19)
		return err_set(err, -EINVAL, -1, -1, -1, "level %d is invalid: use 1 to 19", level);
	if (o->source_size > (UINT64_MAX >> 2))
		return err_set(err, -EINVAL, -1, -1, -1, "source size out of range");

	if (o->keep_going && o->alloc)
		return err_set(err, -EINVAL, -1, -1, -1,
			       "reading past unreadable sectors needs sector mode (every byte kept)");
	struct wctx w = { .o = o, .size = o->source_size, .cs = cs, .level = level, .err = err };
	err_clear(&w.prod_err);
	pthread_mutex_init(&w.bad_lock, NULL);
	if (o->alloc) {
		uint64_t pos = 0;
		for (size_t i = 0; i < o->alloc_count; i++) {
			const struct imago_extent *e = &o->alloc[i];
			if (e->offset != pos || e->length == 0 || e->length > w.size - pos ||
			    (e->state != IMAGO_USED && e->state != IMAGO_FREE) ||
			    (i && e->state == o->alloc[i - 1].state))
				return err_set(err, -EINVAL, -1, (int64_t)e->offset, -1,
					       "allocation map run %zu is invalid (not a sorted, coalesced "
					       "tiling of the source by used and free runs)", i);
			pos += e->length;
		}
		if (pos != w.size)
			return err_set(err, -EINVAL, -1, (int64_t)pos, -1,
				       "allocation map covers %llu bytes, the source has %llu",
				       (unsigned long long)pos, (unsigned long long)w.size);
		if (o->alloc_count > FMT_ALLOC_MAX_RUNS)
			return err_set(err, -E2BIG, -1, -1, -1,
				       "allocation map has %zu runs, more than the format allows (%u)",
				       o->alloc_count, FMT_ALLOC_MAX_RUNS);
		w.av = o->alloc;
		w.an = o->alloc_count;
		w.smart = true;
	} else {
		w.whole = (struct imago_extent){ .offset = 0, .length = w.size, .state = IMAGO_USED };
		w.av = &w.whole;
		w.an = w.size ? 1 : 0;
	}
	spool_init(&w.idx, 0);
	spool_init(&w.ext, 0);
	struct pl_config cfg = { .workers = o->threads, .in_cap = cs,
				 .out_cap = ZSTD_compressBound(cs),
				 .aux_cap = digest_leaf_count(cs) * DIGEST_LEAF_HASH,
				 .worker_mem = ZSTD_estimateCCtxSize_usingCParams(
					 ZSTD_getCParams(level, cs, 0)),
				 .quiesce = quiesce };
	w.nworkers = pipeline_workers(&cfg);
	cfg.workers = w.nworkers;
	int r = 0;

	uint8_t hb[FMT_HEADER_SIZE];
	struct fmt_header h = { .version_major = IMAGO_FORMAT_MAJOR,
				.version_minor = IMAGO_FORMAT_MINOR,
				.device_size = w.size, .chunk_size = cs,
				.logical_sector_size = o->logical_sector_size ? o->logical_sector_size : 512,
				.codec = FMT_CODEC_ZSTD, .level = (uint8_t)level };
	h.physical_sector_size = o->physical_sector_size ? o->physical_sector_size
							 : h.logical_sector_size;
	h.frames_offset = FMT_HEADER_SIZE + fmt_alloc_section_size(w.an);
	fmt_header_encode(&h, hb);

	if (!(w.cctx = calloc(w.nworkers, sizeof(*w.cctx))))
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	for (unsigned i = 0; i < w.nworkers; i++)
		if (!(w.cctx[i] = ZSTD_createCCtx())) {
			r = err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
			goto out;
		}
	if ((r = digest_acc_init(&w.dig, w.size)) < 0) {
		r = err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
		goto out;
	}
	progress_clock_init(&w.clock);

	if ((r = writer_out(o->out_fd, &w.file_off, hb, sizeof(hb), err)) < 0 ||
	    (r = write_alloc(&w)) < 0)
		goto out;
	static const struct pl_ops ops = { produce, work, consume };
	uint64_t failed;
	r = pipeline_run(&ops, &w, &cfg, &failed);
	if (r < 0) {
		/* A producer failure is reported after every earlier chunk was consumed; its
		 * detail lives in prod_err (the producer thread never touches err). */
		if (err && err->code == 0)
			err_copy(err, w.prod_err.code ? &w.prod_err : NULL);
		if (err && err->code == 0)
			err_set(err, r, -1, -1, -1, "create failed: %s", strerror(-r));
		goto out;
	}
	if ((r = write_tail(&w, hb, res)) < 0)
		goto out;
	progress_final(&w.clock, w.size, o->progress, o->progress_opaque);
out:
	if (w.cctx)
		for (unsigned i = 0; i < w.nworkers; i++)
			ZSTD_freeCCtx(w.cctx[i]);
	free(w.cctx);
	spool_free(&w.idx);
	spool_free(&w.ext);
	digest_acc_free(&w.dig);
	free(w.bad);
	pthread_mutex_destroy(&w.bad_lock);
	return r;
}
