/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The commands of `imago`: each takes the arguments after `imago` (argv[0] is the
 * command's name) and returns the process exit code. */
#ifndef IMAGO_CLI_COMMANDS_H
#define IMAGO_CLI_COMMANDS_H

#include <stdio.h>

struct cli_command {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
	void (*help)(FILE *f);
};

int cmd_create(int argc, char **argv);
void cmd_create_help(FILE *f);
int cmd_restore(int argc, char **argv);
void cmd_restore_help(FILE *f);
int cmd_verify(int argc, char **argv);
void cmd_verify_help(FILE *f);
int cmd_clone(int argc, char **argv);
void cmd_clone_help(FILE *f);
int cmd_info(int argc, char **argv);
void cmd_info_help(FILE *f);
int cmd_acquire(int argc, char **argv);
void cmd_acquire_help(FILE *f);
int cmd_hash(int argc, char **argv);
void cmd_hash_help(FILE *f);
int cmd_convert(int argc, char **argv);
void cmd_convert_help(FILE *f);
int cmd_mount(int argc, char **argv);
void cmd_mount_help(FILE *f);
int cmd_umount(int argc, char **argv);
void cmd_umount_help(FILE *f);

/* Report a getopt_long failure ('?' unknown option, ':' missing argument) as a usage
 * error; returns EXIT_USAGE. Needs ':' first in the optstring and opterr = 0. */
int cli_getopt_error(int c, char **argv);

#endif
