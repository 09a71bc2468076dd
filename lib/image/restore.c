/* SPDX-License-Identifier: GPL-3.0-or-later */
/* imago_restore: the sequential engine (stream.c) writing what it reads and checks. */
#include <errno.h>

#include "image/stream.h"

int imago_restore(const struct imago_restore_opts *o, struct imago_restore_result *res,
		  struct imago_err *err)
{
	struct stream_opts so = { .mode = STREAM_RESTORE, .image_fd = o->image_fd,
				  .name = o->image_name ? o->image_name : "image",
				  .target_fd = o->target_fd, .target_size = o->target_size,
				  .flags = o->flags, .against_fd = -1,
				  .window_offset = o->window_offset, .window_length = o->window_length, .threads = o->threads,
				  .progress = o->progress, .progress_opaque = o->progress_opaque };
	struct stream_result sr;
	int r = stream_run(&so, &sr, err);
	if ((r == 0 || r == -EILSEQ || r == -EFBIG) && res) {
		res->device_size = sr.device_size;
		res->bytes_written = sr.bytes_written;
		for (int i = 0; i < IMAGO_DIGEST_LEN; i++)
			res->digest[i] = sr.digest[i];
	}
	return r;
}
