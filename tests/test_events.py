"""The event contract: pydantic models, decoding with reasons, JSON Schema files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import orjson
import pytest
from pydantic import ValidationError

from schemas.decoding import (
    EventLimits,
    RejectedMessageError,
    RejectReason,
    decode_label,
    decode_prediction,
)
from schemas.events import PredictionBatch, PredictionEvent
from schemas.json_schema import CONTRACT_MODELS, SCHEMA_FOLDER, rendered_schemas
from schemas.validation import validation_summary


def prediction(**changes: Any) -> dict[str, Any]:
    """A valid single prediction, with fields replaced or added."""
    event: dict[str, Any] = {
        "event_id": "e-1",
        "model": "churn",
        "model_version": "7",
        "timestamp": "2026-11-23T10:00:00Z",
        "features": {"age": 41, "income": 5123.5, "plan": "pro", "active": True, "note": None},
        "prediction": {"yes": 0.8, "no": 0.2},
        "segment": "eu",
        "tags": {"host": "a1"},
    }
    return event | changes


def batch(**changes: Any) -> dict[str, Any]:
    """A valid three-prediction batch, with fields replaced or added."""
    message: dict[str, Any] = {
        "type": "prediction_batch",
        "model": "churn",
        "model_version": "7",
        "event_ids": ["a", "b", "c"],
        "timestamps": [1_763_892_000_000, "2026-11-23T10:00:01+01:00", 1_763_892_002_000],
        "features": {"age": [41, None, 33], "plan": ["pro", "basic", None]},
        "predictions": [0.1, 0.7, 0.4],
        "segments": ["eu", None, "us"],
    }
    return message | changes


def encode(document: Any) -> bytes:
    """JSON bytes as a producer would send them."""
    return orjson.dumps(document)


def test_prediction_event_round_trip_and_unknown_fields() -> None:
    """A valid prediction decodes with its values and types; unknown fields are listed."""
    event = decode_prediction(encode(prediction(region="eu-west", schema_rev=3)))
    assert isinstance(event, PredictionEvent)
    assert event.features == {
        "age": 41,
        "income": 5123.5,
        "plan": "pro",
        "active": True,
        "note": None,
    }
    assert type(event.features["active"]) is bool
    assert event.prediction == {"yes": 0.8, "no": 0.2}
    assert event.timestamp == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert event.unknown_fields == ["region", "schema_rev"]


def test_timestamps_are_rfc3339_with_offset_or_epoch_milliseconds() -> None:
    """Epoch numbers are milliseconds; naive or boolean timestamps are refused."""
    event = decode_prediction(encode(prediction(timestamp=1_763_892_000_000)))
    assert isinstance(event, PredictionEvent)
    assert event.timestamp == datetime(2025, 11, 23, 10, 0, tzinfo=UTC)
    for bad in ("2026-11-23T10:00:00", True, "yesterday"):
        with pytest.raises(RejectedMessageError) as rejected:
            decode_prediction(encode(prediction(timestamp=bad)))
        assert rejected.value.reason is RejectReason.SCHEMA
        assert rejected.value.detail.startswith("timestamp: ")


def test_batch_decodes_columns_of_equal_length() -> None:
    """A batch keeps its columns; mismatched lengths name the wrong columns."""
    decoded = decode_prediction(encode(batch()))
    assert isinstance(decoded, PredictionBatch)
    assert len(decoded) == 3
    assert decoded.features["plan"] == ["pro", "basic", None]
    assert decoded.timestamps[1] == datetime(2026, 11, 23, 9, 0, 1, tzinfo=UTC)
    with pytest.raises(RejectedMessageError) as rejected:
        decode_prediction(encode(batch(predictions=[0.1], segments=["eu"])))
    assert rejected.value.reason is RejectReason.SCHEMA
    assert "event_ids has 3 entries but predictions has 1, segments has 1" in rejected.value.detail


@pytest.mark.parametrize(
    ("raw", "reason", "detail"),
    [
        (b"{not json", RejectReason.INVALID_JSON, "unexpected"),
        (b'{"event_id": NaN}', RejectReason.INVALID_JSON, ""),
        (b"[1, 2]", RejectReason.SCHEMA, "message must be a JSON object, not list"),
        (
            encode(prediction(features={"age": [1, 2]})),
            RejectReason.SCHEMA,
            "features.age: a feature",
        ),
        (encode(prediction(prediction={"yes": 1.5})), RejectReason.SCHEMA, "'yes' is 1.5"),
        (encode(prediction(model="")), RejectReason.SCHEMA, "model: String should have at least 1"),
        (encode({"model": "m"}), RejectReason.SCHEMA, "event_id: Field required"),
        (encode(prediction()).replace(b"5123.5", b"1e400"), RejectReason.INVALID_JSON, "infinity"),
    ],
)
def test_malformed_predictions_are_rejected_with_a_reason(
    raw: bytes, reason: RejectReason, detail: str
) -> None:
    """Each kind of bad message gets its reason code and a one-line explanation."""
    with pytest.raises(RejectedMessageError) as rejected:
        decode_prediction(raw)
    assert rejected.value.reason is reason
    assert detail in rejected.value.detail
    assert "\n" not in rejected.value.detail


def test_feature_values_keep_their_type_and_bad_ones_are_named() -> None:
    """Booleans, integers, floats, strings and nulls come back as sent; others are named."""
    values = [True, 0, 1, 2**62, 2.5, "pro", None, False]
    decoded = decode_prediction(encode(batch_of(values)))
    assert isinstance(decoded, PredictionBatch)
    assert [(type(v), v) for v in decoded.features["x"]] == [(type(v), v) for v in values]
    with pytest.raises(RejectedMessageError) as rejected:
        decode_prediction(encode(batch_of([1.0, {"a": 1}, [2], 3])))
    assert rejected.value.detail == (
        "features.x.1: a feature value must be a number, string, boolean or null, not dict; "
        "features.x.2: a feature value must be a number, string, boolean or null, not list"
    )
    with pytest.raises(ValidationError) as invalid:
        PredictionBatch.model_validate(batch_of([float("nan")]))
    assert validation_summary(invalid.value) == (
        "features.x.0: a feature value must be finite (send null for a missing value)"
    )


def batch_of(values: list[Any]) -> dict[str, Any]:
    """A one-feature batch whose column ``x`` holds ``values``."""
    rows = len(values)
    return {
        "type": "prediction_batch",
        "model": "m",
        "model_version": "1",
        "event_ids": [f"e{i}" for i in range(rows)],
        "timestamps": [1_700_000_000_000] * rows,
        "features": {"x": values},
        "predictions": [0.5] * rows,
    }


def test_limits_reject_large_messages_many_features_and_big_batches() -> None:
    """Configured limits turn into too_large and schema rejections."""
    limits = EventLimits(max_message_bytes=300, max_features=3, max_batch_rows=2)
    raw = encode(prediction())
    with pytest.raises(RejectedMessageError) as too_large:
        decode_prediction(raw + b" " * 300, limits)
    assert too_large.value.reason is RejectReason.TOO_LARGE
    with pytest.raises(RejectedMessageError) as too_many:
        decode_prediction(raw, EventLimits(max_features=3))
    assert too_many.value.detail == "5 features, the limit is 3"
    with pytest.raises(RejectedMessageError) as too_big:
        decode_prediction(encode(batch()), EventLimits(max_batch_rows=2))
    assert too_big.value.detail == "batch of 3 predictions, the limit is 2"
    with pytest.raises(ValueError, match="max_features must be between 1 and 1000"):
        EventLimits(max_features=5000)


def test_label_events() -> None:
    """Labels decode; a non-scalar label is a schema rejection."""
    label = decode_label(
        encode(
            {"event_id": "e-1", "model": "churn", "label": "yes", "timestamp": 1_763_892_000_000}
        )
    )
    assert label.label == "yes"
    with pytest.raises(RejectedMessageError) as rejected:
        decode_label(
            encode({"event_id": "e-1", "model": "churn", "label": {"a": 1}, "timestamp": 1})
        )
    assert rejected.value.detail == "label: a label must be a finite number, string or boolean"


def test_json_schema_files_are_up_to_date() -> None:
    """The committed schemas/json files equal what the models generate (make schemas)."""
    for name, content in rendered_schemas().items():
        committed = (SCHEMA_FOLDER / name).read_text()
        assert committed == content, f"{name} is stale: run `make schemas`"
    assert sorted(p.name for p in SCHEMA_FOLDER.glob("*.json")) == sorted(rendered_schemas())


def schema(name: str) -> dict[str, Any]:
    """A committed JSON Schema file."""
    loaded: dict[str, Any] = json.loads((SCHEMA_FOLDER / f"{name}.schema.json").read_text())
    return loaded


@pytest.mark.parametrize(
    ("name", "document", "valid"),
    [
        ("prediction_event", prediction(), True),
        ("prediction_event", prediction(timestamp=1_763_892_000_000, extra_field=1), True),
        ("prediction_event", prediction(features={"a": [1]}), False),
        ("prediction_event", prediction(prediction={"yes": 2}), False),
        ("prediction_event", {k: v for k, v in prediction().items() if k != "model"}, False),
        ("prediction_batch", batch(), True),
        ("prediction_batch", batch(event_ids=[]), False),
        ("label_event", {"event_id": "e", "model": "m", "label": 1, "timestamp": 5}, True),
        ("label_event", {"event_id": "e", "model": "m", "label": None, "timestamp": 5}, False),
    ],
)
def test_json_schema_agrees_with_the_models(
    name: str, document: dict[str, Any], valid: bool
) -> None:
    """A producer validating with the JSON Schema accepts and refuses what workers do."""
    validator = jsonschema.Draft202012Validator(schema(name))
    assert validator.is_valid(document) is valid
    model = CONTRACT_MODELS[name]
    try:
        model.model_validate(document)
        accepted = True
    except ValueError:
        accepted = False
    assert accepted is valid
