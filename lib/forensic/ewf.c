// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * E01 (Expert Witness / EnCase 6 format) through libewf: reading any E01 for the
 * evidence interface, and writing one. libewf does the format (segments, chunk tables,
 * deflate, Adler-32, header and hash sections); this file maps imago's metadata keys to
 * EWF header values and back and turns libewf errors into imago errors.
 *
 * EnCase 6 E01 files written by libewf 20140813 store MD5 and SHA-1 digests; SHA-256 is
 * offered as a hash value but this libewf does not write it to EnCase 6 files, so the
 * SHA-256 travels in the acquisition log (and the native image) instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libewf.h>

#include "forensic/evidence_int.h"
#include "util/err.h"

static const uint8_t ewf_sig[8] = { 'E', 'V', 'F', 0x09, 0x0d, 0x0a, 0xff, 0x00 };

int ewf_is_ewf(const uint8_t *head, size_t len)
{
	return len >= 8 && memcmp(head, ewf_sig, 8) == 0;
}

/* imago key ↔ EWF header value identifier */
static const struct {
	const char *key, *ewf;
} header_map[] = {
	{ "case.number", "case_number" },
	{ "case.evidence", "evidence_number" },
	{ "case.examiner", "examiner_name" },
	{ "case.description", "description" },
	{ "case.notes", "notes" },
	{ "source.model", "model" },
	{ "source.serial", "serial_number" },
	{ "ewf.acquiry_date", "acquiry_date" },
	{ "ewf.system_date", "system_date" },
	{ "ewf.acquiry_os", "acquiry_operating_system" },
	{ "ewf.acquiry_software_version", "acquiry_software_version" },
};
#define N_HEADER (sizeof(header_map) / sizeof(header_map[0]))

/* One line from a libewf error, then free it. */
static int ewf_fail(libewf_error_t **e, struct imago_err *err, int code, const char *name,
		    const char *what)
{
	char msg[256] = "";
	if (e && *e) {
		libewf_error_sprint(*e, msg, sizeof(msg));
		libewf_error_free(e);
		/* libewf prints a backtrace, one call per line: keep the first line. */
		char *nl = strchr(msg, '\n');
		if (nl)
			*nl = 0;
	}
	return err_set(err, code, -1, -1, -1, "%s: %s%s%s", name, what, msg[0] ? ": " : "", msg);
}

static void hex_of(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

#define EWF_MAX_ERRORS 1000000u

int ewf_open(struct imago_evidence *ev, const char *path, struct imago_err *err)
{
	libewf_error_t *e = NULL;
	libewf_handle_t *h = NULL;
	char **names = NULL;
	int nnames = 0;
	int r;
	if (libewf_handle_initialize(&h, &e) != 1)
		return ewf_fail(&e, err, -ENOMEM, path, "cannot start libewf");
	ev->ewf = h;
	/* The other segments (NAME.E02 ...) are found from the first one's name; a name
	 * without an E01 extension (a memfd, a renamed file) opens as one segment. */
	if (libewf_glob(path, strlen(path), LIBEWF_FORMAT_UNKNOWN, &names, &nnames, &e) != 1 ||
	    nnames < 1) {
		libewf_error_free(&e);
		names = NULL;
		nnames = 0;
	}
	char *one[1] = { (char *)path };
	int ok = libewf_handle_open(h, names ? names : one, names ? nnames : 1, LIBEWF_OPEN_READ, &e);
	if (names)
		libewf_glob_free(names, nnames, NULL);
	if (ok != 1)
		return ewf_fail(&e, err, -EBADMSG, path, "not a readable E01");
	size64_t msize = 0;
	uint32_t bps = 0;
	if (libewf_handle_get_media_size(h, &msize, &e) != 1 ||
	    libewf_handle_get_bytes_per_sector(h, &bps, &e) != 1)
		return ewf_fail(&e, err, -EBADMSG, path, "E01 media values are unreadable");
	if (bps < 1 || bps > 65536 || msize > (UINT64_MAX >> 2))
		return err_set(err, -EBADMSG, -1, -1, -1, "%s: E01 media values are out of range "
			       "(%u bytes per sector, %llu bytes)", path, bps, (unsigned long long)msize);
	ev->size = msize;
	ev->sector_size = bps;
	for (size_t i = 0; i < N_HEADER; i++) {
		uint8_t val[1024];
		const char *id = header_map[i].ewf;
		int g = libewf_handle_get_utf8_header_value(h, (const uint8_t *)id, strlen(id), val,
							     sizeof(val), &e);
		libewf_error_free(&e);
		if (g == 1 && val[0] && (r = ev_meta_add(ev, header_map[i].key, (char *)val)) < 0)
			return err_set(err, r, -1, -1, -1, "out of memory");
	}
	uint8_t md5[16], sha1[20];
	if (libewf_handle_get_md5_hash(h, md5, sizeof(md5), &e) == 1) {
		hex_of(md5, 16, ev->stored.md5);
		ev->stored.algs |= IMAGO_HASH_MD5;
	}
	libewf_error_free(&e);
	if (libewf_handle_get_sha1_hash(h, sha1, sizeof(sha1), &e) == 1) {
		hex_of(sha1, 20, ev->stored.sha1);
		ev->stored.algs |= IMAGO_HASH_SHA1;
	}
	libewf_error_free(&e);
	uint8_t sha256[80];
	if (libewf_handle_get_utf8_hash_value(h, (const uint8_t *)"SHA256", 6, sha256, sizeof(sha256),
					      &e) == 1 && strlen((char *)sha256) == 64) {
		memcpy(ev->stored.sha256, sha256, 65);
		ev->stored.algs |= IMAGO_HASH_SHA256;
	}
	libewf_error_free(&e);
	uint32_t nerr = 0;
	if (libewf_handle_get_number_of_acquiry_errors(h, &nerr, &e) != 1)
		nerr = 0;
	libewf_error_free(&e);
	if (nerr > EWF_MAX_ERRORS)
		return err_set(err, -EBADMSG, -1, -1, -1, "%s: E01 lists %u acquiry errors, more than "
			       "%u", path, nerr, EWF_MAX_ERRORS);
	for (uint32_t i = 0; i < nerr; i++) {
		uint64_t first = 0, count = 0;
		if (libewf_handle_get_acquiry_error(h, i, &first, &count, &e) != 1) {
			libewf_error_free(&e);
			continue;
		}
		uint64_t off = first * bps, len = count * bps;
		if (first > msize / bps || count > msize / bps || off > msize)
			continue; /* nonsense: outside the media */
		if (len > msize - off)
			len = msize - off;
		if (len && (r = ev_bad_add(ev, off, len)) < 0)
			return err_set(err, r, -1, -1, -1, "out of memory");
	}
	if ((r = ev_meta_add(ev, "source.size", "")) < 0) /* placeholder replaced below */
		return err_set(err, r, -1, -1, -1, "out of memory");
	char sz[24];
	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)msize);
	free(ev->meta[2 * ev->nmeta - 1]);
	if (!(ev->meta[2 * ev->nmeta - 1] = strdup(sz)))
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	return 0;
}

ssize_t ewf_pread(struct imago_evidence *ev, void *buf, size_t len, uint64_t off)
{
	libewf_error_t *e = NULL;
	if (off >= ev->size)
		return 0;
	if (len > ev->size - off)
		len = (size_t)(ev->size - off);
	pthread_mutex_lock(&ev->lock);
	ssize_t n = libewf_handle_read_random(ev->ewf, buf, len, (off64_t)off, &e);
	if (n < 0) {
		ewf_fail(&e, &ev->err, -EBADMSG, ev->name, "cannot read the E01");
		ev->err.dev_offset = (int64_t)off;
	}
	pthread_mutex_unlock(&ev->lock);
	return n < 0 ? -EBADMSG : n;
}

uint64_t ewf_damaged(struct imago_evidence *ev)
{
	libewf_error_t *e = NULL;
	uint32_t n = 0;
	pthread_mutex_lock(&ev->lock);
	if (libewf_handle_get_number_of_checksum_errors(ev->ewf, &n, &e) != 1)
		n = 0;
	libewf_error_free(&e);
	pthread_mutex_unlock(&ev->lock);
	return n;
}

void ewf_close(struct imago_evidence *ev)
{
	libewf_handle_t *h = ev->ewf;
	if (!h)
		return;
	libewf_handle_close(h, NULL);
	libewf_handle_free(&h, NULL);
	ev->ewf = NULL;
}

/* ---------------------------------------------------------------- writer */

struct imago_ewf_writer {
	libewf_handle_t *h;
	char *name;
	uint64_t size, written;
	uint32_t bps;
};

void imago_ewf_abort(imago_ewf_writer *w)
{
	if (!w)
		return;
	libewf_handle_close(w->h, NULL);
	libewf_handle_free(&w->h, NULL);
	free(w->name);
	free(w);
}

static const char *kv_get(const char *const *kv, const char *key)
{
	for (; kv && kv[0] && kv[1]; kv += 2)
		if (strcmp(kv[0], key) == 0)
			return kv[1];
	return NULL;
}

int imago_ewf_create(const struct imago_ewf_opts *o, imago_ewf_writer **out, struct imago_err *err)
{
	err_clear(err);
	*out = NULL;
	uint32_t bps = o->sector_size ? o->sector_size : 512;
	if (bps < 512 || bps > 65536 || (bps & (bps - 1)))
		return err_set(err, -EINVAL, -1, -1, -1, "%s: sector size %u cannot be written to an "
			       "E01", o->path, bps);
	if (o->size % bps)
		return err_set(err, -EOPNOTSUPP, -1, -1, -1,
			       "%s: an E01 holds whole sectors; the source's %llu bytes are not a "
			       "multiple of %u", o->path, (unsigned long long)o->size, bps);
	if (o->level < 0 || o->level > 2)
		return err_set(err, -EINVAL, -1, -1, -1, "E01 compression must be 0, 1 or 2");
	struct imago_ewf_writer *w = calloc(1, sizeof(*w));
	if (!w || !(w->name = strdup(o->path))) {
		free(w);
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	}
	w->size = o->size;
	w->bps = bps;
	libewf_error_t *e = NULL;
	int r;
	if (libewf_handle_initialize(&w->h, &e) != 1) {
		r = ewf_fail(&e, err, -ENOMEM, o->path, "cannot start libewf");
		free(w->name);
		free(w);
		return r;
	}
	/* libewf names the segments itself: BASE.E01, BASE.E02, ... */
	char *base = strdup(o->path);
	if (!base) {
		r = err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
		goto fail;
	}
	size_t bl = strlen(base);
	if (bl > 4 && strcasecmp(base + bl - 4, ".E01") == 0)
		base[bl - 4] = 0;
	char *names[1] = { base };
	int8_t level = o->level == 0 ? LIBEWF_COMPRESSION_NONE
		       : o->level == 2 ? LIBEWF_COMPRESSION_BEST : LIBEWF_COMPRESSION_FAST;
	int opened = libewf_handle_open(w->h, names, 1, LIBEWF_OPEN_WRITE, &e);
	free(base);
	if (opened != 1) {
		r = ewf_fail(&e, err, -EIO, o->path, "cannot create the E01");
		goto fail;
	}
	if (libewf_handle_set_format(w->h, LIBEWF_FORMAT_ENCASE6, &e) != 1 ||
	    libewf_handle_set_media_size(w->h, o->size, &e) != 1 ||
	    libewf_handle_set_bytes_per_sector(w->h, bps, &e) != 1 ||
	    libewf_handle_set_media_type(w->h, LIBEWF_MEDIA_TYPE_FIXED, &e) != 1 ||
	    libewf_handle_set_media_flags(w->h, LIBEWF_MEDIA_FLAG_PHYSICAL, &e) != 1 ||
	    libewf_handle_set_compression_values(w->h, level,
						 LIBEWF_COMPRESS_FLAG_USE_EMPTY_BLOCK_COMPRESSION, &e) != 1 ||
	    (o->segment_size && libewf_handle_set_maximum_segment_size(w->h, o->segment_size, &e) != 1)) {
		r = ewf_fail(&e, err, -EINVAL, o->path, "cannot set the E01 media values");
		goto fail;
	}
	for (size_t i = 0; i < N_HEADER; i++) {
		const char *v = kv_get(o->metadata, header_map[i].key);
		if (!v || !v[0] || strncmp(header_map[i].key, "ewf.", 4) == 0)
			continue;
		const char *id = header_map[i].ewf;
		if (libewf_handle_set_utf8_header_value(w->h, (const uint8_t *)id, strlen(id),
							(const uint8_t *)v, strlen(v), &e) != 1) {
			r = ewf_fail(&e, err, -EINVAL, o->path, "cannot set an E01 header value");
			goto fail;
		}
	}
	static const char sw[] = "imago " IMAGO_VERSION_STRING;
	static const char os[] = "Linux";
	libewf_handle_set_utf8_header_value(w->h, (const uint8_t *)"acquiry_software_version", 24,
					    (const uint8_t *)sw, strlen(sw), NULL);
	libewf_handle_set_utf8_header_value(w->h, (const uint8_t *)"acquiry_operating_system", 24,
					    (const uint8_t *)os, strlen(os), NULL);
	*out = w;
	return 0;
fail:
	imago_ewf_abort(w);
	return r;
}

int imago_ewf_write(imago_ewf_writer *w, const void *buf, size_t len, struct imago_err *err)
{
	libewf_error_t *e = NULL;
	if (len > w->size - w->written)
		return err_set(err, -EINVAL, -1, -1, -1, "%s: more data than the media size", w->name);
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = libewf_handle_write_buffer(w->h, p, len, &e);
		if (n <= 0) {
			int code = -EIO;
			ewf_fail(&e, err, code, w->name, "cannot write the E01");
			err->dev_offset = (int64_t)w->written;
			return code;
		}
		p += n;
		len -= (size_t)n;
		w->written += (uint64_t)n;
	}
	return 0;
}

int imago_ewf_add_error(imago_ewf_writer *w, uint64_t offset, uint64_t length, struct imago_err *err)
{
	libewf_error_t *e = NULL;
	uint64_t first = offset / w->bps, last = (offset + length + w->bps - 1) / w->bps;
	if (libewf_handle_append_acquiry_error(w->h, first, last - first, &e) != 1)
		return ewf_fail(&e, err, -ENOMEM, w->name, "cannot record an acquiry error");
	return 0;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return 0;
}

int imago_ewf_finish(imago_ewf_writer *w, const struct imago_hashes *hs, struct imago_err *err)
{
	libewf_error_t *e = NULL;
	int r = 0;
	if (w->written != w->size) {
		r = err_set(err, -EINVAL, -1, (int64_t)w->written, -1, "%s: only %llu of %llu bytes "
			    "written", w->name, (unsigned long long)w->written, (unsigned long long)w->size);
		goto out;
	}
	uint8_t md5[16], sha1[20];
	if (hs && (hs->algs & IMAGO_HASH_MD5) && unhex(hs->md5, md5, 16) == 0 &&
	    libewf_handle_set_md5_hash(w->h, md5, 16, &e) != 1) {
		r = ewf_fail(&e, err, -EINVAL, w->name, "cannot store the MD5");
		goto out;
	}
	if (hs && (hs->algs & IMAGO_HASH_SHA1) && unhex(hs->sha1, sha1, 20) == 0 &&
	    libewf_handle_set_sha1_hash(w->h, sha1, 20, &e) != 1) {
		r = ewf_fail(&e, err, -EINVAL, w->name, "cannot store the SHA-1");
		goto out;
	}
	if (hs && (hs->algs & IMAGO_HASH_SHA256)) {
		libewf_handle_set_utf8_hash_value(w->h, (const uint8_t *)"SHA256", 6,
						  (const uint8_t *)hs->sha256, 64, &e);
		libewf_error_free(&e);
	}
	if (libewf_handle_write_finalize(w->h, &e) < 0) {
		r = ewf_fail(&e, err, -EIO, w->name, "cannot finish the E01");
		goto out;
	}
	if (libewf_handle_close(w->h, &e) != 0) {
		r = ewf_fail(&e, err, -EIO, w->name, "cannot close the E01");
		goto out_free;
	}
out_free:
	libewf_handle_free(&w->h, NULL);
	free(w->name);
	free(w);
	return r;
out:
	imago_ewf_abort(w);
	return r;
}
