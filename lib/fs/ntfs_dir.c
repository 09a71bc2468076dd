// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * NTFS volume state beyond $Volume's dirty flag, checked the way ntfs-3g checks it before
 * it mounts a volume read-write:
 *   - hibernation / fast startup: /hiberfil.sys exists and starts with a hibernation
 *     signature, or is shorter than 4096 bytes (ntfs_volume_check_hiberfile);
 *   - unclean shutdown: $LogFile's current restart area has log clients in use and no
 *     "volume is clean" flag, or $LogFile has no valid restart page although it is not
 *     empty (ntfs_check_logfile + ntfs_is_logfile_clean).
 * Either means the cluster bitmap may not be what Windows will see after it resumes or
 * replays its log; the caller decides what to do (fs.h).
 *
 * Finding hiberfil.sys: rather than descend the root directory's B+tree (which needs the
 * exact collation), every entry of the index root and of every in-use index block
 * ($INDEX_ALLOCATION blocks whose $BITMAP bit is set) is compared with the name, case
 * folded with the volume's $UpCase table as NTFS does. Bounded by the index size.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fs/ntfs.h"
#include "util/err.h"

#define INDEX_ALLOC_MAX (1ull << 30)  /* root directory index we are willing to scan */
#define UPCASE_BYTES (65536u * 2)
#define HIBERFILE_HEADER 4096u

static int code_of(struct ntfs_vol *v)
{
	return v->err && v->err->code ? v->err->code : -ENOMEM;
}

/* ------------------------------------------------------------ names */

struct name_match {
	const uint16_t *upcase;   /* 65536 entries, or NULL: ASCII folding */
	uint64_t refs[8];         /* MFT references of matching entries (deduplicated) */
	unsigned n;
	int overflow;
};

static uint16_t fold(const struct name_match *nm, uint16_t c)
{
	if (nm->upcase)
		return nm->upcase[c];
	return c >= 'a' && c <= 'z' ? (uint16_t)(c - 32) : c;
}

static const char HIBERFILE[] = "hiberfil.sys";

static void match_entry(struct name_match *nm, const uint8_t *e, const uint8_t *key,
			uint16_t key_len)
{
	if (key_len < 66)
		return;
	uint8_t n = key[64];
	if (n != sizeof(HIBERFILE) - 1 || 66u + 2u * n > key_len)
		return;
	for (unsigned i = 0; i < n; i++)
		if (fold(nm, ntfs_le16(key + 66 + 2 * i)) !=
		    fold(nm, (uint16_t)(uint8_t)HIBERFILE[i]))
			return;
	uint64_t ref = ntfs_le64(e);
	for (unsigned i = 0; i < nm->n; i++)
		if (nm->refs[i] == ref)
			return;
	if (nm->n < sizeof(nm->refs) / sizeof(nm->refs[0]))
		nm->refs[nm->n++] = ref;
	else
		nm->overflow = 1;
}

/* Walk the entries of one index node: hdr points at its INDEX_HEADER, avail bytes of which
 * are readable. */
static int scan_node(struct ntfs_vol *v, struct name_match *nm, const uint8_t *hdr,
		     uint32_t avail, const char *what, uint64_t where)
{
	if (avail < 16)
		goto bad;
	uint32_t eo = ntfs_le32(hdr), il = ntfs_le32(hdr + 4), al = ntfs_le32(hdr + 8);
	if (eo < 16 || eo & 7 || il > al || al > avail || eo > il)
		goto bad;
	for (uint32_t pos = eo;;) {
		if (il - pos < 16)
			return err_set(v->err, -EBADMSG, -1, -1, -1,
				       "ntfs: %s %" PRIu64 ": index entries run past the node "
				       "without an end entry", what, where);
		const uint8_t *e = hdr + pos;
		uint16_t elen = ntfs_le16(e + 8), klen = ntfs_le16(e + 10);
		uint16_t flags = ntfs_le16(e + 12);
		if (elen < 16 || elen & 7 || elen > il - pos)
			return err_set(v->err, -EBADMSG, -1, -1, -1,
				       "ntfs: %s %" PRIu64 ": index entry at %u has bad length "
				       "%u", what, where, pos, elen);
		if (flags & 0x0002)  /* INDEX_ENTRY_END */
			return 0;
		if ((uint32_t)klen + 16 <= elen)
			match_entry(nm, e, e + 16, klen);
		pos += elen;
	}
bad:
	return err_set(v->err, -EBADMSG, -1, -1, -1,
		       "ntfs: %s %" PRIu64 ": bad index header", what, where);
}

/* The volume's upcase table, or NULL (ASCII folding) when it is not the usual 64 Ki
 * entries: then only names spelled with ASCII letters match, as ntfs-3g's default
 * table would. */
static int load_upcase(struct ntfs_vol *v, uint16_t **out)
{
	struct ntfs_stream s;
	*out = NULL;
	int rc = ntfs_stream_open(v, NTFS_FILE_UPCASE, NTFS_AT_DATA, NULL, &s);
	if (rc == -ENOENT || rc == -EBADMSG)
		return 0;
	if (rc < 0)
		return rc;
	uint8_t *raw = NULL;
	if (s.data_size == UPCASE_BYTES) {
		raw = ntfs_alloc(v, UPCASE_BYTES, "$UpCase");
		if (!raw) {
			ntfs_stream_free(v, &s);
			return code_of(v);
		}
		rc = ntfs_stream_read(v, &s, 0, raw, UPCASE_BYTES, "$UpCase");
	}
	ntfs_stream_free(v, &s);
	if (rc < 0) {
		ntfs_free(v, raw, UPCASE_BYTES);
		return rc == -EBADMSG || rc == -EOPNOTSUPP ? 0 : rc;
	}
	if (raw) {
		/* In place, little-endian to host. */
		uint16_t *t = (uint16_t *)(void *)raw;
		for (uint32_t i = 0; i < 65536; i++)
			t[i] = ntfs_le16(raw + 2 * i);
		*out = t;
	}
	return 0;
}

/* Collect the MFT references of root directory entries named hiberfil.sys. */
static int find_hiberfile(struct ntfs_vol *v, struct name_match *nm)
{
	struct ntfs_stream root = { 0 }, ia = { 0 }, bmp = { 0 };
	uint8_t *blk = NULL, *bits = NULL;
	uint32_t ibs = 0;
	uint64_t bits_len = 0;
	int rc = ntfs_stream_open(v, NTFS_FILE_ROOT, NTFS_AT_INDEX_ROOT, "$I30", &root);
	if (rc == -ENOENT)
		rc = err_set(v->err, -EBADMSG, -1, -1, -1,
			     "ntfs: the root directory (MFT record 5) has no $INDEX_ROOT");
	if (rc < 0)
		goto out;
	if (root.nonres || root.res_len < 32 || ntfs_le32(root.res) != NTFS_AT_FILE_NAME) {
		rc = err_set(v->err, -EBADMSG, -1, -1, -1,
			     "ntfs: the root directory's $INDEX_ROOT is not a file name index");
		goto out;
	}
	ibs = ntfs_le32(root.res + 8);
	if (ibs < 512 || ibs > 65536 || (ibs & (ibs - 1))) {
		rc = err_set(v->err, -EBADMSG, -1, -1, -1,
			     "ntfs: the root directory's index block size %u is invalid", ibs);
		goto out;
	}
	rc = scan_node(v, nm, root.res + 16, root.res_len - 16, "root directory index root",
		       NTFS_FILE_ROOT);
	if (rc < 0 || !(root.res[16 + 12] & 0x01))  /* no LARGE_INDEX: no index blocks */
		goto out;

	rc = ntfs_stream_open(v, NTFS_FILE_ROOT, NTFS_AT_INDEX_ALLOCATION, "$I30", &ia);
	if (rc == 0)
		rc = ntfs_stream_open(v, NTFS_FILE_ROOT, NTFS_AT_BITMAP, "$I30", &bmp);
	if (rc == -ENOENT)
		rc = err_set(v->err, -EBADMSG, -1, -1, -1,
			     "ntfs: the root directory has index blocks but no "
			     "$INDEX_ALLOCATION or $BITMAP");
	if (rc < 0)
		goto out;
	if (ntfs_stream_has_holes(&ia, v->b.cluster_size)) {
		rc = err_set(v->err, -EBADMSG, -1, -1, -1,
			     "ntfs: the root directory's index allocation is sparse");
		goto out;
	}
	if (ia.data_size % ibs || ia.data_size > INDEX_ALLOC_MAX) {
		rc = err_set(v->err, ia.data_size > INDEX_ALLOC_MAX ? -E2BIG : -EBADMSG, -1, -1,
			     -1, "ntfs: the root directory's index allocation is %" PRIu64
			     " bytes (block size %u)", ia.data_size, ibs);
		goto out;
	}
	uint64_t nblocks = ia.data_size / ibs;
	bits_len = (nblocks + 7) / 8;
	if (bmp.data_size < bits_len) {
		rc = err_set(v->err, -EBADMSG, -1, -1, -1,
			     "ntfs: the root directory's index bitmap (%" PRIu64 " bytes) is "
			     "too short for %" PRIu64 " blocks", bmp.data_size, nblocks);
		goto out;
	}
	bits = ntfs_alloc(v, (size_t)bits_len, "the root index bitmap");
	blk = ntfs_alloc(v, ibs, "an index block");
	if (!bits || !blk) {
		rc = code_of(v);
		goto out;
	}
	rc = ntfs_stream_read(v, &bmp, 0, bits, (size_t)bits_len, "root index $BITMAP");
	/* Index block VCNs count clusters, or 512-byte units when blocks are smaller. */
	unsigned vcn_bits = ibs >= v->b.cluster_size ? v->b.cluster_bits : 9;
	for (uint64_t i = 0; i < nblocks && rc == 0; i++) {
		if (!(bits[i / 8] >> (i % 8) & 1))
			continue;
		uint64_t off = i * ibs;
		rc = ntfs_stream_read(v, &ia, off, blk, ibs, "root index block");
		if (rc < 0)
			break;
		if (memcmp(blk, "INDX", 4)) {
			rc = err_set(v->err, -EBADMSG, -1, -1, -1,
				     "ntfs: root directory index block %" PRIu64 " (in use) has "
				     "no INDX signature", i);
			break;
		}
		rc = ntfs_fixup(v, blk, ibs, "root directory index block", i);
		if (rc < 0)
			break;
		if (ntfs_le64(blk + 16) != off >> vcn_bits) {
			rc = err_set(v->err, -EBADMSG, -1, -1, -1,
				     "ntfs: root directory index block %" PRIu64 " says it is "
				     "VCN %" PRIu64, i, ntfs_le64(blk + 16));
			break;
		}
		rc = scan_node(v, nm, blk + 24, ibs - 24, "root directory index block", i);
	}
out:
	ntfs_free(v, blk, ibs);
	ntfs_free(v, bits, (size_t)bits_len);
	ntfs_stream_free(v, &bmp);
	ntfs_stream_free(v, &ia);
	ntfs_stream_free(v, &root);
	return rc;
}

/* Look at one hiberfil.sys candidate. */
static int check_one(struct ntfs_vol *v, uint64_t ref, int *hib, char *why, size_t why_len)
{
	uint64_t no = ref & 0xFFFFFFFFFFFFull;
	struct ntfs_stream s;
	int rc = ntfs_stream_open(v, no, NTFS_AT_DATA, NULL, &s);
	if (rc == -ENOENT) {
		*hib = 1;
		snprintf(why, why_len, "hiberfil.sys (MFT record %" PRIu64 ") has no data; "
			 "ntfs-3g would refuse it", no);
		return 0;
	}
	if (rc < 0)
		return rc;
	uint8_t head[4];
	if (s.data_size < HIBERFILE_HEADER) {
		*hib = 1;
		snprintf(why, why_len, "hiberfil.sys is %" PRIu64 " bytes, under 4096 "
			 "(ntfs-3g: hibernated non-system partition)", s.data_size);
	} else if (s.nonres && s.flags & (NTFS_ATTR_COMPRESSION_MASK | NTFS_ATTR_ENCRYPTED)) {
		*hib = 1;
		snprintf(why, why_len, "hiberfil.sys is compressed or encrypted; cannot tell "
			 "whether Windows is hibernated");
	} else {
		rc = ntfs_stream_read(v, &s, 0, head, sizeof(head), "hiberfil.sys");
		if (rc == 0 && (!memcmp(head, "hibr", 4) || !memcmp(head, "HIBR", 4) ||
				!memcmp(head, "wake", 4) || !memcmp(head, "WAKE", 4))) {
			*hib = 1;
			snprintf(why, why_len, "Windows is hibernated or used fast startup "
				 "(hiberfil.sys starts with \"%.4s\")", (const char *)head);
		}
	}
	ntfs_stream_free(v, &s);
	return rc;
}

int ntfs_check_hiberfile(struct ntfs_vol *v, int *hibernated, char *why, size_t why_len)
{
	struct name_match nm = { 0 };
	uint16_t *upcase = NULL;
	*hibernated = 0;
	int rc = load_upcase(v, &upcase);
	if (rc < 0)
		return rc;
	nm.upcase = upcase;
	rc = find_hiberfile(v, &nm);
	for (unsigned i = 0; rc == 0 && i < nm.n && !*hibernated; i++)
		rc = check_one(v, nm.refs[i], hibernated, why, why_len);
	if (rc == 0 && nm.overflow && !*hibernated) {
		*hibernated = 1;
		snprintf(why, why_len, "the root directory lists too many hiberfil.sys entries "
			 "to check");
	}
	ntfs_free(v, upcase, upcase ? UPCASE_BYTES : 0);
	return rc;
}

/* ------------------------------------------------------------ $LogFile */

#define LOG_PAGE 4096u
#define LOG_MIN_RECORD_PAGES 48u
#define LOG_MAX_SIZE (1ull << 32)
#define LOG_NO_CLIENT 0xFFFFu
#define LOG_MAX_SYSTEM_PAGE 65536u
#define RESTART_VOLUME_IS_CLEAN 0x0002u

struct restart {
	int64_t lsn;
	uint16_t in_use, flags;
};

/* Check a restart page whose first 512 bytes are in p (ntfs-3g's
 * ntfs_check_restart_page_header + ntfs_check_restart_area), read all of it, undo its
 * update sequence and check the client lists. 1 and *out when valid, 0 when not, <0 on a
 * read error. */
static int load_restart(struct ntfs_vol *v, const struct ntfs_stream *log, const uint8_t *p,
			uint64_t pos, struct restart *out)
{
	int chkd = !memcmp(p, "CHKD", 4);
	uint32_t sps = ntfs_le32(p + 16), lps = ntfs_le32(p + 20);
	if (sps < 512 || lps < 512 || (sps & (sps - 1)) || (lps & (lps - 1)) ||
	    sps > LOG_MAX_SYSTEM_PAGE)
		return 0;
	if (pos && pos != sps)
		return 0;
	int16_t minor = (int16_t)ntfs_le16(p + 26), major = (int16_t)ntfs_le16(p + 28);
	if (!((major == 1 && minor == 1) || (major == 2 && minor == 0)))
		return 0;
	uint16_t usa_count = ntfs_le16(p + 6), usa_ofs = ntfs_le16(p + 4);
	int have_usa = !(chkd && usa_count == 0);
	uint32_t usa_end = 0;
	if (have_usa) {
		if (usa_count != 1 + sps / 512)
			return 0;
		usa_end = usa_ofs + 2u * usa_count;
		if (usa_ofs < 30 || usa_end > 510)
			return 0;
	}
	uint16_t ra_ofs = ntfs_le16(p + 24);
	if (ra_ofs & 7 || ra_ofs < (have_usa ? usa_end : 30u) || ra_ofs > sps)
		return 0;
	if (!chkd && ntfs_le64(p + 8))
		return 0;
	/* The restart area's 48-byte header lies in the first stride (ntfs-3g asks this of
	 * the part before file_size only, then reads further; we read only what we hold). */
	if (ra_ofs + 48u > 510)
		return 0;
	const uint8_t *ra = p + ra_ofs;
	uint16_t ca_ofs = ntfs_le16(ra + 22), clients = ntfs_le16(ra + 8);
	if (ca_ofs & 7 || ra_ofs + (uint32_t)ca_ofs > 510)
		return 0;
	uint32_t ra_len = ca_ofs + clients * 160u;
	uint16_t ra_len_field = ntfs_le16(ra + 20);
	if (ra_ofs + ra_len > sps || ra_ofs + (uint32_t)ra_len_field > sps || ra_len > ra_len_field)
		return 0;
	uint16_t free_list = ntfs_le16(ra + 10), in_use = ntfs_le16(ra + 12);
	if ((free_list != LOG_NO_CLIENT && free_list >= clients) ||
	    (in_use != LOG_NO_CLIENT && in_use >= clients))
		return 0;
	uint64_t fsz = ntfs_le64(ra + 24);
	unsigned bits = 0;
	while (fsz) {
		fsz >>= 1;
		bits++;
	}
	if (ntfs_le32(ra + 16) != 67u - bits)
		return 0;
	if (ntfs_le16(ra + 36) & 7 || ntfs_le16(ra + 38) & 7)
		return 0;

	/* The whole page, update sequence undone. */
	uint8_t *page = ntfs_alloc(v, sps, "a $LogFile restart page");
	if (!page)
		return code_of(v);
	int rc = ntfs_stream_read(v, log, pos, page, sps, "$LogFile restart page");
	if (rc < 0) {
		ntfs_free(v, page, sps);
		return rc == -EIO ? rc : 0;
	}
	int valid = 1;
	if (have_usa && ntfs_mst_fixup_quiet(page, sps) < 0 &&
	    ra_ofs + (uint32_t)ra_len_field > 510)
		valid = 0;  /* torn, and the restart area reaches past the first stride */
	const uint8_t *pra = page + ra_ofs;
	if (valid && !chkd && in_use != LOG_NO_CLIENT) {
		/* Walk the free list, then the in-use list (ntfs_check_log_client_array). */
		const uint8_t *ca = pra + ca_ofs;
		uint16_t left = clients;
		for (int list = 0; list < 2 && valid; list++) {
			uint16_t idx = list ? in_use : free_list;
			int first = 1;
			while (idx != LOG_NO_CLIENT) {
				if (!left || idx >= clients) {
					valid = 0;
					break;
				}
				const uint8_t *cr = ca + (uint32_t)idx * 160u;
				if (first && ntfs_le16(cr + 16) != LOG_NO_CLIENT) {
					valid = 0;
					break;
				}
				first = 0;
				left--;
				idx = ntfs_le16(cr + 18);
			}
		}
	}
	if (valid) {
		out->lsn = chkd ? (int64_t)ntfs_le64(page + 8) : (int64_t)ntfs_le64(pra);
		out->in_use = ntfs_le16(pra + 12);
		out->flags = ntfs_le16(pra + 14);
	}
	ntfs_free(v, page, sps);
	return valid;
}

int ntfs_check_logfile(struct ntfs_vol *v, int *unclean, char *why, size_t why_len)
{
	struct ntfs_stream log;
	*unclean = 0;
	int rc = ntfs_stream_open(v, NTFS_FILE_LOGFILE, NTFS_AT_DATA, NULL, &log);
	if (rc == -ENOENT)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: $LogFile (MFT record 2) has no $DATA attribute");
	if (rc < 0)
		return rc;
	if (!log.nonres || log.flags & (NTFS_ATTR_COMPRESSION_MASK | NTFS_ATTR_ENCRYPTED) ||
	    ntfs_stream_has_holes(&log, v->b.cluster_size)) {
		ntfs_stream_free(v, &log);
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: $LogFile's $DATA is resident, compressed, encrypted or "
			       "sparse");
	}
	uint64_t size = log.data_size < LOG_MAX_SIZE ? log.data_size : LOG_MAX_SIZE;
	size &= ~(uint64_t)(LOG_PAGE - 1);
	if (size < 2 * LOG_PAGE || (size - 2 * LOG_PAGE) / LOG_PAGE < LOG_MIN_RECORD_PAGES) {
		*unclean = 1;
		snprintf(why, why_len, "$LogFile is too small (%" PRIu64 " bytes)",
			 log.data_size);
		ntfs_stream_free(v, &log);
		return 0;
	}
	/* Look for restart pages where a page may start: 0, then 512, 1024, ... */
	struct restart rst[2];
	int nrst = 0, empty = 1;
	uint8_t p[512];
	for (uint64_t pos = 0; pos < size; pos <<= 1) {
		rc = ntfs_stream_read(v, &log, pos, p, sizeof(p), "$LogFile");
		if (rc < 0)
			break;
		if (ntfs_le32(p) != 0xFFFFFFFFu)
			empty = 0;
		else if (!empty)
			break;
		if (!memcmp(p, "RCRD", 4))
			break;
		if (memcmp(p, "RSTR", 4) && memcmp(p, "CHKD", 4)) {
			if (!pos)
				pos = 256;
			continue;
		}
		int ok = load_restart(v, &log, p, pos, &rst[nrst]);
		if (ok < 0) {
			rc = ok;
			break;
		}
		if (ok) {
			nrst++;
			if (pos)
				break;
			pos = 256;
			continue;
		}
		if (!pos)
			pos = 256;
	}
	ntfs_stream_free(v, &log);
	if (rc < 0)
		return rc;
	if (empty)
		return 0;  /* emptied by ntfs-3g or ntfsfix: it was clean before */
	if (!nrst) {
		*unclean = 1;
		snprintf(why, why_len, "$LogFile is not empty and has no valid restart page");
		return 0;
	}
	const struct restart *cur = nrst == 2 && rst[1].lsn > rst[0].lsn ? &rst[1] : &rst[0];
	if (cur->in_use != LOG_NO_CLIENT && !(cur->flags & RESTART_VOLUME_IS_CLEAN)) {
		*unclean = 1;
		snprintf(why, why_len, "$LogFile: not shut down cleanly (log client in use, "
			 "restart flags 0x%04x)", cur->flags);
	}
	return 0;
}
