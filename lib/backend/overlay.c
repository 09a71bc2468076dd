/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The copy-on-write overlay (overlay.h, docs/OVERLAY.md). Written by hand: qcow2 with a
 * backing file would do the job, but libqcow is read-only and linking qemu's block layer
 * is not an option; this needs a few hundred lines and has to be exactly as safe as we
 * say.
 *
 * The file is a header and a sequence of records, each a block's data with a checksummed
 * header (block number, sequence number, data checksum). A block has at most two records:
 * the current one and a spare. A write goes to the spare (or to a free slot, or the end
 * of the file), and only then becomes current: if the writer dies midway, the record
 * being written is torn, fails its checksum, and the previous one is still there and
 * current (highest valid sequence number wins when the file is opened). A block is never
 * served from a record that fails its checks. A kill can lose the last writes that were
 * not flushed, as on a disk; it cannot make a block read back as something never written.
 *
 * In memory: a hash table block -> (current record, spare record); a list of free slots
 * (records that failed their checks at open). Memory is proportional to the blocks
 * written. A read-write lock: reads share it, writes (read-modify-write of partial blocks
 * and the slot bookkeeping) hold it alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/overlay.h"
#include "image/format.h"
#include "util/err.h"
#include "util/xio.h"

static const uint8_t ovl_magic[8] = { 'I', 'M', 'A', 'G', 'O', 'O', 'V', 'L' };

struct ovl_entry {
	uint64_t key;           /* block + 1; 0 = empty slot of the table */
	uint64_t cur, spare;    /* file offsets of the records; 0 = none */
	uint64_t cur_seq, spare_seq;
};

struct overlay {
	struct backend *lower;
	int fd;
	struct ovl_header h;
	uint32_t bs;
	size_t rec_size;
	uint64_t nblocks;
	uint64_t seq;           /* next sequence number */
	uint64_t file_end;      /* where the next appended record goes */
	struct ovl_entry *tab;
	size_t cap, n;
	uint64_t *free_slots;
	size_t nfree, free_cap;
	uint64_t damaged;
	pthread_rwlock_t lock;
	pthread_mutex_t err_mu;
	struct imago_err err;
};

/* ---------------------------------------------------------------- on-disk encoding */

void ovl_header_encode(const struct ovl_header *h, uint8_t out[OVL_HEADER_USED])
{
	memset(out, 0, OVL_HEADER_USED);
	memcpy(out, ovl_magic, 8);
	put_le16(out + 8, h->major);
	put_le16(out + 10, h->minor);
	put_le32(out + 12, OVL_HEADER_SIZE);
	put_le32(out + 16, h->block_size);
	put_le32(out + 20, OVL_REC_HDR_SIZE);
	put_le64(out + 24, h->device_size);
	memcpy(out + 32, h->identity, BACKEND_ID_LEN);
	put_le64(out + 64, h->overlay_id);
	put_le64(out + 72, h->flags);
	put_le64(out + 120, fmt_xxh3(out, 120, 0));
}

int ovl_header_decode(const uint8_t *p, struct ovl_header *h, const char **why)
{
	if (memcmp(p, ovl_magic, 8) != 0) {
		*why = "not an imago overlay (bad magic)";
		return -ENOTSUP;
	}
	if (get_le64(p + 120) != fmt_xxh3(p, 120, 0)) {
		*why = "overlay header checksum mismatch";
		return -EBADMSG;
	}
	h->major = get_le16(p + 8);
	h->minor = get_le16(p + 10);
	h->block_size = get_le32(p + 16);
	h->device_size = get_le64(p + 24);
	memcpy(h->identity, p + 32, BACKEND_ID_LEN);
	h->overlay_id = get_le64(p + 64);
	h->flags = get_le64(p + 72);
	if (h->major != OVL_VERSION_MAJOR) {
		*why = "overlay version not supported";
		return -ENOTSUP;
	}
	if (h->flags) {
		*why = "overlay uses features this version does not know";
		return -ENOTSUP;
	}
	if (get_le32(p + 12) != OVL_HEADER_SIZE || get_le32(p + 20) != OVL_REC_HDR_SIZE) {
		*why = "overlay header or record header size is wrong";
		return -EBADMSG;
	}
	uint32_t bs = h->block_size;
	if (bs < OVL_BLOCK_MIN || bs > OVL_BLOCK_MAX || (bs & (bs - 1))) {
		*why = "overlay block size is not a power of two from 512 bytes to 1 MiB";
		return -EBADMSG;
	}
	for (unsigned i = 80; i < 120; i++)
		if (p[i]) {
			*why = "overlay header reserved bytes are not zero";
			return -EBADMSG;
		}
	return 0;
}

void ovl_record_encode(const struct ovl_record *r, uint8_t out[OVL_REC_HDR_SIZE])
{
	memset(out, 0, OVL_REC_HDR_SIZE);
	put_le32(out, OVL_REC_MAGIC);
	put_le64(out + 8, r->overlay_id);
	put_le64(out + 16, r->block);
	put_le64(out + 24, r->seq);
	put_le64(out + 32, r->data_checksum);
	put_le64(out + 56, fmt_xxh3(out, 56, 0));
}

int ovl_record_decode(const uint8_t *p, struct ovl_record *r)
{
	if (get_le32(p) != OVL_REC_MAGIC || get_le64(p + 56) != fmt_xxh3(p, 56, 0))
		return -EBADMSG;
	r->overlay_id = get_le64(p + 8);
	r->block = get_le64(p + 16);
	r->seq = get_le64(p + 24);
	r->data_checksum = get_le64(p + 32);
	return 0;
}

/* ---------------------------------------------------------------- block table */

static uint64_t hash64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

static struct ovl_entry *tab_find(const struct overlay *o, uint64_t block)
{
	if (!o->cap)
		return NULL;
	size_t i = (size_t)hash64(block + 1) & (o->cap - 1);
	while (o->tab[i].key) {
		if (o->tab[i].key == block + 1)
			return &o->tab[i];
		i = (i + 1) & (o->cap - 1);
	}
	return NULL;
}

static int tab_grow(struct overlay *o)
{
	size_t cap = o->cap ? o->cap * 2 : 1024;
	struct ovl_entry *t = calloc(cap, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (size_t k = 0; k < o->cap; k++) {
		if (!o->tab[k].key)
			continue;
		size_t i = (size_t)hash64(o->tab[k].key) & (cap - 1);
		while (t[i].key)
			i = (i + 1) & (cap - 1);
		t[i] = o->tab[k];
	}
	free(o->tab);
	o->tab = t;
	o->cap = cap;
	return 0;
}

/* The entry of block, made (empty) when missing. NULL: out of memory. */
static struct ovl_entry *tab_get(struct overlay *o, uint64_t block)
{
	struct ovl_entry *e = tab_find(o, block);
	if (e)
		return e;
	if ((o->n + 1) * 2 > o->cap && tab_grow(o) < 0)
		return NULL;
	size_t i = (size_t)hash64(block + 1) & (o->cap - 1);
	while (o->tab[i].key)
		i = (i + 1) & (o->cap - 1);
	o->tab[i] = (struct ovl_entry){ .key = block + 1 };
	o->n++;
	return &o->tab[i];
}

static int free_push(struct overlay *o, uint64_t off)
{
	if (o->nfree == o->free_cap) {
		size_t cap = o->free_cap ? o->free_cap * 2 : 64;
		uint64_t *v = realloc(o->free_slots, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		o->free_slots = v;
		o->free_cap = cap;
	}
	o->free_slots[o->nfree++] = off;
	return 0;
}

/* ---------------------------------------------------------------- open */

/* A valid record of block at off with seq: keep the two newest, free the rest. */
static int scan_take(struct overlay *o, uint64_t block, uint64_t seq, uint64_t off)
{
	struct ovl_entry *e = tab_get(o, block);
	if (!e)
		return -ENOMEM;
	if (!e->cur) {
		e->cur = off, e->cur_seq = seq;
		return 0;
	}
	uint64_t drop = 0;
	if (seq > e->cur_seq) {
		drop = e->spare;
		e->spare = e->cur, e->spare_seq = e->cur_seq;
		e->cur = off, e->cur_seq = seq;
	} else if (!e->spare || seq > e->spare_seq) {
		drop = e->spare;
		e->spare = off, e->spare_seq = seq;
	} else {
		drop = off;
	}
	return drop ? free_push(o, drop) : 0;
}

static int scan(struct overlay *o, uint64_t file_size, const char *name, struct imago_err *err)
{
	uint64_t nrec = (file_size - OVL_HEADER_SIZE) / o->rec_size;
	size_t batch = (size_t)((4u << 20) / o->rec_size);
	if (batch == 0)
		batch = 1;
	uint8_t *buf = malloc(batch * o->rec_size);
	if (!buf)
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	int r = 0;
	for (uint64_t i = 0; i < nrec && r == 0;) {
		size_t k = nrec - i < batch ? (size_t)(nrec - i) : batch;
		uint64_t at = OVL_HEADER_SIZE + i * o->rec_size;
		ssize_t got = xpread_full(o->fd, buf, k * o->rec_size, at);
		if (got < 0) {
			r = err_set(err, (int)got, (int64_t)at, -1, -1, "%s: cannot read at byte %llu: %s", name,
				    (unsigned long long)at, strerror((int)-got));
			break;
		}
		if ((size_t)got < k * o->rec_size) {
			r = err_set(err, -EIO, (int64_t)at, -1, -1, "%s: shrank while being read", name);
			break;
		}
		for (size_t j = 0; j < k && r == 0; j++) {
			const uint8_t *p = buf + j * o->rec_size;
			uint64_t off = at + j * o->rec_size;
			struct ovl_record rec;
			if (ovl_record_decode(p, &rec) == 0 && rec.overlay_id == o->h.overlay_id &&
			    rec.block < o->nblocks && rec.seq < OVL_SEQ_LIMIT &&
			    fmt_xxh3(p + OVL_REC_HDR_SIZE, o->bs, rec.block) == rec.data_checksum) {
				r = scan_take(o, rec.block, rec.seq, off);
				if (rec.seq >= o->seq)
					o->seq = rec.seq + 1;
			} else {
				o->damaged++;
				r = free_push(o, off);
			}
			if (r < 0)
				r = err_set(err, r, -1, -1, -1, "out of memory");
		}
		i += k;
	}
	free(buf);
	o->file_end = OVL_HEADER_SIZE + nrec * o->rec_size;
	return r;
}

static void ovl_free(struct overlay *o)
{
	free(o->tab);
	free(o->free_slots);
	pthread_rwlock_destroy(&o->lock);
	pthread_mutex_destroy(&o->err_mu);
	free(o);
}

static const struct backend_ops ovl_ops;

int overlay_open_fd(struct backend *lower, int fd, const char *name, unsigned flags,
		    uint32_t block_size, struct backend **out, struct imago_err *err)
{
	struct stat st;
	uint8_t hb[OVL_HEADER_USED];
	const char *why = NULL;
	int r;
	if (fstat(fd, &st) < 0)
		return err_set(err, -errno, -1, -1, -1, "%s: %s", name, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return err_set(err, -EINVAL, -1, -1, -1, "%s: an overlay must be a regular file", name);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return err_set(err, errno == EWOULDBLOCK ? -EBUSY : -errno, -1, -1, -1,
			       "%s: the overlay is in use by another process", name);
	struct overlay *o = calloc(1, sizeof(*o));
	if (!o)
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	o->fd = fd;
	o->lower = lower;
	pthread_rwlock_init(&o->lock, NULL);
	pthread_mutex_init(&o->err_mu, NULL);
	if (st.st_size == 0) {
		if (!(flags & OVL_CREATE)) {
			r = err_set(err, -ENOTSUP, 0, -1, -1, "%s: empty file, not an overlay", name);
			goto fail;
		}
		uint32_t bs = block_size ? block_size : OVL_BLOCK_DEFAULT;
		if (bs < OVL_BLOCK_MIN || bs > OVL_BLOCK_MAX || (bs & (bs - 1))) {
			r = err_set(err, -EINVAL, -1, -1, -1, "overlay block size %u is not a power of two "
				    "from 512 to 1048576", bs);
			goto fail;
		}
		o->h = (struct ovl_header){ .major = OVL_VERSION_MAJOR, .minor = OVL_VERSION_MINOR,
					    .block_size = bs, .device_size = lower->size };
		memcpy(o->h.identity, lower->identity, BACKEND_ID_LEN);
		if (getrandom(&o->h.overlay_id, sizeof(o->h.overlay_id), 0) != sizeof(o->h.overlay_id))
			o->h.overlay_id = (uint64_t)st.st_ino * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
		uint8_t *page = calloc(1, OVL_HEADER_SIZE);
		if (!page) {
			r = err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
			goto fail;
		}
		ovl_header_encode(&o->h, page);
		r = xpwrite_full(fd, page, OVL_HEADER_SIZE, 0);
		free(page);
		if (r == 0 && fdatasync(fd) < 0)
			r = -errno;
		if (r < 0) {
			r = err_set(err, r, 0, -1, -1, "%s: cannot write the overlay header: %s", name,
				    strerror(-r));
			goto fail;
		}
		st.st_size = OVL_HEADER_SIZE;
	} else {
		ssize_t got = xpread_full(fd, hb, sizeof(hb), 0);
		if (got < 0) {
			r = err_set(err, (int)got, 0, -1, -1, "%s: cannot read: %s", name, strerror((int)-got));
			goto fail;
		}
		if ((size_t)got < sizeof(hb) || (uint64_t)st.st_size < OVL_HEADER_SIZE) {
			r = err_set(err, got >= 8 && memcmp(hb, ovl_magic, 8) == 0 ? -EBADMSG : -ENOTSUP, 0,
				    -1, -1, "%s: %s", name, got >= 8 && memcmp(hb, ovl_magic, 8) == 0
				    ? "overlay cut short inside its header" : "not an imago overlay (too small)");
			goto fail;
		}
		if ((r = ovl_header_decode(hb, &o->h, &why)) < 0) {
			r = err_set(err, r, 0, -1, -1, "%s: %s", name, why);
			goto fail;
		}
		if (o->h.device_size != lower->size ||
		    memcmp(o->h.identity, lower->identity, BACKEND_ID_LEN) != 0) {
			r = err_set(err, -EXDEV, 0, -1, -1,
				    "%s: this overlay was made for another image (%s %s)", name,
				    o->h.device_size != lower->size ? "device size" : "content digest",
				    "differs");
			goto fail;
		}
	}
	o->bs = o->h.block_size;
	o->rec_size = OVL_REC_HDR_SIZE + o->bs;
	o->nblocks = (lower->size + o->bs - 1) / o->bs;
	o->seq = 1;
	if ((r = scan(o, (uint64_t)st.st_size, name, err)) < 0)
		goto fail;
	/* A record cut short at the end (a write that never finished): drop it, so the
	 * next record appended lands on the record grid. */
	if ((uint64_t)st.st_size > o->file_end && ftruncate(fd, (off_t)o->file_end) < 0) {
		r = err_set(err, -errno, (int64_t)o->file_end, -1, -1, "%s: cannot cut the torn last record: %s",
			    name, strerror(errno));
		goto fail;
	}
	struct backend *b = calloc(1, sizeof(*b));
	if (!b || !(b->name = strdup(name))) {
		free(b);
		r = err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
		goto fail;
	}
	b->ops = &ovl_ops;
	b->kind = "overlay";
	b->size = lower->size;
	b->sector_size = lower->sector_size;
	memcpy(b->identity, lower->identity, BACKEND_ID_LEN);
	b->priv = o;
	*out = b;
	return 0;
fail:
	flock(fd, LOCK_UN);
	ovl_free(o);
	return r;
}

int overlay_open(struct backend *lower, const char *path, unsigned flags, uint32_t block_size,
		 struct backend **out, struct imago_err *err)
{
	int fd = open(path, O_RDWR | O_CLOEXEC | ((flags & OVL_CREATE) ? O_CREAT : 0), 0600);
	if (fd < 0)
		return err_set(err, -errno, -1, -1, -1, "%s: cannot open the overlay: %s", path,
			       strerror(errno));
	int r = overlay_open_fd(lower, fd, path, flags, block_size, out, err);
	if (r < 0)
		close(fd);
	return r;
}

/* ---------------------------------------------------------------- I/O */

static int set_err(struct overlay *o, int code, uint64_t file_off, uint64_t dev_off, const char *fmt,
		   const char *what, const char *name)
{
	pthread_mutex_lock(&o->err_mu);
	err_set(&o->err, code, (int64_t)file_off, (int64_t)dev_off, -1, fmt, name, what,
		(unsigned long long)dev_off, (unsigned long long)file_off);
	pthread_mutex_unlock(&o->err_mu);
	return code;
}

#define REC_FMT "%s: %s (block at device byte %llu, overlay byte %llu)"

/* Read the record at off holding block into rec (rec_size bytes) and check it. */
static int read_record(struct backend *b, struct overlay *o, uint64_t block, uint64_t off, uint8_t *rec)
{
	ssize_t got = xpread_full(o->fd, rec, o->rec_size, off);
	if (got < 0)
		return set_err(o, (int)got, off, block * o->bs, REC_FMT, strerror((int)-got), b->name);
	struct ovl_record r;
	if ((size_t)got < o->rec_size || ovl_record_decode(rec, &r) < 0 || r.block != block ||
	    r.overlay_id != o->h.overlay_id ||
	    fmt_xxh3(rec + OVL_REC_HDR_SIZE, o->bs, block) != r.data_checksum)
		return set_err(o, -EBADMSG, off, block * o->bs, REC_FMT,
			       "overlay record is damaged", b->name);
	return 0;
}

/* Read with the lock held (shared or exclusive). */
static ssize_t read_locked(struct backend *b, struct overlay *o, uint8_t *dst, size_t len, uint64_t off,
			   uint8_t **rec)
{
	size_t done = 0;
	while (done < len) {
		uint64_t pos = off + done, block = pos / o->bs, in = pos % o->bs;
		size_t n = o->bs - in < len - done ? (size_t)(o->bs - in) : len - done;
		struct ovl_entry *e = tab_find(o, block);
		if (e && e->cur) {
			if (!*rec && !(*rec = malloc(o->rec_size)))
				return -ENOMEM;
			int r = read_record(b, o, block, e->cur, *rec);
			if (r < 0)
				return r;
			memcpy(dst + done, *rec + OVL_REC_HDR_SIZE + in, n);
			done += n;
			continue;
		}
		/* a run of blocks the overlay does not hold: one read of the image */
		while (done + n < len) {
			uint64_t nb = (off + done + n) / o->bs;
			struct ovl_entry *f = tab_find(o, nb);
			if (f && f->cur)
				break;
			n += len - done - n < o->bs ? len - done - n : o->bs;
		}
		ssize_t got = o->lower->ops->pread(o->lower, dst + done, n, pos);
		if (got < 0)
			return got;
		if ((size_t)got < n) {
			memset(dst + done + got, 0, n - (size_t)got);
		}
		done += n;
	}
	return (ssize_t)done;
}

static ssize_t ovl_pread(struct backend *b, void *buf, size_t len, uint64_t off)
{
	struct overlay *o = b->priv;
	if (off >= b->size || !len)
		return 0;
	if (len > b->size - off)
		len = (size_t)(b->size - off);
	uint8_t *rec = NULL;
	pthread_rwlock_rdlock(&o->lock);
	ssize_t r = read_locked(b, o, buf, len, off, &rec);
	pthread_rwlock_unlock(&o->lock);
	free(rec);
	return r;
}

/* With the lock held exclusively: write one whole block (data: rec + header room). */
static int write_block(struct backend *b, struct overlay *o, uint64_t block, uint8_t *rec)
{
	struct ovl_entry *e = tab_get(o, block);
	if (!e)
		return -ENOMEM;
	uint64_t slot;
	bool appended = false;
	if (e->spare) {
		slot = e->spare;
	} else if (o->nfree) {
		slot = o->free_slots[--o->nfree];
	} else {
		slot = o->file_end;
		appended = true;
	}
	struct ovl_record r = { .overlay_id = o->h.overlay_id, .block = block, .seq = o->seq++,
				.data_checksum = fmt_xxh3(rec + OVL_REC_HDR_SIZE, o->bs, block) };
	ovl_record_encode(&r, rec);
	int rc = xpwrite_full(o->fd, rec, o->rec_size, slot);
	if (appended)
		o->file_end += o->rec_size;
	if (rc < 0) {
		/* The slot may now hold a torn record: it stays the spare (never read), or
		 * goes to the free list. */
		if (slot != e->spare)
			free_push(o, slot);
		return set_err(o, rc, slot, block * o->bs, REC_FMT, strerror(-rc), b->name);
	}
	e->spare = e->cur, e->spare_seq = e->cur_seq;
	e->cur = slot, e->cur_seq = r.seq;
	return 0;
}

static ssize_t ovl_pwrite(struct backend *b, const void *buf, size_t len, uint64_t off)
{
	struct overlay *o = b->priv;
	if (off >= b->size || len > b->size - off)
		return len ? -ENOSPC : 0;
	uint8_t *rec = malloc(o->rec_size), *tmp = NULL;
	if (!rec)
		return -ENOMEM;
	const uint8_t *src = buf;
	size_t done = 0;
	ssize_t r = 0;
	pthread_rwlock_wrlock(&o->lock);
	while (done < len) {
		uint64_t pos = off + done, block = pos / o->bs, in = pos % o->bs;
		size_t n = o->bs - in < len - done ? (size_t)(o->bs - in) : len - done;
		uint8_t *data = rec + OVL_REC_HDR_SIZE;
		if (n < o->bs) {
			/* partial block: what it holds now (overlay or image), patched; the last
			 * block of an odd-sized disk is padded with zeros */
			memset(data, 0, o->bs);
			uint64_t bstart = block * o->bs;
			size_t blen = b->size - bstart < o->bs ? (size_t)(b->size - bstart) : o->bs;
			if ((r = read_locked(b, o, data, blen, bstart, &tmp)) < 0)
				break;
		}
		memcpy(data + in, src + done, n);
		if ((r = write_block(b, o, block, rec)) < 0)
			break;
		done += n;
	}
	pthread_rwlock_unlock(&o->lock);
	free(rec);
	free(tmp);
	return r < 0 ? r : (ssize_t)done;
}

static int ovl_flush(struct backend *b)
{
	struct overlay *o = b->priv;
	if (fdatasync(o->fd) < 0)
		return set_err(o, -errno, 0, 0, REC_FMT, "cannot flush the overlay", b->name);
	if (o->lower->ops->flush)
		return o->lower->ops->flush(o->lower);
	return 0;
}

/* Blocks the overlay holds are data; elsewhere the image's status, cut at the first
 * block the overlay holds (looking at most 4096 blocks ahead; shorter runs are fine). */
static int ovl_status(struct backend *b, uint64_t off, uint64_t *len, enum imago_state *state)
{
	struct overlay *o = b->priv;
	if (off >= b->size)
		return -EINVAL;
	pthread_rwlock_rdlock(&o->lock);
	uint64_t block = off / o->bs;
	struct ovl_entry *e = tab_find(o, block);
	int r = 0;
	if (e && e->cur) {
		uint64_t end = (block + 1) * o->bs;
		for (unsigned k = 0; k < 4096 && end < b->size; k++, end += o->bs) {
			struct ovl_entry *f = tab_find(o, end / o->bs);
			if (!f || !f->cur)
				break;
		}
		*state = IMAGO_USED;
		*len = (end < b->size ? end : b->size) - off;
	} else {
		uint64_t l = b->size - off;
		enum imago_state s = IMAGO_USED;
		if (o->lower->ops->status && (r = o->lower->ops->status(o->lower, off, &l, &s)) < 0)
			goto out;
		uint64_t end = (block + 1) * o->bs;
		for (unsigned k = 0; k < 4096 && end < off + l; k++, end += o->bs) {
			struct ovl_entry *f = tab_find(o, end / o->bs);
			if (f && f->cur)
				break;
		}
		if (end < off + l)
			l = end - off;
		*state = s;
		*len = l;
	}
out:
	pthread_rwlock_unlock(&o->lock);
	return r;
}

static const struct imago_err *ovl_error(struct backend *b)
{
	struct overlay *o = b->priv;
	if (o->err.code)
		return &o->err;
	return o->lower->ops->error ? o->lower->ops->error(o->lower) : NULL;
}

static void ovl_close(struct backend *b)
{
	struct overlay *o = b->priv;
	fdatasync(o->fd);
	close(o->fd); /* drops the lock */
	backend_close(o->lower);
	ovl_free(o);
}

void overlay_counts(struct backend *b, uint64_t *blocks, uint64_t *damaged)
{
	struct overlay *o = b->priv;
	pthread_rwlock_rdlock(&o->lock);
	uint64_t n = 0;
	for (size_t i = 0; i < o->cap; i++)
		n += o->tab[i].key && o->tab[i].cur;
	*blocks = n;
	*damaged = o->damaged;
	pthread_rwlock_unlock(&o->lock);
}

static const struct backend_ops ovl_ops = {
	.pread = ovl_pread,
	.pwrite = ovl_pwrite,
	.flush = ovl_flush,
	.status = ovl_status,
	.error = ovl_error,
	.close = ovl_close,
};
