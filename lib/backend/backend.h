/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * A backend: a virtual disk as the FUSE mount and the nbdkit plugin see it: a size, a
 * sector size, a thread-safe pread, optionally pwrite/flush and block status. An image
 * kind (the native imago image, backend_image.c; an E01 through libewf, backend_ewf.c) is
 * one `struct backend_kind` in lib/backend/registry.c, probed by the first bytes of the
 * file; the
 * copy-on-write overlay (overlay.h) is a backend stacked on another.
 *
 * Plugging in a new kind: write one file defining `const struct backend_kind
 * backend_kind_NAME = { "NAME", probe, open }` whose open fills a struct backend (ops,
 * size, sector_size, identity, name) around its own handle in `priv`, and add it to the
 * table in registry.c (and its source to meson.build). Nothing in mount/ changes.
 */
#ifndef IMAGO_BACKEND_BACKEND_H
#define IMAGO_BACKEND_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "imago.h"

#define BACKEND_ID_LEN 32

struct backend;

struct backend_ops {
	/* Read len bytes at off. Thread-safe. Returns len, fewer only at the end of the
	 * disk, or a negative errno (-EBADMSG: damaged data, never returned as data; -EIO)
	 * with the detail in backend_error(). Required. */
	ssize_t (*pread)(struct backend *b, void *buf, size_t len, uint64_t off);
	/* Write; NULL for a read-only backend. Thread-safe. */
	ssize_t (*pwrite)(struct backend *b, const void *buf, size_t len, uint64_t off);
	/* Make written data durable; NULL when there is nothing to do. */
	int (*flush)(struct backend *b);
	/* Block status: the state (IMAGO_USED: data; IMAGO_ZERO/IMAGO_FREE: reads as zeros)
	 * of the run of bytes starting at off, in *state and *len (len > 0, not past the
	 * end). NULL: everything is data. */
	int (*status)(struct backend *b, uint64_t off, uint64_t *len, enum imago_state *state);
	/* The last error's detail (one line), for messages; NULL: none kept. */
	const struct imago_err *(*error)(struct backend *b);
	void (*close)(struct backend *b);
};

struct backend {
	const struct backend_ops *ops;
	uint64_t size;               /* bytes of the disk */
	uint32_t sector_size;        /* logical sector size */
	/* What a copy-on-write overlay binds to: a digest of the content that never
	 * changes while the backend is the same disk (for imago images: the content
	 * digest). Two backends with the same identity and size read the same bytes. */
	uint8_t identity[BACKEND_ID_LEN];
	const char *kind;            /* "imago", "overlay", ... */
	char *name;                  /* for messages (malloc'd; freed by backend_close) */
	void *priv;
};

struct backend_kind {
	const char *name;
	/* Nonzero when the first bytes of a file (len of them, up to 4096) look like this
	 * kind. */
	int (*probe)(const uint8_t *head, size_t len);
	int (*open)(const char *path, struct backend **out, struct imago_err *err);
};

/* Open path with the kind that claims it. -ENOTSUP when none does. */
int backend_open(const char *path, struct backend **out, struct imago_err *err);

static inline ssize_t backend_pread(struct backend *b, void *buf, size_t len, uint64_t off)
{
	return b->ops->pread(b, buf, len, off);
}

/* The last error's message, or a generic one for code. */
const char *backend_errmsg(struct backend *b, int code);

void backend_close(struct backend *b);

/* The native imago image kind (backend_image.c). */
extern const struct backend_kind backend_kind_imago;
/* The backend over an image already open; takes ownership of img. */
int backend_from_image(imago_image *img, const char *name, struct backend **out,
		       struct imago_err *err);
/* The image under an imago backend (NULL for other kinds), e.g. to tune its cache. */
imago_image *backend_image(struct backend *b);

/* E01 evidence through lib/forensic (backend_ewf.c): read-only. */
extern const struct backend_kind backend_kind_ewf;

#endif
