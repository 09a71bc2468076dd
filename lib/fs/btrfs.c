// SPDX-License-Identifier: GPL-3.0-or-later
/* Placeholder until the btrfs allocation reader lands: recognises nothing, so the region
 * stays USED (always safe). */
#include "fs/fs.h"

#include <errno.h>

static int btrfs_probe(const struct region *r)
{
	(void)r;
	return 0;
}

static int btrfs_read_map(const struct region *r, struct extent_map *m, struct fs_facts *facts,
			  struct imago_err *err)
{
	(void)r; (void)m; (void)facts; (void)err;
	return -EOPNOTSUPP;
}

const struct fs_driver fs_btrfs_driver = {
	.name = "btrfs",
	.probe = btrfs_probe,
	.read_map = btrfs_read_map,
};
