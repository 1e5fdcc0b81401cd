"""``driftstream tail``: print the records of an output topic as JSON lines.

No consumer group is involved: every partition is assigned and read from
the beginning (or from the high-water mark with ``from_beginning=False``),
so tailing never disturbs workers and needs no group permissions.

"Caught up" and "latest" use the high-water marks carried by fetch
responses, not ``ListOffsets(latest)``/``end_offsets()``: the embedded
development broker answers the latter wrongly (the last batch's base offset
plus one, see ``../shared/README.md``), and the fetch high-water mark is
right on every broker.
"""

from __future__ import annotations

import base64
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition

from monitor.config import TailTopic
from monitor.errors import DriftstreamError
from monitor.reference import ReferenceProfile
from monitor.topics import broker_errors

#: Longest wait to reach the broker and for one request, whatever the tail's own timeout:
#: kafka-python refuses request timeouts beyond its idle-connection limit (540 s).
CONNECT_TIMEOUT = 30.0
#: Longest wait of one fetch: how soon an empty partition reports its high-water mark.
FETCH_WAIT_MS = 100
POLL_MS = 200


@dataclass(frozen=True, slots=True)
class TailOutcome:
    """How a tail ended: records printed, and whether it caught up or timed out."""

    records: int
    caught_up: bool
    timed_out: bool


def encoded_bytes(data: bytes) -> tuple[str, bool]:
    """UTF-8 text when ``data`` is valid UTF-8, else base64; and whether it is base64.

    Examples
    --------
    >>> encoded_bytes(b'["churn","7"]'), encoded_bytes(b"\\xff\\x00")
    (('["churn","7"]', False), ('/wA=', True))
    """
    try:
        return data.decode(), False
    except UnicodeDecodeError:
        return base64.b64encode(data).decode(), True


def reference_summary(value: bytes) -> dict[str, Any]:
    """Model, version, rows, build time and features (name -> kind) of a profile.

    Examples
    --------
    >>> import pandas as pd
    >>> profile = ReferenceProfile.from_frame(
    ...     pd.DataFrame({"age": [30.5, 41.0], "plan": ["a", "b"]}), "churn", "7")
    >>> reference_summary(profile.to_bytes())  # doctest: +NORMALIZE_WHITESPACE
    {'model': 'churn', 'model_version': '7', 'n_rows': 2, 'built_at': None,
     'features': {'age': 'numeric', 'plan': 'categorical'}}
    """
    profile = ReferenceProfile.from_bytes(value)
    return {
        "model": profile.model,
        "model_version": profile.model_version,
        "n_rows": profile.n_rows,
        "built_at": profile.built_at,
        "features": {name: feature.kind.value for name, feature in profile.features.items()},
    }


def record_document(
    kind: TailTopic, partition: int, offset: int, key: bytes | None, value: bytes | None
) -> dict[str, Any]:
    """One record as the JSON object ``tail`` prints.

    ``key`` is UTF-8 text, or base64 with ``"key_encoding": "base64"``;
    ``value`` is the parsed JSON value (``null`` for a tombstone), or base64
    with ``"value_encoding": "base64"`` when it is not JSON. On the
    references topic ``value`` is a :func:`reference_summary` instead, or
    ``null`` with an ``"error"`` for bytes that are not a profile.

    Examples
    --------
    >>> record_document(TailTopic.RESULTS, 0, 7, b'["m","1",3]', b'{"severity": "ok"}')
    {'partition': 0, 'offset': 7, 'key': '["m","1",3]', 'value': {'severity': 'ok'}}
    >>> record_document(TailTopic.DEADLETTER, 1, 0, None, b"\\xff")
    {'partition': 1, 'offset': 0, 'key': None, 'value': '/w==', 'value_encoding': 'base64'}
    >>> record_document(TailTopic.REFERENCES, 0, 2, b'["m","1"]', b"junk")
    {'partition': 0, 'offset': 2, 'key': '["m","1"]', 'value': None, \
'error': 'not a driftstream reference profile'}
    """
    document: dict[str, Any] = {"partition": partition, "offset": offset, "key": None}
    if key is not None:
        document["key"], key_is_base64 = encoded_bytes(key)
        if key_is_base64:
            document["key_encoding"] = "base64"
    document["value"] = None
    if value is None:
        return document
    if kind is TailTopic.REFERENCES:
        try:
            document["value"] = reference_summary(value)
        except (DriftstreamError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as error:
            document["error"] = str(error) or type(error).__name__
        return document
    try:
        document["value"] = orjson.loads(value)
    except orjson.JSONDecodeError:
        document["value"] = base64.b64encode(value).decode()
        document["value_encoding"] = "base64"
    return document


def printed_form(document: dict[str, Any], envelope: bool) -> Any:
    """What ``tail`` prints for a :func:`record_document`: its value, or all of it.

    Without ``envelope`` only the value is printed, unless the value could
    not be read (not JSON, not a profile): then the whole document, so the
    raw bytes and the error are not hidden.

    Examples
    --------
    >>> document = record_document(TailTopic.RESULTS, 0, 7, b"k", b'{"severity": "ok"}')
    >>> printed_form(document, envelope=False), printed_form(document, envelope=True)["offset"]
    ({'severity': 'ok'}, 7)
    >>> printed_form(record_document(TailTopic.RESULTS, 0, 8, b"k", b"\\xff"), envelope=False)
    {'partition': 0, 'offset': 8, 'key': 'k', 'value': '/w==', 'value_encoding': 'base64'}
    """
    if envelope or "value_encoding" in document or "error" in document:
        return document
    return document["value"]


def of_model(document: dict[str, Any], model: str | None) -> bool:
    """Whether a record's value belongs to ``model`` (every record when ``None``).

    Examples
    --------
    >>> of_model({"value": {"model": "churn"}}, "churn"), of_model({"value": None}, "churn")
    (True, False)
    """
    if model is None:
        return True
    value = document["value"]
    return isinstance(value, dict) and value.get("model") == model


def caught_up(positions: Mapping[int, int], highwaters: Mapping[int, int | None]) -> bool:
    """Whether every partition's position has reached its known high-water mark.

    A partition whose high-water mark is not known yet (no fetch answered)
    is not caught up.

    Examples
    --------
    >>> caught_up({0: 5, 1: 0}, {0: 5, 1: 0})
    True
    >>> caught_up({0: 4}, {0: 5}), caught_up({0: 0}, {0: None})
    (False, False)
    """
    for partition, position in positions.items():
        highwater = highwaters.get(partition)
        if highwater is None or position < highwater:
            return False
    return True


class Tail:
    """Read one topic, every partition, without a consumer group.

    Parameters
    ----------
    bootstrap_servers, client_options
        Where the broker is and how to talk to it.
    topic
        The topic to read; it must exist.
    kind
        Which driftstream topic it is (decides how values are shown).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        client_options: Mapping[str, Any],
        topic: str,
        kind: TailTopic,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.kind = kind
        timeout_ms = int(connect_timeout * 1000)
        with broker_errors(bootstrap_servers):
            self._consumer = KafkaConsumer(
                bootstrap_servers=bootstrap_servers,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=FETCH_WAIT_MS,
                bootstrap_timeout_ms=timeout_ms,
                request_timeout_ms=max(timeout_ms, FETCH_WAIT_MS + 5000),
                **client_options,
            )
        try:
            self.partitions = self._assign()
        except BaseException:
            self.close()
            raise

    def _assign(self) -> list[TopicPartition]:
        with broker_errors(self.bootstrap_servers):
            if self.topic not in self._consumer.topics():
                raise DriftstreamError(
                    f"topic {self.topic} does not exist on {self.bootstrap_servers}"
                )
            numbers = sorted(self._consumer.partitions_for_topic(self.topic) or ())
            partitions = [TopicPartition(self.topic, number) for number in numbers]
            self._consumer.assign(partitions)
        return partitions

    def run(
        self,
        emit: Callable[[dict[str, Any]], bool],
        *,
        from_beginning: bool = True,
        max_records: int | None = None,
        timeout: float | None = 10.0,
        follow: bool = False,
    ) -> TailOutcome:
        """Pass each record to ``emit`` (as :func:`record_document`) until done.

        ``emit`` says whether it printed the record (a filter may leave it
        out); only printed records count. Done means: ``max_records``
        printed records, or (unless ``follow``) every
        partition caught up with its high-water mark, or ``timeout`` seconds
        (``None``: no limit). With ``from_beginning=False`` only records
        written after the first fetch are shown.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        count = 0
        with broker_errors(self.bootstrap_servers):
            if from_beginning:
                self._consumer.seek_to_beginning(*self.partitions)
            elif not self._seek_to_highwater(deadline):
                return TailOutcome(0, caught_up=False, timed_out=True)
            while True:
                if max_records is not None and count >= max_records:
                    return TailOutcome(count, self._caught_up(), timed_out=False)
                if not follow and self._caught_up():
                    return TailOutcome(count, caught_up=True, timed_out=False)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return TailOutcome(count, caught_up=False, timed_out=True)
                wait_ms = POLL_MS if remaining is None else max(1, min(POLL_MS, remaining * 1000))
                limit = None if max_records is None else max_records - count
                batches = self._consumer.poll(timeout_ms=int(wait_ms), max_records=limit)
                for tp in sorted(batches):
                    for record in batches[tp]:
                        document = record_document(
                            self.kind, tp.partition, record.offset, record.key, record.value
                        )
                        count += emit(document)

    def _caught_up(self) -> bool:
        positions = {tp.partition: self._consumer.position(tp) for tp in self.partitions}
        highwaters = {tp.partition: self._consumer.highwater(tp) for tp in self.partitions}
        return caught_up(positions, highwaters)

    def _seek_to_highwater(self, deadline: float | None) -> bool:
        """Start every partition at its high-water mark as the first fetch reports it."""
        self._consumer.seek_to_end(*self.partitions)  # an estimate; the fetch corrects it
        while any(self._consumer.highwater(tp) is None for tp in self.partitions):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            self._consumer.poll(timeout_ms=POLL_MS)  # records before the mark are skipped
        for tp in self.partitions:
            highwater: int = self._consumer.highwater(tp)
            self._consumer.seek(tp, highwater)
        return True

    def close(self) -> None:
        """Close the connection."""
        self._consumer.close()


def tail_topic(
    bootstrap_servers: str,
    client_options: Mapping[str, Any],
    topic: str,
    kind: TailTopic,
    emit: Callable[[dict[str, Any]], bool],
    *,
    from_beginning: bool = True,
    max_records: int | None = None,
    timeout: float | None = 10.0,
    follow: bool = False,
) -> TailOutcome:
    """Open a :class:`Tail` on ``topic``, :meth:`~Tail.run` it, close it.

    Reaching the broker is bounded by ``timeout`` too, and by
    :data:`CONNECT_TIMEOUT`.
    """
    tail = Tail(
        bootstrap_servers,
        client_options,
        topic,
        kind,
        connect_timeout=CONNECT_TIMEOUT
        if timeout is None
        else min(max(timeout, 1.0), CONNECT_TIMEOUT),
    )
    try:
        return tail.run(
            emit,
            from_beginning=from_beginning,
            max_records=max_records,
            timeout=timeout,
            follow=follow,
        )
    finally:
        tail.close()
