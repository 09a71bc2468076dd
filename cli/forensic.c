// SPDX-License-Identifier: GPL-3.0-or-later
/* Helpers shared by the forensic commands (acquire, hash, convert, verify of E01 and of
 * stored digests). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "forensic.h"
#include "progress.h"

int fx_parse_algs(const char *s, unsigned *algs)
{
	*algs = 0;
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcasecmp(t, "md5"))
			*algs |= IMAGO_HASH_MD5;
		else if (!strcasecmp(t, "sha1") || !strcasecmp(t, "sha-1"))
			*algs |= IMAGO_HASH_SHA1;
		else if (!strcasecmp(t, "sha256") || !strcasecmp(t, "sha-256"))
			*algs |= IMAGO_HASH_SHA256;
		else if (!strcasecmp(t, "all"))
			*algs |= IMAGO_HASH_ALL;
		else
			return -1;
	}
	return *algs ? 0 : -1;
}

void fx_utc_now(char out[32])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *fx_command_line(void)
{
	FILE *f = fopen("/proc/self/cmdline", "re");
	if (!f)
		return strdup("imago");
	char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *out = malloc(4 * n + 16);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		const char *arg = buf + i;
		size_t l = strlen(arg);
		bool plain = l > 0;
		for (size_t k = 0; k < l; k++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:+@%",
				    arg[k]))
				plain = false;
		if (o)
			out[o++] = ' ';
		if (plain) {
			memcpy(out + o, arg, l);
			o += l;
		} else {
			out[o++] = '\'';
			for (size_t k = 0; k < l; k++) {
				if (arg[k] == '\'') {
					memcpy(out + o, "'\\''", 4);
					o += 4;
				} else {
					out[o++] = arg[k];
				}
			}
			out[o++] = '\'';
		}
		i += l + 1;
	}
	out[o] = 0;
	return out;
}

int fx_log_check(const char *path, bool force)
{
	struct stat st;
	if (lstat(path, &st) == 0 && !force) {
		cli_msg("%s exists: refusing to overwrite it: use --force, or choose another name",
			path);
		return EXIT_REFUSED;
	}
	return 0;
}

FILE *fx_log_create(const char *path, bool force, int *rc)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), 0666);
	if (fd < 0) {
		if (errno == EEXIST) {
			cli_msg("%s exists: refusing to overwrite it: use --force, or choose another "
				"name", path);
			*rc = EXIT_REFUSED;
		} else {
			*rc = cli_sys_fail(errno, "cannot create the log", path, NULL);
		}
		return NULL;
	}
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		*rc = cli_sys_fail(errno, "cannot create the log", path, NULL);
	}
	return f;
}

void fx_log_hashes(FILE *f, const struct imago_hashes *hs, const char *indent)
{
	if (hs->algs & IMAGO_HASH_MD5)
		fprintf(f, "%sMD5:     %s\n", indent, hs->md5);
	if (hs->algs & IMAGO_HASH_SHA1)
		fprintf(f, "%sSHA-1:   %s\n", indent, hs->sha1);
	if (hs->algs & IMAGO_HASH_SHA256)
		fprintf(f, "%sSHA-256: %s\n", indent, hs->sha256);
}

int fx_compare_hashes(const char *what, const struct imago_hashes *stored,
		      const struct imago_hashes *computed, unsigned *compared, bool quiet)
{
	static const unsigned bits[3] = { IMAGO_HASH_MD5, IMAGO_HASH_SHA1, IMAGO_HASH_SHA256 };
	static const char *names[3] = { "MD5", "SHA-1", "SHA-256" };
	int bad = 0;
	*compared = 0;
	for (int i = 0; i < 3; i++) {
		const char *s = imago_hashes_get(stored, bits[i]);
		const char *c = imago_hashes_get(computed, bits[i]);
		if (!s || !c)
			continue;
		(*compared)++;
		if (strcasecmp(s, c) != 0) {
			bad++;
			if (!quiet)
				cli_msg("%s: %s stored %s, computed %s: the content is not what was "
					"acquired", what, names[i], s, c);
		}
	}
	return bad;
}

void fx_prompt(const char *label, char *buf, size_t len)
{
	buf[0] = 0;
	if (!isatty(STDIN_FILENO))
		return;
	fprintf(stderr, "%s: ", label);
	fflush(stderr);
	if (!fgets(buf, (int)len, stdin)) {
		buf[0] = 0;
		return;
	}
	buf[strcspn(buf, "\r\n")] = 0;
}

int fx_blkro(int fd)
{
	int ro = 0;
	if (ioctl(fd, BLKROGET, &ro) < 0)
		return -1;
	return ro ? 1 : 0;
}

bool fx_is_ewf(const char *path)
{
	static const uint8_t sig[8] = { 'E', 'V', 'F', 0x09, 0x0d, 0x0a, 0xff, 0x00 };
	uint8_t b[8];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return false;
	bool yes = pread(fd, b, 8, 0) == 8 && memcmp(b, sig, 8) == 0;
	close(fd);
	return yes;
}

static int err_set_msg(struct imago_err *err, int code, const char *msg)
{
	err->code = code;
	err->file_offset = err->dev_offset = err->chunk = -1;
	snprintf(err->msg, sizeof(err->msg), "%s", msg);
	return code;
}

/* Read the whole content of ev through the digests. 0 or a negative errno (err set). */
static int hash_evidence(imago_evidence *ev, unsigned algs, struct imago_hashes *hs,
			 struct progress *prog, struct imago_err *err)
{
	enum { NB = 4, PIECE = 4 << 20 };
	imago_mhash *h = NULL;
	int r = imago_mhash_new(algs, &h);
	if (r < 0)
		return err_set_msg(err, r, "cannot start the digests");
	uint8_t *buf[NB] = { 0 };
	int64_t t[NB] = { -1, -1, -1, -1 };
	uint64_t size = imago_evidence_size(ev), pos = 0;
	for (int i = 0; i < NB; i++)
		if (!(buf[i] = malloc(PIECE))) {
			r = err_set_msg(err, -ENOMEM, "out of memory");
			goto out;
		}
	for (unsigned k = 0; pos < size; k = (k + 1) % NB) {
		if (t[k] >= 0)
			imago_mhash_wait(h, (uint64_t)t[k]);
		size_t n = size - pos < PIECE ? (size_t)(size - pos) : PIECE;
		ssize_t got = imago_evidence_pread(ev, buf[k], n, pos);
		if (got < 0 || (size_t)got != n) {
			if (got < 0 && imago_evidence_error(ev)->code)
				*err = *imago_evidence_error(ev);
			else
				err_set_msg(err, -EBADMSG, "the content ends early");
			r = got < 0 ? (int)got : -EBADMSG;
			goto out;
		}
		t[k] = imago_mhash_feed(h, buf[k], n);
		pos += n;
		if (progress_cb(prog, pos, size)) {
			r = -ECANCELED;
			goto out;
		}
	}
	r = imago_mhash_final(h, hs);
out:
	imago_mhash_drain(h);
	imago_mhash_free(h);
	for (int i = 0; i < NB; i++)
		free(buf[i]);
	return r;
}

static void json_hashes(const char *key, const struct imago_hashes *hs)
{
	printf(",\"%s\":{", key);
	const char *sep = "";
	if (hs->algs & IMAGO_HASH_MD5) {
		printf("\"md5\":\"%s\"", hs->md5);
		sep = ",";
	}
	if (hs->algs & IMAGO_HASH_SHA1) {
		printf("%s\"sha1\":\"%s\"", sep, hs->sha1);
		sep = ",";
	}
	if (hs->algs & IMAGO_HASH_SHA256)
		printf("%s\"sha256\":\"%s\"", sep, hs->sha256);
	printf("}");
}

int fx_verify_evidence(const char *path, bool quiet, bool json, const char *against)
{
	struct imago_err err;
	memset(&err, 0, sizeof(err));
	err.file_offset = err.dev_offset = err.chunk = -1;
	if (against) {
		cli_msg("--against is not supported for E01 images: hash the source with imago "
			"hash and compare with the digests stored in %s", path);
		return EXIT_USAGE;
	}
	imago_evidence *ev = NULL;
	int r = imago_evidence_open(path, &ev, &err);
	if (r < 0)
		return cli_fail(r, &err, path, NULL) == EXIT_FAIL ? EXIT_DAMAGED : cli_exit_code(r);
	struct imago_hashes stored, hs;
	imago_evidence_stored_hashes(ev, &stored);
	memset(&hs, 0, sizeof(hs));
	struct progress prog;
	progress_start(&prog, "verify", PROGRESS_AUTO, quiet || json);
	r = hash_evidence(ev, IMAGO_HASH_ALL, &hs, &prog, &err);
	progress_end(&prog);
	uint64_t damaged = imago_evidence_damaged(ev);
	int rc = EXIT_OK;
	unsigned compared = 0;
	int differ = 0;
	if (r == -ECANCELED) {
		cli_msg("interrupted: %s was not fully checked", path);
		rc = EXIT_FAIL;
	} else if (r < 0) {
		rc = cli_fail(r, &err, path, NULL);
		if (rc == EXIT_FAIL)
			rc = EXIT_DAMAGED;
	} else {
		differ = fx_compare_hashes(path, &stored, &hs, &compared, quiet || json);
		if (damaged) {
			if (!json)
				cli_msg("%s: %" PRIu64 " chunk(s) fail their checksum: the E01 is damaged",
					path, damaged);
			rc = EXIT_DAMAGED;
		} else if (differ) {
			rc = EXIT_DAMAGED;
		} else if (!compared) {
			if (!json)
				cli_msg("%s: the E01 stores no digest: its chunks are sound, but nothing "
					"proves the content", path);
		}
	}
	if (json) {
		printf("{\"image\":");
		cli_json_str(stdout, path);
		printf(",\"format\":\"e01\",\"result\":\"%s\",\"exit_code\":%d,\"device_size\":%" PRIu64
		       ",\"checksum_errors\":%" PRIu64,
		       rc == EXIT_OK ? "ok" : rc == EXIT_DAMAGED ? "damaged" : "failed", rc,
		       imago_evidence_size(ev), damaged);
		json_hashes("stored", &stored);
		if (r == 0)
			json_hashes("computed", &hs);
		printf("}\n");
	} else if (rc == EXIT_OK && !quiet) {
		char dev[32];
		cli_fmt_bytes(imago_evidence_size(ev), dev, sizeof(dev));
		printf("%s: OK: E01, device %s, %u stored digest(s) match\n", path, dev, compared);
		fx_log_hashes(stdout, &hs, "  ");
	}
	imago_evidence_close(ev);
	return rc;
}

int fx_verify_image_hashes(const char *path, bool quiet, struct imago_hashes *hs)
{
	struct imago_err err;
	memset(&err, 0, sizeof(err));
	memset(hs, 0, sizeof(*hs));
	imago_evidence *ev = NULL;
	int r = imago_evidence_open(path, &ev, &err);
	if (r < 0)
		return cli_fail(r, &err, path, NULL);
	struct imago_hashes stored;
	imago_evidence_stored_hashes(ev, &stored);
	int rc = EXIT_OK;
	if (stored.algs) {
		struct progress prog;
		progress_start(&prog, "verify", PROGRESS_AUTO, quiet);
		r = hash_evidence(ev, stored.algs, hs, &prog, &err);
		progress_end(&prog);
		unsigned compared = 0;
		if (r < 0)
			rc = cli_fail(r, &err, path, NULL);
		else if (fx_compare_hashes(path, &stored, hs, &compared, false))
			rc = EXIT_DAMAGED;
	}
	imago_evidence_close(ev);
	return rc;
}
