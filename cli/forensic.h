// SPDX-License-Identifier: GPL-3.0-or-later
/* What acquire, hash, convert and verify share: digest selection, UTC times, the
 * command line, the case prompt, the acquisition/hash log file, stored-digest checks. */
#ifndef IMAGO_CLI_FORENSIC_H
#define IMAGO_CLI_FORENSIC_H

#include <stdbool.h>
#include <stdio.h>

#include "imago.h"

/* Parse "md5,sha1,sha256" (also "all") into enum imago_hash_alg bits. 0 or -1. */
int fx_parse_algs(const char *s, unsigned *algs);

/* "2026-11-21T07:24:02Z" of now. */
void fx_utc_now(char out[32]);

/* The whole command line, shell-quoted where needed (malloc). */
char *fx_command_line(void);

/* Create path for a log: refuses (EXIT_REFUSED, message printed) an existing file
 * unless force. Returns the FILE or NULL with *rc set. */
FILE *fx_log_create(const char *path, bool force, int *rc);
/* 0, or an exit code (message printed) when path exists and !force. */
int fx_log_check(const char *path, bool force);

/* Print "Label:  value" lines for the digests in hs. */
void fx_log_hashes(FILE *f, const struct imago_hashes *hs, const char *indent);

/* Compare the digests computed with the ones stored (those in both). Returns the
 * number that differ; *compared gets how many were compared. Messages on stderr for
 * each mismatch (unless quiet). */
int fx_compare_hashes(const char *what, const struct imago_hashes *stored,
		      const struct imago_hashes *computed, unsigned *compared, bool quiet);

/* Read a line for label from the terminal into buf (NUL-terminated, no newline). */
void fx_prompt(const char *label, char *buf, size_t len);

/* The BLKROGET flag of a block device fd: 1 read-only, 0 writable, -1 unknown. */
int fx_blkro(int fd);

/* verify for E01 input or the stored digests of an imago image: see cmd_verify.c. */
int fx_verify_evidence(const char *path, bool quiet, bool json, const char *against);
/* After a sound native verify: recompute hash.* if the image stores any. 0 (none or
 * all match), or an exit code. Fills hs with what was computed. */
int fx_verify_image_hashes(const char *path, bool quiet, struct imago_hashes *hs);
bool fx_is_ewf(const char *path);

#endif
