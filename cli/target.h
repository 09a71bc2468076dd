/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Opening a TARGET to write a device to (restore, clone), after the safety checks. */
#ifndef IMAGO_CLI_CLI_TARGET_H
#define IMAGO_CLI_CLI_TARGET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

struct cli_target {
	int fd;
	struct stat st;
	bool is_block;
	bool created;       /* we made this file */
	uint64_t size;      /* block device size */
};

/* Open TARGET: a new file is created; an existing non-empty file needs force and is
 * emptied (so skipped ranges read as zeros); a block device must not be in use and must
 * hold need bytes (0: unknown yet). src_st: the source/image, which TARGET must not be.
 * 0 or an exit code after a message. */
int cli_target_open(const char *target, bool force, const struct stat *src_st, uint64_t need,
		struct cli_target *t);

/* "TARGET holds HAVE bytes but NEED are needed": EXIT_REFUSED. */
int cli_target_refuse_small(const char *target, uint64_t have, uint64_t need);

#endif
