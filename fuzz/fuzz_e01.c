// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * Fuzz target for the E01 input path: the input is the first segment of an E01. It is
 * written to a memfd and opened through the evidence interface (imago_evidence_open on
 * /proc/self/fd/N, so it goes through the signature check and lib/forensic/ewf.c into
 * libewf), and then everything the interface offers is exercised: size, sector size,
 * metadata, stored digests, unreadable ranges, reads (sequential odd pieces up to a cap,
 * scattered offsets, at and past the end) with the digests over them, and the checksum
 * error count.
 *
 * Checked besides "no crash, no leak, no hang": pread never returns more than asked nor
 * past the end; a failing pread filled the handle's error; metadata keys are unique.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "imago.h"

/* libewf 20140813 leaks one chunk buffer (allocated in libewf_chunk_data_initialize)
 * each time reading a chunk of a cut-short segment fails: a bug of libewf's error path,
 * not of ours, and the only leak the seeds and the fuzzer meet there. Suppressed for this
 * target only (LeakSanitizer reads this hook; a build without sanitizers ignores it). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libewf_chunk_data_initialize\n";
}

/* Without this, LeakSanitizer reports the suppression it used, in the sanitizer log that
 * tests/run.sh counts as a report. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
	return "print_suppressions=0";
}

#define READ_CAP (16u << 20) /* device bytes read in order, at most */
#define PIECE 65537u

static void finding(const char *what)
{
	fprintf(stderr, "fuzz_e01: %s\n", what);
	abort();
}

static int count_bad(void *opaque, uint64_t off, uint64_t len)
{
	(*(uint64_t *)opaque)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz.E01", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	imago_evidence *ev = NULL;
	struct imago_err err;
	memset(&err, 0, sizeof(err));
	int r = imago_evidence_open(path, &ev, &err);
	if (r < 0) {
		if (err.code != r || !err.msg[0])
			finding("a failed open did not fill its error");
		close(fd);
		return 0;
	}
	uint64_t dsize = imago_evidence_size(ev);
	(void)imago_evidence_sector_size(ev);
	(void)imago_evidence_kind(ev);
	const char *k, *v;
	for (size_t i = 0; imago_evidence_meta_at(ev, i, &k, &v); i++)
		for (size_t j = 0; j < i; j++) {
			const char *k2, *v2;
			imago_evidence_meta_at(ev, j, &k2, &v2);
			if (strcmp(k, k2) == 0)
				finding("a metadata key appears twice");
		}
	struct imago_hashes hs;
	imago_evidence_stored_hashes(ev, &hs);
	uint64_t nbad = 0;
	imago_evidence_bad_ranges(ev, count_bad, &nbad);

	uint8_t *buf = malloc(PIECE);
	imago_mhash *h = NULL;
	if (buf && imago_mhash_new(IMAGO_HASH_ALL, &h) == 0) {
		uint64_t cap = dsize < READ_CAP ? dsize : READ_CAP;
		for (uint64_t pos = 0; pos < cap;) {
			size_t n = (size_t)(cap - pos < PIECE ? cap - pos : PIECE);
			ssize_t got = imago_evidence_pread(ev, buf, n, pos);
			if (got < 0) {
				if (!imago_evidence_error(ev)->msg[0])
					finding("a failed pread did not fill the handle's error");
				break;
			}
			if ((size_t)got > n)
				finding("pread returned more than asked");
			if (got == 0)
				break;
			int64_t t = imago_mhash_feed(h, buf, (size_t)got);
			if (t >= 0)
				imago_mhash_wait(h, (uint64_t)t);
			pos += (uint64_t)got;
		}
		struct imago_hashes out;
		imago_mhash_final(h, &out);
		/* scattered reads, at and past the end */
		uint64_t offs[] = { dsize / 2, dsize ? dsize - 1 : 0, dsize, dsize + 1, UINT64_MAX / 4,
				    dsize > 4096 ? dsize - 4096 : 0 };
		for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
			ssize_t got = imago_evidence_pread(ev, buf, 4096, offs[i]);
			if (got > 0 && offs[i] >= dsize)
				finding("pread returned bytes past the end");
			if (got > 4096)
				finding("pread returned more than asked");
		}
	}
	imago_mhash_free(h);
	free(buf);
	(void)imago_evidence_damaged(ev);
	imago_evidence_close(ev);
	close(fd);
	return 0;
}
