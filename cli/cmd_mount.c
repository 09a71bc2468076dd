/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * imago mount [OPTIONS] IMAGE DIR: show an image's disk and partitions as files under
 * DIR through FUSE (mount/mount_fs.c); imago umount DIR.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/overlay.h"
#include "commands.h"
#include "common.h"
#include "mount/mount_fs.h"

void cmd_mount_help(FILE *f)
{
	fprintf(f, "Usage: imago mount [OPTIONS] IMAGE DIR\n\n"
		   "Show the disk inside IMAGE (an imago image or an E01) as files under DIR,\n"
		   "without restoring it: 'disk' (the whole device) and one file per partition\n"
		   "('p1', 'p2', ...), with their exact sizes, e.g. for\n"
		   "mount -o loop,ro DIR/p1 /mnt . Read-only, unless an overlay takes the writes.\n"
		   "Every chunk read is checked: damaged data reads as an I/O error (EIO), never\n"
		   "as wrong bytes. Unmount with 'imago umount DIR'.\n\n"
		   "  -o, --overlay FILE    writes go to FILE (made when missing), never to the\n"
		   "                        image; FILE can be mounted again later, or deleted.\n"
		   "                        An overlay made for another image is refused.\n"
		   "      --overlay-block-size SIZE  block size of a new overlay (default 4K)\n"
		   "  -f, --foreground      stay in the foreground (errors on stderr); by default\n"
		   "                        imago detaches once the mount is made\n"
		   "      --cache SIZE      decoded chunks kept in memory (default 64M)\n"
		   "  -T, --threads N       chunks decoded in parallel ahead of sequential\n"
		   "                        readers (default: CPUs, at most 8)\n"
		   "  -h, --help            this help\n\n"
		   "Exit status: 0 mounted (and, with --foreground, unmounted again); 1 FUSE is\n"
		   "missing or the mount failed; 2 usage error (DIR is not a directory); 3 the\n"
		   "image is damaged or not an image; 5 refused: DIR is not empty or already a\n"
		   "mount point, or the overlay belongs to another image or is in use.\n");
}

void cmd_umount_help(FILE *f)
{
	fprintf(f, "Usage: imago umount DIR\n\n"
		   "Unmount an image mounted with 'imago mount', and wait (up to 10 s) for its\n"
		   "server to end: writes to an overlay are then on disk and the overlay free.\n\n"
		   "Exit status: 0 unmounted; 1 failed; 2 usage error; 5 refused: DIR is not an\n"
		   "imago mount, or it is busy (a file under it is open or loop-mounted).\n");
}

/* The mount point of an imago mount at dir (realpath), from /proc/self/mountinfo:
 * 1 an imago mount, 2 another mount, 0 none, -errno. For an imago mount, *server is the
 * PID its source names ("imago:PID:IMAGE"), or 0. */
static int mount_kind_pid(const char *dir, pid_t *server)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	char line[4096];
	int kind = 0;
	while (fgets(line, sizeof(line), f)) {
		/* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
		char mp[PATH_MAX], fstype[256], source[64] = "";
		char *sep = strstr(line, " - ");
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 ||
		    sscanf(sep + 3, "%255s %63s", fstype, source) < 1)
			continue;
		/* mountinfo escapes space, tab, newline and backslash as \ooo */
		char un[PATH_MAX];
		size_t k = 0;
		for (const char *p = mp; *p && k + 1 < sizeof(un); p++) {
			if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] && p[3]) {
				un[k++] = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
				p += 3;
			} else {
				un[k++] = *p;
			}
		}
		un[k] = '\0';
		if (strcmp(un, dir) == 0) {
			kind = strcmp(fstype, "fuse.imago") == 0 ? 1 : 2;
			int pid = 0;
			if (server)
				*server = kind == 1 && sscanf(source, "imago:%d:", &pid) == 1 && pid > 0
						  ? (pid_t)pid : 0;
		}
	}
	fclose(f);
	return kind;
}

static int mount_kind(const char *dir)
{
	return mount_kind_pid(dir, NULL);
}

/* After the unmount: wait (up to 10 s) for the server to close the image and the overlay
 * and end, so that the overlay is complete and free when umount returns. */
static void wait_server(pid_t pid)
{
	char path[64], comm[32];
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	for (int i = 0; i < 500; i++) {
		FILE *f = fopen(path, "re");
		if (!f)
			return;
		int same = fgets(comm, sizeof(comm), f) && strncmp(comm, "imago", 5) == 0;
		fclose(f);
		if (!same)
			return; /* ended, and the PID is someone else's now */
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

struct ready_ctx {
	struct backend *lower;
	struct imago_cache_opts cache;
};

/* In the serving process: now the decoder threads may start. */
static void on_ready(void *opaque)
{
	struct ready_ctx *r = opaque;
	imago_image *img = backend_image(r->lower);
	if (img)
		imago_image_set_cache(img, &r->cache);
}

/* DIR must be an empty directory that is not a mount point. 0 or an exit code. */
static int check_dir(const char *dir, char *real)
{
	struct stat st;
	if (stat(dir, &st) < 0)
		return errno == ENOENT ? cli_usage_error("%s: no such directory", dir)
				       : cli_sys_fail(errno, "cannot use the mount point", dir, NULL);
	if (!S_ISDIR(st.st_mode))
		return cli_usage_error("%s: not a directory", dir);
	if (!realpath(dir, real))
		return cli_sys_fail(errno, "cannot resolve", dir, NULL);
	int k = mount_kind(real);
	if (k > 0) {
		cli_msg("%s: already a mount point%s: unmount it first", dir,
			k == 1 ? " (an imago mount)" : "");
		return EXIT_REFUSED;
	}
	DIR *d = opendir(dir);
	if (!d)
		return cli_sys_fail(errno, "cannot read the mount point", dir, NULL);
	struct dirent *de;
	int busy = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			busy = 1;
	closedir(d);
	if (busy) {
		cli_msg("%s: not empty: mounting here would hide its files; use an empty directory",
			dir);
		return EXIT_REFUSED;
	}
	return 0;
}

int cmd_mount(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "overlay", required_argument, NULL, 'o' },
		{ "overlay-block-size", required_argument, NULL, 'B' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "cache", required_argument, NULL, 'C' },
		{ "threads", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *overlay = NULL;
	bool foreground = false;
	uint64_t obs = 0, cache = 0;
	unsigned threads = 0;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:fT:h", lopts, NULL)) != -1) {
		switch (c) {
		case 'o':
			overlay = optarg;
			break;
		case 'B':
			if (cli_parse_size(optarg, &obs) < 0 || obs < OVL_BLOCK_MIN || obs > OVL_BLOCK_MAX ||
			    (obs & (obs - 1)))
				return cli_usage_error("--overlay-block-size: '%s' is not a power of two "
						       "from 512 to 1M", optarg);
			break;
		case 'f':
			foreground = true;
			break;
		case 'C':
			if (cli_parse_size(optarg, &cache) < 0 || cache > (64ull << 30))
				return cli_usage_error("--cache: '%s' is not a size up to 64G", optarg);
			break;
		case 'T':
			if (cli_parse_uint(optarg, 1, 64, &threads) < 0)
				return cli_usage_error("--threads: '%s' is not a number from 1 to 64", optarg);
			break;
		case 'h':
			cmd_mount_help(stdout);
			return EXIT_OK;
		default:
			return cli_getopt_error(c, argv);
		}
	}
	if (argc - optind != 2)
		return cli_usage_error("needs IMAGE and DIR");
	const char *image = argv[optind], *dir = argv[optind + 1];
	char real[PATH_MAX];
	int rc = check_dir(dir, real);
	if (rc)
		return rc;
	if (access("/dev/fuse", R_OK | W_OK) < 0) {
		cli_msg("FUSE is not available (/dev/fuse: %s): load the fuse module (modprobe fuse) "
			"and install fuse3", strerror(errno));
		return EXIT_FAIL;
	}
	if (geteuid() != 0 && access("/usr/bin/fusermount3", X_OK) < 0 &&
	    access("/bin/fusermount3", X_OK) < 0) {
		cli_msg("FUSE is not available to users: fusermount3 is missing (install fuse3)");
		return EXIT_FAIL;
	}

	struct backend *lower = NULL, *b;
	struct imago_err err;
	int r = backend_open(image, &lower, &err);
	if (r < 0)
		return cli_fail(r, &err, image, NULL);
	imago_image *img = backend_image(lower);
	/* No decoder thread before the fork into the background. */
	struct imago_cache_opts quiet = { .flags = IMAGO_CACHE_NO_READAHEAD };
	if (img)
		imago_image_set_cache(img, &quiet);
	b = lower;
	if (overlay) {
		/* A mount of this overlay that was just unmounted may still be closing it. */
		for (int tries = 0;; tries++) {
			r = overlay_open(lower, overlay, OVL_CREATE, (uint32_t)obs, &b, &err);
			if (r != -EBUSY || tries >= 40)
				break;
			struct timespec ts = { 0, 50 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		if (r < 0) {
			backend_close(lower);
			if (r == -EXDEV || r == -EBUSY) {
				cli_msg("%s", err.msg);
				return EXIT_REFUSED;
			}
			return cli_fail(r, &err, overlay, NULL);
		}
	}
	static struct mount_fs fs;
	struct ready_ctx ready = { .lower = lower,
				   .cache = { .cache_bytes = (size_t)cache, .threads = threads } };
	fs.b = b;
	fs.writable = overlay != NULL;
	fs.foreground = foreground;
	fs.ready = on_ready;
	fs.ready_opaque = &ready;
	struct stat st;
	fs.mtime = stat(image, &st) == 0 ? st.st_mtime : time(NULL);
	char warning[700], msg[1024];
	mount_fs_list(&fs, warning, sizeof(warning));
	if (warning[0])
		cli_msg("%s: %s", image, warning);
	char absimg[PATH_MAX];
	r = mount_fs_serve(&fs, real, realpath(image, absimg) ? absimg : image, msg, sizeof(msg));
	backend_close(b);
	if (r < 0) {
		cli_msg("%s", msg);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

int cmd_umount(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lopts, NULL)) != -1) {
		if (c == 'h') {
			cmd_umount_help(stdout);
			return EXIT_OK;
		}
		return cli_getopt_error(c, argv);
	}
	if (argc - optind != 1)
		return cli_usage_error("needs DIR");
	const char *dir = argv[optind];
	char real[PATH_MAX];
	if (!realpath(dir, real)) {
		if (errno == ENOENT)
			return cli_usage_error("%s: no such directory", dir);
		/* a mount whose server died ("Transport endpoint is not connected") cannot
		 * be resolved: take the path as given */
		char cwd[PATH_MAX];
		if (errno != ENOTCONN || (dir[0] != '/' && !getcwd(cwd, sizeof(cwd))) ||
		    (size_t)snprintf(real, sizeof(real), "%s%s%s", dir[0] == '/' ? "" : cwd,
				     dir[0] == '/' ? "" : "/", dir) >= sizeof(real))
			return cli_sys_fail(errno, "cannot resolve", dir, NULL);
	}
	pid_t server = 0;
	int k = mount_kind_pid(real, &server);
	if (k < 0)
		return cli_sys_fail(-k, "cannot read /proc/self/mountinfo", NULL, NULL);
	if (k != 1) {
		cli_msg("%s: not an imago mount", dir);
		return EXIT_REFUSED;
	}
	if (geteuid() == 0) {
		if (umount2(real, 0) < 0) {
			if (errno == EBUSY) {
				cli_msg("%s: busy (a file under it is open or loop-mounted): close it, or "
					"unmount what uses it, first", dir);
				return EXIT_REFUSED;
			}
			return cli_sys_fail(errno, "cannot unmount", dir, NULL);
		}
		if (server)
			wait_server(server);
		return EXIT_OK;
	}
	pid_t pid = fork();
	if (pid < 0)
		return cli_sys_fail(errno, "cannot start fusermount3", NULL, NULL);
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "--", real, (char *)NULL);
		_exit(127);
	}
	int ws;
	if (waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		cli_msg("%s: fusermount3 -u failed (busy, or not yours?)", dir);
		return EXIT_FAIL;
	}
	if (server)
		wait_server(server);
	return EXIT_OK;
}
