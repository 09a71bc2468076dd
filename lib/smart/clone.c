// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * imago_clone: source → target at the same offsets, USED bytes only, in one pass. The
 * producer thread reads chunk by chunk (FREE bytes are not read: they are zeros in the
 * buffer), workers hash the digest leaves, and the consumer writes in order on the
 * calling thread through the restore's target (lib/image/target.c: direct I/O with
 * several writes in flight, holes for zero blocks on a sparse target), so reading runs
 * ahead of writing.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "extent/extent_map.h"
#include "image/digest.h"
#include "image/target.h"
#include "pipeline/pipeline.h"
#include "util/err.h"
#include "util/progress.h"
#include "util/xio.h"

#define CLONE_CHUNK (1u << 20)

struct cctx {
	const struct imago_clone_opts *o;
	const struct imago_extent *av;
	size_t an;
	struct imago_extent whole;
	uint64_t size, limit;
	/* producer */
	uint64_t next;
	size_t pcur;
	uint64_t bytes_read;
	struct imago_err prod_err;
	/* consumer */
	size_t ccur;
	uint64_t cpos, written;
	struct digest_acc dig;
	struct target tgt;
	struct progress_clock clock;
	struct imago_err *err;
};

static int produce(void *vctx, struct pl_job *j)
{
	struct cctx *c = vctx;
	c->next = extent_runs_next_kept_chunk(c->av, c->an, &c->pcur, c->next, c->size, CLONE_CHUNK);
	if (c->next >= c->size)
		return 0;
	uint64_t off = c->next, len = c->size - off < CLONE_CHUNK ? c->size - off : CLONE_CHUNK;
	j->u[1] = 0;
	for (size_t i = c->pcur; i < c->an && c->av[i].offset < off + len; i++) {
		const struct imago_extent *e = &c->av[i];
		uint64_t b = e->offset > off ? e->offset : off;
		uint64_t x = e->offset + e->length < off + len ? e->offset + e->length : off + len;
		if (e->state == IMAGO_FREE) {
			memset(j->in + (b - off), 0, (size_t)(x - b));
			j->u[1] = 1; /* has FREE bytes */
			continue;
		}
		ssize_t r = xpread_full(c->o->source_fd, j->in + (b - off), (size_t)(x - b), b);
		if (r < 0 || (uint64_t)r < x - b)
			return err_set(&c->prod_err, r < 0 ? (int)r : -EIO, -1, (int64_t)b, -1,
				       r < 0 ? "cannot read the source at byte %llu: %s"
					     : "the source ended at byte %llu (%s): did it shrink?",
				       (unsigned long long)b, r < 0 ? strerror((int)-r) : "short read");
		c->bytes_read += x - b;
	}
	j->u[0] = off;
	j->in_len = (size_t)len;
	c->next = off + len;
	return 1;
}

static int work(void *vctx, struct pl_job *j, unsigned worker)
{
	(void)worker;
	(void)vctx;
	return digest_leaves(j->in, j->in_len, j->aux);
}

static int target_fail(struct cctx *c, int r, uint64_t off)
{
	return err_set_target(c->err, r, (int64_t)off,
		       r == -ENOSPC ? "target is full at byte %llu: the clone is incomplete"
				    : "cannot write the target at byte %llu (%s): the clone is incomplete",
		       (unsigned long long)off, strerror(-r));
}

/* Write [lo, hi) of the job (device offsets, clipped to the target's end). */
static int write_piece(struct cctx *c, struct pl_job *j, uint64_t lo, uint64_t hi)
{
	if (hi > c->limit)
		hi = c->limit;
	if (lo >= hi)
		return 0;
	int r = target_write(&c->tgt, j->in + (lo - j->u[0]), lo, (size_t)(hi - lo), j);
	if (r < 0)
		return target_fail(c, r, c->tgt.err_off);
	c->written += hi - lo;
	return 0;
}

static int consume(void *vctx, struct pl_job *j)
{
	struct cctx *c = vctx;
	/* A write of an earlier chunk that failed comes first (device order). */
	if ((j->status < 0 ? target_flush(&c->tgt) : c->tgt.err) < 0)
		return target_fail(c, c->tgt.err, c->tgt.err_off);
	if (j->status < 0)
		return j->status == -ENOMEM ? err_set(c->err, -ENOMEM, -1, -1, -1, "out of memory")
					    : j->status;
	uint64_t off = j->u[0], len = j->in_len;
	int r;
	if (off > c->cpos && (r = digest_acc_zeros(&c->dig, off - c->cpos)) < 0)
		return err_set(c->err, r, -1, -1, -1, "internal error in digest");
	if ((r = digest_acc_leaves(&c->dig, j->aux, len)) < 0)
		return err_set(c->err, r, -1, -1, -1, "internal error in digest");
	c->cpos = off + len;
	int held = 0;
	if (off < c->limit) {
		/* The chunk's pieces are one write for the target: the job stays held while
		 * any of them is in flight, and is released once, after the last. */
		target_begin(&c->tgt, j);
		if (!j->u[1]) {
			r = write_piece(c, j, off, off + len);
		} else {
			r = 0;
			while (c->ccur < c->an && c->av[c->ccur].offset + c->av[c->ccur].length <= off)
				c->ccur++;
			for (size_t i = c->ccur; i < c->an && c->av[i].offset < off + len; i++) {
				const struct imago_extent *e = &c->av[i];
				if (e->state == IMAGO_FREE)
					continue;
				uint64_t b = e->offset > off ? e->offset : off;
				uint64_t x = e->offset + e->length < off + len ? e->offset + e->length : off + len;
				if ((r = write_piece(c, j, b, x)) < 0)
					break;
			}
		}
		held = target_end(&c->tgt, j);
		if (r < 0)
			return r;
		if (held < 0)
			return target_fail(c, held, c->tgt.err_off);
	}
	if (progress_tick(&c->clock, c->cpos, c->size, c->o->progress, c->o->progress_opaque))
		return err_set(c->err, -ECANCELED, -1, (int64_t)c->cpos, -1, "cancelled");
	return held ? PL_HOLD : 0;
}

static void job_written(void *token)
{
	pipeline_release(token);
}

/* The pipeline is over: wait for the writes in flight (their jobs come back). */
static int drain(void *vctx)
{
	struct cctx *c = vctx;
	int r = target_flush(&c->tgt);
	if (r < 0 && (!c->err || !c->err->code))
		target_fail(c, r, c->tgt.err_off);
	return r;
}

/* --discard / --zero-free on the FREE runs below the limit. */
static int treat_free(struct cctx *c)
{
	unsigned f = c->o->flags;
	if (!(f & (IMAGO_RESTORE_DISCARD_FREE | IMAGO_RESTORE_ZERO_FREE)))
		return 0;
	for (size_t i = 0; i < c->an; i++) {
		const struct imago_extent *e = &c->av[i];
		if (e->state != IMAGO_FREE || e->offset >= c->limit)
			continue;
		uint64_t off = e->offset, len = e->offset + e->length > c->limit ? c->limit - off : e->length;
		if (f & IMAGO_RESTORE_ZERO_FREE) {
			int r = target_zero(&c->tgt, off, len);
			if (r < 0)
				return target_fail(c, r, c->tgt.err_off);
		} else if (f & IMAGO_RESTORE_BLOCKDEV) {
			uint64_t a = (off + 4095) / 4096 * 4096, b = (off + len) / 4096 * 4096;
			uint64_t range[2] = { a, b - a };
			if (b > a)
				ioctl(c->o->target_fd, BLKDISCARD, range); /* best effort */
		} else {
			fallocate(c->o->target_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
				  (off_t)len);
		}
	}
	return 0;
}

int imago_clone(const struct imago_clone_opts *o, struct imago_clone_result *res,
		struct imago_err *err)
{
	err_clear(err);
	struct cctx c = { .o = o, .size = o->source_size, .err = err };
	err_clear(&c.prod_err);
	c.limit = o->target_size && o->target_size < c.size ? o->target_size : c.size;
	if (o->alloc) {
		uint64_t pos = 0;
		for (size_t i = 0; i < o->alloc_count; i++) {
			const struct imago_extent *e = &o->alloc[i];
			if (e->offset != pos || !e->length || e->length > c.size - pos ||
			    (e->state != IMAGO_USED && e->state != IMAGO_FREE))
				return err_set(err, -EINVAL, -1, (int64_t)e->offset, -1,
					       "allocation map run %zu is invalid", i);
			pos += e->length;
		}
		if (pos != c.size)
			return err_set(err, -EINVAL, -1, -1, -1, "allocation map does not cover the source");
		c.av = o->alloc;
		c.an = o->alloc_count;
	} else {
		c.whole = (struct imago_extent){ 0, c.size, IMAGO_USED };
		c.av = &c.whole;
		c.an = c.size ? 1 : 0;
	}
	int r = digest_acc_init(&c.dig, c.size);
	if (r < 0)
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	progress_clock_init(&c.clock);
	if (target_open(&c.tgt, o->target_fd, o->flags, CLONE_CHUNK, job_written) < 0) {
		digest_acc_free(&c.dig);
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	}
	struct pl_config cfg = { .workers = o->threads, .in_cap = CLONE_CHUNK,
				 .aux_cap = digest_leaf_count(CLONE_CHUNK) * DIGEST_LEAF_HASH,
				 .hold = target_depth(&c.tgt), .drain = drain };
	cfg.workers = pipeline_workers(&cfg);
	static const struct pl_ops ops = { produce, work, consume };
	r = pipeline_run(&ops, &c, &cfg, NULL);
	if (r < 0) {
		if (err && !err->code && c.prod_err.code)
			err_copy(err, &c.prod_err);
		if (err && !err->code)
			err_set(err, r, -1, -1, -1, "clone failed: %s", strerror(-r));
		goto out;
	}
	if (c.cpos < c.size && (r = digest_acc_zeros(&c.dig, c.size - c.cpos)) < 0) {
		err_set(err, r, -1, -1, -1, "internal error in digest");
		goto out;
	}
	if (res) {
		memset(res, 0, sizeof(*res));
		if ((r = digest_acc_final(&c.dig, res->digest)) < 0) {
			err_set(err, r, -1, -1, -1, "internal error in digest");
			goto out;
		}
	}
	if ((r = treat_free(&c)) < 0 || (r = target_flush(&c.tgt)) < 0) {
		if (r < 0 && err && !err->code)
			target_fail(&c, r, c.tgt.err_off);
		goto out;
	}
	if (res) {
		res->bytes_read = c.bytes_read;
		res->bytes_written = c.written;
	}
	progress_final(&c.clock, c.size, o->progress, o->progress_opaque);
out:
	target_close(&c.tgt);
	digest_acc_free(&c.dig);
	return r;
}
