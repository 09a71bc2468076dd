/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * What a rescue lost: for each byte range the map does not have as finished, who owned
 * it. On ext2/3/4 (through libext2fs, on the rescued copy) the files and directories by
 * path, the filesystem's own metadata (inode tables, bitmaps) and free space; elsewhere
 * the byte ranges with the partition they fall in (lib/part).
 */
#ifndef IMAGO_RESCUE_REPORT_H
#define IMAGO_RESCUE_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "imago.h"
#include "io/region.h"
#include "rescue/map.h"

enum rr_kind {
	RR_FILE,      /* a file (or symlink, device...) owns the bytes */
	RR_DIR,       /* a directory owns them */
	RR_META,      /* filesystem metadata (path holds what) */
	RR_FREE,      /* free space of the filesystem: nothing lost */
	RR_RANGE,     /* unknown owner: the bytes themselves */
};

struct rr_entry {
	enum rr_kind kind;
	int part;            /* partition number (0: a bare filesystem; -1: outside any) */
	const char *fs;      /* "ext4" ..., or NULL */
	uint64_t ino;        /* RR_FILE/RR_DIR */
	char *path;          /* RR_FILE/RR_DIR path, RR_META description, else NULL */
	uint64_t offset;     /* first lost byte (from the disk start) */
	uint64_t bytes;      /* lost bytes it owns */
};

#define RR_MAX_ENTRIES 100000

struct rescue_report {
	struct rr_entry *v;
	size_t n, cap;
	int truncated;       /* more than RR_MAX_ENTRIES */
	uint64_t lost_bytes; /* bytes not finished in the map */
};

/* disk: the rescued copy (unreadable bytes read as whatever the copy holds, zeros in a
 * new file); m: the rescue map. */
int rescue_report_build(const struct region *disk, uint32_t sector_size,
			const struct rescue_map *m, struct rescue_report *rep,
			struct imago_err *err);
void rescue_report_print(const struct rescue_report *rep, FILE *f);
void rescue_report_free(struct rescue_report *rep);

#endif
