/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Sources and targets as the kernel sees them: regular files and block devices, their
 * sizes, sector sizes and identity (sysfs), and the safety checks before writing to a
 * device (mounted, swap, held by device-mapper/RAID, the same file as another).
 *
 * Functions returning int here return 0 or an exit code, after printing the message:
 * they are the CLI's eyes, and only the CLI talks to people.
 */
#ifndef IMAGO_CLI_DEVICE_H
#define IMAGO_CLI_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct cli_source {
	int fd;
	const char *path;
	struct stat st;
	bool is_block;
	uint64_t size;
	uint32_t logical_sector_size, physical_sector_size;
	char model[128];
	char serial[128];
};

/* Open path read-only as a source (regular file or block device). */
int device_open_source(const char *path, struct cli_source *src);
void device_close_source(struct cli_source *src);

/* Fill kv with the source.* and mode metadata pairs, NULL-terminated; kv must hold at
 * least 11 pointers. Strings point into src. */
void device_source_metadata(const struct cli_source *src, const char **kv);

/* Size and sector sizes of an open block device. 0 or -errno. */
int device_block_geometry(int fd, uint64_t *size, uint32_t *logical, uint32_t *physical);

/* Refuse (EXIT_REFUSED) a block device st that is mounted, used as swap, or held by
 * another device (device-mapper, RAID), itself or through one of its partitions. */
int device_check_unused(const struct stat *st, const char *path);

/* Mount points of filesystems on the source that are mounted read-write: on the device
 * or its partitions, or, for a regular file, on a loop device backed by it. Up to max
 * paths into mnt (each PATH_MAX bytes); returns how many were found. */
size_t device_source_rw_mounts(const struct cli_source *src, char (*mnt)[4096], size_t max);

/* Same file or same block device. */
bool device_same(const struct stat *a, const struct stat *b);

#endif
