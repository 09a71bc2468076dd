// SPDX-License-Identifier: GPL-3.0-or-later
#include "freeze.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common.h"

#define MAX_FROZEN 64
static int frozen[MAX_FROZEN];
static volatile size_t nfrozen;

void freeze_thaw_signal_safe(void)
{
	for (size_t i = 0; i < nfrozen; i++)
		if (frozen[i] >= 0)
			ioctl(frozen[i], FITHAW, 0);
}

void freeze_thaw_all(void)
{
	for (size_t i = 0; i < nfrozen; i++) {
		if (frozen[i] < 0)
			continue;
		ioctl(frozen[i], FITHAW, 0);
		close(frozen[i]);
		frozen[i] = -1;
	}
	nfrozen = 0;
}

int freeze_mounts(char (*mnt)[4096], size_t n)
{
	static int registered;
	if (!registered) {
		atexit(freeze_thaw_all);
		registered = 1;
	}
	for (size_t i = 0; i < n && nfrozen < MAX_FROZEN; i++) {
		int fd = open(mnt[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			freeze_thaw_all();
			return cli_sys_fail(e, "cannot open the mount point to freeze it", mnt[i], NULL);
		}
		if (ioctl(fd, FIFREEZE, 0) < 0) {
			int e = errno;
			close(fd);
			freeze_thaw_all();
			return cli_sys_fail(e, "cannot freeze the filesystem", mnt[i],
					    e == EOPNOTSUPP ? "this filesystem cannot be frozen: unmount it or use --force"
							    : "unmount it, or use --force");
		}
		frozen[nfrozen++] = fd;
	}
	return 0;
}
