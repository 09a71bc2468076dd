// SPDX-License-Identifier: GPL-3.0-or-later
/* The multi-digest fan-out: known answers (FIPS 180 / RFC 1321 "abc" and the million
 * 'a'), any split of the stream into pieces gives the same digests, tickets and subsets. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "imago.h"

static void known_abc(void)
{
	imago_mhash *h = NULL;
	REQUIRE(imago_mhash_new(IMAGO_HASH_ALL, &h) == 0);
	CHECK(imago_mhash_algs(h) == IMAGO_HASH_ALL);
	int64_t t = imago_mhash_feed(h, "ab", 2);
	CHECK(t == 0);
	CHECK(imago_mhash_feed(h, "c", 1) == 1);
	struct imago_hashes hs;
	REQUIRE(imago_mhash_final(h, &hs) == 0);
	CHECK(strcmp(hs.md5, "900150983cd24fb0d6963f7d28e17f72") == 0);
	CHECK(strcmp(hs.sha1, "a9993e364706816aba3e25717850c26c9cd0d89d") == 0);
	CHECK(strcmp(hs.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
	CHECK(hs.bytes == 3);
	CHECK(imago_mhash_feed(h, "x", 1) < 0); /* after final */
	imago_mhash_free(h);
}

static void million_a_any_split(void)
{
	size_t n = 1000000;
	char *a = malloc(n);
	REQUIRE(a);
	memset(a, 'a', n);
	size_t splits[] = { 1000000, 1, 7, 4096, 65537, 333333 };
	for (size_t s = 0; s < sizeof(splits) / sizeof(splits[0]); s++) {
		imago_mhash *h = NULL;
		REQUIRE(imago_mhash_new(IMAGO_HASH_ALL, &h) == 0);
		int64_t last = -1;
		for (size_t off = 0; off < n; off += splits[s]) {
			size_t k = n - off < splits[s] ? n - off : splits[s];
			last = imago_mhash_feed(h, a + off, k);
			CHECK(last >= 0);
		}
		imago_mhash_wait(h, (uint64_t)last);
		struct imago_hashes hs;
		REQUIRE(imago_mhash_final(h, &hs) == 0);
		CHECK(strcmp(hs.md5, "7707d6ae4e027c70eea2a935c2296f21") == 0);
		CHECK(strcmp(hs.sha1, "34aa973cd4c4daa4f61eeb2bdbad27316534016f") == 0);
		CHECK(strcmp(hs.sha256,
			     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0);
		imago_mhash_free(h);
	}
	free(a);
}

static void subset_and_bad_args(void)
{
	imago_mhash *h = NULL;
	CHECK(imago_mhash_new(0, &h) < 0);
	CHECK(imago_mhash_new(8, &h) < 0);
	REQUIRE(imago_mhash_new(IMAGO_HASH_SHA1, &h) == 0);
	imago_mhash_feed(h, "abc", 3);
	struct imago_hashes hs;
	REQUIRE(imago_mhash_final(h, &hs) == 0);
	CHECK(hs.algs == IMAGO_HASH_SHA1);
	CHECK(imago_hashes_get(&hs, IMAGO_HASH_MD5) == NULL);
	CHECK(strcmp(imago_hashes_get(&hs, IMAGO_HASH_SHA1), "a9993e364706816aba3e25717850c26c9cd0d89d") == 0);
	CHECK(strcmp(imago_hash_name(IMAGO_HASH_SHA256), "sha256") == 0);
	imago_mhash_free(h);
}

int main(void)
{
	check_prog_ = "mhash";
	RUN(known_abc);
	RUN(million_a_any_split);
	RUN(subset_and_bad_args);
	CHECK_MAIN_END();
}
