/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The smart plan of a source about to be read (create, clone), with the safety rules. */
#ifndef IMAGO_CLI_SOURCE_PLAN_H
#define IMAGO_CLI_SOURCE_PLAN_H

#include <stdbool.h>

#include "device.h"
#include "smart/plan.h"

/* Read the partition table and filesystems of src. Refuses (EXIT_REFUSED) a source with a
 * filesystem mounted read-write unless freeze (fsfreeze it now; freeze_thaw_all() undoes
 * it) or force, and a dirty / needs-recovery / hibernated filesystem unless force (it is
 * then copied whole). output: where the copy goes (a path, "-" or NULL), which must not
 * be on a filesystem to freeze. Prints the plan's warnings unless quiet. 0 or an exit
 * code after a message. */
int source_plan(const struct cli_source *src, const char *output, bool force, bool freeze,
		bool quiet, struct smart_plan *plan);

#endif
