/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Sequential reading of a whole image (FORMAT.md §8.6): frames in file order on the
 * pipeline (decompress + check on N workers), then the sections and the trailer, all
 * cross-checked. restore (which writes what it reads) and verify (which only checks, or
 * compares with a source) are this one engine with different consumers.
 */
#ifndef IMAGO_IMAGE_STREAM_H
#define IMAGO_IMAGE_STREAM_H

#include <stdint.h>

#include "imago.h"

enum stream_mode { STREAM_VERIFY, STREAM_RESTORE };

struct stream_opts {
	enum stream_mode mode;
	int image_fd;
	const char *name;
	int target_fd;           /* restore */
	uint64_t target_size;
	unsigned flags;          /* enum imago_restore_flags */
	uint64_t window_offset, window_length; /* restore: see imago_restore_opts */
	int against_fd;          /* verify: -1 or a source to compare */
	uint64_t against_size;
	unsigned threads;
	imago_progress_fn progress;
	void *progress_opaque;
};

struct stream_result {
	uint64_t device_size;
	uint64_t chunks;
	uint64_t bytes_written;
	uint8_t digest[IMAGO_DIGEST_LEN];
};

int stream_run(const struct stream_opts *o, struct stream_result *res, struct imago_err *err);

#endif
