"""Write apk-tools v3 ADB containers (the .apk and packages.adb format).

Written from the definition in alpinelinux/apk-tools (src/adb.h, adb.c,
adb_comp.c); no code of it is used. A file is:

- "ADB." followed by the schema as 4 bytes ("pckg", "indx"), then blocks;
  compressed files start "ADBd" and a raw deflate stream of all that.
- Each block: a little-endian u32 holding type << 30 | (4 + payload length),
  the payload, zero padding to a multiple of 8. Types: 0 ADB, 1 SIG, 2 DATA.
- The ADB block's payload starts with an 8-byte header (compat version 0,
  version 0, 2 reserved bytes, the root value) and holds every value the
  root refers to.
- A value is a u32: 4 type bits and 28 bits of immediate integer or offset
  into the ADB payload. Blobs have a 1-, 2- or 4-byte length prefix and
  are aligned to it; objects and arrays are u32 vectors [count + 1, values...]
  aligned to 4, trailing null values dropped; 0 is null.
"""

from __future__ import annotations

import struct
import zlib

MAGIC = b"ADB."
DEFLATE_MAGIC = b"ADBd"
SCHEMA_PACKAGE = b"pckg"
SCHEMA_INDEX = b"indx"

BLOCK_ADB = 0
BLOCK_SIG = 1
BLOCK_DATA = 2

TYPE_INT = 0x10000000
TYPE_INT_32 = 0x20000000
TYPE_BLOB_8 = 0x80000000
TYPE_BLOB_16 = 0x90000000
TYPE_BLOB_32 = 0xA0000000
TYPE_ARRAY = 0xD0000000
TYPE_OBJECT = 0xE0000000
VALUE_MASK = 0x0FFFFFFF
NULL = 0

HEADER_SIZE = 8  # struct adb_hdr
BLOCK_LIMIT = 0x3FFFFFFF - 4  # larger payloads need the extended header, unused here


class AdbError(Exception):
    """A value does not fit the format."""


class AdbWriter:
    """Build one ADB payload: values are appended, identical data is shared."""

    def __init__(self) -> None:
        self.buf = bytearray(HEADER_SIZE)
        self._seen: dict[tuple[bytes, int], int] = {}

    def _put(self, data: bytes, align: int, *, share: bool = True) -> int:
        key = (data, align)
        if share and key in self._seen:
            return self._seen[key]
        self.buf += b"\0" * (-len(self.buf) % align)
        offset = len(self.buf)
        if offset > VALUE_MASK:
            raise AdbError("ADB payload larger than 256 MiB")
        self.buf += data
        if share:
            self._seen[key] = offset
        return offset

    def blob(self, data: bytes, *, share: bool = True) -> int:
        """Return a blob value (null for empty data)."""
        n = len(data)
        if n == 0:
            return NULL
        if n <= 0xFF:
            return TYPE_BLOB_8 | self._put(struct.pack("<B", n) + data, 1, share=share)
        if n <= 0xFFFF:
            return TYPE_BLOB_16 | self._put(struct.pack("<H", n) + data, 2, share=share)
        return TYPE_BLOB_32 | self._put(struct.pack("<I", n) + data, 4, share=share)

    def text(self, value: str) -> int:
        """Return a UTF-8 string blob (null for "")."""
        return self.blob(value.encode())

    def integer(self, value: int) -> int:
        """Return an integer value: immediate below 2**28, else a stored u32."""
        if value < 0 or value > 0xFFFFFFFF:
            raise AdbError(f"integer {value} out of range")
        if value <= VALUE_MASK:
            return TYPE_INT | value
        return TYPE_INT_32 | self._put(struct.pack("<I", value), 4)

    def _vector(self, values: list[int], kind: int) -> int:
        while values and values[-1] == NULL:
            values = values[:-1]
        if not values:
            return NULL
        return kind | self._put(struct.pack(f"<{len(values) + 1}I", len(values) + 1, *values), 4)

    def object(self, fields: dict[int, int]) -> int:
        """Return an object value from {field index (1-based): value}."""
        if not fields:
            return NULL
        values = [NULL] * max(fields)
        for index, value in fields.items():
            values[index - 1] = value
        return self._vector(values, TYPE_OBJECT)

    def array(self, items: list[int]) -> int:
        """Return an array value; null items are left out, as apk does."""
        return self._vector([v for v in items if v != NULL], TYPE_ARRAY)

    def payload(self, root: int) -> bytes:
        """Return the finished ADB payload with `root` in its header."""
        out = bytearray(self.buf)
        struct.pack_into("<BBHI", out, 0, 0, 0, 0, root)
        return bytes(out)


def block(kind: int, payload: bytes) -> bytes:
    """Return one block: header, payload, zero padding to 8 bytes."""
    if len(payload) > BLOCK_LIMIT:
        raise AdbError(f"block of {len(payload)} bytes needs the extended header")
    size = 4 + len(payload)
    return struct.pack("<I", kind << 30 | size) + payload + b"\0" * (-size % 8)


def container(schema: bytes, blocks: list[bytes], *, deflate: bool = True) -> bytes:
    """Return a whole file: the header and blocks, deflated behind "ADBd" by default.

    Deflate is what `apk mkpkg` and `apk mkndx` write when no compression is
    asked for (adb_comp.c), and every apk v3 reader accepts it.
    """
    raw = MAGIC + schema + b"".join(blocks)
    if not deflate:
        return raw
    comp = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    return DEFLATE_MAGIC + comp.compress(raw) + comp.flush()
