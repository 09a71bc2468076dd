/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The reader's chunk cache: a bounded set of decoded chunks shared by every thread that
 * reads one image, with read-ahead for sequential readers decoded in parallel by a few
 * worker threads. Every chunk is checked (reader_load_chunk) before it enters the cache;
 * a chunk that fails its check never enters it, and each reader of it gets the error.
 */
#ifndef IMAGO_IMAGE_CHUNK_CACHE_H
#define IMAGO_IMAGE_CHUNK_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "imago.h"

struct imago_image;
struct chunk_cache;

/* A cache for img, sized by o (zeros pick the defaults). No thread is started here: the
 * workers start at the first read-ahead, so a process may open an image and fork. */
int chunk_cache_new(struct imago_image *img, const struct imago_cache_opts *o,
		    struct chunk_cache **out);
/* Stop the workers (waiting for the chunk each is decoding) and free everything. */
void chunk_cache_free(struct chunk_cache *c);

/* imago_image_pread's work: bytes read, or a negative errno with img->err filled. */
ssize_t chunk_cache_pread(struct chunk_cache *c, void *buf, size_t len, uint64_t off);

void chunk_cache_stats(struct chunk_cache *c, struct imago_cache_stats *s);

#endif
