/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The restore target writer (lib/image/target.c): what it writes reads back right
 * whichever way it went (direct I/O, in flight or not, the page cache, or a fallback
 * from one to the other), zero blocks become holes on a sparse target, every buffer
 * lent to an asynchronous write comes back exactly once, and the fd's flags come back.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "image/target.h"
#include "imago.h"

#define MiB (1u << 20)
#define BLK 4096u

static int tmp_file(int extra_flags)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof(path), "%s/imago-target.XXXXXX", dir && *dir ? dir : "/tmp");
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0) {
		unlink(path);
		if (extra_flags && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | extra_flags) < 0) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

static uint8_t *aligned(size_t len)
{
	void *p = NULL;
	if (posix_memalign(&p, TARGET_BUF_ALIGN, len + TARGET_BUF_ALIGN) != 0)
		return NULL;
	return p;
}

/* A chunk with data blocks and zero runs of 1 block, 3 blocks and 36 blocks (a gap
 * longer than the direct I/O minimum hole), then data to the end. */
static void fill_pattern(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + seed + (i >> 12));
	for (size_t i = 0; i < len; i++)
		if (p[i] == 0)
			p[i] = 1;
	memset(p + 1 * BLK, 0, BLK);
	memset(p + 3 * BLK, 0, 3 * BLK);
	memset(p + 10 * BLK, 0, 36 * BLK);
}

static int read_back(int wfd, uint8_t *got, size_t len, uint64_t off)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", wfd);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t r = pread(fd, got, len, (off_t)off);
	close(fd);
	return r == (ssize_t)len ? 0 : -EIO;
}

/* Whether [off, off+len) holds no data (a hole) as SEEK_DATA sees it. */
static int is_hole(int fd, uint64_t off, uint64_t len)
{
	off_t d = lseek(fd, (off_t)off, SEEK_DATA);
	return d < 0 ? errno == ENXIO : (uint64_t)d >= off + len;
}

/* A sparse restore: two chunks, the second cut short at an odd length (the device end),
 * so the tail cannot go through direct I/O. */
static void sparse_chunks_and_odd_tail(void)
{
	int fd = tmp_file(0);
	REQUIRE(fd >= 0);
	size_t tail = 3 * MiB / 4 + 1234;
	uint8_t *a = aligned(MiB), *b = aligned(MiB), *got = malloc(2 * MiB);
	REQUIRE(a && b && got);
	fill_pattern(a, MiB, 1);
	fill_pattern(b, tail, 2);
	struct target t;
	REQUIRE(target_open(&t, fd, IMAGO_RESTORE_SPARSE, MiB, NULL) == 0);
	CHECK(target_write(&t, a, 0, MiB, NULL) == 0);
	CHECK(target_write(&t, b, MiB, tail, NULL) == 0);
	target_close(&t);
	CHECK(!(fcntl(fd, F_GETFL) & O_DIRECT));
	CHECK(lseek(fd, 0, SEEK_END) == (off_t)(MiB + tail));
	CHECK(read_back(fd, got, MiB + tail, 0) == 0);
	CHECK(memcmp(got, a, MiB) == 0);
	CHECK(memcmp(got + MiB, b, tail) == 0);
	/* The 144 KiB zero run is a hole either way; the short ones only without direct I/O. */
	CHECK(fsync(fd) == 0);
	CHECK(is_hole(fd, 10 * BLK, 36 * BLK));
	CHECK(is_hole(fd, MiB + 10 * BLK, 36 * BLK));
	if (!t.direct_ok)
		CHECK(is_hole(fd, BLK, BLK));
	free(a);
	free(b);
	free(got);
	close(fd);
}

/* Direct I/O told a wrong (too fine) alignment, and a buffer at an odd address: the
 * refused or impossible writes go through the page cache, and the bytes are right. */
static void fallback_when_refused(void)
{
	int fd = tmp_file(0);
	REQUIRE(fd >= 0);
	uint8_t *a = aligned(MiB), *got = malloc(MiB);
	REQUIRE(a && got);
	fill_pattern(a, MiB, 3);
	struct target t;
	REQUIRE(target_open(&t, fd, 0, 64 * 1024, NULL) == 0);
	t.align = 1;
	t.mem_align = 1;
	CHECK(target_write(&t, a + 1, 7, 100000, NULL) == 0);  /* odd offset, odd address */
	CHECK(target_write(&t, a + 4096, 100007, 4096, NULL) == 0);
	t.align = 512;
	t.mem_align = 512;
	CHECK(target_write(&t, a + 1, 200000 + 1, 5000, NULL) == 0); /* odd address only */
	target_close(&t);
	CHECK(!(fcntl(fd, F_GETFL) & O_DIRECT));
	CHECK(read_back(fd, got, 100000, 7) == 0 && memcmp(got, a + 1, 100000) == 0);
	CHECK(read_back(fd, got, 4096, 100007) == 0 && memcmp(got, a + 4096, 4096) == 0);
	CHECK(read_back(fd, got, 5000, 200001) == 0 && memcmp(got, a + 1, 5000) == 0);
	free(a);
	free(got);
	close(fd);
}

/* A target that is not sparse: zero ranges are made zero over old data. */
static void zero_over_old_data(void)
{
	int fd = tmp_file(0);
	REQUIRE(fd >= 0);
	uint8_t *a = aligned(2 * MiB), *got = malloc(2 * MiB);
	REQUIRE(a && got);
	memset(a, 0xab, 2 * MiB);
	REQUIRE(pwrite(fd, a, 2 * MiB, 0) == (ssize_t)(2 * MiB));
	struct target t;
	REQUIRE(target_open(&t, fd, 0, 64 * 1024, NULL) == 0);
	fill_pattern(a, MiB, 4);
	CHECK(target_write(&t, a, 0, MiB, NULL) == 0); /* zero blocks written, not skipped */
	CHECK(target_zero(&t, MiB, MiB - 4096) == 0);
	target_close(&t);
	CHECK(read_back(fd, got, 2 * MiB, 0) == 0);
	CHECK(memcmp(got, a, MiB) == 0);
	size_t nz = 0;
	for (size_t i = MiB; i < 2 * MiB - 4096; i++)
		nz += got[i] != 0;
	CHECK(nz == 0);
	CHECK(got[2 * MiB - 4096] == 0xab && got[2 * MiB - 1] == 0xab);
	free(a);
	free(got);
	close(fd);
}

/* An fd the caller opened with O_DIRECT keeps it. */
static void caller_flags_kept(void)
{
	int fd = tmp_file(O_DIRECT);
	if (fd < 0)
		fd = tmp_file(0); /* no direct I/O here: still check the flags come back */
	REQUIRE(fd >= 0);
	int before = fcntl(fd, F_GETFL);
	uint8_t *a = aligned(MiB);
	REQUIRE(a);
	fill_pattern(a, MiB, 5);
	struct target t;
	REQUIRE(target_open(&t, fd, IMAGO_RESTORE_SPARSE, MiB, NULL) == 0);
	CHECK(target_write(&t, a, 0, 1000, NULL) == 0); /* a short piece: page cache */
	target_close(&t);
	CHECK(fcntl(fd, F_GETFL) == before);
	free(a);
	close(fd);
}

/* Tokens released, and whether one came back twice or was never lent. */
static int released[16];
static int release_bad;

static int *in_calls; /* the token whose pieces are being written: no release yet */

static void release(void *token)
{
	if (token == in_calls)
		release_bad = 1;
	int i = (int)((uint8_t *)token - (uint8_t *)released) / (int)sizeof(released[0]);
	if (i < 0 || i >= 16 || released[i] != 1)
		release_bad = 1;
	else
		released[i] = 2;
}

/* Many chunks with writes in flight, sparse and not, an odd tail: every byte right,
 * every held buffer given back once, none while still in use (the buffers are
 * overwritten as soon as they come back, so a late write would show). */
static void async_writes(unsigned flags)
{
	int fd = tmp_file(0);
	REQUIRE(fd >= 0);
	enum { N = 12 };
	size_t tail = MiB / 2 + 4096 + 77, total = (N - 1) * (size_t)MiB + tail;
	uint8_t *want = malloc(total), *got = malloc(total), *bufs[N];
	REQUIRE(want && got);
	for (int i = 0; i < N; i++) {
		bufs[i] = aligned(MiB);
		REQUIRE(bufs[i]);
		fill_pattern(want + (size_t)i * MiB, i == N - 1 ? tail : MiB, (unsigned)i + 10);
	}
	memset(released, 0, sizeof(released));
	release_bad = 0;
	REQUIRE(ftruncate(fd, (off_t)total) == 0); /* as restore does: writes can overlap */
	struct target t;
	REQUIRE(target_open(&t, fd, flags, MiB, release) == 0);
	bool async = t.aio != NULL;
	for (int i = 0; i < N; i++) {
		size_t len = i == N - 1 ? tail : MiB;
		memcpy(bufs[i], want + (size_t)i * MiB, len);
		released[i] = 1;
		int r = target_write(&t, bufs[i], (uint64_t)i * MiB, len, &released[i]);
		CHECK(r == 0 || r == 1);
		if (r == 0)
			released[i] = 3; /* written at once, never held */
		for (int k = 0; k <= i; k++)
			if (released[k] == 2 || released[k] == 3)
				memset(bufs[k], 0xee, MiB); /* a buffer given back is reused */
	}
	CHECK(target_flush(&t) == 0);
	target_close(&t);
	CHECK(!release_bad);
	for (int i = 0; i < N; i++)
		CHECK(released[i] == 2 || released[i] == 3);
	if (!async)
		for (int i = 0; i < N; i++)
			CHECK(released[i] == 3);
	CHECK(lseek(fd, 0, SEEK_END) >= (off_t)total);
	CHECK(read_back(fd, got, total, 0) == 0);
	CHECK(memcmp(got, want, total) == 0);
	for (int i = 0; i < N; i++)
		free(bufs[i]);
	free(want);
	free(got);
	close(fd);
}

static void async_sparse(void)
{
	async_writes(IMAGO_RESTORE_SPARSE);
}

static void async_dense(void)
{
	async_writes(0);
}

/* One buffer written in pieces by several calls with the same token between
 * target_begin and target_end (as a restore that skips FREE ranges does): never released
 * before target_end, released once afterwards if target_end said 1, never if it said 0,
 * however early each piece finished. */
static void one_token_many_pieces(void)
{
	int fd = tmp_file(0);
	REQUIRE(fd >= 0);
	size_t total = 8 * (size_t)MiB;
	REQUIRE(ftruncate(fd, (off_t)total) == 0);
	uint8_t *bufs[8], *got = malloc(MiB);
	REQUIRE(got);
	memset(released, 0, sizeof(released));
	release_bad = 0;
	struct target t;
	REQUIRE(target_open(&t, fd, IMAGO_RESTORE_SPARSE, MiB, release) == 0);
	bool async = t.aio != NULL;
	int held[8] = { 0 }, nheld = 0;
	for (int i = 0; i < 8; i++) {
		bufs[i] = aligned(MiB);
		REQUIRE(bufs[i]);
		fill_pattern(bufs[i], MiB, (unsigned)i + 20);
		released[i] = 1;
		uint64_t off = (uint64_t)i * MiB;
		/* three pieces, the middle one left out (a range that is not restored) */
		in_calls = &released[i];
		CHECK(target_begin(&t, &released[i]) == 0);
		int r1 = target_write(&t, bufs[i], off, 256 * 1024, &released[i]);
		usleep(2000); /* let the first piece finish before the next is submitted */
		int r2 = target_write(&t, bufs[i] + 512 * 1024, off + 512 * 1024, 256 * 1024, &released[i]);
		usleep(2000);
		int r3 = target_write(&t, bufs[i] + 768 * 1024, off + 768 * 1024, 256 * 1024, &released[i]);
		CHECK(r1 >= 0 && r2 >= 0 && r3 >= 0);
		int re = target_end(&t, &released[i]);
		in_calls = NULL;
		CHECK(re == 0 || re == 1);
		held[i] = re == 1;
		nheld += held[i] || r1 == 1 || r2 == 1 || r3 == 1;
	}
	if (async)
		CHECK(nheld > 0); /* the in-flight path was taken */
	CHECK(target_flush(&t) == 0);
	target_close(&t);
	CHECK(!release_bad);
	for (int i = 0; i < 8; i++) {
		CHECK(released[i] == (held[i] ? 2 : 1));
		CHECK(read_back(fd, got, MiB, (uint64_t)i * MiB) == 0);
		CHECK(memcmp(got, bufs[i], 256 * 1024) == 0);
		CHECK(memcmp(got + 512 * 1024, bufs[i] + 512 * 1024, 512 * 1024) == 0);
		size_t nz = 0;
		for (size_t b = 256 * 1024; b < 512 * 1024; b++)
			nz += got[b] != 0;
		CHECK(nz == 0);
		free(bufs[i]);
	}
	free(got);
	close(fd);
}

/* A write that fails (past the file size limit: EFBIG, from the kernel's completion when
 * the write was in flight) is reported with its offset and is sticky; a held buffer still
 * comes back. */
static void write_failure_reported(void)
{
	int fd = tmp_file(0);
	REQUIRE(fd >= 0);
	uint8_t *a = aligned(MiB);
	REQUIRE(a);
	fill_pattern(a, MiB, 9);
	memset(released, 0, sizeof(released));
	release_bad = 0;
	struct rlimit old, lim;
	REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
	lim = old;
	lim.rlim_cur = 2 * MiB;
	signal(SIGXFSZ, SIG_IGN);
	REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	struct target t;
	REQUIRE(target_open(&t, fd, 0, MiB, release) == 0);
	released[0] = 1;
	CHECK(target_write(&t, a, 0, MiB, &released[0]) >= 0);
	released[1] = 1;
	int r = target_write(&t, a, 3 * MiB, MiB, &released[1]);
	if (r >= 0)
		r = target_flush(&t);
	CHECK(r == -EFBIG);
	CHECK(t.err == -EFBIG && t.err_off == 3 * MiB);
	CHECK(target_write(&t, a, 4 * MiB, MiB, NULL) == -EFBIG); /* sticky */
	CHECK(target_flush(&t) == -EFBIG);
	target_close(&t);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	CHECK(!release_bad);
	uint8_t *got = malloc(MiB);
	CHECK(got && read_back(fd, got, MiB, 0) == 0 && memcmp(got, a, MiB) == 0);
	free(got);
	free(a);
	close(fd);
}

int main(void)
{
	check_prog_ = "target";
	RUN(sparse_chunks_and_odd_tail);
	RUN(fallback_when_refused);
	RUN(zero_over_old_data);
	RUN(caller_flags_kept);
	RUN(async_sparse);
	RUN(async_dense);
	RUN(one_token_many_pieces);
	RUN(write_failure_reported);
	CHECK_MAIN_END();
}
