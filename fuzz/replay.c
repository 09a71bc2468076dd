/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Replays fuzz inputs through LLVMFuzzerTestOneInput without libFuzzer, so that a fuzz
 * target's corpus runs in the normal (gcc) build and in `make check`.
 *
 *   replay_image [--name PREFIX] PATH...
 *
 * Each PATH is a file, or a directory whose files (and the files of its subdirectories,
 * one level down) are replayed in name order. One line "PASS: PREFIX/NAME" is printed per
 * input once it has run (PREFIX defaults to "fuzz-X" for a program named replay_X, so
 * "fuzz-image" for replay_image). An input that breaks the
 * target crashes or aborts this program, which the test runner counts as a failure; the
 * last PASS line printed says which input ran before it. A PATH that cannot be read prints
 * "FAIL: PREFIX/PATH: reason" and makes the exit status 1.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static const char *prefix = "fuzz-image";
static char prefix_buf[256];
static int failures;

static void fail(const char *name, const char *why)
{
	printf("FAIL: %s/%s: %s\n", prefix, name, why);
	fflush(stdout);
	failures++;
}

/* Read a whole file; NULL (errno set) on failure. */
static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 65536;
			uint8_t *nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
			cap = ncap;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			int bad = ferror(f);
			fclose(f);
			if (bad) {
				free(buf);
				errno = EIO;
				return NULL;
			}
			*len = n;
			return buf;
		}
	}
}

static void replay_file(const char *path, const char *name)
{
	size_t len = 0;
	uint8_t *data = slurp(path, &len);

	if (!data) {
		fail(name, strerror(errno));
		return;
	}
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	printf("PASS: %s/%s\n", prefix, name);
	fflush(stdout);
}

static int skip_entry(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

/* depth 0: the directory given; its subdirectories are replayed at depth 1 (name/file). */
static void replay_dir(const char *dir, const char *label, int depth)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, skip_entry, alphasort);

	if (n < 0) {
		fail(label, strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *base = ents[i]->d_name;
		size_t plen = strlen(dir) + strlen(base) + 2;
		size_t llen = strlen(label) + strlen(base) + 2;
		char *path = malloc(plen), *name = malloc(llen);
		struct stat st;

		if (!path || !name) {
			fail(base, "out of memory");
		} else {
			snprintf(path, plen, "%s/%s", dir, base);
			if (depth == 0)
				snprintf(name, llen, "%s", base);
			else
				snprintf(name, llen, "%s/%s", label, base);
			if (stat(path, &st) < 0)
				fail(name, strerror(errno));
			else if (S_ISDIR(st.st_mode)) {
				if (depth == 0)
					replay_dir(path, name, 1);
			} else if (S_ISREG(st.st_mode))
				replay_file(path, name);
		}
		free(path);
		free(name);
		free(ents[i]);
	}
	free(ents);
}

int main(int argc, char **argv)
{
	int i = 1;
	const char *base = strrchr(argv[0], '/');

	base = base ? base + 1 : argv[0];
	if (strncmp(base, "replay_", 7) == 0 && base[7]) {
		snprintf(prefix_buf, sizeof(prefix_buf), "fuzz-%s", base + 7);
		prefix = prefix_buf;
	}
	if (i + 1 < argc && strcmp(argv[i], "--name") == 0) {
		prefix = argv[i + 1];
		i += 2;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: %s [--name PREFIX] FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fail(argv[i], strerror(errno));
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			replay_dir(argv[i], argv[i], 0);
		} else {
			const char *slash = strrchr(argv[i], '/');
			replay_file(argv[i], slash ? slash + 1 : argv[i]);
		}
	}
	return failures ? 1 : 0;
}
