/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The FUSE file system of `imago mount`: a directory holding `disk` (the whole device)
 * and one file per partition (`p1`, `p2`, ... numbered as Linux numbers them), over any
 * backend (lib/backend/backend.h). Read-only unless the backend can write (an overlay).
 */
#ifndef IMAGO_MOUNT_MOUNT_FS_H
#define IMAGO_MOUNT_MOUNT_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "backend/backend.h"
#include "part/part.h"

struct mount_file {
	char name[16];
	uint64_t start, size;
};

struct mount_fs {
	struct backend *b;
	bool writable;
	bool foreground;             /* errors to stderr; otherwise to syslog */
	time_t mtime;
	struct mount_file files[PART_MAX_ENTRIES + 1];
	size_t nfiles;
	/* called in the serving process once it is set up (after daemonizing), before the
	 * first request: where threads may start */
	void (*ready)(void *opaque);
	void *ready_opaque;
};

/* Fill fs->files from the backend's partition table: `disk`, then pN for every
 * partition that is not an extended container, clipped to the disk. A table that cannot
 * be read leaves only `disk`; *warning then says why (else it is set to ""). */
void mount_fs_list(struct mount_fs *fs, char *warning, size_t wlen);

/* Mount at dir and serve until unmounted (or SIGINT/SIGTERM). The mount is named
 * "imago:PID:IMAGE" (mount(8) shows it; imago umount waits for PID to end). Unless
 * fs->foreground, a detached child mounts and serves, and the caller gets 0 once the mount
 * is made (or -1 with its reason); otherwise 0 once unmounted. -1 with msg (one line)
 * when the mount could not be made. */
int mount_fs_serve(struct mount_fs *fs, const char *dir, const char *image, char *msg,
		   size_t msglen);

#endif
