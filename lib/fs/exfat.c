// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * exFAT allocation reader (fs.h), after Microsoft's exFAT file system specification.
 *
 * The boot region (sectors 0..11) is checked field by field and against its checksum
 * (sector 11). The allocation bitmap is the file named by the root directory's Allocation
 * Bitmap entry (type 0x81); bit i stands for heap cluster i + 2. On TexFAT volumes (two
 * FATs) there are two bitmaps and VolumeFlags.ActiveFat picks the one in use.
 *
 * FREE: only heap clusters whose bit is clear. USED: everything else, namely the main and
 * backup boot regions (24 sectors), the FAT alignment space, the FAT(s), the space between
 * the last FAT and the cluster heap (alignment padding the specification gives no use; it
 * is small and kept rather than argued about), heap clusters marked in use (including the
 * bitmap, the up-case table and the root directory), and any sectors after the heap up to
 * VolumeLength and beyond. The FAT is never used to infer allocation: files flagged
 * NoFatChain have no FAT entries (only the bitmap tells).
 *
 * Written by hand: no library in Debian reads exFAT from a memory buffer or an arbitrary
 * byte range with bounded, non-printing error handling (exfatprogs has no library, libexfat
 * of fuse-exfat exits on errors). The reader is small.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs.h"
#include "fs/utf16.h"
#include "util/err.h"

#define EXFAT_EOC 0xFFFFFFF8u         /* FAT entries >= this end a chain */
#define EXFAT_BAD 0xFFFFFFF7u
#define EXFAT_DIR_MAX (256u << 20)    /* the specification's limit on a directory */
#define EXFAT_CHUNK (1u << 20)        /* bitmap / directory bytes read at a time */

#define VOL_ACTIVE_FAT 0x0001u
#define VOL_DIRTY 0x0002u
#define VOL_MEDIA_FAILURE 0x0004u

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

struct exfat_boot {
	unsigned sect_bits, clus_bits;  /* bytes per sector / per cluster, as shifts */
	uint64_t vol_len;               /* sectors */
	uint32_t fat_off, fat_len;      /* sectors */
	uint32_t heap_off;              /* sectors */
	uint32_t nclusters;
	uint32_t root;
	uint32_t serial;
	uint16_t flags;
	uint8_t nfats;
};

struct exfat_vol {
	const struct region *r;
	struct imago_err *err;
	struct exfat_boot b;
	uint64_t fat_base;              /* byte offset of the active FAT */
	uint64_t heap_base;             /* byte offset of cluster 2 */
	uint8_t fat_cache[512];
	uint64_t fat_cache_off;         /* byte offset of fat_cache, or UINT64_MAX */
};

/* Field checks of the main boot sector (the specification's ranges). 0 or -EBADMSG with
 * *why. */
static int boot_parse(const uint8_t *bs, struct exfat_boot *b, const char **why)
{
	*b = (struct exfat_boot){ 0 };
	if (memcmp(bs + 3, "EXFAT   ", 8)) {
		*why = "no \"EXFAT   \" signature";
		return -EBADMSG;
	}
	for (int i = 11; i < 64; i++) {
		if (bs[i]) {
			*why = "bytes 11..63 (MustBeZero) are not zero";
			return -EBADMSG;
		}
	}
	if (le16(bs + 510) != 0xAA55) {
		*why = "no 55 AA boot signature";
		return -EBADMSG;
	}
	b->sect_bits = bs[108];
	unsigned spc_bits = bs[109];
	if (b->sect_bits < 9 || b->sect_bits > 12 || spc_bits > 25 - b->sect_bits) {
		*why = "bytes per sector or sectors per cluster out of range";
		return -EBADMSG;
	}
	b->clus_bits = b->sect_bits + spc_bits;
	b->nfats = bs[110];
	if (b->nfats != 1 && b->nfats != 2) {
		*why = "number of FATs is not 1 or 2";
		return -EBADMSG;
	}
	if (bs[105] != 1 || bs[104] > 99) {
		*why = "file system revision is not 1.x";
		return -EBADMSG;
	}
	b->vol_len = le64(bs + 72);
	b->fat_off = le32(bs + 80);
	b->fat_len = le32(bs + 84);
	b->heap_off = le32(bs + 88);
	b->nclusters = le32(bs + 92);
	b->root = le32(bs + 96);
	b->serial = le32(bs + 100);
	b->flags = le16(bs + 106);
	/* At least 1 MiB, and small enough that byte offsets stay far from overflow. */
	if (b->vol_len < (1ull << (20 - b->sect_bits)) || b->vol_len > (1ull << (62 - b->sect_bits))) {
		*why = "volume length out of range";
		return -EBADMSG;
	}
	uint64_t fats_end = b->fat_off + (uint64_t)b->fat_len * b->nfats;
	if (b->fat_off < 24 || b->fat_len == 0 || fats_end > b->heap_off) {
		*why = "FAT offset/length overlap the boot regions or the cluster heap";
		return -EBADMSG;
	}
	if (b->nclusters == 0 || b->nclusters > 0xFFFFFFF5u ||
	    b->heap_off + ((uint64_t)b->nclusters << spc_bits) > b->vol_len) {
		*why = "cluster heap runs past the end of the volume";
		return -EBADMSG;
	}
	if (((uint64_t)b->fat_len << b->sect_bits) < ((uint64_t)b->nclusters + 2) * 4) {
		*why = "the FAT is too short for the cluster count";
		return -EBADMSG;
	}
	if (b->root < 2 || b->root > b->nclusters + 1ull) {
		*why = "root directory cluster out of range";
		return -EBADMSG;
	}
	return 0;
}

static int exfat_probe(const struct region *r)
{
	uint8_t bs[512];
	if (region_pread(r, bs, sizeof(bs), 0) != (ssize_t)sizeof(bs))
		return 0;
	struct exfat_boot b;
	const char *why;
	return boot_parse(bs, &b, &why) == 0 ? 90 : 0;
}

/* The main boot region checksum (sector 11) over sectors 0..10, skipping VolumeFlags and
 * PercentInUse, which change without the checksum being rewritten. */
static int check_boot_checksum(struct exfat_vol *v)
{
	const uint32_t ss = 1u << v->b.sect_bits;
	uint8_t *buf = malloc(12u * ss);
	if (!buf)
		return err_set(v->err, -ENOMEM, -1, -1, -1, "exfat: out of memory");
	int rc = region_read_exact(v->r, buf, 12u * ss, 0);
	if (rc < 0) {
		free(buf);
		return err_set(v->err, rc, -1, (int64_t)v->r->base, -1,
			       "exfat: cannot read the main boot region (%s)",
			       rc == -EIO ? "I/O error" : "region too small");
	}
	uint32_t sum = 0;
	for (uint32_t i = 0; i < 11u * ss; i++) {
		if (i == 106 || i == 107 || i == 112)
			continue;
		sum = ((sum & 1) ? 0x80000000u : 0) + (sum >> 1) + buf[i];
	}
	for (uint32_t i = 0; i < ss; i += 4) {
		if (le32(buf + 11u * ss + i) != sum) {
			uint32_t got = le32(buf + 11u * ss + i);
			free(buf);
			return err_set(v->err, -EBADMSG, -1, (int64_t)(v->r->base + 11u * ss + i), -1,
				       "exfat: main boot region checksum mismatch (sector 11 byte "
				       "%u holds 0x%08x, sectors 0-10 sum to 0x%08x)", i, got, sum);
		}
	}
	free(buf);
	return 0;
}

/* FAT entry of cluster c (2..nclusters+1) from the active FAT. */
static int fat_get(struct exfat_vol *v, uint32_t c, uint32_t *next)
{
	uint64_t off = v->fat_base + (uint64_t)c * 4;
	uint64_t blk = off & ~(uint64_t)(sizeof(v->fat_cache) - 1);
	if (blk != v->fat_cache_off) {
		int rc = region_read_exact(v->r, v->fat_cache, sizeof(v->fat_cache), blk);
		if (rc < 0)
			return err_set(v->err, rc, -1, (int64_t)(v->r->base + blk), -1,
				       "exfat: cannot read the FAT at byte %" PRIu64 " (%s)", blk,
				       rc == -EIO ? "I/O error" : "region ends");
		v->fat_cache_off = blk;
	}
	*next = le32(v->fat_cache + (off - blk));
	return 0;
}

/* Follow a FAT chain one step: *c becomes the next cluster, or 0 at the end. */
static int chain_next(struct exfat_vol *v, uint32_t *c, const char *what)
{
	uint32_t next = 0;
	int rc = fat_get(v, *c, &next);
	if (rc < 0)
		return rc;
	if (next >= EXFAT_EOC) {
		*c = 0;
		return 0;
	}
	if (next < 2 || next > v->b.nclusters + 1ull)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "exfat: %s: FAT entry of cluster %u is 0x%08x (%s)", what, *c,
			       next, next == EXFAT_BAD ? "bad cluster" : "not a cluster");
	*c = next;
	return 0;
}

static uint64_t clus_off(const struct exfat_vol *v, uint32_t c)
{
	return v->heap_base + ((uint64_t)(c - 2) << v->b.clus_bits);
}

/* A directory's chain can be no longer than 256 MiB (the specification's limit), nor
 * than the heap: any longer chain loops. */
static uint64_t dir_max_clusters(const struct exfat_vol *v)
{
	uint64_t m = EXFAT_DIR_MAX >> v->b.clus_bits;
	if (m == 0)
		m = 1;
	return m < v->b.nclusters ? m : v->b.nclusters;
}

struct root_info {
	uint32_t bm_first[2];
	uint64_t bm_len[2];
	int bm_seen[2];
	uint32_t up_first;
	uint64_t up_len;
	char label[64];
};

/* Read the root directory, following its FAT chain, up to the end-of-directory entry. */
static int read_root(struct exfat_vol *v, struct root_info *ri)
{
	const uint32_t cs = 1u << v->b.clus_bits;
	const uint32_t chunk = cs < 4096 ? cs : 4096;
	uint8_t buf[4096];
	uint32_t c = v->b.root;
	uint64_t max_clusters = dir_max_clusters(v);
	for (uint64_t n = 0; c; n++) {
		if (n >= max_clusters)
			return err_set(v->err, -EBADMSG, -1, -1, -1,
				       "exfat: the root directory's cluster chain is longer than "
				       "%" PRIu64 " clusters (a loop?)", max_clusters);
		for (uint32_t o = 0; o < cs; o += chunk) {
			uint64_t at = clus_off(v, c) + o;
			int rc = region_read_exact(v->r, buf, chunk, at);
			if (rc < 0)
				return err_set(v->err, rc, -1, (int64_t)(v->r->base + at), -1,
					       "exfat: cannot read the root directory at byte %"
					       PRIu64, at);
			for (uint32_t e = 0; e < chunk; e += 32) {
				const uint8_t *d = buf + e;
				switch (d[0]) {
				case 0x00:  /* end of directory */
					return 0;
				case 0x81: {
					int i = d[1] & 1;
					if (ri->bm_seen[i])
						return err_set(v->err, -EBADMSG, -1, -1, -1,
							       "exfat: two allocation bitmap "
							       "entries for bitmap %d", i + 1);
					ri->bm_seen[i] = 1;
					ri->bm_first[i] = le32(d + 20);
					ri->bm_len[i] = le64(d + 24);
					break;
				}
				case 0x82:
					ri->up_first = le32(d + 20);
					ri->up_len = le64(d + 24);
					break;
				case 0x83:
					if (d[1] > 11)
						return err_set(v->err, -EBADMSG, -1, -1, -1,
							       "exfat: volume label entry says "
							       "%u characters (at most 11)", d[1]);
					utf16le_to_utf8(d + 2, d[1], ri->label, sizeof(ri->label));
					break;
				default:
					break;
				}
			}
		}
		int rc = chain_next(v, &c, "root directory");
		if (rc < 0)
			return rc;
	}
	return err_set(v->err, -EBADMSG, -1, -1, -1,
		       "exfat: the root directory has no end-of-directory entry");
}

/* The clusters [first, first + n) must form a contiguous FAT chain ending there: the
 * bitmap is read contiguously (as the Linux driver and exfatprogs do), so a FAT that says
 * otherwise makes the volume ambiguous. */
static int check_contiguous(struct exfat_vol *v, uint32_t first, uint64_t n, const char *what)
{
	if (first < 2 || first > v->b.nclusters + 1ull || n == 0 ||
	    n > v->b.nclusters + 2ull - first)
		return err_set(v->err, -EBADMSG, -1, -1, -1,
			       "exfat: %s: clusters %u+%" PRIu64 " lie outside the cluster heap "
			       "(%u clusters)", what, first, n, v->b.nclusters);
	for (uint64_t i = 0; i < n; i++) {
		uint32_t c = first + (uint32_t)i;
		int rc = chain_next(v, &c, what);
		if (rc < 0)
			return rc;
		uint32_t want = i + 1 < n ? first + (uint32_t)i + 1 : 0;
		if (c != want)
			return err_set(v->err, -EBADMSG, -1, -1, -1,
				       "exfat: %s: the FAT chain is not the contiguous clusters "
				       "%u+%" PRIu64 " (cluster %u is followed by %u)", what,
				       first, n, first + (uint32_t)i, c);
	}
	return 0;
}

static int mark_free(struct exfat_vol *v, struct extent_map *m, uint64_t from, uint64_t to)
{
	uint64_t off = v->heap_base + (from << v->b.clus_bits);
	int rc = extent_map_set(m, off, (to - from) << v->b.clus_bits, IMAGO_FREE);
	if (rc < 0)
		return err_set(v->err, rc, -1, -1, -1,
			       "exfat: cannot mark clusters %" PRIu64 "..%" PRIu64 " free",
			       from + 2, to + 1);
	return 0;
}

/* Read the bitmap (bit i = cluster i + 2) and mark clear bits FREE; count set bits. */
static int read_bitmap(struct exfat_vol *v, struct extent_map *m, uint32_t first,
		       uint64_t *used)
{
	const uint64_t nc = v->b.nclusters, need = (nc + 7) / 8;
	size_t chunk = need < EXFAT_CHUNK ? (size_t)need : EXFAT_CHUNK;
	uint8_t *buf = malloc(chunk);
	if (!buf)
		return err_set(v->err, -ENOMEM, -1, -1, -1, "exfat: out of memory");
	uint64_t base = clus_off(v, first), free_from = UINT64_MAX, n_used = 0;
	int rc = 0;
	for (uint64_t off = 0; off < need && rc == 0;) {
		size_t n = need - off < chunk ? (size_t)(need - off) : chunk;
		rc = region_read_exact(v->r, buf, n, base + off);
		if (rc < 0) {
			rc = err_set(v->err, rc, -1, (int64_t)(v->r->base + base + off), -1,
				     "exfat: cannot read the allocation bitmap at byte %" PRIu64,
				     base + off);
			break;
		}
		for (size_t i = 0; i < n && rc == 0; i++) {
			uint64_t bit0 = (off + i) * 8;
			uint8_t byte = buf[i];
			if (bit0 + 8 <= nc) {
				if (byte == 0xFF && free_from == UINT64_MAX) {
					n_used += 8;
					continue;
				}
				if (byte == 0 && free_from != UINT64_MAX)
					continue;
			}
			for (unsigned j = 0; j < 8 && bit0 + j < nc; j++) {
				uint64_t k = bit0 + j;
				if (byte >> j & 1) {
					n_used++;
					if (free_from != UINT64_MAX) {
						rc = mark_free(v, m, free_from, k);
						free_from = UINT64_MAX;
						if (rc < 0)
							break;
					}
				} else if (free_from == UINT64_MAX) {
					free_from = k;
				}
			}
		}
		off += n;
	}
	if (rc == 0 && free_from != UINT64_MAX)
		rc = mark_free(v, m, free_from, nc);
	free(buf);
	*used = n_used;
	return rc;
}

/* Every cluster of a chain must be marked in use; if not, the bitmap is damaged. */
static int check_chain_used(struct exfat_vol *v, const struct extent_map *m, uint32_t first,
			    uint64_t max, const char *what)
{
	uint32_t c = first;
	for (uint64_t n = 0; c && n < max; n++) {
		if (extent_map_range_has(m, clus_off(v, c), 1ull << v->b.clus_bits, IMAGO_FREE))
			return err_set(v->err, -EBADMSG, -1, -1, -1,
				       "exfat: the allocation bitmap marks cluster %u of the %s "
				       "free: the bitmap is damaged", c, what);
		int rc = chain_next(v, &c, what);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int exfat_read_map(const struct region *r, struct extent_map *m, struct fs_facts *facts,
			  struct imago_err *err)
{
	struct exfat_vol v = { .r = r, .err = err, .fat_cache_off = UINT64_MAX };
	uint8_t bs[512];
	const char *why = NULL;
	int rc = region_read_exact(r, bs, sizeof(bs), 0);
	if (rc < 0)
		return err_set(err, rc, -1, (int64_t)r->base, -1,
			       "exfat: cannot read the boot sector (%s)",
			       rc == -EIO ? "I/O error" : "region too small");
	if (boot_parse(bs, &v.b, &why) < 0)
		return err_set(err, -EBADMSG, -1, (int64_t)r->base, -1,
			       "exfat: boot sector at byte 0: %s", why);
	const struct exfat_boot *b = &v.b;
	const uint64_t fs_size = b->vol_len << b->sect_bits;
	if (fs_size > r->size)
		return err_set(err, -EBADMSG, -1, -1, -1,
			       "exfat: the boot sector says the volume is %" PRIu64 " bytes, "
			       "but the region holds only %" PRIu64 " (truncated?)", fs_size,
			       r->size);
	rc = check_boot_checksum(&v);
	if (rc < 0)
		return rc;
	int active = b->nfats == 2 && (b->flags & VOL_ACTIVE_FAT) ? 1 : 0;
	v.fat_base = ((uint64_t)b->fat_off + (uint64_t)active * b->fat_len) << b->sect_bits;
	v.heap_base = (uint64_t)b->heap_off << b->sect_bits;

	struct root_info ri = { 0 };
	rc = read_root(&v, &ri);
	if (rc < 0)
		return rc;
	if (!ri.bm_seen[active])
		return err_set(err, -EBADMSG, -1, -1, -1,
			       "exfat: the root directory has no allocation bitmap entry%s",
			       b->nfats == 2 ? " for the active FAT" : "");
	const uint64_t need = ((uint64_t)b->nclusters + 7) / 8;
	const uint64_t cs = 1ull << b->clus_bits;
	uint32_t bm_first = ri.bm_first[active];
	uint64_t bm_len = ri.bm_len[active];
	if (bm_len < need || bm_len > (uint64_t)b->nclusters << b->clus_bits)
		return err_set(err, -EBADMSG, -1, -1, -1,
			       "exfat: the allocation bitmap is %" PRIu64 " bytes; %u clusters "
			       "need %" PRIu64, bm_len, b->nclusters, need);
	uint64_t bm_clusters = (bm_len + cs - 1) / cs;
	rc = check_contiguous(&v, bm_first, bm_clusters, "allocation bitmap");
	if (rc < 0)
		return rc;

	uint64_t used = 0;
	rc = read_bitmap(&v, m, bm_first, &used);
	if (rc < 0)
		return rc;
	/* The structures the volume cannot do without must be marked in use. */
	rc = check_chain_used(&v, m, bm_first, bm_clusters, "allocation bitmap");
	if (rc == 0)
		rc = check_chain_used(&v, m, b->root, dir_max_clusters(&v), "root directory");
	if (rc == 0 && ri.up_first) {
		if (ri.up_first < 2 || ri.up_first > b->nclusters + 1ull || ri.up_len == 0 ||
		    ri.up_len > (uint64_t)b->nclusters << b->clus_bits)
			rc = err_set(err, -EBADMSG, -1, -1, -1,
				     "exfat: the up-case table entry is out of range (cluster "
				     "%u, %" PRIu64 " bytes)", ri.up_first, ri.up_len);
		else
			rc = check_chain_used(&v, m, ri.up_first, (ri.up_len + cs - 1) / cs,
					      "up-case table");
	}
	if (rc < 0)
		return rc;

	struct fs_facts f = { 0 };
	snprintf(f.type, sizeof(f.type), "exfat");
	snprintf(f.label, sizeof(f.label), "%s", ri.label);
	snprintf(f.uuid, sizeof(f.uuid), "%04X-%04X", b->serial >> 16, b->serial & 0xFFFF);
	f.block_size = (uint32_t)cs;
	f.fs_size = fs_size;
	f.used_bytes = used << b->clus_bits;
	if (b->flags & VOL_DIRTY) {
		f.flags |= FS_DIRTY;
		snprintf(f.state, sizeof(f.state), "volume dirty (VolumeFlags 0x%04x)", b->flags);
	}
	if (b->flags & VOL_MEDIA_FAILURE) {
		f.flags |= FS_ERRORS;
		size_t n = strlen(f.state);
		snprintf(f.state + n, sizeof(f.state) - n, "%smedia failure recorded "
			 "(VolumeFlags 0x%04x)", n ? "; " : "", b->flags);
	}
	*facts = f;
	return 0;
}

const struct fs_driver fs_exfat_driver = {
	.name = "exfat",
	.probe = exfat_probe,
	.read_map = exfat_read_map,
};
