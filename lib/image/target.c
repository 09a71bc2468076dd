/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Writing the restored device to its target.
 *
 * One thread writes, in device order (the pipeline's consumer): sequential writes suit
 * every kind of disk, and parallel writers to one file only queue on its inode lock
 * (perf showed a sixth of restore's CPU time spinning on it).
 *
 * Direct I/O where the target takes it. A restore ends with fsync, so the page cache
 * buys nothing here: it only adds a copy of every byte into freshly allocated cache
 * pages (the largest cost of a buffered restore; far larger still on a VM whose freed
 * memory goes back to the host), fills memory with dirty data nobody will read, and
 * evicts what others had cached. With O_DIRECT the disk reads our buffers itself.
 * Measured in bench/README.md ("restore.sh").
 *
 * What direct I/O cannot take is written through the page cache, O_DIRECT switched off
 * on the fd for it: a piece not aligned to the target's direct I/O granularity (only a
 * device end that is not a multiple of it; chunks and 4 KiB blocks are aligned). A
 * target that refuses direct I/O (its filesystem does not support it, or EINVAL on a
 * write) is written through the page cache from then on: slower, never wrong.
 * Direct I/O is used on block devices and on the local disk filesystems named in
 * direct_suits() only: on a network or FUSE filesystem every direct write would wait for
 * a round trip, where the page cache lets the kernel send many at once.
 *
 * Several direct writes in flight (up to TARGET_INFLIGHT_BYTES): one direct write at a time
 * leaves the device idle between requests and the pipeline waiting on each; the page
 * cache had hidden that. Linux native AIO, by its three system calls (no libaio for
 * them), not io_uring: AIO works wherever direct I/O does, io_uring is often disabled
 * (containers, hardened kernels). Where AIO cannot be set up, writes are synchronous.
 * A write the kernel completes short or refuses (EINVAL) is finished synchronously.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <linux/aio_abi.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "image/target.h"
#include "imago.h"
#include "util/xio.h"
#include "util/zero.h"

#define SPARSE_BLOCK 4096u
/* With direct I/O every write is a request to the device and waits for it: a zero gap
 * shorter than this between non-zero blocks is written (as zeros) rather than cutting a
 * chunk into many small requests. Holes that small save nothing worth that. */
#define DIRECT_MIN_HOLE (64u << 10)
#define ZEROS_MAX (1u << 20)
/* Requests (pieces of chunks) in flight at most: TARGET_DEPTH chunks of a few pieces. */
#define AIO_REQS 64u

struct aio_req {
	struct iocb cb;
	int tok;            /* the write it belongs to (index in tok[]); -1: free */
};

struct aio_tok {
	void *token;
	unsigned pending;   /* requests in flight, + 1 while target_write still submits */
	bool held;          /* a target_write for it returned 1: release() is owed */
	bool bracket;       /* between target_begin and target_end (counted in pending) */
};

struct target_aio {
	aio_context_t ctx;
	bool no_submit;     /* io_submit failed: no more asynchronous writes */
	target_release_fn release;
	unsigned depth;     /* tokens in flight at most */
	unsigned inflight;  /* requests submitted and not yet reaped */
	unsigned toks;      /* tokens in use */
	struct aio_req req[AIO_REQS];
	struct aio_tok tok[TARGET_DEPTH];
};

/* Keep the failure first in device order (the restore stops at it anyway). */
static int fail(struct target *t, int r, uint64_t off)
{
	if (!t->err || off < t->err_off) {
		t->err = r;
		t->err_off = off;
	}
	return r;
}

static int set_direct(struct target *t, bool on)
{
	if (t->direct == on)
		return 0;
	int fl = on ? (t->orig_flags | O_DIRECT) : (t->orig_flags & ~O_DIRECT);
	if (fcntl(t->fd, F_SETFL, fl) < 0)
		return -errno;
	t->direct = on;
	return 0;
}

static bool pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* The target's direct I/O alignment: statx knows it (Linux 6.1 for files, 6.11 for block
 * devices); before that, a block device's logical sector size or, for a file, 4096 (a
 * wrong guess costs one EINVAL, then the page cache). For a file, never less than its
 * block size: a direct write of part of a filesystem block makes the filesystem zero
 * the rest and wait for every other write in flight. */
static void find_alignment(struct target *t)
{
	t->align = 4096;
	t->mem_align = TARGET_BUF_ALIGN;
	bool known = false;
#ifdef STATX_DIOALIGN
	struct statx sx;
	if (statx(t->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN)) {
		t->align = sx.stx_dio_offset_align;
		t->mem_align = sx.stx_dio_mem_align;
		if (!t->align || !pow2(t->align) || t->align > (1u << 20) || !pow2(t->mem_align) ||
		    t->mem_align > TARGET_BUF_ALIGN) {
			t->direct_ok = false; /* 0: no direct I/O on this file */
			return;
		}
		known = true;
	}
#endif
	int ss = 0;
	struct stat st;
	if (!known && t->blockdev && ioctl(t->fd, BLKSSZGET, &ss) == 0 && ss > 0 &&
	    pow2((uint32_t)ss) && (uint32_t)ss <= (1u << 20))
		t->align = (uint32_t)ss;
	if (!t->blockdev && fstat(t->fd, &st) == 0 && st.st_blksize > 0 &&
	    (uint64_t)st.st_blksize > t->align && pow2((uint32_t)st.st_blksize) &&
	    st.st_blksize <= (1 << 20))
		t->align = (uint32_t)st.st_blksize;
}

static bool direct_suits(int fd)
{
	struct stat st;
	struct statfs sf;
	if (fstat(fd, &st) < 0)
		return false;
	if (S_ISBLK(st.st_mode))
		return true;
	if (!S_ISREG(st.st_mode) || fstatfs(fd, &sf) < 0)
		return false;
	switch ((unsigned long)sf.f_type) {
	case EXT4_SUPER_MAGIC: /* ext2 and ext3 too */
	case XFS_SUPER_MAGIC:
	case BTRFS_SUPER_MAGIC:
	case F2FS_SUPER_MAGIC:
		return true;
	default:
		return false;
	}
}

int target_open(struct target *t, int fd, unsigned flags, size_t max_write,
		target_release_fn release)
{
	memset(t, 0, sizeof(*t));
	t->fd = fd;
	t->sparse = flags & IMAGO_RESTORE_SPARSE;
	t->blockdev = flags & IMAGO_RESTORE_BLOCKDEV;
	t->orig_flags = fcntl(fd, F_GETFL);
	t->direct = t->orig_flags >= 0 && (t->orig_flags & O_DIRECT);
	t->direct_ok = t->orig_flags >= 0 && direct_suits(fd);
	if (t->direct_ok)
		find_alignment(t);
	/* Filesystems without direct I/O refuse the flag here. */
	if (t->direct_ok && set_direct(t, true) < 0)
		t->direct_ok = false;
	if (!t->sparse) {
		/* Zeros for targets without a zeroing call: 1 MiB per write is plenty. */
		size_t zl = max_write && max_write < ZEROS_MAX ? max_write : ZEROS_MAX;
		void *z = NULL;
		if (posix_memalign(&z, TARGET_BUF_ALIGN, zl) != 0) {
			target_close(t);
			return -ENOMEM;
		}
		memset(z, 0, zl);
		t->zeros = z;
		t->zeros_len = zl;
	}
	/* Chunks larger than TARGET_INFLIGHT_BYTES are written synchronously, one at a
	 * time: one such write is already several requests to the device, and holding
	 * more of them would cost more memory than it saves time. */
	size_t depth = max_write ? TARGET_INFLIGHT_BYTES / max_write : TARGET_DEPTH;
	if (depth > TARGET_DEPTH)
		depth = TARGET_DEPTH;
	if (release && t->direct_ok && depth > 0) {
		struct target_aio *a = calloc(1, sizeof(*a));
		if (!a) {
			target_close(t);
			return -ENOMEM;
		}
		if (syscall(SYS_io_setup, (long)AIO_REQS, &a->ctx) < 0) {
			free(a); /* no AIO here: synchronous writes */
		} else {
			a->release = release;
			a->depth = (unsigned)depth;
			for (unsigned i = 0; i < AIO_REQS; i++)
				a->req[i].tok = -1;
			t->aio = a;
		}
	}
	return 0;
}

static void reap(struct target *t, long min);

/* Wait until no write is in flight. */
static void wait_idle(struct target *t)
{
	while (t->aio && t->aio->inflight)
		reap(t, 1);
}

/* Write len bytes at off: the aligned part with direct I/O where possible, the rest
 * through the page cache. */
static int put(struct target *t, const uint8_t *buf, uint64_t off, size_t len)
{
	if (t->direct_ok && off % t->align == 0 && (uintptr_t)buf % t->mem_align == 0) {
		size_t n = len - len % t->align;
		int r = 0;
		if (n && set_direct(t, true) < 0)
			r = -EINVAL; /* the flag refused: as below */
		else if (n)
			r = xpwrite_full(t->fd, buf, n, off);
		if (r == -EINVAL) {
			/* Refused after all (or cut short at an unaligned place): from here on,
			 * and for this piece from its start, the page cache. */
			t->direct_ok = false;
		} else if (r < 0) {
			return r;
		} else {
			buf += n;
			off += n;
			len -= n;
		}
	}
	if (len == 0)
		return 0;
	/* Through the page cache: nothing may be in flight then. A buffered write of part
	 * of a page reads the rest from the disk, where a direct write may not have landed
	 * yet, and would write that back over it (the kernel warns of such collisions and
	 * fails the next fsync). Only device ends and fallbacks come here. */
	wait_idle(t);
	int r = set_direct(t, false);
	if (r < 0)
		return r;
	return xpwrite_full(t->fd, buf, len, off);
}

static int put_or_fail(struct target *t, const uint8_t *buf, uint64_t off, size_t len)
{
	int r = put(t, buf, off, len);
	return r < 0 ? fail(t, r, off) : 0;
}

static void tok_done(struct target_aio *a, int k)
{
	if (--a->tok[k].pending == 0) {
		a->toks--;
		a->release(a->tok[k].token);
	}
}

/* Collect finished requests: at least min of them (waiting), or only those done already
 * when min is 0. A request that failed is recorded; one cut short or refused (EINVAL) is
 * finished synchronously. */
static void reap(struct target *t, long min)
{
	struct target_aio *a = t->aio;
	struct io_event ev[AIO_REQS];
	struct timespec now = { 0, 0 };
	long n;
	do
		n = syscall(SYS_io_getevents, a->ctx, min, (long)AIO_REQS, ev, min ? NULL : &now);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		/* Cannot happen with a valid context. io_destroy waits for what is in flight,
		 * so every buffer can be given back; what those requests did is unknown. */
		syscall(SYS_io_destroy, a->ctx);
		a->ctx = 0;
		a->no_submit = true;
		for (unsigned i = 0; i < AIO_REQS; i++)
			if (a->req[i].tok >= 0) {
				fail(t, -EIO, (uint64_t)a->req[i].cb.aio_offset);
				int k = a->req[i].tok;
				a->req[i].tok = -1;
				a->inflight--;
				tok_done(a, k);
			}
		return;
	}
	/* Requests to finish synchronously, once this batch is accounted for (that may
	 * wait for the others in flight, reaping again). */
	struct redo {
		const uint8_t *buf;
		uint64_t off;
		size_t len;
		int tok;
	} redo[AIO_REQS];
	long nredo = 0;
	for (long i = 0; i < n; i++) {
		struct aio_req *q = (struct aio_req *)(uintptr_t)ev[i].data;
		const uint8_t *buf = (const uint8_t *)(uintptr_t)q->cb.aio_buf;
		uint64_t off = (uint64_t)q->cb.aio_offset, len = q->cb.aio_nbytes;
		int64_t res = ev[i].res;
		int k = q->tok;
		q->tok = -1;
		a->inflight--;
		if (res == -EINVAL || (res >= 0 && (uint64_t)res < len)) {
			uint64_t done = res > 0 ? (uint64_t)res : 0;
			if (res == -EINVAL)
				t->direct_ok = false;
			redo[nredo++] = (struct redo){ buf + done, off + done, (size_t)(len - done), k };
			continue;
		}
		if (res < 0)
			fail(t, res < -4095 ? -EIO : (int)res, off);
		tok_done(a, k);
	}
	for (long i = 0; i < nredo; i++) {
		put_or_fail(t, redo[i].buf, redo[i].off, redo[i].len);
		tok_done(a, redo[i].tok);
	}
}

/* Send len bytes at off as part of write k: the aligned part as a direct write in flight,
 * what cannot be (or cannot be sent) synchronously. */
static int submit(struct target *t, int k, const uint8_t *buf, uint64_t off, size_t len)
{
	struct target_aio *a = t->aio;
	size_t n = 0;
	if (t->direct_ok && !a->no_submit && off % t->align == 0 && (uintptr_t)buf % t->mem_align == 0)
		n = len - len % t->align;
	if (n && set_direct(t, true) < 0) {
		t->direct_ok = false;
		n = 0;
	}
	while (n) {
		struct aio_req *q = NULL;
		while (!q) {
			for (unsigned i = 0; i < AIO_REQS && !q; i++)
				if (a->req[i].tok < 0)
					q = &a->req[i];
			if (!q)
				reap(t, 1); /* all AIO_REQS in flight */
			if (a->no_submit)
				break;
		}
		if (!q || a->no_submit)
			break;
		memset(&q->cb, 0, sizeof(q->cb));
		q->cb.aio_data = (uint64_t)(uintptr_t)q;
		q->cb.aio_lio_opcode = IOCB_CMD_PWRITE;
		q->cb.aio_fildes = (uint32_t)t->fd;
		q->cb.aio_buf = (uint64_t)(uintptr_t)buf;
		q->cb.aio_nbytes = n;
		q->cb.aio_offset = (int64_t)off;
		struct iocb *p = &q->cb;
		long r = syscall(SYS_io_submit, a->ctx, 1L, &p);
		if (r == 1) {
			q->tok = k;
			a->tok[k].pending++;
			a->inflight++;
			buf += n;
			off += n;
			len -= n;
			break;
		}
		if (r < 0 && (errno == EINTR || (errno == EAGAIN && a->inflight))) {
			if (errno == EAGAIN)
				reap(t, 1);
			continue;
		}
		a->no_submit = true; /* refused: synchronous writes from here on */
	}
	return len ? put_or_fail(t, buf, off, len) : 0;
}

static int piece(struct target *t, int k, const uint8_t *buf, uint64_t off, size_t len)
{
	return k < 0 ? put_or_fail(t, buf, off, len) : submit(t, k, buf, off, len);
}

/* Whether the 4 KiB block at `at` of buf (len bytes; the last block may be short) is all
 * zeros. */
static bool zero_block(const uint8_t *buf, size_t at, size_t len)
{
	return buf_is_zero(buf + at, len - at < SPARSE_BLOCK ? len - at : SPARSE_BLOCK);
}

/* Write what must be written of buf, as pieces of write k (-1: synchronously). */
static int write_runs(struct target *t, int k, const uint8_t *buf, uint64_t off, size_t len)
{
	if (!t->sparse)
		return len ? piece(t, k, buf, off, len) : 0;
	/* The target reads as zeros already: write only the runs of non-zero blocks. */
	size_t min_hole = t->direct_ok ? DIRECT_MIN_HOLE : SPARSE_BLOCK;
	size_t at = 0;
	while (at < len) {
		if (zero_block(buf, at, len)) {
			at += SPARSE_BLOCK;
			continue;
		}
		size_t start = at, end;
		for (;;) {
			while (at < len && !zero_block(buf, at, len))
				at += SPARSE_BLOCK;
			end = at < len ? at : len;
			size_t gap = at;
			while (gap < len && gap - at < min_hole && zero_block(buf, gap, len))
				gap += SPARSE_BLOCK;
			bool more = gap < len && gap - at < min_hole; /* a short gap, then data */
			at = gap;
			if (!more)
				break;
		}
		int r = piece(t, k, buf + start, off + start, end - start);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The slot of a token, allocated (waiting for a free one) when it has none. */
static unsigned tok_slot(struct target *t, void *token)
{
	struct target_aio *a = t->aio;
	unsigned k = 0;
	while (k < TARGET_DEPTH && !(a->tok[k].pending && a->tok[k].token == token))
		k++;
	if (k == TARGET_DEPTH) {
		while (a->toks >= a->depth)
			reap(t, 1);
		for (k = 0; a->tok[k].pending; k++)
			;
		a->tok[k] = (struct aio_tok){ .token = token };
		a->toks++;
	}
	return k;
}

int target_write(struct target *t, const uint8_t *buf, uint64_t off, size_t len, void *token)
{
	if (t->err)
		return t->err;
	struct target_aio *a = t->aio;
	if (!token || !a || a->no_submit || !t->direct_ok) {
		write_runs(t, -1, buf, off, len);
		return t->err;
	}
	if (a->inflight)
		reap(t, 0); /* give back what is done already, early */
	/* Pieces of one buffer written by several calls share the token's slot, so that
	 * release comes once, when all of them are done. */
	unsigned k = tok_slot(t, token);
	a->tok[k].pending++;
	write_runs(t, (int)k, buf, off, len);
	if (--a->tok[k].pending == 0) {
		/* Nothing of it left in flight. */
		a->toks--;
		if (a->tok[k].held)
			a->release(token); /* promised by an earlier call */
		return t->err;
	}
	a->tok[k].held = true;
	return t->err ? t->err : 1;
}

int target_begin(struct target *t, void *token)
{
	struct target_aio *a = t->aio;
	if (t->err || !token || !a || a->no_submit || !t->direct_ok)
		return t->err;
	if (a->inflight)
		reap(t, 0);
	unsigned k = tok_slot(t, token);
	a->tok[k].pending++;
	a->tok[k].bracket = true;
	return 0;
}

int target_end(struct target *t, void *token)
{
	struct target_aio *a = t->aio;
	unsigned k = 0;
	while (a && k < TARGET_DEPTH && !(a->tok[k].pending && a->tok[k].bracket && a->tok[k].token == token))
		k++;
	if (!a || k == TARGET_DEPTH)
		return t->err; /* target_begin did nothing: every write was synchronous */
	a->tok[k].bracket = false;
	if (--a->tok[k].pending == 0) {
		/* Nothing of it left in flight: no release owed, whatever the pieces said. */
		a->toks--;
		return t->err;
	}
	a->tok[k].held = true;
	return t->err ? t->err : 1;
}

unsigned target_depth(const struct target *t)
{
	return t->aio ? t->aio->depth : 0;
}

int target_zero(struct target *t, uint64_t off, uint64_t len)
{
	if (t->err)
		return t->err;
	if (t->sparse || len == 0)
		return 0;
	if (t->blockdev) {
		uint64_t range[2] = { off, len };
		if (off % 512 == 0 && len % 512 == 0 && ioctl(t->fd, BLKZEROOUT, range) == 0)
			return 0;
	} else if (fallocate(t->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0) {
		return 0;
	}
	for (uint64_t done = 0; done < len;) {
		size_t n = (size_t)(len - done < t->zeros_len ? len - done : t->zeros_len);
		int r = put_or_fail(t, t->zeros, off + done, n);
		if (r < 0)
			return r;
		done += n;
	}
	return 0;
}

int target_flush(struct target *t)
{
	while (t->aio && t->aio->inflight)
		reap(t, 1);
	return t->err;
}

void target_close(struct target *t)
{
	target_flush(t);
	if (t->aio) {
		if (t->aio->ctx)
			syscall(SYS_io_destroy, t->aio->ctx);
		free(t->aio);
		t->aio = NULL;
	}
	if (t->orig_flags >= 0 && t->direct != (bool)(t->orig_flags & O_DIRECT))
		fcntl(t->fd, F_SETFL, t->orig_flags);
	t->direct = t->orig_flags >= 0 && (t->orig_flags & O_DIRECT);
	free(t->zeros);
	t->zeros = NULL;
}
