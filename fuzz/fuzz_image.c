/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target for every reader of the image format (docs/FORMAT.md): the input is an
 * image file. It goes through
 *   - the random-access reader: imago_image_open_fd, _info, _meta_at/_meta, _extents and
 *     imago_image_pread (sequential odd-sized pieces, scattered offsets, chunk borders,
 *     reads at and past the end);
 *   - imago_verify, from a seekable file and from a pipe;
 *   - imago_restore from a seekable file and from a pipe (the sequential stream reader),
 *     into memfd targets, plus one run cancelled from the progress callback.
 *
 * Almost every byte of an image is under an XXH3 checksum, which a mutating fuzzer can
 * practically never get right, so each input is run a second time after fuzz_fix_checksums()
 * has recomputed every checksum it can find (header, frame headers, DATA checksums of
 * frames it can decode, index copies of them, sections, trailer). That second run is what
 * reaches the structural checks behind the checksums (fixup.c).
 *
 * Besides "no crash, no leak, no hang", the paths are checked against each other; a
 * disagreement is a finding (message on stderr, then abort()):
 *   - pread returns exactly min(len, device_size - offset) bytes, or an error;
 *   - bytes of non-USED extents read as zeros; the extent map handed out tiles the device;
 *   - a restore that succeeded wrote exactly what pread returns, and pread does not fail
 *     where a restore succeeded;
 *   - verify, restore (seekable and stream) and open agree on whether the image is sound;
 *   - every failing call filled its struct imago_err.
 *
 * IMAGO_FUZZ_VERBOSE=1 in the environment prints what each path said about each input.
 *
 * Work is bounded whatever device_size an image claims: at most DEV_CAP bytes of the device
 * are read sequentially or restored (restore gets target_size = DEV_CAP and must refuse a
 * larger device), plus a few reads near the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "imago.h"
#include "fixup.h"
#include "fuzz.h"

#define DEV_CAP (64ull << 20)          /* device bytes read in order / restored, at most */
#define PIECE_MAX ((1u << 20) + 4099)  /* largest single pread */
#define PIPE_MAX (1u << 20)            /* inputs larger than this skip the pipe runs */
#define SMALL_DEV (4ull << 20)         /* restore writes zeros (no SPARSE) up to this */
#define VERIFY_CAP (1ull << 30)        /* verify only devices claiming up to this */
#define EXT_KEPT 4096                  /* extents remembered for the zero-read check */
#define FIX_INPUT_MAX (8u << 20)       /* inputs larger than this are not fixed up */

static void finding(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void finding(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz_image: FINDING: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	abort();
}

/* ------------------------------------------------------------ file descriptors */

static int write_all(int fd, const uint8_t *d, size_t n)
{
	while (n) {
		ssize_t w = write(fd, d, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		d += w;
		n -= (size_t)w;
	}
	return 0;
}

static int memfd_with(const uint8_t *d, size_t n)
{
	int fd = memfd_create("fuzz-image", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (write_all(fd, d, n) < 0 || lseek(fd, 0, SEEK_SET) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read end of a pipe that holds all n bytes, its write end closed; -1 if it cannot. */
static int pipe_with(const uint8_t *d, size_t n)
{
	int p[2];

	if (n > PIPE_MAX || pipe2(p, O_CLOEXEC) < 0)
		return -1;
	int cap = fcntl(p[1], F_GETPIPE_SZ);
	if (cap >= 0 && (size_t)cap < n)
		cap = fcntl(p[1], F_SETPIPE_SZ, (int)n);
	/* Non-blocking, so that a pipe smaller than expected fails instead of hanging. */
	if (cap < 0 || (size_t)cap < n || fcntl(p[1], F_SETFL, O_NONBLOCK) < 0 ||
	    write_all(p[1], d, n) < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	close(p[1]);
	return p[0];
}

/* ------------------------------------------------------------ checks */

static void err_init(struct imago_err *e)
{
	memset(e, 0, sizeof(*e));
	e->code = 1; /* "not filled" sentinel */
	strcpy(e->msg, "(unset)");
}

static void check_err(const char *what, int rc, const struct imago_err *e)
{
	if (rc >= 0)
		return;
	if (!memchr(e->msg, '\0', sizeof(e->msg)))
		finding("%s failed (%d) with an unterminated error message", what, rc);
	if (e->code != rc)
		finding("%s returned %d but err.code is %d (msg: %s)", what, rc, e->code, e->msg);
}

struct state {
	const char *variant;
	uint64_t hdr_dev;            /* device_size as the raw header claims it, or 0 */

	imago_image *img;
	int img_fd;                  /* the fd the handle was opened on */
	int open_rc;
	struct imago_info info;

	struct imago_extent *ext;    /* the first EXT_KEPT extents */
	size_t next;                 /* extents seen */

	int verify_rc, verify_pipe_rc;
	struct imago_verify_result vres;

	int tgt[2];                  /* restore targets: from the file, from the pipe */
	int restore_rc[2];
	struct imago_restore_result rres[2];

	uint8_t *buf, *cmp;
};

struct ext_walk {
	struct state *st;
	uint64_t end;
};

static int ext_cb(void *opaque, const struct imago_extent *e)
{
	struct ext_walk *w = opaque;
	struct state *st = w->st;

	if (e->offset != w->end || e->length == 0 || e->length > UINT64_MAX - e->offset)
		finding("extent %zu [%llu +%llu) does not follow the previous one (end %llu)",
			st->next, (unsigned long long)e->offset, (unsigned long long)e->length,
			(unsigned long long)w->end);
	if (e->state < IMAGO_USED || e->state > IMAGO_UNTRIED)
		finding("extent %zu has state %d", st->next, (int)e->state);
	if (st->next > 0 && st->next <= EXT_KEPT && st->ext[st->next - 1].state == e->state)
		finding("extents %zu and %zu have the same state (map not coalesced)",
			st->next - 1, st->next);
	if (!imago_state_name(e->state))
		finding("imago_state_name(%d) is NULL", (int)e->state);
	if (st->next < EXT_KEPT)
		st->ext[st->next] = *e;
	st->next++;
	w->end = e->offset + e->length;
	return 0;
}

static int ext_stop_cb(void *opaque, const struct imago_extent *e)
{
	(void)e;
	++*(unsigned *)opaque;
	return 1;
}

/* Bytes of [off, off+n) that lie in remembered non-USED extents must be zero. */
static void check_zeros(const struct state *st, const uint8_t *b, uint64_t off, size_t n)
{
	size_t kept = st->next < EXT_KEPT ? st->next : EXT_KEPT;
	size_t lo = 0, hi = kept;

	while (lo < hi) { /* first extent ending after off */
		size_t mid = lo + (hi - lo) / 2;
		if (st->ext[mid].offset + st->ext[mid].length <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < kept && st->ext[i].offset < off + n; i++) {
		const struct imago_extent *e = &st->ext[i];
		if (e->state == IMAGO_USED)
			continue;
		uint64_t a = e->offset > off ? e->offset : off;
		uint64_t z = e->offset + e->length < off + n ? e->offset + e->length : off + n;
		for (uint64_t p = a; p < z; p++)
			if (b[p - off])
				finding("%s: byte %llu of a %s extent reads as 0x%02x, not zero",
					st->variant, (unsigned long long)p,
					imago_state_name(e->state), b[p - off]);
	}
}

static int any_restore_ok(const struct state *st)
{
	return st->restore_rc[0] == 0 || st->restore_rc[1] == 0;
}

static void do_pread(struct state *st, uint64_t off, size_t len)
{
	uint64_t dev = st->info.device_size;

	if (len > PIECE_MAX)
		len = PIECE_MAX;
	size_t want = off >= dev ? 0 : (dev - off < len ? (size_t)(dev - off) : len);
	ssize_t r = imago_image_pread(st->img, st->buf, len, off);
	if (r < 0) {
		const struct imago_err *e = imago_image_error(st->img);
		if (!e || !memchr(e->msg, '\0', sizeof(e->msg)))
			finding("pread error without a terminated message");
		if (want && any_restore_ok(st))
			finding("%s: pread(%zu @ %llu) fails (%zd: %s) but restore succeeded",
				st->variant, len, (unsigned long long)off, r, e->msg);
		return;
	}
	if ((size_t)r != want)
		finding("%s: pread(%zu @ %llu) of a %llu-byte device returned %zd, not %zu",
			st->variant, len, (unsigned long long)off, (unsigned long long)dev, r,
			want);
	check_zeros(st, st->buf, off, (size_t)r);
	for (int i = 0; i < 2; i++) {
		if (st->restore_rc[i] != 0 || r == 0)
			continue;
		ssize_t c = pread(st->tgt[i], st->cmp, (size_t)r, (off_t)off);
		if (c != r || memcmp(st->buf, st->cmp, (size_t)r) != 0)
			finding("%s: restore (%s) wrote other bytes than pread returns at %llu +%zd",
				st->variant, i ? "pipe" : "file", (unsigned long long)off, r);
	}
}

/* ------------------------------------------------------------ the passes */

static void pass_reader(struct state *st, const uint8_t *d, size_t n)
{
	struct imago_err err;

	st->img_fd = memfd_with(d, n);
	if (st->img_fd < 0)
		return;
	err_init(&err);
	st->open_rc = imago_image_open_fd(st->img_fd, "fuzz", &st->img, &err);
	check_err("imago_image_open_fd", st->open_rc, &err);
	if (st->open_rc < 0) {
		st->img = NULL;
		return;
	}
	if (imago_image_info(st->img, &st->info) != 0)
		finding("imago_image_info failed on an open image");

	/* Metadata, both ways. */
	const char *k, *v;
	size_t i;
	for (i = 0; i < (1u << 20) && imago_image_meta_at(st->img, i, &k, &v) == 1; i++) {
		if (!k || !v)
			finding("meta_at(%zu) gave a NULL key or value", i);
		(void)strlen(k);
		(void)strlen(v);
		if (!imago_image_meta(st->img, k))
			finding("meta_at(%zu) gave key \"%s\" that imago_image_meta does not find",
				i, k);
	}
	(void)imago_image_meta(st->img, "tool");
	(void)imago_image_meta(st->img, "");
	(void)imago_image_meta(st->img, "no.such.key");
	(void)imago_image_meta_at(st->img, i + 1, &k, &v);
	(void)imago_image_meta_at(st->img, SIZE_MAX, &k, &v);

	/* Extent map: must tile the device exactly and agree with info. */
	struct ext_walk w = { st, 0 };
	(void)imago_image_extents(st->img, ext_cb, &w);
	if (w.end != st->info.device_size)
		finding("extents end at %llu, device_size is %llu", (unsigned long long)w.end,
			(unsigned long long)st->info.device_size);
	if (st->next != st->info.extent_count)
		finding("%zu extents iterated, info.extent_count is %llu", st->next,
			(unsigned long long)st->info.extent_count);
	uint64_t total = 0;
	for (int s = IMAGO_USED; s <= IMAGO_UNTRIED; s++)
		total += st->info.bytes_by_state[s];
	if (total != st->info.device_size)
		finding("bytes_by_state add up to %llu, device_size is %llu",
			(unsigned long long)total, (unsigned long long)st->info.device_size);
	unsigned calls = 0;
	(void)imago_image_extents(st->img, ext_stop_cb, &calls);
	if (calls > 1)
		finding("imago_image_extents went on after the callback returned nonzero");
}

static void pass_reads(struct state *st)
{
	static const size_t pieces[] = { 4093, 1, 65537, 511, 262147, 65536, 1048579, 3, 131071 };
	uint64_t dev = st->info.device_size, cs = st->info.chunk_size;

	/* In order, odd-sized pieces, over the first DEV_CAP bytes. */
	uint64_t lim = dev < DEV_CAP ? dev : DEV_CAP, off = 0;
	for (size_t k = 0; off < lim; k++) {
		size_t len = pieces[k % (sizeof(pieces) / sizeof(pieces[0]))];
		do_pread(st, off, len);
		off += len;
	}

	/* Scattered, chunk borders, the end and beyond. */
	for (uint64_t k = 1; k < 8; k++)
		do_pread(st, dev / 8 * k + k * 4099 % (dev ? dev : 1), 4096 + (size_t)k);
	if (cs) {
		for (uint64_t k = 1; k <= 3; k++) {
			do_pread(st, cs * k - 1, 2);
			do_pread(st, cs * k - 3, (size_t)(cs < PIECE_MAX - 6 ? cs + 6 : PIECE_MAX));
		}
		if (dev > cs)
			do_pread(st, dev - cs - 7, (size_t)(cs < PIECE_MAX - 14 ? cs + 14 : PIECE_MAX));
	}
	do_pread(st, dev ? dev - 1 : 0, 4096);
	do_pread(st, dev > 4096 ? dev - 4096 : 0, 8192);
	do_pread(st, dev, 1);
	do_pread(st, dev, 0);
	do_pread(st, 0, 0);
	do_pread(st, dev + 1, 512);
	do_pread(st, UINT64_MAX - 10, 100);
	do_pread(st, UINT64_MAX, 1);
}

/* Asks to cancel at every call; counts the calls made before the end (the final call,
 * done == total, comes when the work is done and cannot cancel it). */
static int cancel_cb(void *opaque, uint64_t done, uint64_t total)
{
	if (done < total)
		++*(unsigned *)opaque;
	return 1;
}

static int count_cb(void *opaque, uint64_t done, uint64_t total)
{
	if (done > total)
		finding("progress done %llu > total %llu", (unsigned long long)done,
			(unsigned long long)total);
	++*(unsigned *)opaque;
	return 0;
}

static int do_restore(struct state *st, int image_fd, int target_fd, int cancel,
		      struct imago_restore_result *res)
{
	struct imago_err err;
	unsigned calls = 0;
	struct imago_restore_opts o = {
		.image_fd = image_fd,
		.image_name = "fuzz",
		.target_fd = target_fd,
		.target_size = DEV_CAP,
		.flags = st->hdr_dev <= SMALL_DEV ? 0 : IMAGO_RESTORE_SPARSE,
		.threads = 1,
		.progress = cancel ? cancel_cb : count_cb,
		.progress_opaque = &calls,
	};

	err_init(&err);
	memset(res, 0, sizeof(*res));
	int rc = imago_restore(&o, res, &err);
	check_err("imago_restore", rc, &err);
	if (rc == 0 && cancel && calls)
		finding("restore went on after progress asked to cancel");
	return rc;
}

static int do_verify(int image_fd, int against_fd, uint64_t against_size,
		     struct imago_verify_result *res)
{
	struct imago_err err;
	unsigned calls = 0;
	struct imago_verify_opts o = {
		.image_fd = image_fd,
		.image_name = "fuzz",
		.against_fd = against_fd,
		.against_size = against_size,
		.threads = 1,
		.progress = count_cb,
		.progress_opaque = &calls,
	};

	err_init(&err);
	memset(res, 0, sizeof(*res));
	int rc = imago_verify(&o, res, &err);
	check_err("imago_verify", rc, &err);
	return rc;
}

static int flip_byte(int fd, uint64_t at)
{
	uint8_t c;

	if (pread(fd, &c, 1, (off_t)at) != 1)
		return -1;
	c ^= 0x5a;
	return pwrite(fd, &c, 1, (off_t)at) == 1 ? 0 : -1;
}

static void against_one(struct state *st, int image_fd, int src, uint64_t size, int must_differ,
			const char *what)
{
	struct imago_verify_result r;

	if (lseek(image_fd, 0, SEEK_SET) != 0)
		return;
	int rc = do_verify(image_fd, src, size, &r);
	if (rc != 0 && rc != -EILSEQ)
		finding("%s: verify against a source %s gives %d, not 0 or -EILSEQ", st->variant,
			what, rc);
	if (must_differ && rc != -EILSEQ)
		finding("%s: verify against a source %s gives %d, not -EILSEQ", st->variant, what,
			rc);
}

/* Verify against a copy of the image's own restore with one byte changed: in a USED
 * extent it must be found; elsewhere (and with the source one byte short) whatever the
 * library decides, as long as it says so cleanly. */
static void against_changed(struct state *st, int image_fd)
{
	uint64_t dev = st->vres.device_size, used_at = UINT64_MAX, other_at = UINT64_MAX;
	size_t kept = st->next < EXT_KEPT ? st->next : EXT_KEPT;

	if (dev == 0 || dev > SMALL_DEV || st->open_rc != 0)
		return;
	int c = memfd_create("fuzz-against", MFD_CLOEXEC);
	if (c < 0)
		return;
	for (uint64_t off = 0; off < dev;) {
		size_t n = dev - off < PIECE_MAX ? (size_t)(dev - off) : PIECE_MAX;
		if (pread(st->tgt[0], st->cmp, n, (off_t)off) != (ssize_t)n ||
		    pwrite(c, st->cmp, n, (off_t)off) != (ssize_t)n) {
			close(c);
			return;
		}
		off += n;
	}
	for (size_t i = 0; i < kept; i++) {
		const struct imago_extent *e = &st->ext[i];
		if (e->state == IMAGO_USED && used_at == UINT64_MAX)
			used_at = e->offset + e->length / 2;
		else if (e->state != IMAGO_USED && other_at == UINT64_MAX)
			other_at = e->offset + e->length / 2;
	}
	if (used_at != UINT64_MAX && flip_byte(c, used_at) == 0) {
		against_one(st, image_fd, c, dev, 1, "with a USED byte changed");
		(void)flip_byte(c, used_at);
	}
	if (other_at != UINT64_MAX && flip_byte(c, other_at) == 0) {
		against_one(st, image_fd, c, dev, 0, "with a non-USED byte changed");
		(void)flip_byte(c, other_at);
	}
	against_one(st, image_fd, c, dev - 1, 0, "one byte short");
	close(c);
}

static void pass_restore_verify(struct state *st, const uint8_t *d, size_t n)
{
	int fd = memfd_with(d, n), pfd;

	st->tgt[0] = memfd_create("fuzz-target", MFD_CLOEXEC);
	st->tgt[1] = memfd_create("fuzz-target-pipe", MFD_CLOEXEC);
	if (fd < 0 || st->tgt[0] < 0 || st->tgt[1] < 0) {
		if (fd >= 0)
			close(fd);
		return;
	}

	st->restore_rc[0] = do_restore(st, fd, st->tgt[0], 0, &st->rres[0]);
	if ((pfd = pipe_with(d, n)) >= 0) {
		st->restore_rc[1] = do_restore(st, pfd, st->tgt[1], 0, &st->rres[1]);
		close(pfd);
	}
	if (st->hdr_dev > SMALL_DEV && st->hdr_dev <= DEV_CAP) {
		/* Progress ticks come every 100 ms: only a long restore sees one. */
		struct imago_restore_result r;
		int t = memfd_create("fuzz-target-cancel", MFD_CLOEXEC);
		if (t >= 0 && lseek(fd, 0, SEEK_SET) == 0)
			(void)do_restore(st, fd, t, 1, &r);
		if (t >= 0)
			close(t);
	}

	if (st->hdr_dev <= VERIFY_CAP) {
		if (lseek(fd, 0, SEEK_SET) == 0)
			st->verify_rc = do_verify(fd, -1, 0, &st->vres);
		if ((pfd = pipe_with(d, n)) >= 0) {
			struct imago_verify_result r;
			st->verify_pipe_rc = do_verify(pfd, -1, 0, &r);
			close(pfd);
		}
		if (st->verify_rc == 0 && st->restore_rc[0] == 0 && lseek(fd, 0, SEEK_SET) == 0) {
			struct imago_verify_result r;
			int rc = do_verify(fd, st->tgt[0], st->vres.device_size, &r);
			if (rc != 0)
				finding("%s: verify against the image's own restore gives %d",
					st->variant, rc);
			against_changed(st, fd);
		}
	}
	close(fd);
}

/* Paths that accept an image must agree with each other about it. */
static void cross_check(struct state *st)
{
	const uint8_t *digest = NULL;
	uint64_t dev = 0;
	const char *who = NULL;

	if (st->open_rc == 0) {
		digest = st->info.digest;
		dev = st->info.device_size;
		who = "info";
	}
	struct {
		int rc;
		const char *name;
		const uint8_t *digest;
		uint64_t dev;
	} ok[3] = {
		{ st->verify_rc, "verify", st->vres.digest, st->vres.device_size },
		{ st->restore_rc[0], "restore (file)", st->rres[0].digest, st->rres[0].device_size },
		{ st->restore_rc[1], "restore (pipe)", st->rres[1].digest, st->rres[1].device_size },
	};
	for (int i = 0; i < 3; i++) {
		if (ok[i].rc != 0)
			continue;
		if (!who) {
			digest = ok[i].digest;
			dev = ok[i].dev;
			who = ok[i].name;
			continue;
		}
		if (ok[i].dev != dev || memcmp(ok[i].digest, digest, IMAGO_DIGEST_LEN) != 0)
			finding("%s: %s and %s disagree on device size or digest", st->variant,
				who, ok[i].name);
	}

	/* Sound by verify => readable and restorable (within the caps). */
	if (st->verify_rc == 0) {
		if (st->open_rc != 0)
			finding("%s: verify passes but open fails (%d)", st->variant, st->open_rc);
		if (st->vres.device_size <= DEV_CAP && st->restore_rc[0] != 0)
			finding("%s: verify passes but restore from the file fails (%d)",
				st->variant, st->restore_rc[0]);
		if (st->vres.device_size <= DEV_CAP && st->restore_rc[1] < 0)
			finding("%s: verify passes but restore from a pipe fails (%d)",
				st->variant, st->restore_rc[1]);
		if (st->verify_pipe_rc < 0 && st->verify_pipe_rc != -ESPIPE)
			finding("%s: verify passes on the file but fails on a pipe (%d)",
				st->variant, st->verify_pipe_rc);
	}
	/* A damaged image (verify: -EBADMSG) must not restore. */
	if (st->verify_rc == -EBADMSG) {
		for (int i = 0; i < 2; i++)
			if (st->restore_rc[i] == 0)
				finding("%s: verify says damaged but restore (%s) succeeds",
					st->variant, i ? "pipe" : "file");
	}
	/* Whatever restored must open. */
	if (any_restore_ok(st) && st->open_rc != 0)
		finding("%s: restore succeeds but open fails (%d)", st->variant, st->open_rc);
}

static void run_one(const uint8_t *d, size_t n, const char *variant)
{
	struct state st;

	memset(&st, 0, sizeof(st));
	st.variant = variant;
	st.tgt[0] = st.tgt[1] = st.img_fd = -1;
	st.open_rc = st.verify_rc = st.verify_pipe_rc = 1; /* "not run" */
	st.restore_rc[0] = st.restore_rc[1] = 1;
	st.hdr_dev = n >= 40 ? fuzz_rd64(d + 32) : 0;
	/* Allocated once and kept (still reachable, so not a leak): per-input allocations
	 * of this size would dominate the fuzzer's time under ASan. */
	static struct imago_extent *ext;
	static uint8_t *buf, *cmp;
	if (!ext)
		ext = calloc(EXT_KEPT, sizeof(*ext));
	if (!buf)
		buf = malloc(PIECE_MAX);
	if (!cmp)
		cmp = malloc(PIECE_MAX);
	if (!ext || !buf || !cmp)
		return;
	st.ext = ext;
	st.buf = buf;
	st.cmp = cmp;

	pass_reader(&st, d, n);
	pass_restore_verify(&st, d, n);
	if (st.img)
		pass_reads(&st);
	cross_check(&st);
	if (getenv("IMAGO_FUZZ_VERBOSE"))
		fprintf(stderr,
			"fuzz_image: %zu bytes, %s: open %d (device %llu, %zu extents), verify %d, "
			"verify-pipe %d, restore %d, restore-pipe %d\n",
			n, variant, st.open_rc, (unsigned long long)st.info.device_size, st.next,
			st.verify_rc, st.verify_pipe_rc, st.restore_rc[0], st.restore_rc[1]);
	if (st.img)
		imago_image_close(st.img);
	if (st.img_fd >= 0)
		close(st.img_fd);
	for (int i = 0; i < 2; i++)
		if (st.tgt[i] >= 0)
			close(st.tgt[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run_one(data, size, "as given");
	if (size == 0 || size > FIX_INPUT_MAX)
		return 0;
	uint8_t *fixed = malloc(size);
	if (!fixed)
		return 0;
	memcpy(fixed, data, size);
	fuzz_fix_checksums(fixed, size);
	if (memcmp(fixed, data, size) != 0)
		run_one(fixed, size, "checksums fixed");
	free(fixed);
	return 0;
}
