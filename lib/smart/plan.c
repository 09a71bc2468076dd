// SPDX-License-Identifier: GPL-3.0-or-later
#include "smart/plan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/zero.h"

__attribute__((format(printf, 2, 3)))
static void warn(struct smart_plan *p, const char *fmt, ...)
{
	if (p->nwarnings >= PLAN_MAX_WARNINGS)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->warnings[p->nwarnings++], sizeof(p->warnings[0]), fmt, ap);
	va_end(ap);
}

int plan_part_unsafe(const struct plan_part *pp)
{
	return pp->driver && (pp->facts.flags & (FS_DIRTY | FS_NEEDS_RECOVERY | FS_HIBERNATED));
}

static const char *part_label(const struct plan_part *pp, char *buf, size_t len)
{
	if (pp->entry.number == 0)
		snprintf(buf, len, "the filesystem");
	else
		snprintf(buf, len, "partition %u", pp->entry.number);
	return buf;
}

/* Read one partition's filesystem and mark its FREE bytes in the disk map. */
static int plan_fs(const struct region *disk, struct smart_plan *p, struct plan_part *pp,
		   unsigned flags)
{
	char what[32];
	struct region r = region_sub(disk, pp->entry.start, pp->entry.size);
	pp->driver = fs_probe(&r);
	if (!pp->driver) {
		pp->status = PLAN_FS_UNKNOWN;
		return 0;
	}
	struct extent_map m;
	if (extent_map_init(&m, r.size, IMAGO_USED) < 0)
		return -ENOMEM;
	struct imago_err e = { 0 };
	int rc = pp->driver->read_map(&r, &m, &pp->facts, &e);
	part_label(pp, what, sizeof(what));
	if (rc == -ENOMEM) {
		extent_map_free(&m);
		return rc;
	}
	if (rc < 0) {
		pp->status = PLAN_FS_FAILED;
		snprintf(pp->message, sizeof(pp->message), "%s", e.msg[0] ? e.msg : strerror(-rc));
		warn(p, "%s (%s): cannot read its allocation map (%s): copied whole", what,
		     pp->driver->name, pp->message);
		extent_map_free(&m);
		return 0;
	}
	unsigned bad = pp->facts.flags & (FS_DIRTY | FS_NEEDS_RECOVERY | FS_HIBERNATED);
	if (bad && ((bad & (FS_NEEDS_RECOVERY | FS_HIBERNATED)) || !(flags & PLAN_TRUST_UNSAFE))) {
		pp->status = PLAN_FS_UNSAFE;
		snprintf(pp->message, sizeof(pp->message), "%s",
			 pp->facts.state[0] ? pp->facts.state
			 : bad & FS_HIBERNATED ? "hibernated"
			 : bad & FS_NEEDS_RECOVERY ? "needs journal recovery"
			 : "not cleanly unmounted");
		extent_map_free(&m);
		return 0;
	}
	for (size_t i = 0; i < m.n; i++) {
		if (m.v[i].state != IMAGO_FREE)
			continue;
		rc = extent_map_set(&p->map, pp->entry.start + m.v[i].offset, m.v[i].length, IMAGO_FREE);
		if (rc < 0) {
			extent_map_free(&m);
			return rc;
		}
		pp->free_bytes += m.v[i].length;
	}
	pp->status = PLAN_FS_OK;
	extent_map_free(&m);
	return 0;
}

/* Keep the map under PLAN_MAX_RUNS by turning the smallest FREE gaps back into USED
 * (one pass per doubling of the gap size, rewriting the runs in place). */
static void coarsen(struct extent_map *m)
{
	for (uint64_t min = 4096; m->n > PLAN_MAX_RUNS; min *= 2) {
		size_t k = 0;
		for (size_t i = 0; i < m->n; i++) {
			struct imago_extent e = m->v[i];
			if (e.state == IMAGO_FREE && e.length < min)
				e.state = IMAGO_USED;
			if (k && m->v[k - 1].state == e.state)
				m->v[k - 1].length += e.length;
			else
				m->v[k++] = e;
		}
		m->n = k;
	}
}

int smart_plan_build(const struct region *disk, uint32_t sector_size, unsigned flags,
		     struct smart_plan *p, struct imago_err *err)
{
	memset(p, 0, sizeof(*p));
	int r;
	if (!(p->table = calloc(1, sizeof(*p->table))))
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	if ((r = extent_map_init(&p->map, disk->size, IMAGO_USED)) < 0)
		goto nomem;
	struct imago_err e = { 0 };
	r = part_read(disk, sector_size, p->table, &e);
	if (r == -ENOMEM)
		goto nomem;
	if (r == -EIO) {
		err_set(err, r, -1, e.dev_offset, -1, "%s", e.msg[0] ? e.msg : "cannot read the disk");
		smart_plan_free(p);
		return r;
	}
	if (r < 0) {
		warn(p, "partition table: %s: the whole disk is copied", e.msg[0] ? e.msg : strerror(-r));
		memset(p->table, 0, sizeof(*p->table));
		p->table->disk_size = disk->size;
		p->whole_disk = 1;
		return 0;
	}
	for (size_t i = 0; i < p->table->n_warnings; i++)
		warn(p, "partition table: %s", p->table->warnings[i]);

	if (p->table->scheme == PART_NONE) {
		/* A bare filesystem (a partition device, a filesystem image) or nothing known. */
		if (!(p->parts = calloc(1, sizeof(*p->parts))))
			goto nomem;
		p->nparts = 1;
		p->parts[0].entry.start = 0;
		p->parts[0].entry.size = disk->size;
		if (!(flags & PLAN_NO_FS) && (r = plan_fs(disk, p, &p->parts[0], flags)) < 0)
			goto nomem;
		if (p->parts[0].status == PLAN_FS_UNKNOWN) {
			p->nparts = 0;
		}
		goto done;
	}
	if (!(p->parts = calloc(p->table->n_entries ? p->table->n_entries : 1, sizeof(*p->parts))))
		goto nomem;
	p->nparts = p->table->n_entries;
	int odd = part_table_is_odd(p->table);
	if (odd) {
		warn(p, "partition layout is odd (overlapping partitions or partitions past the end "
			"of the disk): the whole disk is copied");
		p->whole_disk = 1;
	}
	for (size_t i = 0; i < p->nparts; i++) {
		struct plan_part *pp = &p->parts[i];
		pp->entry = p->table->entries[i];
		if (pp->entry.flags & PART_EXTENDED) {
			pp->status = PLAN_FS_CONTAINER;
			continue;
		}
		if (odd || (flags & PLAN_NO_FS) || pp->entry.start >= disk->size ||
		    pp->entry.size > disk->size - pp->entry.start) {
			pp->status = PLAN_FS_UNKNOWN;
			continue;
		}
		if ((r = plan_fs(disk, p, pp, flags)) < 0)
			goto nomem;
	}
	/* The table's own sectors (MBR, EBRs, both GPTs) are always kept. */
	for (size_t i = 0; i < p->table->n_areas; i++)
		if ((r = extent_map_set(&p->map, p->table->areas[i].start, p->table->areas[i].size,
					IMAGO_USED)) < 0)
			goto nomem;
done:
	for (size_t i = 0; i < p->nparts; i++) {
		char what[32];
		if (p->parts[i].status == PLAN_FS_UNSAFE)
			warn(p, "%s (%s): %s: copied whole", part_label(&p->parts[i], what, sizeof(what)),
			     p->parts[i].facts.type, p->parts[i].message);
	}
	coarsen(&p->map);
	return 0;
nomem:
	smart_plan_free(p);
	return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
}

void smart_plan_free(struct smart_plan *p)
{
	free(p->table);
	free(p->parts);
	extent_map_free(&p->map);
	memset(p, 0, sizeof(*p));
}

int plan_in_table_area(const struct part_table *t, uint64_t off, uint64_t len)
{
	for (size_t i = 0; i < t->n_areas; i++)
		if (off >= t->areas[i].start && off + len <= t->areas[i].start + t->areas[i].size)
			return 1;
	return 0;
}

int plan_last_data_end(const struct region *disk, const struct smart_plan *p, uint64_t from,
		       uint64_t to, uint64_t *end, struct imago_err *err)
{
	enum { PIECE = 1 << 20, SECTOR = 512 };
	uint8_t *buf = malloc(PIECE);
	if (!buf)
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	uint64_t last = 0;
	int rc = 0;
	for (uint64_t off = from; off < to;) {
		size_t n = to - off < PIECE ? (size_t)(to - off) : PIECE;
		ssize_t r = region_pread(disk, buf, n, off);
		if (r <= 0) {
			rc = err_set(err, r < 0 ? (int)r : -EIO, -1, (int64_t)off, -1,
				     "%s: cannot read byte %llu, after the partitions: %s", disk->name,
				     (unsigned long long)off, r < 0 ? strerror((int)-r) : "short read");
			break;
		}
		for (size_t i = 0; i < (size_t)r; i += SECTOR) {
			size_t len = (size_t)r - i < SECTOR ? (size_t)r - i : SECTOR;
			if (!plan_in_table_area(p->table, off + i, len) &&
			    extent_map_state_at(&p->map, off + i) != IMAGO_FREE &&
			    !buf_is_zero(buf + i, len))
				last = off + i + len;
		}
		off += (uint64_t)r;
	}
	free(buf);
	*end = last;
	return rc;
}
