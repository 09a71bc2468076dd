// SPDX-License-Identifier: GPL-3.0-or-later
/* The rescue map and GNU ddrescue's mapfile format (lib/rescue/map.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "rescue/map.h"

/* Same blocks (field by field: the struct has padding). */
static int same_blocks(const struct rescue_map *a, const struct rescue_map *b)
{
	if (a->n != b->n || a->size != b->size)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i].pos != b->v[i].pos || a->v[i].size != b->v[i].size ||
		    a->v[i].status != b->v[i].status)
			return 0;
	return 1;
}

/* The map's blocks equal the byte-per-byte model. */
static int same_as_model(const struct rescue_map *m, const char *model, size_t size)
{
	if (!rescue_map_check(m) || m->size != size)
		return 0;
	for (size_t i = 0; i < m->n; i++)
		for (uint64_t b = m->v[i].pos; b < m->v[i].pos + m->v[i].size; b++)
			if (model[b] != m->v[i].status)
				return 0;
	return 1;
}

static void set_against_model(void)
{
	enum { N = 4096 };
	static char model[N];
	struct rescue_map m;
	REQUIRE(rescue_map_init(&m, N) == 0);
	memset(model, '?', N);
	srand(5);
	static const char st[] = "?*/-+";
	for (int i = 0; i < 20000; i++) {
		uint64_t pos = (uint64_t)rand() % N, len = (uint64_t)rand() % 300;
		char s = st[rand() % 5];
		CHECK(rescue_map_set(&m, pos, len, s) == 0);
		for (uint64_t b = pos; b < pos + len && b < N; b++)
			model[b] = s;
		if (!same_as_model(&m, model, N)) {
			CHECK(!"map differs from the model");
			break;
		}
	}
	rescue_map_free(&m);
}

static const char sample[] =
	"# Mapfile. Created by GNU ddrescue version 1.27\n"
	"# Command line: ddrescue /dev/sdb disk.img disk.map\n"
	"# current_pos  current_status  current_pass\n"
	"0x00120000     *               3\n"
	"#      pos        size  status\n"
	"0x00000000  0x00100000  +\n"
	"0x00100000  0x00010000  *   # a comment after a block\n"
	"0x00110000  0x00000200  -\n"
	"0x00110200  0x00000E00  /\n"
	"0x00111000  0x000EF000  ?\n";

static void parse_ddrescue(void)
{
	struct rescue_map m;
	struct imago_err err;
	REQUIRE(rescue_map_parse(sample, strlen(sample), 0, 0, &m, &err) == 0);
	CHECK(m.size == 0x200000);
	CHECK(m.n == 5);
	CHECK(m.current_pos == 0x120000 && m.current_status == '*' && m.current_pass == 3);
	uint64_t t[5];
	rescue_map_totals(&m, t);
	CHECK(t[4] == 0x100000 && t[1] == 0x10000 && t[3] == 0x200 && t[2] == 0xE00 &&
	      t[0] == 0xEF000);
	rescue_map_free(&m);
	/* against a larger source: the rest is untried */
	REQUIRE(rescue_map_parse(sample, strlen(sample), 0x300000, 0, &m, &err) == 0);
	CHECK(m.size == 0x300000 && m.n == 5 && m.v[4].size == 0x1EF000);
	rescue_map_free(&m);
	/* against a smaller one: refused, or clipped */
	CHECK(rescue_map_parse(sample, strlen(sample), 0x100100, 0, &m, &err) == -EINVAL);
	REQUIRE(rescue_map_parse(sample, strlen(sample), 0x100100, 1, &m, &err) == 0);
	CHECK(m.size == 0x100100 && m.n == 2 && m.v[1].size == 0x100 && rescue_map_check(&m));
	rescue_map_free(&m);
}

static void parse_old_and_literals(void)
{
	/* pre-1.20: two-field status line; decimal and octal numbers; a domain starting late */
	const char *t = "0 +\n512 512 +\n02000 0x200 -\n";   /* 02000 = 1024 */
	struct rescue_map m;
	struct imago_err err;
	REQUIRE(rescue_map_parse(t, strlen(t), 0, 0, &m, &err) == 0);
	CHECK(m.size == 1536);
	CHECK(m.n == 3 && m.v[0].status == '?' && m.v[0].size == 512 && m.v[1].status == '+');
	CHECK(m.v[2].pos == 1024 && m.v[2].status == '-' && m.current_pass == 1);
	rescue_map_free(&m);
}

static void parse_rejects(void)
{
	static const char *const bad[] = {
		"",                                   /* no status line */
		"# only comments\n",
		"0x0 X 1\n",                         /* bad phase */
		"0 + 1\n0 512 +\n256 512 +\n",      /* overlap */
		"0 + 1\n0 512 +\n1024 512 +\n",     /* gap */
		"0 + 1\n0 512 x\n",                  /* bad status */
		"0 + 1\n0 512 ++\n",
		"0 + 1\n0 512\n",                    /* no status */
		"0 + 1\n0x 512 +\n",
		"0 + 1\n0 99999999999999999999 +\n", /* overflow */
		"0 + 1\n0x7FFFFFFFFFFFFFFF 2 +\n",   /* past 2^63 */
		"0 + 1\n08 512 +\n",                 /* 8 is no octal digit */
		"0 + 0\n",                           /* pass 0 */
		"0 + 1 junk\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rescue_map m;
		struct imago_err err;
		int r = rescue_map_parse(bad[i], strlen(bad[i]), 0, 0, &m, &err);
		if (r != -EBADMSG) {
			printf("# input %zu gave %d\n", i, r);
			CHECK(r == -EBADMSG);
			if (r == 0)
				rescue_map_free(&m);
		}
	}
	/* a NUL inside a line */
	struct rescue_map m;
	struct imago_err err;
	CHECK(rescue_map_parse("0 + 1\n0 5\0 +\n", 13, 0, 0, &m, &err) == -EBADMSG);
}

static void roundtrip_and_save(void)
{
	struct rescue_map m, m2;
	struct imago_err err;
	REQUIRE(rescue_map_parse(sample, strlen(sample), 0, 0, &m, &err) == 0);
	char *text;
	size_t len;
	REQUIRE(rescue_map_format(&m, NULL, 0, &text, &len) == 0);
	REQUIRE(rescue_map_parse(text, len, 0, 0, &m2, &err) == 0);
	CHECK(same_blocks(&m, &m2) && m2.current_pos == m.current_pos && m2.current_status == m.current_status &&
	      m2.current_pass == m.current_pass);
	free(text);
	rescue_map_free(&m2);
	char dir[] = "/tmp/test_rescue_map.XXXXXX";
	REQUIRE(mkdtemp(dir));
	char path[64], tmp[64];
	snprintf(path, sizeof(path), "%s/x.map", dir);
	snprintf(tmp, sizeof(tmp), "%s/x.map.tmp", dir);
	const char *c[] = {"a comment"};
	CHECK(rescue_map_save(&m, path, c, 1, &err) == 0);
	CHECK(access(tmp, F_OK) != 0);
	REQUIRE(rescue_map_load(path, 0, 0, &m2, &err) == 0);
	CHECK(same_blocks(&m, &m2));
	rescue_map_free(&m2);
	CHECK(rescue_map_load("/nonexistent/x.map", 0, 0, &m2, &err) == -ENOENT);
	unlink(path);
	rmdir(dir);
	struct imago_extent *e;
	size_t n;
	REQUIRE(rescue_map_to_extents(&m, &e, &n) == 0);
	/* + | * - / (BAD) | ? */
	CHECK(n == 3 && e[0].state == IMAGO_USED && e[1].state == IMAGO_BAD &&
	      e[1].length == 0x11000 && e[2].state == IMAGO_UNTRIED);
	free(e);
	rescue_map_free(&m);
}

int main(void)
{
	check_prog_ = "test_rescue_map";
	RUN(set_against_model);
	RUN(parse_ddrescue);
	RUN(parse_old_and_literals);
	RUN(parse_rejects);
	RUN(roundtrip_and_save);
	CHECK_MAIN_END();
}
