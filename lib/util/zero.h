/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Whether a buffer is all zeros: zero detection in create, zero leaves of the digest,
 * zero blocks skipped by a sparse restore. */
#ifndef IMAGO_UTIL_ZERO_H
#define IMAGO_UTIL_ZERO_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Check a 64-byte prefix, then compare the buffer with itself shifted by 64: memcmp runs
 * at memory speed and no zero buffer is needed. */
static inline int buf_is_zero(const uint8_t *p, size_t len)
{
	size_t head = len < 64 ? len : 64;
	for (size_t i = 0; i < head; i++)
		if (p[i])
			return 0;
	return len <= 64 || memcmp(p, p + 64, len - 64) == 0;
}

#endif
