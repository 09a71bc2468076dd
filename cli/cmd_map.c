// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * imago map MAPFILE [--svg FILE]: the totals of a rescue map (imago's or GNU ddrescue's),
 * and a picture of it in the manner of ddrescueview: a grid of cells, each covering an
 * equal share of the device, coloured by the worst status it holds.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "common.h"
#include "rescue/map.h"

void cmd_map_help(FILE *f)
{
	fprintf(f, "Usage: imago map [OPTIONS] MAPFILE\n\n"
		   "Show what a rescue map (imago rescue's or GNU ddrescue's) holds: bytes read,\n"
		   "failed (non-trimmed, non-scraped, bad) and untried.\n\n"
		   "      --svg FILE        draw the map as an SVG picture\n"
		   "      --cells N         cells in the picture (default 4096)\n"
		   "  -h, --help            this help\n");
}

/* Worst first: a cell shows the most alarming status it holds. */
static int severity(char s)
{
	switch (s) {
	case '-': return 5;
	case '/': return 4;
	case '*': return 3;
	case '?': return 2;
	case '+': return 1;
	default: return 0;
	}
}

static const char *colour(char s)
{
	switch (s) {
	case '-': return "#e02020";   /* bad */
	case '/': return "#2060ff";   /* non-scraped */
	case '*': return "#f0c000";   /* non-trimmed */
	case '?': return "#a0a0a0";   /* untried */
	case '+': return "#20c040";   /* finished */
	default: return "#000000";
	}
}

static int draw_svg(const struct rescue_map *m, const char *path, unsigned cells)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return cli_sys_fail(errno, "cannot write", path, NULL);
	const unsigned cols = 64, cs = 12;
	unsigned rows = (cells + cols - 1) / cols;
	unsigned w = cols * cs + 20, h = rows * cs + 90;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%u\" height=\"%u\" "
		   "viewBox=\"0 0 %u %u\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
		w, h, w, h);
	uint64_t tot[5];
	rescue_map_totals(m, tot);
	fprintf(f, "<text x=\"10\" y=\"18\" font-family=\"sans-serif\" font-size=\"13\">"
		   "%" PRIu64 " bytes, %u cells of %" PRIu64 " bytes</text>\n", m->size, cells,
		m->size ? (m->size + cells - 1) / cells : 0);
	size_t bi = 0;
	for (unsigned c = 0; c < cells && m->size; c++) {
		uint64_t a = (uint64_t)((unsigned __int128)m->size * c / cells);
		uint64_t e = (uint64_t)((unsigned __int128)m->size * (c + 1) / cells);
		if (e <= a)
			continue;
		while (bi < m->n && m->v[bi].pos + m->v[bi].size <= a)
			bi++;
		char worst = 0;
		for (size_t j = bi; j < m->n && m->v[j].pos < e; j++)
			if (severity(m->v[j].status) > severity(worst))
				worst = m->v[j].status;
		fprintf(f, "<rect x=\"%u\" y=\"%u\" width=\"%u\" height=\"%u\" fill=\"%s\" "
			   "stroke=\"white\" stroke-width=\"1\"/>\n", 10 + (c % cols) * cs,
			28 + (c / cols) * cs, cs, cs, colour(worst));
	}
	static const char st[] = "+?*/-";
	static const char *const names[] = {"finished", "untried", "non-trimmed", "non-scraped",
					    "bad"};
	static const int idx[] = {4, 0, 1, 2, 3};
	for (unsigned i = 0; i < 5; i++) {
		unsigned x = 10 + i * 150, y = 28 + rows * cs + 20;
		char b[32];
		cli_fmt_bytes(tot[idx[i]], b, sizeof(b));
		fprintf(f, "<rect x=\"%u\" y=\"%u\" width=\"12\" height=\"12\" fill=\"%s\"/>"
			   "<text x=\"%u\" y=\"%u\" font-family=\"sans-serif\" font-size=\"12\">%s %s"
			   "</text>\n", x, y, colour(st[i]), x + 16, y + 11, names[i], b);
	}
	fprintf(f, "</svg>\n");
	int bad = ferror(f);
	bad |= fclose(f) != 0;
	if (bad)
		return cli_sys_fail(EIO, "cannot write", path, NULL);
	return 0;
}

int cmd_map(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"svg", required_argument, NULL, 's'},
		{"cells", required_argument, NULL, 'n'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *svg = NULL;
	unsigned cells = 4096;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': svg = optarg; break;
		case 'n':
			if (cli_parse_uint(optarg, 1, 1u << 20, &cells))
				return cli_usage_error("--cells: bad count '%s'", optarg);
			break;
		case 'h': cmd_map_help(stdout); return EXIT_OK;
		default: return cli_getopt_error(c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error("one MAPFILE is needed");
	const char *path = argv[optind];
	struct rescue_map m;
	struct imago_err err = {0};
	int r = rescue_map_load(path, 0, 0, &m, &err);
	if (r < 0)
		return cli_fail(r, &err, path, NULL);
	uint64_t tot[5];
	rescue_map_totals(&m, tot);
	size_t bad_areas = 0;
	for (size_t i = 0; i < m.n; i++)
		bad_areas += m.v[i].status == RS_BAD;
	printf("size:        %" PRIu64 "\n", m.size);
	printf("finished:    %" PRIu64 "\n", tot[4]);
	printf("untried:     %" PRIu64 "\n", tot[0]);
	printf("non-trimmed: %" PRIu64 "\n", tot[1]);
	printf("non-scraped: %" PRIu64 "\n", tot[2]);
	printf("bad:         %" PRIu64 " (%zu areas)\n", tot[3], bad_areas);
	printf("blocks:      %zu\n", m.n);
	printf("phase:       %c pass %u at %" PRIu64 "\n", m.current_status, m.current_pass,
	       m.current_pos);
	fflush(stdout);
	int rc = EXIT_OK;
	if (svg)
		rc = draw_svg(&m, svg, cells);
	rescue_map_free(&m);
	return rc;
}
