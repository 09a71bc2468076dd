// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * The rescue map and GNU ddrescue's mapfile format (map.h). Written by hand: ddrescue
 * is a program, not a library, and the format is a few lines of text.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rescue/map.h"
#include "util/err.h"

int rescue_status_valid(char s)
{
	return s == '?' || s == '*' || s == '/' || s == '-' || s == '+';
}

int rescue_status_index(char s)
{
	switch (s) {
	case '?': return 0;
	case '*': return 1;
	case '/': return 2;
	case '-': return 3;
	case '+': return 4;
	default: return -1;
	}
}

static int map_reserve(struct rescue_map *m, size_t need)
{
	if (need <= m->cap)
		return 0;
	if (need > RESCUE_MAP_MAX_BLOCKS)
		return -E2BIG;
	size_t cap = m->cap ? m->cap : 16;
	while (cap < need)
		cap *= 2;
	struct rescue_block *v = realloc(m->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->v = v;
	m->cap = cap;
	return 0;
}

int rescue_map_init(struct rescue_map *m, uint64_t size)
{
	memset(m, 0, sizeof(*m));
	m->size = size;
	m->current_status = RP_COPYING;
	m->current_pass = 1;
	if (!size)
		return 0;
	int r = map_reserve(m, 16);
	if (r < 0)
		return r;
	m->v[0] = (struct rescue_block){0, size, RS_UNTRIED};
	m->n = 1;
	return 0;
}

void rescue_map_free(struct rescue_map *m)
{
	free(m->v);
	memset(m, 0, sizeof(*m));
}

ptrdiff_t rescue_map_find(const struct rescue_map *m, uint64_t pos)
{
	if (pos >= m->size || !m->n)
		return -1;
	size_t lo = 0, hi = m->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->v[mid].pos <= pos)
			lo = mid;
		else
			hi = mid;
	}
	return (ptrdiff_t)lo;
}

int rescue_map_set(struct rescue_map *m, uint64_t pos, uint64_t len, char status)
{
	if (pos >= m->size || !len)
		return 0;
	if (len > m->size - pos)
		len = m->size - pos;
	uint64_t end = pos + len;
	size_t i = (size_t)rescue_map_find(m, pos);
	size_t j = (size_t)rescue_map_find(m, end - 1);
	/* What replaces v[i..j]: a left remainder, the new block, a right remainder. */
	struct rescue_block nb[3];
	size_t k = 0;
	if (m->v[i].pos < pos)
		nb[k++] = (struct rescue_block){m->v[i].pos, pos - m->v[i].pos, m->v[i].status};
	nb[k++] = (struct rescue_block){pos, len, status};
	uint64_t jend = m->v[j].pos + m->v[j].size;
	if (jend > end)
		nb[k++] = (struct rescue_block){end, jend - end, m->v[j].status};
	/* Coalesce inside nb and with the neighbours i-1 and j+1. */
	size_t first = i, last = j + 1;   /* replace [first, last) */
	if (first > 0 && m->v[first - 1].status == nb[0].status) {
		first--;
		nb[0].pos = m->v[first].pos;
		nb[0].size += m->v[first].size;
	}
	if (last < m->n && m->v[last].status == nb[k - 1].status) {
		nb[k - 1].size += m->v[last].size;
		last++;
	}
	size_t w = 0;
	for (size_t t = 0; t < k; t++) {
		if (w && nb[w - 1].status == nb[t].status)
			nb[w - 1].size += nb[t].size;
		else
			nb[w++] = nb[t];
	}
	size_t old = last - first;
	if (w > old) {
		int r = map_reserve(m, m->n + (w - old));
		if (r < 0)
			return r;
	}
	memmove(&m->v[first + w], &m->v[last], (m->n - last) * sizeof(m->v[0]));
	memcpy(&m->v[first], nb, w * sizeof(nb[0]));
	m->n = m->n - old + w;
	return 0;
}

void rescue_map_totals(const struct rescue_map *m, uint64_t out[5])
{
	memset(out, 0, 5 * sizeof(out[0]));
	for (size_t i = 0; i < m->n; i++) {
		int k = rescue_status_index(m->v[i].status);
		if (k >= 0)
			out[k] += m->v[i].size;
	}
}

int rescue_map_check(const struct rescue_map *m)
{
	uint64_t at = 0;
	for (size_t i = 0; i < m->n; i++) {
		if (m->v[i].pos != at || !m->v[i].size || !rescue_status_valid(m->v[i].status) ||
		    m->v[i].size > m->size - at)
			return 0;
		if (i && m->v[i - 1].status == m->v[i].status)
			return 0;
		at += m->v[i].size;
	}
	return at == m->size;
}

/* ---------------------------------------------------------------- parsing */

/* One C-literal unsigned number (ddrescue reads them with strtoll base 0). */
static int parse_num(const char **p, const char *end, uint64_t *out)
{
	const char *s = *p;
	if (s >= end || *s < '0' || *s > '9')
		return -1;
	unsigned base = 10;
	if (*s == '0' && s + 1 < end && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (s >= end || !((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') ||
				  (*s >= 'A' && *s <= 'F')))
			return -1;
	} else if (*s == '0') {
		base = 8;
	}
	uint64_t v = 0;
	while (s < end) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (*s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			break;
		if (d >= base)
			return -1;
		/* ddrescue positions are signed 64-bit (long long) */
		if (v > ((uint64_t)INT64_MAX - d) / base)
			return -1;
		v = v * base + d;
		s++;
	}
	*p = s;
	*out = v;
	return 0;
}

static void skip_ws(const char **p, const char *end)
{
	while (*p < end && (**p == ' ' || **p == '\t' || **p == '\r'))
		(*p)++;
}

/* The rest of the line must be blank or a comment. */
static int line_rest_ok(const char *p, const char *end)
{
	skip_ws(&p, end);
	return p == end || *p == '#';
}

int rescue_map_parse(const char *text, size_t len, uint64_t size, int clip,
		     struct rescue_map *m, struct imago_err *err)
{
	memset(m, 0, sizeof(*m));
	if (len > RESCUE_MAP_MAX_TEXT)
		return err_set(err, -E2BIG, -1, -1, -1, "mapfile is larger than %u bytes",
			       RESCUE_MAP_MAX_TEXT);
	const char *p = text, *end = text + len;
	unsigned line = 0;
	int have_status = 0;
	uint64_t at = 0;     /* end of the last block */
	int r;
	m->current_status = RP_COPYING;
	m->current_pass = 1;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		line++;
		const char *s = p;
		p = eol < end ? eol + 1 : end;
		skip_ws(&s, eol);
		if (s == eol || *s == '#')
			continue;
		if (memchr(s, '\0', (size_t)(eol - s))) {
			r = err_set(err, -EBADMSG, -1, -1, -1, "mapfile line %u holds a NUL byte", line);
			goto fail;
		}
		uint64_t a, b = 0;
		if (parse_num(&s, eol, &a) < 0) {
			r = err_set(err, -EBADMSG, -1, -1, -1,
				    "mapfile line %u: a number was expected", line);
			goto fail;
		}
		skip_ws(&s, eol);
		if (!have_status) {
			/* status line: current_pos current_status [current_pass] */
			if (s >= eol || !strchr("?*/-FG+", *s)) {
				r = err_set(err, -EBADMSG, -1, -1, -1,
					    "mapfile line %u: bad status line (a position and a phase "
					    "character ?*/-FG+ were expected)", line);
				goto fail;
			}
			m->current_pos = a;
			m->current_status = *s++;
			const char *q = s;
			skip_ws(&q, eol);
			if (q > s && q < eol && *q != '#') {
				uint64_t pass;
				if (parse_num(&q, eol, &pass) < 0 || pass < 1 || pass > 1000000) {
					r = err_set(err, -EBADMSG, -1, -1, -1,
						    "mapfile line %u: bad pass number", line);
					goto fail;
				}
				m->current_pass = (unsigned)pass;
				s = q;
			}
			if (!line_rest_ok(s, eol)) {
				r = err_set(err, -EBADMSG, -1, -1, -1,
					    "mapfile line %u: unexpected text after the status line", line);
				goto fail;
			}
			have_status = 1;
			continue;
		}
		if (parse_num(&s, eol, &b) < 0) {
			r = err_set(err, -EBADMSG, -1, -1, -1,
				    "mapfile line %u: a block size was expected", line);
			goto fail;
		}
		skip_ws(&s, eol);
		if (s >= eol || !rescue_status_valid(*s)) {
			r = err_set(err, -EBADMSG, -1, -1, -1,
				    "mapfile line %u: bad block status (one of ?*/-+ expected)", line);
			goto fail;
		}
		char st = *s++;
		if (s < eol && *s != ' ' && *s != '\t' && *s != '\r' && *s != '#') {
			r = err_set(err, -EBADMSG, -1, -1, -1,
				    "mapfile line %u: bad block status (one of ?*/-+ expected)", line);
			goto fail;
		}
		if (!line_rest_ok(s, eol)) {
			r = err_set(err, -EBADMSG, -1, -1, -1,
				    "mapfile line %u: unexpected text after the block", line);
			goto fail;
		}
		if (b == 0)
			continue;   /* ddrescue never writes empty blocks; harmless */
		if (a < at || (m->n && a != at)) {
			r = err_set(err, -EBADMSG, -1, -1, -1,
				    "mapfile line %u: block at 0x%" PRIX64 " does not follow the "
				    "previous one (which ends at 0x%" PRIX64 ")", line, a, at);
			goto fail;
		}
		if (b > (uint64_t)INT64_MAX - a) {
			r = err_set(err, -EBADMSG, -1, -1, -1,
				    "mapfile line %u: block ends past 2^63", line);
			goto fail;
		}
		/* Bytes before the first block (a rescue domain starting later) are untried. */
		if (!m->n && a > 0) {
			if ((r = map_reserve(m, 1)) < 0)
				goto fail_mem;
			m->v[m->n++] = (struct rescue_block){0, a, RS_UNTRIED};
		}
		if (m->n && m->v[m->n - 1].status == st) {
			m->v[m->n - 1].size += b;
		} else {
			if ((r = map_reserve(m, m->n + 1)) < 0)
				goto fail_mem;
			m->v[m->n++] = (struct rescue_block){a, b, st};
		}
		at = a + b;
	}
	if (!have_status) {
		r = err_set(err, -EBADMSG, -1, -1, -1, "mapfile has no status line (is it a "
			    "ddrescue mapfile?)");
		goto fail;
	}
	if (!size)
		size = at;
	if (at > size) {
		if (!clip) {
			r = err_set(err, -EINVAL, -1, -1, -1,
				    "mapfile covers %" PRIu64 " bytes, more than the source's %" PRIu64,
				    at, size);
			goto fail;
		}
		while (m->n && m->v[m->n - 1].pos >= size)
			m->n--;
		if (m->n)
			m->v[m->n - 1].size = size - m->v[m->n - 1].pos;
		at = size;
	}
	m->size = size;
	if (at < size) {
		if (m->n && m->v[m->n - 1].status == RS_UNTRIED) {
			m->v[m->n - 1].size += size - at;
		} else {
			if ((r = map_reserve(m, m->n + 1)) < 0)
				goto fail_mem;
			m->v[m->n++] = (struct rescue_block){at, size - at, RS_UNTRIED};
		}
	}
	if (m->current_pos > size)
		m->current_pos = size;
	return 0;
fail_mem:
	r = err_set(err, r, -1, -1, -1, r == -E2BIG ? "mapfile has more than %u blocks" :
		    "out of memory reading a mapfile of %u blocks", r == -E2BIG ?
		    RESCUE_MAP_MAX_BLOCKS : (unsigned)m->n);
fail:
	rescue_map_free(m);
	return r;
}

int rescue_map_load(const char *path, uint64_t size, int clip, struct rescue_map *m,
		    struct imago_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, -errno, -1, -1, -1, "cannot open mapfile %s: %s", path,
			       strerror(errno));
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int r = 0;
	for (;;) {
		if (len + 65536 > cap) {
			if (cap >= RESCUE_MAP_MAX_TEXT) {
				r = err_set(err, -E2BIG, -1, -1, -1, "mapfile %s is larger than %u bytes",
					    path, RESCUE_MAP_MAX_TEXT);
				goto out;
			}
			cap = cap ? cap * 2 : 65536 * 2;
			char *nb = realloc(buf, cap);
			if (!nb) {
				r = err_set(err, -ENOMEM, -1, -1, -1, "out of memory reading %s", path);
				goto out;
			}
			buf = nb;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = err_set(err, -errno, -1, -1, -1, "cannot read mapfile %s: %s", path,
				    strerror(errno));
			goto out;
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	r = rescue_map_parse(buf ? buf : "", len, size, clip, m, err);
out:
	free(buf);
	close(fd);
	return r;
}

/* ---------------------------------------------------------------- writing */

int rescue_map_format(const struct rescue_map *m, const char *const *comments, size_t ncomments,
		      char **out, size_t *outlen)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return -ENOMEM;
	fprintf(f, "# Mapfile. Created by imago %s (GNU ddrescue mapfile format)\n",
		IMAGO_VERSION_STRING);
	for (size_t i = 0; i < ncomments; i++)
		fprintf(f, "# %s\n", comments[i]);
	fprintf(f, "# current_pos  current_status  current_pass\n");
	fprintf(f, "0x%08" PRIX64 "     %c               %u\n", m->current_pos,
		m->current_status, m->current_pass);
	fprintf(f, "#      pos        size  status\n");
	for (size_t i = 0; i < m->n; i++)
		fprintf(f, "0x%08" PRIX64 "  0x%08" PRIX64 "  %c\n", m->v[i].pos, m->v[i].size,
			m->v[i].status);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int rescue_map_save(const struct rescue_map *m, const char *path, const char *const *comments,
		    size_t ncomments, struct imago_err *err)
{
	char *text;
	size_t len;
	int r = rescue_map_format(m, comments, ncomments, &text, &len);
	if (r < 0)
		return err_set(err, r, -1, -1, -1, "out of memory writing the mapfile");
	size_t pl = strlen(path);
	char *tmp = malloc(pl + 5);
	if (!tmp) {
		free(text);
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory writing the mapfile");
	}
	memcpy(tmp, path, pl);
	memcpy(tmp + pl, ".tmp", 5);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = err_set(err, -errno, -1, -1, -1, "cannot write mapfile %s: %s", tmp,
			    strerror(errno));
		goto out;
	}
	r = write_all(fd, text, len);
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		r = err_set(err, r, -1, -1, -1, "cannot write mapfile %s: %s", path, strerror(-r));
		goto out;
	}
	/* The rename is durable only once the directory is synced. */
	char *slash = strrchr(tmp, '/');
	const char *dir = ".";
	if (slash) {
		*slash = 0;
		dir = slash == tmp ? "/" : tmp;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
out:
	free(tmp);
	free(text);
	return r;
}

int rescue_map_to_extents(const struct rescue_map *m, struct imago_extent **out, size_t *n)
{
	struct imago_extent *v = malloc((m->n ? m->n : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < m->n; i++) {
		enum imago_state s = m->v[i].status == RS_FINISHED ? IMAGO_USED :
				     m->v[i].status == RS_UNTRIED ? IMAGO_UNTRIED : IMAGO_BAD;
		if (k && v[k - 1].state == s)
			v[k - 1].length += m->v[i].size;
		else
			v[k++] = (struct imago_extent){m->v[i].pos, m->v[i].size, s};
	}
	*out = v;
	*n = k;
	return 0;
}
