/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The ordered parallel pipeline: one producer thread → N worker threads → the consumer,
 * which runs on the calling thread and sees jobs strictly in the order the producer made
 * them. Create (read → compress+hash → write), restore and verify (read frames →
 * decompress+check → write/compare) and digests all run on it.
 *
 * Memory is bounded: a fixed set of jobs, each with an input and an output buffer of a
 * fixed capacity, circulates; nothing grows with the size of the device.
 *
 * Errors are reported in order: a failing produce() or work() is reported when the
 * consumer reaches that job, so "the first damaged chunk" is the first in device order
 * whatever the thread timing, and output is identical for any thread count.
 */
#ifndef IMAGO_PIPELINE_H
#define IMAGO_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

/* Alignment of every job buffer (in, out, aux): enough for direct I/O. */
#define PL_BUF_ALIGN 4096u

struct pl_job {
	uint64_t seq;        /* 0, 1, 2, ... in producer order */
	uint8_t *in;         /* in_cap bytes, filled by produce() */
	size_t in_len;
	uint8_t *out;        /* out_cap bytes, filled by work() */
	size_t out_len;
	uint8_t *aux;        /* aux_cap bytes of scratch (e.g. leaf hashes) */
	uint64_t u[8];       /* small per-job fields owned by the user (offsets, kinds) */
	int status;          /* result of produce()/work() for this job */
	void *pl_;           /* the pipeline it belongs to (internal) */
};

/* consume() returns PL_HOLD to keep the job after it returns: its buffers stay valid and
 * untouched until the consumer gives it back with pipeline_release() (e.g. once an
 * asynchronous write of job->out is done), once. Giving it back from within that
 * consume() call itself is allowed too (it is then free as soon as consume returns). */
#define PL_HOLD 1

struct pl_ops {
	/* Fill job (in, in_len, u[]). Return 1 when a job was made, 0 at end of input, or a
	 * negative errno (reported in order, after every earlier job was consumed). */
	int (*produce)(void *ctx, struct pl_job *job);
	/* Transform a job; runs concurrently on `worker` (0..workers-1). 0 or -errno. */
	int (*work)(void *ctx, struct pl_job *job, unsigned worker);
	/* Take a job's result, in order. Called for failed jobs too (job->status < 0), so
	 * the consumer, on one thread, turns a worker's failure into a message. 0, PL_HOLD
	 * (see above) or -errno (stops the pipeline). A consumer that returns 0 for a
	 * failed job ignores the failure: return job->status (after recording its detail)
	 * to stop. */
	int (*consume)(void *ctx, struct pl_job *job);
};

struct pl_config {
	unsigned workers;    /* 0 = online CPUs */
	size_t in_cap, out_cap, aux_cap;
	size_t worker_mem;   /* memory each worker holds besides jobs (e.g. a zstd context) */
	size_t mem_limit;    /* bound on job buffers + worker memory (0 = 160 MiB) */
	/* Jobs the consumer may hold at once (PL_HOLD); as many jobs are made besides the
	 * usual ones, so that holding them never starves the workers. Holding more
	 * deadlocks. */
	unsigned hold;
	/* With hold: called on the consumer's thread once no job will be consumed any more
	 * (end of input, error or stop), before pipeline_run returns; it must give back
	 * every held job. 0 or -errno (returned if nothing failed before). */
	int (*drain)(void *ctx);
	/* Optional: called with ctx once every thread has stopped and before the job
	 * buffers are freed, so a helper still reading job buffers (forensic stream
	 * digests, fed by produce()) can be waited for. */
	void (*quiesce)(void *ctx);
};

/* Give back a job that consume() held. Thread-safe. */
void pipeline_release(struct pl_job *job);

/* Number of workers a config resolves to (after the memory bound). */
unsigned pipeline_workers(const struct pl_config *cfg);

/* Run until the producer ends or a stage fails. Returns 0 or the first error in job
 * order; *failed_seq (if not NULL) gets the seq of the job that failed, or UINT64_MAX for
 * errors not tied to a job. */
int pipeline_run(const struct pl_ops *ops, void *ctx, const struct pl_config *cfg,
		 uint64_t *failed_seq);

#endif
