/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libimago: make, read, check and restore imago disk images.
 *
 * Conventions: every function returning int returns 0 (or a count) on success and a
 * negative errno on failure, with fixed meanings:
 *   -EBADMSG    the image (or a structure read from a disk) is damaged
 *   -ENOTSUP    not an imago image of a version/feature this library knows
 *   -EIO        a read or write failed on the medium
 *   -ENOSPC     the output is full
 *   -EINVAL     a bad argument
 * Detail (what, where) is kept on the handle: imago_errmsg() gives one line.
 * The library never prints, never exits and never aborts on bad input.
 */
#ifndef IMAGO_H
#define IMAGO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IMAGO_VERSION_STRING "1.0.0"
#define IMAGO_FORMAT_MAJOR 1
#define IMAGO_FORMAT_MINOR 0

#define IMAGO_CHUNK_MIN (64u * 1024)
#define IMAGO_CHUNK_MAX (16u * 1024 * 1024)
#define IMAGO_CHUNK_DEFAULT (1u * 1024 * 1024)
#define IMAGO_LEVEL_DEFAULT 3
#define IMAGO_DIGEST_LEN 32

/* States of the extent map (docs/FORMAT.md §2); values are on-disk. */
enum imago_state {
	IMAGO_USED = 1,
	IMAGO_FREE = 2,
	IMAGO_ZERO = 3,
	IMAGO_BAD = 4,
	IMAGO_UNTRIED = 5,
};

struct imago_extent {
	uint64_t offset;
	uint64_t length;
	enum imago_state state;
};

/* Where an error happened. Filled by every failing call that takes an imago_err. */
struct imago_err {
	int code;             /* negative errno, as returned */
	int64_t file_offset;  /* offset in the image/file concerned, or -1 */
	int64_t dev_offset;   /* logical device offset concerned, or -1 */
	int64_t chunk;        /* chunk number concerned, or -1 */
	int in_target;        /* 1: writing the restore/clone target failed (the target is
				 the place to name), 0 otherwise */
	char msg[512];        /* one line, no trailing newline: what failed and where */
};

/* Progress: called from the thread that drives the operation, at most ~10 times a second
 * and once at the end (done == total). Return nonzero to cancel (-ECANCELED). */
typedef int (*imago_progress_fn)(void *opaque, uint64_t done, uint64_t total);

/* ---------------------------------------------------------------- create */

struct imago_create_opts {
	int source_fd;           /* readable; a file, block device or pipe */
	uint64_t source_size;    /* bytes to image (required: sources have a known size) */
	uint32_t logical_sector_size;   /* 0 = 512 */
	uint32_t physical_sector_size;  /* 0 = logical */
	int out_fd;              /* written sequentially, never seeked */
	uint32_t chunk_size;     /* 0 = IMAGO_CHUNK_DEFAULT */
	int level;               /* zstd level 1..19; 0 = default */
	unsigned threads;        /* 0 = all online CPUs */
	const char *const *metadata; /* NULL-terminated key, value, key, value, ... or NULL */
	/* Smart imaging: the allocation map of the source (runs of USED and FREE tiling
	 * [0, source_size), sorted and coalesced), or NULL to keep every byte (sector mode).
	 * FREE bytes are not read (the source must then allow pread) and not stored. */
	const struct imago_extent *alloc;
	size_t alloc_count;
	imago_progress_fn progress;
	void *progress_opaque;
	/* Forensic (lib/forensic): stream digests of exactly the bytes read, in device order
	 * (unreadable bytes as zeros), or NULL. The writer feeds each chunk right after
	 * reading it and stores the digests in the metadata (hash.md5, hash.sha1,
	 * hash.sha256) with acquire.end and the read errors (docs/FORMAT.md §5.1). */
	struct imago_mhash *hash;
	/* Unreadable source bytes: 0 (default) fails with -EIO at the first one. Nonzero
	 * (sector mode, seekable source only): a failed chunk is read again read_retries
	 * times, then sector by sector (logical sector size), each sector read_retries + 1
	 * times; sectors that still fail are zeros in the image, BAD in its extent map and
	 * listed in result.bad_bytes and in the metadata. */
	int keep_going;
	unsigned read_retries;
	/* Called (on the reader thread) for each unreadable range as it is found. */
	void (*on_bad)(void *opaque, uint64_t offset, uint64_t length, int error);
	void *on_bad_opaque;
};

struct imago_create_result {
	uint64_t device_size;
	uint64_t bytes_read;     /* source bytes read (USED bytes in smart mode) */
	uint64_t free_bytes;     /* FREE bytes: neither read nor stored */
	uint64_t stored_bytes;   /* payload bytes of DATA frames */
	uint64_t image_bytes;    /* everything written */
	uint64_t data_chunks, zero_chunks;
	uint8_t digest[IMAGO_DIGEST_LEN];
	uint64_t bad_bytes;      /* keep_going: bytes that could not be read (zeros, BAD) */
	uint64_t bad_ranges;
};

int imago_create(const struct imago_create_opts *opts, struct imago_create_result *res,
		 struct imago_err *err);

/* ---------------------------------------------------------------- reading */

typedef struct imago_image imago_image;

struct imago_info {
	uint16_t version_major, version_minor;
	uint64_t incompat_features, compat_features;
	uint64_t device_size;
	uint32_t chunk_size;
	uint32_t logical_sector_size, physical_sector_size;
	int codec, level;
	uint64_t data_chunks, zero_frames, stored_bytes, image_bytes;
	uint64_t bytes_by_state[6];   /* indexed by enum imago_state */
	uint64_t extent_count;
	uint8_t digest[IMAGO_DIGEST_LEN];
};

/* Open a complete image for random access (needs a seekable file). Checks header,
 * trailer, sections and their invariants; chunks are checked as they are read. */
int imago_image_open(const char *path, imago_image **out, struct imago_err *err);
int imago_image_open_fd(int fd, const char *name, imago_image **out, struct imago_err *err);
void imago_image_close(imago_image *img);

int imago_image_info(const imago_image *img, struct imago_info *info);
/* Metadata value for key, or NULL. Valid until close. */
const char *imago_image_meta(const imago_image *img, const char *key);
/* Iterate metadata: returns 1 and sets key/value for index i, 0 past the end. */
int imago_image_meta_at(const imago_image *img, size_t i, const char **key, const char **value);

/* Read len bytes of the logical device at offset (non-USED bytes read as zeros). Returns
 * bytes read (short only at end of device) or a negative errno; -EBADMSG never returns
 * wrong data. Thread-safe: concurrent calls share the chunk cache (below) and decode
 * different chunks in parallel. */
ssize_t imago_image_pread(imago_image *img, void *buf, size_t len, uint64_t offset);

/* Iterate the extent map: calls fn for each extent in order; a nonzero return stops. */
int imago_image_extents(const imago_image *img,
			int (*fn)(void *opaque, const struct imago_extent *e), void *opaque);

/* Detail of the last error on this handle. */
const struct imago_err *imago_image_error(const imago_image *img);

/* ---------------------------------------------------------------- random access: cache
 * imago_image_pread keeps decoded chunks in a bounded cache shared by every thread, and
 * decodes ahead of sequential readers on worker threads (started at the first read-ahead,
 * so a process may open an image, then fork). The defaults suit a FUSE mount or an NBD
 * server; a program that forks after reading should turn read-ahead off until then. */

enum imago_cache_flags {
	IMAGO_CACHE_NO_READAHEAD = 1 << 0,  /* decode only what is asked for */
};

struct imago_cache_opts {
	size_t cache_bytes;   /* decoded chunks kept; 0 = 64 MiB (always room for the
				 read-ahead of 4 readers plus 8 chunks) */
	unsigned threads;     /* read-ahead decoders; 0 = online CPUs, at most 8 */
	unsigned readahead;   /* chunks decoded ahead of a sequential reader; 0 = 2 per
				 decoder, at least 4 */
	unsigned flags;       /* enum imago_cache_flags */
};

struct imago_cache_stats {
	uint32_t chunk_size;
	size_t slots;          /* chunks the cache holds */
	unsigned threads, readahead;
	uint64_t hits;         /* chunk lookups served from the cache (or a decode under way) */
	uint64_t misses;       /* chunks decoded by the reader that asked */
	uint64_t prefetched;   /* chunks decoded ahead by the workers */
	uint64_t failed;       /* chunk decodes that failed their checks */
};

/* Replace the cache with one sized by o (NULL: defaults). Not while other threads read. */
int imago_image_set_cache(imago_image *img, const struct imago_cache_opts *o);
void imago_image_cache_stats(imago_image *img, struct imago_cache_stats *s);

/* ---------------------------------------------------------------- restore / verify */

enum imago_restore_flags {
	IMAGO_RESTORE_SPARSE = 1 << 0,    /* target reads as zeros already: skip zero writes */
	IMAGO_RESTORE_BLOCKDEV = 1 << 1,  /* target is a block device */
	IMAGO_RESTORE_DISCARD_FREE = 1 << 2, /* discard (TRIM / punch) FREE ranges afterwards */
	IMAGO_RESTORE_ZERO_FREE = 1 << 3,    /* zero FREE ranges afterwards */
};

struct imago_restore_opts {
	int image_fd;            /* a complete image; seekable or a pipe (read sequentially) */
	const char *image_name;  /* for messages */
	int target_fd;           /* written with pwrite() */
	uint64_t target_size;    /* bytes available on the target (0 = grow as needed) */
	unsigned flags;
	unsigned threads;        /* 0 = all online CPUs */
	/* Restore only the device bytes [window_offset, window_offset + window_length),
	 * written at target offset (device offset - window_offset): one partition of a disk
	 * image, or a disk image onto a smaller disk. Both 0: the whole device. The whole
	 * image is still read and checked. */
	uint64_t window_offset, window_length;
	imago_progress_fn progress;
	void *progress_opaque;
};

struct imago_restore_result {
	uint64_t device_size;
	uint64_t bytes_written;
	uint8_t digest[IMAGO_DIGEST_LEN];
};

/* Restores and checks everything on the way (chunk checksums, index, digest); a damaged
 * image returns -EBADMSG with the first damaged place in err. */
int imago_restore(const struct imago_restore_opts *opts, struct imago_restore_result *res,
		  struct imago_err *err);

struct imago_verify_opts {
	int image_fd;
	const char *image_name;
	int against_fd;          /* -1, or a source to compare byte for byte */
	uint64_t against_size;
	unsigned threads;
	imago_progress_fn progress;
	void *progress_opaque;
};

struct imago_verify_result {
	uint64_t device_size;
	uint64_t chunks_checked;
	uint8_t digest[IMAGO_DIGEST_LEN];
};

/* -EBADMSG: the image is damaged (err names the first damaged place);
 * -EILSEQ: the image is sound but differs from the source given with against_fd. */
int imago_verify(const struct imago_verify_opts *opts, struct imago_verify_result *res,
		 struct imago_err *err);

/* ---------------------------------------------------------------- clone */

struct imago_clone_opts {
	int source_fd;           /* read with pread */
	uint64_t source_size;
	/* USED/FREE runs tiling [0, source_size) (as for create), or NULL for every byte */
	const struct imago_extent *alloc;
	size_t alloc_count;
	int target_fd;           /* written with pwrite at the same offsets */
	uint64_t target_size;    /* bytes at or past this are not written (0 = source_size) */
	unsigned flags;          /* IMAGO_RESTORE_SPARSE / _BLOCKDEV / _DISCARD_FREE / _ZERO_FREE */
	unsigned threads;
	imago_progress_fn progress;
	void *progress_opaque;
};

struct imago_clone_result {
	uint64_t bytes_read, bytes_written;
	uint8_t digest[IMAGO_DIGEST_LEN]; /* content digest of what was copied (FREE as zeros) */
};

/* Copy the USED bytes of a source to a target (disk to disk or file) in one pass, reading
 * ahead while writing. FREE bytes are left alone on the target (or discarded / zeroed
 * with the flags); on a sparse target, zero blocks are not written. */
int imago_clone(const struct imago_clone_opts *opts, struct imago_clone_result *res,
		struct imago_err *err);

/* Content digest (docs/FORMAT.md §7) of size bytes read from fd. */
int imago_digest_fd(int fd, uint64_t size, unsigned threads, uint8_t out[IMAGO_DIGEST_LEN],
		    imago_progress_fn progress, void *opaque, struct imago_err *err);

const char *imago_state_name(enum imago_state s);

/* ================================================================ forensic (lib/forensic)
 * Evidence digests (MD5, SHA-1, SHA-256 of the exact bytes), evidence containers read
 * through one interface (imago images, E01 through libewf, raw files and devices), and
 * the E01 writer. */

enum imago_hash_alg {
	IMAGO_HASH_MD5 = 1 << 0,
	IMAGO_HASH_SHA1 = 1 << 1,
	IMAGO_HASH_SHA256 = 1 << 2,
};
#define IMAGO_HASH_ALL 7u

/* Digests in lowercase hex; an algorithm not in algs has an empty string. */
struct imago_hashes {
	unsigned algs;
	uint64_t bytes;          /* bytes hashed */
	char md5[33], sha1[41], sha256[65];
};

/* "md5", "sha1", "sha256" (one bit of enum imago_hash_alg), or NULL. */
const char *imago_hash_name(unsigned alg);
/* The hex digest of alg in hs, or NULL when hs does not hold it. */
const char *imago_hashes_get(const struct imago_hashes *hs, unsigned alg);

/* Several digests of one stream, each on its own thread. imago_mhash_feed queues buf (not
 * copied) and returns a ticket (>= 0) or -EINVAL after final; buf must stay unchanged
 * until imago_mhash_wait(ticket) (or drain) returns. Feed from one thread at a time. */
typedef struct imago_mhash imago_mhash;
int imago_mhash_new(unsigned algs, imago_mhash **out);
unsigned imago_mhash_algs(const imago_mhash *h);
int64_t imago_mhash_feed(imago_mhash *h, const void *buf, size_t len);
void imago_mhash_wait(imago_mhash *h, uint64_t ticket);
void imago_mhash_drain(imago_mhash *h);
uint64_t imago_mhash_bytes(const imago_mhash *h);
int imago_mhash_final(imago_mhash *h, struct imago_hashes *out);
void imago_mhash_free(imago_mhash *h);

/* Hash size bytes read from fd (from offset 0, with pread) in one pass. */
int imago_hash_fd(int fd, uint64_t size, unsigned algs, struct imago_hashes *out,
		  imago_progress_fn progress, void *opaque, struct imago_err *err);

/* An evidence container opened read-only: an imago image, an E01 (EWF, all its segments
 * found from the first), or a raw file / block device (split raw: the first piece,
 * NAME.001). pread is thread-safe; bytes never stored read as zeros. */
typedef struct imago_evidence imago_evidence;
enum imago_evidence_kind { IMAGO_EVIDENCE_IMAGO = 1, IMAGO_EVIDENCE_EWF = 2, IMAGO_EVIDENCE_RAW = 3 };
int imago_evidence_open(const char *path, imago_evidence **out, struct imago_err *err);
void imago_evidence_close(imago_evidence *ev);
enum imago_evidence_kind imago_evidence_kind(const imago_evidence *ev);
uint64_t imago_evidence_size(const imago_evidence *ev);
uint32_t imago_evidence_sector_size(const imago_evidence *ev);
ssize_t imago_evidence_pread(imago_evidence *ev, void *buf, size_t len, uint64_t offset);
/* Metadata under imago's key names (docs/FORMAT.md §5.1: case.*, source.*, ...). */
int imago_evidence_meta_at(const imago_evidence *ev, size_t i, const char **key,
			   const char **value);
const char *imago_evidence_meta(const imago_evidence *ev, const char *key);
/* The digests the container stores (hash.* of an imago image, MD5/SHA1 of an E01). */
void imago_evidence_stored_hashes(const imago_evidence *ev, struct imago_hashes *out);
/* Unreadable ranges the container records (BAD extents, E01 acquiry errors): calls fn
 * for each in order. */
int imago_evidence_bad_ranges(const imago_evidence *ev,
			      int (*fn)(void *opaque, uint64_t offset, uint64_t length),
			      void *opaque);
/* E01 only: chunks whose checksum failed while reading so far (0 otherwise). */
uint64_t imago_evidence_damaged(imago_evidence *ev);
/* The underlying imago image (kind IMAGO), or NULL. */
imago_image *imago_evidence_image(imago_evidence *ev);
const struct imago_err *imago_evidence_error(const imago_evidence *ev);

/* Write an E01 (EnCase 6 format through libewf) sequentially. path names the first
 * segment (NAME.E01); size must be a multiple of sector_size. */
struct imago_ewf_opts {
	const char *path;
	uint64_t size;
	uint32_t sector_size;    /* 0 = 512 */
	int level;               /* 0 none, 1 fast (default), 2 best (deflate) */
	uint64_t segment_size;   /* 0 = libewf's default (1.4 GiB) */
	const char *const *metadata; /* imago keys, as for create; case.* and source.* go to
					the E01 header */
};
typedef struct imago_ewf_writer imago_ewf_writer;
int imago_ewf_create(const struct imago_ewf_opts *o, imago_ewf_writer **out,
		     struct imago_err *err);
int imago_ewf_write(imago_ewf_writer *w, const void *buf, size_t len, struct imago_err *err);
/* Record an unreadable range (an acquiry error) in sectors covering it. */
int imago_ewf_add_error(imago_ewf_writer *w, uint64_t offset, uint64_t length,
			struct imago_err *err);
/* Store the digests (MD5, SHA-1; SHA-256 as a hash value) and close. Frees w. */
int imago_ewf_finish(imago_ewf_writer *w, const struct imago_hashes *hs, struct imago_err *err);
/* Close without finishing (the files are incomplete); frees w. */
void imago_ewf_abort(imago_ewf_writer *w);

#ifdef __cplusplus
}
#endif
#endif
