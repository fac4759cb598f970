"""A small, strict reader of apk-tools v3 ADB files, for tests only.

Written from apk-tools' own definition (src/adb.h, adb.c, adb_comp.c,
apk_adb.h, apk_adb.c, extract_v3.c), independently of scripts/adb.py, so
that a writer bug is not mirrored here. It checks what apk's reader checks
(magic, block order and sizes, compat version, value bounds) and, being a
test tool, also the things apk tolerates: zero padding, alignment of blobs
and vectors, and data blocks in the order extract_v3.c expects them.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from typing import Any

FILE_MAGIC = 0x2E424441  # "ADB." read as a little-endian u32 (adb.h ADB_FORMAT_MAGIC)
SCHEMAS = {0x676B6370: "pckg", 0x78646E69: "indx"}  # apk_adb.h
BLOCK_NAMES = {0: "ADB", 1: "SIG", 2: "DATA", 3: "EXT"}

# Field names by index, from the schema tables in apk_adb.c.
PKGINFO = ["name", "version", "hashes", "description", "arch", "license", "origin",
           "maintainer", "url", "repo-commit", "build-time", "installed-size", "file-size",
           "provider-priority", "depends", "provides", "replaces", "install-if",
           "recommends", "layer", "tags"]
DEPENDENCY = ["name", "version", "match"]
ACL = ["mode", "user", "group", "xattrs"]
FILE = ["name", "acl", "size", "mtime", "hash", "target"]
DIR = ["name", "acl", "files"]
SCRIPTS = ["trigger", "pre-install", "post-install", "pre-deinstall", "post-deinstall",
           "pre-upgrade", "post-upgrade"]
PACKAGE = ["info", "paths", "scripts", "triggers", "replaces-priority"]
INDEX = ["description", "packages", "pkgname-spec"]


class FormatError(Exception):
    """The bytes break the ADB definition; the message says where."""


@dataclasses.dataclass
class Block:
    """One block as found in the file."""

    kind: int
    offset: int  # of the block header, in the uncompressed stream
    payload: bytes
    padding: bytes


@dataclasses.dataclass
class AdbFile:
    """A parsed file: compression, schema, blocks and the root object."""

    compression: str  # "none" or "deflate"
    raw: bytes  # the uncompressed stream, starting with "ADB."
    schema: str
    blocks: list[Block]
    adb: bytes  # payload of the ADB block
    root: dict[str, Any]


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj(-15)  # adb_comp.c: raw deflate after "ADBd"
    out = inflater.decompress(data) + inflater.flush()
    if not inflater.eof or inflater.unused_data:
        raise FormatError("deflate stream is truncated or followed by garbage")
    return out


class _Values:
    """Decodes values of one ADB payload, with bounds and alignment checks."""

    def __init__(self, adb: bytes) -> None:
        self.adb = adb

    def _at(self, offset: int, size: int, align: int) -> bytes:
        if offset % align:
            raise FormatError(f"value at {offset} is not aligned to {align}")
        if offset < 8 or offset + size > len(self.adb):
            raise FormatError(f"value at {offset}+{size} outside the ADB block")
        return self.adb[offset:offset + size]

    def blob(self, v: int) -> bytes | None:
        kind, off = v & 0xF0000000, v & 0x0FFFFFFF
        if v == 0:
            return None
        width = {0x80000000: 1, 0x90000000: 2, 0xA0000000: 4}.get(kind)
        if width is None:
            raise FormatError(f"expected a blob, got value {v:#010x}")
        n = int.from_bytes(self._at(off, width, width), "little")
        return self._at(off + width, n, 1)

    def number(self, v: int) -> int | None:
        kind, off = v & 0xF0000000, v & 0x0FFFFFFF
        if v == 0:
            return None
        if kind == 0x10000000:
            return off
        if kind == 0x20000000:
            return int.from_bytes(self._at(off, 4, 4), "little")
        if kind == 0x30000000:
            return int.from_bytes(self._at(off, 8, 4), "little")
        raise FormatError(f"expected an integer, got value {v:#010x}")

    def vector(self, v: int, want: int) -> list[int]:
        if v == 0:
            return []
        if v & 0xF0000000 != want:
            raise FormatError(f"expected type {want:#x}, got value {v:#010x}")
        off = v & 0x0FFFFFFF
        count = int.from_bytes(self._at(off, 4, 4), "little")
        if count < 1:
            raise FormatError(f"vector at {off} has count 0")
        return list(struct.unpack(f"<{count - 1}I", self._at(off + 4, 4 * (count - 1), 4)))

    def obj(self, v: int, names: list[str], decode: dict[str, Any]) -> dict[str, Any]:
        values = self.vector(v, 0xE0000000)
        if values and values[-1] == 0:
            raise FormatError("object ends with a null field (apk trims them)")
        if len(values) > len(names):
            raise FormatError(f"object has {len(values)} fields, schema has {len(names)}")
        out: dict[str, Any] = {}
        for name, value in zip(names, values, strict=False):
            if value != 0:
                out[name] = decode.get(name, self.blob)(value)
        return out

    def arr(self, v: int, item: Any) -> list[Any]:
        return [item(x) for x in self.vector(v, 0xD0000000)]

    # Schema-aware decoders (apk_adb.c).
    def dependency(self, v: int) -> dict[str, Any]:
        return self.obj(v, DEPENDENCY, {"name": self.text, "version": self.text,
                                        "match": self.number})

    def text(self, v: int) -> str:
        b = self.blob(v)
        return "" if b is None else b.decode()

    def pkginfo(self, v: int) -> dict[str, Any]:
        ints = {k: self.number for k in ("build-time", "installed-size", "file-size",
                                      "provider-priority", "layer")}
        deps = {k: (lambda x: self.arr(x, self.dependency))
                for k in ("depends", "provides", "replaces", "install-if", "recommends")}
        texts = {k: self.text for k in ("name", "version", "description", "arch",
                                        "license", "origin", "maintainer", "url")}
        return self.obj(v, PKGINFO, {**ints, **deps, **texts})

    def acl(self, v: int) -> dict[str, Any]:
        return self.obj(v, ACL, {"mode": self.number, "user": self.text, "group": self.text})

    def file(self, v: int) -> dict[str, Any]:
        return self.obj(v, FILE, {"name": self.text, "acl": self.acl, "size": self.number,
                                  "mtime": self.number})

    def dir(self, v: int) -> dict[str, Any]:
        return self.obj(v, DIR, {"name": self.text, "acl": self.acl,
                                 "files": lambda x: self.arr(x, self.file)})

    def package(self, v: int) -> dict[str, Any]:
        return self.obj(v, PACKAGE, {
            "info": self.pkginfo, "paths": lambda x: self.arr(x, self.dir),
            "scripts": lambda x: self.obj(x, SCRIPTS, {}),
        })

    def index(self, v: int) -> dict[str, Any]:
        return self.obj(v, INDEX, {"description": self.text,
                                   "packages": lambda x: self.arr(x, self.pkginfo)})


def parse(data: bytes) -> AdbFile:
    """Parse a whole .apk or packages.adb; raise FormatError on any violation."""
    if data[:4] == b"ADBd":
        compression, raw = "deflate", _inflate(data[4:])
    elif data[:4] == b"ADB.":
        compression, raw = "none", data
    else:
        raise FormatError(f"unknown file magic {data[:4]!r}")
    if len(raw) < 8 or struct.unpack_from("<I", raw, 0)[0] != FILE_MAGIC:
        raise FormatError("no ADB. header")
    schema_id = struct.unpack_from("<I", raw, 4)[0]
    if schema_id not in SCHEMAS:
        raise FormatError(f"unknown schema {schema_id:#x}")
    blocks, pos = [], 8
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise FormatError(f"truncated block header at {pos}")
        type_size = struct.unpack_from("<I", raw, pos)[0]
        kind, raw_size = type_size >> 30, type_size & 0x3FFFFFFF
        if kind == 3:
            raise FormatError(f"extended block at {pos}: not expected for small files")
        if raw_size < 4:
            raise FormatError(f"block at {pos} has size {raw_size}")
        padded = raw_size + (-raw_size % 8)
        if pos + padded > len(raw):
            raise FormatError(f"block at {pos} runs past the end")
        blocks.append(Block(kind, pos, raw[pos + 4:pos + raw_size], raw[pos + raw_size:pos + padded]))
        pos += padded
    if not blocks or blocks[0].kind != 0:
        raise FormatError("the first block is not the ADB block")
    if any(b.kind == 0 for b in blocks[1:]):
        raise FormatError("more than one ADB block")
    seen_data = False
    for b in blocks[1:]:
        if b.kind == 1 and seen_data:
            raise FormatError("signature block after a data block")
        seen_data |= b.kind == 2
    if any(b.padding.strip(b"\0") for b in blocks):
        raise FormatError("non-zero block padding")
    adb = blocks[0].payload
    if len(adb) < 16:
        raise FormatError("ADB block shorter than 16 bytes")
    compat, _version, _reserved, root_value = struct.unpack_from("<BBHI", adb, 0)
    if compat != 0:
        raise FormatError(f"ADB compat version {compat}")
    values = _Values(adb)
    schema = SCHEMAS[schema_id]
    root = values.package(root_value) if schema == "pckg" else values.index(root_value)
    return AdbFile(compression, raw, schema, blocks, adb, root)


def installed_files(pkg: AdbFile) -> dict[str, dict[str, Any]]:
    """Return every path of a package: dirs end in "/"; files carry "data" when stored.

    Data blocks are matched the way extract_v3.c does: in path and file
    order, one for each file with a size and no link target, each starting
    with the path and file index (1-based); anything else is an error.
    """
    expected = []
    out: dict[str, dict[str, Any]] = {}
    for i, d in enumerate(pkg.root.get("paths", []), start=1):
        prefix = d.get("name", "")
        if prefix:
            out[prefix + "/"] = {"mode": d["acl"]["mode"], "acl": d["acl"]}
        for j, f in enumerate(d.get("files", []), start=1):
            path = f"{prefix}/{f['name']}" if prefix else f["name"]
            out[path] = dict(f)
            if f.get("size") and "target" not in f:
                expected.append((i, j, path))
    data = [b for b in pkg.blocks if b.kind == 2]
    if len(data) != len(expected):
        raise FormatError(f"{len(data)} data blocks for {len(expected)} stored files")
    for block, (i, j, path) in zip(data, expected, strict=True):
        pi, fj = struct.unpack_from("<II", block.payload, 0)
        if (pi, fj) != (i, j):
            raise FormatError(f"data block for {pi}/{fj} where {i}/{j} ({path}) is due")
        content = block.payload[8:]
        if len(content) != out[path]["size"]:
            raise FormatError(f"{path}: data block holds {len(content)} bytes, size says "
                              f"{out[path]['size']}")
        out[path]["data"] = content
    return out
