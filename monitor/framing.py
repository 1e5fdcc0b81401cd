"""Framed binary records: magic, format version, a JSON header, then raw bytes.

Window states and partition snapshots both use this layout::

    magic (4 bytes) | version (uint8) | header length (uint32, little-endian)
    | header (UTF-8 JSON) | body

so a reader can tell what it holds and refuse versions it does not know.
"""

from __future__ import annotations

import json
import struct
from typing import Any

PREFIX = struct.Struct("<4sBI")


def frame(magic: bytes, version: int, header: dict[str, Any], body: bytes) -> bytes:
    """``header`` (as compact JSON) and ``body`` behind ``magic`` and ``version``.

    Examples
    --------
    >>> data = frame(b"TEST", 1, {"n": 2}, b"xy")
    >>> unframe(data, b"TEST", 1, "test record")
    ({'n': 2}, b'xy')
    """
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return PREFIX.pack(magic, version, len(encoded)) + encoded + body


def unframe(data: bytes, magic: bytes, version: int, what: str) -> tuple[dict[str, Any], bytes]:
    """The header and body of a :func:`frame` record.

    Raises
    ------
    ValueError
        When ``data`` is not a ``what`` (wrong magic) or has another version.
    """
    if len(data) < PREFIX.size or data[:4] != magic:
        raise ValueError(f"not a driftstream {what}")
    _, found, size = PREFIX.unpack_from(data)
    if found != version:
        raise ValueError(f"unsupported {what} version {found}")
    header: dict[str, Any] = json.loads(data[PREFIX.size : PREFIX.size + size])
    return header, data[PREFIX.size + size :]
