// SPDX-License-Identifier: GPL-3.0-or-later
/* The filesystem drivers (fs.h), in probing order. */
#include "fs/fs.h"

#include <stddef.h>

extern const struct fs_driver fs_ext_driver;
extern const struct fs_driver fs_ntfs_driver;
extern const struct fs_driver fs_exfat_driver;
extern const struct fs_driver fs_fat_driver;
extern const struct fs_driver fs_xfs_driver;
extern const struct fs_driver fs_btrfs_driver;
extern const struct fs_driver fs_swap_driver;

const struct fs_driver *const fs_drivers[] = {
	&fs_ext_driver,
	&fs_ntfs_driver,
	&fs_exfat_driver,
	&fs_fat_driver,
	&fs_xfs_driver,
	&fs_btrfs_driver,
	&fs_swap_driver,
	NULL,
};

const struct fs_driver *fs_probe(const struct region *r)
{
	const struct fs_driver *best = NULL;
	int best_score = 0;
	for (size_t i = 0; fs_drivers[i]; i++) {
		int s = fs_drivers[i]->probe(r);
		if (s > best_score) {
			best_score = s;
			best = fs_drivers[i];
		}
	}
	return best;
}
