/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The reader's chunk cache (lib/image/chunk_cache.c) through the public API: many
 * threads reading at once (random and sequential, with read-ahead and with a cache far
 * smaller than the image) get exactly the device's bytes; read-ahead does decode ahead;
 * a damaged chunk gives -EBADMSG to every reader, every time, never data, while its
 * neighbours stay readable.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "imago.h"

#define CS 65536u

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint8_t *dev;
static size_t dev_size;

/* Mixed content: random, text and zero runs, and an odd tail. */
static void make_device(size_t size)
{
	uint64_t s = 42;
	dev = calloc(1, size);
	dev_size = size;
	for (size_t off = 0; off < size;) {
		size_t run = 1 + splitmix(&s) % (300 * 1024);
		if (run > size - off)
			run = size - off;
		uint64_t kind = splitmix(&s) % 3;
		for (size_t i = 0; kind < 2 && i < run; i++)
			dev[off + i] = kind == 0 ? (uint8_t)splitmix(&s) : (uint8_t)("imago cache "[i % 12]);
		off += run;
	}
}

static int create_image(void)
{
	int src = memfd_create("src", 0), out = memfd_create("img", 0);
	if (src < 0 || out < 0 || write(src, dev, dev_size) != (ssize_t)dev_size)
		return -1;
	lseek(src, 0, SEEK_SET);
	struct imago_create_opts o = { .source_fd = src, .source_size = dev_size, .out_fd = out,
				       .chunk_size = CS, .threads = 2 };
	struct imago_create_result res;
	struct imago_err err;
	int r = imago_create(&o, &res, &err);
	close(src);
	if (r < 0) {
		printf("# create: %s\n", err.msg);
		close(out);
		return -1;
	}
	return out;
}

struct job {
	imago_image *img;
	uint64_t seed;
	int sequential;
	size_t io;
	int bad;        /* reads that returned wrong data or a wrong length */
	int errors;     /* reads that failed */
	uint64_t bad_lo, bad_hi; /* device range of a damaged chunk (reads touching it must fail) */
	int damaged_ok; /* reads touching it that failed with -EBADMSG */
};

static void *reader(void *arg)
{
	struct job *j = arg;
	uint8_t *buf = malloc(j->io);
	uint64_t s = j->seed;
	uint64_t off = splitmix(&s) % dev_size;
	for (int i = 0; i < 400; i++) {
		size_t len = j->sequential ? j->io : 1 + splitmix(&s) % j->io;
		if (!j->sequential)
			off = splitmix(&s) % (dev_size + 10);
		ssize_t n = imago_image_pread(j->img, buf, len, off);
		size_t want = off >= dev_size ? 0 : (len < dev_size - off ? len : dev_size - off);
		int touches = j->bad_hi && off < j->bad_hi && off + len > j->bad_lo && want;
		if (touches) {
			if (n == -EBADMSG)
				j->damaged_ok++;
			else
				j->bad++;
		} else if (n < 0) {
			j->errors++;
		} else if ((size_t)n != want || memcmp(buf, dev + off, want) != 0) {
			j->bad++;
		}
		if (j->sequential) {
			off += len;
			if (off >= dev_size)
				off = 0;
		}
	}
	free(buf);
	return NULL;
}

static void run_jobs(imago_image *img, int nthreads, uint64_t bad_lo, uint64_t bad_hi, int *bad,
		     int *errors, int *damaged)
{
	pthread_t t[16];
	struct job j[16];
	*bad = *errors = *damaged = 0;
	for (int i = 0; i < nthreads; i++) {
		j[i] = (struct job){ .img = img, .seed = 1000 + (uint64_t)i, .sequential = i % 2,
				     .io = i % 2 ? 131072 : (i % 4 == 0 ? 4096 : 300000),
				     .bad_lo = bad_lo, .bad_hi = bad_hi };
		pthread_create(&t[i], NULL, reader, &j[i]);
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		*bad += j[i].bad;
		*errors += j[i].errors;
		*damaged += j[i].damaged_ok;
	}
}

static void concurrent_readers_default(void)
{
	int fd = create_image();
	REQUIRE(fd >= 0);
	imago_image *img;
	REQUIRE(imago_image_open_fd(fd, "mem", &img, NULL) == 0);
	int bad, errors, damaged;
	run_jobs(img, 8, 0, 0, &bad, &errors, &damaged);
	CHECK(bad == 0);
	CHECK(errors == 0);
	struct imago_cache_stats st;
	imago_image_cache_stats(img, &st);
	CHECK(st.chunk_size == CS);
	CHECK(st.prefetched > 0);   /* the sequential readers were read ahead of */
	CHECK(st.hits > 0);
	CHECK(st.failed == 0);
	imago_image_close(img);
	close(fd);
}

/* A cache of the minimum size, with 3 decoders and a deep read-ahead: slots are evicted
 * and reloaded all the time while readers copy out of others. */
static void concurrent_readers_tiny_cache(void)
{
	int fd = create_image();
	REQUIRE(fd >= 0);
	imago_image *img;
	REQUIRE(imago_image_open_fd(fd, "mem", &img, NULL) == 0);
	struct imago_cache_opts o = { .cache_bytes = 1, .threads = 3, .readahead = 6 };
	REQUIRE(imago_image_set_cache(img, &o) == 0);
	struct imago_cache_stats st;
	imago_image_cache_stats(img, &st);
	CHECK(st.slots < dev_size / CS / 2); /* far smaller than the image */
	int bad, errors, damaged;
	run_jobs(img, 12, 0, 0, &bad, &errors, &damaged);
	CHECK(bad == 0);
	CHECK(errors == 0);
	imago_image_close(img);
	close(fd);
}

static void no_readahead_decodes_only_what_is_read(void)
{
	int fd = create_image();
	REQUIRE(fd >= 0);
	imago_image *img;
	REQUIRE(imago_image_open_fd(fd, "mem", &img, NULL) == 0);
	struct imago_cache_opts o = { .flags = IMAGO_CACHE_NO_READAHEAD };
	REQUIRE(imago_image_set_cache(img, &o) == 0);
	uint8_t *buf = malloc(dev_size);
	for (size_t off = 0; off < dev_size; off += 100000) {
		size_t n = dev_size - off < 100000 ? dev_size - off : 100000;
		CHECK(imago_image_pread(img, buf + off, n, off) == (ssize_t)n);
	}
	CHECK(memcmp(buf, dev, dev_size) == 0);
	struct imago_cache_stats st;
	imago_image_cache_stats(img, &st);
	CHECK(st.prefetched == 0);
	CHECK(st.threads == 0);
	free(buf);
	imago_image_close(img);
	close(fd);
}

/* Find the first DATA frame holding random bytes (stored raw or barely compressed) and
 * damage a byte in the middle of its payload; return its device range. */
static int damage_a_chunk(int fd, uint64_t *lo, uint64_t *hi)
{
	uint8_t h[512], f[48];
	if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return -1;
	uint64_t off;
	memcpy(&off, h + 56, 8);
	for (int k = 0; k < 10000; k++) {
		if (pread(fd, f, 48, (off_t)off) != 48 || memcmp(f, "IMGF", 4) != 0)
			return -1;
		uint64_t lo_, ll, sl;
		memcpy(&lo_, f + 8, 8);
		memcpy(&ll, f + 16, 8);
		memcpy(&sl, f + 24, 8);
		if (f[4] != 3 && sl > 1000 && lo_ > 0) {
			uint8_t b;
			off_t at = (off_t)(off + 48 + sl / 2);
			if (pread(fd, &b, 1, at) != 1)
				return -1;
			b ^= 0x10;
			if (pwrite(fd, &b, 1, at) != 1)
				return -1;
			*lo = lo_;
			*hi = lo_ + ll;
			return 0;
		}
		off += 48 + sl;
	}
	return -1;
}

static void damaged_chunk_never_data(void)
{
	int fd = create_image();
	REQUIRE(fd >= 0);
	uint64_t lo, hi;
	REQUIRE(damage_a_chunk(fd, &lo, &hi) == 0);
	imago_image *img;
	REQUIRE(imago_image_open_fd(fd, "mem", &img, NULL) == 0);
	int bad, errors, damaged;
	run_jobs(img, 8, lo, hi, &bad, &errors, &damaged);
	CHECK(damaged > 0);
	CHECK(bad == 0);
	CHECK(errors == 0);
	/* direct: the chunk itself, twice (the failure is not cached as data) */
	uint8_t *buf = malloc(CS);
	for (int i = 0; i < 2; i++) {
		memset(buf, 0xAA, CS);
		CHECK(imago_image_pread(img, buf, 512, lo + 512) == -EBADMSG);
	}
	CHECK(imago_image_error(img)->chunk == (int64_t)(lo / CS));
	CHECK(strstr(imago_image_error(img)->msg, "damaged") != NULL);
	/* its neighbours read fine */
	if (lo >= CS)
		CHECK(imago_image_pread(img, buf, CS, lo - CS) == CS && memcmp(buf, dev + lo - CS, CS) == 0);
	struct imago_cache_stats st;
	imago_image_cache_stats(img, &st);
	CHECK(st.failed >= 2);
	free(buf);
	imago_image_close(img);
	close(fd);
}

int main(void)
{
	check_prog_ = "test_cache";
	make_device(24 * 1024 * 1024 + 777);
	RUN(concurrent_readers_default);
	RUN(concurrent_readers_tiny_cache);
	RUN(no_readahead_decodes_only_what_is_read);
	RUN(damaged_chunk_never_data);
	free(dev);
	CHECK_MAIN_END();
}
