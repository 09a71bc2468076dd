// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * NTFS MFT records, attributes, runlists and attribute values: the read-only core of the
 * NTFS allocation reader (ntfs.c).
 *
 * Written by hand rather than with libntfs-3g (DESIGN.md allows either): the reader must
 * run on a struct region (a partition inside an image, a fuzzer's buffer), never print,
 * never exit, bound its memory, and survive hostile metadata. libntfs-3g opens devices
 * through its own I/O layer, logs to stderr and trusts much of what it reads (its own
 * comments say so). We need a small read-only subset, so every length, offset and count
 * below is checked before it is used, and every loop is bounded by the size of the
 * structure it walks.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/ntfs.h"
#include "util/err.h"

/* ------------------------------------------------------------ memory */

static int alloc_fail(struct ntfs_vol *v, size_t size, const char *what, int code)
{
	return err_set(v->err, code, -1, -1, -1,
		       "ntfs: %s needs %zu bytes of memory (%s)", what, size,
		       code == -E2BIG ? "over the reader's limit" : "out of memory");
}

void *ntfs_alloc(struct ntfs_vol *v, size_t size, const char *what)
{
	if (size > FS_MEM_LIMIT || v->mem > FS_MEM_LIMIT - size) {
		alloc_fail(v, size, what, -E2BIG);
		return NULL;
	}
	void *p = malloc(size ? size : 1);
	if (!p) {
		alloc_fail(v, size, what, -ENOMEM);
		return NULL;
	}
	v->mem += size;
	return p;
}

void ntfs_free(struct ntfs_vol *v, void *p, size_t size)
{
	if (!p)
		return;
	free(p);
	v->mem -= size;
}

/* The error code a failed ntfs_alloc left in v->err. */
static int alloc_code(struct ntfs_vol *v)
{
	return v->err && v->err->code ? v->err->code : -ENOMEM;
}

void ntfs_rl_free(struct ntfs_vol *v, struct ntfs_rl *rl)
{
	ntfs_free(v, rl->v, rl->cap * sizeof(*rl->v));
	*rl = (struct ntfs_rl){ 0 };
}

void ntfs_stream_free(struct ntfs_vol *v, struct ntfs_stream *s)
{
	ntfs_free(v, s->res, s->res_len);
	ntfs_rl_free(v, &s->rl);
	*s = (struct ntfs_stream){ 0 };
}

/* Append a run, merging it with the last one when they continue each other. */
static int rl_append(struct ntfs_vol *v, struct ntfs_rl *rl, uint64_t vcn, uint64_t lcn,
		     uint64_t len)
{
	if (rl->n) {
		struct ntfs_run *last = &rl->v[rl->n - 1];
		if (last->vcn + last->len == vcn &&
		    ((lcn == NTFS_LCN_HOLE && last->lcn == NTFS_LCN_HOLE) ||
		     (lcn != NTFS_LCN_HOLE && last->lcn != NTFS_LCN_HOLE &&
		      last->lcn + last->len == lcn))) {
			last->len += len;
			return 0;
		}
	}
	if (rl->n == rl->cap) {
		size_t cap = rl->cap ? rl->cap * 2 : 16;
		struct ntfs_run *nv = ntfs_alloc(v, cap * sizeof(*nv), "a runlist");
		if (!nv)
			return alloc_code(v);
		if (rl->n)
			memcpy(nv, rl->v, rl->n * sizeof(*nv));
		ntfs_free(v, rl->v, rl->cap * sizeof(*rl->v));
		rl->v = nv;
		rl->cap = cap;
	}
	rl->v[rl->n++] = (struct ntfs_run){ .vcn = vcn, .lcn = lcn, .len = len };
	return 0;
}

/* End of the runlist (first VCN not covered), 0 when empty. */
static uint64_t rl_end(const struct ntfs_rl *rl)
{
	return rl->n ? rl->v[rl->n - 1].vcn + rl->v[rl->n - 1].len : 0;
}

/* The largest VCN (exclusive) an attribute may reach: its byte offsets stay below 2^62. */
static uint64_t vcn_limit(const struct ntfs_vol *v)
{
	return 1ull << (62 - v->b.cluster_bits);
}

/* Read [off, off + len) of the data a runlist maps. Holes read as zeros when allowed.
 * The runlist is checked on decoding (every run inside the volume). */
static int rl_read(struct ntfs_vol *v, const struct ntfs_rl *rl, uint64_t off, uint8_t *buf,
		   size_t len, int holes_ok, const char *what)
{
	const unsigned cb = v->b.cluster_bits;
	while (len) {
		uint64_t vcn = off >> cb;
		/* Binary search: runs are sorted by VCN and contiguous. */
		size_t lo = 0, hi = rl->n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (rl->v[mid].vcn + rl->v[mid].len <= vcn)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == rl->n || rl->v[lo].vcn > vcn)
			return err_set(v->err, -EBADMSG, -1, -1, -1,
				       "ntfs: %s: byte %" PRIu64 " (cluster %" PRIu64
				       ") is not mapped by its runlist", what, off, vcn);
		const struct ntfs_run *run = &rl->v[lo];
		uint64_t in_run = off - (run->vcn << cb);
		uint64_t avail = (run->len << cb) - in_run;
		size_t n = len < avail ? len : (size_t)avail;
		if (run->lcn == NTFS_LCN_HOLE) {
			if (!holes_ok)
				return err_set(v->err, -EBADMSG, -1, -1, -1,
					       "ntfs: %s: cluster %" PRIu64 " is sparse, which it "
					       "must not be", what, vcn);
			memset(buf, 0, n);
		} else {
			uint64_t at = (run->lcn << cb) + in_run;
			int rc = region_read_exact(v->r, buf, n, at);
			if (rc < 0)
				return err_set(v->err, rc, -1, (int64_t)(v->r->base + at), -1,
					       "ntfs: %s: %s reading %zu bytes at byte %" PRIu64,
					       what, rc == -EIO ? "I/O error" : "region ends",
					       n, at);
		}
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* ------------------------------------------------------------ records */

/* Undo the update sequence array: the last two bytes of every 512-byte stride hold the
 * update sequence number, and the array holds the bytes that belong there. 0, or -1 when
 * the header is inconsistent or a stride was torn (its USN does not match). */
static int mst_fixup(uint8_t *buf, uint32_t size, uint32_t *bad_stride)
{
	uint16_t usa_ofs = ntfs_le16(buf + 4), usa_count = ntfs_le16(buf + 6);
	*bad_stride = 0;
	if ((size & 511) || (usa_ofs & 1) || usa_count != size / 512 + 1 ||
	    (uint32_t)usa_ofs + 2u * usa_count > 510)
		return -1;
	const uint8_t *usa = buf + usa_ofs;
	for (uint32_t i = 1; i < usa_count; i++) {
		uint8_t *end = buf + i * 512 - 2;
		if (end[0] != usa[0] || end[1] != usa[1]) {
			*bad_stride = i;
			return -1;
		}
	}
	for (uint32_t i = 1; i < usa_count; i++) {
		uint8_t *end = buf + i * 512 - 2;
		end[0] = usa[2 * i];
		end[1] = usa[2 * i + 1];
	}
	return 0;
}

int ntfs_mst_fixup_quiet(uint8_t *buf, uint32_t size)
{
	uint32_t bad;
	return mst_fixup(buf, size, &bad);
}

int ntfs_fixup(struct ntfs_vol *v, uint8_t *buf, uint32_t size, const char *what,
	       uint64_t where)
{
	uint32_t bad;
	if (mst_fixup(buf, size, &bad) == 0)
		return 0;
	if (bad)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: %s (%s %" PRIu64 "): 512-byte stride %u does not end "
			       "with the update sequence number (torn write)", what,
			       "byte", where + bad * 512u - 2, bad);
	return err_set(v->err, -EBADMSG, -1, -1, -1,
		       "ntfs: %s (%s %" PRIu64 "): bad update sequence array (offset %u, "
		       "count %u for %u bytes)", what, "byte", where, ntfs_le16(buf + 4),
		       ntfs_le16(buf + 6), size);
}

int ntfs_read_record(struct ntfs_vol *v, uint64_t mft_no, uint8_t *buf)
{
	const uint32_t rs = v->b.mft_rec_size;
	char what[48];
	snprintf(what, sizeof(what), "MFT record %" PRIu64, mft_no);
	if (mft_no >= (1ull << 48) || mft_no > ((1ull << 62) / rs) - 1)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: MFT record number %" PRIu64 " is out of range", mft_no);
	uint64_t off = mft_no * rs;
	if (v->mft_size && off + rs > v->mft_size)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: %s lies past the end of $MFT (%" PRIu64 " bytes)", what,
			       v->mft_size);
	int rc = rl_read(v, v->mft_map, off, buf, rs, 0, what);
	if (rc < 0)
		return rc;
	if (!memcmp(buf, "BAAD", 4))
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: %s is marked BAAD (an incomplete multi-sector write)",
			       what);
	if (memcmp(buf, "FILE", 4))
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: %s has no FILE signature", what);
	rc = ntfs_fixup(v, buf, rs, what, off);
	if (rc < 0)
		return rc;
	uint16_t usa_ofs = ntfs_le16(buf + 4), usa_count = ntfs_le16(buf + 6);
	uint16_t attrs = ntfs_le16(buf + 20), flags = ntfs_le16(buf + 22);
	uint32_t used = ntfs_le32(buf + 24), alloc = ntfs_le32(buf + 28);
	if (usa_ofs < 42 || attrs & 7 || attrs < usa_ofs + 2u * usa_count || alloc != rs ||
	    used > rs || used < (uint32_t)attrs + 4)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: %s header is inconsistent (update sequence at %u, "
			       "attributes at %u, %u of %u bytes used, record size %u)",
			       what, usa_ofs, attrs, used, alloc, rs);
	/* NTFS 3.1 records (update sequence at 48) carry their own number. */
	if (usa_ofs >= 48 && ntfs_le32(buf + 44) != (uint32_t)mft_no)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: %s says it is record %u", what, ntfs_le32(buf + 44));
	if (!(flags & NTFS_MFT_IN_USE))
		return err_set(v->err, -EBADMSG, -1, -1, -1, "ntfs: %s is not in use", what);
	return 0;
}

/* ------------------------------------------------------------ attributes */

struct ntfs_attr {
	uint32_t type, len, off;
	int nonres;
	uint8_t name_len;
	const uint8_t *name;      /* UTF-16LE, name_len units */
	uint16_t flags, instance;
	const uint8_t *p;         /* the attribute record */
	const uint8_t *value;     /* resident */
	uint32_t value_len;
	uint64_t lowest, end;     /* non-resident: VCNs [lowest, end) of this extent */
	uint64_t alloc, data, init;
};

/* The next attribute of a checked record at *pos. 1 and *a filled, 0 at the end marker,
 * or -EBADMSG. */
static int attr_next(struct ntfs_vol *v, const uint8_t *rec, uint64_t mft_no, uint32_t *pos,
		     struct ntfs_attr *a)
{
	const uint32_t used = ntfs_le32(rec + 24);
	uint32_t off = *pos;
	if (off > used || used - off < 4)
		goto bad_end;
	uint32_t type = ntfs_le32(rec + off);
	if (type == NTFS_AT_END)
		return 0;
	if (used - off < 16)
		goto bad_end;
	const uint8_t *p = rec + off;
	uint32_t len = ntfs_le32(p + 4);
	int nonres = p[8];
	uint32_t min = nonres ? 64 : 24;
	if (nonres > 1 || len < min || len & 7 || len > used - off)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: MFT record %" PRIu64 ": attribute 0x%x at offset %u has "
			       "bad length %u (%u bytes left in the record)", mft_no, type, off,
			       len, used - off);
	*a = (struct ntfs_attr){ .type = type, .len = len, .off = off, .nonres = nonres,
				 .p = p };
	a->name_len = p[9];
	uint16_t name_off = ntfs_le16(p + 10);
	a->flags = ntfs_le16(p + 12);
	a->instance = ntfs_le16(p + 14);
	if (a->name_len && ((uint32_t)name_off + 2u * a->name_len > len || name_off < min))
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: MFT record %" PRIu64 ": attribute 0x%x at offset %u: "
			       "name (%u units at %u) runs past the attribute", mft_no, type,
			       off, a->name_len, name_off);
	a->name = p + name_off;
	if (!nonres) {
		a->value_len = ntfs_le32(p + 16);
		uint16_t vo = ntfs_le16(p + 20);
		if (vo > len || a->value_len > len - vo)
			return err_set(v->err, -EBADMSG, -1, -1, -1,
				       "ntfs: MFT record %" PRIu64 ": resident attribute 0x%x "
				       "at offset %u: value (%u bytes at %u) runs past the "
				       "attribute (%u bytes)", mft_no, type, off, a->value_len,
				       vo, len);
		a->value = p + vo;
	} else {
		int64_t lowest = (int64_t)ntfs_le64(p + 16), highest = (int64_t)ntfs_le64(p + 24);
		int64_t alloc = (int64_t)ntfs_le64(p + 40), data = (int64_t)ntfs_le64(p + 48);
		int64_t init = (int64_t)ntfs_le64(p + 56);
		int64_t lim = (int64_t)vcn_limit(v);
		if (lowest < 0 || lowest >= lim || highest < -1 || highest >= lim ||
		    highest + 1 < lowest)
			return err_set(v->err, -EBADMSG, -1, -1, -1,
				       "ntfs: MFT record %" PRIu64 ": attribute 0x%x at offset "
				       "%u: bad VCN range %" PRId64 "..%" PRId64, mft_no, type,
				       off, lowest, highest);
		a->lowest = (uint64_t)lowest;
		a->end = (uint64_t)(highest + 1);
		if (lowest == 0 && (alloc < 0 || data < 0 || init < 0 || data > alloc ||
				    init > data || alloc & ((1ll << v->b.cluster_bits) - 1)))
			return err_set(v->err, -EBADMSG, -1, -1, -1,
				       "ntfs: MFT record %" PRIu64 ": attribute 0x%x at offset "
				       "%u: inconsistent sizes (allocated %" PRId64 ", data %"
				       PRId64 ", initialized %" PRId64 ")", mft_no, type, off,
				       alloc, data, init);
		a->alloc = (uint64_t)alloc;
		a->data = (uint64_t)data;
		a->init = (uint64_t)init;
		uint16_t mp = ntfs_le16(p + 32);
		if (mp < 64 || mp >= len)
			return err_set(v->err, -EBADMSG, -1, -1, -1,
				       "ntfs: MFT record %" PRIu64 ": attribute 0x%x at offset "
				       "%u: runlist offset %u outside the attribute (%u bytes)",
				       mft_no, type, off, mp, len);
	}
	*pos = off + len;
	return 1;
bad_end:
	return err_set(v->err, -EBADMSG, -1, -1, -1,
		       "ntfs: MFT record %" PRIu64 ": attribute list runs past the used "
		       "part of the record (offset %u of %u) without an end marker", mft_no,
		       off, used);
}

/* Does the attribute's name equal the ASCII name (NULL: unnamed)? */
static int name_eq(const uint8_t *u16, unsigned n, const char *ascii)
{
	size_t len = ascii ? strlen(ascii) : 0;
	if (n != len)
		return 0;
	for (unsigned i = 0; i < n; i++)
		if (ntfs_le16(u16 + 2 * i) != (uint8_t)ascii[i])
			return 0;
	return 1;
}

/* Decode one extent's mapping pairs and append its runs; the extent must cover exactly
 * VCNs [a->lowest, a->end) and continue the runlist. */
static int rl_decode(struct ntfs_vol *v, const struct ntfs_attr *a, uint64_t mft_no,
		     struct ntfs_rl *rl)
{
	const uint8_t *p = a->p + ntfs_le16(a->p + 32), *end = a->p + a->len;
	uint64_t vcn = a->lowest, lim = vcn_limit(v);
	int64_t lcn = 0;
	if (vcn != rl_end(rl))
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: MFT record %" PRIu64 ": attribute 0x%x extent starts at "
			       "VCN %" PRIu64 ", expected %" PRIu64, mft_no, a->type, vcn,
			       rl_end(rl));
	while (p < end && *p) {
		unsigned lb = *p & 0xF, ob = *p >> 4;
		if (lb == 0 || lb > 8 || ob > 8 || (size_t)(end - p) < 1u + lb + ob)
			return err_set(v->err, -EBADMSG, -1, -1, -1,
				       "ntfs: MFT record %" PRIu64 ": attribute 0x%x: bad "
				       "runlist entry 0x%02x at VCN %" PRIu64, mft_no, a->type,
				       *p, vcn);
		/* Both fields are signed little-endian numbers (as ntfs-3g reads them). */
		int64_t len = (int8_t)p[lb];
		for (unsigned i = lb - 1; i >= 1; i--)
			len = (int64_t)((uint64_t)len << 8 | p[i]);
		if (len <= 0 || (uint64_t)len > lim - vcn)
			return err_set(v->err, -EBADMSG, -1, -1, -1,
				       "ntfs: MFT record %" PRIu64 ": attribute 0x%x: run at "
				       "VCN %" PRIu64 " has bad length %" PRId64, mft_no, a->type,
				       vcn, len);
		if (ob) {
			int64_t delta = (int8_t)p[lb + ob];
			for (unsigned i = lb + ob - 1; i > lb; i--)
				delta = (int64_t)((uint64_t)delta << 8 | p[i]);
			if (__builtin_add_overflow(lcn, delta, &lcn) || lcn < 0 ||
			    (uint64_t)lcn >= v->b.nr_clusters ||
			    (uint64_t)len > v->b.nr_clusters - (uint64_t)lcn)
				return err_set(v->err, -EBADMSG, -1, -1, -1,
					       "ntfs: MFT record %" PRIu64 ": attribute 0x%x: run "
					       "at VCN %" PRIu64 " (clusters %" PRId64 "+%" PRId64
					       ") lies outside the volume (%" PRIu64 " clusters)",
					       mft_no, a->type, vcn, lcn, len, v->b.nr_clusters);
			int rc = rl_append(v, rl, vcn, (uint64_t)lcn, (uint64_t)len);
			if (rc < 0)
				return rc;
		} else {
			int rc = rl_append(v, rl, vcn, NTFS_LCN_HOLE, (uint64_t)len);
			if (rc < 0)
				return rc;
		}
		vcn += (uint64_t)len;
		p += 1 + lb + ob;
	}
	if (p >= end)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: MFT record %" PRIu64 ": attribute 0x%x: runlist has no "
			       "terminator", mft_no, a->type);
	/* An empty attribute may say highest VCN 0 or -1. */
	if (vcn != a->end && !(vcn == 0 && a->end <= 1))
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: MFT record %" PRIu64 ": attribute 0x%x: runlist covers "
			       "VCNs %" PRIu64 "..%" PRIu64 " but the attribute says up to %"
			       PRIu64, mft_no, a->type, a->lowest, vcn, a->end);
	return 0;
}

/* Take the first extent (or the resident value) of a stream. */
static int stream_first(struct ntfs_vol *v, const struct ntfs_attr *a, uint64_t mft_no,
			struct ntfs_stream *s)
{
	s->nonres = a->nonres;
	s->flags = a->flags;
	if (!a->nonres) {
		s->res = ntfs_alloc(v, a->value_len, "a resident attribute value");
		if (!s->res)
			return alloc_code(v);
		s->res_len = a->value_len;
		memcpy(s->res, a->value, a->value_len);
		s->alloc_size = s->data_size = s->init_size = a->value_len;
		return 0;
	}
	if (a->lowest != 0)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: MFT record %" PRIu64 ": attribute 0x%x: first extent "
			       "starts at VCN %" PRIu64, mft_no, a->type, a->lowest);
	s->alloc_size = a->alloc;
	s->data_size = a->data;
	s->init_size = a->init;
	return rl_decode(v, a, mft_no, &s->rl);
}

/* The whole stream is known: check that its runlist maps all of its data. */
static int stream_check(struct ntfs_vol *v, uint64_t mft_no, uint32_t type,
			struct ntfs_stream *s)
{
	if (!s->nonres)
		return 0;
	uint64_t mapped = rl_end(&s->rl) << v->b.cluster_bits;
	if (mapped > s->alloc_size || mapped < s->data_size)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: MFT record %" PRIu64 ": attribute 0x%x: runlist maps %"
			       PRIu64 " bytes, but %" PRIu64 " are allocated and %" PRIu64
			       " hold data", mft_no, type, mapped, s->alloc_size, s->data_size);
	return 0;
}

/* Read the value of an $ATTRIBUTE_LIST attribute (resident or not) into a new buffer. */
static int read_attr_list(struct ntfs_vol *v, const struct ntfs_attr *a, uint64_t mft_no,
			  uint8_t **out, uint32_t *out_len)
{
	struct ntfs_stream ls = { 0 };
	int rc = stream_first(v, a, mft_no, &ls);
	if (rc == 0)
		rc = stream_check(v, mft_no, a->type, &ls);
	if (rc == 0 && (ls.data_size > NTFS_ATTR_LIST_MAX || ls.data_size < 26))
		rc = err_set(v->err, -EBADMSG, -1, -1, -1,
			     "ntfs: MFT record %" PRIu64 ": $ATTRIBUTE_LIST has bad length %"
			     PRIu64, mft_no, ls.data_size);
	uint8_t *buf = NULL;
	if (rc == 0) {
		buf = ntfs_alloc(v, (size_t)ls.data_size, "$ATTRIBUTE_LIST");
		if (!buf)
			rc = alloc_code(v);
	}
	if (rc == 0)
		rc = ntfs_stream_read(v, &ls, 0, buf, (size_t)ls.data_size, "$ATTRIBUTE_LIST");
	if (rc == 0) {
		*out = buf;
		*out_len = (uint32_t)ls.data_size;
	} else {
		ntfs_free(v, buf, (size_t)ls.data_size);
	}
	ntfs_stream_free(v, &ls);
	return rc;
}

/* Follow an attribute list: gather every extent of (type, name) in VCN order. */
static int stream_from_list(struct ntfs_vol *v, uint64_t mft_no, const uint8_t *base,
			    const uint8_t *list, uint32_t list_len, uint32_t type,
			    const char *name, struct ntfs_stream *s)
{
	const uint32_t rs = v->b.mft_rec_size;
	uint8_t *ext = NULL;
	int found = 0, rc = 0;
	for (uint32_t off = 0; off < list_len;) {
		const uint8_t *e = list + off;
		if (list_len - off < 26) {
			rc = err_set(v->err, -EBADMSG, -1, -1, -1,
				     "ntfs: MFT record %" PRIu64 ": $ATTRIBUTE_LIST entry at %u "
				     "is truncated", mft_no, off);
			break;
		}
		uint32_t etype = ntfs_le32(e);
		uint16_t elen = ntfs_le16(e + 4);
		uint8_t nlen = e[6], noff = e[7];
		if (elen < 26 || elen > list_len - off || (uint32_t)noff + 2u * nlen > elen) {
			rc = err_set(v->err, -EBADMSG, -1, -1, -1,
				     "ntfs: MFT record %" PRIu64 ": $ATTRIBUTE_LIST entry at %u "
				     "has bad length %u", mft_no, off, elen);
			break;
		}
		off += elen;
		if (etype != type || !name_eq(e + noff, nlen, name))
			continue;
		uint64_t lowest = ntfs_le64(e + 8);
		uint64_t ref = ntfs_le64(e + 16) & 0xFFFFFFFFFFFFull;
		uint16_t instance = ntfs_le16(e + 24);
		const uint8_t *rec = base;
		if (ref != mft_no) {
			if (!ext) {
				ext = ntfs_alloc(v, rs, "an MFT record");
				if (!ext) {
					rc = alloc_code(v);
					break;
				}
			}
			rc = ntfs_read_record(v, ref, ext);
			if (rc < 0)
				break;
			if ((ntfs_le64(ext + 32) & 0xFFFFFFFFFFFFull) != mft_no) {
				rc = err_set(v->err, -EBADMSG, -1, -1, -1,
					     "ntfs: MFT record %" PRIu64 " is listed as an "
					     "extension of record %" PRIu64 " but says its base "
					     "is %" PRIu64, ref, mft_no,
					     (uint64_t)(ntfs_le64(ext + 32) & 0xFFFFFFFFFFFFull));
				break;
			}
			rec = ext;
		}
		/* Find the extent in that record. */
		struct ntfs_attr a;
		uint32_t pos = ntfs_le16(rec + 20);
		int got = 0;
		while ((rc = attr_next(v, rec, ref, &pos, &a)) > 0) {
			if (a.type == type && a.instance == instance &&
			    name_eq(a.name, a.name_len, name)) {
				got = 1;
				break;
			}
		}
		if (rc < 0)
			break;
		rc = 0;
		if (!got || (a.nonres && a.lowest != lowest) || (!a.nonres && lowest)) {
			rc = err_set(v->err, -EBADMSG, -1, -1, -1,
				     "ntfs: MFT record %" PRIu64 ": $ATTRIBUTE_LIST names "
				     "attribute 0x%x (instance %u, VCN %" PRIu64 ") in record %"
				     PRIu64 ", which does not hold it", mft_no, type, instance,
				     lowest, ref);
			break;
		}
		if (!found) {
			rc = stream_first(v, &a, ref, s);
		} else if (!s->nonres || !a.nonres) {
			rc = err_set(v->err, -EBADMSG, -1, -1, -1,
				     "ntfs: MFT record %" PRIu64 ": attribute 0x%x has a "
				     "resident part and more than one extent", mft_no, type);
		} else {
			rc = rl_decode(v, &a, ref, &s->rl);
		}
		if (rc < 0)
			break;
		found = 1;
		if (v->loading_mft && s->rl.n)
			v->mft_map = &s->rl;
	}
	ntfs_free(v, ext, rs);
	if (rc == 0 && !found)
		rc = -ENOENT;
	return rc;
}

int ntfs_stream_open(struct ntfs_vol *v, uint64_t mft_no, uint32_t type, const char *name,
		     struct ntfs_stream *s)
{
	const uint32_t rs = v->b.mft_rec_size;
	*s = (struct ntfs_stream){ 0 };
	uint8_t *rec = ntfs_alloc(v, rs, "an MFT record");
	if (!rec)
		return alloc_code(v);
	uint8_t *list = NULL;
	uint32_t list_len = 0;
	int rc = ntfs_read_record(v, mft_no, rec);
	if (rc < 0)
		goto out;
	if (ntfs_le64(rec + 32) & 0xFFFFFFFFFFFFull) {
		rc = err_set(v->err, -EBADMSG, -1, -1, -1,
			     "ntfs: MFT record %" PRIu64 " is an extension record, expected "
			     "a base record", mft_no);
		goto out;
	}
	struct ntfs_attr a, match;
	int nmatch = 0;
	uint32_t pos = ntfs_le16(rec + 20);
	while ((rc = attr_next(v, rec, mft_no, &pos, &a)) > 0) {
		if (a.type == NTFS_AT_ATTRIBUTE_LIST) {
			if (list) {
				rc = err_set(v->err, -EBADMSG, -1, -1, -1,
					     "ntfs: MFT record %" PRIu64 " has two "
					     "$ATTRIBUTE_LISTs", mft_no);
				goto out;
			}
			rc = read_attr_list(v, &a, mft_no, &list, &list_len);
			if (rc < 0)
				goto out;
		} else if (a.type == type && name_eq(a.name, a.name_len, name)) {
			match = a;
			nmatch++;
		}
	}
	if (rc < 0)
		goto out;
	if (list) {
		rc = stream_from_list(v, mft_no, rec, list, list_len, type, name, s);
	} else if (nmatch == 0) {
		rc = -ENOENT;
	} else if (nmatch > 1) {
		rc = err_set(v->err, -EBADMSG, -1, -1, -1,
			     "ntfs: MFT record %" PRIu64 " has %d attributes 0x%x%s%s and no "
			     "$ATTRIBUTE_LIST", mft_no, nmatch, type, name ? " " : "",
			     name ? name : "");
	} else {
		rc = stream_first(v, &match, mft_no, s);
	}
	if (rc == 0)
		rc = stream_check(v, mft_no, type, s);
out:
	ntfs_free(v, list, list_len);
	ntfs_free(v, rec, rs);
	if (rc < 0)
		ntfs_stream_free(v, s);
	return rc;
}

int ntfs_stream_read(struct ntfs_vol *v, const struct ntfs_stream *s, uint64_t off,
		     void *buf, size_t len, const char *what)
{
	if (off > s->data_size || len > s->data_size - off)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: %s: reading %zu bytes at %" PRIu64 " past its end (%"
			       PRIu64 " bytes)", what, len, off, s->data_size);
	if (!s->nonres) {
		memcpy(buf, s->res + off, len);
		return 0;
	}
	if (s->flags & (NTFS_ATTR_COMPRESSION_MASK | NTFS_ATTR_ENCRYPTED))
		return err_set(v->err, -EOPNOTSUPP, -1, -1, -1,
			       "ntfs: %s is compressed or encrypted", what);
	uint8_t *b = buf;
	/* Bytes past the initialized size read as zeros whatever the clusters hold. */
	if (off + len > s->init_size) {
		uint64_t from = off > s->init_size ? off : s->init_size;
		memset(b + (from - off), 0, (size_t)(off + len - from));
		len = (size_t)(from - off);
	}
	return len ? rl_read(v, &s->rl, off, b, len, 1, what) : 0;
}

int ntfs_stream_has_holes(const struct ntfs_stream *s, uint32_t cluster_size)
{
	if (!s->nonres)
		return 0;
	for (size_t i = 0; i < s->rl.n; i++)
		if (s->rl.v[i].lcn == NTFS_LCN_HOLE &&
		    s->rl.v[i].vcn * cluster_size < s->data_size)
			return 1;
	return 0;
}

/* ------------------------------------------------------------ $MFT */

int ntfs_load_mft(struct ntfs_vol *v)
{
	const uint32_t rs = v->b.mft_rec_size, cs = v->b.cluster_size;
	/* Record 0 is where the boot sector says; the rest is where its $DATA says. */
	uint64_t first = (rs + cs - 1) / cs;
	if (v->b.mft_lcn >= v->b.nr_clusters || first > v->b.nr_clusters - v->b.mft_lcn)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: boot sector: $MFT at cluster %" PRIu64 " lies outside "
			       "the volume (%" PRIu64 " clusters)", v->b.mft_lcn,
			       v->b.nr_clusters);
	struct ntfs_run seed_run = { .vcn = 0, .lcn = v->b.mft_lcn, .len = first };
	struct ntfs_rl seed = { .v = &seed_run, .n = 1, .cap = 1 };
	struct ntfs_stream s;
	v->mft_map = &seed;
	v->mft_size = 0;
	v->loading_mft = 1;
	int rc = ntfs_stream_open(v, NTFS_FILE_MFT, NTFS_AT_DATA, NULL, &s);
	v->loading_mft = 0;
	v->mft_map = &v->mft_rl;
	if (rc == -ENOENT)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: MFT record 0 ($MFT) has no $DATA attribute");
	if (rc < 0)
		return rc;
	if (!s.nonres || s.flags & (NTFS_ATTR_COMPRESSION_MASK | NTFS_ATTR_ENCRYPTED) ||
	    ntfs_stream_has_holes(&s, cs))
		rc = err_set(v->err, -EBADMSG, -1, -1, -1,
			     "ntfs: $MFT's $DATA is resident, compressed, encrypted or sparse");
	else if (s.rl.v[0].lcn != v->b.mft_lcn)
		rc = err_set(v->err, -EBADMSG, -1, -1, -1,
			     "ntfs: $MFT's runlist starts at cluster %" PRIu64 ", the boot "
			     "sector says %" PRIu64, s.rl.v[0].lcn, v->b.mft_lcn);
	else if (s.init_size < 16ull * rs)
		rc = err_set(v->err, -EBADMSG, -1, -1, -1,
			     "ntfs: $MFT holds %" PRIu64 " bytes, too few for the 16 system "
			     "records", s.init_size);
	if (rc < 0) {
		ntfs_stream_free(v, &s);
		return rc;
	}
	v->mft_rl = s.rl;
	v->mft_size = s.init_size; /* records past the initialized size do not exist */
	s.rl = (struct ntfs_rl){ 0 };
	ntfs_stream_free(v, &s);
	return 0;
}
