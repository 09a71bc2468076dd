// SPDX-License-Identifier: GPL-3.0-or-later
#include "restore_layout.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "plan_show.h"
#include "util/xio.h"

static ssize_t image_read(void *opaque, void *buf, size_t len, uint64_t off)
{
	return imago_image_pread(opaque, buf, len, off);
}

struct tally {
	const struct restore_layout *l;
	uint64_t write, free, last_used;
};

static int tally_extent(void *opaque, const struct imago_extent *e)
{
	struct tally *t = opaque;
	uint64_t lo = e->offset, hi = e->offset + e->length;
	uint64_t wlo = t->l->win_off, whi = t->l->win_off + t->l->win_len;
	if (lo < wlo)
		lo = wlo;
	if (hi > whi)
		hi = whi;
	if (lo < hi) {
		if (e->state == IMAGO_FREE)
			t->free += hi - lo;
		else if (e->state == IMAGO_USED || e->state == IMAGO_ZERO)
			t->write += hi - lo;
	}
	/* USED bytes past the partitions that are not the backup GPT must fit too. */
	if (e->state == IMAGO_USED && !plan_in_table_area(t->l->plan.table, e->offset, e->length))
		t->last_used = e->offset + e->length;
	return 0;
}

int layout_read(const char *path, int fd, const struct stat *st, unsigned partition,
		struct restore_layout *l)
{
	memset(l, 0, sizeof(*l));
	l->partition = partition;
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode)) {
		if (partition) {
			cli_msg("--partition needs the image as a file (it reads the partition table "
				"first): give its path instead of a pipe");
			return EXIT_USAGE;
		}
		return 0;
	}
	const char *name = strcmp(path, "-") == 0 ? "(stdin)" : path;
	struct imago_err err;
	memset(&err, 0, sizeof(err));
	imago_image *img = NULL;
	/* open_fd reads with pread and does not take the fd: its offset stays 0. */
	int r = imago_image_open_fd(fd, name, &img, &err);
	if (r < 0)
		return cli_fail(r, &err, name, NULL);
	struct imago_info info;
	imago_image_info(img, &info);
	l->dev_size = info.device_size;
	int rc = plan_of_image(img, name, false, &l->plan);
	if (rc) {
		imago_image_close(img);
		return rc;
	}
	l->known = true;
	l->win_off = 0;
	l->win_len = l->dev_size;
	if (partition) {
		const struct plan_part *pp = NULL;
		for (size_t i = 0; i < l->plan.nparts; i++)
			if (l->plan.parts[i].entry.number == partition && partition)
				pp = &l->plan.parts[i];
		if (!pp || (pp->entry.flags & PART_EXTENDED) || pp->entry.start >= l->dev_size ||
		    pp->entry.size > l->dev_size - pp->entry.start) {
			cli_msg("%s has no partition %u%s: see `imago info %s`", name, partition,
				pp ? " that can be restored" : "", name);
			imago_image_close(img);
			return EXIT_USAGE;
		}
		l->win_off = pp->entry.start;
		l->win_len = pp->entry.size;
	}
	struct tally t = { .l = l };
	imago_image_extents(img, tally_extent, &t);
	if (!partition && l->plan.table->scheme != PART_NONE && !part_table_is_odd(l->plan.table)) {
		/* A USED chunk after the partitions may hold only zeros and the backup GPT:
		 * read what lies past them to find the last byte that really holds data. */
		uint64_t m = part_min_disk_size(l->plan.table);
		struct region dr = region_cb(image_read, img, l->dev_size, name);
		struct imago_err e = { 0 };
		if (m && m < t.last_used &&
		    (rc = plan_last_data_end(&dr, &l->plan, m, t.last_used, &t.last_used, &e)) < 0) {
			const struct imago_err *ie = imago_image_error(img);
			rc = cli_fail(rc, ie && ie->code ? ie : &e, name, NULL);
			imago_image_close(img);
			return rc;
		}
	}
	imago_image_close(img);
	l->write_bytes = t.write;
	l->free_bytes = t.free;
	l->last_kept = t.last_used;
	if (partition) {
		l->need = l->win_len;
	} else if (l->plan.table->scheme != PART_NONE && !part_table_is_odd(l->plan.table)) {
		uint64_t m = part_min_disk_size(l->plan.table);
		l->need = m > t.last_used ? m : t.last_used;
		if (!l->need || l->need > l->dev_size)
			l->need = l->dev_size;
	} else {
		l->need = l->dev_size;
	}
	return 0;
}

void layout_free(struct restore_layout *l)
{
	if (l->known)
		smart_plan_free(&l->plan);
	memset(l, 0, sizeof(*l));
}

int layout_fit(struct restore_layout *l, const char *target, bool is_block, uint64_t target_size)
{
	if (!l->known || !is_block)
		return 0;
	if (target_size < l->need) {
		char h[32], n[32];
		cli_fmt_bytes(target_size, h, sizeof(h));
		cli_fmt_bytes(l->need, n, sizeof(n));
		cli_msg("refusing to restore to %s: it holds %" PRIu64 " bytes (%s) but %s needs at "
			"least %" PRIu64 " bytes (%s)%s: use a larger target",
			target, target_size, h,
			l->partition ? "the partition" : "the image's partitions and data", l->need, n,
			l->partition || l->need == l->dev_size ? "" : " (the partitions must fit)");
		return EXIT_REFUSED;
	}
	if (!l->partition && target_size < l->dev_size)
		l->win_len = target_size; /* only FREE/ZERO space and the old backup GPT is cut */
	return 0;
}

void layout_print(FILE *f, const struct restore_layout *l, const char *image, const char *target,
		  bool is_block, uint64_t target_size)
{
	char b1[32], b2[32], b3[32];
	cli_fmt_bytes(l->dev_size, b1, sizeof(b1));
	fprintf(f, "Dry run: nothing is written.\n");
	fprintf(f, "Image:     %s (device %s)\n", image, b1);
	if (is_block) {
		cli_fmt_bytes(target_size, b2, sizeof(b2));
		fprintf(f, "Target:    %s (block device, %s)\n", target, b2);
	} else {
		fprintf(f, "Target:    %s (file)\n", target);
	}
	cli_fmt_bytes(l->win_len, b1, sizeof(b1));
	cli_fmt_bytes(l->write_bytes, b2, sizeof(b2));
	cli_fmt_bytes(l->free_bytes, b3, sizeof(b3));
	if (l->partition)
		fprintf(f, "Restores:  partition %u: image bytes %" PRIu64 "..%" PRIu64
			   " to target bytes 0..%" PRIu64 " (%s)\n",
			l->partition, l->win_off, l->win_off + l->win_len, l->win_len, b1);
	else
		fprintf(f, "Restores:  the whole device, image bytes 0..%" PRIu64 " to the same "
			   "offsets (%s)\n", l->win_len, b1);
	fprintf(f, "Writes:    %s (used and zero ranges); leaves %s of free space alone\n", b2, b3);
	if (!l->partition && is_block && target_size != l->dev_size) {
		if (l->plan.table->scheme == PART_GPT)
			fprintf(f, "GPT:       the backup GPT moves to the target's last sectors "
				   "(%s than the image's device)\n",
				target_size > l->dev_size ? "larger" : "smaller");
		else if (target_size > l->dev_size)
			fprintf(f, "Note:      the target is larger; the space after the image's "
				   "device is left alone\n");
	}
	plan_print(f, &l->plan);
	char n[32];
	cli_fmt_bytes(l->need, n, sizeof(n));
	if (is_block && target_size < l->need)
		fprintf(f, "Fits:      NO: the target needs at least %" PRIu64 " bytes (%s)\n",
			l->need, n);
	else
		fprintf(f, "Fits:      yes (needs at least %" PRIu64 " bytes, %s)\n", l->need, n);
}

static int write_target(void *opaque, const void *buf, size_t len, uint64_t off)
{
	return xpwrite_full(*(int *)opaque, buf, len, off);
}

/* MBR on a smaller target: shorten the extended container to the target's end. */
static int fit_mbr(int fd, const struct part_table *t, const char *target, uint64_t target_size,
		   bool quiet)
{
	uint8_t s0[512];
	if (t->sector_size != 512 && t->sector_size != 4096)
		return 0;
	if (xpread_full(fd, s0, sizeof(s0), 0) != (ssize_t)sizeof(s0))
		return cli_sys_fail(EIO, "cannot read back the MBR", target, NULL);
	int e = mbr_fit_extended(t, s0, target_size);
	if (e == 0)
		return 0;
	if (e < 0) {
		cli_msg("%s: the data was restored, but the extended partition does not fit: fix "
			"its size with sfdisk or fdisk", target);
		return EXIT_FAIL;
	}
	if (xpwrite_full(fd, s0, sizeof(s0), 0) < 0 || fsync(fd) < 0)
		return cli_sys_fail(errno, "cannot write the fitted MBR", target, NULL);
	if (!quiet)
		cli_msg("shortened the extended partition to end with %s (%" PRIu64 " bytes)", target,
			target_size);
	return 0;
}

int layout_fit_table(const char *target, uint64_t target_size, uint64_t dev_size, bool quiet)
{
	if (target_size == dev_size)
		return 0;
	int fd = open(target, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return cli_sys_fail(errno, "cannot reopen TARGET to fit its GPT", target, NULL);
	struct region r = region_fd(fd, 0, target_size, target);
	struct part_table *t = calloc(1, sizeof(*t));
	struct imago_err err;
	memset(&err, 0, sizeof(err));
	int rc = 0;
	if (!t) {
		rc = cli_sys_fail(ENOMEM, "cannot fit the GPT", target, NULL);
		goto out;
	}
	int e = part_read(&r, 0, t, &err);
	if (e >= 0 && t->scheme == PART_MBR && target_size < dev_size) {
		rc = fit_mbr(fd, t, target, target_size, quiet);
		goto out;
	}
	if (e < 0 || t->scheme != PART_GPT)
		goto out; /* no GPT (or not readable here): nothing to move */
	/* The primary GPT: LBA 0 up to the end of its entry array; when only the backup
	 * could be read, LBA 0 alone (gpt_relocate rebuilds the array from the table). */
	size_t head_len = t->flags & PART_GPT_BACKUP_USED
				  ? t->sector_size
				  : (size_t)((t->entries_lba * t->sector_size) +
					     (uint64_t)t->n_gpt_entries * t->gpt_entry_size);
	if (head_len > (64u << 20) || head_len > target_size)
		goto out;
	uint8_t *head = malloc(head_len);
	if (!head || region_read_exact(&r, head, head_len, 0) < 0) {
		free(head);
		rc = cli_sys_fail(EIO, "cannot read back the primary GPT", target, NULL);
		goto out;
	}
	e = gpt_relocate(t, head, head_len, target_size, write_target, &fd, &err);
	free(head);
	if (e < 0) {
		rc = cli_fail(e, &err, target, "the data was restored, but the partition table "
						"does not fit: fix it with sgdisk -e");
		goto out;
	}
	/* (gpt_relocate wipes the old backup header of a grown disk itself, when no
	 * partition covers it.) */
	if (fsync(fd) < 0) {
		rc = cli_sys_fail(errno, "cannot flush TARGET", target, NULL);
		goto out;
	}
	if (!quiet)
		cli_msg("moved the backup GPT to the end of %s (%" PRIu64 " bytes)", target,
			target_size);
out:
	free(t);
	close(fd);
	return rc;
}
