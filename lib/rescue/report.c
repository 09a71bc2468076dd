// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * The lost-data report (report.h). On ext2/3/4 libext2fs does the filesystem work: an
 * inode scan with ext2fs_block_iterate3 maps lost blocks to inodes (data, extent-tree and
 * indirect blocks alike), a walk of every directory names them, and the group
 * descriptors and block bitmap classify what no inode owns.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <ext2fs/ext2fs.h>

#include "fs/ext_io.h"
#include "part/part.h"
#include "rescue/report.h"
#include "util/err.h"

#define MAX_CLASSIFIED_BLOCKS (1u << 20)   /* per partition; the rest are listed as ranges */

struct range {
	uint64_t a, b;
};

static int add(struct rescue_report *rep, enum rr_kind kind, int part, const char *fs,
	       uint64_t ino, const char *path, uint64_t offset, uint64_t bytes)
{
	if (rep->n >= RR_MAX_ENTRIES) {
		rep->truncated = 1;
		return 0;
	}
	if (rep->n == rep->cap) {
		size_t cap = rep->cap ? rep->cap * 2 : 64;
		struct rr_entry *v = realloc(rep->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		rep->v = v;
		rep->cap = cap;
	}
	char *p = NULL;
	if (path && !(p = strdup(path)))
		return -ENOMEM;
	rep->v[rep->n++] = (struct rr_entry){kind, part, fs, ino, p, offset, bytes};
	return 0;
}

/* ---------------------------------------------------------------- ext2/3/4 */

struct hit {
	ext2_ino_t ino;
	int dir;
	uint64_t bytes, first;
};

struct ext_ctx {
	ext2_filsys fs;
	const struct range *lost;   /* partition-relative, sorted */
	size_t nlost;
	uint64_t bs, part_start;
	struct hit *hits;
	size_t nhits, caphits;
	uint64_t *owned;            /* lost blocks an inode owns (unsorted, then sorted) */
	size_t nowned, capowned;
	int oom;
	struct hit cur;
};

/* Lost bytes of block b, and the first lost byte. */
static uint64_t lost_in(const struct ext_ctx *x, uint64_t b, uint64_t *first)
{
	uint64_t a = b * x->bs, e = a + x->bs, sum = 0;
	size_t lo = 0, hi = x->nlost;
	while (lo < hi) {   /* first range ending after a */
		size_t mid = (lo + hi) / 2;
		if (x->lost[mid].b <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < x->nlost && x->lost[i].a < e; i++) {
		uint64_t s = x->lost[i].a > a ? x->lost[i].a : a;
		uint64_t t = x->lost[i].b < e ? x->lost[i].b : e;
		if (!sum)
			*first = s;
		sum += t - s;
	}
	return sum;
}

static int block_cb(ext2_filsys fs, blk64_t *blocknr, e2_blkcnt_t blockcnt, blk64_t ref_blk,
		    int ref_offset, void *priv)
{
	struct ext_ctx *x = priv;
	uint64_t first = 0, n = lost_in(x, *blocknr, &first);
	if (!n)
		return 0;
	if (!x->cur.bytes)
		x->cur.first = first;
	x->cur.bytes += n;
	if (x->nowned < MAX_CLASSIFIED_BLOCKS) {
		if (x->nowned == x->capowned) {
			size_t cap = x->capowned ? x->capowned * 2 : 256;
			uint64_t *v = realloc(x->owned, cap * sizeof(*v));
			if (!v) {
				x->oom = 1;
				return BLOCK_ABORT;
			}
			x->owned = v;
			x->capowned = cap;
		}
		x->owned[x->nowned++] = *blocknr;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct name_ctx {
	struct ext_ctx *x;
	ext2_ino_t dir;
	struct rescue_report *rep;
	int part;
	const char *fsname;
	int err;
};

static struct hit *find_hit(struct ext_ctx *x, ext2_ino_t ino)
{
	size_t lo = 0, hi = x->nhits;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (x->hits[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < x->nhits && x->hits[lo].ino == ino ? &x->hits[lo] : NULL;
}

static int dirent_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *d, int offset,
		     int blocksize, char *buf, void *priv)
{
	struct name_ctx *n = priv;
	unsigned len = ext2fs_dirent_name_len(d);
	if (!d->inode || (len == 1 && d->name[0] == '.') ||
	    (len == 2 && d->name[0] == '.' && d->name[1] == '.'))
		return 0;
	struct hit *h = find_hit(n->x, d->inode);
	if (!h)
		return 0;
	char *dirpath = NULL;
	if (ext2fs_get_pathname(n->x->fs, n->dir, 0, &dirpath) || !dirpath)
		return 0;
	size_t dl = strlen(dirpath);
	char *p = malloc(dl + len + 2);
	if (!p) {
		ext2fs_free_mem(&dirpath);
		n->err = -ENOMEM;
		return DIRENT_ABORT;
	}
	memcpy(p, dirpath, dl);
	size_t k = dl;
	if (!dl || dirpath[dl - 1] != '/')
		p[k++] = '/';
	memcpy(p + k, d->name, len);
	p[k + len] = 0;
	ext2fs_free_mem(&dirpath);
	int r = add(n->rep, h->dir ? RR_DIR : RR_FILE, n->part, n->fsname, h->ino, p,
		    n->x->part_start + h->first, h->bytes);
	free(p);
	h->dir |= 2;   /* named */
	if (r < 0) {
		n->err = r;
		return DIRENT_ABORT;
	}
	return 0;
}

static const char *ext_name(ext2_filsys fs)
{
	if (ext2fs_has_feature_extents(fs->super) || ext2fs_has_feature_flex_bg(fs->super) ||
	    ext2fs_has_feature_64bit(fs->super))
		return "ext4";
	return ext2fs_has_feature_journal(fs->super) ? "ext3" : "ext2";
}

/* 1 when the partition is ext2/3/4 and was reported, 0 when it is not, or -errno. */
static int report_ext(const struct region *r, int part, const struct range *lost, size_t nlost,
		      struct rescue_report *rep)
{
	char name[EXT_IO_NAME_MAX];
	uint16_t magic = 0;
	if (region_pread(r, &magic, 2, 1024 + 56) != 2 || le16toh(magic) != EXT2_SUPER_MAGIC)
		return 0;
	ext_io_name(r, name);
	ext2_filsys fs = NULL;
	if (ext2fs_open2(name, NULL, EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP, 0, 0,
			 &ext_region_io_manager, &fs))
		return 0;
	struct ext_ctx x = {.fs = fs, .lost = lost, .nlost = nlost, .bs = fs->blocksize,
			    .part_start = r->base};
	const char *fsname = ext_name(fs);
	int rc = 0;
	ext2_inode_scan scan;
	if (ext2fs_open_inode_scan(fs, 0, &scan)) {
		ext2fs_close_free(&fs);
		return 0;
	}
	ext2_ino_t ino;
	struct ext2_inode inode;
	for (;;) {
		errcode_t e = ext2fs_get_next_inode(scan, &ino, &inode);
		if (e == EXT2_ET_BAD_BLOCK_IN_INODE_TABLE)
			continue;
		if (e || !ino)
			break;
		if (!inode.i_links_count || inode.i_dtime || !ext2fs_inode_has_valid_blocks2(fs, &inode))
			continue;
		x.cur = (struct hit){.ino = ino, .dir = LINUX_S_ISDIR(inode.i_mode)};
		ext2fs_block_iterate3(fs, ino, BLOCK_FLAG_READ_ONLY, NULL, block_cb, &x);
		if (x.oom) {
			rc = -ENOMEM;
			break;
		}
		if (x.cur.bytes) {
			if (x.nhits == x.caphits) {
				size_t cap = x.caphits ? x.caphits * 2 : 64;
				struct hit *v = realloc(x.hits, cap * sizeof(*v));
				if (!v) {
					rc = -ENOMEM;
					break;
				}
				x.hits = v;
				x.caphits = cap;
			}
			x.hits[x.nhits++] = x.cur;   /* inode order: sorted */
		}
	}
	ext2fs_close_inode_scan(scan);
	/* Name the inodes hit: walk every directory. */
	if (!rc && x.nhits) {
		struct name_ctx n = {.x = &x, .rep = rep, .part = part, .fsname = fsname};
		if (ext2fs_open_inode_scan(fs, 0, &scan) == 0) {
			for (;;) {
				errcode_t e = ext2fs_get_next_inode(scan, &ino, &inode);
				if (e == EXT2_ET_BAD_BLOCK_IN_INODE_TABLE)
					continue;
				if (e || !ino)
					break;
				if (!inode.i_links_count || !LINUX_S_ISDIR(inode.i_mode))
					continue;
				n.dir = ino;
				ext2fs_dir_iterate2(fs, ino, 0, NULL, dirent_cb, &n);
				if (n.err)
					break;
			}
			ext2fs_close_inode_scan(scan);
		}
		rc = n.err;
		for (size_t i = 0; !rc && i < x.nhits; i++) {
			if (x.hits[i].dir & 2)
				continue;
			char *p = NULL;
			/* the root, lost+found, or a file no directory names (orphan) */
			if ((x.hits[i].dir & 1) && !ext2fs_get_pathname(fs, x.hits[i].ino, 0, &p) && p) {
				rc = add(rep, RR_DIR, part, fsname, x.hits[i].ino, p,
					 x.part_start + x.hits[i].first, x.hits[i].bytes);
				ext2fs_free_mem(&p);
			} else {
				rc = add(rep, RR_FILE, part, fsname, x.hits[i].ino, "(no name found)",
					 x.part_start + x.hits[i].first, x.hits[i].bytes);
			}
		}
	}
	/* What no inode owns: inode tables, bitmaps, other metadata, free space. */
	if (!rc) {
		qsort(x.owned, x.nowned, sizeof(uint64_t), cmp_u64);
		int have_bitmap = ext2fs_read_block_bitmap(fs) == 0;
		uint64_t budget = MAX_CLASSIFIED_BLOCKS;
		char what[160] = "", prev[160] = "";
		uint64_t run_first = 0, run_bytes = 0;
		for (size_t i = 0; !rc && i < nlost; i++) {
			uint64_t b0 = lost[i].a / x.bs, b1 = (lost[i].b + x.bs - 1) / x.bs;
			if (b1 - b0 > budget) {
				rc = add(rep, RR_RANGE, part, fsname, 0, NULL, x.part_start + lost[i].a,
					 lost[i].b - lost[i].a);
				continue;
			}
			budget -= b1 - b0;
			for (uint64_t b = b0; !rc && b < b1; b++) {
				if (bsearch(&b, x.owned, x.nowned, sizeof(uint64_t), cmp_u64))
					continue;
				uint64_t first = 0, bytes = lost_in(&x, b, &first);
				if (!bytes)
					continue;
				what[0] = 0;
				dgrp_t g = ext2fs_group_of_blk2(fs, b);
				if (g < fs->group_desc_count) {
					blk64_t it = ext2fs_inode_table_loc(fs, g);
					if (b >= it && b < it + fs->inode_blocks_per_group)
						snprintf(what, sizeof(what),
							 "inode table of group %u (inodes %u-%u)", g,
							 g * fs->super->s_inodes_per_group + 1,
							 (g + 1) * fs->super->s_inodes_per_group);
					else if (b == ext2fs_block_bitmap_loc(fs, g))
						snprintf(what, sizeof(what), "block bitmap of group %u", g);
					else if (b == ext2fs_inode_bitmap_loc(fs, g))
						snprintf(what, sizeof(what), "inode bitmap of group %u", g);
				}
				enum rr_kind k = RR_META;
				if (!what[0]) {
					if (have_bitmap && b >= fs->super->s_first_data_block &&
					    b < ext2fs_blocks_count(fs->super) &&
					    !ext2fs_test_block_bitmap2(fs->block_map, b)) {
						k = RR_FREE;
						snprintf(what, sizeof(what), "free space");
					} else {
						snprintf(what, sizeof(what), "filesystem metadata "
							 "(superblock, descriptors, journal or other)");
					}
				}
				if (run_bytes && strcmp(what, prev) == 0) {
					run_bytes += bytes;
					continue;
				}
				if (run_bytes)
					rc = add(rep, strcmp(prev, "free space") ? RR_META : RR_FREE,
						 part, fsname, 0, prev, run_first, run_bytes);
				(void)k;
				memcpy(prev, what, sizeof(prev));
				run_first = x.part_start + first;
				run_bytes = bytes;
			}
		}
		if (!rc && run_bytes)
			rc = add(rep, strcmp(prev, "free space") ? RR_META : RR_FREE, part, fsname, 0,
				 prev, run_first, run_bytes);
	}
	free(x.hits);
	free(x.owned);
	ext2fs_close_free(&fs);
	return rc < 0 ? rc : 1;
}

/* ---------------------------------------------------------------- partitions */

int rescue_report_build(const struct region *disk, uint32_t sector_size,
			const struct rescue_map *m, struct rescue_report *rep,
			struct imago_err *err)
{
	memset(rep, 0, sizeof(*rep));
	size_t nl = 0;
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].status != RS_FINISHED)
			nl++, rep->lost_bytes += m->v[i].size;
	if (!nl)
		return 0;
	struct part_table *t = calloc(1, sizeof(*t));
	struct range *tmp = calloc(nl, sizeof(*tmp));
	if (!t || !tmp) {
		free(t);
		free(tmp);
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory for the report");
	}
	struct imago_err perr = {0};
	if (part_read(disk, sector_size, t, &perr) < 0)
		t->scheme = PART_NONE;
	int rc = 0;
	size_t nparts = t->scheme == PART_NONE ? 1 : t->n_entries;
	/* Lost bytes outside every partition. */
	for (size_t i = 0; !rc && i < m->n; i++) {
		const struct rescue_block *bl = &m->v[i];
		if (bl->status == RS_FINISHED || t->scheme == PART_NONE)
			continue;
		uint64_t a = bl->pos, e = bl->pos + bl->size;
		while (a < e && !rc) {
			/* the next partition start at or after a, and whether a is inside one */
			uint64_t next = e;
			int inside = 0;
			for (size_t p = 0; p < t->n_entries; p++) {
				const struct part_entry *pe = &t->entries[p];
				if (pe->flags & PART_EXTENDED)
					continue;
				if (a >= pe->start && a < pe->start + pe->size) {
					inside = 1;
					next = pe->start + pe->size < e ? pe->start + pe->size : e;
					break;
				}
				if (pe->start > a && pe->start < next)
					next = pe->start;
			}
			if (!inside)
				rc = add(rep, RR_RANGE, -1, NULL, 0, NULL, a, next - a);
			a = next;
		}
	}
	for (size_t p = 0; !rc && p < nparts; p++) {
		uint64_t ps = 0, pl = disk->size;
		int num = 0;
		if (t->scheme != PART_NONE) {
			if (t->entries[p].flags & PART_EXTENDED)
				continue;
			ps = t->entries[p].start;
			pl = t->entries[p].size;
			num = (int)t->entries[p].number;
		}
		size_t k = 0;
		for (size_t i = 0; i < m->n; i++) {
			const struct rescue_block *bl = &m->v[i];
			if (bl->status == RS_FINISHED)
				continue;
			uint64_t a = bl->pos > ps ? bl->pos : ps;
			uint64_t e = bl->pos + bl->size < ps + pl ? bl->pos + bl->size : ps + pl;
			if (a < e)
				tmp[k++] = (struct range){a - ps, e - ps};
		}
		if (!k)
			continue;
		struct region pr = region_sub(disk, ps, pl);
		int r = report_ext(&pr, num, tmp, k, rep);
		if (r < 0) {
			rc = err_set(err, r, -1, -1, -1, "out of memory for the report");
			break;
		}
		for (size_t i = 0; !r && !rc && i < k; i++)
			rc = add(rep, RR_RANGE, num, NULL, 0, NULL, ps + tmp[i].a, tmp[i].b - tmp[i].a);
	}
	free(t);
	free(tmp);
	if (rc < 0) {
		rescue_report_free(rep);
		return err_set(err, rc, -1, -1, -1, "out of memory for the report");
	}
	return 0;
}

void rescue_report_print(const struct rescue_report *rep, FILE *f)
{
	fprintf(f, "# imago rescue report: %" PRIu64 " bytes could not be read\n", rep->lost_bytes);
	fprintf(f, "# kind\tpartition\tfilesystem\tfirst-lost-byte\tlost-bytes\tinode\twhat\n");
	for (size_t i = 0; i < rep->n; i++) {
		const struct rr_entry *e = &rep->v[i];
		static const char *const kinds[] = {"file", "dir", "metadata", "free", "range"};
		char part[16];
		if (e->part < 0)
			snprintf(part, sizeof(part), "-");
		else
			snprintf(part, sizeof(part), "%d", e->part);
		fprintf(f, "%s\t%s\t%s\t%" PRIu64 "\t%" PRIu64 "\t", kinds[e->kind], part,
			e->fs ? e->fs : "-", e->offset, e->bytes);
		if (e->kind == RR_FILE || e->kind == RR_DIR)
			fprintf(f, "%" PRIu64 "\t%s\n", e->ino, e->path);
		else if (e->kind == RR_RANGE)
			fprintf(f, "-\tbytes %" PRIu64 "-%" PRIu64 "%s\n", e->offset,
				e->offset + e->bytes - 1, e->part < 0 ? " (outside every partition)" : "");
		else
			fprintf(f, "-\t%s%s\n", e->path ? e->path : "",
				e->kind == RR_FREE ? " (nothing lost)" : "");
	}
	if (rep->truncated)
		fprintf(f, "# (more than %u entries: the rest left out)\n", RR_MAX_ENTRIES);
}

void rescue_report_free(struct rescue_report *rep)
{
	for (size_t i = 0; i < rep->n; i++)
		free(rep->v[i].path);
	free(rep->v);
	memset(rep, 0, sizeof(*rep));
}
