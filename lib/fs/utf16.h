/* SPDX-License-Identifier: GPL-3.0-or-later */
/* UTF-16LE (NTFS and exFAT names and labels) to UTF-8, for fs_facts.label. */
#ifndef IMAGO_FS_UTF16_H
#define IMAGO_FS_UTF16_H

#include <stddef.h>
#include <stdint.h>

/* Convert `units` UTF-16LE code units at u to NUL-terminated UTF-8 in out (outsz >= 1
 * bytes). Stops at a NUL unit; an unpaired surrogate becomes U+FFFD; a character that
 * does not fit whole ends the string (never half a character). */
static inline void utf16le_to_utf8(const uint8_t *u, size_t units, char *out, size_t outsz)
{
	size_t o = 0;
	for (size_t i = 0; i < units; i++) {
		uint32_t c = (uint32_t)(u[2 * i] | u[2 * i + 1] << 8);
		if (c == 0)
			break;
		if (c >= 0xD800 && c < 0xDC00 && i + 1 < units) {
			uint32_t d = (uint32_t)(u[2 * i + 2] | u[2 * i + 3] << 8);
			if (d >= 0xDC00 && d < 0xE000) {
				c = 0x10000 + ((c - 0xD800) << 10) + (d - 0xDC00);
				i++;
			} else {
				c = 0xFFFD;
			}
		} else if (c >= 0xD800 && c < 0xE000) {
			c = 0xFFFD;
		}
		char b[4];
		size_t n;
		if (c < 0x80) {
			b[0] = (char)c;
			n = 1;
		} else if (c < 0x800) {
			b[0] = (char)(0xC0 | c >> 6);
			b[1] = (char)(0x80 | (c & 0x3F));
			n = 2;
		} else if (c < 0x10000) {
			b[0] = (char)(0xE0 | c >> 12);
			b[1] = (char)(0x80 | ((c >> 6) & 0x3F));
			b[2] = (char)(0x80 | (c & 0x3F));
			n = 3;
		} else {
			b[0] = (char)(0xF0 | c >> 18);
			b[1] = (char)(0x80 | ((c >> 12) & 0x3F));
			b[2] = (char)(0x80 | ((c >> 6) & 0x3F));
			b[3] = (char)(0x80 | (c & 0x3F));
			n = 4;
		}
		if (o + n + 1 > outsz)
			break;
		for (size_t k = 0; k < n; k++)
			out[o++] = b[k];
	}
	out[o] = '\0';
}

#endif
