/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Random access to a complete image: open checks every structure named in FORMAT.md §8
 * (1–4) before anything is trusted; each chunk is checked as it is read (§8.5). Every size
 * and count read from the file is bounded by the file's size before it is used.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/chunk_cache.h"
#include "image/reader_int.h"
#include "util/err.h"
#include "util/xio.h"

static int rd(struct imago_image *img, void *buf, size_t len, uint64_t off, struct imago_err *err,
	      const char *what)
{
	ssize_t r = xpread_full(img->fd, buf, len, off);
	if (r < 0)
		return err_set(err, (int)r, (int64_t)off, -1, -1, "%s: cannot read %s at byte %llu: %s",
			       img->name, what, (unsigned long long)off, strerror((int)-r));
	if ((size_t)r < len)
		return err_set(err, -EBADMSG, (int64_t)off, -1, -1,
			       "%s: %s at byte %llu is cut short: the image is incomplete",
			       img->name, what, (unsigned long long)off);
	return 0;
}

/* Read a section at off whose payload must end by `end`; returns its payload (malloc). */
static int read_section(struct imago_image *img, uint64_t off, uint64_t end, uint32_t magic,
			const char *what, struct fmt_section *s, uint8_t **payload,
			struct imago_err *err)
{
	uint8_t hdr[FMT_SECTION_HDR_SIZE], tail[8];
	int r;
	if (off > end || end - off < FMT_SECTION_HDR_SIZE + FMT_SECTION_TAIL_SIZE)
		return err_set(err, -EBADMSG, (int64_t)off, -1, -1,
			       "%s: %s section at byte %llu is out of place (trailer damaged?)",
			       img->name, what, (unsigned long long)off);
	if ((r = rd(img, hdr, sizeof(hdr), off, err, what)) < 0)
		return r;
	fmt_section_decode(hdr, s);
	if (s->magic != magic)
		return err_set(err, -EBADMSG, (int64_t)off, -1, -1, "%s: %s section at byte %llu: bad magic",
			       img->name, what, (unsigned long long)off);
	if (s->length != end - off - FMT_SECTION_HDR_SIZE - FMT_SECTION_TAIL_SIZE)
		return err_set(err, -EBADMSG, (int64_t)off, -1, -1,
			       "%s: %s section at byte %llu: length %llu does not fit the file",
			       img->name, what, (unsigned long long)off, (unsigned long long)s->length);
	uint8_t *p = malloc(s->length ? s->length : 1);
	if (!p)
		return err_set(err, -ENOMEM, (int64_t)off, -1, -1, "out of memory");
	if ((r = rd(img, p, (size_t)s->length, off + FMT_SECTION_HDR_SIZE, err, what)) < 0 ||
	    (r = rd(img, tail, 8, off + FMT_SECTION_HDR_SIZE + s->length, err, what)) < 0) {
		free(p);
		return r;
	}
	uint64_t sum;
	if (fmt_section_checksum(hdr, p, s->length, &sum) < 0) {
		free(p);
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	}
	if (sum != get_le64(tail)) {
		free(p);
		return err_set(err, -EBADMSG, (int64_t)off, -1, -1,
			       "%s: %s section at byte %llu: checksum mismatch", img->name, what,
			       (unsigned long long)off);
	}
	*payload = p;
	return 0;
}

int reader_check_index(const struct fmt_header *hdr, uint64_t data_end, const struct extent_map *map,
		       const struct fmt_index_entry *idx, size_t nidx, const char *name,
		       uint64_t index_offset, struct imago_err *err)
{
	uint64_t cs = hdr->chunk_size, dsize = hdr->device_size;
	uint64_t prev_end = hdr->frames_offset;
	size_t k = 0;
	for (size_t i = 0; i < nidx; i++) {
		const struct fmt_index_entry *e = &idx[i];
		if (e->logical_offset % cs || e->logical_offset >= dsize ||
		    (i && e->logical_offset <= idx[i - 1].logical_offset) ||
		    e->logical_length != fmt_chunk_len(dsize, (uint32_t)cs, e->logical_offset / cs) ||
		    e->stored_length == 0 || e->stored_length > e->logical_length ||
		    e->file_offset < prev_end || e->file_offset > data_end ||
		    data_end - e->file_offset < FMT_FRAME_HDR_SIZE + (uint64_t)e->stored_length)
			return err_set(err, -EBADMSG, (int64_t)index_offset, (int64_t)e->logical_offset,
				       (int64_t)(e->logical_offset / cs),
				       "%s: index entry %zu (chunk at device byte %llu) is invalid", name, i,
				       (unsigned long long)e->logical_offset);
		prev_end = e->file_offset + FMT_FRAME_HDR_SIZE + e->stored_length;
	}
	/* Walk USED extents chunk by chunk against the index; stop at the first mismatch so a
	 * hostile map claiming billions of USED chunks costs nothing. */
	for (size_t x = 0; x < map->n; x++) {
		const struct imago_extent *ex = &map->v[x];
		if (ex->state != IMAGO_USED)
			continue;
		uint64_t c = ex->offset / cs, last = (ex->offset + ex->length - 1) / cs;
		if (k && idx[k - 1].logical_offset / cs == c)
			c++; /* the chunk shared with the previous USED extent is already matched */
		for (; c <= last; c++, k++)
			if (k >= nidx || idx[k].logical_offset / cs != c)
				return err_set(err, -EBADMSG, (int64_t)index_offset, (int64_t)(c * cs), (int64_t)c,
					       "%s: index and extent map disagree about chunk %llu", name,
					       (unsigned long long)c);
	}
	if (k != nidx)
		return err_set(err, -EBADMSG, (int64_t)index_offset, -1, -1,
			       "%s: index lists chunks the extent map does not mark used", name);
	return 0;
}

static int open_checked(struct imago_image *img, struct imago_err *err)
{
	struct stat st;
	uint8_t hb[FMT_HEADER_SIZE], tb[FMT_TRAILER_SIZE];
	const char *why = NULL;
	int r;

	if (fstat(img->fd, &st) < 0)
		return err_set(err, -errno, -1, -1, -1, "%s: %s", img->name, strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return err_set(err, -EINVAL, -1, -1, -1,
			       "%s: random access needs a regular file (read pipes sequentially)", img->name);
	img->file_size = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(img->fd, 0, SEEK_END);
		if (end < 0)
			return err_set(err, -errno, -1, -1, -1, "%s: %s", img->name, strerror(errno));
		img->file_size = (uint64_t)end;
	}
	if (img->file_size < FMT_HEADER_SIZE) {
		if (img->file_size >= 8 && rd(img, hb, 8, 0, NULL, "header") == 0 &&
		    memcmp(hb, fmt_magic, 8) == 0)
			return err_set(err, -EBADMSG, (int64_t)img->file_size, -1, -1,
				       "%s: cut short at byte %llu, inside the header: the image is incomplete",
				       img->name, (unsigned long long)img->file_size);
		return err_set(err, -ENOTSUP, 0, -1, -1, "%s: not an imago image (too small)", img->name);
	}
	if ((r = rd(img, hb, sizeof(hb), 0, err, "header")) < 0)
		return r;
	if ((r = fmt_header_decode(hb, &img->hdr, &why)) < 0)
		return err_set(err, r, 0, -1, -1, "%s: %s", img->name, why);
	if (img->file_size < img->hdr.frames_offset + FMT_TRAILER_SIZE + 3 * (FMT_SECTION_HDR_SIZE + 8))
		return err_set(err, -EBADMSG, (int64_t)img->file_size, -1, -1,
			       "%s: cut short at byte %llu: the image is incomplete (no trailer)",
			       img->name, (unsigned long long)img->file_size);
	uint64_t toff = img->file_size - FMT_TRAILER_SIZE;
	if ((r = rd(img, tb, sizeof(tb), toff, err, "trailer")) < 0)
		return r;
	if ((r = fmt_trailer_decode(tb, &img->trl, &why)) < 0)
		return err_set(err, r, (int64_t)toff, -1, -1, "%s: %s (trailer at byte %llu)", img->name, why,
			       (unsigned long long)toff);
	if (img->trl.device_size != img->hdr.device_size || img->trl.header_checksum != img->hdr.checksum)
		return err_set(err, -EBADMSG, (int64_t)toff, -1, -1,
			       "%s: trailer does not belong to this header (mixed-up or damaged image)", img->name);
	const struct fmt_trailer *t = &img->trl;
	if (t->metadata_offset < img->hdr.frames_offset || t->extents_offset <= t->metadata_offset ||
	    t->index_offset <= t->extents_offset || t->index_offset >= toff)
		return err_set(err, -EBADMSG, (int64_t)toff, -1, -1,
			       "%s: trailer section offsets are invalid", img->name);

	struct fmt_section s;
	uint8_t *p = NULL;
	/* allocation map, between the header and the first frame */
	if ((r = read_section(img, FMT_HEADER_SIZE, img->hdr.frames_offset, FMT_SEC_ALLOC,
			      "allocation map", &s, &p, err)) < 0)
		return r;
	r = fmt_alloc_decode(p, s.length, s.count, img->hdr.device_size, &img->alloc, &why);
	free(p);
	if (r < 0)
		return err_set(err, r, FMT_HEADER_SIZE, -1, -1, "%s: %s (section at byte %d)", img->name,
			       why, FMT_HEADER_SIZE);
	/* metadata */
	if ((r = read_section(img, t->metadata_offset, t->extents_offset, FMT_SEC_METADATA, "metadata",
			      &s, &p, err)) < 0)
		return r;
	r = fmt_metadata_parse(p, s.length, s.count, &img->meta);
	free(p);
	if (r < 0)
		return err_set(err, r, (int64_t)t->metadata_offset, -1, -1,
			       "%s: metadata section at byte %llu is malformed", img->name,
			       (unsigned long long)t->metadata_offset);
	img->nmeta = (size_t)s.count;
	/* extent map */
	if ((r = read_section(img, t->extents_offset, t->index_offset, FMT_SEC_EXTENTS, "extent map",
			      &s, &p, err)) < 0)
		return r;
	if (s.count != s.length / FMT_EXTENT_ENTRY_SIZE || s.length % FMT_EXTENT_ENTRY_SIZE) {
		free(p);
		return err_set(err, -EBADMSG, (int64_t)t->extents_offset, -1, -1,
			       "%s: extent map count does not match its length", img->name);
	}
	struct imago_extent *ev = malloc((size_t)(s.count ? s.count : 1) * sizeof(*ev));
	if (!ev) {
		free(p);
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	}
	for (uint64_t i = 0; i < s.count; i++)
		fmt_extent_decode(p + i * FMT_EXTENT_ENTRY_SIZE, &ev[i]);
	free(p);
	if ((r = extent_map_adopt(&img->map, ev, (size_t)s.count, img->hdr.device_size)) < 0) {
		free(ev);
		return err_set(err, -EBADMSG, (int64_t)t->extents_offset, -1, -1,
			       "%s: extent map is inconsistent (section at byte %llu)", img->name,
			       (unsigned long long)t->extents_offset);
	}
	uint64_t at;
	if (fmt_alloc_matches(&img->alloc, &img->map, &at) < 0)
		return err_set(err, -EBADMSG, (int64_t)t->extents_offset, (int64_t)at, -1,
			       "%s: the extent map and the allocation map disagree at device byte %llu",
			       img->name, (unsigned long long)at);
	/* index */
	if ((r = read_section(img, t->index_offset, toff, FMT_SEC_INDEX, "index", &s, &p, err)) < 0)
		return r;
	if (s.count != s.length / FMT_INDEX_ENTRY_SIZE || s.length % FMT_INDEX_ENTRY_SIZE ||
	    s.count != t->data_frames) {
		free(p);
		return err_set(err, -EBADMSG, (int64_t)t->index_offset, -1, -1,
			       "%s: index count does not match its length or the trailer", img->name);
	}
	img->idx = malloc((size_t)(s.count ? s.count : 1) * sizeof(*img->idx));
	if (!img->idx) {
		free(p);
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	}
	for (uint64_t i = 0; i < s.count; i++)
		fmt_index_entry_decode(p + i * FMT_INDEX_ENTRY_SIZE, &img->idx[i]);
	img->nidx = (size_t)s.count;
	free(p);
	return reader_check_index(&img->hdr, t->metadata_offset, &img->map, img->idx, img->nidx,
				  img->name, t->index_offset, err);
}

int imago_image_open_fd(int fd, const char *name, imago_image **out, struct imago_err *err)
{
	err_clear(err);
	struct imago_image *img = calloc(1, sizeof(*img));
	if (!img)
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	img->fd = fd;
	img->name = strdup(name ? name : "image");
	err_clear(&img->err);
	int r = img->name ? open_checked(img, err) : -ENOMEM;
	if (r == 0 && chunk_cache_new(img, NULL, &img->cc) < 0)
		r = err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	if (r < 0) {
		imago_image_close(img);
		return r;
	}
	*out = img;
	return 0;
}

int imago_image_open(const char *path, imago_image **out, struct imago_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, -errno, -1, -1, -1, "%s: cannot open: %s", path, strerror(errno));
	int r = imago_image_open_fd(fd, path, out, err);
	if (r < 0) {
		close(fd);
		return r;
	}
	(*out)->own_fd = 1;
	return 0;
}

void imago_image_close(imago_image *img)
{
	if (!img)
		return;
	/* first: its read-ahead workers still use the index and the file */
	chunk_cache_free(img->cc);
	if (img->own_fd)
		close(img->fd);
	extent_map_free(&img->map);
	extent_map_free(&img->alloc);
	free(img->idx);
	free(img->meta);
	free(img->name);
	free(img);
}

int imago_image_info(const imago_image *img, struct imago_info *info)
{
	memset(info, 0, sizeof(*info));
	info->version_major = img->hdr.version_major;
	info->version_minor = img->hdr.version_minor;
	info->incompat_features = img->hdr.incompat;
	info->compat_features = img->hdr.compat;
	info->device_size = img->hdr.device_size;
	info->chunk_size = img->hdr.chunk_size;
	info->logical_sector_size = img->hdr.logical_sector_size;
	info->physical_sector_size = img->hdr.physical_sector_size;
	info->codec = img->hdr.codec;
	info->level = img->hdr.level;
	info->data_chunks = img->trl.data_frames;
	info->zero_frames = img->trl.zero_frames;
	info->stored_bytes = img->trl.stored_bytes;
	info->image_bytes = img->file_size;
	extent_map_totals(&img->map, info->bytes_by_state);
	info->extent_count = img->map.n;
	memcpy(info->digest, img->trl.digest, IMAGO_DIGEST_LEN);
	return 0;
}

const char *imago_image_meta(const imago_image *img, const char *key)
{
	for (size_t i = 0; i < img->nmeta; i++)
		if (strcmp(img->meta[2 * i], key) == 0)
			return img->meta[2 * i + 1];
	return NULL;
}

int imago_image_meta_at(const imago_image *img, size_t i, const char **key, const char **value)
{
	if (i >= img->nmeta)
		return 0;
	*key = img->meta[2 * i];
	*value = img->meta[2 * i + 1];
	return 1;
}

int imago_image_extents(const imago_image *img, int (*fn)(void *, const struct imago_extent *),
			void *opaque)
{
	for (size_t i = 0; i < img->map.n; i++) {
		int r = fn(opaque, &img->map.v[i]);
		if (r)
			return r;
	}
	return 0;
}

const struct imago_err *imago_image_error(const imago_image *img)
{
	return &img->err;
}

const struct fmt_index_entry *reader_find_chunk(const struct imago_image *img, uint64_t chunk)
{
	uint64_t want = chunk * img->hdr.chunk_size;
	size_t lo = 0, hi = img->nidx;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (img->idx[mid].logical_offset < want)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < img->nidx && img->idx[lo].logical_offset == want ? &img->idx[lo] : NULL;
}

int reader_frame_matches(const struct fmt_frame *f, const struct fmt_index_entry *e)
{
	return f->type != FMT_FRAME_ZERO && f->logical_offset == e->logical_offset &&
	       f->logical_length == e->logical_length && f->stored_length == e->stored_length &&
	       f->data_checksum == e->data_checksum;
}

int reader_decode_payload(const struct fmt_frame *f, const uint8_t *payload, ZSTD_DCtx *dctx,
			  uint8_t *out, const char **why)
{
	if (f->type == FMT_FRAME_RAW) {
		memcpy(out, payload, (size_t)f->logical_length);
	} else {
		size_t n = ZSTD_decompressDCtx(dctx, out, (size_t)f->logical_length, payload,
					       (size_t)f->stored_length);
		if (ZSTD_isError(n)) {
			*why = "compressed data is damaged (zstd cannot decode it)";
			return -EBADMSG;
		}
		if (n != f->logical_length) {
			*why = "compressed data decodes to the wrong length";
			return -EBADMSG;
		}
	}
	if (fmt_xxh3(out, (size_t)f->logical_length, f->logical_offset) != f->data_checksum) {
		*why = "data checksum mismatch";
		return -EBADMSG;
	}
	return 0;
}

/* Non-USED bytes read as zeros (FORMAT.md §2), whatever a DATA frame holds there: a
 * writer stores them as zeros, but a frame made otherwise (its checksum is only over what
 * it holds) must not leak other bytes through the extent map's FREE ranges. */
static void zero_unused(const struct imago_image *img, uint64_t off, uint8_t *b, uint64_t len)
{
	for (uint64_t pos = off, end = off + len; pos < end;) {
		ptrdiff_t x = extent_map_find(&img->map, pos);
		if (x < 0)
			break;
		const struct imago_extent *e = &img->map.v[x];
		uint64_t ee = e->offset + e->length < end ? e->offset + e->length : end;
		if (e->state != IMAGO_USED)
			memset(b + (pos - off), 0, (size_t)(ee - pos));
		pos = ee;
	}
}

int reader_load_chunk(const struct imago_image *img, const struct fmt_index_entry *e,
		      ZSTD_DCtx *dctx, uint8_t *cbuf, uint8_t *out, struct imago_err *err)
{
	uint64_t chunk = e->logical_offset / img->hdr.chunk_size;
	size_t len = FMT_FRAME_HDR_SIZE + e->stored_length;
	ssize_t r = xpread_full(img->fd, cbuf, len, e->file_offset);
	if (r < 0)
		return err_set(err, (int)r, (int64_t)e->file_offset, (int64_t)e->logical_offset, (int64_t)chunk,
			       "%s: cannot read chunk %llu at byte %llu: %s", img->name,
			       (unsigned long long)chunk, (unsigned long long)e->file_offset, strerror((int)-r));
	const char *why = "frame is cut short";
	struct fmt_frame f;
	int rc = -EBADMSG;
	if ((size_t)r == len && (rc = fmt_frame_decode(cbuf, &f, &why)) == 0) {
		if (!reader_frame_matches(&f, e)) {
			why = "frame header disagrees with the index";
			rc = -EBADMSG;
		} else {
			rc = reader_decode_payload(&f, cbuf + FMT_FRAME_HDR_SIZE, dctx, out, &why);
		}
	}
	if (rc < 0)
		return err_set(err, rc, (int64_t)e->file_offset, (int64_t)e->logical_offset, (int64_t)chunk,
			       "%s: chunk %llu (device byte %llu, image byte %llu) is damaged: %s", img->name,
			       (unsigned long long)chunk, (unsigned long long)e->logical_offset,
			       (unsigned long long)e->file_offset, why);
	zero_unused(img, e->logical_offset, out, e->logical_length);
	return 0;
}

ssize_t imago_image_pread(imago_image *img, void *buf, size_t len, uint64_t offset)
{
	return chunk_cache_pread(img->cc, buf, len, offset);
}

int imago_image_set_cache(imago_image *img, const struct imago_cache_opts *o)
{
	struct chunk_cache *c;
	int r = chunk_cache_new(img, o, &c);
	if (r < 0)
		return err_set(&img->err, r, -1, -1, -1, "out of memory for the chunk cache");
	chunk_cache_free(img->cc);
	img->cc = c;
	return 0;
}

void imago_image_cache_stats(imago_image *img, struct imago_cache_stats *s)
{
	chunk_cache_stats(img->cc, s);
}
