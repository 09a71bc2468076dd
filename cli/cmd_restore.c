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
#include "restore_layout.h"
#include "target.h"

void cmd_restore_help(FILE *f)
{
	fprintf(f, "Usage: imago restore [OPTIONS] IMAGE TARGET\n\n"
		   "Write the device held in IMAGE (- for stdin) to TARGET: a new file, an\n"
		   "existing file, or a block device. Refuses a mounted or in-use TARGET, one\n"
		   "smaller than the image's device, and a non-empty file without --force.\n"
		   "Only used and zero ranges are written; free space is left alone. A disk\n"
		   "with a GPT may go to a larger disk, or to a smaller one when every\n"
		   "partition fits: the backup GPT moves to the new end.\n\n"
		   "      --partition N     restore only partition N of a whole-disk image\n"
		   "      --dry-run         tell what would be written where, and whether it fits\n"
		   "      --discard         discard (TRIM) free space on the target afterwards\n"
		   "      --zero-free       write zeros over free space afterwards\n"
		   "  -T, --threads N       decompression threads (default: all online CPUs)\n"
		   "  -f, --force           overwrite an existing non-empty file\n"
		   "  -q, --quiet           no progress and no summary\n"
		   "      --progress=MODE   auto, tty, json or none (default auto)\n"
		   "  -h, --help            this help\n");
}

struct restore_args {
	unsigned threads;
	unsigned partition;
	bool force, quiet, dry_run, discard, zero_free;
	enum progress_mode progress;
	const char *image, *target;
};

static int parse_args(int argc, char **argv, struct restore_args *a)
{
	enum { OPT_PART = 256, OPT_DRY, OPT_DISCARD, OPT_ZERO_FREE };
	static const struct option longopts[] = {
		{"partition", required_argument, NULL, OPT_PART},
		{"dry-run", no_argument, NULL, OPT_DRY},
		{"discard", no_argument, NULL, OPT_DISCARD},
		{"zero-free", no_argument, NULL, OPT_ZERO_FREE},
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
		case OPT_PART:
			if (cli_parse_uint(optarg, 1, PART_MAX_ENTRIES + 4, &a->partition) < 0)
				return cli_usage_error("--partition '%s': give a partition number "
						       "(see imago info IMAGE)", optarg);
			break;
		case OPT_DRY: a->dry_run = true; break;
		case OPT_DISCARD: a->discard = true; break;
		case OPT_ZERO_FREE: a->zero_free = true; break;
		case 'h': cmd_restore_help(stdout); return -1;
		default: return cli_getopt_error(c, argv);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(argc - optind < 2 ? "IMAGE and TARGET are needed"
							 : "too many arguments");
	a->image = argv[optind];
	a->target = argv[optind + 1];
	if (a->discard && a->zero_free)
		return cli_usage_error("--discard and --zero-free exclude each other");
	if (!a->target[0] || strcmp(a->target, "-") == 0)
		return cli_usage_error("TARGET must be a file or block device");
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

/* --dry-run: look at TARGET without opening it for writing, and tell. */
static int dry_run(const struct restore_args *a, const struct restore_layout *l)
{
	if (!l->known) {
		cli_msg("--dry-run needs the image as a file: give its path instead of a pipe");
		return EXIT_USAGE;
	}
	struct stat st;
	bool is_block = false;
	uint64_t size = 0;
	if (stat(a->target, &st) == 0 && S_ISBLK(st.st_mode)) {
		int fd = open(a->target, O_RDONLY | O_CLOEXEC);
		uint32_t lss, pss;
		if (fd < 0 || device_block_geometry(fd, &size, &lss, &pss) < 0) {
			int e = errno;
			if (fd >= 0)
				close(fd);
			return cli_sys_fail(e, "cannot read the size of TARGET", a->target, NULL);
		}
		close(fd);
		is_block = true;
	}
	layout_print(stdout, l, a->image, a->target, is_block, size);
	fflush(stdout);
	return is_block && size < l->need ? EXIT_REFUSED : EXIT_OK;
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
	struct cli_target t = {.fd = -1};
	struct restore_layout lay;
	memset(&lay, 0, sizeof(lay));
	if (fstat(img_fd, &img_st) < 0) {
		rc = cli_sys_fail(errno, "cannot stat the image", img_name, NULL);
		goto out;
	}
	rc = layout_read(a.image, img_fd, &img_st, a.partition, &lay);
	if (rc)
		goto out;
	if (a.dry_run) {
		rc = dry_run(&a, &lay);
		goto out;
	}
	rc = cli_target_open(a.target, a.force, &img_st, lay.known ? lay.need : 0, &t);
	if (rc)
		goto out;
	rc = layout_fit(&lay, a.target, t.is_block, t.size);
	if (rc)
		goto out;
	if (!t.is_block && lay.known && lay.win_len && ftruncate(t.fd, (off_t)lay.win_len) < 0) {
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
		.flags = (t.is_block ? IMAGO_RESTORE_BLOCKDEV : IMAGO_RESTORE_SPARSE) |
			 (a.discard ? IMAGO_RESTORE_DISCARD_FREE : 0) |
			 (a.zero_free ? IMAGO_RESTORE_ZERO_FREE : 0),
		.threads = a.threads,
		.window_offset = lay.known ? lay.win_off : 0,
		.window_length = lay.known ? lay.win_len : 0,
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
			if (res.device_size > t.size) {
				cli_target_refuse_small(a.target, t.size, res.device_size);
				rc = EXIT_REFUSED;
			} else {
				/* Large enough, yet out of space (a thin or loop-backed
				 * device whose backing store filled up): a failed write. */
				snprintf(todo, sizeof(todo), "%s; %s is incomplete",
					 cli_hint(r), a.target);
				rc = cli_fail(r, &err, a.target, todo);
			}
		} else {
			snprintf(todo, sizeof(todo), "%s; %s is incomplete", cli_hint(r),
				 a.target);
			/* A write that failed is the target's fault, whatever the errno. */
			const char *where = img_name;
			if (err.in_target || r == -ENOSPC || r == -EDQUOT || r == -EFBIG || r == -EROFS)
				where = a.target;
			rc = cli_fail(r, &err, where, todo);
		}
		goto out;
	}
	/* From a pipe the size was unknown up front: a trailing zero range skipped on a
	 * sparse file must still count in the file's length. */
	if (!t.is_block) {
		struct stat now;
		uint64_t want = lay.known ? lay.win_len : res.device_size;
		if (fstat(t.fd, &now) == 0 && (uint64_t)now.st_size < want &&
		    ftruncate(t.fd, (off_t)want) < 0) {
			rc = cli_sys_fail(errno, "cannot size TARGET", a.target, NULL);
			goto out;
		}
	}
	if (fsync(t.fd) < 0) {
		rc = cli_sys_fail(errno, "cannot flush TARGET", a.target,
				  "check the device; the restore may be incomplete");
		goto out;
	}
	if (t.is_block && !a.partition && t.size != res.device_size &&
	    (rc = layout_fit_table(a.target, t.size, res.device_size, a.quiet)) != 0)
		goto out;
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
	layout_free(&lay);
	return rc;
}
