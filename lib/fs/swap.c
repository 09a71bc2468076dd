// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * Linux swap areas (mkswap): the header page is kept, everything after it is FREE.
 *
 * What is in a swap area is meaningless once the system that used it has shut down, so
 * only page 0 matters (include/linux/swap.h, union swap_header):
 *   0     bootbits[1024]   (may hold a boot loader or disk label: kept)
 *   1024  u32 version (1), u32 last_page, u32 nr_badpages, u8 uuid[16], char label[16],
 *         u32 padding[117], u32 badpages[] from 1536
 *   page_size - 10        the signature "SWAPSPACE2" ("SWAP-SPACE": the old v0 format)
 * in the byte order of the machine that made it; page_size is that machine's page size,
 * found where the signature is (4, 8, 16, 32 or 64 KiB, as libblkid looks).
 *
 * Hibernation writes the resume image into the swap area and replaces the signature:
 * "S1SUSPEND" (the kernel's swsusp since 2.6; "LINHIB0001" in older kernels), "S2SUSPEND"
 * and "ULSUSPEND" (uswsusp), or keeps it and puts the TuxOnIce magic in the first bytes.
 * These are the signatures libblkid reports as swsuspend. Such an area holds a system
 * waiting to resume: FS_HIBERNATED, and every byte stays USED.
 *
 * Written by hand: libblkid identifies swap but does not give last_page, and the header
 * is a handful of fixed fields.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs.h"
#include "util/err.h"

#define HDR_OFFSET 1024
#define BADPAGES_OFFSET 1536
#define SIG_LEN 10
#define PAGE_MAX 65536

enum sig_kind { SIG_NONE, SIG_V1, SIG_V0, SIG_HIBERNATION };

static const struct {
	const char *text;
	size_t len;           /* bytes compared, as libblkid compares them */
	enum sig_kind kind;
} signatures[] = {
	{ "SWAPSPACE2", 10, SIG_V1 },
	{ "SWAP-SPACE", 10, SIG_V0 },
	{ "S1SUSPEND", 9, SIG_HIBERNATION },
	{ "S2SUSPEND", 9, SIG_HIBERNATION },
	{ "ULSUSPEND", 9, SIG_HIBERNATION },
	{ "LINHIB0001", 10, SIG_HIBERNATION },
};

/* TuxOnIce keeps the swap signature and marks the area at byte 0. */
static const uint8_t toi_magic[8] = { 0xed, 0xc3, 0x02, 0xe9, 0x98, 0x56, 0xe5, 0x0c };

struct swap_head {
	uint32_t page_size;
	enum sig_kind kind;
	const char *sig;      /* the signature found */
	int tuxonice;
	int header_ok;        /* version 1 in either byte order, last_page != 0 */
	int big_endian;
	uint32_t last_page, nr_badpages;
	int ids_ok;           /* the padding libblkid checks is zero: uuid/label are real */
	uint8_t uuid[16];
	char label[17];
};

static uint32_t get32(const uint8_t *p, int big_endian)
{
	if (big_endian)
		return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static int swap_head_parse(const struct region *r, uint8_t *page, struct swap_head *h)
{
	ssize_t got = region_pread(r, page, PAGE_MAX, 0);
	if (got < (ssize_t)BADPAGES_OFFSET)
		return -1;
	for (uint32_t ps = 4096; ps <= PAGE_MAX && ps <= (uint64_t)got; ps *= 2) {
		for (size_t i = 0; i < sizeof(signatures) / sizeof(signatures[0]); i++) {
			if (memcmp(page + ps - SIG_LEN, signatures[i].text, signatures[i].len))
				continue;
			h->page_size = ps;
			h->kind = signatures[i].kind;
			h->sig = signatures[i].text;
			goto found;
		}
	}
	return -1;
found:
	h->tuxonice = !memcmp(page, toi_magic, sizeof(toi_magic));
	const uint8_t *hdr = page + HDR_OFFSET;
	if (get32(hdr, 0) == 1)
		h->big_endian = 0;
	else if (get32(hdr, 1) == 1)
		h->big_endian = 1;
	else
		return 0;
	h->last_page = get32(hdr + 4, h->big_endian);
	h->nr_badpages = get32(hdr + 8, h->big_endian);
	h->header_ok = h->last_page != 0;
	/* libblkid's sanity check before it believes uuid and label: padding[32], [33] zero. */
	h->ids_ok = !memcmp(hdr + 44 + 32 * 4, "\0\0\0\0\0\0\0\0", 8);
	memcpy(h->uuid, hdr + 12, 16);
	memcpy(h->label, hdr + 28, 16);
	h->label[16] = '\0';
	return 0;
}

/* Find the signature in the first page of r (up to PAGE_MAX bytes from byte 0). Returns 0
 * and fills h; -1 when there is no swap signature (or the region cannot be read). */
static int swap_head_read(const struct region *r, struct swap_head *h)
{
	memset(h, 0, sizeof(*h));
	uint8_t *page = malloc(PAGE_MAX);  /* not on the stack: callers may run on small ones */
	if (!page)
		return -1;
	int rc = swap_head_parse(r, page, h);
	free(page);
	return rc;
}

static int swap_probe(const struct region *r)
{
	struct swap_head h;
	if (swap_head_read(r, &h) < 0)
		return 0;
	/* A v1 signature with no valid header is not swap (libblkid agrees); v0 and
	 * hibernation images are recognised so that read_map can say what they are. */
	if (h.kind == SIG_V1 && !h.header_ok)
		return 0;
	return 100;
}

static void format_uuid(const uint8_t u[16], char *out, size_t len)
{
	static const uint8_t zero[16];
	if (!memcmp(u, zero, 16)) {
		out[0] = '\0';
		return;
	}
	snprintf(out, len,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
		 u[12], u[13], u[14], u[15]);
}

static int swap_read_map(const struct region *r, struct extent_map *m, struct fs_facts *facts,
			 struct imago_err *err)
{
	struct swap_head h;

	if (swap_head_read(r, &h) < 0)
		return err_set(err, -EBADMSG, 0, -1, -1,
			       "swap: no swap signature at the end of a 4-64 KiB first page");
	int64_t sig_at = (int64_t)h.page_size - SIG_LEN;
	if (h.kind == SIG_V0)
		return err_set(err, -EOPNOTSUPP, sig_at, -1, -1,
			       "swap signature SWAP-SPACE at byte %" PRId64 ": the version 0 format, "
			       "unused since Linux 2.5; kept as it is", sig_at);

	memset(facts, 0, sizeof(*facts));
	snprintf(facts->type, sizeof(facts->type), "swap");
	facts->block_size = h.page_size;

	if (h.header_ok) {
		if (h.ids_ok) {
			size_t i = 0;
			for (; h.label[i] && i + 1 < sizeof(facts->label); i++) {
				unsigned char c = (unsigned char)h.label[i];
				facts->label[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
			}
			facts->label[i] = '\0';
			format_uuid(h.uuid, facts->uuid, sizeof(facts->uuid));
		}
		facts->fs_size = ((uint64_t)h.last_page + 1) * h.page_size;
		if (facts->fs_size > r->size)
			return err_set(err, -EBADMSG, HDR_OFFSET + 4, -1, -1,
				       "swap header at byte %d: last page %" PRIu32 " of %" PRIu32
				       " bytes puts the end at byte %" PRIu64 ", past the end of its "
				       "region (%" PRIu64 " bytes): truncated image or wrong partition "
				       "size", HDR_OFFSET, h.last_page, h.page_size, facts->fs_size,
				       r->size);
		/* The kernel's limit (MAX_SWAP_BADPAGES): the list ends before the signature. */
		uint32_t max_bad = (h.page_size - SIG_LEN - BADPAGES_OFFSET) / 4;
		if (h.nr_badpages > max_bad)
			return err_set(err, -EBADMSG, HDR_OFFSET + 8, -1, -1,
				       "swap header at byte %d: %" PRIu32 " bad pages listed, more "
				       "than the %" PRIu32 " a %" PRIu32 "-byte page holds", HDR_OFFSET,
				       h.nr_badpages, max_bad, h.page_size);
	} else if (h.kind == SIG_HIBERNATION) {
		/* A hibernation signature over a header we cannot read: the area is the whole
		 * region as far as we can tell; all of it stays USED anyway. */
		facts->fs_size = r->size / h.page_size * h.page_size;
	} else {
		return err_set(err, -EBADMSG, HDR_OFFSET, -1, -1,
			       "swap header at byte %d: version is not 1 or last page is 0",
			       HDR_OFFSET);
	}

	if (h.kind == SIG_HIBERNATION || h.tuxonice) {
		facts->flags = FS_HIBERNATED;
		snprintf(facts->state, sizeof(facts->state),
			 "hibernation image (%s signature): a system waiting to resume from it; "
			 "every byte kept", h.tuxonice ? "TuxOnIce" : h.sig);
		facts->used_bytes = facts->fs_size;
		return 0;
	}

	facts->used_bytes = h.page_size;
	int rc = extent_map_set(m, h.page_size, facts->fs_size - h.page_size, IMAGO_FREE);
	if (rc < 0)
		return err_set(err, rc, -1, -1, -1, "swap: marking the swap area free failed");
	return 0;
}

const struct fs_driver fs_swap_driver = {
	.name = "swap",
	.probe = swap_probe,
	.read_map = swap_read_map,
};
