// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * imago rescue SOURCE OUTPUT --map MAPFILE: image a failing disk (lib/rescue), resuming
 * from the map when it exists, with a live status line, and a report of what was lost.
 * OUTPUT is a raw file or device, or (--image) a native image: the rescue then goes to a
 * sparse work file OUTPUT.rescue-raw beside it, and the image is written from it and the
 * map at the end, its unreadable ranges recorded as BAD (and UNTRIED) extents.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "device.h"
#include "rescue/map.h"
#include "rescue/meta.h"
#include "rescue/report.h"
#include "rescue/rescue.h"
#include "smart/plan.h"
#include "util/xio.h"

void cmd_rescue_help(FILE *f)
{
	fprintf(f, "Usage: imago rescue [OPTIONS] SOURCE OUTPUT --map MAPFILE\n\n"
		   "Copy everything readable from a failing SOURCE to OUTPUT (a file or device,\n"
		   "written at the same offsets), in passes like GNU ddrescue's: large reads that\n"
		   "skip past errors, then trimming and scraping the failed areas sector by\n"
		   "sector, then retries. Unreadable areas are never written. MAPFILE (GNU\n"
		   "ddrescue's format) records what was read; an existing one is resumed, and\n"
		   "ddrescue can resume from it.\n\n"
		   "  -m, --map FILE        the mapfile (required)\n"
		   "      --image           OUTPUT is a native imago image; the rescue goes to a\n"
		   "                        work file OUTPUT.rescue-raw, unreadable areas become BAD\n"
		   "  -b, --sector-size N   512 or 4096 (default: the device's, else 512)\n"
		   "  -c, --cluster SIZE    read size of the copying passes (default 1M)\n"
		   "  -d, --direct          read with O_DIRECT (bypass the page cache)\n"
		   "  -r, --retries N       retry passes over bad sectors (default 0)\n"
		   "      --slow SECONDS    a read slower than this skips ahead (default: never)\n"
		   "      --skip-size MIN[,MAX]  skip after an error (default 64K, max 1G or 1%%)\n"
		   "      --max-time SECONDS  stop after this long (the map is saved)\n"
		   "      --max-errors N    stop after N failed reads\n"
		   "      --no-trim         leave failed areas untrimmed\n"
		   "      --no-scrape       leave trimmed failed areas unscraped\n"
		   "      --reopen          reopen SOURCE after each read error (a drive that drops\n"
		   "                        off the bus and comes back)\n"
		   "      --used-first      rescue the filesystems' used areas (table and metadata\n"
		   "                        first), then the rest\n"
		   "      --used-only       rescue only the used areas\n"
		   "      --report FILE     write what was lost (files by path on ext2/3/4, byte\n"
		   "                        ranges by partition otherwise); - for stdout\n"
		   "      --map-interval S  seconds between map saves (default 30)\n"
		   "  -f, --force           write OUTPUT although it exists and MAPFILE does not,\n"
		   "                        or is a block device\n"
		   "  -q, --quiet           no status line and no summary\n"
		   "  -h, --help            this help\n\n"
		   "Exit status: 0 everything read, 6 finished with unreadable or untried areas\n"
		   "(or stopped by --max-time/--max-errors), 1 failure or interrupted, 2 usage.\n");
}

enum used_mode { USED_ALL, USED_FIRST, USED_ONLY };

struct rescue_args {
	const char *source, *output, *map, *report;
	bool image, direct, quiet, force, reopen, no_trim, no_scrape;
	uint32_t sector_size;
	uint64_t cluster, skip_min, skip_max, max_errors;
	unsigned retries;
	double slow, max_time, map_interval;
	enum used_mode used;
};

static int parse_seconds(const char *s, const char *opt, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < 0 || v > 1e9)
		return cli_usage_error("%s: bad number of seconds '%s'", opt, s);
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv, struct rescue_args *a)
{
	enum { OPT_IMAGE = 256, OPT_SLOW, OPT_SKIP, OPT_MAXT, OPT_MAXE, OPT_NOTRIM, OPT_NOSCRAPE,
	       OPT_REOPEN, OPT_USED_FIRST, OPT_USED_ONLY, OPT_REPORT, OPT_INTERVAL };
	static const struct option longopts[] = {
		{"map", required_argument, NULL, 'm'},
		{"image", no_argument, NULL, OPT_IMAGE},
		{"sector-size", required_argument, NULL, 'b'},
		{"cluster", required_argument, NULL, 'c'},
		{"direct", no_argument, NULL, 'd'},
		{"retries", required_argument, NULL, 'r'},
		{"slow", required_argument, NULL, OPT_SLOW},
		{"skip-size", required_argument, NULL, OPT_SKIP},
		{"max-time", required_argument, NULL, OPT_MAXT},
		{"max-errors", required_argument, NULL, OPT_MAXE},
		{"no-trim", no_argument, NULL, OPT_NOTRIM},
		{"no-scrape", no_argument, NULL, OPT_NOSCRAPE},
		{"reopen", no_argument, NULL, OPT_REOPEN},
		{"used-first", no_argument, NULL, OPT_USED_FIRST},
		{"used-only", no_argument, NULL, OPT_USED_ONLY},
		{"report", required_argument, NULL, OPT_REPORT},
		{"map-interval", required_argument, NULL, OPT_INTERVAL},
		{"force", no_argument, NULL, 'f'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	memset(a, 0, sizeof(*a));
	opterr = 0;
	int c, r;
	unsigned u;
	while ((c = getopt_long(argc, argv, ":m:b:c:dr:fqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': a->map = optarg; break;
		case OPT_IMAGE: a->image = true; break;
		case 'b':
			if (cli_parse_uint(optarg, 512, 4096, &u) || (u != 512 && u != 4096))
				return cli_usage_error("--sector-size must be 512 or 4096");
			a->sector_size = u;
			break;
		case 'c':
			if (cli_parse_size(optarg, &a->cluster) || !a->cluster ||
			    a->cluster > 64u * 1024 * 1024)
				return cli_usage_error("--cluster: bad size '%s' (up to 64M)", optarg);
			break;
		case 'd': a->direct = true; break;
		case 'r':
			if (cli_parse_uint(optarg, 0, 1000000, &a->retries))
				return cli_usage_error("--retries: bad count '%s'", optarg);
			break;
		case OPT_SLOW:
			if ((r = parse_seconds(optarg, "--slow", &a->slow)))
				return r;
			break;
		case OPT_SKIP: {
			char *comma = strchr(optarg, ',');
			if (comma)
				*comma = 0;
			if (cli_parse_size(optarg, &a->skip_min) ||
			    (comma && cli_parse_size(comma + 1, &a->skip_max)))
				return cli_usage_error("--skip-size: bad size");
			break;
		}
		case OPT_MAXT:
			if ((r = parse_seconds(optarg, "--max-time", &a->max_time)))
				return r;
			break;
		case OPT_MAXE:
			if (cli_parse_uint(optarg, 1, 4000000000u, &u))
				return cli_usage_error("--max-errors: bad count '%s'", optarg);
			a->max_errors = u;
			break;
		case OPT_NOTRIM: a->no_trim = true; break;
		case OPT_NOSCRAPE: a->no_scrape = true; break;
		case OPT_REOPEN: a->reopen = true; break;
		case OPT_USED_FIRST: a->used = USED_FIRST; break;
		case OPT_USED_ONLY: a->used = USED_ONLY; break;
		case OPT_REPORT: a->report = optarg; break;
		case OPT_INTERVAL:
			if ((r = parse_seconds(optarg, "--map-interval", &a->map_interval)))
				return r;
			break;
		case 'f': a->force = true; break;
		case 'q': a->quiet = true; break;
		case 'h': cmd_rescue_help(stdout); return -1;
		default: return cli_getopt_error(c, argv);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("SOURCE and OUTPUT are needed");
	if (!a->map)
		return cli_usage_error("--map MAPFILE is needed (it makes the rescue resumable)");
	a->source = argv[optind];
	a->output = argv[optind + 1];
	if (a->cluster && a->sector_size && a->cluster % a->sector_size)
		return cli_usage_error("--cluster must be a multiple of the sector size");
	return 0;
}

/* ---------------------------------------------------------------- status line */

struct status_ctx {
	bool tty;
	bool shown;
	const char *what;   /* "used areas" etc., or NULL */
};

static const char *phase_name(char p)
{
	switch (p) {
	case RP_COPYING: return "copying";
	case RP_TRIMMING: return "trimming";
	case RP_SCRAPING: return "scraping";
	case RP_RETRYING: return "retrying";
	case RP_FINISHED: return "finished";
	default: return "?";
	}
}

static int status_cb(void *opaque, const struct rescue_stats *st)
{
	struct status_ctx *s = opaque;
	if (s->tty) {
		char good[32], bad[32], untried[32], rate[32];
		cli_fmt_bytes(st->by_status[4], good, sizeof(good));
		cli_fmt_bytes(st->by_status[1] + st->by_status[2] + st->by_status[3], bad,
			      sizeof(bad));
		cli_fmt_bytes(st->by_status[0], untried, sizeof(untried));
		cli_fmt_bytes(st->elapsed > 0 ? (uint64_t)((double)st->bytes_read / st->elapsed) : 0,
			      rate, sizeof(rate));
		fprintf(stderr, "\r\033[K%s%s%s pass %u: rescued %s (%.2f%%), failed %s, untried %s, "
			"%" PRIu64 " errors, %s/s, at %" PRIu64 "",
			s->what ? s->what : "", s->what ? ": " : "", phase_name(st->phase), st->pass,
			good, st->size ? 100.0 * (double)st->by_status[4] / (double)st->size : 100.0,
			bad, untried, st->read_errors, rate, st->pos);
		s->shown = true;
	}
	return cli_interrupted ? 1 : 0;
}

static void status_end(struct status_ctx *s)
{
	if (s->shown)
		fprintf(stderr, "\r\033[K");
	s->shown = false;
}

/* ---------------------------------------------------------------- used areas */

static int cmp_range(const void *a, const void *b)
{
	uint64_t x = ((const struct rescue_range *)a)->offset;
	uint64_t y = ((const struct rescue_range *)b)->offset;
	return x < y ? -1 : x > y;
}

static int push_range(struct rescue_range **v, size_t *n, size_t *cap, uint64_t off,
		      uint64_t len)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct rescue_range *nv = realloc(*v, c * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = (struct rescue_range){off, len};
	return 0;
}

/* 0, -1 when the filesystems cannot be read (everything is rescued), or an exit code.
 * Domains for --used-first/--used-only: dom[0] the metadata we know (partition-table
 * areas and the first MiB of every partition, where superblocks and boot sectors live),
 * dom[1] every USED byte. */
static int used_domains(int fd, uint64_t size, uint32_t ss, const char *path,
			struct rescue_range **meta, size_t *nmeta, struct rescue_range **used,
			size_t *nused)
{
	struct region r = region_fd(fd, 0, size, path);
	struct smart_plan p;
	struct imago_err err = {0};
	int rc = smart_plan_build(&r, ss, 0, &p, &err);
	if (rc < 0) {
		cli_msg("warning: cannot read the filesystems (%s); rescuing everything",
			err.msg[0] ? err.msg : strerror(-rc));
		return -1;
	}
	for (size_t i = 0; i < p.nwarnings; i++)
		cli_msg("warning: %s", p.warnings[i]);
	/* the metadata ranges: the partition tables' own areas, each ext filesystem's group
	 * metadata and journal (else the first MiB of the partition: boot sectors and
	 * superblocks), sorted and merged */
	size_t k = 0, cap = 0;
	*meta = NULL;
	*used = calloc(p.map.n + 1, sizeof(**used));
	int e = *used ? 0 : -ENOMEM;
	for (size_t i = 0; !e && i < p.table->n_areas; i++)
		e = push_range(meta, &k, &cap, p.table->areas[i].start, p.table->areas[i].size);
	for (size_t i = 0; !e && i < p.nparts; i++) {
		const struct part_entry *pe = &p.parts[i].entry;
		if (pe->start >= size || (pe->flags & PART_EXTENDED))
			continue;
		uint64_t plen = pe->size < size - pe->start ? pe->size : size - pe->start;
		int got = 0;
		if (p.parts[i].driver && strcmp(p.parts[i].driver->name, "ext") == 0) {
			struct region pr = region_sub(&r, pe->start, plen);
			got = rescue_ext_metadata(&pr, meta, &k, &cap, 1u << 20);
			if (got < 0)
				e = got;
		}
		if (!e && got == 0)
			e = push_range(meta, &k, &cap, pe->start, plen < (1u << 20) ? plen : (1u << 20));
	}
	if (e) {
		smart_plan_free(&p);
		return cli_fail(-ENOMEM, NULL, NULL, NULL);
	}
	if (k)
		qsort(*meta, k, sizeof(**meta), cmp_range);
	size_t w = 0;
	for (size_t i = 0; i < k; i++) {
		if (!(*meta)[i].length)
			continue;
		if (w && (*meta)[w - 1].offset + (*meta)[w - 1].length >= (*meta)[i].offset) {
			uint64_t end = (*meta)[i].offset + (*meta)[i].length;
			if (end > (*meta)[w - 1].offset + (*meta)[w - 1].length)
				(*meta)[w - 1].length = end - (*meta)[w - 1].offset;
		} else {
			(*meta)[w++] = (*meta)[i];
		}
	}
	*nmeta = w;
	k = 0;
	for (size_t i = 0; i < p.map.n; i++)
		if (p.map.v[i].state != IMAGO_FREE)
			(*used)[k++] = (struct rescue_range){p.map.v[i].offset, p.map.v[i].length};
	*nused = k;
	smart_plan_free(&p);
	return 0;
}

/* ---------------------------------------------------------------- report */

static int write_report(const char *where, const char *disk_path, uint64_t size,
			uint32_t ss, const struct rescue_map *m)
{
	int fd = open(disk_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return cli_sys_fail(errno, "cannot read back the output", disk_path, NULL);
	struct region r = region_fd(fd, 0, size, disk_path);
	struct rescue_report rep;
	struct imago_err err = {0};
	int rc = rescue_report_build(&r, ss, m, &rep, &err);
	close(fd);
	if (rc < 0)
		return cli_fail(rc, &err, disk_path, NULL);
	FILE *f = strcmp(where, "-") == 0 ? stdout : fopen(where, "w");
	if (!f) {
		rescue_report_free(&rep);
		return cli_sys_fail(errno, "cannot write the report", where, NULL);
	}
	rescue_report_print(&rep, f);
	int bad = ferror(f);
	if (f != stdout)
		bad |= fclose(f) != 0;
	else
		fflush(f);
	rescue_report_free(&rep);
	if (bad)
		return cli_sys_fail(EIO, "cannot write the report", where, NULL);
	return 0;
}

/* ---------------------------------------------------------------- native image */

static int write_native(const struct rescue_args *a, const char *raw, uint64_t size,
			uint32_t ss, const struct rescue_map *m)
{
	struct imago_extent *ext;
	size_t n;
	if (rescue_map_to_extents(m, &ext, &n) < 0)
		return cli_fail(-ENOMEM, NULL, NULL, NULL);
	int in = open(raw, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		free(ext);
		return cli_sys_fail(errno, "cannot open the work file", raw, NULL);
	}
	size_t tl = strlen(a->output) + 32;
	char *tmp = malloc(tl);
	if (!tmp) {
		free(ext);
		close(in);
		return cli_fail(-ENOMEM, NULL, NULL, NULL);
	}
	snprintf(tmp, tl, "%s.imago-tmp-%d", a->output, (int)getpid());
	int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		int e = errno;
		free(ext);
		close(in);
		free(tmp);
		return cli_sys_fail(e, "cannot create the image", a->output, NULL);
	}
	const char *kv[] = {"source.path", a->source, "mode", "rescue", "rescue.map", a->map,
			    NULL};
	struct imago_create_opts co = {
		.source_fd = in, .source_size = size, .logical_sector_size = ss, .out_fd = out,
		.metadata = kv, .alloc = ext, .alloc_count = n,
	};
	struct imago_create_result res;
	struct imago_err err = {0};
	int rc = imago_create(&co, &res, &err);
	free(ext);
	close(in);
	if (rc == 0 && fsync(out) < 0)
		rc = -errno;
	if (close(out) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, a->output) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		free(tmp);
		return cli_fail(rc, &err, a->output, NULL);
	}
	free(tmp);
	return 0;
}

/* ---------------------------------------------------------------- the command */

int cmd_rescue(int argc, char **argv)
{
	struct rescue_args a;
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;

	int in = open(a.source, O_RDONLY | O_CLOEXEC | (a.direct ? O_DIRECT : 0));
	if (in < 0)
		return cli_sys_fail(errno, "cannot open the source", a.source, NULL);
	struct stat sst;
	uint64_t size = 0;
	uint32_t ss = a.sector_size, lss = 512, pss = 512;
	if (fstat(in, &sst) < 0) {
		close(in);
		return cli_sys_fail(errno, "cannot stat the source", a.source, NULL);
	}
	if (S_ISBLK(sst.st_mode)) {
		int e = device_block_geometry(in, &size, &lss, &pss);
		if (e < 0) {
			close(in);
			return cli_sys_fail(-e, "cannot get the size of", a.source, NULL);
		}
		if (!ss)
			ss = lss;
	} else if (S_ISREG(sst.st_mode)) {
		size = (uint64_t)sst.st_size;
	} else {
		close(in);
		return cli_usage_error("%s is neither a file nor a block device", a.source);
	}
	if (!ss)
		ss = 512;
	if (ss != 512 && ss != 4096) {
		close(in);
		return cli_usage_error("the source's sector size %u is not 512 or 4096; give "
				       "--sector-size", ss);
	}
	if (a.cluster && a.cluster % ss) {
		close(in);
		return cli_usage_error("--cluster must be a multiple of the sector size (%u)", ss);
	}

	/* The raw output: OUTPUT itself, or the work file of a native image. */
	char *raw = NULL;
	if (a.image) {
		if (asprintf(&raw, "%s.rescue-raw", a.output) < 0) {
			close(in);
			return cli_fail(-ENOMEM, NULL, NULL, NULL);
		}
	} else {
		raw = strdup(a.output);
	}
	struct rescue_map m;
	struct imago_err err = {0};
	bool resumed = false;
	rc = rescue_map_load(a.map, size, 0, &m, &err);
	if (rc == 0) {
		resumed = true;
	} else if (rc == -ENOENT) {
		struct stat ost;
		if (stat(raw, &ost) == 0 && !a.force &&
		    (S_ISBLK(ost.st_mode) || (S_ISREG(ost.st_mode) && ost.st_size > 0))) {
			cli_msg("%s exists and %s does not: refusing to overwrite it (use --force, or "
				"give the mapfile of the rescue that wrote it)", raw, a.map);
			close(in);
			free(raw);
			return EXIT_REFUSED;
		}
		if (a.image && stat(a.output, &ost) == 0 && !a.force) {
			close(in);
			free(raw);
			cli_msg("%s exists: refusing to overwrite it (use --force)", a.output);
			return EXIT_REFUSED;
		}
		if ((rc = rescue_map_init(&m, size)) < 0) {
			close(in);
			free(raw);
			return cli_fail(rc, NULL, NULL, NULL);
		}
	} else {
		close(in);
		free(raw);
		return cli_fail(rc, &err, a.map, "give the mapfile of this source, or a new name");
	}
	int out = open(raw, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (out < 0) {
		int e = errno;
		rc = cli_sys_fail(e, "cannot open the output", raw, NULL);
		close(in);
		free(raw);
		rescue_map_free(&m);
		return rc;
	}
	struct stat ost;
	if (fstat(out, &ost) == 0) {
		if (device_same(&ost, &sst)) {
			cli_msg("the output is the source");
			rc = EXIT_REFUSED;
			goto out;
		}
		if (S_ISBLK(ost.st_mode) && !a.force) {
			cli_msg("%s is a block device: give --force to write to it", raw);
			rc = EXIT_REFUSED;
			goto out;
		}
		if (S_ISBLK(ost.st_mode) && (rc = device_check_unused(&ost, raw)))
			goto out;
		/* A new file gets its full size at once (holes where nothing was read). */
		if (S_ISREG(ost.st_mode) && (uint64_t)ost.st_size < size &&
		    ftruncate(out, (off_t)size) < 0) {
			rc = cli_sys_fail(errno, "cannot size the output", raw, NULL);
			goto out;
		}
	}

	cli_signals_install();
	struct status_ctx sc = {.tty = !a.quiet && isatty(2)};
	char cmdline[512], started[64];
	time_t now = time(NULL);
	strftime(started, sizeof(started), "Start time: %Y-%m-%d %H:%M:%S", localtime(&now));
	snprintf(cmdline, sizeof(cmdline), "Command line: imago rescue %s %s --map %s", a.source,
		 a.output, a.map);
	const char *comments[] = {cmdline, started};
	struct rescue_opts o = {
		.source_path = a.source, .source_fd = in, .live_fd = &in, .size = size,
		.sector_size = ss,
		.cluster_size = (uint32_t)a.cluster, .direct = a.direct, .reopen = a.reopen,
		.slow_seconds = a.slow, .skip_min = a.skip_min, .skip_max = a.skip_max,
		.retries = a.retries, .no_trim = a.no_trim, .no_scrape = a.no_scrape,
		.max_seconds = a.max_time, .max_errors = a.max_errors, .out_fd = out,
		.map_path = a.map, .map_comments = comments, .nmap_comments = 2,
		.save_interval = a.map_interval, .status = status_cb, .status_opaque = &sc,
	};
	if (!a.quiet && resumed)
		cli_msg("resuming from %s", a.map);

	struct rescue_stats st;
	struct rescue_range *meta = NULL, *used = NULL;
	size_t nmeta = 0, nused = 0;
	int res = 0;
	if (a.used != USED_ALL &&
	    (rc = used_domains(in, size, ss, a.source, &meta, &nmeta, &used, &nused)) > 0)
		goto out;
	if (a.used != USED_ALL && rc == 0) {
		o.domain = meta, o.ndomain = nmeta;
		sc.what = "metadata";
		res = nmeta ? rescue_run(&o, &m, &st, &err) : 0;
		if (res == 0) {
			o.domain = used, o.ndomain = nused;
			sc.what = "used areas";
			res = nused ? rescue_run(&o, &m, &st, &err) : 0;
		}
		o.domain = NULL, o.ndomain = 0;
		sc.what = NULL;
		if (res == 0 && a.used == USED_FIRST)
			res = rescue_run(&o, &m, &st, &err);
	} else {
		res = rescue_run(&o, &m, &st, &err);
	}
	free(meta);
	free(used);
	status_end(&sc);
	if (res < 0) {
		rc = cli_fail(res, &err, a.source, res == -ECANCELED ?
			      "the map is saved: run the same command again to resume" : NULL);
		goto out;
	}
	uint64_t tot[5];
	rescue_map_totals(&m, tot);
	if (!a.quiet) {
		char g[32], b[32], u[32];
		cli_fmt_bytes(tot[4], g, sizeof(g));
		cli_fmt_bytes(tot[1] + tot[2] + tot[3], b, sizeof(b));
		cli_fmt_bytes(tot[0], u, sizeof(u));
		printf("rescued %s of %" PRIu64 " bytes (%.4f%%); unreadable %s (%" PRIu64
		       " bytes); untried %s (%" PRIu64 " bytes); %" PRIu64 " read errors; "
		       "%.1f s%s\n", g, size, size ? 100.0 * (double)tot[4] / (double)size : 100.0,
		       b, tot[1] + tot[2] + tot[3], u, tot[0], st.read_errors, st.elapsed,
		       res == 1 ? " (stopped by a limit)" : "");
		fflush(stdout);
	}
	if (a.image && (rc = write_native(&a, raw, size, ss, &m)))
		goto out;
	if (a.report && (rc = write_report(a.report, raw, size, ss, &m)))
		goto out;
	rc = (tot[4] == size && res == 0) ? EXIT_OK : EXIT_UNREADABLE;
out:
	close(out);
	if (in >= 0)
		close(in);
	free(raw);
	rescue_map_free(&m);
	return rc;
}
