// SPDX-License-Identifier: GPL-3.0-or-later
/* The evidence handle behind imago_evidence_* (evidence.c) and its E01 driver (ewf.c). */
#ifndef IMAGO_FORENSIC_EVIDENCE_INT_H
#define IMAGO_FORENSIC_EVIDENCE_INT_H

#include <pthread.h>

#include "forensic/forensic.h"
#include "imago.h"

struct imago_evidence {
	enum imago_evidence_kind kind;
	char *name;
	uint64_t size;
	uint32_t sector_size;
	char **meta;             /* key, value, key, value ... (owned) */
	size_t nmeta, meta_cap;
	struct imago_hashes stored;
	struct fx_range *bad;
	size_t nbad;
	imago_image *img;        /* IMAGO */
	int fd;                  /* RAW */
	void *ewf;               /* EWF: libewf_handle_t */
	pthread_mutex_t lock;    /* EWF: libewf handles are not thread-safe */
	struct imago_err err;
};

/* Add a metadata pair (copied). 0 or -ENOMEM. */
int ev_meta_add(struct imago_evidence *ev, const char *key, const char *value);
int ev_bad_add(struct imago_evidence *ev, uint64_t off, uint64_t len);

/* E01: "EVF\t\r\n\xff\0" at offset 0. */
int ewf_is_ewf(const uint8_t *head, size_t len);
int ewf_open(struct imago_evidence *ev, const char *path, struct imago_err *err);
ssize_t ewf_pread(struct imago_evidence *ev, void *buf, size_t len, uint64_t off);
uint64_t ewf_damaged(struct imago_evidence *ev);
void ewf_close(struct imago_evidence *ev);

#endif
