/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The spool keeps bytes in order whether they stay in memory or spill to a file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "util/spool.h"

struct collect {
	uint8_t *p;
	size_t len;
};

static int collect(void *opaque, const uint8_t *p, size_t len)
{
	struct collect *c = opaque;
	memcpy(c->p + c->len, p, len);
	c->len += len;
	return 0;
}

static void roundtrip(size_t mem_limit, size_t total, size_t rec)
{
	struct spool s;
	spool_init(&s, mem_limit);
	uint8_t *want = malloc(total), *got = malloc(total);
	for (size_t i = 0; i < total; i++)
		want[i] = (uint8_t)(i * 131 + (i >> 9));
	for (size_t off = 0; off < total; off += rec)
		CHECK(spool_append(&s, want + off, total - off < rec ? total - off : rec) == 0);
	CHECK(spool_size(&s) == total);
	struct collect c = { got, 0 };
	CHECK(spool_replay(&s, collect, &c) == 0);
	CHECK(c.len == total && memcmp(got, want, total) == 0);
	if (mem_limit < total)
		CHECK(s.fd >= 0 && s.spilled > 0); /* really went through the file */
	spool_free(&s);
	free(want);
	free(got);
}

static void stays_in_memory(void)
{
	roundtrip(1 << 20, 100000, 32);
}

static void spills_to_file(void)
{
	roundtrip(4096, 1000000, 32);
	roundtrip(4096, 1000000, 24);
	roundtrip(100, 77777, 7);
}

static void empty(void)
{
	struct spool s;
	spool_init(&s, 0);
	struct collect c = { NULL, 0 };
	CHECK(spool_replay(&s, collect, &c) == 0 && c.len == 0);
	spool_free(&s);
}

int main(void)
{
	check_prog_ = "spool";
	RUN(stays_in_memory);
	RUN(spills_to_file);
	RUN(empty);
	CHECK_MAIN_END();
}
