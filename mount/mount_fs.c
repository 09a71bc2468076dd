/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The FUSE file system of `imago mount` (mount_fs.h), on libfuse3's high-level API with
 * its multi-threaded loop: the backend's pread is thread-safe, so requests run in
 * parallel (several readers, and the kernel's read-ahead, decode chunks at once).
 *
 * Read-only mounts let the kernel keep file pages across opens (kernel_cache): the bytes
 * of an image never change. With an overlay the page cache is dropped at each open, since
 * `disk` and `pN` show the same bytes under two names.
 */
#define FUSE_USE_VERSION 35
#include <errno.h>
#include <fuse.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/region.h"
#include "mount/mount_fs.h"

static ssize_t region_read(void *opaque, void *buf, size_t len, uint64_t off)
{
	return backend_pread(opaque, buf, len, off);
}

void mount_fs_list(struct mount_fs *fs, char *warning, size_t wlen)
{
	warning[0] = '\0';
	fs->nfiles = 1;
	snprintf(fs->files[0].name, sizeof(fs->files[0].name), "disk");
	fs->files[0].start = 0;
	fs->files[0].size = fs->b->size;
	static struct part_table t; /* large; one mount per process */
	struct imago_err err;
	struct region r = region_cb(region_read, fs->b, fs->b->size, fs->b->name);
	int rc = part_read(&r, fs->b->sector_size, &t, &err);
	if (rc < 0) {
		snprintf(warning, wlen, "partition table not readable, only 'disk' is shown: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < t.n_entries; i++) {
		const struct part_entry *e = &t.entries[i];
		if ((e->flags & PART_EXTENDED) || e->start >= fs->b->size)
			continue;
		struct mount_file *f = &fs->files[fs->nfiles++];
		snprintf(f->name, sizeof(f->name), "p%u", e->number);
		f->start = e->start;
		f->size = e->size < fs->b->size - e->start ? e->size : fs->b->size - e->start;
	}
}

static struct mount_fs *ctx(void)
{
	return fuse_get_context()->private_data;
}

static const struct mount_file *lookup(const char *path)
{
	struct mount_fs *fs = ctx();
	if (path[0] != '/')
		return NULL;
	for (size_t i = 0; i < fs->nfiles; i++)
		if (strcmp(path + 1, fs->files[i].name) == 0)
			return &fs->files[i];
	return NULL;
}

static void log_error(struct mount_fs *fs, const char *what, const struct mount_file *f, uint64_t off,
		      int code)
{
	const char *msg = backend_errmsg(fs->b, code);
	if (fs->foreground) {
		fprintf(stderr, "imago: mount: %s %s at byte %llu failed: %s\n", what, f->name,
			(unsigned long long)off, msg);
		fflush(stderr);
	} else {
		syslog(LOG_ERR, "%s %s at byte %llu failed: %s", what, f->name, (unsigned long long)off, msg);
	}
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct mount_fs *fs = ctx();
	cfg->kernel_cache = !fs->writable;
	cfg->entry_timeout = cfg->attr_timeout = 3600;
	cfg->negative_timeout = 3600;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (fs->ready)
		fs->ready(fs->ready_opaque);
	return fs;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct mount_fs *fs = ctx();
	memset(st, 0, sizeof(*st));
	st->st_uid = getuid();
	st->st_gid = getgid();
	st->st_mtime = st->st_ctime = st->st_atime = fs->mtime;
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	}
	const struct mount_file *f = lookup(path);
	if (!f)
		return -ENOENT;
	st->st_mode = S_IFREG | (fs->writable ? 0644 : 0444);
	st->st_nlink = 1;
	st->st_size = (off_t)f->size;
	st->st_blksize = 65536;
	st->st_blocks = (blkcnt_t)((f->size + 511) / 512);
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct mount_fs *fs = ctx();
	if (strcmp(path, "/") != 0)
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	for (size_t i = 0; i < fs->nfiles; i++)
		fill(buf, fs->files[i].name, NULL, 0, 0);
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct mount_fs *fs = ctx();
	const struct mount_file *f = lookup(path);
	if (!f)
		return strcmp(path, "/") == 0 ? -EISDIR : -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY && !fs->writable)
		return -EROFS;
	fi->fh = (uint64_t)(f - fs->files);
	fi->keep_cache = !fs->writable;
	return 0;
}

static const struct mount_file *file_of(struct fuse_file_info *fi, const char *path)
{
	struct mount_fs *fs = ctx();
	if (fi && fi->fh < fs->nfiles)
		return &fs->files[fi->fh];
	return lookup(path);
}

static int fs_read(const char *path, char *buf, size_t len, off_t off, struct fuse_file_info *fi)
{
	struct mount_fs *fs = ctx();
	const struct mount_file *f = file_of(fi, path);
	if (!f)
		return -ENOENT;
	if (off < 0)
		return -EINVAL;
	if ((uint64_t)off >= f->size)
		return 0;
	if (len > f->size - (uint64_t)off)
		len = (size_t)(f->size - (uint64_t)off);
	ssize_t n = backend_pread(fs->b, buf, len, f->start + (uint64_t)off);
	if (n < 0) {
		log_error(fs, "read of", f, (uint64_t)off, (int)n);
		return n == -ENOMEM ? -ENOMEM : -EIO; /* damage reads as EIO, never as data */
	}
	return (int)n;
}

static int fs_write(const char *path, const char *buf, size_t len, off_t off,
		    struct fuse_file_info *fi)
{
	struct mount_fs *fs = ctx();
	const struct mount_file *f = file_of(fi, path);
	if (!f)
		return -ENOENT;
	if (!fs->writable)
		return -EROFS;
	if (off < 0)
		return -EINVAL;
	if ((uint64_t)off >= f->size || len > f->size - (uint64_t)off)
		return -ENOSPC; /* the files are disks: they do not grow */
	ssize_t n = fs->b->ops->pwrite(fs->b, buf, len, f->start + (uint64_t)off);
	if (n < 0) {
		log_error(fs, "write to", f, (uint64_t)off, (int)n);
		return n == -ENOMEM || n == -ENOSPC ? (int)n : -EIO;
	}
	return (int)n;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct mount_fs *fs = ctx();
	if (!fs->writable || !fs->b->ops->flush)
		return 0;
	int r = fs->b->ops->flush(fs->b);
	return r < 0 ? -EIO : 0;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	const struct mount_file *f = file_of(fi, path);
	if (!f)
		return -ENOENT;
	if (!ctx()->writable)
		return -EROFS;
	return (uint64_t)size == f->size ? 0 : -EPERM;
}

static int fs_statfs(const char *path, struct statvfs *sv)
{
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = sv->f_frsize = 4096;
	sv->f_blocks = (fsblkcnt_t)((ctx()->b->size + 4095) / 4096);
	sv->f_files = ctx()->nfiles;
	sv->f_namemax = 255;
	return 0;
}

static const struct fuse_operations ops = {
	.init = fs_init,
	.getattr = fs_getattr,
	.readdir = fs_readdir,
	.open = fs_open,
	.read = fs_read,
	.write = fs_write,
	.fsync = fs_fsync,
	.truncate = fs_truncate,
	.statfs = fs_statfs,
};

/* libfuse's own messages, kept (the last one) for our one-line error. */
static char fuse_last[512];
static void fuse_log_capture(enum fuse_log_level level, const char *fmt, va_list ap)
{
	if (level > FUSE_LOG_ERR)
		return;
	vsnprintf(fuse_last, sizeof(fuse_last), fmt, ap);
	size_t n = strlen(fuse_last);
	while (n && (fuse_last[n - 1] == '\n' || fuse_last[n - 1] == ' '))
		fuse_last[--n] = '\0';
}

/* The detached server tells the waiting parent how the mount went: "0" or "1<message>". */
static void tell_parent(int fd, const char *msg)
{
	if (fd < 0)
		return;
	char buf[1100];
	int n = snprintf(buf, sizeof(buf), "%s%s", msg ? "1" : "0", msg ? msg : "");
	if (n > (int)sizeof(buf) - 1)
		n = (int)sizeof(buf) - 1;
	ssize_t w = write(fd, buf, (size_t)n);
	(void)w;
	close(fd);
}

/* Fork: the parent waits for the child's word and returns it (0 mounted, -1 with msg);
 * the child (a new session) returns 1 with *fd the pipe to report on. */
static int detach(int *fd, char *msg, size_t msglen)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(msg, msglen, "cannot detach: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(msg, msglen, "cannot detach: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		setsid();
		*fd = p[1];
		return 1;
	}
	close(p[1]);
	char buf[1100];
	size_t got = 0;
	for (;;) {
		ssize_t n = read(p[0], buf + got, sizeof(buf) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(p[0]);
	buf[got] = '\0';
	if (got == 0) {
		int st;
		waitpid(pid, &st, 0);
		snprintf(msg, msglen, "the mount process ended before mounting");
		return -1;
	}
	if (buf[0] != '0') {
		waitpid(pid, NULL, 0);
		snprintf(msg, msglen, "%s", buf + 1);
		return -1;
	}
	return 0;
}

int mount_fs_serve(struct mount_fs *fs, const char *dir, const char *image, char *msg,
		   size_t msglen)
{
	int report = -1;
	if (!fs->foreground) {
		int r = detach(&report, msg, msglen);
		if (r <= 0)
			return r; /* the parent: mounted (0) or not (-1) */
		openlog("imago-mount", LOG_PID, LOG_DAEMON);
	}
	/* fsname "imago:PID:IMAGE": imago umount waits for PID to end ("," and "\" would
	 * end or escape the option) */
	char name[600];
	int k = snprintf(name, sizeof(name), "imago:%d:", (int)getpid());
	for (const char *p = image; *p && k + 1 < (int)sizeof(name); p++)
		name[k++] = (*p == ',' || *p == '\\') ? '_' : *p;
	name[k] = '\0';
	char opts[1024];
	snprintf(opts, sizeof(opts), "fsname=%s,subtype=imago,%s,default_permissions", name,
		 fs->writable ? "rw" : "ro");
	char *argv[] = { "imago", "-o", opts, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	fuse_set_log_func(fuse_log_capture);
	struct fuse *f = fuse_new(&args, &ops, sizeof(ops), fs);
	fuse_opt_free_args(&args);
	if (!f) {
		snprintf(msg, msglen, "cannot start FUSE: %s", fuse_last[0] ? fuse_last : "fuse_new failed");
		goto fail;
	}
	if (fuse_mount(f, dir) != 0) {
		snprintf(msg, msglen, "cannot mount on %s: %s", dir,
			 fuse_last[0] ? fuse_last : "fuse_mount failed");
		fuse_destroy(f);
		goto fail;
	}
	struct fuse_session *se = fuse_get_session(f);
	if (report >= 0) {
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
			if (nul > 2)
				close(nul);
		}
		if (chdir("/") < 0) {
			/* nothing depends on the working directory */
		}
		tell_parent(report, NULL);
	}
	fuse_set_signal_handlers(se);
	struct fuse_loop_config cfg = { .clone_fd = 0, .max_idle_threads = 16 };
	int r = fuse_loop_mt(f, &cfg);
	fuse_remove_signal_handlers(se);
	fuse_unmount(f);
	fuse_destroy(f);
	if (r != 0 && r != SIGINT && r != SIGTERM && fs->foreground) {
		snprintf(msg, msglen, "the FUSE loop ended with an error");
		return -1;
	}
	return 0;
fail:
	if (report >= 0) {
		tell_parent(report, msg);
		_exit(1); /* the parent says it */
	}
	return -1;
}
