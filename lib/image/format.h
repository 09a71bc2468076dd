/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * On-disk structures of the imago format (docs/FORMAT.md) and their encoders/decoders.
 * On-disk bytes are never cast to structs: every field is (de)serialised explicitly,
 * little-endian, so the layout does not depend on the compiler or the host.
 */
#ifndef IMAGO_IMAGE_FORMAT_H
#define IMAGO_IMAGE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "imago.h"

#define FMT_HEADER_SIZE 512
#define FMT_FRAME_HDR_SIZE 48
#define FMT_SECTION_HDR_SIZE 24
#define FMT_SECTION_TAIL_SIZE 8
#define FMT_TRAILER_SIZE 128
#define FMT_EXTENT_ENTRY_SIZE 24
#define FMT_INDEX_ENTRY_SIZE 32
#define FMT_LEAF_SIZE 65536u
#define FMT_CODEC_ZSTD 1

extern const uint8_t fmt_magic[8];

enum fmt_frame_type {
	FMT_FRAME_RAW = 1,
	FMT_FRAME_ZSTD = 2,
	FMT_FRAME_ZERO = 3,
};

#define FMT_SEC_METADATA 0x4d474d49u /* "IMGM" as little-endian u32 */
#define FMT_SEC_EXTENTS 0x45474d49u  /* "IMGE" */
#define FMT_SEC_INDEX 0x49474d49u    /* "IMGI" */
#define FMT_SEC_ALLOC 0x41474d49u    /* "IMGA": the allocation map, right after the header */
/* Most runs an allocation map may have (bounds what a streaming reader must hold). */
#define FMT_ALLOC_MAX_RUNS (4u << 20)
#define FMT_FRAME_MAGIC 0x46474d49u  /* "IMGF" */

struct fmt_header {
	uint16_t version_major, version_minor;
	uint32_t header_size;
	uint64_t incompat, compat;
	uint64_t device_size;
	uint32_t chunk_size;
	uint32_t logical_sector_size, physical_sector_size;
	uint8_t codec, level;
	uint64_t frames_offset; /* where the first frame starts: after the allocation map */
	uint64_t checksum; /* filled by decode; computed by encode */
};

struct fmt_frame {
	uint8_t type;
	uint64_t logical_offset;
	uint64_t logical_length;
	uint64_t stored_length;
	uint64_t data_checksum;
};

struct fmt_section {
	uint32_t magic;
	uint64_t count;
	uint64_t length;
};

struct fmt_trailer {
	uint64_t metadata_offset, extents_offset, index_offset;
	uint64_t data_frames, zero_frames, stored_bytes, device_size;
	uint8_t digest[IMAGO_DIGEST_LEN];
	uint64_t header_checksum;
};

struct fmt_index_entry {
	uint64_t logical_offset;
	uint64_t file_offset;
	uint32_t logical_length;
	uint32_t stored_length;
	uint64_t data_checksum;
};

/* little-endian helpers */
static inline void put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void put_le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void put_le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline uint16_t get_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* XXH3-64 with seed (the format's checksum everywhere). */
uint64_t fmt_xxh3(const void *data, size_t len, uint64_t seed);

/* Chunk sizes the format allows (power of two, 64 KiB .. 16 MiB). */
int fmt_chunk_size_valid(uint64_t cs);

void fmt_header_encode(const struct fmt_header *h, uint8_t out[FMT_HEADER_SIZE]);
/* Checks magic, size, checksum, version, features, chunk size, codec. 0, -ENOTSUP
 * (not an imago image / unknown version or feature) or -EBADMSG (damaged); *why says what. */
int fmt_header_decode(const uint8_t in[FMT_HEADER_SIZE], struct fmt_header *h, const char **why);

void fmt_frame_encode(const struct fmt_frame *f, uint8_t out[FMT_FRAME_HDR_SIZE]);
/* Checks magic, header checksum, type and the type's length rules. */
int fmt_frame_decode(const uint8_t in[FMT_FRAME_HDR_SIZE], struct fmt_frame *f, const char **why);

void fmt_section_encode(const struct fmt_section *s, uint8_t out[FMT_SECTION_HDR_SIZE]);
void fmt_section_decode(const uint8_t in[FMT_SECTION_HDR_SIZE], struct fmt_section *s);

/* The checksum stored after a section: XXH3 of its 24-byte header and its payload.
 * 0, or -ENOMEM. */
int fmt_section_checksum(const uint8_t hdr[FMT_SECTION_HDR_SIZE], const uint8_t *payload,
			 uint64_t len, uint64_t *sum);

void fmt_trailer_encode(const struct fmt_trailer *t, uint8_t out[FMT_TRAILER_SIZE]);
int fmt_trailer_decode(const uint8_t in[FMT_TRAILER_SIZE], struct fmt_trailer *t, const char **why);

void fmt_index_entry_encode(const struct fmt_index_entry *e, uint8_t out[FMT_INDEX_ENTRY_SIZE]);
void fmt_index_entry_decode(const uint8_t in[FMT_INDEX_ENTRY_SIZE], struct fmt_index_entry *e);

void fmt_extent_encode(const struct imago_extent *e, uint8_t out[FMT_EXTENT_ENTRY_SIZE]);
void fmt_extent_decode(const uint8_t in[FMT_EXTENT_ENTRY_SIZE], struct imago_extent *e);

/* Length of chunk number `chunk` on a device (chunk_size, or less for the last one). */
static inline uint64_t fmt_chunk_len(uint64_t device_size, uint32_t chunk_size, uint64_t chunk)
{
	uint64_t off = chunk * chunk_size;
	uint64_t rest = device_size - off;
	return rest < chunk_size ? rest : chunk_size;
}

/* Size of the allocation map section (header, runs, checksum) for `runs` runs. */
static inline uint64_t fmt_alloc_section_size(uint64_t runs)
{
	return FMT_SECTION_HDR_SIZE + runs * FMT_EXTENT_ENTRY_SIZE + FMT_SECTION_TAIL_SIZE;
}

/* Decode an allocation map payload (count runs) into m, a map of device_size bytes:
 * runs must tile the device, be coalesced, and be USED, FREE, BAD or UNTRIED. 0 or
 * -EBADMSG/-ENOMEM,
 * *why says what. */
struct extent_map;
int fmt_alloc_decode(const uint8_t *p, uint64_t len, uint64_t count, uint64_t device_size,
		     struct extent_map *m, const char **why);

/* The final extent map must agree with the allocation map: exactly the same FREE (BAD,
 * UNTRIED) bytes; every USED byte of the allocation map is USED or ZERO in the final one.
 * 0, or -EBADMSG with *at the first device byte where they disagree. */
int fmt_alloc_matches(const struct extent_map *alloc, const struct extent_map *final, uint64_t *at);

/* Metadata section payload: parse into a NULL-free array of key/value strings
 * (allocated as one block; free(*kv)). Checks every length against the payload. */
int fmt_metadata_parse(const uint8_t *p, uint64_t len, uint64_t count, char ***kv);

#endif
