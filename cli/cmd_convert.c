// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * imago convert INPUT OUTPUT: evidence from one container to another. INPUT is an imago
 * image, an E01 or a raw file/device; OUTPUT is an imago image, an E01 (libewf, EnCase 6
 * format) or raw, whole or split into pieces. The content is hashed (MD5, SHA-1,
 * SHA-256) on the way and checked against the digests INPUT stores; OUTPUT.log records
 * both. Unreadable ranges recorded in INPUT stay zeros and are carried over (E01
 * acquiry errors, the log, the metadata).
 *
 * Split raw pieces follow FTK Imager's convention: OUTPUT.001, OUTPUT.002, ... (three
 * digits, more past 999), which The Sleuth Kit, Autopsy, X-Ways and ewfacquire take as
 * one split raw image; `cat OUTPUT.[0-9]*` gives the whole device.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "forensic.h"
#include "progress.h"
#include "util/xio.h"

void cmd_convert_help(FILE *f)
{
	fprintf(f,
		"Usage: imago convert [OPTIONS] INPUT OUTPUT\n\n"
		"Convert evidence between containers: INPUT is an imago image, an E01 (all its\n"
		"segments are found from NAME.E01) or a raw file or device; OUTPUT is an imago\n"
		"image, an E01 or a raw image. MD5, SHA-1 and SHA-256 of the content are computed\n"
		"on the way and checked against the digests INPUT stores (exit 3 when they\n"
		"differ). OUTPUT.log records the digests.\n\n"
		"      --format FMT      imago, e01 or raw (default: from OUTPUT's name: .E01\n"
		"                        is e01; .raw .dd .img .bin are raw; anything else imago)\n"
		"      --split SIZE      raw: pieces of SIZE bytes named OUTPUT.001, OUTPUT.002,\n"
		"                        ... (FTK Imager's convention)\n"
		"      --segment-size SIZE  e01: segment files of at most SIZE (default 1.4 GiB)\n"
		"      --e01-compression none|fast|best  (default fast)\n"
		"  -l, --level N         imago: zstd level 1-19 (default %d)\n"
		"  -T, --threads N       imago: compression threads\n"
		"  -f, --force           overwrite existing outputs and log\n"
		"  -q, --quiet           no progress and no summary\n"
		"      --progress=MODE   auto, tty, json or none (default auto)\n"
		"  -h, --help            this help\n",
		IMAGO_LEVEL_DEFAULT);
}

enum out_format { OUT_IMAGO, OUT_E01, OUT_RAW };

struct conv_args {
	enum out_format fmt;
	bool fmt_given, force, quiet;
	uint64_t split, segment;
	int ewf_level, level;
	unsigned threads;
	enum progress_mode progress;
	const char *in, *out;
};

static bool ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && strcasecmp(s + a - b, suf) == 0;
}

static int parse_args(int argc, char **argv, struct conv_args *a)
{
	enum { OPT_FORMAT = 256, OPT_SPLIT, OPT_SEGMENT, OPT_EWFC };
	static const struct option longopts[] = {
		{"format", required_argument, NULL, OPT_FORMAT},
		{"split", required_argument, NULL, OPT_SPLIT},
		{"segment-size", required_argument, NULL, OPT_SEGMENT},
		{"e01-compression", required_argument, NULL, OPT_EWFC},
		{"level", required_argument, NULL, 'l'},
		{"threads", required_argument, NULL, 'T'},
		{"force", no_argument, NULL, 'f'},
		{"quiet", no_argument, NULL, 'q'},
		{"progress", required_argument, NULL, CLI_OPT_PROGRESS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	memset(a, 0, sizeof(*a));
	a->level = IMAGO_LEVEL_DEFAULT;
	a->ewf_level = 1;
	a->threads = cli_online_cpus();
	a->progress = PROGRESS_AUTO;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":l:T:fqh", longopts, NULL)) != -1) {
		unsigned u;
		int taken = cli_work_option(c, optarg, &a->threads, &a->progress);
		if (taken > 0)
			return taken;
		if (taken == 0)
			continue;
		switch (c) {
		case OPT_FORMAT:
			a->fmt_given = true;
			if (!strcmp(optarg, "imago"))
				a->fmt = OUT_IMAGO;
			else if (!strcasecmp(optarg, "e01") || !strcmp(optarg, "ewf"))
				a->fmt = OUT_E01;
			else if (!strcmp(optarg, "raw") || !strcmp(optarg, "dd"))
				a->fmt = OUT_RAW;
			else
				return cli_usage_error("--format '%s': give imago, e01 or raw", optarg);
			break;
		case OPT_SPLIT:
			if (cli_parse_size(optarg, &a->split) < 0 || a->split < 512)
				return cli_usage_error("--split '%s': give a size of at least 512 bytes",
						       optarg);
			break;
		case OPT_SEGMENT:
			if (cli_parse_size(optarg, &a->segment) < 0 || a->segment < (1u << 20))
				return cli_usage_error("--segment-size '%s': give at least 1M", optarg);
			break;
		case OPT_EWFC:
			if (!strcmp(optarg, "none"))
				a->ewf_level = 0;
			else if (!strcmp(optarg, "fast"))
				a->ewf_level = 1;
			else if (!strcmp(optarg, "best"))
				a->ewf_level = 2;
			else
				return cli_usage_error("--e01-compression '%s': give none, fast or best",
						       optarg);
			break;
		case 'l':
			if (cli_parse_uint(optarg, 1, 19, &u) < 0)
				return cli_usage_error("--level '%s': give a zstd level from 1 to 19",
						       optarg);
			a->level = (int)u;
			break;
		case 'f': a->force = true; break;
		case 'q': a->quiet = true; break;
		case 'h': cmd_convert_help(stdout); return -1;
		default: return cli_getopt_error(c, argv);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error(argc - optind < 2 ? "INPUT and OUTPUT are needed"
							 : "too many arguments");
	a->in = argv[optind];
	a->out = argv[optind + 1];
	if (!a->out[0] || !strcmp(a->out, "-"))
		return cli_usage_error("OUTPUT must be a file name");
	if (!a->fmt_given) {
		if (ends_with(a->out, ".E01"))
			a->fmt = OUT_E01;
		else if (ends_with(a->out, ".raw") || ends_with(a->out, ".dd") ||
			 ends_with(a->out, ".img") || ends_with(a->out, ".bin") || a->split)
			a->fmt = OUT_RAW;
		else
			a->fmt = OUT_IMAGO;
	}
	if (a->split && a->fmt != OUT_RAW)
		return cli_usage_error("--split is for raw output");
	if (a->fmt == OUT_E01 && !ends_with(a->out, ".E01"))
		return cli_usage_error("an E01 OUTPUT must be named NAME.E01 (its further segments "
				       "are NAME.E02, ...)");
	return 0;
}

static char *piece_name(const char *out, unsigned i)
{
	char *s = NULL;
	if (asprintf(&s, "%s.%03u", out, i) < 0)
		return NULL;
	return s;
}

/* ---------------------------------------------------------------- the imago sink:
 * imago_create reads the content from a pipe on its own thread (sector mode). */
struct imago_sink {
	int pipe_w, pipe_r, out_fd;
	char *tmp;
	pthread_t thread;
	bool started;
	struct imago_create_opts opts;
	struct imago_create_result res;
	struct imago_err err;
	int result;
};

static void *create_main(void *arg)
{
	struct imago_sink *s = arg;
	s->result = imago_create(&s->opts, &s->res, &s->err);
	/* Unblock the writer if create stopped early. */
	close(s->pipe_r);
	s->pipe_r = -1;
	return NULL;
}

struct conv {
	struct conv_args *a;
	imago_evidence *ev;
	uint64_t size;
	/* raw */
	int piece_fd;
	unsigned piece;
	uint64_t piece_left;
	char **pieces;
	unsigned npieces;
	bool keep;         /* the output is complete: do not remove it */
	/* e01 */
	imago_ewf_writer *ewf;
	/* imago */
	struct imago_sink sink;
	struct imago_err err;
};

/* Open the next raw piece (or the single raw file). 0 or an exit code. */
static int raw_open_next(struct conv *c)
{
	char *name = c->a->split ? piece_name(c->a->out, ++c->piece) : strdup(c->a->out);
	char **v = realloc(c->pieces, (c->npieces + 1) * sizeof(*v));
	if (v)
		c->pieces = v;
	if (!name || !v) {
		free(name);
		return cli_sys_fail(ENOMEM, "out of memory", c->a->out, NULL);
	}
	c->piece_fd = open(name, O_WRONLY | O_CREAT | O_CLOEXEC | (c->a->force ? O_TRUNC : O_EXCL),
			   0666);
	if (c->piece_fd < 0) {
		int e = errno, rc;
		if (e == EEXIST) {
			cli_msg("%s exists: refusing to overwrite it: use --force", name);
			rc = EXIT_REFUSED;
		} else {
			rc = cli_sys_fail(e, "cannot create", name, NULL);
		}
		free(name);
		return rc;
	}
	c->pieces[c->npieces++] = name;
	c->piece_left = c->a->split ? c->a->split : UINT64_MAX;
	return 0;
}

static int raw_write(struct conv *c, const uint8_t *p, size_t n)
{
	while (n) {
		int rc;
		if (c->piece_fd < 0 && (rc = raw_open_next(c)) != 0)
			return rc;
		size_t k = n < c->piece_left ? n : (size_t)c->piece_left;
		int r = xwrite_full(c->piece_fd, p, k);
		if (r < 0)
			return cli_sys_fail(-r, "cannot write", c->pieces[c->npieces - 1], NULL);
		p += k;
		n -= k;
		c->piece_left -= k;
		if (c->piece_left == 0) {
			if (fsync(c->piece_fd) < 0 || close(c->piece_fd) < 0) {
				c->piece_fd = -1;
				return cli_sys_fail(errno, "cannot flush", c->pieces[c->npieces - 1], NULL);
			}
			c->piece_fd = -1;
		}
	}
	return 0;
}

static int sink_write(struct conv *c, const uint8_t *p, size_t n)
{
	int r;
	switch (c->a->fmt) {
	case OUT_RAW:
		return raw_write(c, p, n);
	case OUT_E01:
		if ((r = imago_ewf_write(c->ewf, p, n, &c->err)) < 0)
			return cli_fail(r, &c->err, c->a->out, NULL);
		return 0;
	default:
		if ((r = xwrite_full(c->sink.pipe_w, p, n)) < 0)
			return -1; /* create stopped: its own error is reported */
		return 0;
	}
}

static int ewf_bad(void *opaque, uint64_t off, uint64_t len)
{
	struct conv *c = opaque;
	return imago_ewf_add_error(c->ewf, off, len, &c->err) < 0 ? -1 : 0;
}

struct bad_text {
	FILE *f;
	uint64_t n, bytes;
};

static int log_bad(void *opaque, uint64_t off, uint64_t len)
{
	struct bad_text *b = opaque;
	if (b->f)
		fprintf(b->f, "  bytes %" PRIu64 "-%" PRIu64 " (%" PRIu64 " bytes): unreadable at "
			      "acquisition, zeros here\n", off, off + len - 1, len);
	b->n++;
	b->bytes += len;
	return 0;
}

static int meta_bad(void *opaque, uint64_t off, uint64_t len)
{
	char **s = opaque;
	char *t = NULL;
	if (asprintf(&t, "%s%s%" PRIu64 "+%" PRIu64, *s ? *s : "", *s && **s ? "\n" : "", off, len) < 0)
		return -1;
	free(*s);
	*s = t;
	return 0;
}

static bool carried_key(const char *k)
{
	return strcmp(k, "tool") && strcmp(k, "created") && strncmp(k, "hash.", 5) &&
	       strcmp(k, "mode") && strncmp(k, "part.", 5) && strncmp(k, "convert.", 8);
}

static const char *fmt_name(enum out_format f)
{
	return f == OUT_E01 ? "e01" : f == OUT_RAW ? "raw" : "imago";
}

static const char *kind_name(enum imago_evidence_kind k)
{
	return k == IMAGO_EVIDENCE_EWF ? "e01" : k == IMAGO_EVIDENCE_IMAGO ? "imago" : "raw";
}

int cmd_convert(int argc, char **argv)
{
	struct conv_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	struct conv c = { .a = &a, .piece_fd = -1 };
	c.sink.pipe_w = c.sink.pipe_r = c.sink.out_fd = -1;
	memset(&c.err, 0, sizeof(c.err));
	char *log_path = NULL, *bad_meta = NULL;
	const char **meta = NULL;
	FILE *logf = NULL;
	imago_mhash *hash = NULL;
	uint8_t *buf[4] = { 0 };
	bool out_made = false;
	if (asprintf(&log_path, "%s.log", a.out) < 0)
		return cli_sys_fail(ENOMEM, "out of memory", a.out, NULL);
	cli_signals_install();
	int r = imago_evidence_open(a.in, &c.ev, &c.err);
	if (r < 0) {
		rc = cli_fail(r, &c.err, a.in, NULL);
		goto out;
	}
	c.size = imago_evidence_size(c.ev);
	struct stat st;
	if ((rc = fx_log_check(log_path, a.force)) != 0)
		goto out;
	if (a.fmt != OUT_RAW && !a.force && stat(a.out, &st) == 0) {
		cli_msg("%s exists: refusing to overwrite it: use --force, or choose another name", a.out);
		rc = EXIT_REFUSED;
		goto out;
	}
	if (a.fmt == OUT_RAW && a.split && !a.force) {
		char *first = piece_name(a.out, 1);
		bool exists = first && stat(first, &st) == 0;
		if (exists)
			cli_msg("%s exists: refusing to overwrite it: use --force", first);
		free(first);
		if (exists) {
			rc = EXIT_REFUSED;
			goto out;
		}
	}
	struct stat ist;
	if (stat(a.in, &ist) == 0 && stat(a.out, &st) == 0 && ist.st_dev == st.st_dev &&
	    ist.st_ino == st.st_ino) {
		cli_msg("refusing to write %s over its own input", a.out);
		rc = EXIT_REFUSED;
		goto out;
	}

	struct imago_hashes stored, hs;
	imago_evidence_stored_hashes(c.ev, &stored);
	memset(&hs, 0, sizeof(hs));
	if ((r = imago_mhash_new(IMAGO_HASH_ALL, &hash)) < 0) {
		rc = cli_sys_fail(-r, "cannot start the digests", a.in, NULL);
		goto out;
	}
	/* metadata handed on: the input's, less what describes the old container */
	size_t nk = 0;
	const char *k, *v;
	while (imago_evidence_meta_at(c.ev, nk, &k, &v))
		nk++;
	if (!(meta = calloc(2 * nk + 16, sizeof(*meta)))) {
		rc = cli_sys_fail(ENOMEM, "out of memory", a.in, NULL);
		goto out;
	}
	size_t m = 0;
	for (size_t i = 0; imago_evidence_meta_at(c.ev, i, &k, &v); i++)
		if (carried_key(k) && !(strcmp(k, "acquire.read_errors") == 0)) {
			meta[m++] = k;
			meta[m++] = v;
		}
	if (imago_evidence_bad_ranges(c.ev, meta_bad, &bad_meta) < 0) {
		rc = cli_sys_fail(ENOMEM, "out of memory", a.in, NULL);
		goto out;
	}
	if (bad_meta) {
		meta[m++] = "acquire.read_errors";
		meta[m++] = bad_meta;
	}
	meta[m++] = "mode";
	meta[m++] = "sector";
	meta[m++] = "convert.from";
	meta[m++] = a.in;
	meta[m++] = "convert.from_format";
	meta[m++] = kind_name(imago_evidence_kind(c.ev));
	meta[m] = NULL;

	if (a.fmt == OUT_E01) {
		struct imago_ewf_opts eo = { .path = a.out, .size = c.size,
					     .sector_size = imago_evidence_sector_size(c.ev),
					     .level = a.ewf_level, .segment_size = a.segment,
					     .metadata = meta };
		if (eo.sector_size < 512 || c.size % eo.sector_size)
			eo.sector_size = 512;
		if ((r = imago_ewf_create(&eo, &c.ewf, &c.err)) < 0) {
			rc = cli_fail(r, &c.err, a.out, r == -EOPNOTSUPP || r == -EINVAL
				      ? "convert to an imago or raw image instead" : NULL);
			if (rc == EXIT_DAMAGED)
				rc = EXIT_FAIL;
			goto out;
		}
		out_made = true;
		if (imago_evidence_bad_ranges(c.ev, ewf_bad, &c) < 0) {
			rc = cli_fail(c.err.code, &c.err, a.out, NULL);
			goto out;
		}
	} else if (a.fmt == OUT_IMAGO) {
		struct imago_sink *s = &c.sink;
		int p[2];
		if (asprintf(&s->tmp, "%s.imago-tmp-XXXXXX", a.out) < 0) {
			s->tmp = NULL;
			rc = cli_sys_fail(ENOMEM, "out of memory", a.out, NULL);
			goto out;
		}
		if ((s->out_fd = mkostemp(s->tmp, O_CLOEXEC)) < 0) {
			rc = cli_sys_fail(errno, "cannot create a temporary file next to OUTPUT", s->tmp,
					  NULL);
			free(s->tmp);
			s->tmp = NULL;
			goto out;
		}
		cli_signals_cleanup_path(s->tmp);
		if (pipe2(p, O_CLOEXEC) < 0) {
			rc = cli_sys_fail(errno, "cannot make a pipe", a.out, NULL);
			goto out;
		}
		s->pipe_r = p[0];
		s->pipe_w = p[1];
		uint32_t ss = imago_evidence_sector_size(c.ev);
		s->opts = (struct imago_create_opts){
			.source_fd = s->pipe_r, .source_size = c.size, .logical_sector_size = ss,
			.physical_sector_size = ss, .out_fd = s->out_fd, .level = a.level,
			.threads = a.threads, .metadata = meta, .hash = hash,
		};
		memset(&s->err, 0, sizeof(s->err));
		if (pthread_create(&s->thread, NULL, create_main, s) != 0) {
			rc = cli_sys_fail(EAGAIN, "cannot start a thread", a.out, NULL);
			goto out;
		}
		s->started = true;
	}

	/* The copy: the digests run on their own threads over the buffers being written. */
	enum { NB = 4, PIECE = 4 << 20 };
	int64_t t[NB] = { -1, -1, -1, -1 };
	for (int i = 0; i < NB; i++)
		if (!(buf[i] = malloc(PIECE))) {
			rc = cli_sys_fail(ENOMEM, "out of memory", a.in, NULL);
			goto out;
		}
	struct progress prog;
	progress_start(&prog, "convert", a.progress, a.quiet);
	bool own_hash = a.fmt != OUT_IMAGO; /* imago_create feeds the digests itself */
	uint64_t pos = 0;
	rc = 0;
	for (unsigned kx = 0; pos < c.size && !rc; kx = (kx + 1) % NB) {
		if (own_hash && t[kx] >= 0)
			imago_mhash_wait(hash, (uint64_t)t[kx]);
		size_t n = c.size - pos < PIECE ? (size_t)(c.size - pos) : PIECE;
		ssize_t got = imago_evidence_pread(c.ev, buf[kx], n, pos);
		if (got < 0 || (size_t)got != n) {
			progress_end(&prog);
			const struct imago_err *e = imago_evidence_error(c.ev);
			rc = cli_fail(got < 0 ? (int)got : -EBADMSG, e->code ? e : NULL, a.in, NULL);
			break;
		}
		if (own_hash)
			t[kx] = imago_mhash_feed(hash, buf[kx], n);
		if ((rc = sink_write(&c, buf[kx], n)) != 0)
			break;
		pos += n;
		if (progress_cb(&prog, pos, c.size)) {
			progress_end(&prog);
			cli_msg("interrupted: no complete output was written");
			rc = EXIT_FAIL;
		}
	}
	progress_end(&prog);
	if (own_hash)
		imago_mhash_drain(hash);
	if (a.fmt == OUT_IMAGO) {
		struct imago_sink *s = &c.sink;
		close(s->pipe_w);
		s->pipe_w = -1;
		pthread_join(s->thread, NULL);
		s->started = false;
		if (s->result < 0 && (rc == 0 || rc == -1)) {
			rc = cli_fail(s->result, &s->err, a.out, "no image was written");
			if (rc == EXIT_DAMAGED)
				rc = EXIT_FAIL;
		}
	}
	if (rc)
		goto out;
	uint64_t damaged = imago_evidence_damaged(c.ev);
	if (damaged) {
		cli_msg("%s: %" PRIu64 " chunk(s) fail their checksum: the input is damaged", a.in,
			damaged);
		rc = EXIT_DAMAGED;
		goto out;
	}
	imago_mhash_final(hash, &hs);
	unsigned compared = 0;
	if (fx_compare_hashes(a.in, &stored, &hs, &compared, false)) {
		rc = EXIT_DAMAGED;
		goto out;
	}
	/* finish the output */
	if (a.fmt == OUT_E01) {
		r = imago_ewf_finish(c.ewf, &hs, &c.err);
		c.ewf = NULL;
		if (r < 0) {
			rc = cli_fail(r, &c.err, a.out, NULL);
			goto out;
		}
	} else if (a.fmt == OUT_RAW) {
		if (c.piece_fd >= 0) {
			if (fsync(c.piece_fd) < 0 || close(c.piece_fd) < 0) {
				c.piece_fd = -1;
				rc = cli_sys_fail(errno, "cannot flush", a.out, NULL);
				goto out;
			}
			c.piece_fd = -1;
		}
		if (c.size == 0 && c.npieces == 0) {
			/* an empty device is an empty file (or one empty piece) */
			if ((rc = raw_open_next(&c)) != 0)
				goto out;
			close(c.piece_fd);
			c.piece_fd = -1;
		}
	} else {
		struct imago_sink *s = &c.sink;
		mode_t mask = umask(0);
		umask(mask);
		fchmod(s->out_fd, 0666 & ~mask);
		if (fsync(s->out_fd) < 0 || close(s->out_fd) < 0) {
			s->out_fd = -1;
			rc = cli_sys_fail(errno, "cannot flush the image", s->tmp, NULL);
			goto out;
		}
		s->out_fd = -1;
		if (rename(s->tmp, a.out) < 0) {
			rc = cli_sys_fail(errno, "cannot rename the finished image", a.out, NULL);
			goto out;
		}
		cli_signals_cleanup_path(NULL);
		free(s->tmp);
		s->tmp = NULL;
	}
	out_made = false; /* complete: keep it */
	c.keep = true;

	/* the hash log */
	if (!(logf = fx_log_create(log_path, a.force, &rc)))
		goto out;
	char now[32];
	fx_utc_now(now);
	char *cmdline = fx_command_line();
	fprintf(logf, "imago conversion log\n\nTool:          imago %s\nCommand line:  %s\n"
		      "Finished (UTC): %s\n\n", IMAGO_VERSION_STRING, cmdline ? cmdline : "", now);
	free(cmdline);
	fprintf(logf, "Input:         %s (%s)\nOutput:        %s (%s", a.in,
		kind_name(imago_evidence_kind(c.ev)), a.out, fmt_name(a.fmt));
	if (a.split)
		fprintf(logf, ", split into %u piece(s) of %" PRIu64 " bytes: %s.001 ...", c.piece,
			a.split, a.out);
	fprintf(logf, ")\nSize:          %" PRIu64 " bytes, sector size %u\n\n", c.size,
		imago_evidence_sector_size(c.ev));
	for (size_t i = 0; imago_evidence_meta_at(c.ev, i, &k, &v); i++)
		if (!strncmp(k, "case.", 5) || !strncmp(k, "source.", 7) || !strncmp(k, "acquire.", 8))
			fprintf(logf, "%-28s %s\n", k, v);
	struct bad_text bt = { .f = NULL };
	imago_evidence_bad_ranges(c.ev, log_bad, &bt);
	fprintf(logf, "\nUnreadable at acquisition: %" PRIu64 " range(s), %" PRIu64 " byte(s)\n", bt.n,
		bt.bytes);
	bt.f = logf;
	imago_evidence_bad_ranges(c.ev, log_bad, &bt);
	fprintf(logf, "\nDigests of the content (%" PRIu64 " bytes):\n", hs.bytes);
	fx_log_hashes(logf, &hs, "  ");
	fprintf(logf, "Stored in the input: %u digest(s) compared, all match\n", compared);
	if (a.fmt == OUT_E01)
		fprintf(logf, "The E01 stores MD5 and SHA-1 (its format has no SHA-256 with this "
			      "libewf); SHA-256 is recorded here.\n");
	if (a.fmt == OUT_RAW) {
		/* md5sum/sha1sum/sha256sum -c lines for the whole image */
		fprintf(logf, "\n# check with: cat %s%s | md5sum (sha1sum, sha256sum)\n", a.out,
			a.split ? ".[0-9]*" : "");
	}
	if (fflush(logf) != 0 || fsync(fileno(logf)) < 0) {
		rc = cli_sys_fail(errno, "cannot write the log", log_path, NULL);
		goto out;
	}
	if (!a.quiet) {
		char dev[32];
		cli_fmt_bytes(c.size, dev, sizeof(dev));
		printf("converted %s (%s) to %s (%s): %s, %u stored digest(s) match, log %s\n", a.in,
		       kind_name(imago_evidence_kind(c.ev)), a.out, fmt_name(a.fmt), dev, compared,
		       log_path);
		fx_log_hashes(stdout, &hs, "  ");
	}
	rc = EXIT_OK;
out:
	if (rc == -1)
		rc = EXIT_FAIL;
	if (c.sink.started) {
		if (c.sink.pipe_w >= 0)
			close(c.sink.pipe_w);
		c.sink.pipe_w = -1;
		pthread_join(c.sink.thread, NULL);
	}
	if (c.sink.pipe_w >= 0)
		close(c.sink.pipe_w);
	if (c.sink.pipe_r >= 0)
		close(c.sink.pipe_r);
	if (c.sink.out_fd >= 0)
		close(c.sink.out_fd);
	if (c.sink.tmp) {
		cli_signals_cleanup_path(NULL);
		unlink(c.sink.tmp);
		free(c.sink.tmp);
	}
	if (c.ewf)
		imago_ewf_abort(c.ewf);
	if (out_made && a.fmt == OUT_E01)
		unlink(a.out);
	if (c.piece_fd >= 0)
		close(c.piece_fd);
	for (unsigned i = 0; i < c.npieces; i++) {
		if (!c.keep)
			unlink(c.pieces[i]); /* an incomplete raw output is removed */
		free(c.pieces[i]);
	}
	free(c.pieces);
	if (logf)
		fclose(logf);
	for (int i = 0; i < 4; i++)
		free(buf[i]);
	imago_mhash_free(hash);
	free(meta);
	free(bad_meta);
	free(log_path);
	imago_evidence_close(c.ev);
	return rc;
}
