/* SPDX-License-Identifier: GPL-3.0-or-later */
/* imago_verify: the sequential engine (stream.c) checking everything, optionally
 * comparing with the source; imago_digest_fd: the content digest of any file or device. */
#include <errno.h>
#include <string.h>

#include "image/digest.h"
#include "image/stream.h"
#include "pipeline/pipeline.h"
#include "util/err.h"
#include "util/progress.h"
#include "util/xio.h"

int imago_verify(const struct imago_verify_opts *o, struct imago_verify_result *res,
		 struct imago_err *err)
{
	struct stream_opts so = { .mode = STREAM_VERIFY, .image_fd = o->image_fd,
				  .name = o->image_name ? o->image_name : "image", .target_fd = -1,
				  .against_fd = o->against_fd, .against_size = o->against_size,
				  .threads = o->threads, .progress = o->progress,
				  .progress_opaque = o->progress_opaque };
	struct stream_result sr;
	int r = stream_run(&so, &sr, err);
	if ((r == 0 || r == -EILSEQ || r == -EFBIG) && res) {
		res->device_size = sr.device_size;
		res->chunks_checked = sr.chunks;
		memcpy(res->digest, sr.digest, IMAGO_DIGEST_LEN);
	}
	return r;
}

struct dctx {
	int fd;
	uint64_t size, pos;
	struct digest_acc acc;
	struct imago_err prod_err;
	struct progress_clock clock;
	imago_progress_fn progress;
	void *opaque;
};

#define DIGEST_PIECE (1u << 20)

static int d_produce(void *v, struct pl_job *j)
{
	struct dctx *d = v;
	if (d->pos >= d->size)
		return 0;
	uint64_t n = d->size - d->pos < DIGEST_PIECE ? d->size - d->pos : DIGEST_PIECE;
	ssize_t r = xread_full(d->fd, j->in, (size_t)n);
	if (r < 0)
		return err_set(&d->prod_err, (int)r, -1, (int64_t)d->pos, -1, "cannot read at byte %llu: %s",
			       (unsigned long long)d->pos, strerror((int)-r));
	if ((uint64_t)r < n)
		return err_set(&d->prod_err, -EIO, -1, (int64_t)(d->pos + (uint64_t)r), -1,
			       "input ended at byte %llu, before its size", (unsigned long long)(d->pos + (uint64_t)r));
	j->in_len = (size_t)n;
	d->pos += n;
	return 1;
}

static int d_work(void *v, struct pl_job *j, unsigned w)
{
	return digest_leaves(j->in, j->in_len, j->aux);
}

static int d_consume(void *v, struct pl_job *j)
{
	struct dctx *d = v;
	if (j->status < 0)
		return j->status;
	int r = digest_acc_leaves(&d->acc, j->aux, j->in_len);
	if (r < 0)
		return r;
	if (progress_tick(&d->clock, d->acc.pos, d->size, d->progress, d->opaque))
		return -ECANCELED;
	return 0;
}

int imago_digest_fd(int fd, uint64_t size, unsigned threads, uint8_t out[IMAGO_DIGEST_LEN],
		    imago_progress_fn progress, void *opaque, struct imago_err *err)
{
	err_clear(err);
	struct dctx d = { .fd = fd, .size = size, .progress = progress, .opaque = opaque };
	err_clear(&d.prod_err);
	if (size > (UINT64_MAX >> 2))
		return err_set(err, -EINVAL, -1, -1, -1, "size out of range");
	int r = digest_acc_init(&d.acc, size);
	if (r < 0)
		return err_set(err, r, -1, -1, -1, "out of memory");
	progress_clock_init(&d.clock);
	struct pl_config cfg = { .workers = threads, .in_cap = DIGEST_PIECE,
				 .aux_cap = digest_leaf_count(DIGEST_PIECE) * DIGEST_LEAF_HASH };
	static const struct pl_ops ops = { d_produce, d_work, d_consume };
	r = pipeline_run(&ops, &d, &cfg, NULL);
	if (r < 0) {
		if (d.prod_err.code)
			err_copy(err, &d.prod_err);
		else
			err_set(err, r, -1, -1, -1, "digest failed: %s", strerror(-r));
	} else if ((r = digest_acc_final(&d.acc, out)) < 0) {
		err_set(err, r, -1, -1, -1, "internal error in digest");
	} else {
		progress_final(&d.clock, size, progress, opaque);
	}
	digest_acc_free(&d.acc);
	return r;
}
