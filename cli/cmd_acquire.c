// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * imago acquire SOURCE IMAGE: a forensic acquisition. Every sector is kept (sector mode),
 * the source is opened read-only and only read, MD5, SHA-1 and SHA-256 of the exact bytes
 * read are computed in the same pass (each on its own thread, fed by the reader), and
 * the image's metadata holds the digests, the case fields, what imago knows about the
 * source and every unreadable range. IMAGE.log, beside the image, says the same in plain
 * text. Like create, the image is written under a temporary name and renamed when
 * complete.
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
#include "forensic.h"
#include "progress.h"

void cmd_acquire_help(FILE *f)
{
	fprintf(f,
		"Usage: imago acquire [OPTIONS] SOURCE IMAGE\n\n"
		"Acquire SOURCE (a disk, partition or file) as evidence: every sector, read-only,\n"
		"with MD5, SHA-1 and SHA-256 of the bytes read computed in the same pass and\n"
		"stored in IMAGE with the case metadata. IMAGE.log gets the acquisition log.\n"
		"Unreadable sectors are retried, then recorded (zeros in the image and in the\n"
		"digests, BAD in its extent map, listed in the log); the exit status is then 6.\n\n"
		"  -C, --case TEXT         case number\n"
		"  -E, --evidence TEXT     evidence number\n"
		"  -e, --examiner TEXT     examiner name\n"
		"  -D, --description TEXT  description of the evidence\n"
		"  -N, --notes TEXT        notes\n"
		"      --prompt            ask on the terminal for the case fields not given\n"
		"  -a, --hash LIST         digests: md5,sha1,sha256 (default all three)\n"
		"      --retries N         extra reads of a failed chunk and of each failed\n"
		"                          sector (default 2)\n"
		"      --log FILE          the acquisition log (default IMAGE.log)\n"
		"  -l, --level N           zstd level 1-19 (default %d)\n"
		"      --chunk-size SIZE   64K ... 16M, a power of two (default 1M)\n"
		"  -T, --threads N         compression threads (default: all online CPUs)\n"
		"  -f, --force             overwrite an existing IMAGE and log\n"
		"  -q, --quiet             no progress and no summary\n"
		"      --progress=MODE     auto, tty, json or none (default auto)\n"
		"  -h, --help              this help\n\n"
		"Exit status: 0 acquired, 6 acquired with unreadable sectors, 1 failed,\n"
		"5 refused (IMAGE or its log exists).\n",
		IMAGO_LEVEL_DEFAULT);
}

enum { EXIT_BAD_SECTORS = 6 };

struct acq_args {
	int level;
	uint32_t chunk_size;
	unsigned threads, algs, retries;
	bool force, quiet, prompt;
	enum progress_mode progress;
	const char *source, *image, *log;
	const char *fields[5]; /* case, evidence, examiner, description, notes */
};

static const char *const field_key[5] = { "case.number", "case.evidence", "case.examiner",
					  "case.description", "case.notes" };
static const char *const field_label[5] = { "Case number", "Evidence number", "Examiner",
					    "Description", "Notes" };

static int parse_args(int argc, char **argv, struct acq_args *a)
{
	enum { OPT_CHUNK = 256, OPT_PROMPT, OPT_RETRIES, OPT_LOG };
	static const struct option longopts[] = {
		{"case", required_argument, NULL, 'C'},
		{"evidence", required_argument, NULL, 'E'},
		{"examiner", required_argument, NULL, 'e'},
		{"description", required_argument, NULL, 'D'},
		{"notes", required_argument, NULL, 'N'},
		{"prompt", no_argument, NULL, OPT_PROMPT},
		{"hash", required_argument, NULL, 'a'},
		{"retries", required_argument, NULL, OPT_RETRIES},
		{"log", required_argument, NULL, OPT_LOG},
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
	a->algs = IMAGO_HASH_ALL;
	a->retries = 2;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":C:E:e:D:N:a:l:T:fqh", longopts, NULL)) != -1) {
		unsigned u;
		uint64_t sz;
		int taken = cli_work_option(c, optarg, &a->threads, &a->progress);
		if (taken > 0)
			return taken;
		if (taken == 0)
			continue;
		switch (c) {
		case 'C': a->fields[0] = optarg; break;
		case 'E': a->fields[1] = optarg; break;
		case 'e': a->fields[2] = optarg; break;
		case 'D': a->fields[3] = optarg; break;
		case 'N': a->fields[4] = optarg; break;
		case OPT_PROMPT: a->prompt = true; break;
		case 'a':
			if (fx_parse_algs(optarg, &a->algs) < 0)
				return cli_usage_error("--hash '%s': give md5, sha1, sha256 (comma-"
						       "separated) or all", optarg);
			break;
		case OPT_RETRIES:
			if (cli_parse_uint(optarg, 0, 100, &u) < 0)
				return cli_usage_error("--retries '%s': give 0 to 100", optarg);
			a->retries = u;
			break;
		case OPT_LOG: a->log = optarg; break;
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
						       "64K to 16M", optarg);
			a->chunk_size = (uint32_t)sz;
			break;
		case 'f': a->force = true; break;
		case 'q': a->quiet = true; break;
		case 'h': cmd_acquire_help(stdout); return -1;
		default: return cli_getopt_error(c, argv);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(argc - optind < 2 ? "SOURCE and IMAGE are needed"
							 : "too many arguments");
	a->source = argv[optind];
	a->image = argv[optind + 1];
	if (!a->image[0] || strcmp(a->image, "-") == 0)
		return cli_usage_error("IMAGE must be a file name (an acquisition keeps its log "
				       "beside the image)");
	return 0;
}

static int check_image_path(const struct acq_args *a, const struct cli_source *src)
{
	struct stat st;
	if (stat(a->image, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return cli_sys_fail(errno, "cannot check IMAGE", a->image, NULL);
	}
	if (device_same(&st, &src->st)) {
		cli_msg("refusing to write the image over its own source %s", a->image);
		return EXIT_REFUSED;
	}
	if (!S_ISREG(st.st_mode)) {
		cli_msg("refusing to replace %s: it is not a regular file", a->image);
		return EXIT_REFUSED;
	}
	if (!a->force) {
		cli_msg("%s exists: refusing to overwrite it: use --force, or choose another name",
			a->image);
		return EXIT_REFUSED;
	}
	return 0;
}

static int finish_file(int fd, const char *tmp, const char *image)
{
	if (fsync(fd) < 0) {
		int e = errno;
		close(fd);
		return cli_sys_fail(e, "cannot flush the image to disk", tmp, NULL);
	}
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	if (close(fd) < 0)
		return cli_sys_fail(errno, "cannot close the image", tmp, NULL);
	if (rename(tmp, image) < 0)
		return cli_sys_fail(errno, "cannot rename the finished image", image, NULL);
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", image);
	int d = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d >= 0) {
		fsync(d);
		close(d);
	}
	return 0;
}

/* Unreadable ranges as they are found (reader thread): kept for the log. */
struct bad_list {
	uint64_t (*v)[2];
	size_t n, cap;
	bool oom;
};

static void on_bad(void *opaque, uint64_t off, uint64_t len, int error)
{
	struct bad_list *b = opaque;
	if (b->n && b->v[b->n - 1][0] + b->v[b->n - 1][1] == off) {
		b->v[b->n - 1][1] += len;
		return;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 64;
		void *v = realloc(b->v, cap * sizeof(*b->v));
		if (!v) {
			b->oom = true;
			return;
		}
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n][0] = off;
	b->v[b->n][1] = len;
	b->n++;
}

struct acq_facts {
	char start[32], end[32], host[256];
	char *cmdline;
	int blkro;
};

static void write_log(FILE *f, const struct acq_args *a, const struct cli_source *src,
		      const struct acq_facts *x, const struct imago_create_result *res,
		      const struct imago_hashes *hs, const struct bad_list *bad, double secs)
{
	fprintf(f, "imago acquisition log\n\n");
	fprintf(f, "Tool:                imago %s\n", IMAGO_VERSION_STRING);
	fprintf(f, "Command line:        %s\n", x->cmdline ? x->cmdline : "");
	fprintf(f, "Host:                %s\n", x->host);
	fprintf(f, "Started (UTC):       %s\n", x->start);
	fprintf(f, "Finished (UTC):      %s\n", x->end);
	fprintf(f, "Duration:            %.1f s\n\n", secs);
	for (int i = 0; i < 5; i++) {
		char label[32];
		snprintf(label, sizeof(label), "%s:", field_label[i]);
		fprintf(f, "%-21s%s\n", label, a->fields[i] ? a->fields[i] : "");
	}
	fprintf(f, "\nSource:              %s\n", a->source);
	fprintf(f, "Kind:                %s, opened read-only (O_RDONLY), never written\n",
		src->is_block ? "block device" : "regular file");
	if (src->is_block)
		fprintf(f, "Kernel read-only:    %s\n",
			x->blkro == 1 ? "yes (BLKROGET)" : x->blkro == 0 ? "no (BLKROGET)" : "unknown");
	if (src->model[0])
		fprintf(f, "Model:               %s\n", src->model);
	if (src->serial[0])
		fprintf(f, "Serial:              %s\n", src->serial);
	fprintf(f, "Size:                %" PRIu64 " bytes (%" PRIu64 " sectors of %u bytes)\n",
		src->size, src->size / src->logical_sector_size, src->logical_sector_size);
	fprintf(f, "Sector size:         logical %u, physical %u\n\n", src->logical_sector_size,
		src->physical_sector_size);
	fprintf(f, "Image:               %s\n", a->image);
	fprintf(f, "Image size:          %" PRIu64 " bytes (zstd level %d, chunk %u bytes)\n",
		res->image_bytes, a->level, a->chunk_size);
	char hex[2 * IMAGO_DIGEST_LEN + 1];
	cli_hex(res->digest, IMAGO_DIGEST_LEN, hex);
	fprintf(f, "Content digest:      %s (imago SHA-256 tree)\n\n", hex);
	fprintf(f, "Read errors:         %zu range(s), %" PRIu64 " byte(s)%s\n", bad->n,
		res->bad_bytes, bad->n ? ": zeros in the image and in the digests" : "");
	for (size_t i = 0; i < bad->n; i++) {
		uint64_t o = bad->v[i][0], l = bad->v[i][1];
		uint32_t ss = src->logical_sector_size;
		fprintf(f, "  bytes %" PRIu64 "-%" PRIu64 " (%" PRIu64 " bytes; sectors %" PRIu64
			   "-%" PRIu64 "): Input/output error\n",
			o, o + l - 1, l, o / ss, (o + l - 1) / ss);
	}
	if (bad->oom)
		fprintf(f, "  (more ranges: out of memory listing them; the image's extent map has "
			   "them all)\n");
	fprintf(f, "\nDigests of the %" PRIu64 " bytes read:\n", hs->bytes);
	fx_log_hashes(f, hs, "  ");
	fprintf(f, "\nResult:              %s\n",
		bad->n ? "acquired, with unreadable sectors" : "acquired, every sector read");
}

int cmd_acquire(int argc, char **argv)
{
	struct acq_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;

	char *log_path = NULL;
	if (a.log)
		log_path = strdup(a.log);
	else if (asprintf(&log_path, "%s.log", a.image) < 0)
		log_path = NULL;
	if (!log_path)
		return cli_sys_fail(ENOMEM, "out of memory", a.image, NULL);

	char fieldbuf[5][512];
	if (a.prompt)
		for (int i = 0; i < 5; i++)
			if (!a.fields[i]) {
				fx_prompt(field_label[i], fieldbuf[i], sizeof(fieldbuf[i]));
				a.fields[i] = fieldbuf[i];
			}

	cli_signals_install();
	struct cli_source src;
	rc = device_open_source(a.source, &src);
	if (rc) {
		free(log_path);
		return rc;
	}
	struct acq_facts x = { .blkro = src.is_block ? fx_blkro(src.fd) : -1 };
	x.cmdline = fx_command_line();
	if (gethostname(x.host, sizeof(x.host) - 1) < 0)
		snprintf(x.host, sizeof(x.host), "unknown");
	int out_fd = -1;
	char *tmp = NULL;
	imago_mhash *hash = NULL;
	struct bad_list bad = { 0 };
	FILE *logf = NULL;
	if ((rc = check_image_path(&a, &src)) != 0 || (rc = fx_log_check(log_path, a.force)) != 0)
		goto out;
	if (asprintf(&tmp, "%s.imago-tmp-XXXXXX", a.image) < 0) {
		tmp = NULL;
		rc = cli_sys_fail(ENOMEM, "cannot build a temporary name", a.image, NULL);
		goto out;
	}
	if ((out_fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		rc = cli_sys_fail(errno, "cannot create a temporary file next to IMAGE", tmp, NULL);
		free(tmp);
		tmp = NULL;
		goto out;
	}
	cli_signals_cleanup_path(tmp);
	int r = imago_mhash_new(a.algs, &hash);
	if (r < 0) {
		rc = cli_sys_fail(-r, "cannot start the digests", a.source, NULL);
		goto out;
	}

	fx_utc_now(x.start);
	char size_s[24], lss[16], pss[16];
	snprintf(size_s, sizeof(size_s), "%" PRIu64, src.size);
	snprintf(lss, sizeof(lss), "%u", src.logical_sector_size);
	snprintf(pss, sizeof(pss), "%u", src.physical_sector_size);
	const char *meta[64];
	device_source_metadata(&src, meta);
	size_t n = 0;
	while (meta[n])
		n++;
	meta[n++] = "source.size";
	meta[n++] = size_s;
	meta[n++] = "source.logical_sector_size";
	meta[n++] = lss;
	meta[n++] = "source.physical_sector_size";
	meta[n++] = pss;
	if (src.is_block && x.blkro >= 0) {
		meta[n++] = "source.readonly";
		meta[n++] = x.blkro ? "yes" : "no";
	}
	for (int i = 0; i < 5; i++)
		if (a.fields[i] && a.fields[i][0]) {
			meta[n++] = field_key[i];
			meta[n++] = a.fields[i];
		}
	meta[n++] = "acquire.start";
	meta[n++] = x.start;
	meta[n++] = "acquire.host";
	meta[n++] = x.host;
	meta[n++] = "acquire.command";
	meta[n++] = x.cmdline ? x.cmdline : "imago acquire";
	meta[n] = NULL;

	struct progress prog;
	progress_start(&prog, "acquire", a.progress, a.quiet);
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
		.progress = progress_cb,
		.progress_opaque = &prog,
		.hash = hash,
		.keep_going = 1,
		.read_retries = a.retries,
		.on_bad = on_bad,
		.on_bad_opaque = &bad,
	};
	struct imago_create_result res;
	struct imago_err err;
	memset(&res, 0, sizeof(res));
	memset(&err, 0, sizeof(err));
	err.file_offset = err.dev_offset = err.chunk = -1;
	r = imago_create(&opts, &res, &err);
	progress_end(&prog);
	double secs = progress_elapsed(&prog);
	fx_utc_now(x.end);
	if (r >= 0 && cli_interrupted)
		r = -ECANCELED;
	if (r < 0) {
		if (r == -ECANCELED) {
			cli_msg("interrupted: no image was written");
			rc = EXIT_FAIL;
		} else {
			rc = cli_fail(r, &err, r == -ENOSPC ? a.image : a.source, "no image was written");
			if (rc == EXIT_DAMAGED)
				rc = EXIT_FAIL;
		}
		goto out;
	}
	rc = finish_file(out_fd, tmp, a.image);
	out_fd = -1;
	if (rc)
		goto out;
	cli_signals_cleanup_path(NULL);
	free(tmp);
	tmp = NULL;

	struct imago_hashes hs;
	imago_mhash_final(hash, &hs);
	if (!(logf = fx_log_create(log_path, a.force, &rc)))
		goto out;
	write_log(logf, &a, &src, &x, &res, &hs, &bad, secs);
	if (fflush(logf) != 0 || fsync(fileno(logf)) < 0) {
		rc = cli_sys_fail(errno, "cannot write the log", log_path, NULL);
		goto out;
	}
	if (!a.quiet) {
		char dev[32], img[32];
		cli_fmt_bytes(res.device_size, dev, sizeof(dev));
		cli_fmt_bytes(res.image_bytes, img, sizeof(img));
		printf("acquired %s: %s into %s (%s), %.1f s, log %s\n", a.source, dev, a.image, img,
		       secs, log_path);
		fx_log_hashes(stdout, &hs, "  ");
	}
	for (size_t i = 0; i < bad.n; i++)
		cli_msg("unreadable: bytes %" PRIu64 "-%" PRIu64 " (%" PRIu64 " bytes) of %s: zeros in "
			"the image and the digests", bad.v[i][0], bad.v[i][0] + bad.v[i][1] - 1,
			bad.v[i][1], a.source);
	rc = res.bad_bytes ? EXIT_BAD_SECTORS : EXIT_OK;
out:
	if (logf)
		fclose(logf);
	if (tmp) {
		cli_signals_cleanup_path(NULL);
		unlink(tmp);
		free(tmp);
	}
	if (out_fd >= 0)
		close(out_fd);
	imago_mhash_free(hash);
	free(bad.v);
	free(x.cmdline);
	free(log_path);
	device_close_source(&src);
	return rc;
}
