/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Writes the seed corpus of fuzz/fuzz_image.c: small images made with imago_create from
 * generated devices, and near-valid variants of one of them: cut short at each place that
 * matters (seed-trunc-*); one byte flipped in each region of the format, checksums left
 * stale (seed-flip-*); one field set to a structurally wrong (or, for forward
 * compatibility, a new but allowed) value with every checksum recomputed, so the check
 * behind the checksums is what must catch it (seed-craft-*). Deterministic: fixed
 * content, SOURCE_DATE_EPOCH fixed, one thread. Run it through fuzz/gen_corpus.sh.
 *
 *   gen_corpus OUTDIR
 *
 * Every file written is named seed-*.img.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fixup.h"
#include "imago.h"

static const char *outdir;
static size_t files_written, bytes_written;

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "gen_corpus: %s: %s\n", what, detail);
	exit(1);
}

#define rd64 fuzz_rd64
#define wr64 fuzz_wr64

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* ------------------------------------------------------------ device content */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint8_t rnd8(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint8_t)(rng >> 24);
}

enum fill { F_ZERO, F_TEXT, F_PATTERN, F_RANDOM, F_ONE };

static void fill(uint8_t *p, size_t n, enum fill how)
{
	static const char *const words[] = { "imago ", "disk ", "image ", "chunk ", "sector ",
					     "zstd ", "extent ", "index ", "trailer\n" };
	size_t i = 0, w = 0;

	switch (how) {
	case F_ZERO:
		memset(p, 0, n);
		break;
	case F_ONE:
		memset(p, 0x41, n);
		break;
	case F_PATTERN:
		for (i = 0; i < n; i++)
			p[i] = (uint8_t)(i * 7 % 251);
		break;
	case F_RANDOM:
		for (i = 0; i < n; i++)
			p[i] = rnd8();
		break;
	case F_TEXT:
		while (i < n) {
			const char *s = words[(w * 5 + w / 9) % 9];
			size_t l = strlen(s);
			if (l > n - i)
				l = n - i;
			memcpy(p + i, s, l);
			i += l;
			w++;
		}
		break;
	}
}

struct piece {
	size_t len;
	enum fill how;
};

/* ------------------------------------------------------------ making images */

struct image {
	uint8_t *b;
	size_t n;
};

static struct image make_smart(const struct piece *pieces, uint32_t chunk, int level,
			       const char *const *meta, const struct imago_extent *alloc, size_t nalloc);

static struct image make(const struct piece *pieces, uint32_t chunk, int level,
			 const char *const *meta)
{
	return make_smart(pieces, chunk, level, meta, NULL, 0);
}

static struct image make_smart(const struct piece *pieces, uint32_t chunk, int level,
			       const char *const *meta, const struct imago_extent *alloc, size_t nalloc)
{
	size_t dev = 0;
	for (const struct piece *p = pieces; p->len != (size_t)-1; p++)
		dev += p->len;

	int src = memfd_create("gen-src", MFD_CLOEXEC);
	int out = memfd_create("gen-out", MFD_CLOEXEC);
	if (src < 0 || out < 0)
		die("memfd_create", strerror(errno));
	uint8_t *content = malloc(dev ? dev : 1);
	if (!content)
		die("malloc", "out of memory");
	size_t at = 0;
	for (const struct piece *p = pieces; p->len != (size_t)-1; p++) {
		fill(content + at, p->len, p->how);
		at += p->len;
	}
	if (dev && write(src, content, dev) != (ssize_t)dev)
		die("write source", strerror(errno));
	free(content);
	if (lseek(src, 0, SEEK_SET) != 0)
		die("lseek", strerror(errno));

	struct imago_create_opts o = {
		.source_fd = src,
		.source_size = dev,
		.logical_sector_size = 512,
		.physical_sector_size = 4096,
		.out_fd = out,
		.chunk_size = chunk,
		.level = level,
		.threads = 1,
		.metadata = meta,
		.alloc = alloc,
		.alloc_count = nalloc,
	};
	struct imago_create_result res;
	struct imago_err err;
	memset(&err, 0, sizeof(err));
	int rc = imago_create(&o, &res, &err);
	if (rc < 0)
		die("imago_create", err.msg);

	struct image img;
	off_t size = lseek(out, 0, SEEK_END);
	if (size < 0)
		die("lseek", strerror(errno));
	img.n = (size_t)size;
	img.b = malloc(img.n ? img.n : 1);
	if (!img.b)
		die("malloc", "out of memory");
	if (pread(out, img.b, img.n, 0) != (ssize_t)img.n)
		die("read image", strerror(errno));
	close(src);
	close(out);
	return img;
}

static void save(const char *name, const uint8_t *b, size_t n)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/seed-%s.img", outdir, name);
	FILE *f = fopen(path, "wb");
	if (!f || (n && fwrite(b, 1, n, f) != n) || fclose(f) != 0)
		die(path, strerror(errno));
	files_written++;
	bytes_written += n;
}

static void save_flipped(const char *name, const struct image *img, size_t at)
{
	if (at >= img->n)
		die("flip outside the image", name);
	uint8_t *c = malloc(img->n);
	if (!c)
		die("malloc", "out of memory");
	memcpy(c, img->b, img->n);
	c[at] ^= 0xff;
	save(name, c, img->n);
	free(c);
}

/* ------------------------------------------------------------ the corpus */

#define END { (size_t)-1, F_ZERO }
#define K64 65536

static void plain_seeds(void)
{
	static const char *const meta[] = {
		"source.path", "/dev/disk/by-id/ata-EXAMPLE_0001",
		"source.kind", "block",
		"source.model", "EXAMPLE DISK",
		"source.serial", "0001",
		"case.note", "caf\xc3\xa9 \xe2\x80\x94 evidence #7",
		"empty", "",
		NULL,
	};
	struct {
		const char *name;
		uint32_t chunk;
		int level;
		const char *const *meta;
		struct piece p[8];
	} seeds[] = {
		{ "empty", K64, 0, NULL, { END } },
		{ "one-byte", K64, 0, NULL, { { 1, F_ONE }, END } },
		{ "one-zero-byte", K64, 0, NULL, { { 1, F_ZERO }, END } },
		{ "511-text", K64, 0, NULL, { { 511, F_TEXT }, END } },
		{ "65535-random", K64, 0, NULL, { { 65535 - 200, F_ZERO }, { 200, F_RANDOM }, END } },
		{ "65537-text", K64, 0, NULL, { { 65537, F_TEXT }, END } },
		{ "all-zero-odd", K64, 0, NULL, { { 3 * K64 + 5, F_ZERO }, END } },
		{ "mixed-64k", K64, 0, NULL,
		  { { K64, F_TEXT }, { 2 * K64, F_ZERO }, { K64, F_PATTERN }, { K64, F_ZERO },
		    { 777, F_RANDOM }, END } },
		{ "zero-tail-64k", K64, 0, NULL,
		  { { K64 + 100, F_TEXT }, { 2 * K64 - 100, F_ZERO }, { 4097, F_ZERO }, END } },
		{ "chunk128k", 2 * K64, 0, NULL,
		  { { 70000, F_PATTERN }, { 200000, F_ZERO }, { 33333, F_TEXT }, END } },
		{ "chunk1m", 16 * K64, 0, NULL, { { 100000, F_TEXT }, { 333, F_RANDOM }, END } },
		{ "chunk16m", 256 * K64, 0, NULL, { { 70001, F_PATTERN }, END } },
		{ "level19-meta", K64, 19, meta, { { 4096, F_TEXT }, { K64, F_ZERO }, END } },
		{ "level1", K64, 1, NULL, { { 2 * K64 + 3, F_TEXT }, END } },
		{ "sparse-48m", 16 * K64, 0, NULL,
		  { { 3 * K64, F_PATTERN }, { 48 * 16 * K64 - 4 * K64, F_ZERO }, { K64 + 7, F_TEXT },
		    END } },
	};

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		struct image img = make(seeds[i].p, seeds[i].chunk, seeds[i].level, seeds[i].meta);
		save(seeds[i].name, img.b, img.n);
		free(img.b);
	}

	/* Many small frames: alternating data and zero chunks, a long index. */
	struct piece many[42];
	for (int i = 0; i < 40; i++)
		many[i] = (struct piece){ K64, i % 3 == 0 ? F_ZERO : (i % 3 == 1 ? F_PATTERN : F_ONE) };
	many[40] = (struct piece){ 1000, F_TEXT };
	many[41] = (struct piece)END;
	struct image img = make(many, K64, 0, NULL);
	save("many-frames", img.b, img.n);
	free(img.b);

	/* Smart images: an allocation map with FREE runs inside chunks, across whole chunks,
	 * at the start and at the end; a chunk whose USED bytes are all zero. */
	struct piece sp[] = { { 6 * K64 + 1234, F_TEXT }, END };
	static const struct imago_extent al[] = {
		{ 0, 5000, IMAGO_FREE },
		{ 5000, K64 - 5000 + 100, IMAGO_USED },
		{ K64 + 100, 2 * K64, IMAGO_FREE },
		{ 3 * K64 + 100, 4000, IMAGO_USED },
		{ 3 * K64 + 4100, 2 * K64 - 4100, IMAGO_FREE },
		{ 5 * K64, K64 + 1000, IMAGO_USED },
		{ 6 * K64 + 1000, 234, IMAGO_FREE },
	};
	img = make_smart(sp, K64, 0, NULL, al, sizeof(al) / sizeof(al[0]));
	save("smart-free-runs", img.b, img.n);
	free(img.b);
	struct piece zp[] = { { K64, F_ZERO }, { K64, F_PATTERN }, { K64, F_ZERO }, END };
	static const struct imago_extent zal[] = {
		{ 0, 1000, IMAGO_USED }, { 1000, K64 - 1000, IMAGO_FREE },
		{ K64, K64, IMAGO_USED }, { 2 * K64, K64, IMAGO_FREE },
	};
	img = make_smart(zp, K64, 0, NULL, zal, sizeof(zal) / sizeof(zal[0]));
	save("smart-zero-used", img.b, img.n);
	free(img.b);
}

/* Where the regions of an image are. */
struct layout {
	size_t first_frame, first_payload;   /* a DATA frame and its payload */
	size_t raw_payload;                  /* payload of a DATA_RAW frame, or 0 */
	size_t zero_frame;                   /* a ZERO frame, or 0 */
	size_t last_frame;
	size_t meta, ext, idx, trailer;
};

static struct layout locate(const struct image *img)
{
	struct layout l;
	memset(&l, 0, sizeof(l));
	if (img->n < 512 + 128)
		die("locate", "image too small");
	l.trailer = img->n - 128;
	const uint8_t *t = img->b + l.trailer;
	l.meta = (size_t)rd64(t + 8);
	l.ext = (size_t)rd64(t + 16);
	l.idx = (size_t)rd64(t + 24);
	for (size_t off = (size_t)rd64(img->b + 56); off < l.meta;) {
		const uint8_t *f = img->b + off;
		if (memcmp(f, "IMGF", 4) != 0)
			die("locate", "no frame where one should be");
		if (f[4] != 3 && !l.first_frame) {
			l.first_frame = off;
			l.first_payload = off + 48;
		}
		if (f[4] == 1 && !l.raw_payload)
			l.raw_payload = off + 48;
		if (f[4] == 3 && !l.zero_frame)
			l.zero_frame = off;
		l.last_frame = off;
		off += 48 + (size_t)rd64(f + 24);
	}
	if (!l.first_frame || !l.raw_payload || !l.zero_frame)
		die("locate", "the base image lacks a DATA_ZSTD, DATA_RAW or ZERO frame");
	return l;
}

/* The base of the damaged variants: extents USED [0, 64K), ZERO [64K, 192K), USED
 * [192K, 256K+300); frames DATA_ZSTD, ZERO (2 chunks), DATA_ZSTD, DATA_RAW (300 bytes). */
static struct image damaged_base(void)
{
	struct piece p[] = { { 3000, F_TEXT }, { K64 - 3000, F_ZERO }, { 2 * K64, F_ZERO },
			     { K64, F_PATTERN }, { 300, F_RANDOM }, END };
	return make(p, K64, 0, NULL);
}

static void damaged_seeds(void)
{
	struct image img = damaged_base();
	struct layout l = locate(&img);

	/* Cut short. */
	static const struct {
		const char *name;
		int what;   /* 0: absolute length, 1: from end */
		size_t at;
	} cuts[] = {
		{ "trunc-0", 0, 0 },       { "trunc-100", 0, 100 },   { "trunc-511", 0, 511 },
		{ "trunc-512", 0, 512 },   { "trunc-tail-1", 1, 1 },  { "trunc-tail-127", 1, 127 },
		{ "trunc-tail-128", 1, 128 }, { "trunc-tail-129", 1, 129 },
	};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		save(cuts[i].name, img.b, cuts[i].what ? img.n - cuts[i].at : cuts[i].at);
	save("trunc-mid-frame-header", img.b, l.first_frame + 20);
	save("trunc-mid-payload", img.b, l.first_payload + 10);
	save("trunc-before-metadata", img.b, l.meta);
	save("trunc-mid-index", img.b, l.idx + 40);
	/* An image cut before its end, but ending in a trailer (as if a copy lost a piece). */
	{
		size_t cut = l.idx - 24 * 2;
		uint8_t *c = malloc(img.n);
		if (!c)
			die("malloc", "out of memory");
		memcpy(c, img.b, cut);
		memcpy(c + cut, img.b + l.trailer, 128);
		save("spliced-trailer", c, cut + 128);
		free(c);
	}

	/* One byte flipped in each region. */
	static const struct {
		const char *name;
		int region;
		size_t off;
	} flips[] = {
		{ "flip-header-magic", 0, 1 },
		{ "flip-header-version", 0, 8 },
		{ "flip-header-incompat", 0, 16 },
		{ "flip-header-device-size", 0, 33 },
		{ "flip-header-chunk-size", 0, 42 },
		{ "flip-header-codec", 0, 52 },
		{ "flip-header-reserved", 0, 300 },
		{ "flip-header-checksum", 0, 504 },
		{ "flip-frame-magic", 1, 0 },
		{ "flip-frame-type", 1, 4 },
		{ "flip-frame-offset", 1, 9 },
		{ "flip-frame-length", 1, 17 },
		{ "flip-frame-stored", 1, 24 },
		{ "flip-frame-datasum", 1, 33 },
		{ "flip-frame-checksum", 1, 41 },
		{ "flip-zstd-payload", 2, 20 },
		{ "flip-raw-payload", 3, 100 },
		{ "flip-zero-frame-length", 4, 18 },
		{ "flip-last-frame", 5, 12 },
		{ "flip-meta-count", 6, 8 },
		{ "flip-meta-payload", 6, 30 },
		{ "flip-extent-state", 7, 24 + 16 },
		{ "flip-extent-length", 7, 24 + 24 + 9 },
		{ "flip-index-fileoff", 8, 24 + 8 },
		{ "flip-index-datasum", 8, 24 + 24 + 2 },
		{ "flip-index-checksum", 8, (size_t)-1 },
		{ "flip-trailer-magic", 9, 3 },
		{ "flip-trailer-index-off", 9, 24 },
		{ "flip-trailer-frames", 9, 32 },
		{ "flip-trailer-device-size", 9, 57 },
		{ "flip-trailer-digest", 9, 70 },
		{ "flip-trailer-hdrsum", 9, 99 },
		{ "flip-trailer-checksum", 9, 124 },
	};
	size_t base[10] = { 0, l.first_frame, l.first_payload, l.raw_payload, l.zero_frame,
			    l.last_frame, l.meta, l.ext, l.idx, l.trailer };
	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		size_t at = base[flips[i].region] + flips[i].off;
		if (flips[i].off == (size_t)-1) /* last byte of the index section */
			at = l.trailer - 1;
		save_flipped(flips[i].name, &img, at);
	}
	free(img.b);
}

enum craft {
	C_EXT_USED_GROW, C_EXT_ZERO_FREE, C_EXT_ZERO_BAD, C_EXT_ZERO_UNTRIED, C_EXT_USED_FREE,
	C_HDR_DEV_GROW, C_HDR_DEV_SHRINK, C_HDR_CHUNK_128K, C_HDR_MINOR, C_HDR_COMPAT,
	C_HDR_INCOMPAT, C_HDR_CODEC, C_HDR_MAJOR, C_IDX_SWAP, C_IDX_FILEOFF_DUP, C_IDX_SHIFT,
	C_IDX_STORED, C_TRL_META_OFF, C_TRL_DATA_FRAMES, C_TRL_ZERO_FRAMES, C_TRL_STORED,
	C_TRL_DIGEST, C_TRL_TWICE, C_FRM_ZERO_SHORT, C_FRM_ZERO_ODD, C_FRM_ZERO_SUM,
	C_FRM_AS_RAW, C_FRM_RAW_DATA, C_FRM_SHIFT, C_META_COUNT, C_META_KEYLEN, C_META_VALLEN,
	C_META_NUL, C_COUNT
};

static const char *const craft_name[C_COUNT] = {
	"extent-used-grow", "extent-zero-to-free", "extent-zero-to-bad", "extent-zero-to-untried",
	"extent-used-to-free", "header-device-grow", "header-device-shrink", "header-chunk-128k",
	"header-minor-1", "header-compat-bit", "header-incompat-bit", "header-codec-2",
	"header-major-2", "index-swap", "index-fileoff-dup", "index-logical-shift",
	"index-stored-length", "trailer-metadata-offset", "trailer-data-frames",
	"trailer-zero-frames", "trailer-stored-bytes", "trailer-digest", "trailer-twice",
	"frame-zero-short", "frame-zero-odd", "frame-zero-checksum", "frame-zstd-as-raw",
	"frame-raw-data", "frame-offset-shift", "meta-count", "meta-key-length",
	"meta-value-length", "meta-nul-in-value",
};

/* One field changed, then every checksum recomputed. */
static void crafted_seeds(void)
{
	struct image img = damaged_base();
	struct layout l = locate(&img);
	uint8_t *ext0 = NULL, *ext1 = NULL, *ext2 = NULL, *idx0 = NULL, *idx1 = NULL;

	for (int c = 0; c < C_COUNT; c++) {
		size_t n = img.n;
		uint8_t *b = malloc(img.n + 128);
		if (!b)
			die("malloc", "out of memory");
		memcpy(b, img.b, img.n);
		uint8_t *t = b + l.trailer, *meta = b + l.meta + 24;
		ext0 = b + l.ext + 24;
		ext1 = ext0 + 24;
		ext2 = ext1 + 24;
		idx0 = b + l.idx + 24;
		idx1 = idx0 + 32;
		switch ((enum craft)c) {
		case C_EXT_USED_GROW: /* chunk 1 USED, but no frame holds it */
			wr64(ext0 + 8, rd64(ext0 + 8) + K64);
			wr64(ext1, rd64(ext1) + K64);
			wr64(ext1 + 8, rd64(ext1 + 8) - K64);
			break;
		case C_EXT_ZERO_FREE: wr32(ext1 + 16, IMAGO_FREE); break;
		case C_EXT_ZERO_BAD: wr32(ext1 + 16, IMAGO_BAD); break;
		case C_EXT_ZERO_UNTRIED: wr32(ext1 + 16, IMAGO_UNTRIED); break;
		case C_EXT_USED_FREE: wr32(ext2 + 16, IMAGO_FREE); break;
		case C_HDR_DEV_GROW:
		case C_HDR_DEV_SHRINK: {
			uint64_t d = c == C_HDR_DEV_GROW ? 1 : (uint64_t)-1;
			wr64(b + 32, rd64(b + 32) + d);
			wr64(t + 56, rd64(t + 56) + d);
			wr64(ext2 + 8, rd64(ext2 + 8) + d);
			break;
		}
		case C_HDR_CHUNK_128K: wr32(b + 40, 2 * K64); break;
		case C_HDR_MINOR: b[10] = 1; break;
		case C_HDR_COMPAT: b[24] = 1; break;
		case C_HDR_INCOMPAT: b[16] = 1; break;
		case C_HDR_CODEC: b[52] = 2; break;
		case C_HDR_MAJOR: b[8] = 2; break;
		case C_IDX_SWAP: {
			uint8_t tmp[32];
			memcpy(tmp, idx0, 32);
			memcpy(idx0, idx1, 32);
			memcpy(idx1, tmp, 32);
			break;
		}
		case C_IDX_FILEOFF_DUP: memcpy(idx1 + 8, idx0 + 8, 8); break;
		case C_IDX_SHIFT: wr64(idx1, rd64(idx1) + K64); break;
		case C_IDX_STORED: idx0[20]++; break;
		case C_TRL_META_OFF: wr64(t + 8, rd64(t + 8) + 8); break;
		case C_TRL_DATA_FRAMES: wr64(t + 32, rd64(t + 32) + 1); break;
		case C_TRL_ZERO_FRAMES: wr64(t + 40, rd64(t + 40) + 1); break;
		case C_TRL_STORED: wr64(t + 48, rd64(t + 48) + 1); break;
		case C_TRL_DIGEST: t[64] ^= 1; break;
		case C_TRL_TWICE:
			memcpy(b + n, t, 128);
			n += 128;
			break;
		case C_FRM_ZERO_SHORT: wr64(b + l.zero_frame + 16, K64); break;
		case C_FRM_ZERO_ODD: wr64(b + l.zero_frame + 16, 2 * K64 - 1); break;
		case C_FRM_ZERO_SUM: b[l.zero_frame + 32] = 1; break;
		case C_FRM_AS_RAW: b[l.first_frame + 4] = 1; break;
		case C_FRM_RAW_DATA: b[l.raw_payload + 7] ^= 0x20; break;
		case C_FRM_SHIFT: wr64(b + l.first_frame + 8, rd64(b + l.first_frame + 8) + K64); break;
		case C_META_COUNT: wr64(b + l.meta + 8, rd64(b + l.meta + 8) + 1); break;
		case C_META_KEYLEN: meta[0] = meta[1] = 0xff; break;
		case C_META_VALLEN: meta[2] = meta[3] = meta[4] = meta[5] = 0xff; break;
		case C_META_NUL: meta[6 + meta[0]] = 0; break; /* first byte of the first value */
		case C_COUNT: break;
		}
		fuzz_fix_checksums(b, n);
		char name[64];
		snprintf(name, sizeof(name), "craft-%s", craft_name[c]);
		save(name, b, n);
		free(b);
	}
	free(img.b);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	/* Reproducible "created" metadata whatever the caller's environment says. */
	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
	plain_seeds();
	damaged_seeds();
	crafted_seeds();
	printf("gen_corpus: %zu files, %zu bytes in %s\n", files_written, bytes_written, outdir);
	return 0;
}
