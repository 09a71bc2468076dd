// SPDX-License-Identifier: GPL-3.0-or-later
/* imago hash [-a LIST | --md5 --sha1 --sha256] SOURCE...: digests of files or devices,
 * several algorithms in one read pass, printed like md5sum (one algorithm) or like
 * `md5sum --tag` (several: "MD5 (SOURCE) = HEX"), which the coreutils check with -c. */
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "commands.h"
#include "common.h"
#include "device.h"
#include "forensic.h"
#include "progress.h"

void cmd_hash_help(FILE *f)
{
	fprintf(f, "Usage: imago hash [OPTIONS] SOURCE...\n\n"
		   "Hash each SOURCE (a file or block device, opened read-only) with one or more\n"
		   "algorithms in a single read pass, one thread per algorithm.\n"
		   "One algorithm prints md5sum-style lines (HEX  SOURCE); several print tagged\n"
		   "lines (MD5 (SOURCE) = HEX), as md5sum --tag does.\n\n"
		   "      --md5             MD5\n"
		   "      --sha1            SHA-1\n"
		   "      --sha256          SHA-256\n"
		   "  -a, --algorithms LIST md5,sha1,sha256 or all (default: all three)\n"
		   "  -q, --quiet           no progress\n"
		   "      --progress=MODE   auto, tty, json or none (default auto)\n"
		   "  -h, --help            this help\n");
}

int cmd_hash(int argc, char **argv)
{
	enum { OPT_MD5 = 256, OPT_SHA1, OPT_SHA256 };
	static const struct option longopts[] = {
		{"md5", no_argument, NULL, OPT_MD5},
		{"sha1", no_argument, NULL, OPT_SHA1},
		{"sha256", no_argument, NULL, OPT_SHA256},
		{"algorithms", required_argument, NULL, 'a'},
		{"quiet", no_argument, NULL, 'q'},
		{"progress", required_argument, NULL, CLI_OPT_PROGRESS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	unsigned algs = 0, threads = 0;
	bool quiet = false;
	enum progress_mode pm = PROGRESS_AUTO;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":a:qh", longopts, NULL)) != -1) {
		unsigned more;
		int taken = cli_work_option(c, optarg, &threads, &pm);
		if (taken > 0)
			return taken;
		if (taken == 0)
			continue;
		switch (c) {
		case OPT_MD5: algs |= IMAGO_HASH_MD5; break;
		case OPT_SHA1: algs |= IMAGO_HASH_SHA1; break;
		case OPT_SHA256: algs |= IMAGO_HASH_SHA256; break;
		case 'a':
			if (fx_parse_algs(optarg, &more) < 0)
				return cli_usage_error("-a '%s': give md5, sha1, sha256 (comma-separated) "
						       "or all", optarg);
			algs |= more;
			break;
		case 'q': quiet = true; break;
		case 'h': cmd_hash_help(stdout); return EXIT_OK;
		default: return cli_getopt_error(c, argv);
		}
	}
	if (optind >= argc)
		return cli_usage_error("SOURCE is needed");
	if (!algs)
		algs = IMAGO_HASH_ALL;
	cli_signals_install();
	int rc = EXIT_OK;
	for (int i = optind; i < argc; i++) {
		struct cli_source src;
		int r = device_open_source(argv[i], &src);
		if (r) {
			rc = r;
			continue;
		}
		struct progress prog;
		progress_start(&prog, "hash", pm, quiet);
		struct imago_hashes hs;
		struct imago_err err;
		memset(&err, 0, sizeof(err));
		r = imago_hash_fd(src.fd, src.size, algs, &hs, progress_cb, &prog, &err);
		progress_end(&prog);
		device_close_source(&src);
		if (r < 0) {
			if (r == -ECANCELED) {
				cli_msg("interrupted");
				return EXIT_FAIL;
			}
			rc = cli_fail(r, &err, argv[i], NULL);
			continue;
		}
		static const unsigned bits[3] = { IMAGO_HASH_MD5, IMAGO_HASH_SHA1, IMAGO_HASH_SHA256 };
		static const char *tags[3] = { "MD5", "SHA1", "SHA256" };
		bool one = (algs & (algs - 1)) == 0;
		for (int k = 0; k < 3; k++) {
			const char *h = imago_hashes_get(&hs, bits[k]);
			if (!h)
				continue;
			if (one)
				printf("%s  %s\n", h, argv[i]);
			else
				printf("%s (%s) = %s\n", tags[k], argv[i], h);
		}
		fflush(stdout);
	}
	return rc;
}
