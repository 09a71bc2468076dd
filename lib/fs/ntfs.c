// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * NTFS allocation reader (fs.h): the boot sector, then $MFT, then the cluster bitmap
 * ($Bitmap, MFT record 6: one bit per cluster, set = in use). Clear bits become FREE;
 * everything else stays USED: the boot sector and $Boot, every cluster the bitmap marks
 * (which includes $MFT, $MFTMirr, $LogFile, $BadClus), the sectors after the last cluster
 * (the backup boot sector is the volume's last sector and lies in no cluster).
 *
 * Facts: label from $Volume's $VOLUME_NAME, uuid = the volume serial number as blkid
 * prints it, flags from $VOLUME_INFORMATION (dirty), hiberfil.sys (hibernated / fast
 * startup) and $LogFile (unclean shutdown): a volume in any of these states may have a
 * bitmap that does not match what Windows will replay, which the caller must know.
 *
 * Why our own reader and not libntfs-3g: see ntfs_mft.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/ntfs.h"
#include "fs/utf16.h"
#include "util/err.h"

#define NTFS_BOOT_FILE_BYTES 8192u   /* $Boot: the boot sector and the boot code */
#define BITMAP_CHUNK (1u << 20)      /* bitmap bytes read at a time */

static int is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static unsigned log2u(uint64_t x)
{
	return (unsigned)__builtin_ctzll(x);
}

/* The MFT/index record size encoding: >0 clusters, <0 2^-v bytes. 0 when invalid. */
static uint32_t rec_size(int8_t v, unsigned cluster_bits)
{
	uint64_t s;
	if (v > 0) {
		if (!is_pow2((uint64_t)v))
			return 0;
		s = (uint64_t)v << cluster_bits;
	} else if (v < 0 && v >= -31) {
		s = 1ull << -v;
	} else {
		return 0;
	}
	return s >= 512 && s <= 65536 ? (uint32_t)s : 0;
}

int ntfs_boot_parse(const uint8_t bs[512], struct ntfs_boot *b, const char **why)
{
	*b = (struct ntfs_boot){ 0 };
	if (memcmp(bs + 3, "NTFS    ", 8)) {
		*why = "no \"NTFS    \" signature";
		return -EBADMSG;
	}
	if (ntfs_le16(bs + 510) != 0xAA55) {
		*why = "no 55 AA end marker";
		return -EBADMSG;
	}
	uint32_t bps = ntfs_le16(bs + 11);
	if (bps < 256 || bps > 4096 || !is_pow2(bps)) {
		*why = "bytes per sector is not a power of two in 256..4096";
		return -EBADMSG;
	}
	unsigned spc_bits;
	uint8_t spc = bs[13];
	if (spc >= 1 && spc <= 128 && is_pow2(spc)) {
		spc_bits = log2u(spc);
	} else if (spc >= 244) {
		spc_bits = 256u - spc;  /* clusters over 64 KiB: 2^(256 - n) sectors */
	} else {
		*why = "bad sectors per cluster";
		return -EBADMSG;
	}
	unsigned cb = log2u(bps) + spc_bits;
	if (cb > 21) {
		*why = "cluster size over 2 MiB";
		return -EBADMSG;
	}
	/* Fields FAT uses must be zero on NTFS (as ntfs-3g checks). */
	if (ntfs_le16(bs + 14) || bs[16] || ntfs_le16(bs + 17) || ntfs_le16(bs + 19) ||
	    ntfs_le16(bs + 22) || ntfs_le32(bs + 32)) {
		*why = "FAT fields (reserved sectors, FATs, root entries, sector counts) are "
		       "not zero";
		return -EBADMSG;
	}
	uint64_t total = ntfs_le64(bs + 40);
	if (total == 0 || total >= (1ull << 62) >> log2u(bps)) {
		*why = "bad total sector count";
		return -EBADMSG;
	}
	b->sector_size = bps;
	b->cluster_bits = cb;
	b->cluster_size = 1u << cb;
	b->total_sectors = total;
	b->nr_clusters = total >> spc_bits;
	b->mft_lcn = ntfs_le64(bs + 48);
	b->mftmirr_lcn = ntfs_le64(bs + 56);
	b->serial = ntfs_le64(bs + 72);
	if (b->nr_clusters == 0 || b->mft_lcn >= b->nr_clusters ||
	    b->mftmirr_lcn >= b->nr_clusters) {
		*why = "$MFT or $MFTMirr cluster lies past the end of the volume";
		return -EBADMSG;
	}
	b->mft_rec_size = rec_size((int8_t)bs[64], cb);
	b->index_rec_size = rec_size((int8_t)bs[68], cb);
	if (!b->mft_rec_size || !b->index_rec_size) {
		*why = "bad MFT record or index record size";
		return -EBADMSG;
	}
	return 0;
}

static int ntfs_probe(const struct region *r)
{
	uint8_t bs[512];
	if (region_pread(r, bs, sizeof(bs), 0) != (ssize_t)sizeof(bs))
		return 0;
	struct ntfs_boot b;
	const char *why;
	return ntfs_boot_parse(bs, &b, &why) == 0 ? 90 : 0;
}

/* $Volume: label and flags. */
static int read_volume(struct ntfs_vol *v, struct fs_facts *f, uint16_t *vflags)
{
	struct ntfs_stream s;
	int rc = ntfs_stream_open(v, NTFS_FILE_VOLUME, NTFS_AT_VOLUME_INFORMATION, NULL, &s);
	if (rc == -ENOENT)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: $Volume (MFT record 3) has no $VOLUME_INFORMATION");
	if (rc < 0)
		return rc;
	if (s.nonres || s.res_len < 12) {
		ntfs_stream_free(v, &s);
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: $VOLUME_INFORMATION is non-resident or short");
	}
	*vflags = ntfs_le16(s.res + 10);
	ntfs_stream_free(v, &s);

	rc = ntfs_stream_open(v, NTFS_FILE_VOLUME, NTFS_AT_VOLUME_NAME, NULL, &s);
	if (rc == -ENOENT)
		return 0;  /* no label ("seen in the field", ntfs-3g says) */
	if (rc < 0)
		return rc;
	if (s.nonres) {
		ntfs_stream_free(v, &s);
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: $VOLUME_NAME is non-resident");
	}
	utf16le_to_utf8(s.res, s.res_len / 2, f->label, sizeof(f->label));
	ntfs_stream_free(v, &s);
	return 0;
}

/* Mark FREE every cluster whose bit is clear: [start, end) clusters. */
static int mark_free(struct ntfs_vol *v, struct extent_map *m, uint64_t start, uint64_t end)
{
	const unsigned cb = v->b.cluster_bits;
	int rc = extent_map_set(m, start << cb, (end - start) << cb, IMAGO_FREE);
	if (rc < 0)
		return err_set(v->err, rc, -1, -1, -1,
			       "ntfs: cannot mark clusters %" PRIu64 "..%" PRIu64 " free (%s)",
			       start, end - 1, rc == -ENOMEM ? "out of memory" : "bad range");
	return 0;
}

/* Read $Bitmap and mark free clusters; counts used clusters. */
static int read_bitmap(struct ntfs_vol *v, struct extent_map *m, struct ntfs_stream *bm,
		       uint64_t *used)
{
	const uint64_t nc = v->b.nr_clusters;
	int rc = ntfs_stream_open(v, NTFS_FILE_BITMAP, NTFS_AT_DATA, NULL, bm);
	if (rc == -ENOENT)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: $Bitmap (MFT record 6) has no $DATA attribute");
	if (rc < 0)
		return rc;
	uint64_t need = (nc + 7) / 8;
	if (bm->flags & (NTFS_ATTR_COMPRESSION_MASK | NTFS_ATTR_ENCRYPTED) ||
	    ntfs_stream_has_holes(bm, v->b.cluster_size))
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: $Bitmap's $DATA is compressed, encrypted or sparse");
	/* Past the initialized size a stream reads as zeros, which here would mean "free":
	 * the bitmap must really hold every bit. */
	if (bm->data_size < need || bm->init_size < need)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: $Bitmap holds %" PRIu64 " bytes (%" PRIu64 " initialized), "
			       "the volume's %" PRIu64 " clusters need %" PRIu64, bm->data_size,
			       bm->init_size, nc, need);
	size_t chunk = need < BITMAP_CHUNK ? (size_t)need : BITMAP_CHUNK;
	uint8_t *buf = ntfs_alloc(v, chunk, "the cluster bitmap");
	if (!buf)
		return v->err && v->err->code ? v->err->code : -ENOMEM;
	uint64_t free_start = UINT64_MAX, n_used = 0;
	for (uint64_t off = 0; off < need && rc == 0;) {
		size_t n = need - off < chunk ? (size_t)(need - off) : chunk;
		rc = ntfs_stream_read(v, bm, off, buf, n, "$Bitmap");
		for (size_t i = 0; i < n && rc == 0; i++) {
			uint64_t base = (off + i) * 8;
			uint8_t byte = buf[i];
			if (base + 8 <= nc) {
				/* Whole bytes first: the common cases are all set or clear. */
				if (byte == 0xFF && free_start == UINT64_MAX) {
					n_used += 8;
					continue;
				}
				if (byte == 0 && free_start != UINT64_MAX)
					continue;
			}
			for (unsigned j = 0; j < 8 && base + j < nc; j++) {
				uint64_t c = base + j;
				if (byte >> j & 1) {
					n_used++;
					if (free_start != UINT64_MAX) {
						rc = mark_free(v, m, free_start, c);
						free_start = UINT64_MAX;
						if (rc < 0)
							break;
					}
				} else if (free_start == UINT64_MAX) {
					free_start = c;
				}
			}
		}
		off += n;
	}
	if (rc == 0 && free_start != UINT64_MAX)
		rc = mark_free(v, m, free_start, nc);
	ntfs_free(v, buf, chunk);
	*used = n_used;
	return rc;
}

/* A structure the volume cannot work without must be marked in use; if the bitmap says
 * otherwise, the bitmap is damaged and nothing it says can be trusted. */
static int check_in_use(struct ntfs_vol *v, const struct extent_map *m, uint64_t lcn,
			uint64_t len, const char *what)
{
	const unsigned cb = v->b.cluster_bits;
	if (len && extent_map_range_has(m, lcn << cb, len << cb, IMAGO_FREE))
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "ntfs: the cluster bitmap marks clusters of %s (%" PRIu64 "+%"
			       PRIu64 ") free: the bitmap is damaged", what, lcn, len);
	return 0;
}

static int check_rl_in_use(struct ntfs_vol *v, const struct extent_map *m,
			   const struct ntfs_rl *rl, const char *what)
{
	for (size_t i = 0; i < rl->n; i++) {
		if (rl->v[i].lcn == NTFS_LCN_HOLE)
			continue;
		int rc = check_in_use(v, m, rl->v[i].lcn, rl->v[i].len, what);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void add_state(struct fs_facts *f, const char *s)
{
	size_t n = strlen(f->state);
	snprintf(f->state + n, sizeof(f->state) - n, "%s%s", n ? "; " : "", s);
}

static int ntfs_read_map(const struct region *r, struct extent_map *m, struct fs_facts *facts,
			 struct imago_err *err)
{
	struct ntfs_vol v = { .r = r, .err = err };
	struct ntfs_stream bm = { 0 };
	struct fs_facts f = { 0 };
	uint8_t bs[512];
	const char *why = NULL;
	int rc = region_read_exact(r, bs, sizeof(bs), 0);
	if (rc < 0)
		return err_set(err, rc, -1, (int64_t)r->base, -1,
			       "ntfs: cannot read the boot sector (%s)",
			       rc == -EIO ? "I/O error" : "region too small");
	if (ntfs_boot_parse(bs, &v.b, &why) < 0)
		return err_set(err, -EBADMSG, -1, (int64_t)r->base, -1,
			       "ntfs: boot sector at byte 0: %s", why);
	const uint64_t vol_bytes = v.b.total_sectors * v.b.sector_size;
	if (vol_bytes > r->size)
		return err_set(err, -EBADMSG, -1, -1, -1,
			       "ntfs: the boot sector says the volume is %" PRIu64 " bytes, "
			       "but the region holds only %" PRIu64 " (truncated?)", vol_bytes,
			       r->size);
	v.mft_map = &v.mft_rl;

	uint16_t vflags = 0;
	uint64_t used = 0;
	int hib = 0, unclean = 0;
	char hib_why[96] = "", log_why[96] = "";
	rc = ntfs_load_mft(&v);
	if (rc == 0)
		rc = read_volume(&v, &f, &vflags);
	if (rc == 0)
		rc = read_bitmap(&v, m, &bm, &used);
	/* Structures that must be in use whatever the bitmap says. */
	if (rc == 0) {
		uint64_t boot = (NTFS_BOOT_FILE_BYTES + v.b.cluster_size - 1) >> v.b.cluster_bits;
		uint64_t mirr = ((uint64_t)4 * v.b.mft_rec_size + v.b.cluster_size - 1) >>
				v.b.cluster_bits;
		if (boot > v.b.nr_clusters)
			boot = v.b.nr_clusters;
		if (mirr > v.b.nr_clusters - v.b.mftmirr_lcn)
			mirr = v.b.nr_clusters - v.b.mftmirr_lcn;
		rc = check_in_use(&v, m, 0, boot, "the boot sector ($Boot)");
		if (rc == 0)
			rc = check_in_use(&v, m, v.b.mftmirr_lcn, mirr, "$MFTMirr");
		if (rc == 0)
			rc = check_rl_in_use(&v, m, &v.mft_rl, "$MFT");
		if (rc == 0)
			rc = check_rl_in_use(&v, m, &bm.rl, "$Bitmap");
	}
	if (rc == 0)
		rc = ntfs_check_hiberfile(&v, &hib, hib_why, sizeof(hib_why));
	if (rc == 0)
		rc = ntfs_check_logfile(&v, &unclean, log_why, sizeof(log_why));
	ntfs_stream_free(&v, &bm);
	ntfs_rl_free(&v, &v.mft_rl);
	if (rc < 0)
		return rc;

	snprintf(f.type, sizeof(f.type), "ntfs");
	snprintf(f.uuid, sizeof(f.uuid), "%016" PRIX64, v.b.serial);
	f.block_size = v.b.cluster_size;
	f.fs_size = vol_bytes + v.b.sector_size <= r->size ? vol_bytes + v.b.sector_size
							   : vol_bytes;
	f.used_bytes = used << v.b.cluster_bits;
	if (vflags & 0x0001) {
		f.flags |= FS_DIRTY;
		char s[64];
		snprintf(s, sizeof(s), "volume marked dirty ($Volume flags 0x%04x)", vflags);
		add_state(&f, s);
	}
	if (hib) {
		f.flags |= FS_HIBERNATED;
		add_state(&f, hib_why);
	}
	if (unclean) {
		f.flags |= FS_NEEDS_RECOVERY;
		add_state(&f, log_why);
	}
	*facts = f;
	return 0;
}

const struct fs_driver fs_ntfs_driver = {
	.name = "ntfs",
	.probe = ntfs_probe,
	.read_map = ntfs_read_map,
};
