// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * FAT12/16/32 allocation reader (fs.h).
 *
 * Written by hand: no maintained library reads a FAT from an arbitrary byte range
 * (dosfstools and mtools are programs, not libraries), and the job is small: validate the
 * BIOS parameter block, then read one FAT front to back. Sources: Microsoft "FAT32 File
 * System Specification" (fatgen103) for the layout and the cluster-count rule, dosfstools
 * 4.2 (fsck.fat) for the dirty bits, util-linux libblkid (vfat probe) for how the label
 * and the serial are shown.
 *
 * FREE is only ever a data cluster whose FAT entry is 0. Everything else stays USED: the
 * reserved sectors (boot sector, FSInfo, backup boot sector), every FAT copy, the
 * FAT12/16 root directory, clusters that are allocated, end a chain, are marked bad or
 * hold a reserved value, and the sectors after the last whole cluster.
 *
 * The FAT is read in pieces (FAT_PIECE bytes), so a 1 GiB FAT32 table costs one piece of
 * memory, not the whole table.
 */
#include "fs/fs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* Bytes of FAT read at a time: a multiple of 3 (two FAT12 entries), 2 and 4, so no
 * entry straddles two pieces. */
#define FAT_PIECE (3u * 4u * 65536u)

/* Clusters of the FAT32 root directory searched for the volume label: libblkid's bound,
 * so that we show the label blkid shows. */
#define LABEL_MAX_CLUSTERS 100

/* Largest cluster count any FAT can address (FAT32: entries 0x0FFFFFF7 and up are
 * bad/end-of-chain marks). */
#define FAT32_MAX_CLUSTERS 0x0FFFFFF5u

struct fat_geom {
	uint32_t sector;      /* bytes per sector */
	uint32_t spc;         /* sectors per cluster */
	uint32_t cluster;     /* bytes per cluster */
	uint32_t rsvd;        /* reserved sectors before the first FAT */
	uint32_t nfats;
	uint32_t fatsz;       /* sectors per FAT */
	uint32_t root_ents;   /* FAT12/16 root directory entries */
	uint32_t root_secs;   /* sectors of the FAT12/16 root directory */
	uint64_t tot_secs;
	uint64_t first_data;  /* first sector of cluster 2 */
	uint32_t count;       /* data clusters: 2 .. count + 1 */
	int bits;             /* 12, 16 or 32 */
	uint32_t root_clus;   /* FAT32: first cluster of the root directory */
	uint32_t active_fat;  /* the FAT to read (FAT32 with mirroring off: the active one) */
	int typed;            /* the BPB names its type ("FAT12   " ...) */
};

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/*
 * Validate the boot sector b (its first 512 bytes) and derive the geometry. Returns 0, or
 * -1 with why filled (one phrase, for a message).
 */
static int fat_parse(const uint8_t *b, struct fat_geom *g, char *why, size_t whylen)
{
	memset(g, 0, sizeof(*g));
#define BAD(...) do { snprintf(why, whylen, __VA_ARGS__); return -1; } while (0)
	/* The jump instruction to the boot code: EB xx (90) or E9 xx xx. */
	if (b[0] != 0xEB && b[0] != 0xE9)
		BAD("no jump instruction (byte 0 is 0x%02x)", b[0]);
	if (b[510] != 0x55 || b[511] != 0xAA)
		BAD("no 55 AA signature at byte 510");
	g->sector = le16(b + 11);
	if (!pow2(g->sector) || g->sector < 512 || g->sector > 4096)
		BAD("bytes per sector %" PRIu32 " is not a power of two in 512..4096", g->sector);
	g->spc = b[13];
	if (!pow2(g->spc))
		BAD("sectors per cluster %" PRIu32 " is not a power of two", g->spc);
	g->cluster = g->sector * g->spc;
	g->rsvd = le16(b + 14);
	if (!g->rsvd)
		BAD("no reserved sectors (the boot sector is one)");
	g->nfats = b[16];
	if (!g->nfats)
		BAD("no FAT (number of FATs is 0)");
	if (b[21] != 0xF0 && b[21] < 0xF8)
		BAD("media byte 0x%02x is not F0 or F8..FF", b[21]);
	g->root_ents = le16(b + 17);
	uint16_t tot16 = le16(b + 19);
	g->tot_secs = tot16 ? tot16 : le32(b + 32);
	if (!g->tot_secs)
		BAD("total sectors is 0");
	uint16_t fatsz16 = le16(b + 22);
	/* A FAT32 boot sector has no 16-bit FAT size and no fixed root directory. */
	int fat32_layout = fatsz16 == 0;
	g->fatsz = fat32_layout ? le32(b + 36) : fatsz16;
	if (!g->fatsz)
		BAD("FAT size is 0");
	if (fat32_layout && g->root_ents)
		BAD("FAT32 boot sector with %" PRIu32 " fixed root directory entries", g->root_ents);
	if (!fat32_layout && !g->root_ents)
		BAD("FAT12/16 boot sector with no root directory entries");
	g->root_secs = (uint32_t)(((uint64_t)g->root_ents * 32 + g->sector - 1) / g->sector);
	g->first_data = (uint64_t)g->rsvd + (uint64_t)g->nfats * g->fatsz + g->root_secs;
	if (g->first_data >= g->tot_secs)
		BAD("the data area would start at sector %" PRIu64 ", past the %" PRIu64
		    " sectors of the filesystem", g->first_data, g->tot_secs);
	uint64_t count = (g->tot_secs - g->first_data) / g->spc;
	if (!count)
		BAD("no whole cluster in the data area");
	if (count > FAT32_MAX_CLUSTERS)
		BAD("%" PRIu64 " clusters is more than FAT32 can address", count);
	g->count = (uint32_t)count;
	/*
	 * The type is decided by the cluster count (Microsoft's rule), not by the type string:
	 * < 4085 FAT12, < 65525 FAT16, else FAT32. One exception, the one Linux and dosfstools
	 * make: a FAT32 boot sector (no 16-bit FAT size, no fixed root directory) means 32-bit
	 * entries even below 65525 clusters (mkfs.fat -F 32 makes such volumes), because a
	 * FAT16 cannot exist without a fixed root directory. A FAT12/16 boot sector with too
	 * many clusters for 16-bit entries is damaged.
	 */
	if (fat32_layout)
		g->bits = 32;
	else if (count < 4085)
		g->bits = 12;
	else if (count < 65525)
		g->bits = 16;
	else
		BAD("FAT12/16 boot sector with %" PRIu64 " clusters (FAT16 holds at most 65524)",
		    count);
	uint64_t need = g->bits == 12 ? ((count + 2) * 3 + 1) / 2 : (count + 2) * (g->bits / 8);
	if ((uint64_t)g->fatsz * g->sector < need)
		BAD("a FAT of %" PRIu32 " sectors is too small for %" PRIu64 " clusters", g->fatsz,
		    count);
	if (g->bits == 32) {
		g->root_clus = le32(b + 44);
		if (g->root_clus < 2 || g->root_clus > g->count + 1)
			BAD("root directory cluster %" PRIu32 " is not a data cluster (2..%" PRIu32 ")",
			    g->root_clus, g->count + 1);
		uint16_t ext = le16(b + 40);
		if (ext & 0x80) {  /* mirroring off: only the active FAT is current */
			g->active_fat = ext & 0x0F;
			if (g->active_fat >= g->nfats)
				BAD("active FAT %" PRIu32 " of %" PRIu32, g->active_fat, g->nfats);
		}
		uint16_t fsinfo = le16(b + 48), backup = le16(b + 50);
		if (fsinfo && fsinfo != 0xFFFF && fsinfo >= g->rsvd)
			BAD("FSInfo sector %u is outside the %" PRIu32 " reserved sectors", fsinfo,
			    g->rsvd);
		if (backup && backup != 0xFFFF && backup >= g->rsvd)
			BAD("backup boot sector %u is outside the %" PRIu32 " reserved sectors", backup,
			    g->rsvd);
		g->typed = !memcmp(b + 82, "FAT32   ", 8);
	} else {
		g->typed = !memcmp(b + 54, "FAT12   ", 8) || !memcmp(b + 54, "FAT16   ", 8) ||
			   !memcmp(b + 54, "FAT     ", 8);
	}
#undef BAD
	return 0;
}

static int fat_probe(const struct region *r)
{
	uint8_t b[512];
	struct fat_geom g;
	char why[160];
	if (region_read_exact(r, b, sizeof(b), 0) < 0)
		return 0;
	if (fat_parse(b, &g, why, sizeof(why)) < 0)
		return 0;
	/* Weaker than filesystems with a real magic number; a type string helps. */
	return g.typed ? 70 : 50;
}

/* Copy an 11-byte FAT name into out as text: trailing spaces dropped (as blkid does),
 * bytes outside printable ASCII shown as '?' (the OEM code page is unknown). */
static void fat_name_text(const uint8_t *n, char *out, size_t outlen)
{
	size_t len = 11;
	while (len && (n[len - 1] == ' ' || n[len - 1] == 0))
		len--;
	if (len >= outlen)
		len = outlen - 1;
	for (size_t i = 0; i < len; i++)
		out[i] = n[i] >= 0x20 && n[i] < 0x7F ? (char)n[i] : '?';
	out[len] = '\0';
}

/*
 * Search `entries` directory entries at byte off for the volume label, as libblkid does:
 * stop at the end-of-directory mark, skip deleted entries, long-name entries and entries
 * with a cluster; take the first with the volume-ID attribute and not the directory one.
 * Returns 1 (label copied to out[11]), 0 (none; *end set when the directory ended), or a
 * negative errno.
 */
static int fat_find_label(const struct region *r, uint64_t off, uint64_t entries,
			  uint8_t out[11], int *end)
{
	uint8_t buf[4096];
	while (entries) {
		uint64_t n = entries < sizeof(buf) / 32 ? entries : sizeof(buf) / 32;
		int rc = region_read_exact(r, buf, (size_t)n * 32, off);
		if (rc < 0)
			return rc;
		for (uint64_t i = 0; i < n; i++) {
			const uint8_t *e = buf + i * 32;
			if (e[0] == 0x00) {
				*end = 1;
				return 0;
			}
			if (e[0] == 0xE5 || le16(e + 20) || le16(e + 26) || (e[11] & 0x3F) == 0x0F)
				continue;
			if ((e[11] & 0x18) == 0x08) {
				memcpy(out, e, 11);
				return 1;
			}
		}
		entries -= n;
		off += n * 32;
	}
	return 0;
}

/* The volume label the way blkid shows it: the root directory's label entry, else the
 * boot sector's; "NO NAME" means none. */
static int fat_label(const struct region *r, const struct fat_geom *g, const uint8_t *b,
		     char *out, size_t outlen)
{
	uint8_t name[11];
	int found = 0, end = 0, rc;
	if (g->bits != 32) {
		uint64_t root = ((uint64_t)g->rsvd + (uint64_t)g->nfats * g->fatsz) * g->sector;
		rc = fat_find_label(r, root, g->root_ents, name, &end);
		if (rc < 0)
			return rc;
		found = rc;
	} else {
		uint64_t fat = ((uint64_t)g->rsvd + (uint64_t)g->active_fat * g->fatsz) * g->sector;
		uint32_t c = g->root_clus;
		for (int i = 0; i < LABEL_MAX_CLUSTERS && !found && !end; i++) {
			uint64_t at = (g->first_data + (uint64_t)(c - 2) * g->spc) * g->sector;
			rc = fat_find_label(r, at, g->cluster / 32, name, &end);
			if (rc < 0)
				return rc;
			found = rc;
			uint8_t e[4];
			rc = region_read_exact(r, e, 4, fat + (uint64_t)c * 4);
			if (rc < 0)
				return rc;
			c = le32(e) & 0x0FFFFFFF;
			if (c < 2 || c > g->count + 1)
				break;  /* end of chain (or a damaged link: stop looking) */
		}
	}
	unsigned sig = b[g->bits == 32 ? 66 : 38];
	if ((!found || !memcmp(name, "NO NAME    ", 11)) && sig == 0x29) {
		memcpy(name, b + (g->bits == 32 ? 71 : 43), 11);
		found = 1;
	}
	if (!found || !memcmp(name, "NO NAME    ", 11))
		out[0] = '\0';
	else
		fat_name_text(name, out, outlen);
	return 0;
}

/* FAT entry n of the piece buf, which starts at FAT byte piece_off. */
static uint32_t fat_entry(const struct fat_geom *g, const uint8_t *buf, uint64_t piece_off,
			  uint64_t n)
{
	switch (g->bits) {
	case 12: {
		uint16_t v = le16(buf + (n + n / 2 - piece_off));
		return n & 1 ? v >> 4 : v & 0x0FFF;
	}
	case 16:
		return le16(buf + (2 * n - piece_off));
	default:
		return le32(buf + (4 * n - piece_off)) & 0x0FFFFFFF;
	}
}

static int fat_read_map(const struct region *r, struct extent_map *m, struct fs_facts *facts,
			struct imago_err *err)
{
	uint8_t b[512];
	struct fat_geom g;
	char why[160];
	int rc = region_read_exact(r, b, sizeof(b), 0);
	if (rc < 0)
		return err_set(err, rc, (int64_t)r->base, -1, -1, "FAT boot sector at byte 0: %s",
			       rc == -EIO ? "read error" : "region too short");
	if (fat_parse(b, &g, why, sizeof(why)) < 0)
		return err_set(err, -EBADMSG, (int64_t)r->base, -1, -1,
			       "FAT boot sector at byte 0: %s", why);
	uint64_t fs_size = g.tot_secs * g.sector;
	if (fs_size > r->size || fs_size > m->size)
		return err_set(err, -EBADMSG, (int64_t)r->base, -1, -1,
			       "FAT boot sector at byte 0: the filesystem is %" PRIu64
			       " bytes, the region only %" PRIu64 " (truncated?)", fs_size, r->size);

	memset(facts, 0, sizeof(*facts));
	snprintf(facts->type, sizeof(facts->type), "fat%d", g.bits);
	facts->block_size = g.cluster;
	facts->fs_size = fs_size;
	unsigned sig = b[g.bits == 32 ? 66 : 38];
	if (sig == 0x29 || sig == 0x28) {
		const uint8_t *s = b + (g.bits == 32 ? 67 : 39);
		snprintf(facts->uuid, sizeof(facts->uuid), "%02X%02X-%02X%02X", s[3], s[2], s[1],
			 s[0]);
	}
	rc = fat_label(r, &g, b, facts->label, sizeof(facts->label));
	if (rc < 0)
		return err_set(err, rc, -1, -1, -1,
			       "FAT root directory: %s while looking for the volume label",
			       rc == -EIO ? "read error" : "short read");

	uint64_t fat_off = ((uint64_t)g.rsvd + (uint64_t)g.active_fat * g.fatsz) * g.sector;
	uint64_t entries = (uint64_t)g.count + 2;
	uint64_t need = g.bits == 12 ? (entries * 3 + 1) / 2 : entries * (unsigned)(g.bits / 8);
	uint8_t *buf = malloc(need < FAT_PIECE ? need : FAT_PIECE);
	if (!buf)
		return err_set(err, -ENOMEM, -1, -1, -1, "FAT: out of memory");

	uint64_t data = g.first_data * g.sector;
	uint64_t free_clusters = 0, run_start = 0, run_len = 0;
	uint32_t fat1 = 0, root_entry = 1;
	int read_failed = 0;
	for (uint64_t piece = 0; piece < need && rc >= 0; piece += FAT_PIECE) {
		uint64_t len = need - piece < FAT_PIECE ? need - piece : FAT_PIECE;
		rc = region_read_exact(r, buf, (size_t)len, fat_off + piece);
		if (rc < 0) {
			err_set(err, rc, (int64_t)(r->base + fat_off + piece), -1, -1,
				"FAT at byte %" PRIu64 ": %s", fat_off + piece,
				rc == -EIO ? "read error" : "short read");
			read_failed = 1;
			break;
		}
		uint64_t lo, hi;  /* entries lying wholly in this piece */
		switch (g.bits) {
		case 12: lo = piece / 3 * 2; hi = (piece + len) * 2 / 3; break;
		case 16: lo = piece / 2; hi = (piece + len) / 2; break;
		default: lo = piece / 4; hi = (piece + len) / 4; break;
		}
		if (hi > entries)
			hi = entries;
		for (uint64_t n = lo; n < hi; n++) {
			uint32_t v = fat_entry(&g, buf, piece, n);
			if (n < 2) {
				if (n == 1)
					fat1 = v;
				continue;
			}
			if (n == g.root_clus)
				root_entry = v;
			if (v == 0) {
				if (!run_len)
					run_start = n;
				run_len++;
				free_clusters++;
				continue;
			}
			if (run_len) {
				rc = extent_map_set(m, data + (run_start - 2) * g.cluster,
						    run_len * g.cluster, IMAGO_FREE);
				run_len = 0;
				if (rc < 0)
					break;
			}
		}
	}
	if (rc >= 0 && run_len)
		rc = extent_map_set(m, data + (run_start - 2) * g.cluster, run_len * g.cluster,
				    IMAGO_FREE);
	free(buf);
	if (rc < 0) {
		if (read_failed)
			return rc;  /* err already set */
		return err_set(err, rc, -1, -1, -1, "FAT: cannot mark free clusters (%s)",
			       rc == -ENOMEM ? "out of memory" : "bad range");
	}
	/* The FAT32 root directory is always allocated; a free entry means the FAT is not
	 * the one that goes with this directory tree. */
	if (g.bits == 32 && root_entry == 0)
		return err_set(err, -EBADMSG, (int64_t)(r->base + fat_off + 4 * (uint64_t)g.root_clus),
			       -1, -1, "FAT at byte %" PRIu64 ": the root directory's cluster %" PRIu32
			       " is marked free", fat_off + 4 * (uint64_t)g.root_clus, g.root_clus);
	facts->used_bytes = fs_size - free_clusters * g.cluster;

	/*
	 * Dirty states, as fsck.fat 4.2 reads them: bit 0 of the boot sector's "reserved"
	 * byte (set by Linux while mounted read-write), and on FAT16/FAT32 the clean-shutdown
	 * bit of FAT[1] (bit 15 / bit 27; set by Windows while mounted). The bit below it
	 * (14 / 26) cleared means the volume met disk I/O errors.
	 */
	const char *what[3];
	int nwhat = 0;
	if (b[g.bits == 32 ? 65 : 37] & 0x01) {
		facts->flags |= FS_DIRTY;
		what[nwhat++] = "boot sector dirty bit set";
	}
	if (g.bits != 12) {
		uint32_t clean = g.bits == 16 ? 1u << 15 : 1u << 27;
		uint32_t noerr = g.bits == 16 ? 1u << 14 : 1u << 26;
		if (!(fat1 & clean)) {
			facts->flags |= FS_DIRTY;
			what[nwhat++] = "FAT[1] clean-shutdown bit clear";
		}
		if (!(fat1 & noerr)) {
			facts->flags |= FS_ERRORS;
			what[nwhat++] = "FAT[1] says the volume met disk I/O errors";
		}
	}
	if (nwhat)
		snprintf(facts->state, sizeof(facts->state), "%s%s%s%s%s (not cleanly unmounted?)",
			 what[0], nwhat > 1 ? ", " : "", nwhat > 1 ? what[1] : "",
			 nwhat > 2 ? ", " : "", nwhat > 2 ? what[2] : "");
	facts->freezable = 0;
	return 0;
}

const struct fs_driver fs_fat_driver = {
	.name = "fat",
	.probe = fat_probe,
	.read_map = fat_read_map,
};
