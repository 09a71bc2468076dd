/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The rescue map: which bytes of a failing source have been read, which failed, which
 * are still to be tried. In memory a sorted, coalesced list of blocks tiling [0, size);
 * on disk GNU ddrescue's mapfile (ddrescue manual, "Mapfile structure"), so ddrescue can
 * resume a rescue imago started and imago one ddrescue started:
 *
 *   # comment lines
 *   0x00FF0000  +  1               status line: current_pos current_status [current_pass]
 *   0x00000000  0x01000000  +      block lines: pos size status
 *
 * Block statuses are ddrescue's characters; the status line's character says which phase
 * was running. Numbers are C literals (0x hex, leading-0 octal, decimal).
 */
#ifndef IMAGO_RESCUE_MAP_H
#define IMAGO_RESCUE_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "imago.h"

/* Block statuses (ddrescue's characters). */
enum rescue_status {
	RS_UNTRIED = '?',      /* non-tried */
	RS_NONTRIMMED = '*',   /* failed, edges not trimmed yet */
	RS_NONSCRAPED = '/',   /* failed, trimmed, inside not scraped yet */
	RS_BAD = '-',          /* bad sector(s): failed sector by sector */
	RS_FINISHED = '+',     /* read and written */
};

/* Phase characters of the status line. */
enum rescue_phase {
	RP_COPYING = '?',
	RP_TRIMMING = '*',
	RP_SCRAPING = '/',
	RP_RETRYING = '-',
	RP_FILLING = 'F',
	RP_GENERATING = 'G',
	RP_FINISHED = '+',
};

struct rescue_block {
	uint64_t pos, size;
	char status;
};

struct rescue_map {
	struct rescue_block *v;   /* sorted, contiguous, coalesced, tiling [0, size) */
	size_t n, cap;
	uint64_t size;
	uint64_t current_pos;
	char current_status;      /* enum rescue_phase */
	unsigned current_pass;
};

/* Most blocks a map may hold (a parsed mapfile with more is refused: memory is bounded). */
#define RESCUE_MAP_MAX_BLOCKS (16u * 1024 * 1024)
/* Largest mapfile text parsed. */
#define RESCUE_MAP_MAX_TEXT (1024u * 1024 * 1024)

/* A map of size bytes, all untried. */
int rescue_map_init(struct rescue_map *m, uint64_t size);
void rescue_map_free(struct rescue_map *m);

/* Set [pos, pos+len) (clipped to the map) to status, splitting and coalescing. */
int rescue_map_set(struct rescue_map *m, uint64_t pos, uint64_t len, char status);

/* Index of the block holding pos, or -1 past the end. */
ptrdiff_t rescue_map_find(const struct rescue_map *m, uint64_t pos);

/* Bytes in each status: out[0] '?', [1] '*', [2] '/', [3] '-', [4] '+'. */
void rescue_map_totals(const struct rescue_map *m, uint64_t out[5]);
/* Index into rescue_map_totals' array for a status, or -1. */
int rescue_status_index(char status);
int rescue_status_valid(char status);
/* Nonzero when the map's blocks form a valid tiling (used after parsing). */
int rescue_map_check(const struct rescue_map *m);

/* Parse mapfile text. The blocks must be sorted, contiguous and not overlapping (as
 * ddrescue requires); bytes before the first block and after the last, up to size, are
 * untried. size 0 takes the map's own extent. Blocks past size are refused (-EINVAL)
 * unless clip is set, then they are cut at size. -EBADMSG with the line number in err for
 * malformed text. */
int rescue_map_parse(const char *text, size_t len, uint64_t size, int clip,
		     struct rescue_map *m, struct imago_err *err);

/* Read and parse a mapfile. -ENOENT when it does not exist. */
int rescue_map_load(const char *path, uint64_t size, int clip, struct rescue_map *m,
		    struct imago_err *err);

/* The mapfile text (malloc'd, NUL-terminated) with the given heading comment lines
 * (each without "# " and newline; may be NULL). */
int rescue_map_format(const struct rescue_map *m, const char *const *comments, size_t ncomments,
		      char **out, size_t *outlen);

/* Write the mapfile atomically: PATH.tmp, fsync, rename over path, fsync the directory. */
int rescue_map_save(const struct rescue_map *m, const char *path, const char *const *comments,
		    size_t ncomments, struct imago_err *err);

/* The rescue map as an extent map of imago states: '+' USED, '-' '*' '/' BAD, '?'
 * UNTRIED. Runs in *out (malloc'd), sorted and coalesced. */
int rescue_map_to_extents(const struct rescue_map *m, struct imago_extent **out, size_t *n);

#endif
