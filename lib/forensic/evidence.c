// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * One read interface over the containers evidence comes in: imago images, E01 (ewf.c) and
 * raw files or block devices. convert, verify and hash use it, and so can the FUSE mount
 * (open, size, pread; metadata and stored digests for its info files).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "forensic/evidence_int.h"
#include "image/format.h"
#include "util/err.h"
#include "util/xio.h"

int ev_meta_add(struct imago_evidence *ev, const char *key, const char *value)
{
	if (ev->nmeta == ev->meta_cap) {
		size_t cap = ev->meta_cap ? 2 * ev->meta_cap : 16;
		char **v = realloc(ev->meta, 2 * cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		ev->meta = v;
		ev->meta_cap = cap;
	}
	char *k = strdup(key), *x = strdup(value);
	if (!k || !x) {
		free(k);
		free(x);
		return -ENOMEM;
	}
	ev->meta[2 * ev->nmeta] = k;
	ev->meta[2 * ev->nmeta + 1] = x;
	ev->nmeta++;
	return 0;
}

int ev_bad_add(struct imago_evidence *ev, uint64_t off, uint64_t len)
{
	struct fx_range *v = realloc(ev->bad, (ev->nbad + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	ev->bad = v;
	ev->bad[ev->nbad++] = (struct fx_range){ .offset = off, .length = len };
	return 0;
}

static int add_bad_extent(void *opaque, const struct imago_extent *e)
{
	struct imago_evidence *ev = opaque;
	if (e->state != IMAGO_BAD)
		return 0;
	return ev_bad_add(ev, e->offset, e->length) < 0 ? -ENOMEM : 0;
}

static int open_imago(struct imago_evidence *ev, int fd, const char *path, struct imago_err *err)
{
	int r = imago_image_open_fd(fd, path, &ev->img, err);
	if (r < 0)
		return r;
	struct imago_info info;
	imago_image_info(ev->img, &info);
	ev->size = info.device_size;
	ev->sector_size = info.logical_sector_size;
	const char *k, *v;
	for (size_t i = 0; imago_image_meta_at(ev->img, i, &k, &v); i++)
		if ((r = ev_meta_add(ev, k, v)) < 0)
			return err_set(err, r, -1, -1, -1, "out of memory");
	static const struct {
		const char *key;
		unsigned alg;
	} hk[] = { { "hash.md5", IMAGO_HASH_MD5 }, { "hash.sha1", IMAGO_HASH_SHA1 },
		   { "hash.sha256", IMAGO_HASH_SHA256 } };
	for (size_t i = 0; i < 3; i++) {
		const char *h = imago_image_meta(ev->img, hk[i].key);
		char *dst = hk[i].alg == IMAGO_HASH_MD5 ? ev->stored.md5
			    : hk[i].alg == IMAGO_HASH_SHA1 ? ev->stored.sha1 : ev->stored.sha256;
		size_t want = hk[i].alg == IMAGO_HASH_MD5 ? 32 : hk[i].alg == IMAGO_HASH_SHA1 ? 40 : 64;
		if (h && strlen(h) == want) {
			memcpy(dst, h, want + 1);
			ev->stored.algs |= hk[i].alg;
		}
	}
	if (imago_image_extents(ev->img, add_bad_extent, ev) < 0)
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	return 0;
}

static int open_raw(struct imago_evidence *ev, int fd, const char *path, struct imago_err *err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return err_set(err, -errno, -1, -1, -1, "%s: %s", path, strerror(errno));
	ev->fd = fd;
	ev->sector_size = 512;
	if (S_ISBLK(st.st_mode)) {
		uint64_t sz = 0;
		int ss = 0;
		if (ioctl(fd, BLKGETSIZE64, &sz) < 0)
			return err_set(err, -errno, -1, -1, -1, "%s: cannot get its size: %s", path,
				       strerror(errno));
		if (ioctl(fd, BLKSSZGET, &ss) == 0 && ss > 0)
			ev->sector_size = (uint32_t)ss;
		ev->size = sz;
	} else if (S_ISREG(st.st_mode)) {
		ev->size = (uint64_t)st.st_size;
	} else {
		return err_set(err, -EINVAL, -1, -1, -1, "%s: not a file or block device", path);
	}
	return 0;
}

int imago_evidence_open(const char *path, imago_evidence **out, struct imago_err *err)
{
	err_clear(err);
	*out = NULL;
	struct imago_evidence *ev = calloc(1, sizeof(*ev));
	if (!ev || !(ev->name = strdup(path))) {
		free(ev);
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	}
	ev->fd = -1;
	pthread_mutex_init(&ev->lock, NULL);
	err_clear(&ev->err);
	int r;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = err_set(err, -errno, -1, -1, -1, "%s: cannot open: %s", path, strerror(errno));
		goto fail;
	}
	uint8_t head[8] = { 0 };
	ssize_t n = xpread_full(fd, head, sizeof(head), 0);
	if (n < 0) {
		close(fd);
		r = err_set(err, (int)n, -1, -1, -1, "%s: cannot read: %s", path, strerror((int)-n));
		goto fail;
	}
	if ((size_t)n == sizeof(head) && memcmp(head, fmt_magic, 8) == 0) {
		ev->kind = IMAGO_EVIDENCE_IMAGO;
		r = open_imago(ev, fd, path, err);
		if (r < 0 && !ev->img)
			close(fd);
		else if (ev->img)
			ev->fd = fd; /* closed with the image handle below */
	} else if (ewf_is_ewf(head, (size_t)n)) {
		close(fd);
		ev->kind = IMAGO_EVIDENCE_EWF;
		r = ewf_open(ev, path, err);
	} else {
		ev->kind = IMAGO_EVIDENCE_RAW;
		r = open_raw(ev, fd, path, err);
		if (r < 0)
			close(fd);
	}
	if (r < 0)
		goto fail;
	*out = ev;
	return 0;
fail:
	imago_evidence_close(ev);
	return r;
}

void imago_evidence_close(imago_evidence *ev)
{
	if (!ev)
		return;
	if (ev->img)
		imago_image_close(ev->img);
	if (ev->fd >= 0)
		close(ev->fd);
	ewf_close(ev);
	for (size_t i = 0; i < 2 * ev->nmeta; i++)
		free(ev->meta[i]);
	free(ev->meta);
	free(ev->bad);
	free(ev->name);
	pthread_mutex_destroy(&ev->lock);
	free(ev);
}

enum imago_evidence_kind imago_evidence_kind(const imago_evidence *ev)
{
	return ev->kind;
}

uint64_t imago_evidence_size(const imago_evidence *ev)
{
	return ev->size;
}

uint32_t imago_evidence_sector_size(const imago_evidence *ev)
{
	return ev->sector_size;
}

ssize_t imago_evidence_pread(imago_evidence *ev, void *buf, size_t len, uint64_t offset)
{
	switch (ev->kind) {
	case IMAGO_EVIDENCE_IMAGO: {
		ssize_t r = imago_image_pread(ev->img, buf, len, offset);
		if (r < 0)
			err_copy(&ev->err, imago_image_error(ev->img));
		return r;
	}
	case IMAGO_EVIDENCE_EWF:
		return ewf_pread(ev, buf, len, offset);
	default: {
		if (offset >= ev->size)
			return 0;
		if (len > ev->size - offset)
			len = (size_t)(ev->size - offset);
		ssize_t r = xpread_full(ev->fd, buf, len, offset);
		if (r < 0)
			err_set(&ev->err, (int)r, -1, (int64_t)offset, -1, "%s: cannot read at byte %llu: %s",
				ev->name, (unsigned long long)offset, strerror((int)-r));
		return r;
	}
	}
}

int imago_evidence_meta_at(const imago_evidence *ev, size_t i, const char **key, const char **value)
{
	if (i >= ev->nmeta)
		return 0;
	*key = ev->meta[2 * i];
	*value = ev->meta[2 * i + 1];
	return 1;
}

const char *imago_evidence_meta(const imago_evidence *ev, const char *key)
{
	for (size_t i = 0; i < ev->nmeta; i++)
		if (strcmp(ev->meta[2 * i], key) == 0)
			return ev->meta[2 * i + 1];
	return NULL;
}

void imago_evidence_stored_hashes(const imago_evidence *ev, struct imago_hashes *out)
{
	*out = ev->stored;
}

int imago_evidence_bad_ranges(const imago_evidence *ev, int (*fn)(void *, uint64_t, uint64_t),
			      void *opaque)
{
	for (size_t i = 0; i < ev->nbad; i++) {
		int r = fn(opaque, ev->bad[i].offset, ev->bad[i].length);
		if (r)
			return r;
	}
	return 0;
}

uint64_t imago_evidence_damaged(imago_evidence *ev)
{
	return ev->kind == IMAGO_EVIDENCE_EWF ? ewf_damaged(ev) : 0;
}

imago_image *imago_evidence_image(imago_evidence *ev)
{
	return ev->img;
}

const struct imago_err *imago_evidence_error(const imago_evidence *ev)
{
	return &ev->err;
}
