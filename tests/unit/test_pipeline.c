/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Unit tests of the ordered parallel pipeline (lib/pipeline/pipeline.c): the consumer sees
 * jobs in producer order whatever the workers' timing, errors from each stage are reported
 * in job order, and the consumed output is identical for 1, 2, 4 and 8 workers.
 *
 * Workers sleep for a pseudo-random time derived from the job's seq, so later jobs often
 * finish before earlier ones; that is what makes reordering bugs show up. The delays are a
 * function of seq (not of a shared generator) so that every run takes the same decisions
 * and the work callback needs no shared state.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "pipeline/pipeline.h"

static const unsigned thread_counts[] = { 1, 2, 4, 8 };
#define NTHREADS (sizeof(thread_counts) / sizeof(thread_counts[0]))

/* splitmix64: a good 64-bit mix, used both for delays and for the synthetic data. */
static uint64_t mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

static void sleep_us(unsigned us)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)us * 1000 };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

#define IN_CAP 256
#define OUT_CAP 512
#define AUX_CAP 32

/* What the test callbacks share. Fields written by the producer thread and read elsewhere
 * (or written by workers) are atomic; consumer-only fields are plain. */
struct tctx {
	uint64_t njobs;            /* jobs to produce (UINT64_MAX: until stopped) */
	unsigned max_delay_us;     /* work() sleeps up to this long */
	unsigned workers;          /* resolved worker count, to check worker ids */

	/* error injection: at job seq, stage returns err (0 = none) */
	uint64_t produce_fail_seq;
	int produce_err;
	uint64_t work_fail_seq;
	int work_err;
	unsigned work_fail_delay_us; /* extra sleep for the failing job, to make it late */
	uint64_t work_fail2_seq;     /* a second, later failing job that fails fast */
	int work_fail2_err;
	uint64_t consume_fail_seq;
	int consume_err;

	/* observations */
	_Atomic uint64_t produced;   /* produce() calls that made a job */
	_Atomic uint64_t produce_calls;
	_Atomic unsigned in_work, max_in_work;
	_Atomic int bad_worker_id;
	_Atomic int bad_produce_order;
	uint64_t next_seq;           /* consumer: the seq expected next */
	uint64_t consumed;
	uint64_t max_in_flight;      /* produced - consumed, seen by the consumer */
	int order_ok, data_ok, status_ok;
	uint64_t failed_jobs_seen;   /* consume() calls with status < 0 */
	int last_status;
	uint64_t hash;               /* FNV-1a over every consumed output byte */
	uint64_t out_bytes;
	struct pl_job *jobs_seen[64]; /* distinct job structs the consumer saw */
	size_t njobs_seen;
};

static void tctx_init(struct tctx *t, uint64_t njobs, unsigned max_delay_us)
{
	memset(t, 0, sizeof(*t));
	t->njobs = njobs;
	t->max_delay_us = max_delay_us;
	t->produce_fail_seq = t->work_fail_seq = t->work_fail2_seq = t->consume_fail_seq =
		UINT64_MAX;
	t->order_ok = t->data_ok = t->status_ok = 1;
	t->hash = 0xcbf29ce484222325ull;
}

/* Input of job seq: length and bytes both depend on seq only. */
static size_t fill_input(uint64_t seq, uint8_t *in)
{
	size_t len = (size_t)(mix(seq) % IN_CAP) + 1;
	for (size_t i = 0; i < len; i++)
		in[i] = (uint8_t)(mix(seq * 1000003 + i) >> 56);
	return len;
}

/* The "transform": a variable-length output (like a compressor), so that a job written to
 * the wrong place or in the wrong order changes the stream. */
static size_t transform(uint64_t seq, const uint8_t *in, size_t in_len, uint8_t *out)
{
	size_t n = 0;
	for (size_t i = 0; i < in_len; i++) {
		out[n++] = (uint8_t)(in[i] ^ (uint8_t)seq);
		if (in[i] & 1)
			out[n++] = in[i];
	}
	return n;
}

static int t_produce(void *ctx, struct pl_job *job)
{
	struct tctx *t = ctx;
	uint64_t seq = atomic_load(&t->produced);

	atomic_fetch_add(&t->produce_calls, 1);
	/* The pipeline numbers jobs in producer order; the producer's own count must agree. */
	if (job->seq != seq)
		atomic_store(&t->bad_produce_order, 1);
	if (seq == t->produce_fail_seq)
		return t->produce_err;
	if (seq >= t->njobs)
		return 0;
	if (!job->in || !job->out || !job->aux)
		return -EFAULT;
	job->in_len = fill_input(seq, job->in);
	job->u[0] = seq;
	job->u[5] = ~seq;
	atomic_fetch_add(&t->produced, 1);
	return 1;
}

static int t_work(void *ctx, struct pl_job *job, unsigned worker)
{
	struct tctx *t = ctx;
	unsigned cur = atomic_fetch_add(&t->in_work, 1) + 1;
	unsigned prev = atomic_load(&t->max_in_work);
	int r = 0;

	while (cur > prev && !atomic_compare_exchange_weak(&t->max_in_work, &prev, cur))
		;
	if (worker >= t->workers)
		atomic_store(&t->bad_worker_id, 1);
	if (t->max_delay_us)
		sleep_us((unsigned)(mix(job->seq ^ 0x5555) % t->max_delay_us));
	if (job->seq == t->work_fail_seq) {
		sleep_us(t->work_fail_delay_us);
		r = t->work_err;
	} else if (job->seq == t->work_fail2_seq) {
		r = t->work_fail2_err;
	} else {
		job->out_len = transform(job->seq, job->in, job->in_len, job->out);
		/* Touch the whole scratch buffer: a short allocation shows up under ASan. */
		memset(job->aux, (int)(job->seq & 0xff), AUX_CAP);
	}
	atomic_fetch_sub(&t->in_work, 1);
	return r;
}

static int t_consume(void *ctx, struct pl_job *job)
{
	struct tctx *t = ctx;
	uint8_t in[IN_CAP], out[OUT_CAP];
	uint64_t seq = job->seq;
	size_t k;

	if (seq != t->next_seq)
		t->order_ok = 0;
	t->next_seq = seq + 1;
	t->consumed++;
	uint64_t in_flight = atomic_load(&t->produced) - (t->consumed - 1);
	if (in_flight > t->max_in_flight)
		t->max_in_flight = in_flight;
	for (k = 0; k < t->njobs_seen && t->jobs_seen[k] != job; k++)
		;
	if (k == t->njobs_seen && k < sizeof(t->jobs_seen) / sizeof(t->jobs_seen[0]))
		t->jobs_seen[t->njobs_seen++] = job;

	t->last_status = job->status;
	if (job->status < 0) {
		t->failed_jobs_seen++;
		/* The usual consumer: a failed job is the run's error. */
		return job->status;
	}
	if (job->status != 0)
		t->status_ok = 0;
	if (seq == t->consume_fail_seq)
		return t->consume_err;

	/* The job carries what produce() and work() made for this very seq. */
	size_t in_len = fill_input(seq, in);
	size_t out_len = transform(seq, in, in_len, out);
	if (job->u[0] != seq || job->u[5] != ~seq || job->in_len != in_len ||
	    memcmp(job->in, in, in_len) != 0 || job->out_len != out_len ||
	    memcmp(job->out, out, out_len) != 0)
		t->data_ok = 0;
	for (size_t i = 0; i < job->out_len; i++) {
		t->hash ^= job->out[i];
		t->hash *= 0x100000001b3ull;
	}
	t->out_bytes += job->out_len;
	return 0;
}

static const struct pl_ops t_ops = { .produce = t_produce, .work = t_work,
				     .consume = t_consume };

static struct pl_config t_cfg(unsigned workers)
{
	return (struct pl_config){ .workers = workers, .in_cap = IN_CAP, .out_cap = OUT_CAP,
				   .aux_cap = AUX_CAP };
}

/* The reference result: the same stream computed on this thread, no pipeline. */
static void serial_reference(uint64_t njobs, uint64_t *hash, uint64_t *bytes)
{
	uint8_t in[IN_CAP], out[OUT_CAP];

	*hash = 0xcbf29ce484222325ull;
	*bytes = 0;
	for (uint64_t seq = 0; seq < njobs; seq++) {
		size_t n = transform(seq, in, fill_input(seq, in), out);
		for (size_t i = 0; i < n; i++) {
			*hash ^= out[i];
			*hash *= 0x100000001b3ull;
		}
		*bytes += n;
	}
}

/* Run with the given context; fills in the resolved worker count first. */
static int run_pl(struct tctx *t, unsigned workers, uint64_t *failed_seq)
{
	struct pl_config cfg = t_cfg(workers);
	t->workers = pipeline_workers(&cfg);
	return pipeline_run(&t_ops, t, &cfg, failed_seq);
}

/* Invariants every run must keep, whatever happened. */
static void check_common(struct tctx *t)
{
	CHECK(t->order_ok);
	CHECK(t->data_ok);
	CHECK(t->status_ok);
	CHECK(!atomic_load(&t->bad_worker_id));
	CHECK(!atomic_load(&t->bad_produce_order));
	/* A fixed set of jobs circulates: a bound that grows with the workers, never with
	 * the input. (The implementation uses 2 * workers + 2; allow slack.) */
	CHECK(t->njobs_seen <= 4 * (size_t)t->workers + 4);
	CHECK(t->max_in_flight <= 4 * (uint64_t)t->workers + 4);
}

/* ---------------------------------------------------------------- tests */

static void test_workers_resolution(void)
{
	struct pl_config c = { .workers = 4, .in_cap = 1 << 20, .out_cap = 1 << 20 };

	CHECK(pipeline_workers(&c) == 4);
	c.workers = 0;
	CHECK(pipeline_workers(&c) >= 1);
	/* A tight memory bound reduces the workers, but never to none. */
	c.workers = 64;
	c.mem_limit = 16u << 20;
	CHECK(pipeline_workers(&c) >= 1 && pipeline_workers(&c) < 64);
	c.mem_limit = 1;
	CHECK(pipeline_workers(&c) == 1);
	/* No buffers at all: nothing limits the workers. */
	struct pl_config z = { .workers = 8 };
	CHECK(pipeline_workers(&z) == 8);
}

static void test_empty_input(void)
{
	for (size_t k = 0; k < NTHREADS; k++) {
		struct tctx t;
		uint64_t failed = 0;

		tctx_init(&t, 0, 0);
		CHECK(run_pl(&t, thread_counts[k], &failed) == 0);
		CHECK(failed == UINT64_MAX);
		CHECK(t.consumed == 0);
		check_common(&t);
	}
	/* failed_seq may be NULL. */
	struct tctx t;
	tctx_init(&t, 3, 0);
	CHECK(run_pl(&t, 2, NULL) == 0);
	CHECK(t.consumed == 3);
}

static void test_single_job(void)
{
	for (size_t k = 0; k < NTHREADS; k++) {
		struct tctx t;
		uint64_t failed = 0;

		tctx_init(&t, 1, 100);
		CHECK(run_pl(&t, thread_counts[k], &failed) == 0);
		CHECK(failed == UINT64_MAX);
		CHECK(t.consumed == 1);
		check_common(&t);
	}
}

static void test_order_random_delays(void)
{
	const uint64_t n = 1500;
	uint64_t ref_hash, ref_bytes;

	serial_reference(n, &ref_hash, &ref_bytes);
	for (size_t k = 0; k < NTHREADS; k++) {
		struct tctx t;
		uint64_t failed = 0;

		tctx_init(&t, n, 300);
		CHECK(run_pl(&t, thread_counts[k], &failed) == 0);
		CHECK(failed == UINT64_MAX);
		CHECK(t.consumed == n);
		CHECK(t.next_seq == n);
		CHECK(t.hash == ref_hash && t.out_bytes == ref_bytes);
		check_common(&t);
		/* With several workers sleeping, some must have overlapped; otherwise the
		 * ordering above was never really tested. */
		if (t.workers >= 4)
			CHECK(atomic_load(&t.max_in_work) >= 2);
		if (check_failed_) {
			printf("# with %u workers\n", thread_counts[k]);
			return;
		}
	}
}

static void test_deterministic_across_threads(void)
{
	const uint64_t n = 4000;
	uint64_t hashes[NTHREADS], bytes[NTHREADS];

	/* No delays: the fastest interleavings, the other extreme from the test above. */
	for (size_t k = 0; k < NTHREADS; k++) {
		struct tctx t;

		tctx_init(&t, n, 0);
		CHECK(run_pl(&t, thread_counts[k], NULL) == 0);
		CHECK(t.consumed == n);
		check_common(&t);
		hashes[k] = t.hash;
		bytes[k] = t.out_bytes;
	}
	for (size_t k = 1; k < NTHREADS; k++)
		CHECK(hashes[k] == hashes[0] && bytes[k] == bytes[0]);
	/* And the same again: repeated runs agree with each other, not only across counts. */
	for (int rep = 0; rep < 20; rep++) {
		struct tctx t;
		tctx_init(&t, 300, rep & 1 ? 50 : 0);
		CHECK(run_pl(&t, 8, NULL) == 0);
		CHECK(t.consumed == 300);
		check_common(&t);
	}
}

static void test_producer_error(void)
{
	static const uint64_t fail_at[] = { 0, 1, 7, 100 };

	for (size_t f = 0; f < sizeof(fail_at) / sizeof(fail_at[0]); f++)
		for (size_t k = 0; k < NTHREADS; k++) {
			struct tctx t;
			uint64_t failed = 0;

			tctx_init(&t, 1000, 200);
			t.produce_fail_seq = fail_at[f];
			t.produce_err = -EIO;
			CHECK(run_pl(&t, thread_counts[k], &failed) == -EIO);
			/* Reported after every earlier job was consumed, at the seq that failed. */
			CHECK(failed == fail_at[f]);
			CHECK(t.consumed == fail_at[f]);
			CHECK(atomic_load(&t.produce_calls) == fail_at[f] + 1);
			check_common(&t);
			if (check_failed_) {
				printf("# fail_at %llu, %u workers\n",
				       (unsigned long long)fail_at[f], thread_counts[k]);
				return;
			}
		}
}

static void test_worker_error(void)
{
	static const uint64_t fail_at[] = { 0, 1, 13, 200 };

	for (size_t f = 0; f < sizeof(fail_at) / sizeof(fail_at[0]); f++)
		for (size_t k = 0; k < NTHREADS; k++) {
			struct tctx t;
			uint64_t failed = 0;

			tctx_init(&t, 1000, 100);
			/* Job F fails late; job F+1 fails at once. The error reported must be
			 * F's: the first in job order, not the first in time. */
			t.work_fail_seq = fail_at[f];
			t.work_err = -EBADMSG;
			t.work_fail_delay_us = 3000;
			t.work_fail2_seq = fail_at[f] + 1;
			t.work_fail2_err = -EIO;
			CHECK(run_pl(&t, thread_counts[k], &failed) == -EBADMSG);
			CHECK(failed == fail_at[f]);
			/* Every earlier job consumed normally, then the failed one, then none. */
			CHECK(t.consumed == fail_at[f] + 1);
			CHECK(t.failed_jobs_seen == 1);
			CHECK(t.last_status == -EBADMSG);
			check_common(&t);
			if (check_failed_) {
				printf("# fail_at %llu, %u workers\n",
				       (unsigned long long)fail_at[f], thread_counts[k]);
				return;
			}
		}
}

static void test_consumer_error(void)
{
	static const uint64_t fail_at[] = { 0, 5, 300 };

	for (size_t f = 0; f < sizeof(fail_at) / sizeof(fail_at[0]); f++)
		for (size_t k = 0; k < NTHREADS; k++) {
			struct tctx t;
			uint64_t failed = 0;

			/* An endless producer: only the consumer's error can end this run. */
			tctx_init(&t, UINT64_MAX, 50);
			t.consume_fail_seq = fail_at[f];
			t.consume_err = -ENOSPC;
			CHECK(run_pl(&t, thread_counts[k], &failed) == -ENOSPC);
			CHECK(failed == fail_at[f]);
			CHECK(t.consumed == fail_at[f] + 1);
			/* The producer stopped soon after, bounded by the jobs in circulation. */
			CHECK(atomic_load(&t.produced) <= fail_at[f] + 4 * (uint64_t)t.workers + 8);
			check_common(&t);
			if (check_failed_) {
				printf("# fail_at %llu, %u workers\n",
				       (unsigned long long)fail_at[f], thread_counts[k]);
				return;
			}
		}
}

static void test_error_vs_end(void)
{
	/* The producer fails right at the end; nothing is lost before it. */
	for (size_t k = 0; k < NTHREADS; k++) {
		struct tctx t;
		uint64_t failed = 0;

		tctx_init(&t, 50, 100);
		t.produce_fail_seq = 50;
		t.produce_err = -EINVAL;
		CHECK(run_pl(&t, thread_counts[k], &failed) == -EINVAL);
		CHECK(failed == 50 && t.consumed == 50);
		check_common(&t);
	}
	/* A worker failure on the last job. */
	for (size_t k = 0; k < NTHREADS; k++) {
		struct tctx t;
		uint64_t failed = 0;

		tctx_init(&t, 50, 100);
		t.work_fail_seq = 49;
		t.work_err = -EIO;
		CHECK(run_pl(&t, thread_counts[k], &failed) == -EIO);
		CHECK(failed == 49 && t.consumed == 50);
		check_common(&t);
	}
}

/* Several pipelines at once must not share state. */
struct par_arg {
	struct tctx t;
	unsigned workers;
	int rc;
};

static void *par_main(void *arg)
{
	struct par_arg *a = arg;
	a->rc = run_pl(&a->t, a->workers, NULL);
	return NULL;
}

/* A consumer that holds jobs (PL_HOLD), as restore does while a job's buffer is being
 * written: it keeps up to HOLD of them, gives back the oldest when it has HOLD, and the
 * drain callback gives back the rest. A held job's buffers must not be reused: its
 * output is compared with a copy taken at consume time when it is given back. */
#define HOLD 3

struct hctx {
	struct tctx t;           /* first: t_consume takes the same pointer */
	struct pl_job *held[HOLD];
	uint8_t snap[HOLD][OUT_CAP];
	size_t nheld;
	int kept_ok;
	uint64_t released, drains;
	int drain_err;
};

static void h_release_oldest(struct hctx *h)
{
	struct pl_job *j = h->held[0];
	if (memcmp(j->out, h->snap[0], j->out_len) != 0)
		h->kept_ok = 0;
	pipeline_release(j);
	h->released++;
	memmove(&h->held[0], &h->held[1], (h->nheld - 1) * sizeof(h->held[0]));
	memmove(h->snap[0], h->snap[1], (h->nheld - 1) * sizeof(h->snap[0]));
	h->nheld--;
}

static int h_consume(void *ctx, struct pl_job *job)
{
	struct hctx *h = ctx;
	int r = t_consume(ctx, job);
	if (r != 0)
		return r;
	if (job->seq % 5 == 4) {
		/* Given back from within consume (an asynchronous write that finished at once). */
		pipeline_release(job);
		h->released++;
		return PL_HOLD;
	}
	if (h->nheld == HOLD)
		h_release_oldest(h);
	memcpy(h->snap[h->nheld], job->out, job->out_len);
	h->held[h->nheld++] = job;
	return PL_HOLD;
}

static int h_drain(void *ctx)
{
	struct hctx *h = ctx;
	h->drains++;
	while (h->nheld)
		h_release_oldest(h);
	return h->drain_err;
}

static const struct pl_ops h_ops = { .produce = t_produce, .work = t_work, .consume = h_consume };

static int run_held(struct hctx *h, unsigned workers, uint64_t *failed_seq)
{
	struct pl_config cfg = t_cfg(workers);
	cfg.hold = HOLD;
	cfg.drain = h_drain;
	h->t.workers = pipeline_workers(&cfg);
	h->kept_ok = 1;
	return pipeline_run(&h_ops, h, &cfg, failed_seq);
}

static void test_held_jobs(void)
{
	const uint64_t n = 800;
	uint64_t ref_hash, ref_bytes;

	serial_reference(n, &ref_hash, &ref_bytes);
	for (size_t k = 0; k < NTHREADS; k++) {
		struct hctx h;
		uint64_t failed = 0;

		memset(&h, 0, sizeof(h));
		tctx_init(&h.t, n, 200);
		CHECK(run_held(&h, thread_counts[k], &failed) == 0);
		CHECK(failed == UINT64_MAX);
		CHECK(h.t.consumed == n && h.t.hash == ref_hash && h.t.out_bytes == ref_bytes);
		CHECK(h.kept_ok);
		CHECK(h.released == n && h.drains == 1);
		check_common(&h.t);
		/* The held jobs are extra: never more jobs than the usual ones plus HOLD. */
		CHECK(h.t.njobs_seen <= 2 * (size_t)h.t.workers + 2 + HOLD);
	}
}

/* Drain runs on failures too (held buffers come back before they are freed), and its
 * own error is the result only when nothing failed before. */
static void test_held_jobs_errors(void)
{
	struct hctx h;
	uint64_t failed = 0;

	memset(&h, 0, sizeof(h));
	tctx_init(&h.t, 200, 50);
	h.t.work_fail_seq = 120;
	h.t.work_err = -EBADMSG;
	h.drain_err = -EIO;
	CHECK(run_held(&h, 4, &failed) == -EBADMSG);
	CHECK(failed == 120);
	CHECK(h.drains == 1 && h.released == 120 && h.kept_ok);

	memset(&h, 0, sizeof(h));
	tctx_init(&h.t, 200, 50);
	h.drain_err = -EIO;
	CHECK(run_held(&h, 2, &failed) == -EIO);
	CHECK(failed == UINT64_MAX);
	CHECK(h.drains == 1 && h.released == 200 && h.kept_ok);

	memset(&h, 0, sizeof(h));
	tctx_init(&h.t, 200, 50);
	h.t.produce_fail_seq = 77;
	h.t.produce_err = -EIO;
	CHECK(run_held(&h, 3, &failed) == -EIO);
	CHECK(failed == 77);
	CHECK(h.drains == 1 && h.released == 77 && h.kept_ok);
}

static void test_concurrent_pipelines(void)
{
	struct par_arg a[4];
	pthread_t th[4];
	uint64_t ref_hash, ref_bytes;

	serial_reference(500, &ref_hash, &ref_bytes);
	for (int i = 0; i < 4; i++) {
		tctx_init(&a[i].t, 500, 100);
		a[i].workers = thread_counts[i];
		REQUIRE(pthread_create(&th[i], NULL, par_main, &a[i]) == 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 4; i++) {
		CHECK(a[i].rc == 0);
		CHECK(a[i].t.hash == ref_hash && a[i].t.out_bytes == ref_bytes);
		check_common(&a[i].t);
	}
}

int main(void)
{
	check_prog_ = "pipeline";
	/* A deadlock would otherwise hang the whole test run; dying by SIGALRM is counted as
	 * a failure by the runner. */
	alarm(300);
	RUN(test_workers_resolution);
	RUN(test_empty_input);
	RUN(test_single_job);
	RUN(test_order_random_delays);
	RUN(test_deterministic_across_threads);
	RUN(test_producer_error);
	RUN(test_worker_error);
	RUN(test_consumer_error);
	RUN(test_error_vs_end);
	RUN(test_concurrent_pipelines);
	RUN(test_held_jobs);
	RUN(test_held_jobs_errors);
	CHECK_MAIN_END();
}
