/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fsfreeze(8) for the duration of an imaging run (create --freeze). */
#ifndef IMAGO_CLI_FREEZE_H
#define IMAGO_CLI_FREEZE_H

#include <stddef.h>

/* Freeze each mount point (FIFREEZE). On failure, thaws what was frozen and returns an
 * exit code after a message; 0 when all are frozen. */
int freeze_mounts(char (*mnt)[4096], size_t n);
/* Thaw everything frozen (idempotent). Also runs at exit and on a second signal. */
void freeze_thaw_all(void);
/* Async-signal-safe variant for the signal handler. */
void freeze_thaw_signal_safe(void);

#endif
