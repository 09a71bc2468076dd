/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * NTFS reader internals (ntfs.c, ntfs_mft.c, ntfs_dir.c): just enough of NTFS to find the
 * cluster bitmap, the volume name and state, and hiberfil.sys. Every on-disk structure is
 * validated before use; see ntfs_mft.c for why this is our own reader and not libntfs-3g.
 *
 * On-disk layouts follow the libfsntfs documentation ("New Technologies File System
 * (NTFS)") and Microsoft's descriptions of MFT records, attributes and index records.
 */
#ifndef IMAGO_FS_NTFS_H
#define IMAGO_FS_NTFS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fs/fs.h"

/* Well-known MFT records. */
enum {
	NTFS_FILE_MFT = 0,
	NTFS_FILE_MFTMIRR = 1,
	NTFS_FILE_LOGFILE = 2,
	NTFS_FILE_VOLUME = 3,
	NTFS_FILE_ROOT = 5,
	NTFS_FILE_BITMAP = 6,
	NTFS_FILE_UPCASE = 10,
};

/* Attribute types. */
enum {
	NTFS_AT_STANDARD_INFORMATION = 0x10,
	NTFS_AT_ATTRIBUTE_LIST = 0x20,
	NTFS_AT_FILE_NAME = 0x30,
	NTFS_AT_VOLUME_NAME = 0x60,
	NTFS_AT_VOLUME_INFORMATION = 0x70,
	NTFS_AT_DATA = 0x80,
	NTFS_AT_INDEX_ROOT = 0x90,
	NTFS_AT_INDEX_ALLOCATION = 0xA0,
	NTFS_AT_BITMAP = 0xB0,
	NTFS_AT_END = 0xFFFFFFFFu,
};

#define NTFS_ATTR_COMPRESSION_MASK 0x00FFu
#define NTFS_ATTR_ENCRYPTED 0x4000u
#define NTFS_ATTR_SPARSE 0x8000u

#define NTFS_MFT_IN_USE 0x0001u
#define NTFS_MFT_DIRECTORY 0x0002u

#define NTFS_LCN_HOLE UINT64_MAX      /* a sparse run */
#define NTFS_MAX_VCN (1ull << 48)     /* no attribute is longer (clusters); keeps sums small */
#define NTFS_ATTR_LIST_MAX (256u << 10) /* as ntfs-3g: a longer $ATTRIBUTE_LIST is damage */

static inline uint16_t ntfs_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t ntfs_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t ntfs_le64(const uint8_t *p)
{
	return (uint64_t)ntfs_le32(p) | (uint64_t)ntfs_le32(p + 4) << 32;
}

/* One run of an attribute's runlist: clusters [vcn, vcn + len) of the attribute are the
 * volume clusters [lcn, lcn + len), or read as zeros when lcn is NTFS_LCN_HOLE. */
struct ntfs_run {
	uint64_t vcn, lcn, len;
};

struct ntfs_rl {
	struct ntfs_run *v;
	size_t n, cap;
};

/* What the boot sector says. */
struct ntfs_boot {
	uint32_t sector_size;
	uint32_t cluster_size;
	unsigned cluster_bits;
	uint32_t mft_rec_size;
	uint32_t index_rec_size;
	uint64_t total_sectors;   /* excludes the backup boot sector */
	uint64_t nr_clusters;
	uint64_t mft_lcn, mftmirr_lcn;
	uint64_t serial;
};

struct ntfs_vol {
	const struct region *r;
	struct imago_err *err;
	struct ntfs_boot b;
	struct ntfs_rl mft_rl;    /* $MFT's $DATA */
	const struct ntfs_rl *mft_map; /* what record reads use: mft_rl, or a partial
					  runlist while $MFT itself is being loaded */
	int loading_mft;
	uint64_t mft_size;        /* bytes of $MFT holding records; 0 while loading */
	size_t mem;               /* bytes allocated now, kept under FS_MEM_LIMIT */
};

/* The value of one attribute (type, name), whole: a copy of a resident value, or the
 * runlist of a non-resident one gathered from every extent. */
struct ntfs_stream {
	int nonres;
	uint16_t flags;           /* NTFS_ATTR_* of the first extent */
	uint8_t *res;             /* resident value (res_len bytes) */
	uint32_t res_len;
	struct ntfs_rl rl;
	uint64_t alloc_size, data_size, init_size;
};

/* ntfs.c: the boot sector; 0 when it is NTFS, else -EBADMSG and *why says what failed. */
int ntfs_boot_parse(const uint8_t bs[512], struct ntfs_boot *b, const char **why);

/* ntfs_mft.c */
void *ntfs_alloc(struct ntfs_vol *v, size_t size, const char *what);
void ntfs_free(struct ntfs_vol *v, void *p, size_t size);
void ntfs_rl_free(struct ntfs_vol *v, struct ntfs_rl *rl);
void ntfs_stream_free(struct ntfs_vol *v, struct ntfs_stream *s);

/* Undo the update sequence (multi-sector transfer protection) of a record of `size`
 * bytes, checking every stride. what/where name the record in messages. */
/* The same without a message: 0 or -1 (for pages that may legitimately be damaged). */
int ntfs_mst_fixup_quiet(uint8_t *buf, uint32_t size);
int ntfs_fixup(struct ntfs_vol *v, uint8_t *buf, uint32_t size, const char *what,
	       uint64_t where);

/* Read MFT record mft_no into buf (mft_rec_size bytes), fixed up and checked; the record
 * must be in use. */
int ntfs_read_record(struct ntfs_vol *v, uint64_t mft_no, uint8_t *buf);

/* Load $MFT's runlist from record 0 (v->mft_rl, v->mft_size). */
int ntfs_load_mft(struct ntfs_vol *v);

/* Open attribute (type, name) of base record mft_no: name is ASCII ("$I30") or NULL for
 * the unnamed one. -ENOENT when the record has no such attribute. Follows
 * $ATTRIBUTE_LIST into extension records. */
int ntfs_stream_open(struct ntfs_vol *v, uint64_t mft_no, uint32_t type, const char *name,
		     struct ntfs_stream *s);

/* Read len bytes of a stream at off: sparse runs and bytes past the initialized size read
 * as zeros; bytes past the data size are an error. Compressed or encrypted streams are
 * refused (-EOPNOTSUPP): their bytes on disk are not the value. */
int ntfs_stream_read(struct ntfs_vol *v, const struct ntfs_stream *s, uint64_t off,
		     void *buf, size_t len, const char *what);

/* Nonzero when any run of the stream in [0, data size) is sparse. */
int ntfs_stream_has_holes(const struct ntfs_stream *s, uint32_t cluster_size);

/* ntfs_dir.c: is Windows hibernated (hiberfil.sys in the root directory, as ntfs-3g
 * checks)? 0 and *hibernated 0/1 with a reason in why (why_len bytes). */
int ntfs_check_hiberfile(struct ntfs_vol *v, int *hibernated, char *why, size_t why_len);

/* ntfs_dir.c: does $LogFile say the volume was not shut down cleanly (ntfs-3g's
 * ntfs_check_logfile + ntfs_is_logfile_clean)? 0 and *unclean 0/1 with a reason. */
int ntfs_check_logfile(struct ntfs_vol *v, int *unclean, char *why, size_t why_len);

#endif
