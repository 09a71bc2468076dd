/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Encode/decode of every on-disk structure, and rejection of damaged ones. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "image/format.h"

static void header_roundtrip(void)
{
	struct fmt_header h = { .version_major = 1, .version_minor = 0, .device_size = 123456789,
				.chunk_size = 1 << 20, .logical_sector_size = 512,
				.physical_sector_size = 4096, .codec = FMT_CODEC_ZSTD, .level = 3,
				.frames_offset = FMT_HEADER_SIZE + 24 + 24 + 8 };
	uint8_t b[FMT_HEADER_SIZE];
	fmt_header_encode(&h, b);
	struct fmt_header d;
	const char *why = NULL;
	REQUIRE(fmt_header_decode(b, &d, &why) == 0);
	CHECK(d.device_size == h.device_size);
	CHECK(d.chunk_size == h.chunk_size);
	CHECK(d.logical_sector_size == 512 && d.physical_sector_size == 4096);
	CHECK(d.level == 3 && d.codec == FMT_CODEC_ZSTD);
	CHECK(d.frames_offset == h.frames_offset);
	CHECK(memcmp(b, fmt_magic, 8) == 0);
	CHECK(get_le64(b + 504) == d.checksum);
}

static void header_every_bit_flip_is_caught(void)
{
	struct fmt_header h = { .version_major = 1, .device_size = 1 << 30, .chunk_size = 1 << 20,
				.logical_sector_size = 512, .physical_sector_size = 512,
				.codec = FMT_CODEC_ZSTD, .level = 3, .frames_offset = 600 };
	uint8_t b[FMT_HEADER_SIZE];
	fmt_header_encode(&h, b);
	for (size_t bit = 0; bit < FMT_HEADER_SIZE * 8; bit++) {
		uint8_t c[FMT_HEADER_SIZE];
		memcpy(c, b, sizeof(c));
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		struct fmt_header d;
		const char *why = NULL;
		int r = fmt_header_decode(c, &d, &why);
		CHECK(r == -EBADMSG || r == -ENOTSUP);
		CHECK(why != NULL);
	}
}

static void header_rejects_bad_fields(void)
{
	const char *why;
	struct fmt_header d;
	uint8_t b[FMT_HEADER_SIZE];
	struct fmt_header h = { .version_major = 2, .chunk_size = 1 << 20, .codec = 1,
				.frames_offset = FMT_HEADER_SIZE + 32 };
	fmt_header_encode(&h, b);
	CHECK(fmt_header_decode(b, &d, &why) == -ENOTSUP); /* future major */
	h.version_major = 1;
	h.incompat = 1;
	fmt_header_encode(&h, b);
	CHECK(fmt_header_decode(b, &d, &why) == -ENOTSUP); /* unknown incompat feature */
	h.incompat = 0;
	h.compat = 1;
	fmt_header_encode(&h, b);
	CHECK(fmt_header_decode(b, &d, &why) == 0); /* unknown compat feature is fine */
	h.frames_offset = FMT_HEADER_SIZE + 32 + 23; /* not a whole number of runs */
	fmt_header_encode(&h, b);
	CHECK(fmt_header_decode(b, &d, &why) == -EBADMSG);
	h.frames_offset = FMT_HEADER_SIZE + 31; /* shorter than an empty allocation map */
	fmt_header_encode(&h, b);
	CHECK(fmt_header_decode(b, &d, &why) == -EBADMSG);
	h.frames_offset = FMT_HEADER_SIZE + 32;
	h.chunk_size = 3000;
	fmt_header_encode(&h, b);
	CHECK(fmt_header_decode(b, &d, &why) == -EBADMSG);
	h.chunk_size = 32u << 20;
	fmt_header_encode(&h, b);
	CHECK(fmt_header_decode(b, &d, &why) == -EBADMSG);
	h.chunk_size = 1 << 16;
	h.codec = 7;
	fmt_header_encode(&h, b);
	CHECK(fmt_header_decode(b, &d, &why) == -ENOTSUP);
	h.codec = 1;
	h.device_size = UINT64_MAX;
	fmt_header_encode(&h, b);
	CHECK(fmt_header_decode(b, &d, &why) == -EBADMSG);
	memset(b, 'x', sizeof(b));
	CHECK(fmt_header_decode(b, &d, &why) == -ENOTSUP); /* not an image */
}

static void frame_rules(void)
{
	uint8_t b[FMT_FRAME_HDR_SIZE];
	struct fmt_frame f = { .type = FMT_FRAME_ZSTD, .logical_offset = 5 << 20,
			       .logical_length = 1 << 20, .stored_length = 1000, .data_checksum = 42 };
	struct fmt_frame d;
	const char *why;
	fmt_frame_encode(&f, b);
	REQUIRE(fmt_frame_decode(b, &d, &why) == 0);
	CHECK(d.logical_offset == f.logical_offset && d.stored_length == 1000 && d.data_checksum == 42);
	for (size_t i = 0; i < FMT_FRAME_HDR_SIZE; i++) {
		uint8_t c[FMT_FRAME_HDR_SIZE];
		memcpy(c, b, sizeof(c));
		c[i] ^= 0x10;
		CHECK(fmt_frame_decode(c, &d, &why) == -EBADMSG);
	}
	f.stored_length = f.logical_length; /* zstd that did not shrink must be raw */
	fmt_frame_encode(&f, b);
	CHECK(fmt_frame_decode(b, &d, &why) == -EBADMSG);
	f.type = FMT_FRAME_RAW;
	fmt_frame_encode(&f, b);
	CHECK(fmt_frame_decode(b, &d, &why) == 0);
	f.stored_length = 10;
	fmt_frame_encode(&f, b);
	CHECK(fmt_frame_decode(b, &d, &why) == -EBADMSG);
	f = (struct fmt_frame){ .type = FMT_FRAME_ZERO, .logical_length = 1ull << 40 };
	fmt_frame_encode(&f, b);
	CHECK(fmt_frame_decode(b, &d, &why) == 0);
	f.stored_length = 1;
	fmt_frame_encode(&f, b);
	CHECK(fmt_frame_decode(b, &d, &why) == -EBADMSG);
	f = (struct fmt_frame){ .type = 4, .logical_length = 1 };
	fmt_frame_encode(&f, b);
	CHECK(fmt_frame_decode(b, &d, &why) == -EBADMSG);
	f = (struct fmt_frame){ .type = FMT_FRAME_RAW, .logical_length = IMAGO_CHUNK_MAX + 1,
				.stored_length = IMAGO_CHUNK_MAX + 1 };
	fmt_frame_encode(&f, b);
	CHECK(fmt_frame_decode(b, &d, &why) == -EBADMSG);
}

static void trailer_roundtrip_and_flips(void)
{
	struct fmt_trailer t = { .metadata_offset = 1000, .extents_offset = 2000, .index_offset = 3000,
				 .data_frames = 7, .zero_frames = 2, .stored_bytes = 99, .device_size = 1 << 24,
				 .header_checksum = 0x1122334455667788ull };
	for (int i = 0; i < 32; i++)
		t.digest[i] = (uint8_t)i;
	uint8_t b[FMT_TRAILER_SIZE];
	fmt_trailer_encode(&t, b);
	struct fmt_trailer d;
	const char *why;
	REQUIRE(fmt_trailer_decode(b, &d, &why) == 0);
	CHECK(memcmp(&d.digest, t.digest, 32) == 0);
	CHECK(d.index_offset == 3000 && d.data_frames == 7 && d.header_checksum == t.header_checksum);
	for (size_t i = 0; i < FMT_TRAILER_SIZE; i++) {
		uint8_t c[FMT_TRAILER_SIZE];
		memcpy(c, b, sizeof(c));
		c[i] ^= 0x01;
		CHECK(fmt_trailer_decode(c, &d, &why) == -EBADMSG);
	}
}

static void index_and_extent_entries(void)
{
	struct fmt_index_entry e = { .logical_offset = 1ull << 40, .file_offset = 12345,
				     .logical_length = 65536, .stored_length = 100,
				     .data_checksum = 0xdeadbeefcafef00dull }, d;
	uint8_t b[FMT_INDEX_ENTRY_SIZE];
	fmt_index_entry_encode(&e, b);
	fmt_index_entry_decode(b, &d);
	CHECK(memcmp(&e, &d, sizeof(e)) == 0);
	struct imago_extent x = { .offset = 77, .length = 1ull << 50, .state = IMAGO_ZERO }, y;
	uint8_t xb[FMT_EXTENT_ENTRY_SIZE];
	fmt_extent_encode(&x, xb);
	fmt_extent_decode(xb, &y);
	CHECK(y.offset == 77 && y.length == 1ull << 50 && y.state == IMAGO_ZERO);
	CHECK(get_le32(xb + 20) == 0);
}

static size_t put_kv(uint8_t *p, const char *k, const char *v)
{
	size_t kl = strlen(k), vl = strlen(v);
	put_le16(p, (uint16_t)kl);
	put_le32(p + 2, (uint32_t)vl);
	memcpy(p + 6, k, kl);
	memcpy(p + 6 + kl, v, vl);
	return 6 + kl + vl;
}

static void metadata_parse(void)
{
	uint8_t buf[256];
	size_t n = put_kv(buf, "tool", "imago 1.0.0");
	n += put_kv(buf + n, "empty", "");
	char **kv = NULL;
	REQUIRE(fmt_metadata_parse(buf, n, 2, &kv) == 0);
	CHECK(strcmp(kv[0], "tool") == 0 && strcmp(kv[1], "imago 1.0.0") == 0);
	CHECK(strcmp(kv[2], "empty") == 0 && kv[3][0] == '\0' && kv[4] == NULL);
	free(kv);
	CHECK(fmt_metadata_parse(buf, n, 3, &kv) == -EBADMSG);     /* count too large */
	CHECK(fmt_metadata_parse(buf, n, 1, &kv) == -EBADMSG);     /* trailing bytes */
	CHECK(fmt_metadata_parse(buf, n - 1, 2, &kv) == -EBADMSG); /* cut short */
	CHECK(fmt_metadata_parse(buf, n, UINT64_MAX, &kv) == -EBADMSG);
	put_le32(buf + 2, 0xffffffffu);                              /* value length past end */
	CHECK(fmt_metadata_parse(buf, n, 2, &kv) == -EBADMSG);
	n = put_kv(buf, "k", "v");
	buf[6] = 0;                                                  /* NUL inside a key */
	CHECK(fmt_metadata_parse(buf, n, 1, &kv) == -EBADMSG);
	n = put_kv(buf, "", "v");                                    /* empty key */
	CHECK(fmt_metadata_parse(buf, n, 1, &kv) == -EBADMSG);
	REQUIRE(fmt_metadata_parse(buf, 0, 0, &kv) == 0);            /* empty metadata */
	CHECK(kv[0] == NULL);
	free(kv);
}

static void chunk_sizes(void)
{
	CHECK(fmt_chunk_size_valid(65536));
	CHECK(fmt_chunk_size_valid(16u << 20));
	CHECK(!fmt_chunk_size_valid(32768));
	CHECK(!fmt_chunk_size_valid(32u << 20));
	CHECK(!fmt_chunk_size_valid(3u << 20));
	CHECK(fmt_chunk_len(100, 65536, 0) == 100); /* device smaller than one chunk */
	CHECK(fmt_chunk_len(100000, 65536, 1) == 100000 - 65536);
	CHECK(fmt_chunk_len(131072, 65536, 1) == 65536);
}

int main(void)
{
	check_prog_ = "format";
	RUN(header_roundtrip);
	RUN(header_every_bit_flip_is_caught);
	RUN(header_rejects_bad_fields);
	RUN(frame_rules);
	RUN(trailer_roundtrip_and_flips);
	RUN(index_and_extent_entries);
	RUN(metadata_parse);
	RUN(chunk_sizes);
	CHECK_MAIN_END();
}
