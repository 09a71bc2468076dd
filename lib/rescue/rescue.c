// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * The rescue phases (rescue.h). Reads go straight to the source fd with pread (not
 * through struct region): a rescue must see each read's error and time, reopen the
 * device, and use O_DIRECT-aligned buffers, which the region layer does not offer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rescue/rescue.h"
#include "util/err.h"

#define ALIGN 4096

struct rctx {
	const struct rescue_opts *o;
	struct rescue_map *m;
	struct rescue_stats *st;
	struct imago_err *err;
	int fd;
	uint8_t *buf;
	size_t bufsize;
	uint32_t ss;          /* sector size */
	uint32_t cluster;
	uint64_t skip, skip_min, skip_max;
	struct rescue_range whole;
	const struct rescue_range *dom;
	size_t ndom;
	double t0, last_save, last_status, last_good_t;
	/* read costs, measured as the rescue goes (the trimming cost model) */
	double fail_sum, sec_sum;
	uint64_t fail_n, sec_n;
	int stop;             /* 1: a limit was reached; <0: an error/cancel to return */
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill_stats(struct rctx *c)
{
	rescue_map_totals(c->m, c->st->by_status);
	c->st->size = c->m->size;
	c->st->elapsed = now() - c->t0;
	c->st->last_good = c->last_good_t > 0 ? now() - c->last_good_t : -1;
	c->st->phase = c->m->current_status;
	c->st->pass = c->m->current_pass;
}

static int save_map(struct rctx *c, struct imago_err *err)
{
	if (!c->o->map_path)
		return 0;
	/* The map must never claim bytes that are not on the output yet. */
	if (fdatasync(c->o->out_fd) < 0 && errno != EINVAL && errno != EROFS)
		return err_set(err, -errno, -1, -1, -1, "cannot sync the output: %s",
			       strerror(errno));
	int r = rescue_map_save(c->m, c->o->map_path, c->o->map_comments, c->o->nmap_comments,
				err);
	c->last_save = now();
	return r;
}

/* Between reads: limits, status callback, periodic save. Sets c->stop; returns it. */
static int tick(struct rctx *c, int force)
{
	if (c->stop)
		return c->stop;
	double t = now();
	if (c->o->max_seconds > 0 && t - c->t0 >= c->o->max_seconds)
		return c->stop = 1;
	if (c->o->max_errors && c->st->read_errors >= c->o->max_errors)
		return c->stop = 1;
	double si = c->o->status_interval > 0 ? c->o->status_interval : 0.25;
	if (c->o->status && (force || t - c->last_status >= si)) {
		c->last_status = t;
		fill_stats(c);
		if (c->o->status(c->o->status_opaque, c->st))
			return c->stop = err_set(c->err, -ECANCELED, -1, -1, -1, "rescue interrupted");
	}
	double sv = c->o->save_interval > 0 ? c->o->save_interval : 30;
	if (t - c->last_save >= sv) {
		int r = save_map(c, c->err);
		if (r < 0)
			return c->stop = r;
	}
	return 0;
}

static int reopen(struct rctx *c)
{
	if (!c->o->reopen || !c->o->source_path)
		return 0;
	int flags = O_RDONLY | O_CLOEXEC | (c->o->direct ? O_DIRECT : 0);
	double wait = c->o->reopen_wait > 0 ? c->o->reopen_wait : 30, t = now();
	/* the caller's own descriptor stays open unless it handed it over (live_fd) */
	if (c->o->live_fd || c->fd != c->o->source_fd)
		close(c->fd);
	c->fd = -1;
	if (c->o->live_fd)
		*c->o->live_fd = -1;
	for (;;) {
		int fd = open(c->o->source_path, flags);
		if (fd >= 0) {
			c->fd = fd;
			if (c->o->live_fd)
				*c->o->live_fd = fd;
			c->st->reopens++;
			return 0;
		}
		int e = errno;
		if (now() - t >= wait)
			return c->stop = err_set(c->err, -EIO, -1, -1, -1,
						 "the source %s went away and did not come back "
						 "within %.0f s: %s", c->o->source_path, wait,
						 strerror(e));
		usleep(200000);
	}
}

static int write_out(struct rctx *c, const uint8_t *p, size_t n, uint64_t pos)
{
	while (n) {
		ssize_t w = pwrite(c->o->out_fd, p, n, (off_t)pos);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return c->stop = err_set(c->err, errno == ENOSPC ? -ENOSPC : -EIO, -1,
						 (int64_t)pos, -1, "cannot write the output at byte "
						 "%llu: %s", (unsigned long long)pos, strerror(errno));
		}
		if (!w)
			return c->stop = err_set(c->err, -EIO, -1, (int64_t)pos, -1,
						 "the output took no more bytes at %llu",
						 (unsigned long long)pos);
		p += w;
		pos += (uint64_t)w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Read [pos, pos+len) (len <= bufsize). Returns the good bytes read from pos (a
 * multiple of the sector size unless the source ends there) and whether the read failed
 * before len; good bytes are written to the output and marked finished. *secs gets the
 * time taken.
 */
static int read_range(struct rctx *c, uint64_t pos, size_t len, size_t *good, double *secs)
{
	size_t got = 0;
	int failed = 0;
	double t = now();
	while (got < len) {
		size_t want = len - got;
		if (c->o->direct && want % c->ss)
			want += c->ss - want % c->ss;    /* the tail sector of the source */
		ssize_t n = pread(c->fd, c->buf + got, want, (off_t)(pos + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			failed = 1;
			break;
		}
		got += (size_t)n;
	}
	if (got > len)
		got = len;
	if (failed && got % c->ss)
		got -= got % c->ss;   /* a partial sector before an error is not trusted */
	*secs = now() - t;
	*good = got;
	if (failed) {
		c->fail_sum += *secs;
		c->fail_n++;
	} else if (len <= c->ss) {
		c->sec_sum += *secs;
		c->sec_n++;
	}
	if (got) {
		int r = write_out(c, c->buf, got, pos);
		if (r < 0)
			return r;
		if ((r = rescue_map_set(c->m, pos, got, RS_FINISHED)) < 0)
			return c->stop = err_set(c->err, r, -1, -1, -1, "out of memory in the map");
		c->st->bytes_read += got;
		c->last_good_t = now();
	}
	if (failed) {
		c->st->read_errors++;
		int r = reopen(c);
		if (r < 0)
			return r;
	}
	return failed;
}

static int mark(struct rctx *c, uint64_t pos, uint64_t len, char s)
{
	int r = rescue_map_set(c->m, pos, len, s);
	if (r < 0)
		return c->stop = err_set(c->err, r, -1, -1, -1, "out of memory in the map");
	return 0;
}

/* The first area at or after pos with status s inside the domain: [*a, *b). */
static int find_fwd(struct rctx *c, char s, uint64_t pos, uint64_t *a, uint64_t *b)
{
	for (size_t d = 0; d < c->ndom; d++) {
		uint64_t lo = c->dom[d].offset, hi = lo + c->dom[d].length;
		if (hi <= pos)
			continue;
		if (lo < pos)
			lo = pos;
		ptrdiff_t i = rescue_map_find(c->m, lo);
		for (; i >= 0 && (size_t)i < c->m->n && c->m->v[i].pos < hi; i++) {
			const struct rescue_block *bl = &c->m->v[i];
			if (bl->status != s)
				continue;
			*a = bl->pos > lo ? bl->pos : lo;
			*b = bl->pos + bl->size < hi ? bl->pos + bl->size : hi;
			return 1;
		}
	}
	return 0;
}

/* The last area ending at or before pos with status s inside the domain. */
static int find_bwd(struct rctx *c, char s, uint64_t pos, uint64_t *a, uint64_t *b)
{
	for (size_t d = c->ndom; d-- > 0;) {
		uint64_t lo = c->dom[d].offset, hi = lo + c->dom[d].length;
		if (lo >= pos)
			continue;
		if (hi > pos)
			hi = pos;
		ptrdiff_t i = rescue_map_find(c->m, hi - 1);
		for (; i >= 0 && c->m->v[i].pos + c->m->v[i].size > lo; i--) {
			const struct rescue_block *bl = &c->m->v[i];
			if (bl->status != s)
				continue;
			*a = bl->pos > lo ? bl->pos : lo;
			*b = bl->pos + bl->size < hi ? bl->pos + bl->size : hi;
			return 1;
		}
	}
	return 0;
}

static void phase(struct rctx *c, char p, unsigned pass)
{
	c->m->current_status = p;
	c->m->current_pass = pass;
	tick(c, 1);
}

static void skip_grow(struct rctx *c)
{
	c->skip = c->skip * 2 > c->skip_max ? c->skip_max : c->skip * 2;
}

/* Copying pass over untried areas, forwards or backwards, skipping after errors and slow
 * reads when skipping is set. */
static int copy_pass(struct rctx *c, int forward, int skipping)
{
	uint64_t pos = forward ? 0 : c->m->size, a, b;
	c->skip = c->skip_min;
	while (!c->stop && (forward ? find_fwd(c, RS_UNTRIED, pos, &a, &b) :
				      find_bwd(c, RS_UNTRIED, pos, &a, &b))) {
		pos = forward ? a : b;
		while (!c->stop && (forward ? pos < b : pos > a)) {
			if (tick(c, 0))
				break;
			uint64_t start;
			size_t len;
			if (forward) {
				len = c->cluster - (size_t)(pos % c->cluster);
				if (len > b - pos)
					len = (size_t)(b - pos);
				start = pos;
			} else {
				uint64_t back = pos % c->cluster ? pos % c->cluster : c->cluster;
				if (back > pos - a)
					back = pos - a;
				start = pos - back;
				len = (size_t)back;
			}
			c->m->current_pos = pos;
			c->st->pos = pos;
			size_t good;
			double secs;
			int f = read_range(c, start, len, &good, &secs);
			if (f < 0)
				return f;
			if (f && mark(c, start + good, len - good, RS_NONTRIMMED) < 0)
				return c->stop;
			int slow = !f && c->o->slow_seconds > 0 && secs > c->o->slow_seconds;
			if (slow)
				c->st->slow_reads++;
			pos = forward ? start + len : start;
			if ((f || slow) && skipping) {
				if (forward)
					pos = pos + c->skip < b ? pos + c->skip : b;
				else
					pos = pos > a + c->skip ? pos - c->skip : a;
				skip_grow(c);
			} else if (!f && !slow) {
				c->skip = c->skip_min;
			}
		}
	}
	return c->stop < 0 ? c->stop : 0;
}

/* Read [a, b) sector by sector in the given direction; good sectors are finished, a bad
 * one becomes `bad`. Stops at the first bad sector when stop_at_bad. Returns the position
 * reached (forward: first unread byte; backward: the start of the last read sector) in
 * *reached, and whether a bad sector stopped it. */
static int sectors(struct rctx *c, uint64_t a, uint64_t b, int forward, int stop_at_bad,
		   char bad, uint64_t *reached)
{
	uint64_t pos = forward ? a : b;
	while (!c->stop && (forward ? pos < b : pos > a)) {
		if (tick(c, 0))
			break;
		uint64_t s;
		size_t len;
		if (forward) {
			s = pos;
			len = c->ss - (size_t)(pos % c->ss);
			if (len > b - pos)
				len = (size_t)(b - pos);
		} else {
			uint64_t back = pos % c->ss ? pos % c->ss : c->ss;
			if (back > pos - a)
				back = pos - a;
			s = pos - back;
			len = (size_t)back;
		}
		c->m->current_pos = pos;
		c->st->pos = pos;
		size_t good;
		double secs;
		int f = read_range(c, s, len, &good, &secs);
		if (f < 0)
			return f;
		if (f && mark(c, s + good, len - good, bad) < 0)
			return c->stop;
		pos = forward ? s + len : s;
		if (f && stop_at_bad) {
			*reached = pos;
			return 1;
		}
	}
	*reached = pos;
	return 0;
}

/*
 * Whether to re-read a large failed area in trim_cluster pieces before trimming it.
 * Splitting costs about one more failed read (the piece holding the bad spot) and saves
 * reading the rest of the area one sector at a time: worth it when a failed read costs
 * less than those sector reads. Both costs are measured as the rescue goes (trim_phase
 * times a few sector reads at the first large area's leading edge); with no failed read
 * timed yet, split.
 */
static int worth_splitting(const struct rctx *c, uint64_t a, uint64_t b)
{
	uint64_t tc = c->o->trim_cluster;
	if (b - a <= 2 * tc)
		return 0;
	if (!c->fail_n || !c->sec_n)
		return 1;
	double sec = c->sec_sum / (double)c->sec_n;
	double saved = (double)(b - a - 2 * tc) / c->ss;
	return c->fail_sum / (double)c->fail_n < saved * sec;
}

/* Trim one non-trimmed block [a, b): sector by sector from the front until a sector
 * fails, then from the back; the failed sectors become bad, the middle non-scraped. */
static int trim_block(struct rctx *c, uint64_t a, uint64_t b)
{
	uint64_t p, q;
	int f = sectors(c, a, b, 1, 1, RS_BAD, &p);
	if (f < 0 || c->stop || p >= b)
		return f < 0 ? f : 0;
	f = sectors(c, p, b, 0, 1, RS_BAD, &q);
	if (f < 0 || c->stop)
		return f < 0 ? f : 0;
	/* [p, q) is the untouched middle: q is the bad sector found backwards (or p) */
	if (q > p && mark(c, p, q - p, RS_NONSCRAPED) < 0)
		return c->stop;
	return 0;
}

static int trim_phase(struct rctx *c)
{
	uint64_t a, b, pos = 0;
	while (!c->stop && find_fwd(c, RS_NONTRIMMED, pos, &a, &b)) {
		if (b - a > 2 * (uint64_t)c->o->trim_cluster && c->sec_n < 8) {
			/* Time a few sector reads first: the leading edge, sector by sector, as
			 * trimming reads it anyway. Then look at what is left of the area. */
			uint64_t e = a + 8 * (uint64_t)c->ss < b ? a + 8 * (uint64_t)c->ss : b, p;
			int f = sectors(c, a, e, 1, 1, RS_BAD, &p);
			if (f < 0)
				return f;
			continue;
		}
		if (worth_splitting(c, a, b)) {
			for (uint64_t p = a; p < b && !c->stop;) {
				if (tick(c, 0))
					break;
				size_t len = c->o->trim_cluster - (size_t)(p % c->o->trim_cluster);
				if (len > b - p)
					len = (size_t)(b - p);
				size_t good;
				double secs;
				c->m->current_pos = p;
				int f = read_range(c, p, len, &good, &secs);
				if (f < 0)
					return f;
				p += len;
			}
		}
		/* trim what is still non-trimmed in [a, b) */
		uint64_t q = a, x, y;
		while (!c->stop && find_fwd(c, RS_NONTRIMMED, q, &x, &y) && x < b) {
			if (y > b)
				y = b;
			int f = trim_block(c, x, y);
			if (f < 0)
				return f;
			q = y;
		}
		pos = b;
	}
	return c->stop < 0 ? c->stop : 0;
}

static int scrape_phase(struct rctx *c)
{
	uint64_t a, b, pos = 0, r;
	while (!c->stop && find_fwd(c, RS_NONSCRAPED, pos, &a, &b)) {
		int f = sectors(c, a, b, 1, 0, RS_BAD, &r);
		if (f < 0)
			return f;
		pos = b;
	}
	return c->stop < 0 ? c->stop : 0;
}

static int retry_pass(struct rctx *c, int forward)
{
	uint64_t a, b, r, pos = forward ? 0 : c->m->size;
	while (!c->stop && (forward ? find_fwd(c, RS_BAD, pos, &a, &b) :
				      find_bwd(c, RS_BAD, pos, &a, &b))) {
		int f = sectors(c, a, b, forward, 0, RS_BAD, &r);
		if (f < 0)
			return f;
		pos = forward ? b : a;
	}
	return c->stop < 0 ? c->stop : 0;
}

int rescue_run(const struct rescue_opts *o, struct rescue_map *m, struct rescue_stats *st,
	       struct imago_err *err)
{
	struct rescue_stats dummy;
	if (!st)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	struct rctx c = {.o = o, .m = m, .st = st, .err = err,
			 .fd = o->live_fd ? *o->live_fd : o->source_fd};
	c.ss = o->sector_size ? o->sector_size : 512;
	c.cluster = o->cluster_size ? o->cluster_size : 1024 * 1024;
	if ((c.ss != 512 && c.ss != 4096 && (c.ss & (c.ss - 1))) || c.ss > 65536 ||
	    c.cluster % c.ss || c.cluster > 64u * 1024 * 1024 || m->size != o->size)
		return err_set(err, -EINVAL, -1, -1, -1, "bad rescue options (sector %u, cluster "
			       "%u, map of %llu bytes for a source of %llu)", c.ss, c.cluster,
			       (unsigned long long)m->size, (unsigned long long)o->size);
	struct rescue_opts oo = *o;
	if (!oo.trim_cluster)
		oo.trim_cluster = 64 * 1024;
	if (oo.trim_cluster % c.ss)
		oo.trim_cluster = c.ss * ((oo.trim_cluster + c.ss - 1) / c.ss);
	c.o = &oo;
	c.skip_min = o->skip_min ? o->skip_min : 64 * 1024;
	c.skip_max = o->skip_max ? o->skip_max : o->size / 100;
	if (!o->skip_max && c.skip_max > (1ull << 30))
		c.skip_max = 1ull << 30;
	if (c.skip_max < c.skip_min)
		c.skip_max = c.skip_min;
	c.skip_min -= c.skip_min % c.ss;
	c.skip_max -= c.skip_max % c.ss;
	if (!c.skip_min)
		c.skip_min = c.ss;
	c.whole = (struct rescue_range){0, o->size};
	c.dom = o->domain ? o->domain : &c.whole;
	c.ndom = o->domain ? o->ndomain : 1;
	c.bufsize = (c.cluster > oo.trim_cluster ? c.cluster : oo.trim_cluster) + c.ss;
	if (posix_memalign((void **)&c.buf, ALIGN, c.bufsize))
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory for a %zu-byte buffer",
			       c.bufsize);
	c.t0 = c.last_save = c.last_status = now();

	int r = 0;
	/* Resume where the phases left off: phases only look at their own statuses. */
	phase(&c, RP_COPYING, 1);
	if (!c.stop)
		r = copy_pass(&c, 1, 1);
	if (!r && !c.stop && find_fwd(&c, RS_UNTRIED, 0, &(uint64_t){0}, &(uint64_t){0})) {
		phase(&c, RP_COPYING, 2);
		r = copy_pass(&c, 0, 1);
	}
	if (!r && !c.stop && find_fwd(&c, RS_UNTRIED, 0, &(uint64_t){0}, &(uint64_t){0})) {
		phase(&c, RP_COPYING, 3);
		r = copy_pass(&c, 1, 0);
	}
	if (!r && !c.stop && !o->no_trim) {
		phase(&c, RP_TRIMMING, 1);
		r = trim_phase(&c);
	}
	if (!r && !c.stop && !o->no_scrape) {
		phase(&c, RP_SCRAPING, 1);
		r = scrape_phase(&c);
	}
	for (unsigned i = 0; !r && !c.stop && i < o->retries; i++) {
		if (!find_fwd(&c, RS_BAD, 0, &(uint64_t){0}, &(uint64_t){0}))
			break;
		phase(&c, RP_RETRYING, i + 1);
		r = retry_pass(&c, i % 2);   /* backwards first, as ddrescue does */
	}
	if (!r && c.stop < 0)
		r = c.stop;
	if (!r && !c.stop)
		phase(&c, RP_FINISHED, m->current_pass);
	free(c.buf);
	/* Save whatever happened (a failed save after a failure keeps the first error). */
	struct imago_err e2;
	int s = save_map(&c, r < 0 ? &e2 : err);
	fill_stats(&c);
	if (!o->live_fd && c.fd != o->source_fd && c.fd >= 0)
		close(c.fd);
	if (r < 0)
		return r;
	if (s < 0)
		return s;
	return c.stop == 1 ? 1 : 0;
}
