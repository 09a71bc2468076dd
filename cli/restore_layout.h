/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Where a restore writes: the whole device, or one partition (--partition N), onto a
 * target of the same, a larger or a smaller size; whether it fits (the smallest target
 * that works), and fitting a GPT to the target's size afterwards.
 */
#ifndef IMAGO_CLI_RESTORE_LAYOUT_H
#define IMAGO_CLI_RESTORE_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "smart/plan.h"

struct restore_layout {
	bool known;                /* the image is seekable: its plan was read up front */
	uint64_t dev_size;         /* the image's device size */
	struct smart_plan plan;    /* valid when known */
	unsigned partition;        /* --partition N, or 0 for the whole device */
	uint64_t win_off, win_len; /* what is restored (whole device: 0, dev_size) */
	uint64_t need;             /* the smallest target that holds what matters */
	uint64_t write_bytes;      /* USED + ZERO bytes inside the window */
	uint64_t free_bytes;       /* FREE bytes inside the window (left alone) */
	uint64_t last_kept;        /* end of the last USED byte outside the table's areas */
};

/* Read what the restore needs to know from a seekable image (checks its structure);
 * for a pipe, only sets dev_size = 0 and known = false. partition 0 = whole device.
 * 0 or an exit code after a message. */
int layout_read(const char *path, int fd, const struct stat *st, unsigned partition,
		struct restore_layout *l);
void layout_free(struct restore_layout *l);

/* Fit the layout to a target of target_size bytes (block device) or to a file (size 0):
 * sets win_len to what will be written. 0 or EXIT_REFUSED after a message naming the
 * minimum size. */
int layout_fit(struct restore_layout *l, const char *target, bool is_block, uint64_t target_size);

/* --dry-run: print what would be written where. */
void layout_print(FILE *f, const struct restore_layout *l, const char *image, const char *target,
		  bool is_block, uint64_t target_size);

/* After a whole-disk restore or clone onto a device of another size, fit the partition
 * table read back from the target: a GPT's backup moves to the target's end; an MBR's
 * extended partition is shortened to end with a smaller target. 0, or an exit code
 * after a message. */
int layout_fit_table(const char *target, uint64_t target_size, uint64_t dev_size, bool quiet);

#endif
