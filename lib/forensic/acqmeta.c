// SPDX-License-Identifier: GPL-3.0-or-later
/* The metadata keys a forensic acquisition knows only once the last byte was read. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forensic/forensic.h"

char *fx_ranges_text(const struct fx_range *v, size_t n)
{
	size_t cap = n * 42 + 1;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	size_t at = 0;
	s[0] = 0;
	for (size_t i = 0; i < n; i++)
		at += (size_t)snprintf(s + at, cap - at, "%s%" PRIu64 "+%" PRIu64, i ? "\n" : "",
				       v[i].offset, v[i].length);
	return s;
}

static int has_key(const char *const *kv, const char *key)
{
	for (; kv && kv[0]; kv += 2)
		if (strcmp(kv[0], key) == 0)
			return 1;
	return 0;
}

int fx_tail_metadata(const char *const *user, imago_mhash *h, int keep_going,
		     const struct fx_range *bad, size_t nbad, const char ***kvp, char **poolp)
{
	struct imago_hashes hs;
	memset(&hs, 0, sizeof(hs));
	if (h) {
		int r = imago_mhash_final(h, &hs);
		if (r < 0)
			return r;
	}
	char *errs = keep_going ? fx_ranges_text(bad, nbad) : NULL;
	if (keep_going && !errs)
		return -ENOMEM;
	uint64_t badb = 0;
	for (size_t i = 0; i < nbad; i++)
		badb += bad[i].length;
	/* The pool holds the fixed-size values; errs is appended to it. */
	size_t elen = errs ? strlen(errs) + 1 : 0;
	char *pool = malloc(256 + elen);
	size_t nuser = 0;
	while (user && user[2 * nuser])
		nuser++;
	const char **kv = calloc(2 * nuser + 16, sizeof(*kv));
	if (!pool || !kv) {
		free(pool);
		free(kv);
		free(errs);
		return -ENOMEM;
	}
	size_t n = 0;
	for (size_t i = 0; i < 2 * nuser; i++)
		kv[n++] = user[i];
	char *p = pool;
	const char *key_alg[3] = { "hash.md5", "hash.sha1", "hash.sha256" };
	unsigned bits[3] = { IMAGO_HASH_MD5, IMAGO_HASH_SHA1, IMAGO_HASH_SHA256 };
	for (int i = 0; i < 3; i++) {
		const char *v = imago_hashes_get(&hs, bits[i]);
		if (v && !has_key(user, key_alg[i])) {
			strcpy(p, v);
			kv[n++] = key_alg[i];
			kv[n++] = p;
			p += strlen(p) + 1;
		}
	}
	if (keep_going && !has_key(user, "acquire.end")) {
		const char *sde = getenv("SOURCE_DATE_EPOCH");
		time_t t = sde && *sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(p, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
		kv[n++] = "acquire.end";
		kv[n++] = p;
		p += strlen(p) + 1;
	}
	if (keep_going) {
		snprintf(p, 24, "%" PRIu64, badb);
		kv[n++] = "acquire.bad_bytes";
		kv[n++] = p;
		p += strlen(p) + 1;
		memcpy(p, errs, elen);
		kv[n++] = "acquire.read_errors";
		kv[n++] = p;
		p += elen;
	}
	free(errs);
	kv[n] = NULL;
	*kvp = kv;
	*poolp = pool;
	return 0;
}
