/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The copy-on-write overlay: a file that takes every write made to a backend (a mounted
 * image, an NBD export), so the image itself is never written. Its layout is
 * docs/OVERLAY.md. Reads of blocks the overlay holds come from it (each checked against
 * its checksum: a damaged block gives -EBADMSG, never data); other blocks from the image.
 */
#ifndef IMAGO_BACKEND_OVERLAY_H
#define IMAGO_BACKEND_OVERLAY_H

#include <stdint.h>

#include "backend/backend.h"

#define OVL_HEADER_SIZE 4096u
#define OVL_HEADER_USED 128u
#define OVL_REC_HDR_SIZE 64u
#define OVL_BLOCK_DEFAULT 4096u
#define OVL_BLOCK_MIN 512u
#define OVL_BLOCK_MAX (1u << 20)
#define OVL_VERSION_MAJOR 1
#define OVL_VERSION_MINOR 0
#define OVL_REC_MAGIC 0x52564f49u /* "IOVR" as little-endian u32 */
/* Sequence numbers at or above this are invalid: no overlay writes 2^62 records, and the
 * next number must never wrap. */
#define OVL_SEQ_LIMIT (1ull << 62)

struct ovl_header {
	uint16_t major, minor;
	uint32_t block_size;
	uint64_t device_size;
	uint8_t identity[BACKEND_ID_LEN];
	uint64_t overlay_id;
	uint64_t flags;
};

struct ovl_record {
	uint64_t overlay_id;
	uint64_t block;
	uint64_t seq;
	uint64_t data_checksum;
};

/* Decode and check the first OVL_HEADER_USED bytes of an overlay file. 0, -ENOTSUP (not
 * an overlay, or a version/feature this code does not know) or -EBADMSG, with *why. */
int ovl_header_decode(const uint8_t *p, struct ovl_header *h, const char **why);
void ovl_header_encode(const struct ovl_header *h, uint8_t out[OVL_HEADER_USED]);
/* Decode a record header; 0 when its magic and checksum are right, else -EBADMSG. */
int ovl_record_decode(const uint8_t *p, struct ovl_record *r);
void ovl_record_encode(const struct ovl_record *r, uint8_t out[OVL_REC_HDR_SIZE]);

enum ovl_flags {
	OVL_CREATE = 1 << 0,  /* make the file when it does not exist (or is empty) */
};

/* Stack an overlay kept in the file at path (opened read-write and locked: a second
 * user gets -EBUSY) on lower. block_size: for a new overlay (0 = default). The overlay
 * must belong to lower: its device size and identity must match (-EXDEV otherwise).
 * On success the overlay owns lower (backend_close closes both); on failure lower is
 * left to the caller. */
int overlay_open(struct backend *lower, const char *path, unsigned flags, uint32_t block_size,
		 struct backend **out, struct imago_err *err);
/* The same on an open file descriptor (not closed on failure; owned on success). */
int overlay_open_fd(struct backend *lower, int fd, const char *name, unsigned flags,
		    uint32_t block_size, struct backend **out, struct imago_err *err);

/* Blocks the overlay holds (valid records), and records found damaged when it opened. */
void overlay_counts(struct backend *b, uint64_t *blocks, uint64_t *damaged);

#endif
