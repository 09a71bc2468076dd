/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "image/format.h"
#include "extent/extent_map.h"

const uint8_t fmt_magic[8] = { 0x89, 'I', 'M', 'G', '\r', '\n', 0x1a, '\n' };
static const uint8_t trailer_magic[8] = { 'I', 'M', 'G', 'T', 'R', 'A', 'I', 'L' };

uint64_t fmt_xxh3(const void *data, size_t len, uint64_t seed)
{
	return XXH3_64bits_withSeed(data, len, seed);
}

int fmt_chunk_size_valid(uint64_t cs)
{
	return cs >= IMAGO_CHUNK_MIN && cs <= IMAGO_CHUNK_MAX && (cs & (cs - 1)) == 0;
}

void fmt_header_encode(const struct fmt_header *h, uint8_t out[FMT_HEADER_SIZE])
{
	memset(out, 0, FMT_HEADER_SIZE);
	memcpy(out, fmt_magic, 8);
	put_le16(out + 8, h->version_major);
	put_le16(out + 10, h->version_minor);
	put_le32(out + 12, FMT_HEADER_SIZE);
	put_le64(out + 16, h->incompat);
	put_le64(out + 24, h->compat);
	put_le64(out + 32, h->device_size);
	put_le32(out + 40, h->chunk_size);
	put_le32(out + 44, h->logical_sector_size);
	put_le32(out + 48, h->physical_sector_size);
	out[52] = h->codec;
	out[53] = h->level;
	put_le64(out + 56, h->frames_offset);
	put_le64(out + 504, fmt_xxh3(out, 504, 0));
}

int fmt_header_decode(const uint8_t in[FMT_HEADER_SIZE], struct fmt_header *h, const char **why)
{
	if (memcmp(in, fmt_magic, 8) != 0) {
		*why = "not an imago image (bad magic)";
		return -ENOTSUP;
	}
	h->checksum = get_le64(in + 504);
	if (fmt_xxh3(in, 504, 0) != h->checksum) {
		*why = "header checksum mismatch";
		return -EBADMSG;
	}
	h->version_major = get_le16(in + 8);
	h->version_minor = get_le16(in + 10);
	h->header_size = get_le32(in + 12);
	h->incompat = get_le64(in + 16);
	h->compat = get_le64(in + 24);
	h->device_size = get_le64(in + 32);
	h->chunk_size = get_le32(in + 40);
	h->logical_sector_size = get_le32(in + 44);
	h->physical_sector_size = get_le32(in + 48);
	h->codec = in[52];
	h->level = in[53];
	h->frames_offset = get_le64(in + 56);
	if (h->version_major != IMAGO_FORMAT_MAJOR) {
		*why = "unsupported format version (made by a newer imago?)";
		return -ENOTSUP;
	}
	if (h->incompat != 0) {
		*why = "image uses features this imago does not know (incompat flags)";
		return -ENOTSUP;
	}
	if (h->header_size != FMT_HEADER_SIZE) {
		*why = "bad header size";
		return -EBADMSG;
	}
	if (h->frames_offset < FMT_HEADER_SIZE + fmt_alloc_section_size(0) ||
	    h->frames_offset - FMT_HEADER_SIZE > fmt_alloc_section_size(FMT_ALLOC_MAX_RUNS) ||
	    (h->frames_offset - FMT_HEADER_SIZE - fmt_alloc_section_size(0)) % FMT_EXTENT_ENTRY_SIZE) {
		*why = "bad frames offset in header (allocation map size)";
		return -EBADMSG;
	}
	if (!fmt_chunk_size_valid(h->chunk_size)) {
		*why = "bad chunk size in header";
		return -EBADMSG;
	}
	if (h->codec != FMT_CODEC_ZSTD) {
		*why = "unknown codec in header";
		return -ENOTSUP;
	}
	/* Largest device whose chunk numbers and offsets cannot overflow u64 arithmetic. */
	if (h->device_size > (UINT64_MAX >> 2)) {
		*why = "device size out of range";
		return -EBADMSG;
	}
	return 0;
}

void fmt_frame_encode(const struct fmt_frame *f, uint8_t out[FMT_FRAME_HDR_SIZE])
{
	memset(out, 0, FMT_FRAME_HDR_SIZE);
	put_le32(out, FMT_FRAME_MAGIC);
	out[4] = f->type;
	put_le64(out + 8, f->logical_offset);
	put_le64(out + 16, f->logical_length);
	put_le64(out + 24, f->stored_length);
	put_le64(out + 32, f->data_checksum);
	put_le64(out + 40, fmt_xxh3(out, 40, 0));
}

int fmt_frame_decode(const uint8_t in[FMT_FRAME_HDR_SIZE], struct fmt_frame *f, const char **why)
{
	if (get_le32(in) != FMT_FRAME_MAGIC) {
		*why = "bad frame magic";
		return -EBADMSG;
	}
	if (fmt_xxh3(in, 40, 0) != get_le64(in + 40)) {
		*why = "frame header checksum mismatch";
		return -EBADMSG;
	}
	f->type = in[4];
	f->logical_offset = get_le64(in + 8);
	f->logical_length = get_le64(in + 16);
	f->stored_length = get_le64(in + 24);
	f->data_checksum = get_le64(in + 32);
	switch (f->type) {
	case FMT_FRAME_RAW:
		if (f->stored_length != f->logical_length || f->logical_length == 0 ||
		    f->logical_length > IMAGO_CHUNK_MAX) {
			*why = "raw frame with bad lengths";
			return -EBADMSG;
		}
		break;
	case FMT_FRAME_ZSTD:
		if (f->logical_length == 0 || f->logical_length > IMAGO_CHUNK_MAX ||
		    f->stored_length == 0 || f->stored_length >= f->logical_length) {
			*why = "compressed frame with bad lengths";
			return -EBADMSG;
		}
		break;
	case FMT_FRAME_ZERO:
		if (f->stored_length != 0 || f->logical_length == 0 || f->data_checksum != 0) {
			*why = "zero frame with bad lengths";
			return -EBADMSG;
		}
		break;
	default:
		*why = "unknown frame type";
		return -EBADMSG;
	}
	return 0;
}

void fmt_section_encode(const struct fmt_section *s, uint8_t out[FMT_SECTION_HDR_SIZE])
{
	memset(out, 0, FMT_SECTION_HDR_SIZE);
	put_le32(out, s->magic);
	put_le64(out + 8, s->count);
	put_le64(out + 16, s->length);
}

void fmt_section_decode(const uint8_t in[FMT_SECTION_HDR_SIZE], struct fmt_section *s)
{
	s->magic = get_le32(in);
	s->count = get_le64(in + 8);
	s->length = get_le64(in + 16);
}

int fmt_section_checksum(const uint8_t hdr[FMT_SECTION_HDR_SIZE], const uint8_t *payload,
			 uint64_t len, uint64_t *sum)
{
	XXH3_state_t *st = XXH3_createState();
	if (!st)
		return -ENOMEM;
	XXH3_64bits_reset(st);
	XXH3_64bits_update(st, hdr, FMT_SECTION_HDR_SIZE);
	XXH3_64bits_update(st, payload, (size_t)len);
	*sum = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return 0;
}

void fmt_trailer_encode(const struct fmt_trailer *t, uint8_t out[FMT_TRAILER_SIZE])
{
	memset(out, 0, FMT_TRAILER_SIZE);
	memcpy(out, trailer_magic, 8);
	put_le64(out + 8, t->metadata_offset);
	put_le64(out + 16, t->extents_offset);
	put_le64(out + 24, t->index_offset);
	put_le64(out + 32, t->data_frames);
	put_le64(out + 40, t->zero_frames);
	put_le64(out + 48, t->stored_bytes);
	put_le64(out + 56, t->device_size);
	memcpy(out + 64, t->digest, IMAGO_DIGEST_LEN);
	put_le64(out + 96, t->header_checksum);
	put_le64(out + 120, fmt_xxh3(out, 120, 0));
}

int fmt_trailer_decode(const uint8_t in[FMT_TRAILER_SIZE], struct fmt_trailer *t, const char **why)
{
	if (memcmp(in, trailer_magic, 8) != 0) {
		*why = "no trailer: the image is incomplete (cut short while written?) or damaged";
		return -EBADMSG;
	}
	if (fmt_xxh3(in, 120, 0) != get_le64(in + 120)) {
		*why = "trailer checksum mismatch";
		return -EBADMSG;
	}
	t->metadata_offset = get_le64(in + 8);
	t->extents_offset = get_le64(in + 16);
	t->index_offset = get_le64(in + 24);
	t->data_frames = get_le64(in + 32);
	t->zero_frames = get_le64(in + 40);
	t->stored_bytes = get_le64(in + 48);
	t->device_size = get_le64(in + 56);
	memcpy(t->digest, in + 64, IMAGO_DIGEST_LEN);
	t->header_checksum = get_le64(in + 96);
	return 0;
}

void fmt_index_entry_encode(const struct fmt_index_entry *e, uint8_t out[FMT_INDEX_ENTRY_SIZE])
{
	put_le64(out, e->logical_offset);
	put_le64(out + 8, e->file_offset);
	put_le32(out + 16, e->logical_length);
	put_le32(out + 20, e->stored_length);
	put_le64(out + 24, e->data_checksum);
}

void fmt_index_entry_decode(const uint8_t in[FMT_INDEX_ENTRY_SIZE], struct fmt_index_entry *e)
{
	e->logical_offset = get_le64(in);
	e->file_offset = get_le64(in + 8);
	e->logical_length = get_le32(in + 16);
	e->stored_length = get_le32(in + 20);
	e->data_checksum = get_le64(in + 24);
}

void fmt_extent_encode(const struct imago_extent *e, uint8_t out[FMT_EXTENT_ENTRY_SIZE])
{
	put_le64(out, e->offset);
	put_le64(out + 8, e->length);
	put_le32(out + 16, (uint32_t)e->state);
	put_le32(out + 20, 0);
}

void fmt_extent_decode(const uint8_t in[FMT_EXTENT_ENTRY_SIZE], struct imago_extent *e)
{
	e->offset = get_le64(in);
	e->length = get_le64(in + 8);
	e->state = (enum imago_state)get_le32(in + 16);
}

int fmt_metadata_parse(const uint8_t *p, uint64_t len, uint64_t count, char ***kvp)
{
	/* Every entry needs at least 6 bytes, which bounds count by the payload length. */
	if (count > len / 6)
		return -EBADMSG;
	/* One block: 2*count+1 pointers, then the strings with NULs (payload + 2*count). */
	size_t ptrs = (size_t)(2 * count + 1) * sizeof(char *);
	char **kv = malloc(ptrs + (size_t)len + 2 * (size_t)count + 1);
	if (!kv)
		return -ENOMEM;
	char *s = (char *)kv + ptrs;
	uint64_t pos = 0;
	for (uint64_t i = 0; i < count; i++) {
		if (len - pos < 6)
			goto bad;
		uint64_t kl = get_le16(p + pos), vl = get_le32(p + pos + 2);
		pos += 6;
		if (kl == 0 || kl > len - pos || vl > len - pos - kl)
			goto bad;
		if (memchr(p + pos, 0, kl + vl))
			goto bad;
		kv[2 * i] = s;
		memcpy(s, p + pos, kl);
		s[kl] = '\0';
		s += kl + 1;
		pos += kl;
		kv[2 * i + 1] = s;
		memcpy(s, p + pos, vl);
		s[vl] = '\0';
		s += vl + 1;
		pos += vl;
	}
	if (pos != len)
		goto bad;
	kv[2 * count] = NULL;
	*kvp = kv;
	return 0;
bad:
	free(kv);
	return -EBADMSG;
}

int fmt_alloc_decode(const uint8_t *p, uint64_t len, uint64_t count, uint64_t device_size,
		     struct extent_map *m, const char **why)
{
	if (count > FMT_ALLOC_MAX_RUNS || len != count * FMT_EXTENT_ENTRY_SIZE) {
		*why = "allocation map count does not match its length";
		return -EBADMSG;
	}
	struct imago_extent *v = malloc((size_t)(count ? count : 1) * sizeof(*v));
	if (!v) {
		*why = "out of memory";
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < count; i++) {
		fmt_extent_decode(p + i * FMT_EXTENT_ENTRY_SIZE, &v[i]);
		if (v[i].state != IMAGO_USED && v[i].state != IMAGO_FREE &&
		    v[i].state != IMAGO_BAD && v[i].state != IMAGO_UNTRIED) {
			free(v);
			*why = "allocation map holds a state other than used, free, bad or untried";
			return -EBADMSG;
		}
	}
	if (extent_map_adopt(m, v, (size_t)count, device_size) < 0) {
		free(v);
		*why = "allocation map is not a sorted, coalesced tiling of the device";
		return -EBADMSG;
	}
	return 0;
}

int fmt_alloc_matches(const struct extent_map *alloc, const struct extent_map *final, uint64_t *at)
{
	/* Walk both run lists together; at each step the overlap of the current runs must be
	 * FREE (BAD, UNTRIED: a rescued source) in both or in neither. A USED byte of the
	 * allocation map is USED or ZERO in the final map, or BAD when it turned out
	 * unreadable while the writer read it (an acquisition that keeps going, §5.1). */
	size_t i = 0, j = 0;
	uint64_t pos = 0;
	while (i < alloc->n && j < final->n) {
		const struct imago_extent *a = &alloc->v[i], *f = &final->v[j];
		if (a->state == IMAGO_USED
			    ? f->state != IMAGO_USED && f->state != IMAGO_ZERO && f->state != IMAGO_BAD
			    : f->state != a->state) {
			*at = pos;
			return -EBADMSG;
		}
		uint64_t ae = a->offset + a->length, fe = f->offset + f->length;
		pos = ae < fe ? ae : fe;
		if (ae == pos)
			i++;
		if (fe == pos)
			j++;
	}
	if (alloc->size != final->size) {
		*at = pos;
		return -EBADMSG;
	}
	return 0;
}
