"""Turning raw message bytes into events, or a reason they cannot be used.

Workers call these on every message; anything that fails becomes a
:class:`RejectedMessageError` carrying a stable reason code and a one-line
explanation, which the worker sends to the dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from pydantic import ValidationError

from schemas.events import (
    MAX_BATCH_ROWS,
    MAX_FEATURES,
    LabelEvent,
    PredictionBatch,
    PredictionEvent,
)
from schemas.validation import validation_summary

#: Largest message accepted, in bytes (a batch of a few thousand predictions
#: with tens of features fits comfortably).
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class RejectReason(StrEnum):
    """Why a message went to the dead-letter topic."""

    TOO_LARGE = "too_large"
    INVALID_JSON = "invalid_json"
    SCHEMA = "schema"
    NO_REFERENCE = "no_reference"


class RejectedMessageError(Exception):
    """A message that cannot be used, with its reason code and explanation.

    ``claimed`` is the ``(model, model_version)`` a JSON object that failed
    the contract says it belongs to (each ``None`` unless a non-empty
    string), so the worker can count the failure against that model.
    """

    def __init__(
        self,
        reason: RejectReason,
        detail: str,
        claimed: tuple[str | None, str | None] = (None, None),
    ) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
        self.claimed = claimed


def _claimed(document: dict[str, Any]) -> tuple[str | None, str | None]:
    """The model and version a document names, where they are non-empty strings."""
    model, version = document.get("model"), document.get("model_version")
    return (
        model if isinstance(model, str) and model else None,
        version if isinstance(version, str) and version else None,
    )


@dataclass(frozen=True, slots=True)
class EventLimits:
    """Limits a deployment may tighten below the contract's own maxima."""

    max_message_bytes: int = MAX_MESSAGE_BYTES
    max_features: int = MAX_FEATURES
    max_batch_rows: int = MAX_BATCH_ROWS

    def __post_init__(self) -> None:
        for name, ceiling in (("max_features", MAX_FEATURES), ("max_batch_rows", MAX_BATCH_ROWS)):
            value = getattr(self, name)
            if not 1 <= value <= ceiling:
                raise ValueError(f"{name} must be between 1 and {ceiling}, got {value}")
        if self.max_message_bytes < 1:
            raise ValueError(f"max_message_bytes must be positive, got {self.max_message_bytes}")


def parse_json_object(raw: bytes, limits: EventLimits) -> dict[str, Any]:
    """Size check, then JSON parse; the top level must be an object."""
    if len(raw) > limits.max_message_bytes:
        raise RejectedMessageError(
            RejectReason.TOO_LARGE,
            f"message is {len(raw)} bytes, the limit is {limits.max_message_bytes}",
        )
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise RejectedMessageError(RejectReason.INVALID_JSON, str(error)) from None
    if not isinstance(document, dict):
        raise RejectedMessageError(
            RejectReason.SCHEMA, f"message must be a JSON object, not {type(document).__name__}"
        )
    return document


def decode_prediction(
    raw: bytes, limits: EventLimits | None = None
) -> PredictionEvent | PredictionBatch:
    """A prediction or prediction batch from raw bytes, or :class:`RejectedMessageError`.

    Examples
    --------
    >>> try:
    ...     decode_prediction(b'{"type": "prediction_batch"')
    ... except RejectedMessageError as rejected:
    ...     print(rejected.reason.value)
    invalid_json
    """
    limits = limits or EventLimits()
    document = parse_json_object(raw, limits)
    model: type[PredictionEvent] | type[PredictionBatch] = (
        PredictionBatch if document.get("type") == "prediction_batch" else PredictionEvent
    )
    claimed = _claimed(document)
    try:
        event = model.model_validate(document)
    except ValidationError as error:
        raise RejectedMessageError(
            RejectReason.SCHEMA, validation_summary(error), claimed
        ) from None
    if len(event.features) > limits.max_features:
        raise RejectedMessageError(
            RejectReason.SCHEMA,
            f"{len(event.features)} features, the limit is {limits.max_features}",
            claimed,
        )
    if isinstance(event, PredictionBatch) and len(event) > limits.max_batch_rows:
        raise RejectedMessageError(
            RejectReason.SCHEMA,
            f"batch of {len(event)} predictions, the limit is {limits.max_batch_rows}",
            claimed,
        )
    return event


def decode_label(raw: bytes, limits: EventLimits | None = None) -> LabelEvent:
    """A label event from raw bytes, or :class:`RejectedMessageError`."""
    document = parse_json_object(raw, limits or EventLimits())
    try:
        return LabelEvent.model_validate(document)
    except ValidationError as error:
        raise RejectedMessageError(
            RejectReason.SCHEMA, validation_summary(error), (_claimed(document)[0], None)
        ) from None
