// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * fsmap: a test tool for the filesystem allocation readers (lib/fs/).
 *
 *   fsmap [--offset N] [--size N] FILE                print the driver, facts and FREE runs
 *   fsmap [--offset N] [--size N] --scrub OUT FILE   also write OUT: a copy of FILE whose
 *                                                   FREE bytes are overwritten with 0xA5
 *
 * A reader is right when the scrubbed copy still passes fsck and holds the same files:
 * every byte it called FREE really was unused. Output lines (stable, for scripts):
 *   driver NAME
 *   type T / label L / uuid U / block_size N / fs_size N / used_bytes N / flags N
 *   free_bytes N / used_map_bytes N / runs N
 * Exit: 0 ok, 1 error, 3 no driver recognised the region.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs.h"
#include "util/xio.h"

static int copy_file(int in, const char *out_path, uint64_t size)
{
	int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0)
		return -errno;
	static char buf[1 << 20];
	for (uint64_t off = 0; off < size;) {
		size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf);
		ssize_t r = xpread_full(in, buf, n, off);
		if (r <= 0) {
			close(out);
			return r < 0 ? (int)r : -EIO;
		}
		int w = xpwrite_full(out, buf, (size_t)r, off);
		if (w < 0) {
			close(out);
			return w;
		}
		off += (uint64_t)r;
	}
	return out;
}

int main(int argc, char **argv)
{
	uint64_t offset = 0, size = 0;
	const char *scrub = NULL;
	static const struct option opts[] = {
		{ "offset", required_argument, NULL, 'o' },
		{ "size", required_argument, NULL, 's' },
		{ "scrub", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'o': offset = strtoull(optarg, NULL, 0); break;
		case 's': size = strtoull(optarg, NULL, 0); break;
		case 'S': scrub = optarg; break;
		default: return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: fsmap [--offset N] [--size N] [--scrub OUT] FILE\n");
		return 2;
	}
	const char *path = argv[optind];
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "fsmap: %s: %s\n", path, strerror(errno));
		return 1;
	}
	struct stat st;
	fstat(fd, &st);
	uint64_t fsize = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode)) {
		off_t e = lseek(fd, 0, SEEK_END);
		fsize = e > 0 ? (uint64_t)e : 0;
	}
	if (!size)
		size = fsize > offset ? fsize - offset : 0;
	struct region r = region_fd(fd, offset, size, path);
	const struct fs_driver *d = fs_probe(&r);
	if (!d) {
		printf("driver none\n");
		return 3;
	}
	printf("driver %s\n", d->name);
	struct extent_map m;
	if (extent_map_init(&m, size, IMAGO_USED) < 0)
		return 1;
	struct fs_facts f = { 0 };
	struct imago_err err = { 0 };
	int rc = d->read_map(&r, &m, &f, &err);
	if (rc < 0) {
		fprintf(stderr, "fsmap: %s: %s (%s)\n", path, err.msg, strerror(-rc));
		extent_map_free(&m);
		return 1;
	}
	uint64_t tot[6];
	extent_map_totals(&m, tot);
	printf("type %s\nlabel %s\nuuid %s\nblock_size %u\nfs_size %" PRIu64 "\n"
	       "used_bytes %" PRIu64 "\nflags %u\nstate %s\nfree_bytes %" PRIu64 "\n"
	       "used_map_bytes %" PRIu64 "\nruns %zu\n",
	       f.type, f.label, f.uuid, f.block_size, f.fs_size, f.used_bytes, f.flags, f.state,
	       tot[IMAGO_FREE], tot[IMAGO_USED], m.n);
	if (scrub) {
		int out = copy_file(fd, scrub, fsize);
		if (out < 0) {
			fprintf(stderr, "fsmap: %s: %s\n", scrub, strerror(-out));
			return 1;
		}
		static char pat[1 << 20];
		memset(pat, 0xA5, sizeof(pat));
		for (size_t i = 0; i < m.n; i++) {
			if (m.v[i].state != IMAGO_FREE)
				continue;
			for (uint64_t o = 0; o < m.v[i].length;) {
				uint64_t n = m.v[i].length - o;
				if (n > sizeof(pat))
					n = sizeof(pat);
				if (xpwrite_full(out, pat, (size_t)n, offset + m.v[i].offset + o) < 0) {
					fprintf(stderr, "fsmap: write %s failed\n", scrub);
					return 1;
				}
				o += n;
			}
		}
		if (fsync(out) < 0 || close(out) < 0)
			return 1;
	}
	extent_map_free(&m);
	close(fd);
	return 0;
}
