// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * faultdev: a failing disk for the rescue tests and benchmark. A small FUSE file system
 * (libfuse3) with one file, MOUNTPOINT/disk, whose bytes are those of BACKING, except
 * where CONFIG says otherwise:
 *
 *   bad OFFSET LENGTH             every read touching these bytes fails with EIO
 *   slow OFFSET LENGTH MS         a read touching them takes MS milliseconds longer
 *   weak OFFSET LENGTH N          each 512-byte sector here fails its first N reads
 *   errdelay MS                   every failing read takes MS milliseconds (a drive's retries)
 *   log PATH                      append "OFFSET SIZE ok|EIO" for every read to PATH
 *   # comment
 *
 * Numbers are C literals (0x.. hex). A read fails as a whole, as a disk's does: a
 * request that touches a bad or weak sector returns EIO, not the bytes before it. Files
 * are opened direct_io, so every read(2) reaches here with its own offset and size (no
 * page cache, no read-ahead); with `losetup -r` on top it is a block device.
 * Counters: the file MOUNTPOINT/stats says how many reads and failed reads it served.
 *
 * Usage: faultdev BACKING CONFIG MOUNTPOINT [FUSE options, e.g. -f]
 */
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum kind { BAD, SLOW, WEAK };

struct fault {
	enum kind kind;
	uint64_t off, len;
	unsigned ms, n;
	unsigned *left;     /* WEAK: failures left per sector */
};

static struct fault *faults;
static size_t nfaults;
static unsigned errdelay_ms;
static FILE *log_file;
static int backing = -1;
static uint64_t disk_size;
static uint64_t n_reads, n_failed;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int load_config(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		return -1;
	}
	char line[512];
	unsigned ln = 0;
	while (fgets(line, sizeof(line), f)) {
		ln++;
		char *h = strchr(line, '#');
		if (h)
			*h = 0;
		char kw[32];
		unsigned long long a = 0, b = 0, c = 0;
		int k = sscanf(line, "%31s %lli %lli %lli", kw, (long long *)&a, (long long *)&b,
			       (long long *)&c);
		if (k <= 0)
			continue;
		char lp[400];
		if (sscanf(line, "log %399s", lp) == 1) {
			if (!(log_file = fopen(lp, "a"))) {
				perror(lp);
				fclose(f);
				return -1;
			}
			continue;
		}
		if (strcmp(kw, "errdelay") == 0 && k == 2) {
			errdelay_ms = (unsigned)a;
			continue;
		}
		struct fault fl = {.off = a, .len = b, .ms = (unsigned)c, .n = (unsigned)c};
		if (strcmp(kw, "bad") == 0 && k == 3)
			fl.kind = BAD;
		else if (strcmp(kw, "slow") == 0 && k == 4)
			fl.kind = SLOW;
		else if (strcmp(kw, "weak") == 0 && k == 4)
			fl.kind = WEAK;
		else {
			fprintf(stderr, "%s:%u: bad line\n", path, ln);
			fclose(f);
			return -1;
		}
		if (fl.kind == WEAK) {
			uint64_t ns = (fl.len + 511) / 512;
			fl.left = malloc(ns * sizeof(unsigned));
			if (!fl.left) {
				fclose(f);
				return -1;
			}
			for (uint64_t i = 0; i < ns; i++)
				fl.left[i] = fl.n;
		}
		struct fault *v = realloc(faults, (nfaults + 1) * sizeof(*v));
		if (!v) {
			fclose(f);
			return -1;
		}
		faults = v;
		faults[nfaults++] = fl;
	}
	fclose(f);
	return 0;
}

static int fd_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else if (strcmp(path, "/disk") == 0) {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)disk_size;
	} else if (strcmp(path, "/stats") == 0) {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = 4096;
	} else {
		return -ENOENT;
	}
	return 0;
}

static int fd_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, "disk", NULL, 0, 0);
	fill(buf, "stats", NULL, 0, 0);
	return 0;
}

static int fd_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/disk") != 0 && strcmp(path, "/stats") != 0)
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	fi->direct_io = 1;
	return 0;
}

static int fd_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	if (strcmp(path, "/stats") == 0) {
		char s[128];
		pthread_mutex_lock(&lock);
		int n = snprintf(s, sizeof(s), "reads %" PRIu64 "\nfailed %" PRIu64 "\n", n_reads,
				 n_failed);
		pthread_mutex_unlock(&lock);
		if (off >= n)
			return 0;
		if (size > (size_t)(n - off))
			size = (size_t)(n - off);
		memcpy(buf, s + off, size);
		return (int)size;
	}
	uint64_t a = (uint64_t)off;
	if (a >= disk_size)
		return 0;
	if (size > disk_size - a)
		size = (size_t)(disk_size - a);
	uint64_t e = a + size;
	int fail = 0;
	unsigned delay = 0;
	pthread_mutex_lock(&lock);
	n_reads++;
	for (size_t i = 0; i < nfaults; i++) {
		struct fault *f = &faults[i];
		if (f->off >= e || f->off + f->len <= a)
			continue;
		if (f->kind == BAD) {
			fail = 1;
		} else if (f->kind == SLOW) {
			delay += f->ms;
		} else {
			uint64_t s0 = (a > f->off ? a - f->off : 0) / 512;
			uint64_t s1 = ((e < f->off + f->len ? e : f->off + f->len) - f->off + 511) / 512;
			for (uint64_t s = s0; s < s1; s++)
				if (f->left[s]) {
					f->left[s]--;
					fail = 1;
				}
		}
	}
	if (fail)
		n_failed++;
	if (log_file) {
		fprintf(log_file, "%" PRIu64 " %zu %s\n", a, size, fail ? "EIO" : "ok");
		fflush(log_file);
	}
	pthread_mutex_unlock(&lock);
	if (delay)
		sleep_ms(delay);
	if (fail) {
		if (errdelay_ms)
			sleep_ms(errdelay_ms);
		return -EIO;
	}
	size_t got = 0;
	while (got < size) {
		ssize_t n = pread(backing, buf + got, size - got, (off_t)(a + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n) {
			memset(buf + got, 0, size - got);
			break;
		}
		got += (size_t)n;
	}
	return (int)size;
}

static void *fd_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->direct_io = 1;
	cfg->kernel_cache = 0;
	cfg->attr_timeout = 3600;
	cfg->entry_timeout = 3600;
	return NULL;
}

static const struct fuse_operations ops = {
	.init = fd_init,
	.getattr = fd_getattr,
	.readdir = fd_readdir,
	.open = fd_open,
	.read = fd_read,
};

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: faultdev BACKING CONFIG MOUNTPOINT [FUSE options]\n");
		return 2;
	}
	backing = open(argv[1], O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (backing < 0 || fstat(backing, &st) < 0) {
		perror(argv[1]);
		return 1;
	}
	disk_size = (uint64_t)st.st_size;
	if (load_config(argv[2]) < 0)
		return 1;
	/* fuse_main gets: program, mountpoint, the FUSE options; single-threaded keeps the
	 * weak-sector counters in request order. */
	char **fa = calloc((size_t)argc + 2, sizeof(char *));
	if (!fa)
		return 1;
	int n = 0;
	fa[n++] = argv[0];
	fa[n++] = argv[3];
	fa[n++] = "-s";
	for (int i = 4; i < argc; i++)
		fa[n++] = argv[i];
	int rc = fuse_main(n, fa, &ops, NULL);
	free(fa);
	return rc;
}
