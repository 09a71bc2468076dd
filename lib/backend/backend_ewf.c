/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * E01 (EWF) evidence as a backend, through lib/forensic's evidence reader (libewf; its
 * pread is serialised there, libewf handles not being thread-safe). Read-only; no block
 * status. The identity an overlay binds to is the SHA-256 of the device size and the
 * digests the E01 stores (MD5, SHA-1, and SHA-256 when present): the same evidence gets
 * the same identity, other evidence another one. An E01 storing no digest at all binds
 * by size only.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "image/format.h"
#include "util/err.h"

static ssize_t ewf_bk_pread(struct backend *b, void *buf, size_t len, uint64_t off)
{
	return imago_evidence_pread(b->priv, buf, len, off);
}

static const struct imago_err *ewf_bk_error(struct backend *b)
{
	return imago_evidence_error(b->priv);
}

static void ewf_bk_close(struct backend *b)
{
	imago_evidence_close(b->priv);
}

static const struct backend_ops ewf_ops = {
	.pread = ewf_bk_pread,
	.error = ewf_bk_error,
	.close = ewf_bk_close,
};

static int ewf_bk_probe(const uint8_t *head, size_t len)
{
	static const uint8_t evf[8] = { 'E', 'V', 'F', 0x09, 0x0d, 0x0a, 0xff, 0x00 };
	return len >= 8 && memcmp(head, evf, 8) == 0;
}

static int identity(imago_evidence *ev, uint64_t size, uint8_t out[BACKEND_ID_LEN])
{
	struct imago_hashes hs;
	imago_evidence_stored_hashes(ev, &hs);
	uint8_t sz[8];
	put_le64(sz, size);
	static const char tag[] = "imago-ewf-identity-v1";
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned n = 0;
	int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
		 EVP_DigestUpdate(c, tag, sizeof(tag)) && EVP_DigestUpdate(c, sz, 8);
	const char *d[3] = { hs.md5, hs.sha1, hs.sha256 };
	unsigned bits[3] = { IMAGO_HASH_MD5, IMAGO_HASH_SHA1, IMAGO_HASH_SHA256 };
	for (int i = 0; i < 3 && ok; i++) {
		const char *v = (hs.algs & bits[i]) ? d[i] : "";
		ok = EVP_DigestUpdate(c, v, strlen(v) + 1);
	}
	ok = ok && EVP_DigestFinal_ex(c, out, &n) && n == BACKEND_ID_LEN;
	EVP_MD_CTX_free(c);
	return ok ? 0 : -ENOMEM;
}

static int ewf_bk_open(const char *path, struct backend **out, struct imago_err *err)
{
	imago_evidence *ev;
	int r = imago_evidence_open(path, &ev, err);
	if (r < 0)
		return r;
	if (imago_evidence_kind(ev) != IMAGO_EVIDENCE_EWF) {
		imago_evidence_close(ev);
		return err_set(err, -ENOTSUP, 0, -1, -1, "%s: not an E01", path);
	}
	struct backend *b = calloc(1, sizeof(*b));
	if (!b || !(b->name = strdup(path))) {
		free(b);
		imago_evidence_close(ev);
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	}
	b->ops = &ewf_ops;
	b->kind = "e01";
	b->size = imago_evidence_size(ev);
	b->sector_size = imago_evidence_sector_size(ev) ? imago_evidence_sector_size(ev) : 512;
	b->priv = ev;
	if (identity(ev, b->size, b->identity) < 0) {
		backend_close(b);
		return err_set(err, -ENOMEM, -1, -1, -1, "out of memory");
	}
	*out = b;
	return 0;
}

const struct backend_kind backend_kind_ewf = { "e01", ewf_bk_probe, ewf_bk_open };
