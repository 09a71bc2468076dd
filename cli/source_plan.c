// SPDX-License-Identifier: GPL-3.0-or-later
#include "source_plan.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "freeze.h"
#include "plan_show.h"

/* Smart mode: read the partition table and filesystems; refuse what cannot be imaged
 * safely (dirty filesystems, read-write mounts) unless told; freeze on --freeze. */
int source_plan(const struct cli_source *src, const char *output, bool force, bool freeze,
		bool quiet, struct smart_plan *plan)
{
	static char mnt[16][4096];
	size_t nm = device_source_rw_mounts(src, mnt, 16);
	if (nm && freeze) {
		/* Writing the image into a frozen filesystem would wait forever. */
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", output ? output : "-");
		struct stat ds, ms;
		if (output && strcmp(output, "-") != 0 && stat(dirname(dir), &ds) == 0)
			for (size_t i = 0; i < nm; i++)
				if (stat(mnt[i], &ms) == 0 && ms.st_dev == ds.st_dev) {
					cli_msg("refusing to freeze %s: %s is on that filesystem: "
						"write it elsewhere", mnt[i], output);
					return EXIT_REFUSED;
				}
		int rc = freeze_mounts(mnt, nm);
		if (rc)
			return rc;
	} else if (nm && !force) {
		cli_msg("refusing to read %s: a filesystem on it is mounted read-write on %s "
			"(a copy would not be consistent): unmount it or remount it read-only, "
			"or use --freeze (or --force to copy it anyway)",
			src->path, mnt[0]);
		return EXIT_REFUSED;
	} else if (nm) {
		cli_msg("warning: %s is mounted read-write on %s: the copy may not be consistent "
			"(--force)", src->path, mnt[0]);
	}
	struct region r = region_fd(src->fd, 0, src->size, src->path);
	struct imago_err err = { 0 };
	/* A filesystem frozen while mounted is consistent on disk, though it may be marked
	 * not cleanly unmounted (ext2 while mounted): trust its bitmaps then. */
	int rc = smart_plan_build(&r, src->logical_sector_size, nm && freeze ? PLAN_TRUST_UNSAFE : 0,
				  plan, &err);
	if (rc < 0)
		return cli_fail(rc, &err, src->path, "use --sector to copy every sector");
	for (size_t i = 0; i < plan->nparts; i++) {
		const struct plan_part *pp = &plan->parts[i];
		if (pp->status != PLAN_FS_UNSAFE || force)
			continue;
		char what[48];
		if (pp->entry.number)
			snprintf(what, sizeof(what), "partition %u", pp->entry.number);
		else
			snprintf(what, sizeof(what), "the filesystem");
		cli_msg("refusing to read %s: %s (%s) %s: its allocation map cannot be trusted: "
			"mount and unmount it cleanly (or repair it with fsck) first, or use --force "
			"to copy it whole, sector by sector",
			src->path, what, pp->facts.type, pp->message);
		return EXIT_REFUSED;
	}
	if (!quiet)
		plan_warn(plan);
	return 0;
}

