/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * A libext2fs I/O manager that reads through a struct region (lib/io/region.h), so that
 * libext2fs sees a filesystem inside a disk image, on a device or in a fuzzer's buffer
 * exactly as it sees a file. Read-only: every write entry point fails with EROFS, and
 * opening with IO_FLAG_RW fails with EROFS too.
 *
 * libext2fs opens a channel by name, so the region travels in the name: ext_io_name()
 * writes "imago-region:<address>" and the manager's open parses it back. The region (and
 * the struct it points to) must outlive the ext2_filsys opened on it.
 */
#ifndef IMAGO_FS_EXT_IO_H
#define IMAGO_FS_EXT_IO_H

#include <stddef.h>

#include <ext2fs/ext2fs.h>

#include "io/region.h"

/* The manager to pass to ext2fs_open2(). */
extern struct struct_io_manager ext_region_io_manager;

/* Longest name ext_io_name() writes, with its NUL. */
#define EXT_IO_NAME_MAX 48

/* Write the channel name for r into name[EXT_IO_NAME_MAX]. */
void ext_io_name(const struct region *r, char name[EXT_IO_NAME_MAX]);

/* The last read error (a negative errno from region_pread) seen on the channel, or 0.
 * libext2fs reports a failed read with its own error codes; this keeps the real cause so
 * that an EIO on the device is not mistaken for damaged metadata. */
int ext_io_last_errno(io_channel ch);

#endif
