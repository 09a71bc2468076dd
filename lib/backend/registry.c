/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The image kinds a mount or the nbdkit plugin can open, probed by their first bytes. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "util/err.h"
#include "util/xio.h"

static const struct backend_kind *const kinds[] = {
	&backend_kind_imago,
	&backend_kind_ewf,
};

int backend_open(const char *path, struct backend **out, struct imago_err *err)
{
	uint8_t head[4096];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, -errno, -1, -1, -1, "%s: cannot open: %s", path, strerror(errno));
	ssize_t n = xpread_full(fd, head, sizeof(head), 0);
	close(fd);
	if (n < 0)
		return err_set(err, (int)n, 0, -1, -1, "%s: cannot read: %s", path, strerror((int)-n));
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i]->probe(head, (size_t)n))
			return kinds[i]->open(path, out, err);
	return err_set(err, -ENOTSUP, 0, -1, -1, "%s: not an image this program can open", path);
}

const char *backend_errmsg(struct backend *b, int code)
{
	const struct imago_err *e = b->ops->error ? b->ops->error(b) : NULL;
	if (e && e->code && e->msg[0])
		return e->msg;
	return strerror(code < 0 ? -code : code);
}

void backend_close(struct backend *b)
{
	if (!b)
		return;
	b->ops->close(b);
	free(b->name);
	free(b);
}
