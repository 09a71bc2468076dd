// SPDX-License-Identifier: GPL-3.0-or-later
#include "plan_show.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static void err_copy_public(struct imago_err *dst, const struct imago_err *src)
{
	memcpy(dst, src, sizeof(*dst));
}

static ssize_t image_read(void *opaque, void *buf, size_t len, uint64_t off)
{
	return imago_image_pread(opaque, buf, len, off);
}

int plan_of_image(imago_image *img, const char *name, bool warn_only, struct smart_plan *p)
{
	struct imago_info in;
	imago_image_info(img, &in);
	struct region r = region_cb(image_read, img, in.device_size, name);
	struct imago_err err = { 0 };
	int rc = smart_plan_build(&r, in.logical_sector_size, 0, p, &err);
	if (rc >= 0)
		return 0;
	/* A read through the image failed: the image's own error names the chunk. */
	const struct imago_err *ie = imago_image_error(img);
	if (ie && ie->code)
		err_copy_public(&err, ie);
	if (warn_only) {
		cli_msg("warning: cannot read the partition map: %s", err.msg);
		return cli_exit_code(err.code ? err.code : rc);
	}
	return cli_fail(err.code ? err.code : rc, &err, name, NULL);
}

const char *plan_scheme_name(const struct smart_plan *p)
{
	switch (p->table->scheme) {
	case PART_GPT: return "gpt";
	case PART_MBR: return "mbr";
	default: return "none";
	}
}

static void guid_text(const uint8_t g[16], char out[37])
{
	snprintf(out, 37,
		 "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X",
		 g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12],
		 g[13], g[14], g[15]);
}

void plan_type_name(const struct smart_plan *p, const struct part_entry *e, char *buf,
		    size_t len)
{
	if (p->table->scheme == PART_GPT) {
		static const struct { const char *guid, *name; } known[] = {
			{ "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem" },
			{ "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System" },
			{ "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", "Microsoft basic data" },
			{ "E3C9E316-0B5C-4DB8-817D-F92DF00215AE", "Microsoft reserved" },
			{ "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC", "Windows recovery" },
			{ "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap" },
			{ "21686148-6449-6E6F-744E-656564454649", "BIOS boot" },
			{ "E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM" },
			{ "A19D880F-05FC-4D3B-A006-743F0F84911E", "Linux RAID" },
			{ "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", "Linux root (x86-64)" },
			{ "933AC7E1-2EB4-4F13-B844-0E14E2AEF915", "Linux home" },
			{ "BC13C2FF-59E6-4262-A352-B275FD6F7172", "Linux extended boot" },
		};
		char g[37];
		guid_text(e->type_guid, g);
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (strcmp(g, known[i].guid) == 0) {
				snprintf(buf, len, "%s", known[i].name);
				return;
			}
		snprintf(buf, len, "%s", g);
		return;
	}
	static const struct { uint8_t id; const char *name; } mbr[] = {
		{ 0x01, "FAT12" }, { 0x04, "FAT16 <32M" }, { 0x05, "Extended" }, { 0x06, "FAT16" },
		{ 0x07, "HPFS/NTFS/exFAT" }, { 0x0b, "W95 FAT32" }, { 0x0c, "W95 FAT32 (LBA)" },
		{ 0x0e, "W95 FAT16 (LBA)" }, { 0x0f, "W95 Ext'd (LBA)" }, { 0x82, "Linux swap" },
		{ 0x83, "Linux" }, { 0x85, "Linux extended" }, { 0x8e, "Linux LVM" },
		{ 0xa5, "FreeBSD" }, { 0xee, "GPT" }, { 0xef, "EFI (FAT-12/16/32)" },
		{ 0xfd, "Linux raid autodetect" },
	};
	for (size_t i = 0; i < sizeof(mbr) / sizeof(mbr[0]); i++)
		if (mbr[i].id == e->mbr_type) {
			snprintf(buf, len, "%s (0x%02x)", mbr[i].name, e->mbr_type);
			return;
		}
	snprintf(buf, len, "0x%02x", e->mbr_type);
}

static const char *status_text(const struct plan_part *pp)
{
	switch (pp->status) {
	case PLAN_FS_OK: return "";
	case PLAN_FS_UNKNOWN: return "not recognised: copied whole";
	case PLAN_FS_FAILED: return "unreadable: copied whole";
	case PLAN_FS_UNSAFE: return "unsafe: copied whole";
	case PLAN_FS_CONTAINER: return "container";
	}
	return "";
}

/* Bytes the partition keeps (USED in the plan's map). */
static uint64_t kept_bytes(const struct plan_part *pp)
{
	return pp->entry.size - pp->free_bytes;
}

void plan_print(FILE *f, const struct smart_plan *p)
{
	char b1[32], b2[32], b3[32], type[64];
	cli_fmt_bytes(p->table->disk_size, b1, sizeof(b1));
	fprintf(f, "Partition table:  %s", plan_scheme_name(p));
	if (p->table->scheme != PART_NONE)
		fprintf(f, ", %u-byte sectors", p->table->sector_size);
	if (p->table->flags & PART_GPT_BACKUP_USED)
		fprintf(f, " (primary GPT damaged: read from the backup)");
	if (p->table->flags & PART_HYBRID_MBR)
		fprintf(f, " (hybrid MBR)");
	fprintf(f, "\n");
	if (!p->nparts) {
		fprintf(f, "  (no partitions and no filesystem recognised)\n");
		return;
	}
	fprintf(f, "  %-3s %12s %10s  %-22s %-7s %-16s %-36s %10s  %s\n", "#", "start", "size",
		"type", "fs", "label", "uuid", "used", "name");
	for (size_t i = 0; i < p->nparts; i++) {
		const struct plan_part *pp = &p->parts[i];
		cli_fmt_bytes(pp->entry.size, b2, sizeof(b2));
		if (p->table->scheme == PART_NONE)
			snprintf(type, sizeof(type), "-");
		else
			plan_type_name(p, &pp->entry, type, sizeof(type));
		if (pp->driver && pp->status == PLAN_FS_OK)
			cli_fmt_bytes(pp->facts.used_bytes, b3, sizeof(b3));
		else
			snprintf(b3, sizeof(b3), "-");
		fprintf(f, "  %-3u %12" PRIu64 " %10s  %-22.22s %-7s %-16.16s %-36s %10s  %s%s%s\n",
			pp->entry.number, pp->entry.start, b2, type,
			pp->driver ? pp->facts.type[0] ? pp->facts.type : pp->driver->name : "-",
			pp->facts.label[0] ? pp->facts.label : "-",
			pp->facts.uuid[0] ? pp->facts.uuid : "-", b3, pp->entry.name,
			status_text(pp)[0] ? pp->entry.name[0] ? " " : "" : "",
			status_text(pp)[0] ? status_text(pp) : "");
	}
	uint64_t tot[6];
	extent_map_totals(&p->map, tot);
	cli_fmt_bytes(tot[IMAGO_USED], b2, sizeof(b2));
	cli_fmt_bytes(tot[IMAGO_FREE], b3, sizeof(b3));
	fprintf(f, "Smart image keeps %s of %s (%s free, not stored)%s\n", b2, b1, b3,
		p->whole_disk ? ": whole disk (odd layout)" : "");
}

void plan_print_json(FILE *f, const struct smart_plan *p)
{
	uint64_t tot[6];
	extent_map_totals(&p->map, tot);
	fprintf(f, "{\"scheme\":\"%s\",\"sector_size\":%u,\"disk_size\":%" PRIu64
		   ",\"backup_gpt_used\":%s,\"hybrid_mbr\":%s,\"whole_disk\":%s"
		   ",\"kept_bytes\":%" PRIu64 ",\"free_bytes\":%" PRIu64 ",\"partitions\":[",
		plan_scheme_name(p), p->table->sector_size, p->table->disk_size,
		p->table->flags & PART_GPT_BACKUP_USED ? "true" : "false",
		p->table->flags & PART_HYBRID_MBR ? "true" : "false",
		p->whole_disk ? "true" : "false", tot[IMAGO_USED], tot[IMAGO_FREE]);
	for (size_t i = 0; i < p->nparts; i++) {
		const struct plan_part *pp = &p->parts[i];
		char type[64];
		plan_type_name(p, &pp->entry, type, sizeof(type));
		fprintf(f, "%s{\"number\":%u,\"start\":%" PRIu64 ",\"size\":%" PRIu64 ",\"type\":",
			i ? "," : "", pp->entry.number, pp->entry.start, pp->entry.size);
		cli_json_str(f, p->table->scheme == PART_NONE ? "" : type);
		fprintf(f, ",\"name\":");
		cli_json_str(f, pp->entry.name);
		fprintf(f, ",\"fs\":");
		cli_json_str(f, pp->driver ? pp->facts.type : "");
		fprintf(f, ",\"label\":");
		cli_json_str(f, pp->facts.label);
		fprintf(f, ",\"uuid\":");
		cli_json_str(f, pp->facts.uuid);
		fprintf(f, ",\"used_bytes\":%" PRIu64 ",\"kept_bytes\":%" PRIu64
			   ",\"block_size\":%u,\"status\":",
			pp->driver && pp->status == PLAN_FS_OK ? pp->facts.used_bytes : 0,
			kept_bytes(pp), pp->facts.block_size);
		static const char *const st[] = { "ok", "unknown", "failed", "unsafe", "container" };
		cli_json_str(f, st[pp->status]);
		fprintf(f, ",\"message\":");
		cli_json_str(f, pp->message);
		fprintf(f, "}");
	}
	fprintf(f, "],\"warnings\":[");
	for (size_t i = 0; i < p->nwarnings; i++) {
		if (i)
			fputc(',', f);
		cli_json_str(f, p->warnings[i]);
	}
	fprintf(f, "]}");
}

void plan_warn(const struct smart_plan *p)
{
	for (size_t i = 0; i < p->nwarnings; i++)
		cli_msg("warning: %s", p->warnings[i]);
}

int plan_metadata(const struct smart_plan *p, const char **kv, size_t room, char **pool)
{
	/* Sized in one pass, filled in the second: pointers into one allocation. */
	size_t need = 0, n = 0, used = 0;
	char *buf = NULL;
	for (int pass = 0; pass < 2; pass++) {
		n = 0;
		used = 0;
#define PUT(key_fmt, key_arg, val_fmt, ...)                                                    \
	do {                                                                                   \
		char k_[64], v_[512];                                                          \
		snprintf(k_, sizeof(k_), key_fmt, key_arg);                                    \
		snprintf(v_, sizeof(v_), val_fmt, __VA_ARGS__);                                \
		size_t kl_ = strlen(k_) + 1, vl_ = strlen(v_) + 1;                             \
		if (pass) {                                                                    \
			if (n + 2 >= room)                                                     \
				goto full;                                                     \
			memcpy(buf + used, k_, kl_);                                           \
			kv[n++] = buf + used;                                                  \
			memcpy(buf + used + kl_, v_, vl_);                                     \
			kv[n++] = buf + used + kl_;                                            \
		}                                                                              \
		used += kl_ + vl_;                                                             \
	} while (0)
		PUT("%s", "part.scheme", "%s", plan_scheme_name(p));
		if (p->table->scheme != PART_NONE)
			PUT("%s", "part.sector_size", "%u", p->table->sector_size);
		for (size_t i = 0; i < p->nparts; i++) {
			const struct plan_part *pp = &p->parts[i];
			unsigned num = pp->entry.number;
			char type[64];
			plan_type_name(p, &pp->entry, type, sizeof(type));
			PUT("part.%u.start", num, "%" PRIu64, pp->entry.start);
			PUT("part.%u.size", num, "%" PRIu64, pp->entry.size);
			if (p->table->scheme != PART_NONE)
				PUT("part.%u.type", num, "%s", type);
			if (pp->entry.name[0])
				PUT("part.%u.name", num, "%s", pp->entry.name);
			if (pp->driver) {
				PUT("part.%u.fs", num, "%s", pp->facts.type);
				if (pp->facts.label[0])
					PUT("part.%u.label", num, "%s", pp->facts.label);
				if (pp->facts.uuid[0])
					PUT("part.%u.uuid", num, "%s", pp->facts.uuid);
				PUT("part.%u.used", num, "%" PRIu64, pp->facts.used_bytes);
			}
			static const char *const st[] = { "smart", "copied (not recognised)",
							  "copied (unreadable)", "copied (unsafe)",
							  "container" };
			PUT("part.%u.imaged", num, "%s", st[pp->status]);
		}
#undef PUT
		if (!pass) {
			need = used;
			if (!(buf = malloc(need ? need : 1)))
				return -1;
		}
	}
	kv[n] = NULL;
	*pool = buf;
	return (int)n;
full:
	free(buf);
	return -1;
}
