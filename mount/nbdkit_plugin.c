/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbdkit plugin: serve an image over NBD, read-only, or with a copy-on-write overlay
 * taking the writes:
 *
 *   nbdkit build/nbdkit-imago-plugin.so image=IMAGE [overlay=FILE]
 *
 * One backend (lib/backend/backend.h) is opened for the server and shared by every
 * connection (its pread is thread-safe; the parallel thread model lets requests decode
 * chunks at once). Damaged data reads as EIO, never as wrong bytes. Block status comes
 * from the image's chunk index (chunks not stored read as zeros), so nbdcopy and
 * qemu-img skip them.
 */
#define NBDKIT_API_VERSION 2
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nbdkit-plugin.h>

#include "backend/backend.h"
#include "backend/overlay.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL

static char *image_path, *overlay_path;
static struct backend *bk, *lower;

static int im_config(const char *key, const char *value)
{
	if (strcmp(key, "image") == 0) {
		free(image_path);
		if (!(image_path = nbdkit_absolute_path(value)))
			return -1;
		return 0;
	}
	if (strcmp(key, "overlay") == 0) {
		free(overlay_path);
		if (!(overlay_path = nbdkit_absolute_path(value)))
			return -1;
		return 0;
	}
	nbdkit_error("unknown parameter '%s' (image=IMAGE [overlay=FILE])", key);
	return -1;
}

static int im_config_complete(void)
{
	if (!image_path) {
		nbdkit_error("image=IMAGE is required");
		return -1;
	}
	return 0;
}

/* Open before nbdkit forks into the background, so a bad image fails the start. */
static int im_get_ready(void)
{
	struct imago_err err;
	int r = backend_open(image_path, &lower, &err);
	if (r < 0) {
		nbdkit_error("%s", err.msg);
		return -1;
	}
	imago_image *img = backend_image(lower);
	struct imago_cache_opts quiet = { .flags = IMAGO_CACHE_NO_READAHEAD };
	if (img)
		imago_image_set_cache(img, &quiet);
	bk = lower;
	if (overlay_path) {
		r = overlay_open(lower, overlay_path, OVL_CREATE, 0, &bk, &err);
		if (r < 0) {
			nbdkit_error("%s", err.msg);
			backend_close(lower);
			lower = NULL;
			return -1;
		}
	}
	return 0;
}

/* After the fork: the read-ahead threads may start now. */
static int im_after_fork(void)
{
	imago_image *img = backend_image(lower);
	if (img && imago_image_set_cache(img, NULL) < 0) {
		nbdkit_error("out of memory for the chunk cache");
		return -1;
	}
	return 0;
}

static void im_unload(void)
{
	backend_close(bk);
	free(image_path);
	free(overlay_path);
}

static void *im_open(int readonly)
{
	return bk;
}

static int64_t im_get_size(void *h)
{
	return (int64_t)bk->size;
}

static int im_can_write(void *h)
{
	return bk->ops->pwrite != NULL;
}

static int im_can_flush(void *h)
{
	return bk->ops->flush != NULL;
}

static int im_can_extents(void *h)
{
	return bk->ops->status != NULL;
}

/* Every connection sees the one backend: a flush on one covers writes on all. */
static int im_can_multi_conn(void *h)
{
	return 1;
}

static int fail(int code)
{
	nbdkit_error("%s", backend_errmsg(bk, code));
	errno = code == -ENOMEM ? ENOMEM : code == -ENOSPC ? ENOSPC : EIO;
	return -1;
}

static int im_pread(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	ssize_t n = backend_pread(bk, buf, count, offset);
	if (n < 0)
		return fail((int)n);
	if ((size_t)n < count) {
		nbdkit_error("read past the end of the disk");
		errno = EIO;
		return -1;
	}
	return 0;
}

static int im_pwrite(void *h, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	ssize_t n = bk->ops->pwrite(bk, buf, count, offset);
	if (n < 0)
		return fail((int)n);
	if ((flags & NBDKIT_FLAG_FUA) && bk->ops->flush && bk->ops->flush(bk) < 0)
		return fail(-EIO);
	return 0;
}

static int im_flush(void *h, uint32_t flags)
{
	int r = bk->ops->flush(bk);
	return r < 0 ? fail(r) : 0;
}

static int im_extents(void *h, uint32_t count, uint64_t offset, uint32_t flags,
		      struct nbdkit_extents *extents)
{
	uint64_t end = offset + count;
	while (offset < end) {
		uint64_t len;
		enum imago_state st;
		int r = bk->ops->status(bk, offset, &len, &st);
		if (r < 0)
			return fail(r);
		uint32_t type = st == IMAGO_USED ? 0 : NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO;
		if (nbdkit_add_extent(extents, offset, len, type) < 0)
			return -1;
		offset += len;
		if (flags & NBDKIT_FLAG_REQ_ONE)
			break;
	}
	return 0;
}

static struct nbdkit_plugin plugin = {
	.name = "imago",
	.longname = "imago disk images",
	.version = IMAGO_VERSION_STRING,
	.description = "Serve an imago image read-only, or with a copy-on-write overlay",
	.config = im_config,
	.config_complete = im_config_complete,
	.config_help = "image=IMAGE     (required) the image to serve\n"
		       "overlay=FILE    writes go to FILE (made when missing), never to the image",
	.magic_config_key = "image",
	.get_ready = im_get_ready,
	.after_fork = im_after_fork,
	.unload = im_unload,
	.open = im_open,
	.get_size = im_get_size,
	.can_write = im_can_write,
	.can_flush = im_can_flush,
	.can_extents = im_can_extents,
	.can_multi_conn = im_can_multi_conn,
	.pread = im_pread,
	.pwrite = im_pwrite,
	.flush = im_flush,
	.extents = im_extents,
};

NBDKIT_REGISTER_PLUGIN(plugin)
