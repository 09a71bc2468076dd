// SPDX-License-Identifier: GPL-3.0-or-later
#include "target.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "device.h"

int cli_target_refuse_small(const char *target, uint64_t have, uint64_t need)
{
	char h[32], n[32];
	cli_fmt_bytes(have, h, sizeof(h));
	cli_fmt_bytes(need, n, sizeof(n));
	cli_msg("refusing to write to %s: it holds %" PRIu64 " bytes (%s) but the image "
		"needs %" PRIu64 " bytes (%s): use a target of at least %" PRIu64 " bytes",
		target, have, h, need, n, need);
	return EXIT_REFUSED;
}

int cli_target_open(const char *target, bool force, const struct stat *src_st, uint64_t dev_size,
		struct cli_target *t)
{
	memset(t, 0, sizeof(*t));
	t->fd = -1;
	if (stat(target, &t->st) < 0) {
		if (errno != ENOENT)
			return cli_sys_fail(errno, "cannot check TARGET", target, NULL);
		t->fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0666);
		if (t->fd < 0)
			return cli_sys_fail(errno, "cannot create TARGET", target, NULL);
		t->created = true;
		fstat(t->fd, &t->st);
		return 0;
	}
	if (device_same(&t->st, src_st)) {
		cli_msg("refusing to write %s onto itself: choose another TARGET", target);
		return EXIT_REFUSED;
	}
	if (S_ISBLK(t->st.st_mode)) {
		int rc = device_check_unused(&t->st, target);
		if (rc)
			return rc;
		/* O_EXCL on a block device: the kernel refuses it while mounted or opened
		 * exclusively elsewhere, which closes the gap after our checks. */
		t->fd = open(target, O_WRONLY | O_EXCL | O_CLOEXEC);
		if (t->fd < 0) {
			if (errno == EBUSY) {
				cli_msg("refusing to write to %s: it is in use (mounted or held by "
					"another program): stop that first",
					target);
				return EXIT_REFUSED;
			}
			return cli_sys_fail(errno, "cannot open TARGET", target, NULL);
		}
		uint32_t lss, pss;
		int r = device_block_geometry(t->fd, &t->size, &lss, &pss);
		if (r < 0)
			return cli_sys_fail(-r, "cannot read the size of TARGET", target, NULL);
		t->is_block = true;
		if (dev_size && t->size < dev_size)
			return cli_target_refuse_small(target, t->size, dev_size);
		return 0;
	}
	if (!S_ISREG(t->st.st_mode)) {
		cli_msg("%s is not a regular file or block device: give a file or a disk",
			target);
		return EXIT_USAGE;
	}
	if (t->st.st_size > 0 && !force) {
		cli_msg("%s exists and is not empty: refusing to overwrite it: use --force, or "
			"choose another TARGET",
			target);
		return EXIT_REFUSED;
	}
	t->fd = open(target, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (t->fd < 0)
		return cli_sys_fail(errno, "cannot open TARGET", target, NULL);
	/* Emptied first, so every range the restore skips reads as zeros (a hole). */
	if (ftruncate(t->fd, 0) < 0)
		return cli_sys_fail(errno, "cannot truncate TARGET", target, NULL);
	return 0;
}

