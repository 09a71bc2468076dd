/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "image/digest.h"
#include "image/format.h"
#include "image/reader_int.h"
#include "image/stream.h"
#include "image/target.h"
#include "pipeline/pipeline.h"
#include "util/err.h"
#include "util/zero.h"
#include "util/progress.h"
#include "util/xio.h"

#define PIPE_WANT (1 << 20) /* pipe buffer asked for when the image comes from a pipe */
#define META_MAX (16u << 20)   /* metadata read from a pipe; ours is a few hundred bytes */

/* job->u[] fields */
enum { U_OFF, U_TYPE, U_LEN, U_FOFF, U_SUM, U_WHY, U_DIFF };
#define T_GAP 9 /* a stretch of the device that no frame covers (FREE/BAD/UNTRIED) */

struct zrange {
	uint64_t off, len;
};

struct sctx {
	const struct stream_opts *o;
	struct imago_err *err;
	struct imago_image *img;     /* opened up front when the image is seekable */
	struct fmt_header hdr;
	uint8_t hdr_bytes[FMT_HEADER_SIZE];
	struct extent_map alloc;     /* the allocation map: FREE bytes are never written or compared */
	uint64_t wlo, whi;           /* restore window: device bytes written, at offset - wlo */
	uint64_t cs, dsize;
	size_t pcap, leaves_len;
	bool against, restore;
	struct target tgt;           /* restore: written by the consumer */
	ZSTD_DCtx **dctx;

	/* producer */
	uint64_t rpos;               /* file position of the next read */
	uint64_t lpos;               /* device position: end of what jobs covered so far */
	uint64_t zrun_left;          /* rest of a ZERO frame being cut into chunk jobs */
	bool have_pending, at_sections, ended;
	struct fmt_frame pend;
	uint64_t pend_foff;
	uint64_t data_seen, zero_frames_seen, sections_at;
	uint8_t carry[4];            /* the metadata section's magic, read in place of a frame's */
	struct imago_err prod_err;

	/* consumer */
	uint64_t cpos;
	struct digest_acc dig;
	struct fmt_index_entry *seen;
	size_t nseen, capseen;
	struct zrange *zs;
	size_t nzs, capzs;
	uint64_t stored, written, chunks;
	uint64_t differs_at;         /* first differing device byte + 1, 0 if none */
	struct progress_clock clock;
};

static int grow(void **v, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? 2 * *cap : 256;
	void *p = realloc(*v, nc * elem);
	if (!p)
		return -ENOMEM;
	*v = p;
	*cap = nc;
	return 0;
}

/* The next piece of [*pos, end) that the allocation map keeps (USED: not FREE, nor the
 * BAD or UNTRIED bytes of a rescue image, which are never written nor compared), in
 * [*b, *e); false when none is left. */
static bool next_kept(const struct extent_map *m, uint64_t *pos, uint64_t end, uint64_t *b,
		      uint64_t *e)
{
	while (*pos < end) {
		ptrdiff_t x = extent_map_find(m, *pos);
		if (x < 0)
			return false;
		const struct imago_extent *r = &m->v[x];
		uint64_t re = r->offset + r->length < end ? r->offset + r->length : end;
		bool kept = r->state == IMAGO_USED || r->state == IMAGO_ZERO;
		*b = *pos;
		*e = re;
		*pos = re;
		if (kept)
			return true;
	}
	return false;
}

static int rd_stream(struct sctx *s, void *buf, size_t len, struct imago_err *err, const char *what)
{
	ssize_t r = xread_full(s->o->image_fd, buf, len);
	if (r < 0)
		return err_set(err, (int)r, (int64_t)s->rpos, -1, -1, "%s: cannot read %s at byte %llu: %s",
			       s->o->name, what, (unsigned long long)s->rpos, strerror((int)-r));
	if ((size_t)r < len)
		return err_set(err, -EBADMSG, (int64_t)(s->rpos + (uint64_t)r), -1, -1,
			       "%s: image ends at byte %llu inside the %s: the image is incomplete (cut short)",
			       s->o->name, (unsigned long long)(s->rpos + (uint64_t)r), what);
	s->rpos += len;
	return 0;
}

/* ------------------------------------------------------------------ producer */

static int read_against(struct sctx *s, struct pl_job *j, uint64_t off, uint64_t len)
{
	uint8_t *dst = j->in + s->pcap;
	uint64_t have = off < s->o->against_size ? s->o->against_size - off : 0;
	uint64_t n = have < len ? have : len;
	ssize_t r = n ? xpread_full(s->o->against_fd, dst, (size_t)n, off) : 0;
	if (r < 0)
		return err_set(&s->prod_err, (int)r, -1, (int64_t)off, -1,
			       "cannot read the source to compare at byte %llu: %s", (unsigned long long)off,
			       strerror((int)-r));
	/* Past the source's end there is nothing to compare with: j->u[U_DIFF] notes it. */
	j->u[U_DIFF] = (uint64_t)r < len ? off + (uint64_t)r + 1 : 0;
	/* FREE bytes are not in the image (they read as zeros): their content does not count. */
	uint64_t pos = off, kb, ke, done = off;
	while (next_kept(&s->alloc, &pos, off + (uint64_t)r, &kb, &ke)) {
		memset(dst + (done - off), 0, (size_t)(kb - done));
		done = ke;
	}
	memset(dst + (done - off), 0, (size_t)(off + (uint64_t)r - done));
	return 0;
}

static int emit_span(struct sctx *s, struct pl_job *j, uint8_t type, uint64_t len)
{
	j->u[U_OFF] = s->lpos;
	j->u[U_TYPE] = type;
	j->u[U_LEN] = len;
	j->u[U_FOFF] = s->rpos;
	j->u[U_DIFF] = 0;
	j->u[U_WHY] = 0;
	j->in_len = 0;
	if (s->against) {
		int r = read_against(s, j, s->lpos, len);
		if (r < 0)
			return r;
	}
	s->lpos += len;
	return 1;
}

/* Read the next frame header (or find the sections) into the pending state. */
static int read_next_header(struct sctx *s)
{
	struct imago_err *e = &s->prod_err;
	uint64_t foff = s->rpos;
	uint8_t hb[FMT_FRAME_HDR_SIZE];
	/* The magic first: after the last frame come the sections, whose header is shorter. */
	ssize_t got = xread_full(s->o->image_fd, hb, 4);
	if (got == 4 && get_le32(hb) != FMT_SEC_METADATA) {
		ssize_t more = xread_full(s->o->image_fd, hb + 4, sizeof(hb) - 4);
		got = more < 0 ? more : got + more;
	}
	if (got < 0)
		return err_set(e, (int)got, (int64_t)foff, -1, -1, "%s: cannot read at byte %llu: %s",
			       s->o->name, (unsigned long long)foff, strerror((int)-got));
	s->rpos += (uint64_t)got;
	if (got == 4 && get_le32(hb) == FMT_SEC_METADATA && s->img &&
	    (foff != s->img->trl.metadata_offset || s->data_seen != s->img->nidx)) {
		/* The index says a frame is here: its magic was damaged into a section's. */
		const struct fmt_index_entry *ie =
			s->data_seen < s->img->nidx ? &s->img->idx[s->data_seen] : NULL;
		uint64_t doff = ie ? ie->logical_offset : s->lpos;
		return err_set(e, -EBADMSG, (int64_t)foff, (int64_t)doff, (int64_t)(doff / s->cs),
			       "%s: chunk %llu (device byte %llu, image byte %llu) is damaged: bad frame magic",
			       s->o->name, (unsigned long long)(doff / s->cs), (unsigned long long)doff,
			       (unsigned long long)foff);
	}
	if (got == 4 && get_le32(hb) == FMT_SEC_METADATA) {
		memcpy(s->carry, hb, 4);
		s->at_sections = true;
		s->sections_at = foff;
		return 0;
	}
	if ((size_t)got < sizeof(hb))
		return err_set(e, -EBADMSG, (int64_t)s->rpos, -1, -1,
			       "%s: image ends at byte %llu: the image is incomplete (cut short)", s->o->name,
			       (unsigned long long)s->rpos);
	struct fmt_frame f;
	const char *why = NULL;
	int r = fmt_frame_decode(hb, &f, &why);
	if (r < 0)
		return err_set(e, r, (int64_t)foff, (int64_t)s->lpos, (int64_t)(s->lpos / s->cs),
			       "%s: frame at image byte %llu (after device byte %llu) is damaged: %s",
			       s->o->name, (unsigned long long)foff, (unsigned long long)s->lpos, why);
	uint64_t chunk = f.logical_offset / s->cs;
	bool bad = f.logical_offset % s->cs || f.logical_offset < s->lpos ||
		   f.logical_offset >= s->dsize || f.logical_length > s->dsize - f.logical_offset;
	if (!bad && f.type == FMT_FRAME_ZERO)
		bad = f.logical_length % s->cs && f.logical_offset + f.logical_length != s->dsize;
	else if (!bad)
		bad = f.logical_length != fmt_chunk_len(s->dsize, (uint32_t)s->cs, chunk);
	if (bad)
		return err_set(e, -EBADMSG, (int64_t)foff, (int64_t)f.logical_offset, (int64_t)chunk,
			       "%s: frame at image byte %llu is out of place (device offset %llu, length %llu)",
			       s->o->name, (unsigned long long)foff, (unsigned long long)f.logical_offset,
			       (unsigned long long)f.logical_length);
	if (f.type != FMT_FRAME_ZERO && s->img) {
		const struct fmt_index_entry *ie =
			s->data_seen < s->img->nidx ? &s->img->idx[s->data_seen] : NULL;
		if (!ie || !reader_frame_matches(&f, ie) || ie->file_offset != foff)
			return err_set(e, -EBADMSG, (int64_t)foff, (int64_t)f.logical_offset, (int64_t)chunk,
				       "%s: chunk %llu (device byte %llu, image byte %llu) disagrees with the index",
				       s->o->name, (unsigned long long)chunk,
				       (unsigned long long)f.logical_offset, (unsigned long long)foff);
	}
	s->pend = f;
	s->pend_foff = foff;
	s->have_pending = true;
	return 0;
}

static int produce(void *vctx, struct pl_job *j)
{
	struct sctx *s = vctx;
	int r;
	for (;;) {
		if (s->ended)
			return 0;
		if (s->zrun_left) {
			uint64_t n = s->zrun_left < s->cs ? s->zrun_left : s->cs;
			s->zrun_left -= n;
			return emit_span(s, j, FMT_FRAME_ZERO, n);
		}
		if (!s->have_pending && !s->at_sections && (r = read_next_header(s)) < 0)
			return r;
		uint64_t next = s->have_pending ? s->pend.logical_offset : s->dsize;
		if (s->against && s->lpos < next) {
			uint64_t n = next - s->lpos < s->cs ? next - s->lpos : s->cs;
			return emit_span(s, j, T_GAP, n);
		}
		if (!s->have_pending) {
			s->ended = true;
			return 0;
		}
		s->have_pending = false;
		struct fmt_frame *f = &s->pend;
		if (f->type == FMT_FRAME_ZERO) {
			s->zero_frames_seen++;
			s->lpos = f->logical_offset;
			if (s->against) {
				s->zrun_left = f->logical_length;
				continue;
			}
			return emit_span(s, j, FMT_FRAME_ZERO, f->logical_length);
		}
		if ((r = rd_stream(s, j->in, (size_t)f->stored_length, &s->prod_err, "frame payload")) < 0) {
			s->prod_err.dev_offset = (int64_t)f->logical_offset;
			s->prod_err.chunk = (int64_t)(f->logical_offset / s->cs);
			return r;
		}
		s->lpos = f->logical_offset;
		j->u[U_OFF] = f->logical_offset;
		j->u[U_TYPE] = f->type;
		j->u[U_LEN] = f->logical_length;
		j->u[U_FOFF] = s->pend_foff;
		j->u[U_SUM] = f->data_checksum;
		j->u[U_DIFF] = 0;
		j->u[U_WHY] = 0;
		j->in_len = (size_t)f->stored_length;
		if (s->against && (r = read_against(s, j, f->logical_offset, f->logical_length)) < 0)
			return r;
		s->lpos += f->logical_length;
		s->data_seen++;
		return 1;
	}
}

/* ------------------------------------------------------------------ workers */

static uint64_t first_diff(const uint8_t *a, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (a[i] != b[i])
			return i;
	return len;
}

static int work(void *vctx, struct pl_job *j, unsigned worker)
{
	struct sctx *s = vctx;
	uint64_t len = j->u[U_LEN];
	const uint8_t *src = j->in + s->pcap;
	if (j->u[U_TYPE] == FMT_FRAME_ZERO || j->u[U_TYPE] == T_GAP) {
		if (s->against && !j->u[U_DIFF] && !buf_is_zero(src, (size_t)len)) {
			for (size_t i = 0; i < len; i++)
				if (src[i]) {
					j->u[U_DIFF] = j->u[U_OFF] + i + 1;
					break;
				}
		}
		return 0;
	}
	struct fmt_frame f = { .type = (uint8_t)j->u[U_TYPE], .logical_offset = j->u[U_OFF],
			       .logical_length = len, .stored_length = j->in_len,
			       .data_checksum = j->u[U_SUM] };
	const char *why = NULL;
	int r = reader_decode_payload(&f, j->in, s->dctx[worker], j->out, &why);
	if (r < 0) {
		j->u[U_WHY] = (uintptr_t)why;
		return r;
	}
	if ((r = digest_leaves(j->out, (size_t)len, j->aux)) < 0)
		return r;
	if (s->against && (memcmp(j->out, src, (size_t)len) != 0)) {
		uint64_t d = first_diff(j->out, src, (size_t)len);
		if (!j->u[U_DIFF] || j->u[U_OFF] + d + 1 < j->u[U_DIFF])
			j->u[U_DIFF] = j->u[U_OFF] + d + 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ consumer */

/* digest_acc tick: progress (and cancellation) inside a long run of zeros. */
static int dig_tick(void *opaque, uint64_t pos)
{
	struct sctx *s = opaque;
	return progress_tick(&s->clock, pos, s->dsize, s->o->progress, s->o->progress_opaque);
}

static int write_err(struct sctx *s, int r, uint64_t off)
{
	return err_set_target(s->err, r, (int64_t)off,
		       r == -ENOSPC ? "target is full at device byte %llu: restore stopped, the target is incomplete"
				    : "cannot write the target at device byte %llu (%s): the target is incomplete",
		       (unsigned long long)off, strerror(-r));
}

/* Clip [*lo, *hi) to the restore window; false when nothing is left. */
static bool clip_window(const struct sctx *s, uint64_t *lo, uint64_t *hi)
{
	if (*lo < s->wlo)
		*lo = s->wlo;
	if (*hi > s->whi)
		*hi = s->whi;
	return *lo < *hi;
}

/* Write the chunk's kept (not FREE) bytes inside the window, at their target offsets
 * (device offset - window start). */
static int write_data(struct sctx *s, struct pl_job *j, uint64_t *failed_at)
{
	uint64_t off = j->u[U_OFF], len = j->u[U_LEN], lo = off, hi = off + len, b, e;
	if (!clip_window(s, &lo, &hi))
		return 0;
	uint64_t pos = lo;
	while (next_kept(&s->alloc, &pos, hi, &b, &e)) {
		int r = target_write(&s->tgt, j->out + (b - off), b - s->wlo, (size_t)(e - b), j);
		if (r < 0) {
			*failed_at = s->tgt.err_off + s->wlo;
			return r;
		}
	}
	return 0;
}

/* Zero the kept bytes of [off, off + len) (a ZERO frame may span FREE bytes). */
static int write_zero_frame(struct sctx *s, uint64_t off, uint64_t len, uint64_t *failed_at)
{
	uint64_t lo = off, hi = off + len, b, e;
	if (!clip_window(s, &lo, &hi))
		return 0;
	uint64_t pos = lo;
	while (next_kept(&s->alloc, &pos, hi, &b, &e)) {
		int r = target_zero(&s->tgt, b - s->wlo, e - b);
		if (r < 0) {
			*failed_at = s->tgt.err_off + s->wlo;
			return r;
		}
		if (!s->tgt.sparse)
			s->written += e - b;
	}
	return 0;
}

/* --discard / --zero-free: FREE ranges inside the window, after a successful restore.
 * Discarding is best effort (a device without TRIM keeps its data); zeroing is not. On a
 * new sparse file FREE ranges are holes already. */
static int treat_free(struct sctx *s)
{
	int fd = s->o->target_fd;
	bool blk = s->o->flags & IMAGO_RESTORE_BLOCKDEV;
	bool zero = s->o->flags & IMAGO_RESTORE_ZERO_FREE;
	for (size_t i = 0; i < s->alloc.n; i++) {
		const struct imago_extent *e = &s->alloc.v[i];
		uint64_t lo = e->offset, hi = e->offset + e->length;
		if (e->state != IMAGO_FREE || !clip_window(s, &lo, &hi))
			continue;
		uint64_t off = lo - s->wlo, len = hi - lo;
		if (zero) {
			int r = target_zero(&s->tgt, off, len);
			if (r < 0)
				return write_err(s, r, lo);
			if (!s->tgt.sparse)
				s->written += len;
		} else if (blk) {
			/* BLKDISCARD wants whole logical sectors. */
			uint64_t a = (off + 4095) / 4096 * 4096, b = (off + len) / 4096 * 4096;
			uint64_t range[2] = { a, b - a };
			if (b > a)
				ioctl(fd, BLKDISCARD, range);
		} else {
			fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
		}
	}
	return 0;
}

static int consume(void *vctx, struct pl_job *j)
{
	struct sctx *s = vctx;
	uint64_t off = j->u[U_OFF], len = j->u[U_LEN];
	int r, held = 0;
	/* A write of an earlier chunk that failed comes first (device order). */
	if (s->restore && (j->status < 0 ? target_flush(&s->tgt) : s->tgt.err) < 0)
		return write_err(s, s->tgt.err, s->tgt.err_off + s->wlo);
	if (j->status < 0) {
		uint64_t chunk = off / s->cs;
		const char *why = j->u[U_WHY] ? (const char *)(uintptr_t)j->u[U_WHY] : strerror(-j->status);
		return err_set(s->err, j->status, (int64_t)j->u[U_FOFF], (int64_t)off, (int64_t)chunk,
			       "%s: chunk %llu (device byte %llu, image byte %llu) is damaged: %s", s->o->name,
			       (unsigned long long)chunk, (unsigned long long)off,
			       (unsigned long long)j->u[U_FOFF], why);
	}
	if (off > s->cpos && (r = digest_acc_zeros(&s->dig, off - s->cpos)) < 0)
		return err_set(s->err, r, -1, (int64_t)off, -1, "internal error in digest");
	s->cpos = off;
	if (j->u[U_DIFF] && (!s->differs_at || j->u[U_DIFF] < s->differs_at))
		s->differs_at = j->u[U_DIFF];
	switch (j->u[U_TYPE]) {
	case T_GAP:
		r = digest_acc_zeros(&s->dig, len);
		break;
	case FMT_FRAME_ZERO:
		r = digest_acc_zeros(&s->dig, len);
		if (r == 0 && s->nzs && s->zs[s->nzs - 1].off + s->zs[s->nzs - 1].len == off) {
			s->zs[s->nzs - 1].len += len;
		} else if (r == 0) {
			if (grow((void **)&s->zs, &s->capzs, s->nzs, sizeof(*s->zs)) < 0)
				return err_set(s->err, -ENOMEM, -1, -1, -1, "out of memory");
			s->zs[s->nzs++] = (struct zrange){ off, len };
		}
		if (r == 0 && s->restore) {
			uint64_t at = off;
			if ((r = write_zero_frame(s, off, len, &at)) < 0)
				return write_err(s, r, at);
		}
		break;
	default:
		r = digest_acc_leaves(&s->dig, j->aux, len);
		if (r < 0)
			break;
		/* Written here, in device order, by this one thread: see target.c. The
		 * chunk's kept pieces are one write for the target (target_begin/end): the job
		 * stays held while any of them is in flight, and is released once, by
		 * job_written, after the last. */
		if (s->restore) {
			uint64_t at = off;
			target_begin(&s->tgt, j);
			r = write_data(s, j, &at);
			held = target_end(&s->tgt, j);
			if (r < 0)
				return write_err(s, r, at);
			if (held < 0)
				return write_err(s, held, s->tgt.err_off + s->wlo);
		}
		if (grow((void **)&s->seen, &s->capseen, s->nseen, sizeof(*s->seen)) < 0)
			return err_set(s->err, -ENOMEM, -1, -1, -1, "out of memory");
		s->seen[s->nseen++] = (struct fmt_index_entry){
			.logical_offset = off, .file_offset = j->u[U_FOFF], .logical_length = (uint32_t)len,
			.stored_length = (uint32_t)j->in_len, .data_checksum = j->u[U_SUM] };
		s->stored += j->in_len;
		s->chunks++;
		if (s->restore)
			s->written += len; /* FREE bytes of the chunk counted too */
	}
	if (r < 0)
		return err_set(s->err, r, -1, (int64_t)off, -1, "internal error in digest");
	s->cpos = off + len;
	if (progress_tick(&s->clock, s->cpos, s->dsize, s->o->progress, s->o->progress_opaque))
		return err_set(s->err, -ECANCELED, -1, (int64_t)s->cpos, -1, "cancelled");
	return held ? PL_HOLD : 0;
}

static void job_written(void *token)
{
	pipeline_release(token);
}

/* The pipeline is over: wait for the writes in flight (their jobs come back). A failure
 * is reported here only if nothing else failed first. */
static int drain(void *vctx)
{
	struct sctx *s = vctx;
	int r = target_flush(&s->tgt);
	if (r < 0 && !(s->err && s->err->code) && !s->prod_err.code)
		write_err(s, r, s->tgt.err_off + s->wlo);
	return r;
}

/* ------------------------------------------------------------------ tail */

/* Read a section from the stream; the first `have` (< 24) bytes of its header were read
 * already and are in `first`. Its length must
 * be exactly `want_len` when known (not UINT64_MAX), else at most max_len. */
static int stream_section(struct sctx *s, const uint8_t *first, size_t have, uint32_t magic,
			  const char *what, uint64_t want_len, uint64_t max_len, struct fmt_section *sec,
			  uint8_t **payload)
{
	uint64_t at = s->rpos - have;
	uint8_t hdr[FMT_SECTION_HDR_SIZE], tail[8];
	int r;
	size_t from_first = have;
	if (have)
		memcpy(hdr, first, have);
	if (from_first < sizeof(hdr) &&
	    (r = rd_stream(s, hdr + from_first, sizeof(hdr) - from_first, s->err, what)) < 0)
		return r;
	fmt_section_decode(hdr, sec);
	if (sec->magic != magic)
		return err_set(s->err, -EBADMSG, (int64_t)at, -1, -1, "%s: %s section at byte %llu: bad magic",
			       s->o->name, what, (unsigned long long)at);
	if ((want_len != UINT64_MAX && sec->length != want_len) || sec->length > max_len)
		return err_set(s->err, -EBADMSG, (int64_t)at, -1, -1,
			       "%s: %s section at byte %llu has an impossible length (%llu)", s->o->name, what,
			       (unsigned long long)at, (unsigned long long)sec->length);
	uint8_t *p = malloc(sec->length ? (size_t)sec->length : 1);
	if (!p)
		return err_set(s->err, -ENOMEM, -1, -1, -1, "out of memory");
	if ((r = rd_stream(s, p, (size_t)sec->length, s->err, what)) < 0 ||
	    (r = rd_stream(s, tail, 8, s->err, what)) < 0) {
		free(p);
		return r;
	}
	uint64_t sum;
	if (fmt_section_checksum(hdr, p, sec->length, &sum) < 0) {
		free(p);
		return err_set(s->err, -ENOMEM, -1, -1, -1, "out of memory");
	}
	if (sum != get_le64(tail)) {
		free(p);
		return err_set(s->err, -EBADMSG, (int64_t)at, -1, -1, "%s: %s section at byte %llu: checksum mismatch",
			       s->o->name, what, (unsigned long long)at);
	}
	*payload = p;
	return 0;
}

/* Pipe input: read and check the sections and trailer after the frames. Fills a
 * temporary image handle with what was read, so one set of checks serves both paths. */
static int stream_tail(struct sctx *s, struct imago_image *t)
{
	struct fmt_section sec;
	uint8_t *p = NULL;
	int r;
	uint64_t meta_off = s->rpos - sizeof(s->carry);
	if ((r = stream_section(s, s->carry, sizeof(s->carry), FMT_SEC_METADATA, "metadata", UINT64_MAX,
				META_MAX, &sec, &p)) < 0)
		return r;
	r = fmt_metadata_parse(p, sec.length, sec.count, &t->meta);
	free(p);
	if (r < 0)
		return err_set(s->err, -EBADMSG, (int64_t)meta_off, -1, -1, "%s: metadata section is malformed",
			       s->o->name);
	t->nmeta = (size_t)sec.count;

	uint64_t ext_off = s->rpos;
	uint64_t max_ext = 2 * ((uint64_t)s->nseen + s->nzs + s->alloc.n) + 2;
	if ((r = stream_section(s, NULL, 0, FMT_SEC_EXTENTS, "extent map", UINT64_MAX,
				max_ext * FMT_EXTENT_ENTRY_SIZE, &sec, &p)) < 0)
		return r;
	if (sec.length % FMT_EXTENT_ENTRY_SIZE || sec.count != sec.length / FMT_EXTENT_ENTRY_SIZE) {
		free(p);
		return err_set(s->err, -EBADMSG, (int64_t)ext_off, -1, -1,
			       "%s: extent map count does not match its length", s->o->name);
	}
	struct imago_extent *ev = malloc((size_t)(sec.count ? sec.count : 1) * sizeof(*ev));
	if (!ev) {
		free(p);
		return err_set(s->err, -ENOMEM, -1, -1, -1, "out of memory");
	}
	for (uint64_t i = 0; i < sec.count; i++)
		fmt_extent_decode(p + i * FMT_EXTENT_ENTRY_SIZE, &ev[i]);
	free(p);
	if (extent_map_adopt(&t->map, ev, (size_t)sec.count, s->dsize) < 0) {
		free(ev);
		return err_set(s->err, -EBADMSG, (int64_t)ext_off, -1, -1,
			       "%s: extent map is inconsistent (section at byte %llu)", s->o->name,
			       (unsigned long long)ext_off);
	}

	uint64_t idx_off = s->rpos;
	if ((r = stream_section(s, NULL, 0, FMT_SEC_INDEX, "index", (uint64_t)s->nseen * FMT_INDEX_ENTRY_SIZE,
				UINT64_MAX, &sec, &p)) < 0)
		return r;
	if (sec.count != s->nseen) {
		free(p);
		return err_set(s->err, -EBADMSG, (int64_t)idx_off, -1, -1,
			       "%s: index count does not match the frames", s->o->name);
	}
	t->idx = malloc((size_t)(sec.count ? sec.count : 1) * sizeof(*t->idx));
	if (!t->idx) {
		free(p);
		return err_set(s->err, -ENOMEM, -1, -1, -1, "out of memory");
	}
	for (uint64_t i = 0; i < sec.count; i++)
		fmt_index_entry_decode(p + i * FMT_INDEX_ENTRY_SIZE, &t->idx[i]);
	t->nidx = (size_t)sec.count;
	free(p);

	uint64_t toff = s->rpos;
	uint8_t tb[FMT_TRAILER_SIZE], extra;
	const char *why = NULL;
	if ((r = rd_stream(s, tb, sizeof(tb), s->err, "trailer")) < 0)
		return r;
	if ((r = fmt_trailer_decode(tb, &t->trl, &why)) < 0)
		return err_set(s->err, r, (int64_t)toff, -1, -1, "%s: %s (trailer at byte %llu)", s->o->name, why,
			       (unsigned long long)toff);
	if (t->trl.metadata_offset != meta_off || t->trl.extents_offset != ext_off ||
	    t->trl.index_offset != idx_off)
		return err_set(s->err, -EBADMSG, (int64_t)toff, -1, -1,
			       "%s: trailer section offsets disagree with the stream", s->o->name);
	ssize_t more = xread_full(s->o->image_fd, &extra, 1);
	if (more != 0)
		return err_set(s->err, -EBADMSG, (int64_t)s->rpos, -1, -1,
			       "%s: unexpected data after the trailer at byte %llu", s->o->name,
			       (unsigned long long)s->rpos);
	t->file_size = s->rpos;
	return 0;
}

/* Checks common to both paths once everything was read: frames against index, trailer
 * and extent map, and the content digest. */
static int final_checks(struct sctx *s, const struct imago_image *t, const uint8_t digest[32])
{
	const struct fmt_trailer *trl = &t->trl;
	const char *n = s->o->name;
	if (trl->device_size != s->dsize || trl->header_checksum != s->hdr.checksum)
		return err_set(s->err, -EBADMSG, (int64_t)(t->file_size - FMT_TRAILER_SIZE), -1, -1,
			       "%s: trailer does not belong to this header (mixed-up or damaged image)", n);
	if (s->sections_at != trl->metadata_offset)
		return err_set(s->err, -EBADMSG, (int64_t)s->sections_at, -1, -1,
			       "%s: frames end at byte %llu but the trailer says %llu", n,
			       (unsigned long long)s->sections_at, (unsigned long long)trl->metadata_offset);
	if (trl->data_frames != s->nseen || trl->zero_frames != s->zero_frames_seen ||
	    trl->stored_bytes != s->stored || t->nidx != s->nseen)
		return err_set(s->err, -EBADMSG, (int64_t)(t->file_size - FMT_TRAILER_SIZE), -1, -1,
			       "%s: trailer counts disagree with the frames found", n);
	for (size_t i = 0; i < s->nseen; i++) {
		const struct fmt_index_entry *a = &s->seen[i], *b = &t->idx[i];
		if (a->logical_offset != b->logical_offset || a->file_offset != b->file_offset ||
		    a->logical_length != b->logical_length || a->stored_length != b->stored_length ||
		    a->data_checksum != b->data_checksum)
			return err_set(s->err, -EBADMSG, (int64_t)trl->index_offset, (int64_t)a->logical_offset,
				       (int64_t)(a->logical_offset / s->cs),
				       "%s: index entry %zu disagrees with the frame at image byte %llu", n, i,
				       (unsigned long long)a->file_offset);
	}
	int r = reader_check_index(&s->hdr, trl->metadata_offset, &t->map, t->idx, t->nidx, n,
				   trl->index_offset, s->err);
	if (r < 0)
		return r;
	/* ZERO frames hold exactly the ZERO extents (and may span FREE bytes between them). */
	uint64_t zbytes = 0, tot[6];
	for (size_t i = 0; i < s->nzs; i++) {
		uint64_t zo = s->zs[i].off, ze = zo + s->zs[i].len;
		for (uint64_t pos = zo; pos < ze;) {
			ptrdiff_t x = extent_map_find(&t->map, pos);
			const struct imago_extent *ex = x >= 0 ? &t->map.v[x] : NULL;
			if (!ex || (ex->state != IMAGO_ZERO && ex->state != IMAGO_FREE))
				return err_set(s->err, -EBADMSG, (int64_t)trl->extents_offset, (int64_t)pos, -1,
					       "%s: zero frame at device byte %llu is not a zero extent in the map",
					       n, (unsigned long long)zo);
			uint64_t xe = ex->offset + ex->length < ze ? ex->offset + ex->length : ze;
			if (ex->state == IMAGO_ZERO)
				zbytes += xe - pos;
			pos = xe;
		}
	}
	extent_map_totals(&t->map, tot);
	if (tot[IMAGO_ZERO] != zbytes)
		return err_set(s->err, -EBADMSG, (int64_t)trl->extents_offset, -1, -1,
			       "%s: the extent map's zero ranges have no zero frames", n);
	uint64_t at;
	if (fmt_alloc_matches(&s->alloc, &t->map, &at) < 0)
		return err_set(s->err, -EBADMSG, (int64_t)trl->extents_offset, (int64_t)at, -1,
			       "%s: the extent map and the allocation map disagree at device byte %llu",
			       n, (unsigned long long)at);
	if (memcmp(digest, trl->digest, IMAGO_DIGEST_LEN) != 0)
		return err_set(s->err, -EBADMSG, (int64_t)(t->file_size - FMT_TRAILER_SIZE), -1, -1,
			       "%s: content digest mismatch: the data read back is not what was imaged", n);
	return 0;
}

int stream_run(const struct stream_opts *o, struct stream_result *res, struct imago_err *err)
{
	err_clear(err);
	struct sctx s = { .o = o, .err = err, .restore = o->mode == STREAM_RESTORE,
			  .against = o->mode == STREAM_VERIFY && o->against_fd >= 0 };
	err_clear(&s.prod_err);
	struct imago_image tail = { 0 };
	const struct imago_image *t = NULL;
	int r;
	struct stat st;
	const char *why = NULL;
	struct pl_config cfg = { 0 };

	if (fstat(o->image_fd, &st) < 0)
		return err_set(err, -errno, -1, -1, -1, "%s: %s", o->name, strerror(errno));
	if (S_ISREG(st.st_mode)) {
		/* Seekable: check every structure before reading (or writing) anything. */
		if ((r = imago_image_open_fd(o->image_fd, o->name, &s.img, err)) < 0)
			return r;
		if (lseek(o->image_fd, 0, SEEK_SET) < 0) {
			r = err_set(err, -errno, -1, -1, -1, "%s: %s", o->name, strerror(errno));
			goto out;
		}
	} else if (S_ISFIFO(st.st_mode)) {
		/* A 64 KiB pipe makes sixteen reads, and as many wake-ups of the writer, per
		 * 1 MiB frame: ask for a larger one (up to the unprivileged limit; a refusal
		 * only costs speed). */
		fcntl(o->image_fd, F_SETPIPE_SZ, PIPE_WANT);
	}
	ssize_t got = xread_full(o->image_fd, s.hdr_bytes, FMT_HEADER_SIZE);
	if (got < 0) {
		r = err_set(err, (int)got, 0, -1, -1, "%s: cannot read the header: %s", o->name,
			    strerror((int)-got));
		goto out;
	}
	s.rpos = (uint64_t)got;
	if (got < FMT_HEADER_SIZE) {
		if (got >= 8 && memcmp(s.hdr_bytes, fmt_magic, 8) == 0)
			r = err_set(err, -EBADMSG, got, -1, -1,
				    "%s: image ends at byte %zd, inside the header: the image is incomplete",
				    o->name, got);
		else
			r = err_set(err, -ENOTSUP, 0, -1, -1, "%s: not an imago image (too small)", o->name);
		goto out;
	}
	if ((r = fmt_header_decode(s.hdr_bytes, &s.hdr, &why)) < 0) {
		err_set(err, r, 0, -1, -1, "%s: %s", o->name, why);
		goto out;
	}
	s.cs = s.hdr.chunk_size;
	s.dsize = s.hdr.device_size;
	{
		struct fmt_section sec;
		uint8_t *p = NULL;
		uint64_t want = s.hdr.frames_offset - FMT_HEADER_SIZE - fmt_alloc_section_size(0);
		if ((r = stream_section(&s, NULL, 0, FMT_SEC_ALLOC, "allocation map", want, want, &sec,
					&p)) < 0)
			goto out;
		r = fmt_alloc_decode(p, sec.length, sec.count, s.dsize, &s.alloc, &why);
		free(p);
		if (r < 0) {
			err_set(err, r, FMT_HEADER_SIZE, -1, -1, "%s: %s (section at byte %d)", o->name, why,
				FMT_HEADER_SIZE);
			goto out;
		}
	}
	if (res) {
		memset(res, 0, sizeof(*res));
		res->device_size = s.dsize; /* known now, even if the run fails later */
	}
	s.wlo = 0;
	s.whi = s.dsize;
	if (s.restore && (o->window_offset || o->window_length)) {
		if (o->window_offset > s.dsize || o->window_length > s.dsize - o->window_offset ||
		    !o->window_length) {
			r = err_set(err, -EINVAL, -1, (int64_t)o->window_offset, -1,
				    "the range to restore (%llu bytes at %llu) is not inside the device "
				    "(%llu bytes)", (unsigned long long)o->window_length,
				    (unsigned long long)o->window_offset, (unsigned long long)s.dsize);
			goto out;
		}
		s.wlo = o->window_offset;
		s.whi = o->window_offset + o->window_length;
	}
	if (s.restore && o->target_size && s.whi - s.wlo > o->target_size) {
		r = err_set(err, -EFBIG, -1, -1, -1,
			    "target is too small: the image needs %llu bytes, the target has %llu",
			    (unsigned long long)(s.whi - s.wlo), (unsigned long long)o->target_size);
		goto out;
	}
	if (s.restore && !(o->flags & IMAGO_RESTORE_BLOCKDEV)) {
		/* A file gets its full length now (it has it already unless the image comes
		 * from a pipe): writes inside the file's length can be in flight together. */
		struct stat ts;
		if (fstat(o->target_fd, &ts) == 0 && S_ISREG(ts.st_mode) && (uint64_t)ts.st_size < s.whi - s.wlo &&
		    ftruncate(o->target_fd, (off_t)(s.whi - s.wlo)) < 0) {
			r = write_err(&s, -errno, s.whi);
			goto out;
		}
	}
	if (s.restore && target_open(&s.tgt, o->target_fd, o->flags, s.cs, job_written) < 0) {
		r = err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
		goto out;
	}
	s.pcap = ZSTD_compressBound(s.cs);
	s.leaves_len = digest_leaf_count(s.cs) * DIGEST_LEAF_HASH;
	cfg = (struct pl_config){ .workers = o->threads, .in_cap = s.pcap + (s.against ? s.cs : 0),
				  .out_cap = s.cs, .aux_cap = s.leaves_len,
				  .hold = s.restore ? target_depth(&s.tgt) : 0,
				  .drain = s.restore ? drain : NULL };
	cfg.workers = pipeline_workers(&cfg);
	if (!(s.dctx = calloc(cfg.workers, sizeof(*s.dctx)))) {
		r = err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < cfg.workers; i++)
		if (!(s.dctx[i] = ZSTD_createDCtx())) {
			r = err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
			goto out;
		}
	if ((r = digest_acc_init(&s.dig, s.dsize)) < 0) {
		err_set(err, r, -1, -1, -1, "out of memory");
		goto out;
	}
	progress_clock_init(&s.clock);
	s.dig.tick = dig_tick; /* a claimed device of 2^62 FREE bytes must stay interruptible */
	s.dig.tick_opaque = &s;

	static const struct pl_ops ops = { produce, work, consume };
	r = pipeline_run(&ops, &s, &cfg, NULL);
	if (r < 0) {
		if (err && err->code == 0 && s.prod_err.code)
			err_copy(err, &s.prod_err);
		if (err && err->code == 0)
			err_set(err, r, -1, -1, -1, "%s: %s", o->name, strerror(-r));
		goto out;
	}
	if (s.cpos < s.dsize && (r = digest_acc_zeros(&s.dig, s.dsize - s.cpos)) < 0) {
		err_set(err, r, -1, -1, -1, "internal error in digest");
		goto out;
	}
	uint8_t digest[IMAGO_DIGEST_LEN];
	if ((r = digest_acc_final(&s.dig, digest)) < 0) {
		err_set(err, r, -1, -1, -1, "internal error in digest");
		goto out;
	}
	if (s.img) {
		t = s.img;
	} else {
		tail.hdr = s.hdr;
		if ((r = stream_tail(&s, &tail)) < 0)
			goto out;
		t = &tail;
	}
	if ((r = final_checks(&s, t, digest)) < 0)
		goto out;
	if (s.restore && !(o->flags & IMAGO_RESTORE_BLOCKDEV)) {
		struct stat ts;
		uint64_t want = s.whi - s.wlo;
		if (fstat(o->target_fd, &ts) == 0 && S_ISREG(ts.st_mode) && (uint64_t)ts.st_size < want &&
		    ftruncate(o->target_fd, (off_t)want) < 0) {
			r = write_err(&s, -errno, want);
			goto out;
		}
	}
	if (s.restore && (o->flags & (IMAGO_RESTORE_DISCARD_FREE | IMAGO_RESTORE_ZERO_FREE)) &&
	    (r = treat_free(&s)) < 0)
		goto out;
	if (res) {
		res->chunks = s.chunks;
		res->bytes_written = s.written;
		memcpy(res->digest, digest, IMAGO_DIGEST_LEN);
	}
	if (s.against && (s.differs_at || o->against_size != s.dsize)) {
		uint64_t at = s.differs_at ? s.differs_at - 1 : (o->against_size < s.dsize ? o->against_size : s.dsize);
		r = err_set(err, -EILSEQ, -1, (int64_t)at, (int64_t)(at / s.cs),
			    "%s: the image is sound but differs from the source at device byte %llu%s", o->name,
			    (unsigned long long)at,
			    o->against_size != s.dsize ? " (the sizes differ)" : "");
		goto out;
	}
	progress_final(&s.clock, s.dsize, o->progress, o->progress_opaque);
	r = 0;
out:
	if (s.dctx)
		for (unsigned i = 0; i < cfg.workers; i++)
			ZSTD_freeDCtx(s.dctx[i]);
	free(s.dctx);
	if (s.restore)
		target_close(&s.tgt);
	free(s.seen);
	free(s.zs);
	digest_acc_free(&s.dig);
	extent_map_free(&tail.map);
	extent_map_free(&s.alloc);
	free(tail.idx);
	free(tail.meta);
	imago_image_close(s.img);
	return r;
}
