"""``driftstream publish``: events from a JSONL or CSV file, validated, then sent.

Reading and validation need no broker: :func:`read_events` turns a file
into :class:`OutgoingMessage` records (or :class:`InvalidLine` reasons),
each checked exactly as a worker will check it (:mod:`schemas.decoding`,
with the configured limits). :func:`send_messages` then sends them, keyed by
model like :class:`schemas.producer.PredictionProducer`.

JSONL
    One event document per line: ``prediction`` (the default ``type``),
    ``prediction_batch`` or ``label``. The line is sent as it is.
CSV
    One prediction per row. Required columns ``event_id``, ``model``,
    ``model_version`` (text as written), ``timestamp`` (RFC 3339 or epoch
    milliseconds) and ``prediction`` (a value, or a JSON object of class
    probabilities); every other column is a feature. Values are read by
    :func:`monitor.tables.read_delimited`, as ``reference build`` and
    ``compare`` read the same file: a column of ``True``/``False`` is sent
    as JSON booleans, a column of whole numbers as integers (also with
    empty cells), empty cells and missing markers as ``null``.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from kafka import KafkaProducer

from monitor.config import TopicsConfig
from monitor.errors import DriftstreamError
from monitor.reference import ReferenceProfile
from monitor.tables import read_delimited
from monitor.topics import (
    REFERENCE_MESSAGE_BYTES,
    TopicRole,
    broker_errors,
    ensure_topics,
    existing_topics,
)
from schemas.decoding import (
    EventLimits,
    RejectedMessageError,
    decode_label,
    decode_prediction,
    parse_json_object,
)
from schemas.events import PredictionBatch
from schemas.outputs import reference_key

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
CSV_SUFFIXES = (".csv",)
CSV_REQUIRED = ("event_id", "model", "model_version", "timestamp", "prediction")
#: Required columns that are not values, so they are read as written.
CSV_TEXT_COLUMNS = ("event_id", "model", "model_version", "timestamp")
INTEGER = re.compile(r"^[+-]?\d+$")
DECIMAL = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
#: Headroom above the largest message for the producer's request size.
REQUEST_OVERHEAD_BYTES = 64 * 1024


class Destination(StrEnum):
    """Which topic a message goes to."""

    PREDICTIONS = "predictions"
    LABELS = "labels"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One validated message: where it goes, its key and value, and its source line.

    ``predictions`` is how many predictions it carries (0 for a label).
    """

    line: int
    destination: Destination
    key: bytes
    value: bytes
    predictions: int


@dataclass(frozen=True, slots=True)
class InvalidLine:
    """A line that breaks the contract, and why."""

    line: int
    reason: str


@dataclass(frozen=True)
class PublishPlan:
    """Everything read from a file: the valid messages and the invalid lines."""

    path: Path
    messages: list[OutgoingMessage]
    invalid: list[InvalidLine]

    @property
    def predictions(self) -> int:
        """Predictions in the valid messages (a batch counts its rows)."""
        return sum(message.predictions for message in self.messages)

    @property
    def labels(self) -> int:
        """Valid label messages."""
        return sum(1 for m in self.messages if m.destination is Destination.LABELS)

    def describe(self, invalid: InvalidLine) -> str:
        """``FILE:LINE: reason``."""
        return f"{self.path}:{invalid.line}: {invalid.reason}"


@dataclass(frozen=True, slots=True)
class SendReport:
    """What :func:`send_messages` delivered."""

    messages: int
    predictions: int
    labels: int


def validated_message(raw: bytes, line: int, limits: EventLimits) -> OutgoingMessage:
    """Check one JSON message as a worker would; raise :class:`RejectedMessageError`.

    Examples
    --------
    >>> message = validated_message(
    ...     b'{"event_id": "e1", "model": "churn", "label": 1, "type": "label",'
    ...     b' "timestamp": 1700000000000}', 3, EventLimits())
    >>> message.destination.value, message.key, message.predictions
    ('labels', b'churn', 0)
    >>> try:
    ...     validated_message(b'{"type": "label", "model": "churn"}', 4, EventLimits())
    ... except RejectedMessageError as rejected:
    ...     print(rejected)
    schema: event_id: Field required; label: Field required; timestamp: Field required
    """
    document = parse_json_object(raw, limits)
    if document.get("type") == "label":
        label = decode_label(raw, limits)
        return OutgoingMessage(line, Destination.LABELS, label.model.encode(), raw, 0)
    event = decode_prediction(raw, limits)
    rows = len(event) if isinstance(event, PredictionBatch) else 1
    return OutgoingMessage(line, Destination.PREDICTIONS, event.model.encode(), raw, rows)


def jsonl_messages(
    lines: Iterable[bytes], limits: EventLimits
) -> Iterator[OutgoingMessage | InvalidLine]:
    """Each non-blank line as a message or the reason it is invalid.

    Examples
    --------
    >>> lines = [
    ...     b'{"event_id": "e1", "model": "churn", "model_version": "7",'
    ...     b' "timestamp": "2026-11-23T10:00:00Z", "features": {"age": 41}, "prediction": 0.8}\\n',
    ...     b"\\n",
    ...     b"{oops\\n",
    ... ]
    >>> for item in jsonl_messages(lines, EventLimits()):
    ...     print(type(item).__name__, item.line)
    OutgoingMessage 1
    InvalidLine 3
    """
    for number, line in enumerate(lines, start=1):
        raw = line.removeprefix(b"\xef\xbb\xbf") if number == 1 else line
        raw = raw.strip()
        if not raw:
            continue
        try:
            yield validated_message(raw, number, limits)
        except RejectedMessageError as rejected:
            yield InvalidLine(number, str(rejected))


def timestamp_value(text: str) -> str | int | float | None:
    """A CSV timestamp cell: epoch milliseconds when it is a number, else RFC 3339 text.

    Examples
    --------
    >>> timestamp_value("1700000000000"), timestamp_value("2026-11-23T10:00:00Z")
    (1700000000000, '2026-11-23T10:00:00Z')
    >>> timestamp_value("1.7e12"), timestamp_value("")
    (1700000000000.0, None)
    """
    if text == "":
        return None
    if INTEGER.match(text):
        return int(text)
    if DECIMAL.match(text):
        return float(text)
    return text


def event_value(name: str, cell: Any) -> bool | int | float | str | None:
    """A typed table cell (from :func:`monitor.tables.read_delimited`) as a JSON value.

    Raises
    ------
    ValueError
        The cell is infinite, which JSON cannot carry (the contract has no
        way to send it, so the row is reported instead of sent as ``null``).

    Examples
    --------
    >>> [event_value("x", cell) for cell in (True, 3, 3.0, "pro", pd.NA, float("nan"))]
    [True, 3, 3.0, 'pro', None, None]
    >>> event_value("x", float("-inf"))
    Traceback (most recent call last):
    ...
    ValueError: x: -inf cannot be sent (JSON has no infinity)
    """
    if pd.isna(cell):
        return None
    if isinstance(cell, float) and math.isinf(cell):
        raise ValueError(f"{name}: {cell} cannot be sent (JSON has no infinity)")
    value: bool | int | float | str = cell
    return value


def csv_document(row: Mapping[str, Any]) -> dict[str, Any]:
    """The prediction event document of one typed CSV row (not yet validated).

    ``row`` is one record of :func:`typed_rows`: the identifiers and the
    timestamp as text, the prediction and the features as typed cells. A
    prediction that is text starting with ``{`` is a JSON object of class
    probabilities.

    Examples
    --------
    >>> csv_document({"event_id": "e1", "model": "churn", "model_version": "7",
    ...               "timestamp": "1700000000000", "prediction": '{"yes": 0.8, "no": 0.2}',
    ...               "age": 41, "plan": None, "active": True})  # doctest: +NORMALIZE_WHITESPACE
    {'type': 'prediction', 'event_id': 'e1', 'model': 'churn', 'model_version': '7',
     'timestamp': 1700000000000, 'prediction': {'yes': 0.8, 'no': 0.2},
     'features': {'age': 41, 'plan': None, 'active': True}}
    """
    cell = row["prediction"]
    prediction: Any
    if isinstance(cell, str) and cell.lstrip().startswith("{"):
        try:
            prediction = orjson.loads(cell)
        except orjson.JSONDecodeError:
            raise ValueError(
                "prediction: starts with '{' but is not a JSON object of class probabilities"
            ) from None
    else:
        prediction = event_value("prediction", cell)
    return {
        "type": "prediction",
        "event_id": row["event_id"] or None,
        "model": row["model"] or None,
        "model_version": row["model_version"] or None,
        "timestamp": timestamp_value(row["timestamp"]),
        "prediction": prediction,
        "features": {
            name: event_value(name, value)
            for name, value in row.items()
            if name not in CSV_REQUIRED
        },
    }


def typed_rows(names: Sequence[str], rows: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """Rows of text cells typed column by column, exactly as ``read_table`` types a file.

    The rows go back through the same pandas reader that ``reference
    build`` and ``compare`` use (only rows with the right number of cells
    reach it), so each column gets the type it would get there.

    Examples
    --------
    >>> names = ["event_id", "model", "model_version", "timestamp", "prediction", "active"]
    >>> rows = [["e1", "m", "007", "5", "True", "False"], ["e2", "m", "1", "6", "False", ""]]
    >>> [(r["model_version"], r["prediction"], r["active"]) for r in typed_rows(names, rows)]
    [('007', True, False), ('1', False, None)]
    """
    if not rows:
        return []
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(names)
    writer.writerows(rows)
    text.seek(0)
    frame = read_delimited(text, text_columns=CSV_TEXT_COLUMNS)
    # Records hold Python scalars (bool, int, float, str) and None for nulls.
    return [{str(name): cell for name, cell in row.items()} for row in frame.to_dict("records")]


def csv_header(header: Sequence[str]) -> list[str]:
    """The column names, or :class:`DriftstreamError` naming what is wrong.

    Examples
    --------
    >>> csv_header(["event_id", "model", "model_version", "timestamp", "prediction", "age"])[-1]
    'age'
    >>> try:
    ...     csv_header(["event_id", "model", "model_version", "timestamp", "age", "age"])
    ... except DriftstreamError as error:
    ...     print(error)
    missing required column(s) prediction; duplicate column(s) age
    """
    names = [name.strip() for name in header]
    problems = []
    missing = [name for name in CSV_REQUIRED if name not in names]
    if missing:
        problems.append(f"missing required column(s) {', '.join(missing)}")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        problems.append(f"duplicate column(s) {', '.join(duplicates)}")
    if "" in names:
        problems.append(f"column {names.index('') + 1} has no name")
    if problems:
        raise DriftstreamError("; ".join(problems))
    return names


def csv_messages(
    lines: Iterable[str], limits: EventLimits, path: Path | str = "<csv>"
) -> Iterator[OutgoingMessage | InvalidLine]:
    """Each CSV row (after the header) as a prediction message or why it is invalid.

    Line numbers are those of the file (the header is line 1; a quoted cell
    may span lines, and a row is numbered by its first line). A bad header
    raises :class:`DriftstreamError` naming ``path:1``. Cells are typed per
    column (:func:`typed_rows`), so the whole file is read before the first
    row is yielded.

    Examples
    --------
    >>> rows = [
    ...     "event_id,model,model_version,timestamp,prediction,age\\n",
    ...     "e1,churn,7,2026-11-23T10:00:00Z,0.8,41\\n",
    ...     "e2,churn,7,yesterday,0.1,35\\n",
    ... ]
    >>> for item in csv_messages(rows, EventLimits()):
    ...     print(item.line, getattr(item, "reason", "ok"))
    2 ok
    3 schema: timestamp: Input should be a valid datetime or date, input is too short
    """
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise DriftstreamError(f"{path}: file is empty") from None
    except csv.Error as error:
        raise DriftstreamError(f"{path}:1: {error}") from None
    try:
        names = csv_header(header)
    except DriftstreamError as error:
        raise DriftstreamError(f"{path}:1: {error}") from None
    items: list[OutgoingMessage | InvalidLine] = []
    starts: list[int] = []
    rows: list[list[str]] = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            items.append(InvalidLine(start, f"not valid CSV: {error}"))
            continue
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            items.append(
                InvalidLine(start, f"{len(row)} cells, the header has {len(names)} columns")
            )
            continue
        starts.append(start)
        rows.append(row)
    for start, record in zip(starts, typed_rows(names, rows), strict=True):
        try:
            raw = orjson.dumps(csv_document(record))
            items.append(validated_message(raw, start, limits))
        except RejectedMessageError as rejected:
            items.append(InvalidLine(start, str(rejected)))
        except ValueError as error:
            items.append(InvalidLine(start, str(error)))
    yield from sorted(items, key=lambda item: item.line)


def read_events(path: str | Path, limits: EventLimits | None = None) -> PublishPlan:
    """Read and validate every event of a JSONL or CSV file (chosen by suffix).

    Raises
    ------
    DriftstreamError
        The file is missing, has an unknown suffix, or (CSV) a bad header.
    """
    file = Path(path)
    limits = limits or EventLimits()
    if not file.is_file():
        raise DriftstreamError(f"{file}: no such file")
    suffix = file.suffix.lower()
    messages: list[OutgoingMessage] = []
    invalid: list[InvalidLine] = []
    if suffix not in JSONL_SUFFIXES + CSV_SUFFIXES:
        known = ", ".join(JSONL_SUFFIXES + CSV_SUFFIXES)
        raise DriftstreamError(f"{file}: unknown format {suffix or '(no suffix)'!r}; use {known}")
    with ExitStack() as stack:
        items: Iterator[OutgoingMessage | InvalidLine]
        if suffix in JSONL_SUFFIXES:
            items = jsonl_messages(stack.enter_context(file.open("rb")), limits)
        else:
            text = stack.enter_context(file.open(encoding="utf-8-sig", newline=""))
            items = csv_messages(text, limits, file)
        for item in items:
            if isinstance(item, InvalidLine):
                invalid.append(item)
            else:
                messages.append(item)
    return PublishPlan(file, messages, invalid)


def send_messages(
    bootstrap_servers: str,
    client_options: Mapping[str, Any],
    messages: Sequence[OutgoingMessage],
    topics: Mapping[Destination, str],
    timeout: float = 30.0,
) -> SendReport:
    """Send the messages in file order and wait until the broker has them all.

    The destination topics must exist: a missing one is an error (rather
    than a topic auto-created with the broker's default settings).

    Raises
    ------
    DriftstreamError
        The broker cannot be reached, a topic is missing, or a message was
        not delivered within ``timeout`` seconds.
    """
    if not messages:
        return SendReport(messages=0, predictions=0, labels=0)
    wanted = {topics[message.destination] for message in messages}
    missing = sorted(wanted - existing_topics(bootstrap_servers, client_options, timeout))
    if missing:
        raise DriftstreamError(
            f"topic(s) {', '.join(missing)} do not exist on {bootstrap_servers}; create them "
            "first (`driftstream broker --config FILE` creates the configured topics)"
        )
    largest = max((len(m.key) + len(m.value) for m in messages), default=0)
    timeout_ms = int(timeout * 1000)
    with broker_errors(bootstrap_servers):
        producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            linger_ms=20,
            max_request_size=max(1024 * 1024, largest + REQUEST_OVERHEAD_BYTES),
            allow_auto_create_topics=False,
            bootstrap_timeout_ms=timeout_ms,
            max_block_ms=timeout_ms,
            **client_options,
        )
        try:
            futures = [
                producer.send(topics[m.destination], key=m.key, value=m.value) for m in messages
            ]
            producer.flush(timeout)
            outcomes = zip(messages, futures, strict=True)
            failed = [(m, f.exception) for m, f in outcomes if f.failed()]
            pending = sum(1 for future in futures if not future.is_done)
        finally:
            producer.close(timeout)
    if failed or pending:
        detail = f"; first error (line {failed[0][0].line}): {failed[0][1]}" if failed else ""
        raise DriftstreamError(
            f"{len(failed) + pending} of {len(messages)} messages were not delivered{detail}"
        )
    return SendReport(
        messages=len(messages),
        predictions=sum(m.predictions for m in messages),
        labels=sum(1 for m in messages if m.destination is Destination.LABELS),
    )


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a record landed."""

    topic: str
    partition: int
    offset: int
    key: bytes
    size: int


def publish_reference(
    bootstrap_servers: str,
    client_options: Mapping[str, Any],
    topics_config: TopicsConfig,
    profile: ReferenceProfile,
    timeout: float = 30.0,
) -> Delivery:
    """Write ``profile`` to the references topic, keyed ``["model","version"]``; wait for it.

    The references topic is created (compacted, one partition) when missing.

    Raises
    ------
    DriftstreamError
        The profile is too large, the broker cannot be reached, or the
        record was not delivered within ``timeout`` seconds.
    """
    payload = profile.to_bytes()
    if len(payload) > REFERENCE_MESSAGE_BYTES:
        raise DriftstreamError(
            f"the profile is {len(payload)} bytes, the references topic takes at most "
            f"{REFERENCE_MESSAGE_BYTES}; build it with a smaller --sample-cap"
        )
    only: tuple[TopicRole, ...] = ("references",)
    ensure_topics(bootstrap_servers, topics_config, client_options, roles=only, timeout=timeout)
    topic = topics_config.references
    key = reference_key(profile.model, profile.model_version)
    timeout_ms = int(timeout * 1000)
    with broker_errors(bootstrap_servers):
        producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            max_request_size=max(1024 * 1024, len(key) + len(payload) + REQUEST_OVERHEAD_BYTES),
            allow_auto_create_topics=False,
            bootstrap_timeout_ms=timeout_ms,
            max_block_ms=timeout_ms,
            **client_options,
        )
        try:
            metadata = producer.send(topic, key=key, value=payload).get(timeout)
        finally:
            producer.close(timeout)
    return Delivery(topic, metadata.partition, metadata.offset, key, len(payload))
