// SPDX-License-Identifier: GPL-3.0-or-later
/* imago_hash_fd: MD5/SHA-1/SHA-256 of a file or device in one read pass. The reader
 * fills a ring of buffers while the digest threads work on the ones before. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "imago.h"
#include "util/err.h"
#include "util/progress.h"
#include "util/xio.h"

#define HF_BUFS 4
#define HF_PIECE (4u << 20)

int imago_hash_fd(int fd, uint64_t size, unsigned algs, struct imago_hashes *out,
		  imago_progress_fn progress, void *opaque, struct imago_err *err)
{
	err_clear(err);
	imago_mhash *h = NULL;
	int r = imago_mhash_new(algs, &h);
	if (r < 0)
		return err_set(err, r, -1, -1, -1, "cannot start the digests: %s", strerror(-r));
	uint8_t *buf[HF_BUFS] = { 0 };
	int64_t ticket[HF_BUFS];
	for (int i = 0; i < HF_BUFS; i++) {
		ticket[i] = -1;
		if (!(buf[i] = malloc(HF_PIECE))) {
			r = err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
			goto out;
		}
	}
	struct progress_clock clock;
	progress_clock_init(&clock);
	uint64_t pos = 0;
	for (unsigned k = 0; pos < size; k = (k + 1) % HF_BUFS) {
		if (ticket[k] >= 0)
			imago_mhash_wait(h, (uint64_t)ticket[k]);
		size_t n = size - pos < HF_PIECE ? (size_t)(size - pos) : HF_PIECE;
		ssize_t got = xpread_full(fd, buf[k], n, pos);
		if (got < 0) {
			r = err_set(err, (int)got, -1, (int64_t)pos, -1, "cannot read at byte %llu: %s",
				    (unsigned long long)pos, strerror((int)-got));
			goto out;
		}
		if ((size_t)got < n) {
			r = err_set(err, -EIO, -1, (int64_t)(pos + (uint64_t)got), -1,
				    "input ended at byte %llu, before its size of %llu bytes",
				    (unsigned long long)(pos + (uint64_t)got), (unsigned long long)size);
			goto out;
		}
		ticket[k] = imago_mhash_feed(h, buf[k], n);
		pos += n;
		if (progress_tick(&clock, pos, size, progress, opaque)) {
			r = err_set(err, -ECANCELED, -1, (int64_t)pos, -1, "cancelled");
			goto out;
		}
	}
	if ((r = imago_mhash_final(h, out)) < 0)
		err_set(err, r, -1, -1, -1, "out of memory");
	else
		progress_final(&clock, size, progress, opaque);
out:
	imago_mhash_drain(h);
	imago_mhash_free(h);
	for (int i = 0; i < HF_BUFS; i++)
		free(buf[i]);
	return r;
}
