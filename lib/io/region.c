// SPDX-License-Identifier: GPL-3.0-or-later
#include "io/region.h"

#include <errno.h>
#include <string.h>

#include "util/xio.h"

struct region region_fd(int fd, uint64_t base, uint64_t size, const char *name)
{
	return (struct region){ .fd = fd, .base = base, .size = size, .name = name };
}

struct region region_mem(const void *buf, size_t size, const char *name)
{
	return (struct region){ .fd = -1, .mem = buf, .base = 0, .size = size, .name = name };
}

struct region region_cb(ssize_t (*read)(void *opaque, void *buf, size_t len, uint64_t off),
			void *opaque, uint64_t size, const char *name)
{
	return (struct region){ .fd = -1, .read = read, .opaque = opaque, .size = size,
				.name = name };
}

struct region region_sub(const struct region *r, uint64_t off, uint64_t len)
{
	struct region s = *r;
	if (off > r->size)
		off = r->size;
	if (len > r->size - off)
		len = r->size - off;
	s.base = r->base + off;
	s.size = len;
	return s;
}

ssize_t region_pread(const struct region *r, void *buf, size_t len, uint64_t off)
{
	if (off >= r->size)
		return 0;
	if (len > r->size - off)
		len = (size_t)(r->size - off);
	if (r->mem) {
		memcpy(buf, r->mem + r->base + off, len);
		return (ssize_t)len;
	}
	if (r->read) {
		size_t done = 0;
		while (done < len) {
			ssize_t n = r->read(r->opaque, (uint8_t *)buf + done, len - done,
					    r->base + off + done);
			if (n < 0)
				return n;
			if (n == 0)
				break;
			done += (size_t)n;
		}
		return (ssize_t)done;
	}
	if (r->fd < 0)
		return -EBADF;
	return xpread_full(r->fd, buf, len, r->base + off);
}

int region_read_exact(const struct region *r, void *buf, size_t len, uint64_t off)
{
	ssize_t n = region_pread(r, buf, len, off);
	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EBADMSG;
}
