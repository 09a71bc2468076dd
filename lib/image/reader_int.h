/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The reader's handle, shared with restore/verify (which check frames against it). */
#ifndef IMAGO_IMAGE_READER_INT_H
#define IMAGO_IMAGE_READER_INT_H

#include <stdint.h>

#include <zstd.h>

#include "extent/extent_map.h"
#include "image/format.h"

struct imago_image {
	int fd;
	int own_fd;
	char *name;
	uint64_t file_size;
	struct fmt_header hdr;
	struct fmt_trailer trl;
	struct extent_map map;
	struct extent_map alloc;  /* the allocation map (USED/FREE as known before reading) */
	struct fmt_index_entry *idx;
	size_t nidx;
	char **meta;          /* key, value, ..., NULL */
	size_t nmeta;

	struct chunk_cache *cc; /* decoded chunks for imago_image_pread (chunk_cache.h);
				   it also guards err */
	struct imago_err err;
};

/* Index entry for chunk number `chunk`, or NULL when the chunk is not stored. */
const struct fmt_index_entry *reader_find_chunk(const struct imago_image *img, uint64_t chunk);

/* Read and fully check one stored chunk into out (entry->logical_length bytes): frame
 * header, agreement with the index, decompression, data checksum. dctx and cbuf (size
 * ZSTD_compressBound(chunk_size)+FMT_FRAME_HDR_SIZE) are the caller's. 0 or -EBADMSG/-EIO
 * with err filled. */
int reader_load_chunk(const struct imago_image *img, const struct fmt_index_entry *e,
		      ZSTD_DCtx *dctx, uint8_t *cbuf, uint8_t *out, struct imago_err *err);

/* The index invariants of FORMAT.md §5.3 and its agreement with the extent map: entries
 * sorted, chunk-aligned, of the right lengths, inside [header end, data_end), not
 * overlapping, and exactly the chunks holding USED bytes. */
int reader_check_index(const struct fmt_header *hdr, uint64_t data_end, const struct extent_map *map,
		       const struct fmt_index_entry *idx, size_t nidx, const char *name,
		       uint64_t index_offset, struct imago_err *err);

/* Check a decoded frame header against the index entry it should match. */
int reader_frame_matches(const struct fmt_frame *f, const struct fmt_index_entry *e);

/* Decode payload (stored_length bytes) of a DATA frame into out and check its checksum.
 * *why says what failed. */
int reader_decode_payload(const struct fmt_frame *f, const uint8_t *payload, ZSTD_DCtx *dctx,
			  uint8_t *out, const char **why);

#endif
