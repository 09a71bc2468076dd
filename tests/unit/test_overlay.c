/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The copy-on-write overlay (lib/backend/overlay.c) over a real image backend: writers
 * and readers at once (each writer owns a region and checks what it wrote; readers of the
 * untouched regions see the image), everything written survives closing and reopening,
 * a block's records never exceed two however often it is rewritten, the image file is
 * never written, another image's overlay is refused, and the block status marks
 * overlay blocks as data.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/overlay.h"
#include "check.h"

#define DEV (6u * 1024 * 1024 + 1000)
#define REGION (512u * 1024)
#define NW 4

static uint8_t *dev;

static int image_of(const uint8_t *d, size_t size)
{
	int src = memfd_create("src", 0), out = memfd_create("img", 0);
	if (src < 0 || out < 0 || write(src, d, size) != (ssize_t)size)
		return -1;
	lseek(src, 0, SEEK_SET);
	struct imago_create_opts o = { .source_fd = src, .source_size = size, .out_fd = out,
				       .chunk_size = 65536, .threads = 1 };
	struct imago_create_result res;
	struct imago_err err;
	int r = imago_create(&o, &res, &err);
	close(src);
	return r < 0 ? -1 : out;
}

static struct backend *open_image(int fd)
{
	imago_image *img;
	struct backend *b;
	if (imago_image_open_fd(fd, "mem", &img, NULL) < 0)
		return NULL;
	return backend_from_image(img, "mem", &b, NULL) < 0 ? NULL : b;
}

struct job {
	struct backend *b;
	int id;
	int bad;
};

static uint8_t val(int id, int round, uint64_t i)
{
	return (uint8_t)(id * 37 + round * 11 + i % 251);
}

/* Writer id owns [id * 2 * REGION, id * 2 * REGION + REGION): odd-sized, unaligned writes
 * covering it, each read back at once. */
static void *writer(void *arg)
{
	struct job *j = arg;
	uint64_t base = (uint64_t)j->id * 2 * REGION;
	uint8_t *buf = malloc(REGION), *chk = malloc(REGION);
	for (int round = 0; round < 3; round++) {
		for (uint64_t i = 0; i < REGION; i++)
			buf[i] = val(j->id, round, i);
		for (uint64_t off = 0; off < REGION;) {
			size_t n = 1000 + (size_t)((off * 7 + (uint64_t)round) % 9000);
			if (n > REGION - off)
				n = (size_t)(REGION - off);
			if (j->b->ops->pwrite(j->b, buf + off, n, base + off) != (ssize_t)n)
				j->bad++;
			off += n;
		}
		if (backend_pread(j->b, chk, REGION, base) != REGION || memcmp(chk, buf, REGION) != 0)
			j->bad++;
	}
	free(buf);
	free(chk);
	return NULL;
}

/* Readers read the regions nobody writes (odd multiples of REGION, and past the writers). */
static void *reader(void *arg)
{
	struct job *j = arg;
	uint8_t *buf = malloc(100000);
	uint64_t s = (uint64_t)j->id;
	for (int i = 0; i < 300; i++) {
		s = s * 6364136223846793005ull + 1;
		uint64_t k = (s >> 20) % NW, off = (2 * k + 1) * REGION + (s >> 40) % (REGION - 100000);
		if (backend_pread(j->b, buf, 100000, off) != 100000 || memcmp(buf, dev + off, 100000) != 0)
			j->bad++;
	}
	free(buf);
	return NULL;
}

static void writers_and_readers(void)
{
	uint64_t s = 7;
	dev = malloc(DEV);
	for (size_t i = 0; i < DEV; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		dev[i] = i % 300000 < 100000 ? 0 : (uint8_t)(s >> 56);
	}
	int ifd = image_of(dev, DEV);
	REQUIRE(ifd >= 0);
	struct stat st0;
	fstat(ifd, &st0);
	uint8_t *img_before = malloc((size_t)st0.st_size);
	REQUIRE(pread(ifd, img_before, (size_t)st0.st_size, 0) == st0.st_size);

	int ofd = memfd_create("ovl", 0), keep = dup(ofd); /* backend_close closes its fd */
	struct backend *lower = open_image(ifd), *b;
	struct imago_err err;
	REQUIRE(lower);
	REQUIRE(overlay_open_fd(lower, ofd, "ovl", OVL_CREATE, 4096, &b, &err) == 0);
	CHECK(b->size == DEV);
	pthread_t t[2 * NW];
	struct job j[2 * NW];
	for (int i = 0; i < 2 * NW; i++) {
		j[i] = (struct job){ .b = b, .id = i % NW };
		pthread_create(&t[i], NULL, i < NW ? writer : reader, &j[i]);
	}
	int bad = 0;
	for (int i = 0; i < 2 * NW; i++) {
		pthread_join(t[i], NULL);
		bad += j[i].bad;
	}
	CHECK(bad == 0);
	CHECK(b->ops->flush(b) == 0);
	/* block status: a written block is data */
	uint64_t len;
	enum imago_state state;
	CHECK(b->ops->status(b, 0, &len, &state) == 0 && state == IMAGO_USED && len >= REGION);
	uint64_t blocks, damaged;
	overlay_counts(b, &blocks, &damaged);
	CHECK(blocks == NW * REGION / 4096);
	CHECK(damaged == 0);
	backend_close(b);

	/* three rounds of rewrites, two records per block at most */
	struct stat st;
	fstat(keep, &st);
	CHECK((uint64_t)st.st_size == OVL_HEADER_SIZE + 2ull * blocks * (OVL_REC_HDR_SIZE + 4096));

	/* reopen: the last round is there, the rest is the image */
	lower = open_image(ifd);
	REQUIRE(lower);
	REQUIRE(overlay_open_fd(lower, dup(keep), "ovl", 0, 0, &b, &err) == 0);
	uint8_t *all = malloc(DEV);
	CHECK(backend_pread(b, all, DEV, 0) == DEV);
	int wrong = 0;
	for (uint64_t i = 0; i < DEV; i++) {
		uint64_t k = i / REGION;
		uint8_t want = (k % 2 == 0 && k / 2 < NW) ? val((int)(k / 2), 2, i % REGION) : dev[i];
		wrong += all[i] != want;
	}
	CHECK(wrong == 0);
	backend_close(b);

	/* the image was never written */
	uint8_t *img_after = malloc((size_t)st0.st_size);
	CHECK(pread(ifd, img_after, (size_t)st0.st_size, 0) == st0.st_size);
	CHECK(memcmp(img_before, img_after, (size_t)st0.st_size) == 0);

	/* another image (one byte differs): refused */
	dev[DEV / 2] ^= 1;
	int ifd2 = image_of(dev, DEV);
	lower = open_image(ifd2);
	REQUIRE(lower);
	int ofd3 = memfd_create("ovl3", 0);
	REQUIRE(pwrite(ofd3, "", 0, 0) == 0);
	/* copy the overlay */
	uint8_t *ov = malloc((size_t)st.st_size);
	CHECK(pread(keep, ov, (size_t)st.st_size, 0) == st.st_size);
	CHECK(pwrite(ofd3, ov, (size_t)st.st_size, 0) == st.st_size);
	CHECK(overlay_open_fd(lower, ofd3, "ovl3", 0, 0, &b, &err) == -EXDEV);
	CHECK(strstr(err.msg, "another image") != NULL);
	backend_close(lower);
	close(ofd3);
	close(keep);
	close(ifd);
	close(ifd2);
	free(ov);
	free(all);
	free(img_before);
	free(img_after);
	free(dev);
}

int main(void)
{
	check_prog_ = "test_overlay";
	RUN(writers_and_readers);
	CHECK_MAIN_END();
}
