/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The native imago image as a backend: reads through imago_image_pread (its chunk cache
 * and checks); block status from the chunk index (unstored chunks read as zeros). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "image/format.h"
#include "image/reader_int.h"
#include "util/err.h"

static ssize_t img_pread(struct backend *b, void *buf, size_t len, uint64_t off)
{
	return imago_image_pread(b->priv, buf, len, off);
}

/* Runs of stored chunks are data; the chunks between them read as zeros. */
static int img_status(struct backend *b, uint64_t off, uint64_t *len, enum imago_state *state)
{
	const struct imago_image *img = b->priv;
	uint64_t cs = img->hdr.chunk_size, end = img->hdr.device_size;
	if (off >= end)
		return -EINVAL;
	uint64_t base = off / cs * cs;
	size_t lo = 0, hi = img->nidx;
	while (lo < hi) { /* first entry ending past base */
		size_t mid = lo + (hi - lo) / 2;
		if (img->idx[mid].logical_offset + img->idx[mid].logical_length <= base)
			lo = mid + 1;
		else
			hi = mid;
	}
	uint64_t run_end;
	if (lo < img->nidx && img->idx[lo].logical_offset == base) {
		size_t i = lo;
		run_end = img->idx[i].logical_offset + img->idx[i].logical_length;
		while (i + 1 < img->nidx && img->idx[i + 1].logical_offset == run_end)
			run_end += img->idx[++i].logical_length;
		*state = IMAGO_USED;
	} else {
		run_end = lo < img->nidx ? img->idx[lo].logical_offset : end;
		*state = IMAGO_ZERO;
	}
	if (run_end > end)
		run_end = end;
	*len = run_end - off;
	return 0;
}

static const struct imago_err *img_error(struct backend *b)
{
	return imago_image_error(b->priv);
}

static void img_close(struct backend *b)
{
	imago_image_close(b->priv);
}

static const struct backend_ops img_ops = {
	.pread = img_pread,
	.status = img_status,
	.error = img_error,
	.close = img_close,
};

int backend_from_image(imago_image *img, const char *name, struct backend **out,
		       struct imago_err *err)
{
	struct backend *b = calloc(1, sizeof(*b));
	if (!b || !(b->name = strdup(name))) {
		free(b);
		imago_image_close(img);
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	}
	struct imago_info info;
	imago_image_info(img, &info);
	b->ops = &img_ops;
	b->kind = "imago";
	b->size = info.device_size;
	b->sector_size = info.logical_sector_size ? info.logical_sector_size : 512;
	memcpy(b->identity, info.digest, BACKEND_ID_LEN);
	b->priv = img;
	*out = b;
	return 0;
}

imago_image *backend_image(struct backend *b)
{
	return b->ops == &img_ops ? b->priv : NULL;
}

static int img_probe(const uint8_t *head, size_t len)
{
	return len >= 8 && memcmp(head, fmt_magic, 8) == 0;
}

static int img_open(const char *path, struct backend **out, struct imago_err *err)
{
	imago_image *img;
	int r = imago_image_open(path, &img, err);
	if (r < 0)
		return r;
	return backend_from_image(img, path, out, err);
}

const struct backend_kind backend_kind_imago = { "imago", img_probe, img_open };
