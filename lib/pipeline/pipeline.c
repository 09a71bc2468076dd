/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "pipeline/pipeline.h"

enum job_state { J_FREE, J_READY, J_BUSY, J_DONE, J_HELD };

struct pl {
	const struct pl_ops *ops;
	void *ctx;
	struct pl_job *jobs;
	enum job_state *state;
	bool *released;             /* given back while its consume() still ran */
	size_t njobs;
	unsigned workers;

	pthread_mutex_t lock;
	pthread_cond_t cond_free;   /* a job became FREE (producer waits) */
	pthread_cond_t cond_ready;  /* a job became READY or stop (workers wait) */
	pthread_cond_t cond_done;   /* a job became DONE or producer ended (consumer waits) */

	uint64_t next_produce;      /* seq the producer gives next */
	bool produced_all;          /* producer ended (eof or error) */
	uint64_t end_seq;           /* seq at which the producer ended */
	int producer_err;           /* its error, reported when the consumer reaches end_seq */
	bool stop;                  /* consumer stopped early: everyone quits */
	unsigned worker_ids;
};

static size_t find_state_seq(struct pl *p, enum job_state st, bool any, uint64_t seq)
{
	for (size_t i = 0; i < p->njobs; i++)
		if (p->state[i] == st && (any || p->jobs[i].seq == seq))
			return i;
	return SIZE_MAX;
}

/* READY jobs are taken oldest first so the consumer is never starved by a late job. */
static size_t find_oldest_ready(struct pl *p)
{
	size_t best = SIZE_MAX;
	for (size_t i = 0; i < p->njobs; i++)
		if (p->state[i] == J_READY && (best == SIZE_MAX || p->jobs[i].seq < p->jobs[best].seq))
			best = i;
	return best;
}

static void *producer_main(void *arg)
{
	struct pl *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		size_t i = SIZE_MAX;
		while (!p->stop && (i = find_state_seq(p, J_FREE, true, 0)) == SIZE_MAX)
			pthread_cond_wait(&p->cond_free, &p->lock);
		if (p->stop)
			break;
		struct pl_job *j = &p->jobs[i];
		p->state[i] = J_BUSY;
		j->seq = p->next_produce;
		j->in_len = j->out_len = 0;
		j->status = 0;
		pthread_mutex_unlock(&p->lock);
		int r = p->ops->produce(p->ctx, j);
		pthread_mutex_lock(&p->lock);
		if (r <= 0) {
			p->state[i] = J_FREE;
			p->produced_all = true;
			p->end_seq = p->next_produce;
			p->producer_err = r;
			pthread_cond_broadcast(&p->cond_done);
			pthread_cond_broadcast(&p->cond_ready);
			break;
		}
		p->next_produce++;
		p->state[i] = J_READY;
		pthread_cond_signal(&p->cond_ready);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void *worker_main(void *arg)
{
	struct pl *p = arg;
	pthread_mutex_lock(&p->lock);
	unsigned id = p->worker_ids++;
	for (;;) {
		size_t i = SIZE_MAX;
		while (!p->stop && (i = find_oldest_ready(p)) == SIZE_MAX && !p->produced_all)
			pthread_cond_wait(&p->cond_ready, &p->lock);
		if (p->stop)
			break;
		if (i == SIZE_MAX) {
			/* Producer finished; leave when nothing is left to take. */
			if ((i = find_oldest_ready(p)) == SIZE_MAX)
				break;
		}
		p->state[i] = J_BUSY;
		pthread_mutex_unlock(&p->lock);
		int r = p->ops->work(p->ctx, &p->jobs[i], id);
		pthread_mutex_lock(&p->lock);
		p->jobs[i].status = r;
		p->state[i] = J_DONE;
		pthread_cond_broadcast(&p->cond_done);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Job buffers are aligned for direct I/O (restore writes job->out to its target). */
static uint8_t *buf_alloc(size_t cap)
{
	void *p = NULL;
	if (cap && posix_memalign(&p, PL_BUF_ALIGN, cap) != 0)
		return NULL;
	return p;
}

void pipeline_release(struct pl_job *job)
{
	struct pl *p = job->pl_;
	size_t i = (size_t)(job - p->jobs);
	pthread_mutex_lock(&p->lock);
	if (p->state[i] == J_HELD) {
		p->state[i] = J_FREE;
		pthread_cond_signal(&p->cond_free);
	} else {
		p->released[i] = true; /* from within its consume(): freed when that returns */
	}
	pthread_mutex_unlock(&p->lock);
}

unsigned pipeline_workers(const struct pl_config *cfg)
{
	unsigned w = cfg->workers;
	if (w == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		w = n > 0 ? (unsigned)n : 1;
	}
	if (w > 256)
		w = 256;
	size_t limit = cfg->mem_limit ? cfg->mem_limit : (size_t)160 << 20;
	/* Buffer sizes come from our own code (chunk sizes are validated), but stay safe. */
	size_t per_job = cfg->in_cap + cfg->out_cap + cfg->aux_cap;
	if (per_job < cfg->in_cap || per_job > limit)
		return 1;
	/* Each worker needs about two jobs in flight to stay busy while the others queue. */
	while (w > 1 && per_job * (2 * (size_t)w + 2 + cfg->hold) + cfg->worker_mem * w > limit)
		w--;
	return w;
}

int pipeline_run(const struct pl_ops *ops, void *ctx, const struct pl_config *cfg,
		 uint64_t *failed_seq)
{
	struct pl p = { .ops = ops, .ctx = ctx };
	p.workers = pipeline_workers(cfg);
	p.njobs = 2 * (size_t)p.workers + 2 + cfg->hold;
	int ret = 0;
	uint64_t fail_at = UINT64_MAX;

	p.jobs = calloc(p.njobs, sizeof(*p.jobs));
	p.state = calloc(p.njobs, sizeof(*p.state));
	p.released = calloc(p.njobs, sizeof(*p.released));
	if (!p.jobs || !p.state || !p.released) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < p.njobs; i++) {
		struct pl_job *j = &p.jobs[i];
		j->in = buf_alloc(cfg->in_cap);
		j->out = buf_alloc(cfg->out_cap);
		j->aux = buf_alloc(cfg->aux_cap);
		j->pl_ = &p;
		if ((cfg->in_cap && !j->in) || (cfg->out_cap && !j->out) || (cfg->aux_cap && !j->aux)) {
			ret = -ENOMEM;
			goto out_free;
		}
	}
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond_free, NULL);
	pthread_cond_init(&p.cond_ready, NULL);
	pthread_cond_init(&p.cond_done, NULL);

	pthread_t prod, *wk = calloc(p.workers, sizeof(*wk));
	unsigned started = 0;
	bool prod_started = false;
	if (!wk) {
		ret = -ENOMEM;
		goto out_sync;
	}
	for (; started < p.workers; started++)
		if (pthread_create(&wk[started], NULL, worker_main, &p) != 0)
			break;
	if (started == 0 || pthread_create(&prod, NULL, producer_main, &p) != 0) {
		ret = -EAGAIN;
		pthread_mutex_lock(&p.lock);
		p.stop = true;
		pthread_cond_broadcast(&p.cond_ready);
		pthread_mutex_unlock(&p.lock);
		goto out_join;
	}
	prod_started = true;

	pthread_mutex_lock(&p.lock);
	for (uint64_t seq = 0;; seq++) {
		size_t i;
		while ((i = find_state_seq(&p, J_DONE, false, seq)) == SIZE_MAX &&
		       !(p.produced_all && seq >= p.end_seq))
			pthread_cond_wait(&p.cond_done, &p.lock);
		if (i == SIZE_MAX) {
			/* Every produced job is consumed; report how the producer ended. */
			if (p.producer_err < 0) {
				ret = p.producer_err;
				fail_at = seq;
			}
			break;
		}
		struct pl_job *j = &p.jobs[i];
		pthread_mutex_unlock(&p.lock);
		int r = ops->consume(ctx, j);
		pthread_mutex_lock(&p.lock);
		if (r < 0) {
			ret = r;
			fail_at = seq;
			break;
		}
		if (r == PL_HOLD && !p.released[i]) {
			p.state[i] = J_HELD;
			continue;
		}
		p.released[i] = false;
		p.state[i] = J_FREE;
		pthread_cond_signal(&p.cond_free);
	}
	p.stop = true;
	pthread_cond_broadcast(&p.cond_free);
	pthread_cond_broadcast(&p.cond_ready);
	pthread_mutex_unlock(&p.lock);

out_join:
	if (prod_started)
		pthread_join(prod, NULL);
	for (unsigned k = 0; k < started; k++)
		pthread_join(wk[k], NULL);
	free(wk);
	if (cfg->drain) {
		/* Held jobs come back before their buffers are freed. */
		int r = cfg->drain(ctx);
		if (r < 0 && ret == 0) {
			ret = r;
			fail_at = UINT64_MAX;
		}
	}
	if (cfg->quiesce)
		cfg->quiesce(ctx);
out_sync:
	pthread_cond_destroy(&p.cond_done);
	pthread_cond_destroy(&p.cond_ready);
	pthread_cond_destroy(&p.cond_free);
	pthread_mutex_destroy(&p.lock);
out_free:
	if (p.jobs)
		for (size_t i = 0; i < p.njobs; i++) {
			free(p.jobs[i].in);
			free(p.jobs[i].out);
			free(p.jobs[i].aux);
		}
	free(p.jobs);
	free(p.state);
	free(p.released);
	if (failed_seq)
		*failed_seq = fail_at;
	return ret;
}
