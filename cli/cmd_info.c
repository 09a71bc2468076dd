/* SPDX-License-Identifier: GPL-3.0-or-later */
/* imago info [--json] IMAGE: what an image holds, for people or as one JSON object. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "common.h"
#include "device.h"
#include "plan_show.h"

void cmd_info_help(FILE *f)
{
	fprintf(f, "Usage: imago info [--json] IMAGE|DEVICE\n\n"
		   "Show an image's format version, source, sizes, ratio, extent summary,\n"
		   "chunk counts, content digest and partition map. The image must be a\n"
		   "complete file. Given a disk or a partition (or a raw disk file with --raw),\n"
		   "show its partition map and filesystems (what a smart image would keep).\n\n"
		   "      --raw             read a file as a raw disk, not as an image\n"
		   "      --json            print one JSON object on stdout\n"
		   "  -h, --help            this help\n");
}

#define N_STATES 6 /* indexes of bytes_by_state: enum imago_state values 1..5 */

struct extent_tally {
	uint64_t count[N_STATES];
};

static int tally_extent(void *opaque, const struct imago_extent *e)
{
	struct extent_tally *t = opaque;
	if ((unsigned)e->state < N_STATES)
		t->count[e->state]++;
	return 0;
}

static const char *codec_name(int codec)
{
	return codec == 1 ? "zstd" : "unknown";
}

/* Lowercase name of a state for JSON keys ("used", "zero", ...). */
static void state_key(enum imago_state s, char *buf, size_t len)
{
	const char *n = imago_state_name(s);
	size_t i = 0;
	for (; n && n[i] && i + 1 < len; i++)
		buf[i] = (char)((n[i] >= 'A' && n[i] <= 'Z') ? n[i] - 'A' + 'a' : n[i]);
	buf[i] = '\0';
}

static void print_human(const char *path, const imago_image *img, const struct imago_info *in,
			const struct extent_tally *t, const struct smart_plan *plan)
{
	char b1[32], b2[32], hex[2 * IMAGO_DIGEST_LEN + 1];
	printf("Image:            %s\n", path);
	printf("Format:           imago %u.%u", in->version_major, in->version_minor);
	if (in->incompat_features || in->compat_features)
		printf(" (incompat 0x%" PRIx64 ", compat 0x%" PRIx64 ")", in->incompat_features,
		       in->compat_features);
	printf("\n");
	const char *v;
	if ((v = imago_image_meta(img, "tool")))
		printf("Tool:             %s\n", v);
	if ((v = imago_image_meta(img, "created")))
		printf("Created:          %s\n", v);
	if ((v = imago_image_meta(img, "source.path"))) {
		const char *kind = imago_image_meta(img, "source.kind");
		printf("Source:           %s%s%s%s\n", v, kind ? " (" : "", kind ? kind : "",
		       kind ? ")" : "");
	}
	if ((v = imago_image_meta(img, "source.model")))
		printf("Source model:     %s\n", v);
	if ((v = imago_image_meta(img, "source.serial")))
		printf("Source serial:    %s\n", v);
	if ((v = imago_image_meta(img, "mode")))
		printf("Mode:             %s\n", v);
	cli_fmt_bytes(in->device_size, b1, sizeof(b1));
	printf("Device size:      %" PRIu64 " bytes (%s)\n", in->device_size, b1);
	printf("Sector size:      %u logical, %u physical\n", in->logical_sector_size,
	       in->physical_sector_size);
	cli_fmt_bytes(in->chunk_size, b1, sizeof(b1));
	printf("Chunk size:       %s\n", b1);
	printf("Compression:      %s, level %d\n", codec_name(in->codec), in->level);
	printf("Data chunks:      %" PRIu64 "\n", in->data_chunks);
	printf("Zero frames:      %" PRIu64 "\n", in->zero_frames);
	cli_fmt_bytes(in->stored_bytes, b1, sizeof(b1));
	printf("Stored bytes:     %" PRIu64 " (%s)\n", in->stored_bytes, b1);
	cli_fmt_bytes(in->image_bytes, b2, sizeof(b2));
	printf("Image size:       %" PRIu64 " (%s)\n", in->image_bytes, b2);
	if (in->device_size && in->image_bytes)
		printf("Ratio:            %.1f%% of the device (%.2f:1)\n",
		       100.0 * (double)in->image_bytes / (double)in->device_size,
		       (double)in->device_size / (double)in->image_bytes);
	printf("Extents:          %" PRIu64 "\n", in->extent_count);
	for (int s = IMAGO_USED; s <= IMAGO_UNTRIED; s++) {
		if (!in->bytes_by_state[s] && !t->count[s])
			continue;
		cli_fmt_bytes(in->bytes_by_state[s], b1, sizeof(b1));
		printf("  %-8s        %" PRIu64 " bytes (%s) in %" PRIu64 " extent%s\n",
		       imago_state_name((enum imago_state)s), in->bytes_by_state[s], b1,
		       t->count[s], t->count[s] == 1 ? "" : "s");
	}
	cli_hex(in->digest, IMAGO_DIGEST_LEN, hex);
	printf("Digest:           %s (sha256 tree)\n", hex);
	if (plan)
		plan_print(stdout, plan);
	/* Keys not shown above (later versions and user metadata). */
	const char *k, *val;
	static const char *const shown[] = {"tool", "created", "source.path", "source.kind",
					    "source.model", "source.serial", "mode"};
	bool header = false;
	for (size_t i = 0; imago_image_meta_at(img, i, &k, &val) == 1; i++) {
		bool known = strncmp(k, "part.", 5) == 0; /* shown as the partition map */
		for (size_t j = 0; j < sizeof(shown) / sizeof(shown[0]); j++)
			known = known || strcmp(k, shown[j]) == 0;
		if (known)
			continue;
		if (!header)
			printf("Metadata:\n");
		header = true;
		printf("  %s = %s\n", k, val);
	}
}

static void print_json(const char *path, const imago_image *img, const struct imago_info *in,
		       const struct extent_tally *t, const struct smart_plan *plan)
{
	char hex[2 * IMAGO_DIGEST_LEN + 1];
	printf("{\"image\":");
	cli_json_str(stdout, path);
	printf(",\"format\":{\"major\":%u,\"minor\":%u,\"incompat_features\":%" PRIu64
	       ",\"compat_features\":%" PRIu64 "}",
	       in->version_major, in->version_minor, in->incompat_features, in->compat_features);
	printf(",\"source\":{");
	static const char *const src_keys[] = {"path", "kind", "model", "serial"};
	for (size_t i = 0; i < sizeof(src_keys) / sizeof(src_keys[0]); i++) {
		char key[32];
		snprintf(key, sizeof(key), "source.%s", src_keys[i]);
		const char *v = imago_image_meta(img, key);
		printf("%s\"%s\":", i ? "," : "", src_keys[i]);
		if (v)
			cli_json_str(stdout, v);
		else
			printf("null");
	}
	printf("}");
	printf(",\"device_size\":%" PRIu64 ",\"logical_sector_size\":%u"
	       ",\"physical_sector_size\":%u,\"chunk_size\":%u",
	       in->device_size, in->logical_sector_size, in->physical_sector_size,
	       in->chunk_size);
	printf(",\"codec\":\"%s\",\"level\":%d", codec_name(in->codec), in->level);
	printf(",\"data_chunks\":%" PRIu64 ",\"zero_frames\":%" PRIu64 ",\"stored_bytes\":%" PRIu64
	       ",\"image_bytes\":%" PRIu64,
	       in->data_chunks, in->zero_frames, in->stored_bytes, in->image_bytes);
	/* ratio: device bytes per image byte (3.5 means 3.5:1). */
	printf(",\"ratio\":%.4f", in->image_bytes ? (double)in->device_size / (double)in->image_bytes
						  : 0.0);
	printf(",\"extent_count\":%" PRIu64 ",\"extents\":{", in->extent_count);
	for (int s = IMAGO_USED; s <= IMAGO_UNTRIED; s++) {
		char key[16];
		state_key((enum imago_state)s, key, sizeof(key));
		printf("%s\"%s\":{\"bytes\":%" PRIu64 ",\"count\":%" PRIu64 "}",
		       s == IMAGO_USED ? "" : ",", key, in->bytes_by_state[s], t->count[s]);
	}
	printf("}");
	cli_hex(in->digest, IMAGO_DIGEST_LEN, hex);
	printf(",\"digest\":\"%s\"", hex);
	if (plan) {
		printf(",\"partition_map\":");
		plan_print_json(stdout, plan);
	}
	printf(",\"metadata\":{");
	const char *k, *v;
	for (size_t i = 0; imago_image_meta_at(img, i, &k, &v) == 1; i++) {
		if (i)
			putchar(',');
		cli_json_str(stdout, k);
		putchar(':');
		cli_json_str(stdout, v);
	}
	printf("}}\n");
}

/* info of a disk, partition or plain file: its partition map and filesystems. */
static int info_device(const char *path, bool json)
{
	struct cli_source src;
	int rc = device_open_source(path, &src);
	if (rc)
		return rc;
	struct region r = region_fd(src.fd, 0, src.size, path);
	struct smart_plan plan;
	struct imago_err err = { 0 };
	int e = smart_plan_build(&r, src.logical_sector_size, 0, &plan, &err);
	if (e < 0) {
		rc = cli_fail(e, &err, path, NULL);
		device_close_source(&src);
		return rc;
	}
	if (json) {
		printf("{\"device\":");
		cli_json_str(stdout, path);
		printf(",\"kind\":\"%s\",\"size\":%" PRIu64 ",\"logical_sector_size\":%u"
		       ",\"physical_sector_size\":%u,\"model\":",
		       src.is_block ? "block" : "file", src.size, src.logical_sector_size,
		       src.physical_sector_size);
		cli_json_str(stdout, src.model);
		printf(",\"serial\":");
		cli_json_str(stdout, src.serial);
		printf(",\"partition_map\":");
		plan_print_json(stdout, &plan);
		printf("}\n");
	} else {
		char b[32];
		cli_fmt_bytes(src.size, b, sizeof(b));
		printf("Device:           %s (%s)\n", path, src.is_block ? "block device" : "file");
		printf("Size:             %" PRIu64 " bytes (%s)\n", src.size, b);
		printf("Sector size:      %u logical, %u physical\n", src.logical_sector_size,
		       src.physical_sector_size);
		if (src.model[0])
			printf("Model:            %s\n", src.model);
		if (src.serial[0])
			printf("Serial:           %s\n", src.serial);
		plan_print(stdout, &plan);
		plan_warn(&plan);
	}
	smart_plan_free(&plan);
	device_close_source(&src);
	if (fflush(stdout) != 0 || ferror(stdout))
		return cli_sys_fail(errno, "cannot write the output", "(stdout)", NULL);
	return EXIT_OK;
}

int cmd_info(int argc, char **argv)
{
	enum { OPT_JSON = 256, OPT_RAW };
	static const struct option longopts[] = {
		{"json", no_argument, NULL, OPT_JSON},
		{"raw", no_argument, NULL, OPT_RAW},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool json = false, raw = false;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: json = true; break;
		case OPT_RAW: raw = true; break;
		case 'h': cmd_info_help(stdout); return EXIT_OK;
		default: return cli_getopt_error(c, argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage_error(argc - optind < 1 ? "IMAGE is needed" : "too many arguments");
	const char *path = argv[optind];
	/* Random access needs a seekable file; stdin works when it is one (< file). */
	const char *open_path = strcmp(path, "-") == 0 ? "/dev/stdin" : path;

	imago_image *img = NULL;
	struct imago_err err;
	memset(&err, 0, sizeof(err));
	err.file_offset = err.dev_offset = err.chunk = -1;
	struct stat st;
	if (raw || (strcmp(path, "-") != 0 && stat(path, &st) == 0 && S_ISBLK(st.st_mode)))
		return info_device(path, json);
	int r = imago_image_open(open_path, &img, &err);
	if (r == -ENOTSUP && strstr(err.msg, "not an imago image"))
		return cli_fail(r, &err, path, "to see a raw disk file's partition map, use --raw");
	if (r < 0)
		return cli_fail(r, &err, path, NULL);
	struct imago_info in;
	r = imago_image_info(img, &in);
	if (r < 0) {
		int rc = cli_fail(r, imago_image_error(img), path, NULL);
		imago_image_close(img);
		return rc;
	}
	struct extent_tally t;
	memset(&t, 0, sizeof(t));
	r = imago_image_extents(img, tally_extent, &t);
	if (r < 0) {
		int rc = cli_fail(r, imago_image_error(img), path, NULL);
		imago_image_close(img);
		return rc;
	}
	struct smart_plan plan;
	int have_plan = plan_of_image(img, path, true, &plan) == 0;
	if (json)
		print_json(path, img, &in, &t, have_plan ? &plan : NULL);
	else
		print_human(path, img, &in, &t, have_plan ? &plan : NULL);
	if (have_plan)
		smart_plan_free(&plan);
	imago_image_close(img);
	if (fflush(stdout) != 0 || ferror(stdout))
		return cli_sys_fail(errno, "cannot write the output", "(stdout)", NULL);
	return EXIT_OK;
}
