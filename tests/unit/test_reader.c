/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The library end to end, through its public API on memory files: create → random-access
 * reads → verify → restore, thread-count determinism, the digest's independence from the
 * chunk size, and damage never returned as data.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "imago.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("t", 0);
	if (fd < 0)
		return -1;
	if (len && write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static uint8_t *slurp(int fd, size_t *len)
{
	struct stat st;
	fstat(fd, &st);
	uint8_t *p = malloc((size_t)st.st_size + 1);
	if (pread(fd, p, (size_t)st.st_size, 0) != st.st_size) {
		free(p);
		return NULL;
	}
	*len = (size_t)st.st_size;
	return p;
}

/* A device of mixed content: random, text, zero runs, and an odd tail. */
static uint8_t *make_device(size_t size)
{
	uint8_t *d = calloc(1, size ? size : 1);
	for (size_t off = 0; off < size;) {
		size_t run = 1 + next_rand() % (200 * 1024);
		if (run > size - off)
			run = size - off;
		switch (next_rand() % 3) {
		case 0:
			for (size_t i = 0; i < run; i++)
				d[off + i] = (uint8_t)next_rand();
			break;
		case 1:
			for (size_t i = 0; i < run; i++)
				d[off + i] = (uint8_t)("the quick brown fox "[i % 20]);
			break;
		default:
			break; /* zeros */
		}
		off += run;
	}
	return d;
}

static int create_image(const uint8_t *dev, size_t size, uint32_t cs, unsigned threads, int *img_fd)
{
	int src = memfd_with(dev, size), out = memfd_create("img", 0);
	struct imago_create_opts o = { .source_fd = src, .source_size = size, .out_fd = out,
				       .chunk_size = cs, .threads = threads };
	struct imago_create_result res;
	struct imago_err err;
	int r = imago_create(&o, &res, &err);
	close(src);
	if (r < 0) {
		printf("# create: %s\n", err.msg);
		close(out);
		return r;
	}
	lseek(out, 0, SEEK_SET);
	*img_fd = out;
	return 0;
}

static void random_reads_match(void)
{
	size_t size = 5 * 1024 * 1024 + 12345;
	uint8_t *dev = make_device(size);
	int fd;
	REQUIRE(create_image(dev, size, 65536, 2, &fd) == 0);
	imago_image *img = NULL;
	struct imago_err err;
	REQUIRE(imago_image_open_fd(fd, "mem", &img, &err) == 0);
	struct imago_info info;
	imago_image_info(img, &info);
	CHECK(info.device_size == size);
	CHECK(info.chunk_size == 65536);
	CHECK(info.bytes_by_state[IMAGO_USED] + info.bytes_by_state[IMAGO_ZERO] == size);
	CHECK(imago_image_meta(img, "tool") != NULL);
	uint8_t *buf = malloc(300000);
	for (int i = 0; i < 500; i++) {
		uint64_t off = next_rand() % (size + 100);
		size_t len = 1 + next_rand() % 300000;
		ssize_t n = imago_image_pread(img, buf, len, off);
		size_t want = off >= size ? 0 : (len < size - off ? len : size - off);
		CHECK(n == (ssize_t)want);
		if (n > 0)
			CHECK(memcmp(buf, dev + off, (size_t)n) == 0);
	}
	free(buf);
	imago_image_close(img);
	close(fd);
	free(dev);
}

static int count_extent(void *opaque, const struct imago_extent *e)
{
	uint64_t *sum = opaque;
	*sum += e->length;
	return 0;
}

static void extents_tile_device(void)
{
	size_t size = 3 * 1024 * 1024;
	uint8_t *dev = make_device(size);
	memset(dev, 0, 1 << 20); /* a whole zero megabyte: ZERO extents at any chunk size */
	int fd;
	REQUIRE(create_image(dev, size, 65536, 1, &fd) == 0);
	imago_image *img = NULL;
	REQUIRE(imago_image_open_fd(fd, "mem", &img, NULL) == 0);
	uint64_t sum = 0;
	imago_image_extents(img, count_extent, &sum);
	CHECK(sum == size);
	struct imago_info info;
	imago_image_info(img, &info);
	CHECK(info.bytes_by_state[IMAGO_ZERO] >= (1 << 20));
	CHECK(info.zero_frames >= 1);
	imago_image_close(img);
	close(fd);
	free(dev);
}

static void verify_and_restore(void)
{
	size_t size = 4 * 1024 * 1024 + 1;
	uint8_t *dev = make_device(size);
	int fd;
	REQUIRE(create_image(dev, size, 1 << 20, 0, &fd) == 0);
	struct imago_err err;
	struct imago_verify_opts vo = { .image_fd = fd, .image_name = "mem", .against_fd = -1 };
	struct imago_verify_result vr;
	CHECK(imago_verify(&vo, &vr, &err) == 0);
	CHECK(vr.device_size == size);
	int tgt = memfd_create("tgt", 0);
	struct imago_restore_opts ro = { .image_fd = fd, .image_name = "mem", .target_fd = tgt,
					 .flags = IMAGO_RESTORE_SPARSE };
	lseek(fd, 0, SEEK_SET);
	struct imago_restore_result rr;
	REQUIRE(imago_restore(&ro, &rr, &err) == 0);
	size_t got_len = 0;
	uint8_t *got = slurp(tgt, &got_len);
	CHECK(got_len == size);
	CHECK(got && memcmp(got, dev, size) == 0);
	CHECK(memcmp(rr.digest, vr.digest, 32) == 0);
	/* verify --against: same source is fine, a one-byte change is found exactly */
	int src = memfd_with(dev, size);
	vo.against_fd = src;
	vo.against_size = size;
	lseek(fd, 0, SEEK_SET);
	CHECK(imago_verify(&vo, &vr, &err) == 0);
	uint8_t b = dev[size / 2] ^ 0xff;
	pwrite(src, &b, 1, (off_t)(size / 2));
	lseek(fd, 0, SEEK_SET);
	CHECK(imago_verify(&vo, &vr, &err) == -EILSEQ);
	CHECK(err.dev_offset == (int64_t)(size / 2));
	close(src);
	free(got);
	close(tgt);
	close(fd);
	free(dev);
}

static void digest_matches_source_digest(void)
{
	size_t size = 2 * 1024 * 1024 + 777;
	uint8_t *dev = make_device(size);
	uint8_t d_src[32], d64[32], d4m[32];
	int src = memfd_with(dev, size);
	REQUIRE(imago_digest_fd(src, size, 2, d_src, NULL, NULL, NULL) == 0);
	close(src);
	int a, b;
	REQUIRE(create_image(dev, size, 65536, 2, &a) == 0);
	REQUIRE(create_image(dev, size, 4 << 20, 2, &b) == 0);
	imago_image *ia, *ib;
	REQUIRE(imago_image_open_fd(a, "a", &ia, NULL) == 0);
	REQUIRE(imago_image_open_fd(b, "b", &ib, NULL) == 0);
	struct imago_info x, y;
	imago_image_info(ia, &x);
	imago_image_info(ib, &y);
	memcpy(d64, x.digest, 32);
	memcpy(d4m, y.digest, 32);
	CHECK(memcmp(d64, d4m, 32) == 0);
	CHECK(memcmp(d64, d_src, 32) == 0);
	imago_image_close(ia);
	imago_image_close(ib);
	close(a);
	close(b);
	free(dev);
}

static void same_bytes_for_any_thread_count(void)
{
	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
	size_t size = 6 * 1024 * 1024 + 99;
	uint8_t *dev = make_device(size);
	uint8_t *first = NULL;
	size_t first_len = 0;
	unsigned counts[] = { 1, 2, 3, 8 };
	for (size_t i = 0; i < 4; i++) {
		int fd;
		REQUIRE(create_image(dev, size, 65536, counts[i], &fd) == 0);
		size_t len = 0;
		uint8_t *p = slurp(fd, &len);
		close(fd);
		if (!first) {
			first = p;
			first_len = len;
			continue;
		}
		CHECK(len == first_len && memcmp(p, first, len) == 0);
		free(p);
	}
	free(first);
	free(dev);
}

/* The writer spools its index and extent map to a file past a memory limit; force that. */
static void spooled_index_and_extents(void)
{
	setenv("IMAGO_SPOOL_MEM", "256", 1);
	size_t size = 8 * 1024 * 1024 + 3;
	uint8_t *dev = make_device(size);
	int fd;
	int r = create_image(dev, size, 65536, 2, &fd);
	unsetenv("IMAGO_SPOOL_MEM");
	REQUIRE(r == 0);
	imago_image *img;
	REQUIRE(imago_image_open_fd(fd, "mem", &img, NULL) == 0);
	struct imago_info info;
	imago_image_info(img, &info);
	CHECK(info.data_chunks > 16 && info.extent_count > 8); /* more than 256 bytes of each */
	uint8_t *buf = malloc(size);
	CHECK(imago_image_pread(img, buf, size, 0) == (ssize_t)size);
	CHECK(memcmp(buf, dev, size) == 0);
	free(buf);
	imago_image_close(img);
	struct imago_verify_opts vo = { .image_fd = fd, .image_name = "mem", .against_fd = -1 };
	lseek(fd, 0, SEEK_SET);
	CHECK(imago_verify(&vo, NULL, NULL) == 0);
	close(fd);
	free(dev);
}

static void damaged_chunk_never_returns_data(void)
{
	size_t size = 1 << 20;
	uint8_t *dev = malloc(size);
	for (size_t i = 0; i < size; i++)
		dev[i] = (uint8_t)next_rand();
	int fd;
	REQUIRE(create_image(dev, size, 65536, 2, &fd) == 0);
	/* First frame payload starts at 512 + 48. Flip a byte in it. */
	uint8_t c;
	pread(fd, &c, 1, 512 + 48 + 100);
	c ^= 0x40;
	pwrite(fd, &c, 1, 512 + 48 + 100);
	imago_image *img;
	REQUIRE(imago_image_open_fd(fd, "mem", &img, NULL) == 0); /* structure is intact */
	uint8_t buf[4096];
	CHECK(imago_image_pread(img, buf, sizeof(buf), 0) == -EBADMSG);
	CHECK(imago_image_error(img)->chunk == 0);
	CHECK(imago_image_pread(img, buf, sizeof(buf), 65536) == (ssize_t)sizeof(buf));
	CHECK(memcmp(buf, dev + 65536, sizeof(buf)) == 0);
	imago_image_close(img);
	struct imago_err err;
	struct imago_verify_opts vo = { .image_fd = fd, .image_name = "mem", .against_fd = -1 };
	lseek(fd, 0, SEEK_SET);
	CHECK(imago_verify(&vo, NULL, &err) == -EBADMSG);
	CHECK(err.chunk == 0 && err.dev_offset == 0);
	close(fd);
	free(dev);
}

static void empty_and_tiny_devices(void)
{
	size_t sizes[] = { 0, 1, 511, 65537 };
	for (size_t i = 0; i < 4; i++) {
		uint8_t *dev = make_device(sizes[i]);
		int fd;
		REQUIRE(create_image(dev, sizes[i], 65536, 1, &fd) == 0);
		struct imago_verify_opts vo = { .image_fd = fd, .image_name = "mem", .against_fd = -1 };
		CHECK(imago_verify(&vo, NULL, NULL) == 0);
		int tgt = memfd_create("tgt", 0);
		struct imago_restore_opts ro = { .image_fd = fd, .target_fd = tgt, .flags = IMAGO_RESTORE_SPARSE };
		lseek(fd, 0, SEEK_SET);
		CHECK(imago_restore(&ro, NULL, NULL) == 0);
		size_t len = 0;
		uint8_t *got = slurp(tgt, &len);
		CHECK(len == sizes[i] && (len == 0 || memcmp(got, dev, len) == 0));
		free(got);
		close(tgt);
		close(fd);
		free(dev);
	}
}

int main(void)
{
	check_prog_ = "reader";
	RUN(random_reads_match);
	RUN(extents_tile_device);
	RUN(verify_and_restore);
	RUN(digest_matches_source_digest);
	RUN(same_bytes_for_any_thread_count);
	RUN(spooled_index_and_extents);
	RUN(damaged_chunk_never_returns_data);
	RUN(empty_and_tiny_devices);
	CHECK_MAIN_END();
}
