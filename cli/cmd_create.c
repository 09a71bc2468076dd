/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * imago create SOURCE IMAGE: image a file or block device. The image is written under a
 * temporary name next to IMAGE and renamed only when complete and synced, so IMAGE never
 * names a half-written image, whatever happens (failure, SIGINT, SIGTERM).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "device.h"
#include "freeze.h"
#include "plan_show.h"
#include "source_plan.h"
#include "progress.h"

void cmd_create_help(FILE *f)
{
	fprintf(f,
		"Usage: imago create [OPTIONS] SOURCE IMAGE\n\n"
		"Image SOURCE (a file or block device) into IMAGE; IMAGE may be - (stdout).\n"
		"IMAGE is written under a temporary name and renamed when complete.\n"
		"Smart by default: the partition table and the filesystems in SOURCE are read\n"
		"and the space they do not use is neither read nor stored.\n\n"
		"      --sector          keep every sector (no filesystem reading)\n"
		"      --freeze          freeze filesystems of SOURCE mounted read-write\n"
		"                        (fsfreeze) while imaging\n"
		"  -l, --level N         zstd level 1-19 (default %d)\n"
		"      --chunk-size SIZE 64K ... 16M, a power of two (default 1M)\n"
		"  -T, --threads N       compression threads (default: all online CPUs)\n"
		"  -f, --force           overwrite an existing IMAGE; image a SOURCE mounted\n"
		"                        read-write, and copy dirty filesystems whole\n"
		"  -q, --quiet           no progress and no summary\n"
		"      --progress=MODE   auto, tty, json or none (default auto)\n"
		"  -h, --help            this help\n",
		IMAGO_LEVEL_DEFAULT);
}

struct create_args {
	int level;
	uint32_t chunk_size;
	unsigned threads;
	bool force, quiet, sector, freeze;
	enum progress_mode progress;
	const char *source, *image;
};

static int parse_args(int argc, char **argv, struct create_args *a)
{
	enum { OPT_CHUNK = 256, OPT_SECTOR, OPT_FREEZE };
	static const struct option longopts[] = {
		{"sector", no_argument, NULL, OPT_SECTOR},
		{"freeze", no_argument, NULL, OPT_FREEZE},
		{"level", required_argument, NULL, 'l'},
		{"chunk-size", required_argument, NULL, OPT_CHUNK},
		{"threads", required_argument, NULL, 'T'},
		{"force", no_argument, NULL, 'f'},
		{"quiet", no_argument, NULL, 'q'},
		{"progress", required_argument, NULL, CLI_OPT_PROGRESS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	memset(a, 0, sizeof(*a));
	a->level = IMAGO_LEVEL_DEFAULT;
	a->chunk_size = IMAGO_CHUNK_DEFAULT;
	a->threads = cli_online_cpus();
	a->progress = PROGRESS_AUTO;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":l:T:fqh", longopts, NULL)) != -1) {
		unsigned u;
		uint64_t sz;
		int taken = cli_work_option(c, optarg, &a->threads, &a->progress);
		if (taken > 0)
			return taken;
		if (taken == 0)
			continue;
		switch (c) {
		case 'l':
			if (cli_parse_uint(optarg, 1, 19, &u) < 0)
				return cli_usage_error("--level '%s': give a zstd level from 1 to 19",
						       optarg);
			a->level = (int)u;
			break;
		case OPT_CHUNK:
			if (cli_parse_size(optarg, &sz) < 0 || sz < IMAGO_CHUNK_MIN ||
			    sz > IMAGO_CHUNK_MAX || (sz & (sz - 1)))
				return cli_usage_error("--chunk-size '%s': give a power of two from "
						       "64K to 16M",
						       optarg);
			a->chunk_size = (uint32_t)sz;
			break;
		case 'f': a->force = true; break;
		case 'q': a->quiet = true; break;
		case OPT_SECTOR: a->sector = true; break;
		case OPT_FREEZE: a->freeze = true; break;
		case 'h': cmd_create_help(stdout); return -1;
		default: return cli_getopt_error(c, argv);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(argc - optind < 2 ? "SOURCE and IMAGE are needed"
							 : "too many arguments");
	a->source = argv[optind];
	a->image = argv[optind + 1];
	if (!a->image[0])
		return cli_usage_error("IMAGE is an empty name");
	return 0;
}

/* Is IMAGE acceptable as a new image's name? 0 or an exit code. */
static int check_image_path(const struct create_args *a, const struct cli_source *src)
{
	struct stat st;
	if (stat(a->image, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return cli_sys_fail(errno, "cannot check IMAGE", a->image, NULL);
	}
	if (device_same(&st, &src->st)) {
		cli_msg("refusing to write the image over its own source %s: choose another "
			"IMAGE", a->image);
		return EXIT_REFUSED;
	}
	if (!S_ISREG(st.st_mode)) {
		/* rename() would replace a device node or fail on a directory: an image
		 * goes to a file, or to a pipe through '-'. */
		cli_msg("refusing to replace %s: it is not a regular file: give a file name, or "
			"- to write to stdout",
			a->image);
		return EXIT_REFUSED;
	}
	if (!a->force) {
		cli_msg("%s exists: refusing to overwrite it: use --force, or choose another "
			"name", a->image);
		return EXIT_REFUSED;
	}
	return 0;
}

/* fsync the directory holding path, so the rename is durable too. */
static void sync_dir_of(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	int d = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d >= 0) {
		fsync(d);
		close(d);
	}
}

/* Sync, set the usual permissions, close fd and move the temp file to IMAGE. */
static int finish_file(int fd, const char *tmp, const char *image)
{
	if (fsync(fd) < 0) {
		int e = errno;
		close(fd);
		return cli_sys_fail(e, "cannot flush the image to disk", tmp,
				    "check the disk; no image was written");
	}
	/* mkostemp makes 0600; an image is an ordinary file: 0666 less the umask. */
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	if (close(fd) < 0)
		return cli_sys_fail(errno, "cannot close the image", tmp, NULL);
	if (rename(tmp, image) < 0)
		return cli_sys_fail(errno, "cannot rename the finished image", image, NULL);
	sync_dir_of(image);
	return 0;
}

static void print_summary(const struct create_args *a, const struct imago_create_result *r,
			  double secs)
{
	FILE *f = strcmp(a->image, "-") == 0 ? stderr : stdout;
	char dev[32], img[32], rate[32], hex[2 * IMAGO_DIGEST_LEN + 1];
	cli_fmt_bytes(r->device_size, dev, sizeof(dev));
	cli_fmt_bytes(r->image_bytes, img, sizeof(img));
	cli_fmt_bytes(secs > 0 ? (uint64_t)((double)r->device_size / secs) : 0, rate,
		      sizeof(rate));
	cli_hex(r->digest, IMAGO_DIGEST_LEN, hex);
	double pct = r->device_size ? 100.0 * (double)r->image_bytes / (double)r->device_size
				    : 0;
	double ratio = r->image_bytes ? (double)r->device_size / (double)r->image_bytes : 0;
	char rd[32], fr[32];
	cli_fmt_bytes(r->bytes_read, rd, sizeof(rd));
	cli_fmt_bytes(r->free_bytes, fr, sizeof(fr));
	fprintf(f,
		"created %s: device %s (%s read, %s free skipped), image %s (%.1f%% of the "
		"device, %.2f:1), %" PRIu64 " data + %" PRIu64 " zero chunks, %.1f s, %s/s, "
		"digest %s\n",
		strcmp(a->image, "-") == 0 ? "(stdout)" : a->image, dev, rd, fr, img, pct, ratio,
		r->data_chunks, r->zero_chunks, secs, rate, hex);
	fflush(f);
}

/* Which path a failed create is most likely about: write-side errors name IMAGE. */
static const char *fail_path(int code, const struct create_args *a)
{
	switch (code) {
	case -ENOSPC:
	case -EDQUOT:
	case -EFBIG:
	case -EPIPE:
	case -EROFS:
		return strcmp(a->image, "-") == 0 ? "(stdout)" : a->image;
	default:
		return a->source;
	}
}

int cmd_create(int argc, char **argv)
{
	struct create_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;

	bool to_stdout = strcmp(a.image, "-") == 0;
	if (to_stdout && isatty(STDOUT_FILENO))
		return cli_usage_error("refusing to write an image to a terminal: redirect "
				       "stdout to a file or a pipe");

	/* Before the temp file exists, so no signal can leave it behind. */
	cli_signals_install();
	struct cli_source src;
	rc = device_open_source(a.source, &src);
	if (rc)
		return rc;

	int out_fd = STDOUT_FILENO;
	char *tmp = NULL;
	struct smart_plan plan;
	memset(&plan, 0, sizeof(plan));
	char *meta_pool = NULL;
	if (!a.sector) {
		rc = source_plan(&src, a.image, a.force, a.freeze, a.quiet, &plan);
		if (rc)
			goto out;
	}
	if (!to_stdout) {
		rc = check_image_path(&a, &src);
		if (rc)
			goto out;
		if (asprintf(&tmp, "%s.imago-tmp-XXXXXX", a.image) < 0) {
			tmp = NULL;
			rc = cli_sys_fail(ENOMEM, "cannot build a temporary name", a.image, NULL);
			goto out;
		}
		out_fd = mkostemp(tmp, O_CLOEXEC);
		if (out_fd < 0) {
			rc = cli_sys_fail(errno, "cannot create a temporary file next to IMAGE",
					  tmp, NULL);
			free(tmp);
			tmp = NULL;
			goto out;
		}
	} else {
		struct stat st;
		if (fstat(STDOUT_FILENO, &st) == 0 && device_same(&st, &src.st)) {
			cli_msg("refusing to write the image over its own source %s", a.source);
			rc = EXIT_REFUSED;
			goto out;
		}
	}
	cli_signals_cleanup_path(tmp);

	const char *meta[16 + 2 * 12 * PART_MAX_ENTRIES];
	device_source_metadata(&src, meta);
	if (!a.sector) {
		size_t n = 0;
		while (meta[n])
			n++;
		meta[n - 1] = "smart"; /* the value of "mode", the last pair */
		if (plan_metadata(&plan, meta + n, sizeof(meta) / sizeof(meta[0]) - n,
				  &meta_pool) < 0) {
			rc = cli_sys_fail(ENOMEM, "cannot describe the partition map", a.source, NULL);
			goto out;
		}
	}
	struct progress prog;
	progress_start(&prog, "create", a.progress, a.quiet);
	struct imago_create_opts opts = {
		.source_fd = src.fd,
		.source_size = src.size,
		.logical_sector_size = src.logical_sector_size,
		.physical_sector_size = src.physical_sector_size,
		.out_fd = out_fd,
		.chunk_size = a.chunk_size,
		.level = a.level,
		.threads = a.threads,
		.metadata = meta,
		.alloc = a.sector ? NULL : plan.map.v,
		.alloc_count = a.sector ? 0 : plan.map.n,
		.progress = progress_cb,
		.progress_opaque = &prog,
	};
	struct imago_create_result res;
	struct imago_err err;
	memset(&res, 0, sizeof(res));
	memset(&err, 0, sizeof(err));
	err.file_offset = err.dev_offset = err.chunk = -1;
	int r = imago_create(&opts, &res, &err);
	freeze_thaw_all();
	progress_end(&prog);
	double secs = progress_elapsed(&prog);

	if (r >= 0 && cli_interrupted)
		r = -ECANCELED;
	if (r < 0) {
		if (r == -ECANCELED || cli_interrupted) {
			cli_msg("interrupted: %s", to_stdout ? "the image on stdout is incomplete"
							     : "no image was written");
			rc = EXIT_FAIL;
		} else {
			const char *todo = NULL;
			char buf[256];
			if (!to_stdout) {
				snprintf(buf, sizeof(buf), "%s; no image was written",
					 cli_hint(r));
				todo = buf;
			}
			rc = cli_fail(r, &err, fail_path(r, &a), todo);
			/* A failed create is never "the image is damaged". */
			if (rc == EXIT_DAMAGED)
				rc = EXIT_FAIL;
		}
		goto out;
	}
	if (!to_stdout) {
		rc = finish_file(out_fd, tmp, a.image);
		out_fd = -1;
		if (rc)
			goto out;
		/* Renamed: nothing to clean up any more. */
		cli_signals_cleanup_path(NULL);
		free(tmp);
		tmp = NULL;
	} else if (fsync(STDOUT_FILENO) < 0 && errno != EINVAL && errno != EROFS) {
		/* Pipes and sockets cannot be synced (EINVAL); a redirected file can. */
		rc = cli_sys_fail(errno, "cannot flush the image", "(stdout)", NULL);
		goto out;
	}
	if (!a.quiet)
		print_summary(&a, &res, secs);
	rc = EXIT_OK;
out:
	if (tmp) {
		cli_signals_cleanup_path(NULL);
		unlink(tmp);
		free(tmp);
	}
	if (!to_stdout && out_fd >= 0)
		close(out_fd);
	freeze_thaw_all();
	free(meta_pool);
	smart_plan_free(&plan);
	device_close_source(&src);
	return rc;
}
