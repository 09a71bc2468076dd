// SPDX-License-Identifier: GPL-3.0-or-later
/* Internal helpers of lib/forensic shared with the image writer. */
#ifndef IMAGO_FORENSIC_H
#define IMAGO_FORENSIC_H

#include <stddef.h>
#include <stdint.h>

#include "imago.h"

struct fx_range {
	uint64_t offset, length;
};

/* The metadata the writer adds at the end of a forensic acquisition: user's pairs, then
 * hash.md5 / hash.sha1 / hash.sha256 (when h), and with keep_going (an acquisition)
 * acquire.end, acquire.read_errors ("OFFSET+LENGTH" per line, bytes) and acquire.bad_bytes. Keys the
 * user gave are not repeated. *kv (malloc, NULL-terminated) points into *pool and user.
 * 0 or -ENOMEM. */
int fx_tail_metadata(const char *const *user, imago_mhash *h, int keep_going,
		     const struct fx_range *bad, size_t nbad, const char ***kv, char **pool);

/* "OFFSET+LENGTH\n..." for ranges, malloc'd (an empty string for none). */
char *fx_ranges_text(const struct fx_range *v, size_t n);

#endif
