/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/spool.h"
#include "util/xio.h"

void spool_init(struct spool *s, size_t mem_limit)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	/* IMAGO_SPOOL_MEM lowers the default so tests can reach the spill path cheaply. */
	const char *env = getenv("IMAGO_SPOOL_MEM");
	size_t dflt = env && *env ? (size_t)strtoull(env, NULL, 10) : 0;
	s->mem_limit = mem_limit ? mem_limit : dflt ? dflt : (size_t)8 << 20;
}

void spool_free(struct spool *s)
{
	free(s->buf);
	if (s->fd >= 0)
		close(s->fd);
	spool_init(s, s->mem_limit);
}

uint64_t spool_size(const struct spool *s)
{
	return s->spilled + s->len;
}

static int open_tmp(void)
{
	const char *dirs[] = { getenv("TMPDIR"), "/var/tmp", "/tmp" };
	int err = ENOENT;
	for (size_t i = 0; i < 3; i++) {
		if (!dirs[i] || !*dirs[i])
			continue;
		int fd = open(dirs[i], O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		err = errno;
	}
	return -err;
}

int spool_append(struct spool *s, const void *data, size_t len)
{
	if (s->len + len > s->mem_limit && s->len) {
		if (s->fd < 0 && (s->fd = open_tmp()) < 0) {
			int e = s->fd;
			s->fd = -1;
			return e;
		}
		int r = xpwrite_full(s->fd, s->buf, s->len, s->spilled);
		if (r < 0)
			return r;
		s->spilled += s->len;
		s->len = 0;
	}
	if (s->len + len > s->cap) {
		size_t nc = s->cap ? s->cap : 4096;
		while (nc < s->len + len)
			nc *= 2;
		uint8_t *p = realloc(s->buf, nc);
		if (!p)
			return -ENOMEM;
		s->buf = p;
		s->cap = nc;
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	return 0;
}

int spool_replay(struct spool *s, int (*fn)(void *, const uint8_t *, size_t), void *opaque)
{
	if (s->spilled) {
		size_t piece = s->cap ? s->cap : 4096;
		uint8_t *tmp = malloc(piece);
		if (!tmp)
			return -ENOMEM;
		for (uint64_t off = 0; off < s->spilled;) {
			size_t n = (size_t)(s->spilled - off < piece ? s->spilled - off : piece);
			ssize_t r = xpread_full(s->fd, tmp, n, off);
			if (r != (ssize_t)n) {
				free(tmp);
				return r < 0 ? (int)r : -EIO;
			}
			int rc = fn(opaque, tmp, n);
			if (rc) {
				free(tmp);
				return rc;
			}
			off += n;
		}
		free(tmp);
	}
	return s->len ? fn(opaque, s->buf, s->len) : 0;
}
