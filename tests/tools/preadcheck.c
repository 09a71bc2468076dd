// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * preadcheck: does the library's random-access read path ever return wrong bytes?
 *
 *   preadcheck IMAGE SOURCE
 *
 * Opens IMAGE with imago_image_open and reads the whole logical device with
 * imago_image_pread three times (one chunk per call; pieces of 12345 bytes that straddle
 * chunk boundaries; the whole device in one call), comparing every byte that a call says
 * it returned with SOURCE (the file the image was made from). A call may fail (that is
 * damage detected); it must never succeed with bytes that differ from SOURCE, nor come
 * back short before the end of the device. After a failed call the next call goes on,
 * so every chunk is tried on its own. Used by tests/cli/corrupt_matrix.sh.
 *
 * Prints one line: "open refused: MESSAGE" or "reads N failed F wrong W".
 * Exit: 0 every read succeeded with the right bytes; 3 the image was refused or some
 * read failed, and no read returned wrong bytes; 1 some read returned wrong bytes (the
 * line names the first); 2 usage or the SOURCE cannot be read.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "imago.h"

static uint8_t *slurp(const char *path, uint64_t *size)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return NULL;
	uint8_t *p = malloc(st.st_size ? (size_t)st.st_size : 1);
	size_t got = 0;
	while (p && got < (size_t)st.st_size) {
		ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
		if (r <= 0) {
			free(p);
			p = NULL;
			break;
		}
		got += (size_t)r;
	}
	close(fd);
	*size = (uint64_t)st.st_size;
	return p;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: preadcheck IMAGE SOURCE\n");
		return 2;
	}
	uint64_t ssize;
	uint8_t *src = slurp(argv[2], &ssize);
	if (!src) {
		fprintf(stderr, "preadcheck: cannot read %s\n", argv[2]);
		return 2;
	}
	imago_image *img;
	struct imago_err err;
	int r = imago_image_open(argv[1], &img, &err);
	if (r < 0) {
		printf("open refused: %s\n", err.msg);
		free(src);
		return 3;
	}
	struct imago_info info;
	imago_image_info(img, &info);
	uint64_t dsize = info.device_size;
	unsigned long reads = 0, failed = 0, wrong = 0;
	char first[200] = "";
	if (dsize != ssize) {
		/* Open accepted a device size that is not the source's: wrong, whatever follows. */
		wrong++;
		snprintf(first, sizeof(first), "device size %" PRIu64 ", source %" PRIu64, dsize, ssize);
	}
	uint64_t n = dsize < ssize ? dsize : ssize;
	uint8_t *buf = malloc(n ? (size_t)n : 1);
	if (!buf) {
		fprintf(stderr, "preadcheck: out of memory\n");
		return 2;
	}
	const uint64_t pieces[3] = { info.chunk_size, 12345, n ? n : 1 };
	for (int pass = 0; pass < 3; pass++) {
		for (uint64_t off = 0; off < n; off += pieces[pass]) {
			size_t len = (size_t)(n - off < pieces[pass] ? n - off : pieces[pass]);
			ssize_t got = imago_image_pread(img, buf, len, off);
			reads++;
			if (got < 0) {
				failed++;
				continue;
			}
			if ((size_t)got != len) {
				wrong++;
				if (!first[0])
					snprintf(first, sizeof(first), "short read at %" PRIu64 ": %zd of %zu", off,
						 got, len);
				continue;
			}
			if (memcmp(buf, src + off, len) != 0) {
				wrong++;
				if (!first[0]) {
					size_t i = 0;
					while (buf[i] == src[off + i])
						i++;
					snprintf(first, sizeof(first), "wrong byte at device offset %" PRIu64,
						 off + i);
				}
			}
		}
	}
	printf("reads %lu failed %lu wrong %lu%s%s\n", reads, failed, wrong, first[0] ? ": " : "", first);
	imago_image_close(img);
	free(buf);
	free(src);
	return wrong ? 1 : failed ? 3 : 0;
}
