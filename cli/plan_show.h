/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The smart-imaging plan as the CLI shows and stores it: the partition map table of
 * `imago info`, its JSON form, the image metadata keys (part.*) and the warnings.
 */
#ifndef IMAGO_CLI_PLAN_SHOW_H
#define IMAGO_CLI_PLAN_SHOW_H

#include <stdbool.h>
#include <stdio.h>

#include "imago.h"
#include "smart/plan.h"

/* Build the plan of an image's logical device (read through the image). 0 or an exit
 * code after a message; a damaged chunk is reported as the image's damage (exit 3). With
 * warn_only, a failure is a warning line and the exit code is still returned. */
int plan_of_image(imago_image *img, const char *name, bool warn_only, struct smart_plan *p);

/* Print the partition map table (people) or a JSON value (the "partitions" object). */
void plan_print(FILE *f, const struct smart_plan *p);
void plan_print_json(FILE *f, const struct smart_plan *p);

/* Print each warning as "imago: CMD: warning: ..." on stderr. */
void plan_warn(const struct smart_plan *p);

/* Metadata pairs describing the plan (part.scheme, part.N.*), appended to kv (which has
 * room for `room` pointers, NULL-terminated). The strings are allocated in *pool (free
 * it with free()). Returns the number of pointers used, or -1 when out of room/memory. */
int plan_metadata(const struct smart_plan *p, const char **kv, size_t room, char **pool);

/* Short names: "gpt"/"mbr"/"none"; a partition's type ("Linux filesystem", "0x83"). */
const char *plan_scheme_name(const struct smart_plan *p);
void plan_type_name(const struct smart_plan *p, const struct part_entry *e, char *buf,
		    size_t len);

#endif
