/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target for the copy-on-write overlay (lib/backend/overlay.c, docs/OVERLAY.md): the
 * input is an overlay file. It is opened on a fake image whose size and identity are the
 * ones its header names (so the binding check passes and the record scan is reached),
 * read all over, written, closed, opened again and read again.
 *
 * Every record carries XXH3 checksums a mutating fuzzer cannot get right, so each input
 * runs twice: as it is, and with the header checksum and the checksums of every record
 * whose first data byte is even recomputed (the others stay torn, as after a crash).
 *
 * Checked, besides "no crash, no leak, no hang" (a disagreement aborts):
 *   - a block the overlay was never written through this run reads as the overlay's data
 *     or the image's, never anything else: its bytes are the fake image's pattern, or the
 *     bytes of one valid record of that block in the input;
 *   - bytes written read back, before and after closing and opening again;
 *   - reads return the length asked (clipped at the end), or an error.
 * Work is bounded: at most READS reads and WRITES writes per run, whatever the header says.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/overlay.h"
#include "fuzz.h"
#include "image/format.h"

#define READS 64
#define WRITES 8
#define INPUT_MAX (4u << 20)

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 131 + (off >> 9));
}

static ssize_t fake_pread(struct backend *b, void *buf, size_t len, uint64_t off)
{
	if (off >= b->size)
		return 0;
	if (len > b->size - off)
		len = (size_t)(b->size - off);
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = pattern(off + i);
	return (ssize_t)len;
}

static void fake_close(struct backend *b)
{
}

static const struct backend_ops fake_ops = { .pread = fake_pread, .close = fake_close };

static void finding(const char *what)
{
	fprintf(stderr, "fuzz_overlay: %s\n", what);
	abort();
}

static uint64_t rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 11;
}

/* Is buf (len bytes at device offset off, inside one block) the image's bytes, or the
 * bytes of a valid record of that block in the input? */
static int plausible(const uint8_t *in, size_t size, uint32_t bs, uint64_t id, const uint8_t *buf,
		     size_t len, uint64_t off)
{
	size_t i = 0;
	while (i < len && buf[i] == pattern(off + i))
		i++;
	if (i == len)
		return 1;
	uint64_t block = off / bs, in_block = off % bs;
	size_t rec = OVL_REC_HDR_SIZE + bs;
	for (size_t at = OVL_HEADER_SIZE; at + rec <= size; at += rec) {
		struct ovl_record r;
		if (ovl_record_decode(in + at, &r) == 0 && r.block == block && r.overlay_id == id &&
		    fmt_xxh3(in + at + OVL_REC_HDR_SIZE, bs, block) == r.data_checksum &&
		    memcmp(in + at + OVL_REC_HDR_SIZE + in_block, buf, len) == 0)
			return 1;
	}
	return 0;
}

static void one(const uint8_t *data, size_t size)
{
	struct ovl_header h;
	const char *why;
	if (size < OVL_HEADER_USED || ovl_header_decode(data, &h, &why) < 0) {
		/* still goes through open, which must refuse it */
		h.device_size = 1 << 20;
		memset(h.identity, 0, sizeof(h.identity));
		h.block_size = 4096;
		h.overlay_id = 0;
	}
	struct backend *lower = calloc(1, sizeof(*lower));
	lower->ops = &fake_ops;
	lower->size = h.device_size;
	lower->sector_size = 512;
	memcpy(lower->identity, h.identity, BACKEND_ID_LEN);
	lower->name = strdup("fake");
	int fd = memfd_create("ovl", 0);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		finding("memfd");
	int fd2 = dup(fd);
	struct backend *b;
	struct imago_err err;
	int r = overlay_open_fd(lower, fd, "fuzz", 0, 0, &b, &err);
	if (r < 0) {
		if (!err.msg[0] || err.code != r)
			finding("a failing open did not fill err");
		close(fd);
		close(fd2);
		backend_close(lower);
		return;
	}
	uint64_t dsize = b->size, s = size ^ h.overlay_id;
	uint32_t bs = h.block_size;
	uint8_t *buf = malloc(bs + 1000);
	/* reads inside one block each, at offsets spread over the device and at its end */
	for (int i = 0; i < READS && dsize; i++) {
		uint64_t off = i < READS / 2 ? rnd(&s) % dsize : (dsize > 4096 ? dsize - 1 - rnd(&s) % 4096 : rnd(&s) % dsize);
		size_t len = 1 + (size_t)(rnd(&s) % bs);
		if (len > bs - off % bs)
			len = (size_t)(bs - off % bs);
		ssize_t n = backend_pread(b, buf, len, off);
		size_t want = len < dsize - off ? len : (size_t)(dsize - off);
		if (n >= 0 && (size_t)n != want)
			finding("read returned the wrong length");
		if (n > 0 && !plausible(data, size, bs, h.overlay_id, buf, (size_t)n, off))
			finding("a read returned bytes that are neither the image's nor a valid record's");
	}
	/* writes, read back now and after reopening */
	uint64_t woff[WRITES];
	size_t wlen[WRITES];
	uint8_t wval[WRITES];
	int nw = 0;
	for (int i = 0; i < WRITES && dsize > 1000; i++) {
		uint64_t off = rnd(&s) % (dsize - 1000);
		size_t len = 1 + (size_t)(rnd(&s) % 999);
		/* disjoint writes only, so each can be checked on its own */
		int overlap = 0;
		for (int k = 0; k < nw; k++)
			if (off < woff[k] + wlen[k] && woff[k] < off + len)
				overlap = 1;
		if (overlap)
			continue;
		memset(buf, 0xC0 + i, len);
		ssize_t n = b->ops->pwrite(b, buf, len, off);
		if (n < 0)
			continue;
		if ((size_t)n != len)
			finding("short write");
		if (backend_pread(b, buf, len, off) != (ssize_t)len)
			finding("read after write failed");
		for (size_t k = 0; k < len; k++)
			if (buf[k] != 0xC0 + i)
				finding("written bytes did not read back");
		woff[nw] = off, wlen[nw] = len, wval[nw] = (uint8_t)(0xC0 + i), nw++;
	}
	backend_close(b); /* closes fd and the fake lower */
	lower = calloc(1, sizeof(*lower));
	lower->ops = &fake_ops;
	lower->size = h.device_size;
	lower->sector_size = 512;
	memcpy(lower->identity, h.identity, BACKEND_ID_LEN);
	lower->name = strdup("fake");
	if ((r = overlay_open_fd(lower, fd2, "fuzz", 0, 0, &b, &err)) < 0) {
		if (nw)
			finding("an overlay written to could not be opened again");
		close(fd2);
		backend_close(lower);
		free(buf);
		return;
	}
	for (int i = 0; i < nw; i++) {
		if (backend_pread(b, buf, wlen[i], woff[i]) != (ssize_t)wlen[i])
			finding("read after reopen failed");
		for (size_t k = 0; k < wlen[i]; k++)
			if (buf[k] != wval[i])
				finding("written bytes were lost by reopening");
	}
	backend_close(b);
	free(buf);
}

/* Recompute the header checksum and the checksums of records whose first data byte is
 * even (with the header's overlay id). */
static void fixup(uint8_t *d, size_t size)
{
	if (size < OVL_HEADER_USED)
		return;
	put_le64(d + 120, fmt_xxh3(d, 120, 0));
	uint32_t bs = get_le32(d + 16);
	if (bs < OVL_BLOCK_MIN || bs > OVL_BLOCK_MAX || (bs & (bs - 1)))
		return;
	size_t rec = OVL_REC_HDR_SIZE + bs;
	for (size_t at = OVL_HEADER_SIZE; at + rec <= size; at += rec) {
		uint8_t *p = d + at;
		if (p[OVL_REC_HDR_SIZE] & 1)
			continue;
		put_le32(p, OVL_REC_MAGIC);
		memcpy(p + 8, d + 64, 8);
		put_le64(p + 32, fmt_xxh3(p + OVL_REC_HDR_SIZE, bs, get_le64(p + 16)));
		put_le64(p + 56, fmt_xxh3(p, 56, 0));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > INPUT_MAX)
		return 0;
	one(data, size);
	uint8_t *copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	fixup(copy, size);
	one(copy, size);
	free(copy);
	return 0;
}
