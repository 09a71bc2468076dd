// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * bench/randread FILE COUNT [SEED]: COUNT random 4 KiB reads (4 KiB aligned) of FILE,
 * one at a time; prints reads/s, median and p99 latency in microseconds as
 * "reads=N reads_per_s=R median_us=M p99_us=P". Every read must return 4096 bytes.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: randread FILE COUNT [SEED]\n");
		return 2;
	}
	int fd = open(argv[1], O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < 4096) {
		perror(argv[1]);
		return 1;
	}
	long n = atol(argv[2]);
	uint64_t s = argc > 3 ? strtoull(argv[3], NULL, 10) : 1, blocks = (uint64_t)st.st_size / 4096;
	double *lat = malloc((size_t)n * sizeof(*lat));
	char buf[4096];
	double t0 = now();
	for (long i = 0; i < n; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		off_t off = (off_t)((s >> 17) % blocks) * 4096;
		double a = now();
		if (pread(fd, buf, 4096, off) != 4096) {
			perror("pread");
			return 1;
		}
		lat[i] = now() - a;
	}
	double total = now() - t0;
	qsort(lat, (size_t)n, sizeof(*lat), cmp);
	printf("reads=%ld reads_per_s=%.0f median_us=%.0f p99_us=%.0f\n", n, (double)n / total,
	       lat[n / 2] * 1e6, lat[(size_t)((double)n * 0.99)] * 1e6);
	return 0;
}
