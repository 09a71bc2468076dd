/* SPDX-License-Identifier: GPL-3.0-or-later */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common.h"
#include "device.h"

int device_block_geometry(int fd, uint64_t *size, uint32_t *logical, uint32_t *physical)
{
	uint64_t sz;
	int lss = 0;
	unsigned int pss = 0;
	if (ioctl(fd, BLKGETSIZE64, &sz) < 0)
		return -errno;
	if (ioctl(fd, BLKSSZGET, &lss) < 0 || lss <= 0)
		lss = 512;
	if (ioctl(fd, BLKPBSZGET, &pss) < 0 || pss == 0)
		pss = (unsigned)lss;
	*size = sz;
	*logical = (uint32_t)lss;
	*physical = pss;
	return 0;
}

/* Read a one-line sysfs attribute, trimmed of surrounding blanks; "" when absent. */
static void read_attr(const char *dir, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	buf[0] = '\0';
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return;
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	if (!fgets(buf, (int)len, f))
		buf[0] = '\0';
	fclose(f);
	/* SCSI pads model strings with blanks; keep only printable, trimmed text. */
	size_t n = strlen(buf);
	while (n && isspace((unsigned char)buf[n - 1]))
		buf[--n] = '\0';
	size_t s = 0;
	while (buf[s] && isspace((unsigned char)buf[s]))
		s++;
	memmove(buf, buf + s, n - s + 1);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
}

/* sysfs directory of a block device number (resolved, so ".." is its parent). */
static int sysfs_dir(dev_t rdev, char *out, size_t len)
{
	char link[64];
	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(rdev), minor(rdev));
	char buf[PATH_MAX];
	if (!realpath(link, buf))
		return -errno;
	if ((size_t)snprintf(out, len, "%s", buf) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static void block_identity(struct cli_source *src)
{
	char dir[PATH_MAX];
	if (sysfs_dir(src->st.st_rdev, dir, sizeof(dir)) < 0)
		return;
	/* A partition has no device/ of its own: its disk (the parent) has the identity. */
	char probe[PATH_MAX + 16];
	snprintf(probe, sizeof(probe), "%s/partition", dir);
	if (access(probe, F_OK) == 0) {
		char *slash = strrchr(dir, '/');
		if (slash)
			*slash = '\0';
	}
	read_attr(dir, "device/model", src->model, sizeof(src->model));
	if (!src->model[0])
		read_attr(dir, "model", src->model, sizeof(src->model));
	static const char *const serial_attrs[] = {"device/serial", "serial", "device/wwid",
						   "wwid"};
	for (size_t i = 0; i < sizeof(serial_attrs) / sizeof(serial_attrs[0]); i++) {
		read_attr(dir, serial_attrs[i], src->serial, sizeof(src->serial));
		if (src->serial[0])
			break;
	}
}

int device_open_source(const char *path, struct cli_source *src)
{
	memset(src, 0, sizeof(*src));
	src->fd = -1;
	src->path = path;
	if (strcmp(path, "-") == 0) {
		cli_msg("SOURCE - (stdin): a source must be a file or block device, whose size "
			"is known: give its path");
		return EXIT_USAGE;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return cli_sys_fail(errno, "cannot open the source", path, NULL);
	if (fstat(fd, &src->st) < 0) {
		int e = errno;
		close(fd);
		return cli_sys_fail(e, "cannot stat the source", path, NULL);
	}
	if (S_ISREG(src->st.st_mode)) {
		src->size = (uint64_t)src->st.st_size;
		src->logical_sector_size = 512;
		src->physical_sector_size = 512;
	} else if (S_ISBLK(src->st.st_mode)) {
		src->is_block = true;
		int r = device_block_geometry(fd, &src->size, &src->logical_sector_size,
					      &src->physical_sector_size);
		if (r < 0) {
			close(fd);
			return cli_sys_fail(-r, "cannot read the size of the block device", path,
					    NULL);
		}
		block_identity(src);
	} else {
		close(fd);
		cli_msg("%s: not a regular file or block device: give a disk, a partition or "
			"an image file", path);
		return EXIT_USAGE;
	}
	src->fd = fd;
	return 0;
}

void device_close_source(struct cli_source *src)
{
	if (src->fd >= 0)
		close(src->fd);
	src->fd = -1;
}

void device_source_metadata(const struct cli_source *src, const char **kv)
{
	size_t n = 0;
	kv[n++] = "source.path";
	kv[n++] = src->path;
	kv[n++] = "source.kind";
	kv[n++] = src->is_block ? "block" : "file";
	if (src->model[0]) {
		kv[n++] = "source.model";
		kv[n++] = src->model;
	}
	if (src->serial[0]) {
		kv[n++] = "source.serial";
		kv[n++] = src->serial;
	}
	kv[n++] = "mode";
	kv[n++] = "sector";
	kv[n] = NULL;
}

bool device_same(const struct stat *a, const struct stat *b)
{
	if (S_ISBLK(a->st_mode) && S_ISBLK(b->st_mode))
		return a->st_rdev == b->st_rdev;
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* ---------------------------------------------------------------- in-use checks */

#define MAX_DEVS 256

struct devset {
	dev_t dev[MAX_DEVS];
	size_t n;
};

static bool devset_has(const struct devset *s, dev_t d)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->dev[i] == d)
			return true;
	return false;
}

static void devset_add(struct devset *s, dev_t d)
{
	if (s->n < MAX_DEVS && !devset_has(s, d))
		s->dev[s->n++] = d;
}

/* Undo the octal escapes (\040 for a blank) of /proc/self/mountinfo and /proc/swaps. */
static void unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* Does path name a block device in set? */
static bool path_in_set(const char *path, const struct devset *set)
{
	struct stat st;
	if (path[0] != '/' || stat(path, &st) < 0 || !S_ISBLK(st.st_mode))
		return false;
	return devset_has(set, st.st_rdev);
}

/* The device and its partitions; *holder gets the name of a device stacked on top of
 * any of them (device-mapper, md), if there is one. */
static void collect_devs(dev_t rdev, struct devset *set, char *holder, size_t hlen)
{
	devset_add(set, rdev);
	holder[0] = '\0';
	char dir[PATH_MAX];
	if (sysfs_dir(rdev, dir, sizeof(dir)) < 0)
		return;
	const char *base = strrchr(dir, '/');
	base = base ? base + 1 : dir;
	char sub[PATH_MAX + 512];
	/* Holders of the device itself. */
	snprintf(sub, sizeof(sub), "%s/holders", dir);
	DIR *h = opendir(sub);
	if (h) {
		struct dirent *e;
		while ((e = readdir(h)))
			if (e->d_name[0] != '.' && !holder[0])
				snprintf(holder, hlen, "%s", e->d_name);
		closedir(h);
	}
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		/* Partitions are subdirectories named after the disk (sda1, nvme0n1p1). */
		if (strncmp(e->d_name, base, strlen(base)) != 0 || !e->d_name[strlen(base)])
			continue;
		char devattr[64];
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		read_attr(sub, "dev", devattr, sizeof(devattr));
		unsigned ma, mi;
		if (sscanf(devattr, "%u:%u", &ma, &mi) == 2)
			devset_add(set, makedev(ma, mi));
		snprintf(sub, sizeof(sub), "%s/%s/holders", dir, e->d_name);
		h = opendir(sub);
		if (h) {
			struct dirent *he;
			while ((he = readdir(h)))
				if (he->d_name[0] != '.' && !holder[0])
					snprintf(holder, hlen, "%s (on %s)", he->d_name,
						 e->d_name);
			closedir(h);
		}
	}
	closedir(d);
}

/* Mount point of a member of set, or false. */
static bool find_mount(const struct devset *set, char *where, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	char *line = NULL;
	size_t cap = 0;
	bool found = false;
	while (!found && getline(&line, &cap, f) > 0) {
		/* id parent major:minor root mountpoint options... - fstype source opts */
		unsigned ma, mi;
		char mnt[4096];
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &ma, &mi, mnt) != 3)
			continue;
		unescape(mnt);
		bool hit = devset_has(set, makedev(ma, mi));
		/* btrfs and some others report an anonymous device number: check the
		 * mount source too. */
		char *sep = strstr(line, " - ");
		if (!hit && sep) {
			char fstype[256], source[4096];
			if (sscanf(sep + 3, "%255s %4095s", fstype, source) == 2) {
				unescape(source);
				hit = path_in_set(source, set);
			}
		}
		if (hit) {
			snprintf(where, len, "mounted on %s", mnt);
			found = true;
		}
	}
	free(line);
	fclose(f);
	return found;
}

static bool find_swap(const struct devset *set, char *where, size_t len)
{
	FILE *f = fopen("/proc/swaps", "re");
	if (!f)
		return false;
	char *line = NULL;
	size_t cap = 0;
	bool found = false;
	bool header = true;
	while (!found && getline(&line, &cap, f) > 0) {
		if (header) {
			header = false;
			continue;
		}
		char name[4096];
		if (sscanf(line, "%4095s", name) != 1)
			continue;
		unescape(name);
		if (path_in_set(name, set)) {
			snprintf(where, len, "in use as swap (%s)", name);
			found = true;
		}
	}
	free(line);
	fclose(f);
	return found;
}

int device_check_unused(const struct stat *st, const char *path)
{
	if (!S_ISBLK(st->st_mode))
		return 0;
	static struct devset set;
	memset(&set, 0, sizeof(set));
	char holder[600];
	collect_devs(st->st_rdev, &set, holder, sizeof(holder));
	char where[4200];
	if (find_mount(&set, where, sizeof(where))) {
		cli_msg("refusing to write to %s: it (or one of its partitions) is %s: unmount "
			"it first",
			path, where);
		return EXIT_REFUSED;
	}
	if (find_swap(&set, where, sizeof(where))) {
		cli_msg("refusing to write to %s: it (or one of its partitions) is %s: swapoff "
			"it first",
			path, where);
		return EXIT_REFUSED;
	}
	if (holder[0]) {
		cli_msg("refusing to write to %s: it is in use by %s (device-mapper, LVM or "
			"RAID): stop that first",
			path, holder);
		return EXIT_REFUSED;
	}
	return 0;
}

/* Loop devices whose backing file is st (a regular file): added to set. */
static void loops_backed_by(const struct stat *st, struct devset *set)
{
	DIR *d = opendir("/sys/block");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "loop", 4) != 0)
			continue;
		char dir[PATH_MAX], back[PATH_MAX], devattr[64];
		snprintf(dir, sizeof(dir), "/sys/block/%s", e->d_name);
		read_attr(dir, "loop/backing_file", back, sizeof(back));
		struct stat bs;
		if (!back[0] || stat(back, &bs) < 0 || bs.st_dev != st->st_dev || bs.st_ino != st->st_ino)
			continue;
		read_attr(dir, "dev", devattr, sizeof(devattr));
		unsigned ma, mi;
		char holder[8];
		if (sscanf(devattr, "%u:%u", &ma, &mi) == 2)
			collect_devs(makedev(ma, mi), set, holder, sizeof(holder));
	}
	closedir(d);
}

size_t device_source_rw_mounts(const struct cli_source *src, char (*mnt)[4096], size_t max)
{
	static struct devset set;
	memset(&set, 0, sizeof(set));
	char holder[600];
	if (src->is_block)
		collect_devs(src->st.st_rdev, &set, holder, sizeof(holder));
	else
		loops_backed_by(&src->st, &set);
	if (!set.n)
		return 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return 0;
	char *line = NULL;
	size_t cap = 0, n = 0;
	while (n < max && getline(&line, &cap, f) > 0) {
		unsigned ma, mi;
		char where[4096], opts[1024];
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s %1023s", &ma, &mi, where, opts) != 4)
			continue;
		bool hit = devset_has(&set, makedev(ma, mi));
		char *sep = strstr(line, " - ");
		if (!hit && sep) {
			char fstype[256], source[4096];
			if (sscanf(sep + 3, "%255s %4095s", fstype, source) == 2) {
				unescape(source);
				hit = path_in_set(source, &set);
			}
		}
		if (!hit || strncmp(opts, "rw", 2) != 0 || (opts[2] && opts[2] != ','))
			continue;
		unescape(where);
		snprintf(mnt[n++], 4096, "%s", where);
	}
	free(line);
	fclose(f);
	return n;
}
