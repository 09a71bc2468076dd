/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * imago verify IMAGE [--against SOURCE]: read the whole image and check everything;
 * with --against, also compare its content with SOURCE. Exit 3 names the first damaged
 * chunk; exit 4 means a sound image of different content.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "device.h"
#include "forensic.h"
#include "progress.h"

void cmd_verify_help(FILE *f)
{
	fprintf(f, "Usage: imago verify [OPTIONS] IMAGE [--against SOURCE]\n\n"
		   "Read the whole image (- for stdin) and check every structure, every chunk's\n"
		   "checksum, the index and the content digest. With --against, also compare\n"
		   "the image's content with SOURCE byte for byte.\n\n"
		   "      --against SOURCE  compare with this file or block device\n"
		   "  -T, --threads N       threads (default: all online CPUs)\n"
		   "      --json            print the result as one JSON object on stdout\n"
		   "  -q, --quiet           no progress and no result line\n"
		   "      --progress=MODE   auto, tty, json or none (default auto)\n"
		   "  -h, --help            this help\n\n"
		   "Exit status: 0 sound, 3 damaged or incomplete, 4 differs from SOURCE.\n");
}

struct verify_args {
	unsigned threads;
	bool quiet, json;
	enum progress_mode progress;
	const char *image, *against;
};

static int parse_args(int argc, char **argv, struct verify_args *a)
{
	enum { OPT_AGAINST = 256, OPT_JSON };
	static const struct option longopts[] = {
		{"against", required_argument, NULL, OPT_AGAINST},
		{"threads", required_argument, NULL, 'T'},
		{"json", no_argument, NULL, OPT_JSON},
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
	while ((c = getopt_long(argc, argv, ":T:qh", longopts, NULL)) != -1) {
		int taken = cli_work_option(c, optarg, &a->threads, &a->progress);
		if (taken > 0)
			return taken;
		if (taken == 0)
			continue;
		switch (c) {
		case OPT_AGAINST: a->against = optarg; break;
		case OPT_JSON: a->json = true; break;
		case 'q': a->quiet = true; break;
		case 'h': cmd_verify_help(stdout); return -1;
		default: return cli_getopt_error(c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(argc - optind < 1 ? "IMAGE is needed" : "too many arguments");
	a->image = argv[optind];
	return 0;
}

static const char *result_word(int r)
{
	switch (r) {
	case 0: return "ok";
	case -EBADMSG:
	case -ENOTSUP: return "damaged";
	case -EILSEQ: return "differs";
	default: return "failed";
	}
}

static void json_i64_or_null(const char *key, int64_t v)
{
	if (v >= 0)
		printf(",\"%s\":%" PRId64, key, v);
	else
		printf(",\"%s\":null", key);
}

static void print_json(const struct verify_args *a, int r, const struct imago_verify_result *res,
		       const struct imago_err *err)
{
	char hex[2 * IMAGO_DIGEST_LEN + 1];
	cli_hex(res->digest, IMAGO_DIGEST_LEN, hex);
	printf("{\"image\":");
	cli_json_str(stdout, a->image);
	printf(",\"against\":");
	if (a->against)
		cli_json_str(stdout, a->against);
	else
		printf("null");
	printf(",\"result\":\"%s\",\"exit_code\":%d", result_word(r), cli_exit_code(r));
	printf(",\"device_size\":%" PRIu64 ",\"chunks_checked\":%" PRIu64, res->device_size,
	       res->chunks_checked);
	if (r == 0)
		printf(",\"digest\":\"%s\",\"error\":null}\n", hex);
	else {
		printf(",\"digest\":null,\"error\":{\"errno\":%d,\"message\":", -r);
		cli_json_str(stdout, err->msg[0] ? err->msg : strerror(-r));
		json_i64_or_null("chunk", err->chunk);
		json_i64_or_null("device_offset", err->dev_offset);
		json_i64_or_null("file_offset", err->file_offset);
		printf("}}\n");
	}
	fflush(stdout);
}

int cmd_verify(int argc, char **argv)
{
	struct verify_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;

	bool from_stdin = strcmp(a.image, "-") == 0;
	/* An E01 is checked through libewf: chunk checksums and its stored digests. */
	if (!from_stdin && fx_is_ewf(a.image))
		return fx_verify_evidence(a.image, a.quiet, a.json, a.against);
	const char *img_name;
	int img_fd;
	if ((rc = cli_open_image(a.image, &img_fd, &img_name)) != 0)
		return rc;
	struct cli_source src = {.fd = -1};
	if (a.against) {
		rc = device_open_source(a.against, &src);
		if (rc)
			goto out;
	}
	cli_signals_install();

	struct progress prog;
	progress_start(&prog, "verify", a.progress, a.quiet);
	struct imago_verify_opts opts = {
		.image_fd = img_fd,
		.image_name = img_name,
		.against_fd = src.fd,
		.against_size = src.size,
		.threads = a.threads,
		.progress = progress_cb,
		.progress_opaque = &prog,
	};
	struct imago_verify_result res;
	struct imago_err err;
	struct imago_hashes hashes;
	memset(&hashes, 0, sizeof(hashes));
	memset(&res, 0, sizeof(res));
	memset(&err, 0, sizeof(err));
	err.file_offset = err.dev_offset = err.chunk = -1;
	int r = imago_verify(&opts, &res, &err);
	progress_end(&prog);
	if (r > 0)
		r = 0;
	if (r == 0 && cli_interrupted)
		r = -ECANCELED;

	/* A sound image of an acquisition: also its stored MD5/SHA-1/SHA-256. */
	int hash_rc = 0;
	if (r == 0 && !from_stdin &&
	    (hash_rc = fx_verify_image_hashes(a.image, a.quiet || a.json, &hashes)) != 0 && a.json) {
		err.code = -EBADMSG;
		snprintf(err.msg, sizeof(err.msg), "%s: the stored digests do not match the content",
			 a.image);
		print_json(&a, -EBADMSG, &res, &err);
	} else if (a.json) {
		print_json(&a, r, &res, &err);
	}
	if (r == -ECANCELED) {
		cli_msg("interrupted: %s was not fully checked", img_name);
		rc = EXIT_FAIL;
	} else if (r == -EILSEQ) {
		char todo[512];
		snprintf(todo, sizeof(todo), "the image is sound but is not a copy of %s",
			 a.against);
		rc = cli_fail(r, &err, img_name, todo);
	} else if (r < 0) {
		/* A failure that is not the image's damage and has no place in the image is
		 * the source's (reading it for --against). */
		bool source_side = a.against && r != -EBADMSG && r != -ENOTSUP &&
				   (err.file_offset < 0 || strstr(err.msg, "source"));
		rc = cli_fail(r, &err, source_side ? a.against : img_name, NULL);
	} else if (hash_rc) {
		rc = hash_rc; /* the stored MD5/SHA-1/SHA-256 do not match (said above) */
	} else {
		if (!a.json && !a.quiet) {
			char dev[32], hex[2 * IMAGO_DIGEST_LEN + 1];
			cli_fmt_bytes(res.device_size, dev, sizeof(dev));
			cli_hex(res.digest, IMAGO_DIGEST_LEN, hex);
			printf("%s: OK: %" PRIu64 " chunks checked, device %s, digest %s%s%s\n",
			       img_name, res.chunks_checked, dev, hex,
			       a.against ? ", identical to " : "", a.against ? a.against : "");
			fx_log_hashes(stdout, &hashes, "  ");
		}
		rc = EXIT_OK;
	}
out:
	device_close_source(&src);
	if (!from_stdin)
		close(img_fd);
	return rc;
}
