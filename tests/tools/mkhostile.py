#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""
mkhostile: write hostile inputs for tests/cli/hostile.sh.

    mkhostile.py image CASE OUT     an imago image, built from scratch per docs/FORMAT.md
                                    with every checksum valid, holding one lie (CASE)
    mkhostile.py device CASE OUT    the device an image case describes (what reads back)
    mkhostile.py disk CASE OUT      a raw disk with a hostile MBR or GPT (CASE)
    mkhostile.py list image|disk    the case names

Every checksum, CRC and digest is made right, so that only the lie itself is wrong and
only the reader's own range checks can refuse it. Sizes and counts are chosen to make a
careless reader allocate gigabytes, loop forever or read outside the file.
Written by hand (Python, ctypes for libxxhash, the zstd command for compression) because
the point is to write what no well-behaved tool would.
"""
import ctypes
import hashlib
import struct
import subprocess
import sys
import zlib

_xx = ctypes.CDLL("libxxhash.so.0")
_xx.XXH3_64bits_withSeed.restype = ctypes.c_uint64
_xx.XXH3_64bits_withSeed.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]


def xxh3(b, seed=0):
    b = bytes(b)
    return _xx.XXH3_64bits_withSeed(b, len(b), seed)


def zstd(data, *args):
    return subprocess.run(["zstd", "-q", "-c", "--no-check", *args], input=data,
                          capture_output=True, check=True).stdout


MASK = (1 << 64) - 1
CS = 65536
USED, FREE, ZERO = 1, 2, 3


def content():
    """A small device: chunk 0 text (compresses), chunk 1 zeros, chunk 2 noise, chunk 3
    text again, and a short last chunk."""
    text = (b"imago hostile-image test line, compressible text. " * 2000)[:CS]
    import random
    noise = random.Random(3).randbytes(CS)
    return text + bytes(CS) + noise + text[::-1] + text[:5000]


class Image:
    def __init__(self, dev):
        self.dev = dev
        self.hdr = dict(major=1, minor=0, hsize=512, incompat=0, compat=0, device_size=len(dev),
                        chunk_size=CS, lss=512, pss=512, codec=1, level=3, frames_offset=None)
        self.alloc = [[0, len(dev), USED]] if dev else []
        self.alloc_count = self.alloc_length = None
        self.frames = []  # dicts: type lo ll payload sl checksum
        self.exts = []
        n = (len(dev) + CS - 1) // CS
        for c in range(n):
            lo = c * CS
            b = dev[lo:lo + CS]
            if not any(b):
                self.frames.append(dict(type=3, lo=lo, ll=len(b), payload=b"", checksum=0))
                self.exts.append([lo, len(b), ZERO])
                continue
            z = zstd(b, "-3")
            if len(z) < len(b):
                self.frames.append(dict(type=2, lo=lo, ll=len(b), payload=z, checksum=xxh3(b, lo)))
            else:
                self.frames.append(dict(type=1, lo=lo, ll=len(b), payload=b, checksum=xxh3(b, lo)))
            self.exts.append([lo, len(b), USED])
        # coalesce the extent map
        ex = []
        for e in self.exts:
            if ex and ex[-1][2] == e[2]:
                ex[-1][1] += e[1]
            else:
                ex.append(list(e))
        self.exts = ex
        self.meta = [(b"tool", b"mkhostile"), (b"mode", b"sector")]
        self.meta_payload = None
        self.counts = {}   # section magic -> count override
        self.lengths = {}  # section magic -> length override
        self.index = None  # list of entries, or None to derive from the frames
        self.index_hook = None
        self.trailer = {}

    @staticmethod
    def section(magic, count, payload, length=None):
        h = struct.pack("<4sIQQ", magic, 0, count, len(payload) if length is None else length & MASK)
        h += payload
        return h + struct.pack("<Q", xxh3(h))

    def build(self):
        h = self.hdr
        A = self.section(b"IMGA", len(self.alloc) if self.alloc_count is None else self.alloc_count,
                         b"".join(struct.pack("<QQII", o & MASK, l & MASK, s, 0) for o, l, s in self.alloc),
                         self.alloc_length)
        fo = 512 + len(A) if h["frames_offset"] is None else h["frames_offset"]
        hdr = bytearray(512)
        hdr[0:8] = b"\x89IMG\r\n\x1a\n"
        struct.pack_into("<HHIQQQIIIBBHQ", hdr, 8, h["major"], h["minor"], h["hsize"], h["incompat"],
                         h["compat"], h["device_size"] & MASK, h["chunk_size"] & 0xFFFFFFFF, h["lss"],
                         h["pss"], h["codec"], h["level"], 0, fo & MASK)
        struct.pack_into("<Q", hdr, 504, xxh3(hdr[:504]))
        out = bytearray(hdr) + A
        ents = []
        nd = nz = stored = 0
        for f in self.frames:
            off = len(out)
            sl = f.get("sl", len(f["payload"]))
            fh = bytearray(48)
            struct.pack_into("<4sB3xQQQQ", fh, 0, b"IMGF", f["type"], f["lo"] & MASK, f["ll"] & MASK,
                             sl & MASK, f["checksum"])
            struct.pack_into("<Q", fh, 40, xxh3(fh[:40]))
            out += fh + f["payload"]
            if f["type"] == 3:
                nz += 1
            else:
                nd += 1
                stored += sl
                ents.append([f["lo"], off, f["ll"], sl, f["checksum"]])
        if self.index is not None:
            ents = self.index
        if self.index_hook:
            self.index_hook(ents)
        m = len(out)
        M = self.section(b"IMGM", self.counts.get(b"IMGM", len(self.meta)),
                         self.meta_payload if self.meta_payload is not None else
                         b"".join(struct.pack("<HI", len(k), len(v)) + k + v for k, v in self.meta),
                         self.lengths.get(b"IMGM"))
        E = self.section(b"IMGE", self.counts.get(b"IMGE", len(self.exts)),
                         b"".join(struct.pack("<QQII", o & MASK, l & MASK, s, 0) for o, l, s in self.exts),
                         self.lengths.get(b"IMGE"))
        I = self.section(b"IMGI", self.counts.get(b"IMGI", len(ents)),
                         b"".join(struct.pack("<QQIIQ", lo & MASK, fo_ & MASK, ll & 0xFFFFFFFF,
                                              sl & 0xFFFFFFFF, ck) for lo, fo_, ll, sl, ck in ents),
                         self.lengths.get(b"IMGI"))
        out += M + E + I
        dev = self.dev
        d = hashlib.sha256(b"imago-sha256-tree-v1" + struct.pack("<Q", len(dev)))
        for j in range(0, len(dev), 65536):
            d.update(hashlib.sha256(dev[j:j + 65536]).digest())
        t = bytearray(128)
        t[0:8] = b"IMGTRAIL"
        struct.pack_into("<QQQQQQQ", t, 8, m, m + len(M), m + len(M) + len(E),
                         self.trailer.get("data_frames", self.counts.get(b"IMGI", nd)) & MASK, nz,
                         stored, h["device_size"] & MASK)
        t[64:96] = d.digest()
        struct.pack_into("<Q", t, 96, struct.unpack_from("<Q", hdr, 504)[0])
        struct.pack_into("<Q", t, 120, xxh3(t[:120]))
        return bytes(out + t)


def data_frames(img):
    return [f for f in img.frames if f["type"] != 3]


def bomb(n):
    """A zstd frame that inflates to n zero bytes (content size unknown: streamed)."""
    p = subprocess.run(f"head -c {n} /dev/zero | zstd -q -c -19 --no-check", shell=True,
                       capture_output=True, check=True)
    return p.stdout


def image_case(case, want_device=False):
    img = Image(content())
    big = 1 << 62
    if case == "valid":
        pass
    elif case == "free_device_2_61":
        # an image of 851 bytes claiming a 2 EiB device that is all FREE: every structure
        # is sound, but verify's digest would hash 32 bytes per 64 KiB of it (days; so
        # the digest written here is not that device's: nobody could compute it)
        img = Image(b"")
        img.hdr["device_size"] = 1 << 61
        img.alloc = [[0, 1 << 61, FREE]]
        img.exts = [[0, 1 << 61, FREE]]
    elif case == "free_bytes_in_data_frame":
        # the first 4 KiB of chunk 2 are FREE in both maps, but its DATA frame holds
        # noise there (a writer stores zeros): the frame's checksum is made over what it
        # holds, the digest over the device as it reads (zeros there)
        c2 = 2 * CS
        img.alloc = [[0, c2, USED], [c2, 4096, FREE], [c2 + 4096, len(img.dev) - c2 - 4096, USED]]
        img.exts = [[0, CS, USED], [CS, CS, ZERO], [c2, 4096, FREE], [c2 + 4096, len(img.dev) - c2 - 4096, USED]]
        dev = bytearray(img.dev)
        dev[c2:c2 + 4096] = bytes(4096)
        img.dev = bytes(dev)  # the digest is of this device
    elif case == "device_size_2_63":
        img.hdr["device_size"] = 1 << 63
    elif case == "device_size_max":
        img.hdr["device_size"] = MASK
    elif case == "chunk_size_2_31":
        img.hdr["chunk_size"] = 1 << 31
    elif case == "alloc_runs_2_40_in_header":
        img.hdr["frames_offset"] = 512 + 24 + 24 * (1 << 40) + 8
    elif case == "alloc_count_2_60":
        img.alloc_count = 1 << 60
    elif case == "alloc_length_huge":
        img.alloc_length = big
    elif case == "metadata_count_2_40":
        img.counts[b"IMGM"] = 1 << 40
    elif case == "metadata_length_2_62":
        img.lengths[b"IMGM"] = big
    elif case == "metadata_value_length_lie":
        # one entry whose value_length says 4 GiB - 1 inside a 11-byte payload
        img.meta_payload = struct.pack("<HI", 4, 0xFFFFFFFF) + b"toolx"
        img.counts[b"IMGM"] = 1
    elif case == "extent_count_2_61":
        img.counts[b"IMGE"] = 1 << 61
    elif case == "extent_length_2_62":
        img.lengths[b"IMGE"] = big
    elif case == "extent_offsets_wrap":
        # two extents whose offset + length wraps around 2^64 back onto the device
        img.exts = [[0, MASK - 100, USED], [MASK - 100, 101 + len(img.dev), ZERO]]
    elif case == "index_count_2_59_wraps":
        img.counts[b"IMGI"] = 1 << 59  # x 32 bytes = 2^64: wraps to 0
        img.trailer["data_frames"] = 1 << 59
    elif case == "index_count_2_40":
        img.counts[b"IMGI"] = 1 << 40
    elif case == "index_length_2_62":
        img.lengths[b"IMGI"] = big
    elif case in ("index_past_file", "index_offset_2_63", "index_overlap", "index_out_of_order",
                  "index_duplicate", "index_stored_huge"):
        def hook(ents, case=case):
            if case == "index_past_file":
                ents[1][1] = 1 << 24
            elif case == "index_offset_2_63":
                ents[1][1] = 1 << 63
            elif case == "index_overlap":
                ents[1][1] = ents[0][1] + 24
            elif case == "index_out_of_order":
                ents[0], ents[1] = ents[1], ents[0]
            elif case == "index_duplicate":
                ents[1] = list(ents[0])
            elif case == "index_stored_huge":
                ents[1][3] = 0xFFFFFFFF
        img.index_hook = hook
    elif case == "frame_stored_length_longer":
        # the frame and its index entry agree on a stored length 1000 bytes longer than
        # the payload; the next frame's header is swallowed
        f = data_frames(img)[0]
        f["sl"] = len(f["payload"]) + 1000
    elif case == "frame_stored_length_shorter":
        f = [f for f in img.frames if f["type"] == 2][0]
        f["sl"] = len(f["payload"]) - 10
    elif case == "frame_stored_length_2_62":
        f = data_frames(img)[0]
        f["sl"] = big
    elif case == "frame_logical_length_2_62":
        f = data_frames(img)[0]
        f["ll"] = big
    elif case == "zero_frame_2_62":
        f = [f for f in img.frames if f["type"] == 3][0]
        f["ll"] = big
    elif case in ("bomb_1g", "bomb_chunk_plus_1"):
        # a zstd payload that inflates far past the chunk (or by one byte); the data
        # checksum is that of the real chunk, so only the length check can refuse it
        f = [f for f in img.frames if f["type"] == 2][0]
        f["payload"] = bomb(1 << 30 if case == "bomb_1g" else CS + 1)
        assert len(f["payload"]) < CS, len(f["payload"])
    else:
        sys.exit(f"mkhostile: no image case {case}")
    return img.dev if want_device else img.build()


IMAGE_CASES = ["valid", "free_device_2_61", "free_bytes_in_data_frame", "device_size_2_63", "device_size_max", "chunk_size_2_31",
               "alloc_runs_2_40_in_header", "alloc_count_2_60", "alloc_length_huge",
               "metadata_count_2_40", "metadata_length_2_62", "metadata_value_length_lie",
               "extent_count_2_61", "extent_length_2_62", "extent_offsets_wrap",
               "index_count_2_59_wraps", "index_count_2_40", "index_length_2_62",
               "index_past_file", "index_offset_2_63", "index_overlap", "index_out_of_order",
               "index_duplicate", "index_stored_huge", "frame_stored_length_longer",
               "frame_stored_length_shorter", "frame_stored_length_2_62",
               "frame_logical_length_2_62", "zero_frame_2_62", "bomb_1g", "bomb_chunk_plus_1"]

# ---------------------------------------------------------------- partition tables

SS = 512
DISK = 8 << 20


def mbr_entry(boot, typ, lba, n):
    return struct.pack("<B3sB3sII", boot, b"\xfe\xff\xff", typ, b"\xfe\xff\xff", lba & 0xFFFFFFFF,
                       n & 0xFFFFFFFF)


def mbr(entries):
    s = bytearray(SS)
    for i, e in enumerate(entries):
        s[446 + 16 * i:446 + 16 * (i + 1)] = e
    s[510:512] = b"\x55\xaa"
    return s


def crc(b):
    return zlib.crc32(bytes(b)) & 0xFFFFFFFF


def gpt(disk, n_entries=128, esz=128, entries=None, first=34, last=None, array_crc=None):
    sectors = len(disk) // SS
    last = sectors - 34 if last is None else last
    disk[0:SS] = mbr([mbr_entry(0, 0xEE, 1, min(sectors - 1, 0xFFFFFFFF))])
    arr = bytearray()
    for e in entries or []:
        tg, ug, a, b, name = e
        ent = bytearray(max(esz, 128) if esz < (1 << 20) else 128)
        ent[0:16] = tg
        ent[16:32] = ug
        struct.pack_into("<QQQ", ent, 32, a, b, 0)
        nm = name.encode("utf-16-le")[:72]
        ent[56:56 + len(nm)] = nm
        arr += ent
    room = 32 * SS
    arr = arr[:room] + bytes(max(0, min(room, n_entries * esz) - len(arr)))
    disk[2 * SS:2 * SS + len(arr)] = arr
    h = bytearray(92)
    struct.pack_into("<8sIII", h, 0, b"EFI PART", 0x00010000, 92, 0)
    struct.pack_into("<QQQQ", h, 24, 1, sectors - 1, first, last)
    h[56:72] = bytes(range(1, 17))
    struct.pack_into("<QIII", h, 72, 2, n_entries & 0xFFFFFFFF, esz & 0xFFFFFFFF,
                     crc(arr) if array_crc is None else array_crc)
    struct.pack_into("<I", h, 16, crc(h))
    disk[SS:SS + 92] = h


LINUX = bytes.fromhex("af3dc60f838472478e793d69d8477de4")


def guid(i):
    return bytes([i] * 16)


def disk_case(case):
    d = bytearray(DISK)
    if case == "ebr_loop_self":
        d[0:SS] = mbr([mbr_entry(0, 0x05, 2048, 8192)])
        # EBR at 2048: a logical partition at +63, and a link to the extended partition's
        # own start (relative 0): the chain comes back to itself
        d[2048 * SS:2049 * SS] = mbr([mbr_entry(0, 0x83, 63, 1000), mbr_entry(0, 0x05, 0, 8192)])
    elif case == "ebr_loop_two":
        d[0:SS] = mbr([mbr_entry(0, 0x05, 2048, 8192)])
        d[2048 * SS:2049 * SS] = mbr([mbr_entry(0, 0x83, 63, 100), mbr_entry(0, 0x05, 1000, 1000)])
        d[3048 * SS:3049 * SS] = mbr([mbr_entry(0, 0x83, 63, 100), mbr_entry(0, 0x05, 0, 1000)])
    elif case == "ebr_chain_300":
        d[0:SS] = mbr([mbr_entry(0, 0x05, 2048, 12000)])
        for i in range(300):
            at = 2048 + 32 * i
            link = [mbr_entry(0, 0x05, 32 * (i + 1), 32)] if i < 299 else []
            d[at * SS:(at + 1) * SS] = mbr([mbr_entry(0, 0x83, 1, 8)] + link)
    elif case == "mbr_overlap":
        d[0:SS] = mbr([mbr_entry(0, 0x83, 2048, 8192), mbr_entry(0, 0x83, 4096, 8192)])
    elif case == "mbr_past_end":
        d[0:SS] = mbr([mbr_entry(0, 0x83, 2048, 0xFFFFFF00)])
    elif case == "mbr_start_past_end":
        d[0:SS] = mbr([mbr_entry(0, 0x83, 0xFFFFF000, 100)])
    elif case == "gpt_entries_2_32":
        gpt(d, n_entries=0xFFFFFFFF, esz=128)
    elif case == "gpt_entry_size_2_31":
        gpt(d, n_entries=128, esz=1 << 31)
    elif case == "gpt_entry_size_0":
        gpt(d, n_entries=128, esz=0)
    elif case == "gpt_overlap":
        gpt(d, entries=[(LINUX, guid(1), 2048, 8191, "a"), (LINUX, guid(2), 4096, 10000, "b")])
    elif case == "gpt_past_end":
        gpt(d, entries=[(LINUX, guid(1), 2048, (1 << 60), "a")])
    elif case == "gpt_reversed":
        gpt(d, entries=[(LINUX, guid(1), 9000, 2048, "a")])
    elif case == "gpt_first_usable_2_63":
        gpt(d, first=1 << 63, last=(1 << 63) + 10)
    else:
        sys.exit(f"mkhostile: no disk case {case}")
    return bytes(d)


DISK_CASES = ["ebr_loop_self", "ebr_loop_two", "ebr_chain_300", "mbr_overlap", "mbr_past_end",
              "mbr_start_past_end", "gpt_entries_2_32", "gpt_entry_size_2_31", "gpt_entry_size_0",
              "gpt_overlap", "gpt_past_end", "gpt_reversed", "gpt_first_usable_2_63"]


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "list":
        print("\n".join(IMAGE_CASES if sys.argv[2] == "image" else DISK_CASES))
        return
    if len(sys.argv) != 4 or sys.argv[1] not in ("image", "device", "disk"):
        sys.exit("usage: mkhostile.py image|device|disk CASE OUT | list image|disk")
    if sys.argv[1] == "disk":
        data = disk_case(sys.argv[2])
    else:
        data = image_case(sys.argv[2], want_device=sys.argv[1] == "device")
    with open(sys.argv[3], "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
