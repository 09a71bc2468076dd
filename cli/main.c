/* SPDX-License-Identifier: GPL-3.0-or-later */
/* `imago COMMAND [OPTIONS] ARGS...`: the command table and the global options. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "common.h"

static const struct cli_command commands[] = {
	{"create", "image a disk or file into an imago image", cmd_create, cmd_create_help},
	{"restore", "write an image back to a file or disk", cmd_restore, cmd_restore_help},
	{"clone", "copy a disk to a disk or file, used data only", cmd_clone, cmd_clone_help},
	{"verify", "check an image (and compare it with its source)", cmd_verify,
	 cmd_verify_help},
	{"info", "show what an image holds", cmd_info, cmd_info_help},
	{"acquire", "acquire evidence: every sector, MD5/SHA-1/SHA-256, case notes, log",
	 cmd_acquire, cmd_acquire_help},
	{"hash", "MD5/SHA-1/SHA-256 of files or devices in one pass", cmd_hash, cmd_hash_help},
	{"convert", "convert between imago, E01 and raw (split) images", cmd_convert,
	 cmd_convert_help},
	{"mount", "show an image's disk and partitions as files (FUSE)", cmd_mount, cmd_mount_help},
	{"umount", "unmount what imago mount mounted", cmd_umount, cmd_umount_help},
	{"rescue", "image a failing disk around its bad sectors (ddrescue map)", cmd_rescue,
	 cmd_rescue_help},
	{"map", "show or draw a rescue map (imago's or ddrescue's)", cmd_map, cmd_map_help},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "Usage: imago COMMAND [OPTIONS] ARGS...\n"
		   "       imago --version | --help | COMMAND --help\n\n"
		   "Make, check, open and restore disk images.\n\nCommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nExit status: 0 success, 1 failure, 2 usage error, 3 image damaged or "
		   "incomplete,\n4 verify --against found a difference, 5 refused for safety,\n"
		   "6 acquire/rescue finished but part of the source could not be read.\n"
		   "See imago(1) (docs/imago.1.md).\n");
}

int cli_getopt_error(int c, char **argv)
{
	const char *arg = argv[optind - 1];
	if (c == ':') {
		if (optopt && arg[0] == '-' && arg[1] != '-')
			return cli_usage_error("option '-%c' needs an argument", optopt);
		return cli_usage_error("option '%s' needs an argument", arg);
	}
	/* A long option given an argument it does not take also lands here. */
	if (optopt && (arg[0] != '-' || arg[1] != '-'))
		return cli_usage_error("unknown option '-%c'", optopt);
	return cli_usage_error("unknown or malformed option '%s'", arg);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error("a COMMAND is needed (create, restore, verify, info, mount, rescue, acquire, ...)");
	const char *name = argv[1];
	if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
		printf("imago %s (image format %d.%d)\n", IMAGO_VERSION_STRING,
		       IMAGO_FORMAT_MAJOR, IMAGO_FORMAT_MINOR);
		return EXIT_OK;
	}
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	bool help_cmd = strcmp(name, "help") == 0;
	if (help_cmd) {
		if (argc < 3) {
			usage(stdout);
			return EXIT_OK;
		}
		name = argv[2];
	}
	for (size_t i = 0; i < N_COMMANDS; i++) {
		if (strcmp(name, commands[i].name) != 0)
			continue;
		cli_cmd = commands[i].name;
		if (help_cmd) {
			commands[i].help(stdout);
			return EXIT_OK;
		}
		return commands[i].run(argc - 1, argv + 1);
	}
	if (name[0] == '-')
		return cli_usage_error("unknown option '%s'", name);
	return cli_usage_error("unknown command '%s'", name);
}
