/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * imago restore IMAGE TARGET: write the device back to a new file (with holes for zero
 * ranges), an existing file, or a block device, after the safety checks: TARGET not
 * mounted or in use, large enough, not the image itself, not a non-empty file unless
 * --force. The library checks every chunk, the index and the digest on the way.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "device.h"
#include "progress.h"

void cmd_restore_help(FILE *f)
{
	fprintf(f, "Usage: imago restore [OPTIONS] IMAGE TARGET\n\n"
		   "Write the device held in IMAGE (- for stdin) to TARGET: a new file, an\n"
		   "existing file, or a block device. Refuses a mounted or in-use TARGET, one\n"
		   "smaller than the image's device, and a non-empty file without --force.\n\n"
		   "  -T, --threads N       decompression threads (default: all online CPUs)\n"
		   "  -f, --force           overwrite an existing non-empty file\n"
		   "  -q, --quiet           no progress and no summary\n"
		   "      --progress=MODE   auto, tty, json or none (default auto)\n"
		   "  -h, --help            this help\n");
}

struct restore_args {
	unsigned threads;
	bool force, quiet;
	enum progress_mode progress;
	const char *image, *target;
};

static int parse_args(int argc, char **argv, struct restore_args *a)
{
		static const struct option longopts[] = {
		{"threads", required_argument, NULL, 'T'},
		{"force", no_argument, NULL, 'f'},
		{"quiet", no_argument, NULL, 'q'},
		{"progress", required_argument, NULL, CLI_OPT_PROGRESS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	memset(a, 0, sizeof(*a));
	a->threads = cli_online_cpus();
	a->progress = PROGRESS_AUTO;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":T:fqh", longopts, NULL)) != -1) {
		int taken = cli_work_option(c, optarg, &a->threads, &a->progress);
		if (taken > 0)
			return taken;
		if (taken == 0)
			continue;
		switch (c) {
		case 'f': a->force = true; break;
		case 'q': a->quiet = true; break;
		case 'h': cmd_restore_help(stdout); return -1;
		default: return cli_getopt_error(c, argv);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(argc - optind < 2 ? "IMAGE and TARGET are needed"
							 : "too many arguments");
	a->image = argv[optind];
	a->target = argv[optind + 1];
	if (!a->target[0] || strcmp(a->target, "-") == 0)
		return cli_usage_error("TARGET must be a file or block device");
	return 0;
}

struct target {
	int fd;
	struct stat st;
	bool is_block;
	bool created;       /* we made this file */
	uint64_t size;      /* block device size */
};

/* The image's device size when it can be known before restoring (a seekable image):
 * also checks the image's structure up front, before TARGET is touched. Returns 0 with
 * *size = 0 when it cannot be known (a pipe), or an exit code. */
static int image_device_size(const char *path, int fd, const struct stat *st, uint64_t *size)
{
	*size = 0;
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode))
		return 0;
	struct imago_err err;
	memset(&err, 0, sizeof(err));
	imago_image *img = NULL;
	/* open_fd reads with pread and does not take the fd: its offset stays 0. */
	const char *name = strcmp(path, "-") == 0 ? "(stdin)" : path;
	int r = imago_image_open_fd(fd, name, &img, &err);
	if (r < 0)
		return cli_fail(r, &err, name, NULL);
	struct imago_info info;
	r = imago_image_info(img, &info);
	imago_image_close(img);
	if (r < 0)
		return cli_fail(r, NULL, path, NULL);
	*size = info.device_size;
	return 0;
}

static int refuse_small(const char *target, uint64_t have, uint64_t need)
{
	char h[32], n[32];
	cli_fmt_bytes(have, h, sizeof(h));
	cli_fmt_bytes(need, n, sizeof(n));
	cli_msg("refusing to restore to %s: it holds %" PRIu64 " bytes (%s) but the image's "
		"device is %" PRIu64 " bytes (%s): use a target of at least %" PRIu64 " bytes",
		target, have, h, need, n, need);
	return EXIT_REFUSED;
}

/* Open TARGET after the checks; dev_size is the image's device size or 0 if unknown. */
static int open_target(const struct restore_args *a, const struct stat *img_st,
		       uint64_t dev_size, struct target *t)
{
	memset(t, 0, sizeof(*t));
	t->fd = -1;
	if (stat(a->target, &t->st) < 0) {
		if (errno != ENOENT)
			return cli_sys_fail(errno, "cannot check TARGET", a->target, NULL);
		t->fd = open(a->target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0666);
		if (t->fd < 0)
			return cli_sys_fail(errno, "cannot create TARGET", a->target, NULL);
		t->created = true;
		fstat(t->fd, &t->st);
		return 0;
	}
	if (device_same(&t->st, img_st)) {
		cli_msg("refusing to restore %s onto itself: choose another TARGET", a->target);
		return EXIT_REFUSED;
	}
	if (S_ISBLK(t->st.st_mode)) {
		int rc = device_check_unused(&t->st, a->target);
		if (rc)
			return rc;
		/* O_EXCL on a block device: the kernel refuses it while mounted or opened
		 * exclusively elsewhere, which closes the gap after our checks. */
		t->fd = open(a->target, O_WRONLY | O_EXCL | O_CLOEXEC);
		if (t->fd < 0) {
			if (errno == EBUSY) {
				cli_msg("refusing to write to %s: it is in use (mounted or held by "
					"another program): stop that first",
					a->target);
				return EXIT_REFUSED;
			}
			return cli_sys_fail(errno, "cannot open TARGET", a->target, NULL);
		}
		uint32_t lss, pss;
		int r = device_block_geometry(t->fd, &t->size, &lss, &pss);
		if (r < 0)
			return cli_sys_fail(-r, "cannot read the size of TARGET", a->target, NULL);
		t->is_block = true;
		if (dev_size && t->size < dev_size)
			return refuse_small(a->target, t->size, dev_size);
		return 0;
	}
	if (!S_ISREG(t->st.st_mode)) {
		cli_msg("%s is not a regular file or block device: give a file or a disk",
			a->target);
		return EXIT_USAGE;
	}
	if (t->st.st_size > 0 && !a->force) {
		cli_msg("%s exists and is not empty: refusing to overwrite it: use --force, or "
			"choose another TARGET",
			a->target);
		return EXIT_REFUSED;
	}
	t->fd = open(a->target, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (t->fd < 0)
		return cli_sys_fail(errno, "cannot open TARGET", a->target, NULL);
	/* Emptied first, so every range the restore skips reads as zeros (a hole). */
	if (ftruncate(t->fd, 0) < 0)
		return cli_sys_fail(errno, "cannot truncate TARGET", a->target, NULL);
	return 0;
}

static void print_summary(const struct restore_args *a, const struct imago_restore_result *r,
			  double secs)
{
	char dev[32], wr[32], rate[32], hex[2 * IMAGO_DIGEST_LEN + 1];
	cli_fmt_bytes(r->device_size, dev, sizeof(dev));
	cli_fmt_bytes(r->bytes_written, wr, sizeof(wr));
	cli_fmt_bytes(secs > 0 ? (uint64_t)((double)r->device_size / secs) : 0, rate,
		      sizeof(rate));
	cli_hex(r->digest, IMAGO_DIGEST_LEN, hex);
	printf("restored %s to %s: device %s, %s written, %.1f s, %s/s, digest %s\n",
	       strcmp(a->image, "-") == 0 ? "(stdin)" : a->image, a->target, dev, wr, secs, rate,
	       hex);
	fflush(stdout);
}

int cmd_restore(int argc, char **argv)
{
	struct restore_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;

	bool from_stdin = strcmp(a.image, "-") == 0;
	const char *img_name;
	int img_fd;
	if ((rc = cli_open_image(a.image, &img_fd, &img_name)) != 0)
		return rc;
	struct stat img_st;
	struct target t = {.fd = -1};
	if (fstat(img_fd, &img_st) < 0) {
		rc = cli_sys_fail(errno, "cannot stat the image", img_name, NULL);
		goto out;
	}
	uint64_t dev_size;
	rc = image_device_size(a.image, img_fd, &img_st, &dev_size);
	if (rc)
		goto out;
	rc = open_target(&a, &img_st, dev_size, &t);
	if (rc)
		goto out;
	if (!t.is_block && dev_size && ftruncate(t.fd, (off_t)dev_size) < 0) {
		rc = cli_sys_fail(errno, "cannot size TARGET", a.target, NULL);
		goto out;
	}
	cli_signals_install();

	struct progress prog;
	progress_start(&prog, "restore", a.progress, a.quiet);
	struct imago_restore_opts opts = {
		.image_fd = img_fd,
		.image_name = img_name,
		.target_fd = t.fd,
		.target_size = t.is_block ? t.size : 0,
		.flags = t.is_block ? IMAGO_RESTORE_BLOCKDEV : IMAGO_RESTORE_SPARSE,
		.threads = a.threads,
		.progress = progress_cb,
		.progress_opaque = &prog,
	};
	struct imago_restore_result res;
	struct imago_err err;
	memset(&res, 0, sizeof(res));
	memset(&err, 0, sizeof(err));
	err.file_offset = err.dev_offset = err.chunk = -1;
	int r = imago_restore(&opts, &res, &err);
	progress_end(&prog);
	double secs = progress_elapsed(&prog);

	if (r >= 0 && cli_interrupted)
		r = -ECANCELED;
	if (r < 0) {
		char todo[512];
		if (r == -ECANCELED || cli_interrupted) {
			cli_msg("interrupted: %s is incomplete: run the restore again", a.target);
			rc = EXIT_FAIL;
		} else if (t.is_block && (r == -ENOSPC || r == -EFBIG)) {
			/* Only known once the header was read, when the image comes from a
			 * pipe: the library compares target_size with the device size. */
			if (res.device_size > t.size)
				refuse_small(a.target, t.size, res.device_size);
			else
				cli_fail(r, &err, a.target, "use a larger target");
			rc = EXIT_REFUSED;
		} else {
			snprintf(todo, sizeof(todo), "%s; %s is incomplete", cli_hint(r),
				 a.target);
			const char *where = img_name;
			if (r == -ENOSPC || r == -EDQUOT || r == -EFBIG || r == -EROFS)
				where = a.target;
			rc = cli_fail(r, &err, where, todo);
		}
		goto out;
	}
	/* From a pipe the size was unknown up front: a trailing zero range skipped on a
	 * sparse file must still count in the file's length. */
	if (!t.is_block) {
		struct stat now;
		if (fstat(t.fd, &now) == 0 && (uint64_t)now.st_size < res.device_size &&
		    ftruncate(t.fd, (off_t)res.device_size) < 0) {
			rc = cli_sys_fail(errno, "cannot size TARGET", a.target, NULL);
			goto out;
		}
	}
	if (fsync(t.fd) < 0) {
		rc = cli_sys_fail(errno, "cannot flush TARGET", a.target,
				  "check the device; the restore may be incomplete");
		goto out;
	}
	/* A whole disk may carry a new partition table: ask the kernel to re-read it. It
	 * fails harmlessly on partitions and devices without partition support. */
	if (t.is_block)
		ioctl(t.fd, BLKRRPART, 0);
	if (!a.quiet)
		print_summary(&a, &res, secs);
	rc = EXIT_OK;
out:
	if (t.fd >= 0 && close(t.fd) < 0 && rc == EXIT_OK)
		rc = cli_sys_fail(errno, "cannot close TARGET", a.target, NULL);
	if (!from_stdin)
		close(img_fd);
	return rc;
}
