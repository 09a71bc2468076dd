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
 * Measured in bench/README.md ("restore").
 *
 * What direct I/O cannot take is written through the page cache, O_DIRECT switched off
 * on the fd for it: a piece not aligned to the target's direct I/O granularity (only a
 * device end that is not a multiple of it; chunks and 4 KiB blocks are aligned). A
 * target that refuses direct I/O (its filesystem does not support it, or EINVAL on a
 * write) is written through the page cache from then on: slower, never wrong.
 * Direct I/O is used on block devices and on the local disk filesystems named in
 * direct_suits() only: on a network or FUSE filesystem every direct write would wait for
 * a round trip, where the page cache lets the kernel send many at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
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
 * wrong guess costs one EINVAL, then the page cache). */
static void find_alignment(struct target *t)
{
	t->align = 4096;
	t->mem_align = TARGET_BUF_ALIGN;
#ifdef STATX_DIOALIGN
	struct statx sx;
	if (statx(t->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 && (sx.stx_mask & STATX_DIOALIGN)) {
		t->align = sx.stx_dio_offset_align;
		t->mem_align = sx.stx_dio_mem_align;
		if (!t->align || !pow2(t->align) || t->align > (1u << 20) || !pow2(t->mem_align) ||
		    t->mem_align > TARGET_BUF_ALIGN)
			t->direct_ok = false; /* 0: no direct I/O on this file */
		return;
	}
#endif
	int ss = 0;
	if (t->blockdev && ioctl(t->fd, BLKSSZGET, &ss) == 0 && ss > 0 && pow2((uint32_t)ss) &&
	    (uint32_t)ss <= (1u << 20))
		t->align = (uint32_t)ss;
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

int target_open(struct target *t, int fd, unsigned flags, size_t max_write)
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
		void *z = NULL;
		if (max_write == 0)
			max_write = 1u << 20;
		if (posix_memalign(&z, TARGET_BUF_ALIGN, max_write ? max_write : 1) != 0) {
			target_close(t);
			return -ENOMEM;
		}
		memset(z, 0, max_write);
		t->zeros = z;
		t->zeros_len = max_write;
	}
	return 0;
}

void target_close(struct target *t)
{
	if (t->orig_flags >= 0 && t->direct != (bool)(t->orig_flags & O_DIRECT))
		fcntl(t->fd, F_SETFL, t->orig_flags);
	t->direct = t->orig_flags >= 0 && (t->orig_flags & O_DIRECT);
	free(t->zeros);
	t->zeros = NULL;
}

/* Write len bytes at off: the aligned part with direct I/O where possible, the rest
 * through the page cache. */
static int put(struct target *t, const uint8_t *buf, uint64_t off, size_t len)
{
	if (t->direct_ok && off % t->align == 0 && (uintptr_t)buf % t->mem_align == 0) {
		size_t n = len - len % t->align;
		int r = n ? set_direct(t, true) : 0;
		if (r == 0 && n)
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
	int r = set_direct(t, false);
	if (r < 0)
		return r;
	return xpwrite_full(t->fd, buf, len, off);
}

/* Whether the 4 KiB block at `at` of buf (len bytes; the last block may be short) is all
 * zeros. */
static bool zero_block(const uint8_t *buf, size_t at, size_t len)
{
	return buf_is_zero(buf + at, len - at < SPARSE_BLOCK ? len - at : SPARSE_BLOCK);
}

int target_write(struct target *t, const uint8_t *buf, uint64_t off, size_t len)
{
	if (!t->sparse)
		return len ? put(t, buf, off, len) : 0;
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
		int r = put(t, buf + start, off + start, end - start);
		if (r < 0)
			return r;
	}
	return 0;
}

int target_zero(struct target *t, uint64_t off, uint64_t len)
{
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
		int r = put(t, t->zeros, off + done, n);
		if (r < 0)
			return r;
		done += n;
	}
	return 0;
}
