"""Partition snapshots on the compacted state topic: chunked, atomic, verified.

A snapshot can be larger than a Kafka message may be (window samples of
many features), so it is written as chunks followed by a manifest naming
the generation, chunk count and SHA-256 of the whole. Chunks alternate
between two slots: while generation ``g + 1`` is being written to one slot
the manifest still points at generation ``g`` in the other, so a crash in
the middle of a write never damages the snapshot a restart will read.
Keys are stable per (partition, slot, chunk), so compaction keeps exactly
the latest generation of each slot.

The functions here are pure; :class:`~monitor.worker.Pipeline` does the
Kafka reads and writes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

#: Largest chunk, well under Kafka's default 1 MB message limit.
DEFAULT_CHUNK_BYTES = 512 * 1024
CHUNK_MAGIC = b"DSCK"
CHUNK_HEADER = struct.Struct("<4sQII")


@dataclass(frozen=True)
class Manifest:
    """Which generation is complete, where, and its digest."""

    partition: int
    generation: int
    slot: int
    chunks: int
    sha256: str

    def to_bytes(self) -> bytes:
        """The manifest record value."""
        return orjson.dumps(self.__dict__)


def manifest_key(partition: int) -> bytes:
    """Key of a partition's manifest: ``[partition]``."""
    return orjson.dumps([partition])


def chunk_key(partition: int, slot: int, index: int) -> bytes:
    """Key of one chunk: ``[partition, slot, index]``."""
    return orjson.dumps([partition, slot, index])


def snapshot_records(
    partition: int, generation: int, data: bytes, chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> list[tuple[bytes, bytes]]:
    """Records (key, value) that store ``data`` as ``generation``; manifest last.

    Examples
    --------
    >>> records = snapshot_records(3, 1, b"x" * 10, chunk_bytes=4)
    >>> [key for key, _ in records]
    [b'[3,1,0]', b'[3,1,1]', b'[3,1,2]', b'[3]']
    >>> latest_snapshot(records, 3)
    (1, b'xxxxxxxxxx')
    """
    slot = generation % 2
    pieces = [data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes)] or [b""]
    records = [
        (
            chunk_key(partition, slot, index),
            CHUNK_HEADER.pack(CHUNK_MAGIC, generation, len(pieces), index) + piece,
        )
        for index, piece in enumerate(pieces)
    ]
    manifest = Manifest(partition, generation, slot, len(pieces), hashlib.sha256(data).hexdigest())
    records.append((manifest_key(partition), manifest.to_bytes()))
    return records


def latest_snapshot(
    records: Iterable[tuple[bytes | None, bytes | None]], partition: int
) -> tuple[int, bytes] | None:
    """The newest complete snapshot of ``partition`` in a topic's records, in order.

    Returns ``(generation, data)``, or ``None`` when there is none.

    Raises
    ------
    ValueError
        When the manifest's chunks are missing or do not match its digest.
    """
    latest: dict[bytes, bytes] = {}
    for key, value in records:
        if key is not None and value is not None:
            latest[key] = value
    raw_manifest = latest.get(manifest_key(partition))
    if raw_manifest is None:
        return None
    manifest = Manifest(**orjson.loads(raw_manifest))
    pieces = []
    for index in range(manifest.chunks):
        value = latest.get(chunk_key(partition, manifest.slot, index))
        if value is None:
            raise ValueError(f"snapshot of partition {partition}: chunk {index} is missing")
        magic, generation, _, position = CHUNK_HEADER.unpack_from(value)
        if magic != CHUNK_MAGIC or generation != manifest.generation or position != index:
            raise ValueError(
                f"snapshot of partition {partition}: chunk {index} is from generation "
                f"{generation}, the manifest names {manifest.generation}"
            )
        pieces.append(value[CHUNK_HEADER.size :])
    data = b"".join(pieces)
    if hashlib.sha256(data).hexdigest() != manifest.sha256:
        raise ValueError(f"snapshot of partition {partition}: digest mismatch")
    return manifest.generation, data
