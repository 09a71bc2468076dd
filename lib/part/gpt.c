// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * GPT: reading the primary and backup headers and entry arrays (every CRC, size and
 * location checked; the backup used when the primary is damaged), and relocating the
 * backup to the end of a disk of another size (what `sgdisk -e` does, as pieces to write).
 *
 * References: UEFI specification ch. 5 "GUID Partition Table (GPT) Disk Layout";
 * formats.md §1.2-1.4. The CRC is zlib's crc32 (the same CRC-32 the specification uses).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "part/part_int.h"
#include "util/err.h"

#define GPT_SIG "EFI PART"
#define GPT_REVISION 0x00010000u
#define GPT_HEADER_SIZE 92u             /* the fields defined by the specification */
#define GPT_ENTRY_MIN 128u
#define GPT_MAX_ARRAY (4u << 20)        /* entry array bytes we accept (32768 x 128) */
#define GPT_ATTR_LEGACY_BOOT (1ull << 2)

enum { HDR_ABSENT, HDR_BAD, HDR_OK };

/* One header as read from the disk, with its entry array. */
struct gpt_hdr {
	int state;
	int header_ok;       /* the header itself is sound (only its array may be bad) */
	int io_error;
	char why[200];       /* what is wrong, for HDR_ABSENT / HDR_BAD */
	uint64_t my_lba, alt_lba, first_usable, last_usable, entries_lba;
	uint32_t n, esz, array_crc;
	uint8_t guid[16];
	uint8_t *array;      /* n * esz bytes, HDR_OK only */
	size_t array_len;
	uint64_t array_lbas;
};

static uint32_t crc32_of(const void *p, size_t n)
{
	return (uint32_t)crc32(0L, (const Bytef *)p, (uInt)n);
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static int bad(struct gpt_hdr *h, int state, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct gpt_hdr *h, int state, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h->why, sizeof(h->why), fmt, ap);
	va_end(ap);
	h->state = state;
	free(h->array);
	h->array = NULL;
	return state;
}

/* Read and check the header at lba and its entry array. */
static int load(const struct region *disk, uint32_t ss, uint64_t lba, struct gpt_hdr *h)
{
	uint64_t lbas = disk->size / ss;
	uint8_t buf[4096];

	memset(h, 0, sizeof(*h));
	h->my_lba = lba;
	if (lba >= lbas)
		return bad(h, HDR_ABSENT, "LBA %" PRIu64 " is past the end of the disk (%" PRIu64
			   " sectors)", lba, lbas);
	int rc = region_read_exact(disk, buf, ss, lba * ss);
	if (rc < 0) {
		h->io_error = rc != -EBADMSG;
		return bad(h, HDR_BAD, "cannot be read");
	}
	if (memcmp(buf, GPT_SIG, 8) != 0)
		return bad(h, HDR_ABSENT, "no GPT signature");

	uint32_t rev = part_le32(buf + 8), hs = part_le32(buf + 12), crc = part_le32(buf + 16);
	if (rev >> 16 != 1)
		return bad(h, HDR_BAD, "revision 0x%08" PRIx32 " is not 1.x", rev);
	if (hs < GPT_HEADER_SIZE || hs > ss)
		return bad(h, HDR_BAD, "header size %" PRIu32 " is not within %u..%" PRIu32, hs,
			   GPT_HEADER_SIZE, ss);
	memset(buf + 16, 0, 4);
	uint32_t calc = crc32_of(buf, hs);
	if (calc != crc)
		return bad(h, HDR_BAD, "header CRC32 0x%08" PRIx32 " does not match its "
			   "contents (0x%08" PRIx32 ")", crc, calc);

	uint64_t my = part_le64(buf + 24);
	h->alt_lba = part_le64(buf + 32);
	h->first_usable = part_le64(buf + 40);
	h->last_usable = part_le64(buf + 48);
	memcpy(h->guid, buf + 56, 16);
	h->entries_lba = part_le64(buf + 72);
	h->n = part_le32(buf + 80);
	h->esz = part_le32(buf + 84);
	h->array_crc = part_le32(buf + 88);
	if (my != lba)
		return bad(h, HDR_BAD, "it says it is at LBA %" PRIu64, my);
	if (h->esz < GPT_ENTRY_MIN || h->esz % 8)
		return bad(h, HDR_BAD, "entry size %" PRIu32 " is not a multiple of 8 of at "
			   "least 128", h->esz);
	uint64_t array = (uint64_t)h->n * h->esz;
	if (array > GPT_MAX_ARRAY)
		return bad(h, HDR_BAD, "entry array of %" PRIu32 " x %" PRIu32 " bytes is "
			   "larger than %u bytes", h->n, h->esz, GPT_MAX_ARRAY);
	if (h->first_usable > h->last_usable)
		return bad(h, HDR_BAD, "first usable LBA %" PRIu64 " is after the last usable "
			   "LBA %" PRIu64, h->first_usable, h->last_usable);
	h->array_len = (size_t)array;
	h->array_lbas = (array + ss - 1) / ss;
	if (h->entries_lba >= lbas || h->array_lbas > lbas - h->entries_lba)
		return bad(h, HDR_BAD, "entry array at LBA %" PRIu64 " (%" PRIu64 " sectors) "
			   "is past the end of the disk (%" PRIu64 " sectors)", h->entries_lba,
			   h->array_lbas, lbas);
	if (h->array_lbas && (h->entries_lba == 0 ||
			      (lba >= h->entries_lba && lba < h->entries_lba + h->array_lbas)))
		return bad(h, HDR_BAD, "entry array at LBA %" PRIu64 " (%" PRIu64 " sectors) "
			   "covers LBA 0 or the header", h->entries_lba, h->array_lbas);
	h->header_ok = 1;

	h->array = malloc(h->array_len ? h->array_len : 1);
	if (!h->array) {
		h->io_error = 1; /* reported as an error, not as damage */
		return bad(h, HDR_BAD, "no memory for the entry array");
	}
	rc = region_read_exact(disk, h->array, h->array_len, h->entries_lba * ss);
	if (rc < 0) {
		h->io_error = rc != -EBADMSG;
		return bad(h, HDR_BAD, "entry array at LBA %" PRIu64 " cannot be read",
			   h->entries_lba);
	}
	calc = crc32_of(h->array, h->array_len);
	if (calc != h->array_crc)
		return bad(h, HDR_BAD, "entry array CRC32 0x%08" PRIx32 " does not match the "
			   "entries at LBA %" PRIu64 " (0x%08" PRIx32 ")", h->array_crc,
			   h->entries_lba, calc);
	h->state = HDR_OK;
	return HDR_OK;
}

int gpt_signature_seen(const struct region *disk, uint32_t ss)
{
	uint8_t b[8];
	uint64_t lbas = disk->size / ss;

	if (lbas < 2)
		return 0;
	if (region_read_exact(disk, b, 8, ss) == 0 && memcmp(b, GPT_SIG, 8) == 0)
		return 1;
	return region_read_exact(disk, b, 8, (lbas - 1) * ss) == 0 && memcmp(b, GPT_SIG, 8) == 0;
}

/* ------------------------------------------------------------ names */

static size_t put_utf8(char *out, size_t at, size_t cap, uint32_t cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xC0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xE0 | cp >> 12);
		b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
		b[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (char)(0xF0 | cp >> 18);
		b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
		b[2] = (char)(0x80 | (cp >> 6 & 0x3F));
		b[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	if (at + n >= cap)
		return at; /* no room: stop before a partial character */
	memcpy(out + at, b, n);
	return at + n;
}

void part_utf16le_to_utf8(const uint8_t *in, size_t n, char *out, size_t cap)
{
	size_t at = 0;
	if (!cap)
		return;
	for (size_t i = 0; i < n; i++) {
		uint32_t u = part_le16(in + 2 * i);
		if (!u)
			break;
		if (u >= 0xD800 && u < 0xDC00 && i + 1 < n) {
			uint32_t lo = part_le16(in + 2 * (i + 1));
			if (lo >= 0xDC00 && lo < 0xE000) {
				u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
				i++;
			} else {
				u = 0xFFFD;
			}
		} else if (u >= 0xD800 && u < 0xE000) {
			u = 0xFFFD;
		}
		size_t next = put_utf8(out, at, cap, u);
		if (next == at)
			break;
		at = next;
	}
	out[at] = '\0';
}

/* Decode one UTF-8 sequence at s; sets *len (at least 1). U+FFFD when invalid. */
static uint32_t get_utf8(const unsigned char *s, size_t *len)
{
	uint32_t c = s[0], cp, min;
	size_t n;
	*len = 1;
	if (c < 0x80)
		return c;
	if ((c & 0xE0) == 0xC0) {
		n = 2; cp = c & 0x1F; min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3; cp = c & 0x0F; min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		n = 4; cp = c & 0x07; min = 0x10000;
	} else {
		return 0xFFFD;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0xFFFD;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	*len = n;
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
		return 0xFFFD;
	return cp;
}

void part_utf8_to_utf16le(const char *in, uint8_t *out, size_t n)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t u = 0;
	memset(out, 0, 2 * n);
	while (*s && u < n) {
		size_t len;
		uint32_t cp = get_utf8(s, &len);
		s += len;
		if (cp >= 0x10000) {
			if (u + 2 > n)
				break;
			cp -= 0x10000;
			out[2 * u] = (uint8_t)(0xD800 + (cp >> 10));
			out[2 * u + 1] = (uint8_t)((0xD800 + (cp >> 10)) >> 8);
			u++;
			cp = 0xDC00 + (cp & 0x3FF);
		}
		out[2 * u] = (uint8_t)cp;
		out[2 * u + 1] = (uint8_t)(cp >> 8);
		u++;
	}
}

/* ------------------------------------------------------------ reading */

/* Fields on which the two copies must agree. */
static void compare(struct part_table *t, const struct gpt_hdr *p, const struct gpt_hdr *b)
{
	char d[160] = "";
	size_t at = 0;
#define DIFF(cond, name)                                                                 \
	do {                                                                             \
		if ((cond) && at < sizeof(d))                                            \
			at += (size_t)snprintf(d + at, sizeof(d) - at, "%s%s",           \
					       at ? ", " : "", name);                     \
	} while (0)
	DIFF(memcmp(p->guid, b->guid, 16) != 0, "disk GUID");
	DIFF(p->first_usable != b->first_usable, "first usable LBA");
	DIFF(p->last_usable != b->last_usable, "last usable LBA");
	DIFF(p->n != b->n || p->esz != b->esz, "entry count or size");
	DIFF(p->array_crc != b->array_crc, "entries");
	DIFF(p->alt_lba != b->my_lba || b->alt_lba != 1, "alternate LBAs");
#undef DIFF
	if (at) {
		t->flags |= PART_GPT_BACKUP_BAD;
		part_warn(t, "the backup GPT at LBA %" PRIu64 " differs from the primary (%s); "
			  "the primary was used", b->my_lba, d);
	}
}

/* A hybrid MBR's entries should each be a copy of a GPT partition; one that is not
 * describes bytes the table read leaves out (flagged, so the caller copies the whole
 * disk). */
static void check_hybrid(struct part_table *t, const uint8_t *s0)
{
	uint64_t ss = t->sector_size;
	int has_ee = 0;
	for (int i = 0; i < 4 && mbr_has_signature(s0); i++)
		has_ee |= s0[MBR_TABLE_OFF + i * MBR_ENTRY_SIZE + 4] == MBR_TYPE_GPT &&
			  part_le32(s0 + MBR_TABLE_OFF + i * MBR_ENTRY_SIZE + 12);
	if (!has_ee)
		return; /* no MBR beside the GPT: its entries (if any) mean nothing */
	for (int i = 0; i < 4; i++) {
		const uint8_t *p = s0 + MBR_TABLE_OFF + i * MBR_ENTRY_SIZE;
		uint64_t start = (uint64_t)part_le32(p + 8) * ss, size = (uint64_t)part_le32(p + 12) * ss;
		if (!size || p[4] == MBR_TYPE_GPT)
			continue;
		t->flags |= PART_HYBRID_MBR;
		int match = 0, clash = 0;
		for (size_t k = 0; k < t->n_entries; k++) {
			const struct part_entry *e = &t->entries[k];
			if (e->start == start && e->size == size)
				match = 1;
			else if (e->start < start + size && start < e->start + e->size)
				clash = 1;
		}
		for (size_t k = 0; k < t->n_areas && !match; k++) {
			const struct part_area *a = &t->areas[k];
			if (a->start && a->start < start + size && start < a->start + a->size)
				clash = 1;
		}
		if (match)
			continue;
		/* Bytes only the MBR describes: not imaged or relocated as a partition. */
		t->flags |= clash ? PART_OVERLAP : PART_ENTRY_IGNORED;
		part_warn(t, "hybrid MBR entry %d (type 0x%02x, bytes %" PRIu64 "+%" PRIu64 ") "
			  "%s", i + 1, p[4], start, size,
			  clash ? "overlaps GPT partitions or the GPT without matching one"
				: "matches no GPT partition");
	}
}

static int parse_entries(struct part_table *t, const struct gpt_hdr *h, struct imago_err *err)
{
	uint64_t ss = t->sector_size;
	size_t used = 0;

	for (uint32_t i = 0; i < h->n; i++) {
		const uint8_t *p = h->array + (size_t)i * h->esz;
		if (all_zero(p, 16))
			continue;
		if (++used > PART_MAX_ENTRIES)
			return err_set(err, -E2BIG, -1, (int64_t)(h->entries_lba * ss), -1,
				       "GPT at LBA %" PRIu64 ": more than %d partitions in use "
				       "(entry %" PRIu32 ")", h->my_lba, PART_MAX_ENTRIES, i + 1);
		uint64_t first = part_le64(p + 32), last = part_le64(p + 40);
		if (last < first || last >= UINT64_MAX / ss) {
			t->flags |= PART_ENTRY_IGNORED;
			part_warn(t, "GPT entry %" PRIu32 ": LBAs %" PRIu64 "..%" PRIu64 " make no "
				  "partition; entry left out", i + 1, first, last);
			continue;
		}
		struct part_entry e = {
			.number = i + 1,
			.start = first * ss,
			.size = (last - first + 1) * ss,
			.gpt_attrs = part_le64(p + 48),
		};
		memcpy(e.type_guid, p, 16);
		memcpy(e.part_guid, p + 16, 16);
		if (e.gpt_attrs & GPT_ATTR_LEGACY_BOOT)
			e.flags |= PART_BOOTABLE;
		part_utf16le_to_utf8(p + 56, 36, e.name, sizeof(e.name));
		if (first < h->first_usable || last > h->last_usable)
			part_warn(t, "GPT partition %u (LBA %" PRIu64 "..%" PRIu64 ") lies outside "
				  "the usable LBAs %" PRIu64 "..%" PRIu64, e.number, first, last,
				  h->first_usable, h->last_usable);
		int rc = part_add_entry(t, &e, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int add_areas(struct part_table *t, const uint8_t *s0, const struct gpt_hdr *p,
		     const struct gpt_hdr *b, const struct gpt_hdr *h, struct imago_err *err)
{
	uint64_t ss = t->sector_size, lbas = t->disk_size / ss;
	int has_ee = 0, has_other = 0, rc;

	for (int i = 0; i < 4 && mbr_has_signature(s0); i++) {
		const uint8_t *e = s0 + MBR_TABLE_OFF + i * MBR_ENTRY_SIZE;
		if (!part_le32(e + 12))
			continue;
		if (e[4] == MBR_TYPE_GPT)
			has_ee = 1;
		else
			has_other = 1;
	}
	rc = part_add_area(t, 0, ss, !has_ee ? "MBR" : has_other ? "hybrid MBR" :
		      "protective MBR", err);
	if (rc < 0)
		return rc;
	rc = part_add_area(t, ss, ss, p->state == HDR_OK ? "GPT header" : "GPT header (damaged)",
			   err);
	if (rc < 0)
		return rc;
	if (p->state == HDR_OK) {
		rc = part_add_area(t, p->entries_lba * ss, p->array_lbas * ss, "GPT entries", err);
	} else if (h->first_usable > 2) {
		/* Where the damaged primary's entries most likely are. */
		uint64_t end = h->first_usable < lbas ? h->first_usable : lbas;
		if (end > 2)
			rc = part_add_area(t, 2 * ss, (end - 2) * ss, "GPT entries (damaged)", err);
	}
	if (rc < 0)
		return rc;
	if (b->state == HDR_OK) {
		rc = part_add_area(t, b->entries_lba * ss, b->array_lbas * ss,
				   "backup GPT entries", err);
		if (rc == 0)
			rc = part_add_area(t, b->my_lba * ss, ss, "backup GPT header", err);
	} else if (h->alt_lba > 1 && h->alt_lba < lbas) {
		/* The damaged backup where the primary says it is: kept as it is. */
		rc = part_add_area(t, h->alt_lba * ss, ss, "backup GPT header (damaged)", err);
		if (rc == 0 && h->alt_lba > h->array_lbas &&
		    h->alt_lba - h->array_lbas > h->last_usable)
			rc = part_add_area(t, (h->alt_lba - h->array_lbas) * ss,
					   h->array_lbas * ss, "backup GPT entries (damaged)", err);
	}
	return rc;
}

int gpt_read(const struct region *disk, uint32_t ss, const uint8_t *s0, struct part_table *t,
	     struct imago_err *err)
{
	uint64_t lbas = disk->size / ss;
	const char *dname = disk->name ? disk->name : "disk";
	struct gpt_hdr p, b, tmp;
	int rc = 0;

	if (lbas < 3)
		return 0;
	uint64_t last = lbas - 1;
	load(disk, ss, 1, &p);

	/* The backup: where a sound primary header says, else at the end of the disk. What
	 * went wrong is reported for the first place tried (or the first with a header). */
	uint64_t cand[2], why_at;
	int nc = 0, b_sig = 0, b_io = 0, why_state = HDR_ABSENT;
	char why[sizeof(p.why)] = "missing";
	if (p.header_ok && p.alt_lba > 1)
		cand[nc++] = p.alt_lba;
	if (!nc || cand[0] != last)
		cand[nc++] = last;
	why_at = cand[0];
	memset(&b, 0, sizeof(b));
	b.state = HDR_ABSENT;
	for (int k = 0; k < nc; k++) {
		load(disk, ss, cand[k], &tmp);
		if (tmp.state == HDR_OK) {
			b = tmp;
			break;
		}
		b_sig |= tmp.state != HDR_ABSENT;
		b_io |= tmp.io_error;
		if (k == 0 || (why_state == HDR_ABSENT && tmp.state != HDR_ABSENT)) {
			why_at = cand[k];
			why_state = tmp.state;
			memcpy(why, tmp.why, sizeof(why));
		}
		free(tmp.array);
	}

	if (p.state != HDR_OK && b.state != HDR_OK) {
		if (p.state == HDR_ABSENT && !b_sig)
			goto out; /* no GPT here */
		rc = p.io_error || b_io ? -EIO : -EBADMSG;
		err_set(err, rc, -1, (int64_t)ss, -1,
			"%s: GPT (%" PRIu32 "-byte sectors) unusable: primary header at LBA 1: %s; "
			"backup header at LBA %" PRIu64 ": %s", dname, ss, p.why, why_at, why);
		goto out;
	}

	const struct gpt_hdr *h = p.state == HDR_OK ? &p : &b;
	t->scheme = PART_GPT;
	t->sector_size = ss;
	memcpy(t->disk_guid, h->guid, 16);
	t->first_usable_lba = h->first_usable;
	t->last_usable_lba = h->last_usable;
	t->alternate_lba = h->alt_lba;
	t->entries_lba = h->entries_lba;
	t->n_gpt_entries = h->n;
	t->gpt_entry_size = h->esz;
	t->gpt_entries_crc = h->array_crc;
	t->header_lba = h->my_lba;
	t->backup_lba = b.state == HDR_OK ? b.my_lba : 0;

	if (p.state == HDR_OK && b.state == HDR_OK) {
		compare(t, &p, &b);
		if (b.my_lba != p.alt_lba)
			part_warn(t, "backup GPT header is at LBA %" PRIu64 ", not at LBA %" PRIu64
				  " where the primary says (%s)", b.my_lba, p.alt_lba, why);
		else if (b.my_lba != last)
			part_warn(t, "backup GPT header is at LBA %" PRIu64 ", not at the last LBA %"
				  PRIu64 ": the disk is larger than the GPT says", b.my_lba, last);
	} else if (p.state == HDR_OK) {
		t->flags |= PART_GPT_BACKUP_BAD;
		part_warn(t, "backup GPT header at LBA %" PRIu64 ": %s; the primary was used",
			  why_at, why);
	} else {
		t->flags |= PART_GPT_BACKUP_USED;
		part_warn(t, "primary GPT header at LBA 1: %s; the backup at LBA %" PRIu64
			  " was used", p.why, b.my_lba);
		if (b.alt_lba != 1)
			part_warn(t, "the backup GPT header says the primary is at LBA %" PRIu64,
				  b.alt_lba);
	}

	rc = add_areas(t, s0, &p, &b, h, err);
	if (rc == 0)
		rc = parse_entries(t, h, err);
	if (rc == 0) {
		check_hybrid(t, s0);
		rc = 1;
	}
out:
	free(p.array);
	free(b.array);
	return rc;
}

/* ------------------------------------------------------------ relocation */

static void build_header(uint8_t *h, const struct part_table *t, uint64_t my, uint64_t alt,
			 uint64_t last_usable, uint64_t entries, uint32_t array_crc)
{
	memcpy(h, GPT_SIG, 8);
	part_put_le32(h + 8, GPT_REVISION);
	part_put_le32(h + 12, GPT_HEADER_SIZE);
	part_put_le64(h + 24, my);
	part_put_le64(h + 32, alt);
	part_put_le64(h + 40, t->first_usable_lba);
	part_put_le64(h + 48, last_usable);
	memcpy(h + 56, t->disk_guid, 16);
	part_put_le64(h + 72, entries);
	part_put_le32(h + 80, t->n_gpt_entries);
	part_put_le32(h + 84, t->gpt_entry_size);
	part_put_le32(h + 88, array_crc);
	part_put_le32(h + 16, crc32_of(h, GPT_HEADER_SIZE));
}

/* The CHS address of an LBA with 255 heads and 63 sectors a track, or FE FF FF. */
static void put_chs(uint8_t *p, uint64_t lba)
{
	uint64_t c = lba / (255 * 63), r = lba % (255 * 63);
	if (c > 1023) {
		p[0] = 0xFE;
		p[1] = 0xFF;
		p[2] = 0xFF;
		return;
	}
	p[0] = (uint8_t)(r / 63);
	p[1] = (uint8_t)((r % 63 + 1) | ((c >> 2) & 0xC0));
	p[2] = (uint8_t)c;
}

/* Make the 0xEE entry of LBA 0 reach the new end (UEFI: size = disk sectors - 1, clamped
 * at 0xFFFFFFFF). In a hybrid MBR only a 0xEE entry that reached the old end moves. */
static void fix_pmbr(uint8_t *s, uint64_t old_lbas, uint64_t new_lbas)
{
	int hybrid = 0;
	if (!mbr_has_signature(s))
		return;
	for (int i = 0; i < 4; i++) {
		const uint8_t *p = s + MBR_TABLE_OFF + i * MBR_ENTRY_SIZE;
		if (part_le32(p + 12) && p[4] != MBR_TYPE_GPT)
			hybrid = 1;
	}
	for (int i = 0; i < 4; i++) {
		uint8_t *p = s + MBR_TABLE_OFF + i * MBR_ENTRY_SIZE;
		uint64_t start = part_le32(p + 8), count = part_le32(p + 12);
		if (p[4] != MBR_TYPE_GPT || !count)
			continue; /* an empty entry stays empty, whatever its type */
		int reached = start + count >= old_lbas || count == 0xFFFFFFFF;
		if ((hybrid && !reached) || start >= new_lbas)
			continue;
		uint64_t n = new_lbas - start;
		if (n > 0xFFFFFFFF)
			n = 0xFFFFFFFF;
		part_put_le32(p + 12, (uint32_t)n);
		put_chs(p + 5, start + n - 1);
	}
}

/* The entry array from t's partitions (when the primary array is not at hand). */
static void rebuild_array(const struct part_table *t, uint8_t *array)
{
	uint64_t ss = t->sector_size;
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct part_entry *e = &t->entries[i];
		if (e->number == 0 || e->number > t->n_gpt_entries || !e->size)
			continue;
		uint8_t *p = array + (size_t)(e->number - 1) * t->gpt_entry_size;
		memcpy(p, e->type_guid, 16);
		memcpy(p + 16, e->part_guid, 16);
		part_put_le64(p + 32, e->start / ss);
		part_put_le64(p + 40, (e->start + e->size) / ss - 1);
		part_put_le64(p + 48, e->gpt_attrs);
		part_utf8_to_utf16le(e->name, p + 56, 36);
	}
}

int gpt_relocate(const struct part_table *t, const uint8_t *head, size_t head_len,
		 uint64_t new_size,
		 int (*write)(void *opaque, const void *buf, size_t len, uint64_t offset),
		 void *opaque, struct imago_err *err)
{
	if (!t || t->scheme != PART_GPT || !write || !head)
		return err_set(err, -EINVAL, -1, -1, -1, "gpt_relocate: not a GPT table");
	uint64_t ss = t->sector_size;
	if (ss < 512 || ss > 4096 || (ss & (ss - 1)))
		return err_set(err, -EINVAL, -1, -1, -1, "gpt_relocate: sector size %" PRIu64, ss);
	uint64_t array_len = (uint64_t)t->n_gpt_entries * t->gpt_entry_size;
	if (t->gpt_entry_size < GPT_ENTRY_MIN || array_len > GPT_MAX_ARRAY)
		return err_set(err, -EINVAL, -1, -1, -1, "gpt_relocate: entry array of %" PRIu32
			       " x %" PRIu32 " bytes", t->n_gpt_entries, t->gpt_entry_size);
	if (head_len < ss)
		return err_set(err, -EINVAL, -1, 0, -1, "gpt_relocate: %zu bytes given, LBA 0 "
			       "needs %" PRIu64, head_len, ss);

	uint64_t min = part_min_disk_size(t);
	if (new_size < min) {
		unsigned last_n = 0;
		uint64_t last_end = 0;
		for (size_t i = 0; i < t->n_entries; i++) {
			uint64_t e = t->entries[i].start + t->entries[i].size;
			if (e > last_end) {
				last_end = e;
				last_n = t->entries[i].number;
			}
		}
		if (last_n)
			return err_set(err, -ENOSPC, -1, (int64_t)last_end, -1,
				       "a %" PRIu64 "-byte disk is too small for this GPT: "
				       "partition %u ends at byte %" PRIu64 ", and the backup GPT "
				       "follows it; the disk needs at least %" PRIu64 " bytes",
				       new_size, last_n, last_end, min);
		return err_set(err, -ENOSPC, -1, -1, -1, "a %" PRIu64 "-byte disk is too small "
			       "for this GPT: it needs at least %" PRIu64 " bytes", new_size, min);
	}

	uint64_t array_lbas = (array_len + ss - 1) / ss;
	uint64_t new_last = new_size / ss - 1;
	uint64_t new_last_usable = new_last - array_lbas - 1;
	uint64_t backup_entries = new_last - array_lbas;
	int from_head = !(t->flags & PART_GPT_BACKUP_USED);
	uint64_t pe = from_head ? t->entries_lba : 2;
	if (pe < 2 || pe > t->first_usable_lba || array_lbas > t->first_usable_lba - pe)
		return err_set(err, -EBADMSG, -1, (int64_t)(pe * ss), -1,
			       "gpt_relocate: the primary entry array (LBA %" PRIu64 ", %" PRIu64
			       " sectors) does not fit before the first usable LBA %" PRIu64, pe,
			       array_lbas, t->first_usable_lba);

	uint8_t *array = calloc(1, array_lbas * ss + 3 * ss);
	if (!array)
		return err_set(err, -ENOMEM, -1, -1, -1, "gpt_relocate: no memory");
	uint8_t *lba0 = array + array_lbas * ss, *hdr = lba0 + ss, *zero = hdr + ss;
	int rc;

	if (from_head) {
		if (pe * ss > head_len || array_len > head_len - pe * ss) {
			rc = err_set(err, -EINVAL, -1, (int64_t)(pe * ss), -1,
				     "gpt_relocate: %zu bytes given; the entry array ends at byte %"
				     PRIu64, head_len, pe * ss + array_len);
			goto out;
		}
		memcpy(array, head + pe * ss, array_len);
		uint32_t crc = crc32_of(array, array_len);
		if (crc != t->gpt_entries_crc) {
			rc = err_set(err, -EBADMSG, -1, (int64_t)(pe * ss), -1,
				     "gpt_relocate: the entry array given (CRC32 0x%08" PRIx32 ") is "
				     "not the one read (0x%08" PRIx32 ")", crc, t->gpt_entries_crc);
			goto out;
		}
	} else {
		rebuild_array(t, array);
	}
	uint32_t array_crc = crc32_of(array, array_len);

	memcpy(lba0, head, ss);
	fix_pmbr(lba0, t->disk_size / ss, new_size / ss);
	rc = write(opaque, lba0, ss, 0);
	if (rc)
		goto out;
	build_header(hdr, t, 1, new_last, new_last_usable, pe, array_crc);
	rc = write(opaque, hdr, ss, ss);
	if (rc)
		goto out;
	rc = write(opaque, array, array_lbas * ss, pe * ss);
	if (rc)
		goto out;
	rc = write(opaque, array, array_lbas * ss, backup_entries * ss);
	if (rc)
		goto out;
	memset(hdr, 0, ss);
	build_header(hdr, t, new_last, 1, new_last_usable, backup_entries, array_crc);
	rc = write(opaque, hdr, ss, new_last * ss);
	if (rc)
		goto out;

	/* The old backup header, now inside the disk: zeroed where no partition is. */
	uint64_t olds[2] = { t->backup_lba, from_head ? t->alternate_lba : t->header_lba };
	for (int k = 0; k < 2; k++) {
		uint64_t o = olds[k];
		if ((k == 1 && o == olds[0]) || o < t->first_usable_lba || o >= backup_entries)
			continue;
		int covered = 0;
		for (size_t i = 0; i < t->n_entries && !covered; i++)
			covered = t->entries[i].start < (o + 1) * ss &&
				  o * ss < t->entries[i].start + t->entries[i].size;
		if (covered)
			continue;
		rc = write(opaque, zero, ss, o * ss);
		if (rc)
			goto out;
	}
out:
	free(array);
	return rc;
}
