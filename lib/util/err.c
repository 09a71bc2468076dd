/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

int err_set(struct imago_err *err, int code, int64_t file_offset, int64_t dev_offset,
	    int64_t chunk, const char *fmt, ...)
{
	if (!err)
		return code;
	err->code = code;
	err->file_offset = file_offset;
	err->dev_offset = dev_offset;
	err->chunk = chunk;
	err->in_target = 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return code;
}

int err_set_target(struct imago_err *err, int code, int64_t dev_offset, const char *fmt, ...)
{
	if (!err)
		return code;
	va_list ap;
	va_start(ap, fmt);
	char msg[sizeof(err->msg)];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	err_set(err, code, -1, dev_offset, -1, "%s", msg);
	err->in_target = 1;
	return code;
}

void err_clear(struct imago_err *err)
{
	if (!err)
		return;
	err->code = 0;
	err->file_offset = -1;
	err->dev_offset = -1;
	err->chunk = -1;
	err->in_target = 0;
	err->msg[0] = '\0';
}

void err_copy(struct imago_err *dst, const struct imago_err *src)
{
	if (dst && src && dst != src)
		memcpy(dst, src, sizeof(*dst));
}
