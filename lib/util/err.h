/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Filling struct imago_err: the library's only way to say what failed and where. */
#ifndef IMAGO_UTIL_ERR_H
#define IMAGO_UTIL_ERR_H

#include "imago.h"

/* Set err (if not NULL) and return code (a negative errno), so callers can write
 * `return err_set(err, -EBADMSG, foff, doff, chunk, "fmt", ...)`. Offsets/chunk -1 = n/a. */
int err_set(struct imago_err *err, int code, int64_t file_offset, int64_t dev_offset,
	    int64_t chunk, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The same for a failed write to the restore/clone target: sets in_target, so the caller
 * names the target, not the image or source, whatever the errno. */
int err_set_target(struct imago_err *err, int code, int64_t dev_offset, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Reset to "no error". */
void err_clear(struct imago_err *err);

/* Copy src into dst (either may be NULL). */
void err_copy(struct imago_err *dst, const struct imago_err *src);

#endif
