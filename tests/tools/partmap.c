// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * partmap: a test tool for the partition-table readers (lib/part/).
 *
 *   partmap [--sector-size N] FILE                      print the table of FILE
 *   partmap [--sector-size N] --relocate SIZE OUT FILE  also write OUT, a new file of
 *                                                       SIZE bytes holding FILE's
 *                                                       partitions at the same offsets
 *                                                       and the table (GPT: through
 *                                                       gpt_relocate; MBR: as it is)
 *
 * FILE may be a block device (its logical sector size is used unless --sector-size is
 * given; for files the default is 0: try 512, then 4096). SIZE takes K, M, G (binary).
 * Output lines (stable, for scripts; numbers in decimal bytes unless named *_lba):
 *   scheme none|mbr|gpt
 *   sector_size N / disk_size N / flags F,F...|- / odd 0|1 / min_size N
 *   (GPT) disk_guid G / first_usable_lba N / last_usable_lba N / alternate_lba N /
 *         entries_lba N / header_lba N / backup_lba N / entries N / entry_size N /
 *         entries_crc 0xX
 *   part NUMBER start=N size=N type=T uuid=U attrs=0xX flags=F,F...|- name=NAME
 *     (type: 0xNN for MBR, the type GUID for GPT; uuid "-" for MBR; NAME to the end of
 *     the line)
 *   area START SIZE WHAT
 *   warning TEXT
 * Exit: 0 ok, 1 error (the library's message on stderr), 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "part/part.h"
#include "util/xio.h"

static void guid_str(const uint8_t *g, char *out)
{
	/* The first three fields are little-endian on disk. */
	sprintf(out, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12],
		g[13], g[14], g[15]);
}

static void print_flags(unsigned f, const char *const *names, int n)
{
	int any = 0;
	for (int i = 0; i < n; i++) {
		if (f & (1u << i)) {
			printf("%s%s", any ? "," : "", names[i]);
			any = 1;
		}
	}
	if (!any)
		printf("-");
}

static void print_table(const struct part_table *t)
{
	static const char *const tflags[] = { "backup_used", "backup_bad", "hybrid_mbr",
					      "overlap", "beyond_end", "entry_ignored" };
	static const char *const eflags[] = { "bootable", "extended", "logical" };
	static const char *const schemes[] = { "none", "mbr", "gpt" };
	char g[40];

	printf("scheme %s\nsector_size %" PRIu32 "\ndisk_size %" PRIu64 "\nflags ",
	       schemes[t->scheme], t->sector_size, t->disk_size);
	print_flags(t->flags, tflags, 6);
	printf("\nodd %d\nmin_size %" PRIu64 "\n", part_table_is_odd(t) ? 1 : 0,
	       part_min_disk_size(t));
	if (t->scheme == PART_GPT) {
		guid_str(t->disk_guid, g);
		printf("disk_guid %s\nfirst_usable_lba %" PRIu64 "\nlast_usable_lba %" PRIu64
		       "\nalternate_lba %" PRIu64 "\nentries_lba %" PRIu64 "\nheader_lba %" PRIu64
		       "\nbackup_lba %" PRIu64 "\nentries %" PRIu32 "\nentry_size %" PRIu32
		       "\nentries_crc 0x%08" PRIx32 "\n", g, t->first_usable_lba,
		       t->last_usable_lba, t->alternate_lba, t->entries_lba, t->header_lba,
		       t->backup_lba, t->n_gpt_entries, t->gpt_entry_size, t->gpt_entries_crc);
	}
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct part_entry *e = &t->entries[i];
		printf("part %u start=%" PRIu64 " size=%" PRIu64 " ", e->number, e->start, e->size);
		if (t->scheme == PART_GPT) {
			guid_str(e->type_guid, g);
			printf("type=%s ", g);
			guid_str(e->part_guid, g);
			printf("uuid=%s ", g);
		} else {
			printf("type=0x%02x uuid=- ", e->mbr_type);
		}
		printf("attrs=0x%" PRIx64 " flags=", e->gpt_attrs);
		print_flags(e->flags, eflags, 3);
		printf(" name=%s\n", e->name);
	}
	for (size_t i = 0; i < t->n_areas; i++)
		printf("area %" PRIu64 " %" PRIu64 " %s\n", t->areas[i].start, t->areas[i].size,
		       t->areas[i].what);
	for (size_t i = 0; i < t->n_warnings; i++)
		printf("warning %s\n", t->warnings[i]);
}

static int parse_size(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	int shift = 0;
	switch (*end) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	default: break;
	}
	if (*end || (shift && n > (UINT64_MAX >> shift)))
		return -1;
	*v = (uint64_t)n << shift;
	return 0;
}

static int write_out(void *opaque, const void *buf, size_t len, uint64_t offset)
{
	return xpwrite_full(*(int *)opaque, buf, len, offset) < 0 ? -EIO : 0;
}

/* Copy [off, off + len) of in to out, leaving all-zero blocks as holes. */
static int copy_range(int in, int out, uint64_t off, uint64_t len)
{
	static uint8_t buf[1 << 20];
	static const uint8_t zero[4096];
	while (len) {
		size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);
		ssize_t r = xpread_full(in, buf, n, off);
		if (r <= 0)
			return r < 0 ? (int)r : -EIO;
		for (size_t at = 0; at < (size_t)r; at += sizeof(zero)) {
			size_t k = (size_t)r - at < sizeof(zero) ? (size_t)r - at : sizeof(zero);
			if (memcmp(buf + at, zero, k) == 0)
				continue;
			if (xpwrite_full(out, buf + at, k, off + at) < 0)
				return -EIO;
		}
		off += (uint64_t)r;
		len -= (uint64_t)r;
	}
	return 0;
}

static int relocate(int in, const struct part_table *t, uint64_t new_size, const char *out_path)
{
	uint64_t min = part_min_disk_size(t);
	if (t->scheme == PART_NONE) {
		fprintf(stderr, "partmap: no partition table to relocate\n");
		return 1;
	}
	if (t->scheme == PART_MBR && new_size < min) {
		fprintf(stderr, "partmap: a %" PRIu64 "-byte disk is too small for this MBR: it "
			"needs at least %" PRIu64 " bytes\n", new_size, min);
		return 1;
	}
	int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out < 0 || ftruncate(out, (off_t)new_size) < 0) {
		fprintf(stderr, "partmap: %s: %s\n", out_path, strerror(errno));
		return 1;
	}
	uint64_t lim = t->disk_size < new_size ? t->disk_size : new_size;
	for (size_t i = 0; i < t->n_entries; i++) {
		const struct part_entry *e = &t->entries[i];
		if ((e->flags & PART_EXTENDED) || e->start >= lim)
			continue;
		uint64_t n = e->size < lim - e->start ? e->size : lim - e->start;
		if (copy_range(in, out, e->start, n) < 0) {
			fprintf(stderr, "partmap: copying partition %u failed\n", e->number);
			return 1;
		}
	}
	if (t->scheme == PART_MBR) {
		for (size_t i = 0; i < t->n_areas; i++)
			if (copy_range(in, out, t->areas[i].start, t->areas[i].size) < 0) {
				fprintf(stderr, "partmap: copying the table failed\n");
				return 1;
			}
	} else {
		uint64_t ss = t->sector_size, head_len = ss;
		if (!(t->flags & PART_GPT_BACKUP_USED)) {
			uint64_t array = (uint64_t)t->n_gpt_entries * t->gpt_entry_size;
			head_len = t->entries_lba * ss + (array + ss - 1) / ss * ss;
		}
		uint8_t *head = malloc(head_len);
		if (!head || xpread_full(in, head, head_len, 0) != (ssize_t)head_len) {
			fprintf(stderr, "partmap: cannot read the first %" PRIu64 " bytes\n", head_len);
			return 1;
		}
		struct imago_err err = { 0 };
		int rc = gpt_relocate(t, head, head_len, new_size, write_out, &out, &err);
		free(head);
		if (rc < 0) {
			fprintf(stderr, "partmap: %s (%s)\n", err.msg, strerror(-rc));
			return 1;
		}
	}
	if (fsync(out) < 0 || close(out) < 0) {
		fprintf(stderr, "partmap: %s: %s\n", out_path, strerror(errno));
		return 1;
	}
	printf("relocated %s %" PRIu64 "\n", out_path, new_size);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t sector_size = 0, new_size = 0;
	const char *out_path = NULL;
	static const struct option opts[] = {
		{ "sector-size", required_argument, NULL, 's' },
		{ "relocate", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	int c, have_ss = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (parse_size(optarg, &sector_size) < 0 || sector_size > 65536)
				return 2;
			have_ss = 1;
			break;
		case 'r':
			if (parse_size(optarg, &new_size) < 0 || optind >= argc)
				return 2;
			out_path = argv[optind++];
			break;
		default:
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: partmap [--sector-size N] [--relocate SIZE OUT] FILE\n");
		return 2;
	}
	const char *path = argv[optind];
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "partmap: %s: %s\n", path, strerror(errno));
		return 1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		fprintf(stderr, "partmap: %s: %s\n", path, strerror(errno));
		return 1;
	}
	uint64_t size = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode)) {
		off_t e = lseek(fd, 0, SEEK_END);
		size = e > 0 ? (uint64_t)e : 0;
		int bs = 0;
		if (!have_ss && ioctl(fd, BLKSSZGET, &bs) == 0 && bs > 0)
			sector_size = (uint64_t)bs;
	}
	struct region r = region_fd(fd, 0, size, path);
	static struct part_table t;
	struct imago_err err = { 0 };
	int rc = part_read(&r, (uint32_t)sector_size, &t, &err);
	if (rc < 0) {
		fprintf(stderr, "partmap: %s (%s)\n", err.msg, strerror(-rc));
		return 1;
	}
	print_table(&t);
	fflush(stdout);
	if (out_path)
		rc = relocate(fd, &t, new_size, out_path);
	close(fd);
	return rc;
}
