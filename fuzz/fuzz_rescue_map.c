// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * Fuzz target: the GNU ddrescue mapfile parser (lib/rescue/map.c), which reads files a
 * user (or another program) hands to `imago rescue` and `imago map`. Every accepted map
 * must tile its size, survive being written and read back to the same blocks, and take
 * edits (rescue_map_set) that keep it a valid tiling.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "rescue/map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rescue_map m;
	struct imago_err err;
	/* a leading '@' reads the rest against a 1 MiB source, clipping what lies past it */
	uint64_t want = 0;
	int clip = 0;
	if (size && data[0] == '@') {
		want = 1u << 20;
		clip = 1;
		data++;
		size--;
	}
	if (rescue_map_parse((const char *)data, size, want, clip, &m, &err) < 0)
		return 0;
	if (!rescue_map_check(&m))
		abort();
	char *text;
	size_t len;
	if (rescue_map_format(&m, NULL, 0, &text, &len) == 0) {
		struct rescue_map m2;
		if (rescue_map_parse(text, len, m.size, 0, &m2, &err) < 0)
			abort();
		if (m2.n != m.n || m2.size != m.size)
			abort();
		for (size_t i = 0; i < m.n; i++)   /* field by field: the struct has padding */
			if (m.v[i].pos != m2.v[i].pos || m.v[i].size != m2.v[i].size ||
			    m.v[i].status != m2.v[i].status)
				abort();
		rescue_map_free(&m2);
		free(text);
	}
	/* edits driven by the input keep the tiling */
	for (size_t i = 0; i + 3 <= size && i < 96 && m.size; i += 3) {
		uint64_t pos = (uint64_t)data[i] * m.size / 256;
		uint64_t len2 = (uint64_t)data[i + 1] * m.size / 512 + 1;
		static const char st[] = "?*/-+";
		if (rescue_map_set(&m, pos, len2, st[data[i + 2] % 5]) < 0)
			break;
		if (!rescue_map_check(&m))
			abort();
	}
	rescue_map_free(&m);
	return 0;
}
