// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * imago clone SOURCE TARGET: disk to disk (or file) in one pass, used data only, with the
 * same partition-table handling as restore (a larger target, or a smaller one that holds
 * every partition; the backup GPT moves to the new end), without an intermediate image.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "device.h"
#include "freeze.h"
#include "plan_show.h"
#include "progress.h"
#include "restore_layout.h"
#include "source_plan.h"
#include "target.h"
#include "util/xio.h"

void cmd_clone_help(FILE *f)
{
	fprintf(f, "Usage: imago clone [OPTIONS] SOURCE TARGET\n\n"
		   "Copy SOURCE (a disk, partition or file) to TARGET (a disk, partition or\n"
		   "file) at the same offsets, reading only what the filesystems use; free\n"
		   "space on TARGET is left alone. A GPT disk may go to a larger disk, or to a\n"
		   "smaller one that holds every partition: the backup GPT moves to the end.\n\n"
		   "      --sector          copy every sector (no filesystem reading)\n"
		   "      --freeze          freeze filesystems of SOURCE mounted read-write\n"
		   "      --discard         discard (TRIM) free space on TARGET afterwards\n"
		   "      --zero-free       write zeros over free space afterwards\n"
		   "  -f, --force           overwrite a non-empty file; copy a SOURCE mounted\n"
		   "                        read-write, and dirty filesystems whole\n"
		   "  -T, --threads N       hashing threads (default: all online CPUs)\n"
		   "  -q, --quiet           no progress and no summary\n"
		   "      --progress=MODE   auto, tty, json or none (default auto)\n"
		   "  -h, --help            this help\n");
}

struct clone_args {
	unsigned threads;
	bool force, quiet, sector, freeze, discard, zero_free;
	enum progress_mode progress;
	const char *source, *target;
};

static int parse_args(int argc, char **argv, struct clone_args *a)
{
	enum { OPT_SECTOR = 256, OPT_FREEZE, OPT_DISCARD, OPT_ZERO_FREE };
	static const struct option longopts[] = {
		{"sector", no_argument, NULL, OPT_SECTOR},
		{"freeze", no_argument, NULL, OPT_FREEZE},
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
		case OPT_SECTOR: a->sector = true; break;
		case OPT_FREEZE: a->freeze = true; break;
		case OPT_DISCARD: a->discard = true; break;
		case OPT_ZERO_FREE: a->zero_free = true; break;
		case 'h': cmd_clone_help(stdout); return -1;
		default: return cli_getopt_error(c, argv);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(argc - optind < 2 ? "SOURCE and TARGET are needed"
							 : "too many arguments");
	a->source = argv[optind];
	a->target = argv[optind + 1];
	if (a->discard && a->zero_free)
		return cli_usage_error("--discard and --zero-free exclude each other");
	if (!a->target[0] || strcmp(a->target, "-") == 0)
		return cli_usage_error("TARGET must be a file or block device");
	return 0;
}

/* The smallest target that holds what matters: every partition and the table; bytes past
 * it (outside the backup GPT) must be zero or free, which is read and checked here. */
static int clone_need(const struct clone_args *a, const struct cli_source *src,
		      const struct smart_plan *p, uint64_t target_size, uint64_t *need)
{
	*need = src->size;
	if (a->sector || !p->table || p->table->scheme == PART_NONE || part_table_is_odd(p->table) ||
	    target_size >= src->size)
		return 0;
	uint64_t m = part_min_disk_size(p->table);
	if (!m || m > src->size || target_size < m) {
		*need = m && m <= src->size ? m : src->size;
		return 0;
	}
	struct region r = region_fd(src->fd, 0, src->size, src->path);
	struct imago_err err = { 0 };
	uint64_t last;
	int e = plan_last_data_end(&r, p, target_size, src->size, &last, &err);
	if (e < 0)
		return cli_fail(e, &err, a->source, NULL);
	if (last) {
		*need = src->size; /* data after the partitions: nothing can be cut */
		return 0;
	}
	*need = m;
	return 0;
}

int cmd_clone(int argc, char **argv)
{
	struct clone_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	cli_signals_install();
	struct cli_source src;
	if ((rc = device_open_source(a.source, &src)) != 0)
		return rc;
	struct smart_plan plan;
	memset(&plan, 0, sizeof(plan));
	struct cli_target t = {.fd = -1};
	if ((rc = source_plan(&src, a.sector ? NULL : a.target, a.force, a.freeze && !a.sector,
			      a.quiet, &plan)) != 0)
		goto out;
	rc = cli_target_open(a.target, a.force, &src.st, 0, &t);
	if (rc)
		goto out;
	uint64_t need = src.size;
	if (t.is_block && (rc = clone_need(&a, &src, &plan, t.size, &need)) != 0)
		goto out;
	if (t.is_block && t.size < need) {
		rc = cli_target_refuse_small(a.target, t.size, need);
		goto out;
	}
	if (!t.is_block && ftruncate(t.fd, (off_t)src.size) < 0) {
		rc = cli_sys_fail(errno, "cannot size TARGET", a.target, NULL);
		goto out;
	}
	struct progress prog;
	progress_start(&prog, "clone", a.progress, a.quiet);
	struct imago_clone_opts opts = {
		.source_fd = src.fd,
		.source_size = src.size,
		.alloc = a.sector ? NULL : plan.map.v,
		.alloc_count = a.sector ? 0 : plan.map.n,
		.target_fd = t.fd,
		.target_size = t.is_block ? t.size : 0,
		.flags = (t.is_block ? IMAGO_RESTORE_BLOCKDEV : IMAGO_RESTORE_SPARSE) |
			 (a.discard ? IMAGO_RESTORE_DISCARD_FREE : 0) |
			 (a.zero_free ? IMAGO_RESTORE_ZERO_FREE : 0),
		.threads = a.threads,
		.progress = progress_cb,
		.progress_opaque = &prog,
	};
	struct imago_clone_result res;
	struct imago_err err;
	memset(&res, 0, sizeof(res));
	memset(&err, 0, sizeof(err));
	err.file_offset = err.dev_offset = err.chunk = -1;
	int r = imago_clone(&opts, &res, &err);
	freeze_thaw_all();
	progress_end(&prog);
	double secs = progress_elapsed(&prog);
	if (r >= 0 && cli_interrupted)
		r = -ECANCELED;
	if (r < 0) {
		if (r == -ECANCELED) {
			cli_msg("interrupted: %s is incomplete: run the clone again", a.target);
			rc = EXIT_FAIL;
		} else {
			char todo[256];
			snprintf(todo, sizeof(todo), "%s; %s is incomplete", cli_hint(r), a.target);
			bool write_side = err.in_target || r == -ENOSPC || r == -EDQUOT ||
					  r == -EFBIG || r == -EROFS;
			rc = cli_fail(r, &err, write_side ? a.target : a.source, todo);
			if (rc == EXIT_DAMAGED)
				rc = EXIT_FAIL;
		}
		goto out;
	}
	if (fsync(t.fd) < 0) {
		rc = cli_sys_fail(errno, "cannot flush TARGET", a.target, NULL);
		goto out;
	}
	if (t.is_block && t.size != src.size &&
	    (rc = layout_fit_table(a.target, t.size, src.size, a.quiet)) != 0)
		goto out;
	if (t.is_block)
		ioctl(t.fd, BLKRRPART, 0);
	if (!a.quiet) {
		char dev[32], rd[32], wr[32], rate[32], hex[2 * IMAGO_DIGEST_LEN + 1];
		cli_fmt_bytes(src.size, dev, sizeof(dev));
		cli_fmt_bytes(res.bytes_read, rd, sizeof(rd));
		cli_fmt_bytes(res.bytes_written, wr, sizeof(wr));
		cli_fmt_bytes(secs > 0 ? (uint64_t)((double)res.bytes_read / secs) : 0, rate,
			      sizeof(rate));
		cli_hex(res.digest, IMAGO_DIGEST_LEN, hex);
		printf("cloned %s to %s: device %s, %s read, %s written, %.1f s, %s/s, digest %s\n",
		       a.source, a.target, dev, rd, wr, secs, rate, hex);
	}
	rc = EXIT_OK;
out:
	freeze_thaw_all();
	if (t.fd >= 0 && close(t.fd) < 0 && rc == EXIT_OK)
		rc = cli_sys_fail(errno, "cannot close TARGET", a.target, NULL);
	smart_plan_free(&plan);
	device_close_source(&src);
	return rc;
}
