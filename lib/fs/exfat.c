// SPDX-License-Identifier: GPL-3.0-or-later
/* Placeholder until the exfat allocation reader lands: recognises nothing, so the region
 * stays USED (always safe). */
#include "fs/fs.h"

#include <errno.h>

static int exfat_probe(const struct region *r)
{
	(void)r;
	return 0;
}

static int exfat_read_map(const struct region *r, struct extent_map *m, struct fs_facts *facts,
			  struct imago_err *err)
{
	(void)r; (void)m; (void)facts; (void)err;
	return -EOPNOTSUPP;
}

const struct fs_driver fs_exfat_driver = {
	.name = "exfat",
	.probe = exfat_probe,
	.read_map = exfat_read_map,
};
