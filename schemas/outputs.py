"""What workers publish: window results and dead letters, with their topic keys.

Consumers of the results and dead-letter topics (dashboards, alerting,
other services) read these documents; the generated JSON Schema files in
``schemas/json/`` describe them for any language.

Keys make publication idempotent: a window result is keyed by
``[model, model_version, window id]`` and a dead letter by its source
``[topic, partition, offset]``, so a worker that replays input after a crash
rewrites the same keys (compacted topics keep one record per key).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

#: Reason codes beyond schemas.decoding.RejectReason that only a worker can tell.
LATE = "late"
UNMATCHED_LABEL = "unmatched_label"
MISMATCHED_LABEL = "mismatched_label"


class Output(BaseModel):
    """Immutable; unknown fields kept (forward compatibility for readers)."""

    model_config = ConfigDict(extra="allow", frozen=True)


class WindowBounds(Output):
    """Which events a window covers.

    Count windows cover event positions ``[start_event, end_event)`` of the
    model version's stream (in arrival order); time windows cover event
    times ``[start, end)``.
    """

    kind: Literal["count", "time"]
    id: int = Field(description="Count windows: sequence number; time windows: start in epoch ms.")
    start_event: int | None = None
    end_event: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    first_event_time: datetime | None = None
    last_event_time: datetime | None = None


class ReferenceInfo(Output):
    """The reference profile a window was compared with.

    ``id`` tells profiles of one model version apart when its reference is
    replaced: windows opened before a new profile arrives are still compared
    with the old one.
    """

    id: str | None = Field(
        default=None,
        description="The profile's id: the first 16 hex digits of the SHA-256 of its bytes.",
    )
    model_version: str
    n_rows: int
    built_at: str | None = None


class WindowResult(Output):
    """One closed window of one model version compared with its reference.

    ``features`` and ``prediction`` have the shape of ``driftstream compare
    --json`` feature entries (see the README); ``prediction`` is the drift of
    the model's output, present when the reference profiles it.
    ``performance`` is present once labels have been joined.

    Examples
    --------
    >>> result = WindowResult(
    ...     model="churn", model_version="7",
    ...     window=WindowBounds(kind="count", id=3, start_event=3000, end_event=4000),
    ...     n_events=1000, severity="ok", drifted_features=[], features={},
    ...     reference=ReferenceInfo(model_version="7", n_rows=50000),
    ...     alpha=0.01, correction="bh", min_samples=100,
    ... )
    >>> result.key()
    b'["churn","7",3]'
    """

    type: Literal["window_result"] = "window_result"
    model: str
    model_version: str
    window: WindowBounds
    n_events: int
    severity: Literal["ok", "warning", "critical", "insufficient_data"]
    drifted_features: list[str]
    features: dict[str, dict[str, Any]]
    prediction: dict[str, Any] | None = None
    performance: dict[str, Any] | None = None
    reference: ReferenceInfo
    alpha: float
    correction: str
    min_samples: int

    def key(self) -> bytes:
        """The idempotent topic key."""
        return window_result_key(self.model, self.model_version, self.window.id)

    def to_json(self) -> bytes:
        """The topic value."""
        return self.model_dump_json(exclude_none=True).encode()


class MessageSource(Output):
    """Where a message was read from."""

    topic: str
    partition: int
    offset: int


class DeadLetter(Output):
    """A message that could not be used, with everything needed to replay it.

    Examples
    --------
    >>> letter = DeadLetter.for_message(
    ...     b"{oops", MessageSource(topic="p", partition=0, offset=7),
    ...     "invalid_json", "not valid JSON (line 1 column 2)",
    ... )
    >>> letter.raw_bytes(), letter.key()
    (b'{oops', b'["p",0,7]')
    """

    type: Literal["dead_letter"] = "dead_letter"
    reason: str = Field(description="Reason code, e.g. invalid_json, schema, no_reference, late.")
    error: str
    source: MessageSource
    raw: str = Field(description="The message bytes, base64.")
    row: int | None = Field(
        default=None, description="Position of the rejected prediction inside a batch message."
    )
    model: str | None = None
    model_version: str | None = None

    @classmethod
    def for_message(
        cls,
        raw: bytes,
        source: MessageSource,
        reason: str,
        error: str,
        **details: Any,
    ) -> DeadLetter:
        """A dead letter carrying ``raw`` (base64)."""
        return cls(
            reason=reason,
            error=error,
            source=source,
            raw=base64.b64encode(raw).decode(),
            **details,
        )

    def raw_bytes(self) -> bytes:
        """The original message bytes."""
        return base64.b64decode(self.raw)

    def key(self) -> bytes:
        """The idempotent topic key (one record per source message and row)."""
        parts: list[Any] = [self.source.topic, self.source.partition, self.source.offset]
        if self.row is not None:
            parts.append(self.row)
        return orjson.dumps(parts)

    def to_json(self) -> bytes:
        """The topic value."""
        return self.model_dump_json(exclude_none=True).encode()


def window_result_key(model: str, model_version: str, window_id: int) -> bytes:
    """``["model","version",id]`` as UTF-8 JSON."""
    return orjson.dumps([model, model_version, window_id])


def reference_key(model: str, model_version: str) -> bytes:
    """Key of a profile on the references topic: ``["model","version"]``.

    Examples
    --------
    >>> reference_key("churn", "7")
    b'["churn","7"]'
    """
    return orjson.dumps([model, model_version])


def parse_reference_key(key: bytes) -> tuple[str, str]:
    """Inverse of :func:`reference_key`."""
    model, model_version = orjson.loads(key)
    return str(model), str(model_version)
