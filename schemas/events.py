"""Event contracts: the messages serving services publish to driftstream.

Three message types travel on the prediction and label topics, all JSON
objects (UTF-8):

- :class:`PredictionEvent`: one prediction (``"type": "prediction"``, the
  default when ``type`` is absent);
- :class:`PredictionBatch`: many predictions of one model version in
  columnar form (``"type": "prediction_batch"``), for busy services;
- :class:`LabelEvent`: the ground truth of an earlier prediction.

Timestamps are RFC 3339 strings with an offset (``2026-11-23T10:00:00Z``) or
integer epoch **milliseconds**. Feature values are numbers, strings, booleans
or ``null``. JSON has no NaN or infinity: a producer sends a missing value as
``null`` (:mod:`schemas.producer` turns NaN into ``null`` and refuses
infinities), and a message carrying ``NaN`` or ``Infinity`` tokens is not
valid JSON. Unknown top-level fields are accepted, for forward
compatibility, and listed in ``unknown_fields`` so that workers can count
them.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetPydanticSchema,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import core_schema

#: Largest number of features one prediction may carry.
MAX_FEATURES = 1_000
#: Longest model, version, feature, segment, tag or event id string.
MAX_NAME_LENGTH = 256
#: Most predictions in one batch message.
MAX_BATCH_ROWS = 100_000


def epoch_milliseconds(value: Any) -> Any:
    """Numbers are epoch milliseconds; anything else goes on to RFC 3339 parsing.

    Examples
    --------
    >>> epoch_milliseconds(1_700_000_000_000)
    datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.timezone.utc)
    >>> epoch_milliseconds("2026-11-23T10:00:00Z")
    '2026-11-23T10:00:00Z'
    """
    if isinstance(value, bool):
        raise ValueError("a timestamp cannot be a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("a timestamp must be finite")
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError):  # beyond the platform's time_t
            raise ValueError("a timestamp must be within years 1 to 9999") from None
    return value


def representable(moment: datetime) -> datetime:
    """Refuse a moment whose UTC time is outside years 1 to 9999 (it has no UTC datetime).

    Examples
    --------
    >>> representable(datetime(2026, 11, 23, tzinfo=UTC)).year
    2026
    >>> from datetime import timezone, timedelta
    >>> representable(datetime(9999, 12, 31, 23, 0, tzinfo=timezone(-timedelta(hours=14))))
    Traceback (most recent call last):
    ...
    ValueError: a timestamp must be within years 1 to 9999 in UTC
    """
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("a timestamp must be within years 1 to 9999 in UTC") from None
    return moment


Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"^[^\x00-\x1f\x7f]+$"),
]
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(epoch_milliseconds),
    AfterValidator(representable),
    WithJsonSchema(
        {
            "description": "RFC 3339 with an offset, or epoch milliseconds.",
            "anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
        }
    ),
]


#: Error type of a value no feature-value type accepts.
FEATURE_VALUE_ERROR = "feature_value"


def feature_value_error(value: Any) -> str:
    """Why ``value`` cannot be a feature value: the reason a rejected event carries.

    Examples
    --------
    >>> feature_value_error([1])
    'a feature value must be a number, string, boolean or null, not list'
    >>> feature_value_error(float("nan"))
    'a feature value must be finite (send null for a missing value)'
    """
    if isinstance(value, float):
        return "a feature value must be finite (send null for a missing value)"
    return f"a feature value must be a number, string, boolean or null, not {type(value).__name__}"


def feature_value_schema(source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
    """A boolean, integer, finite float, string or null, kept as it came, checked in pydantic-core.

    The types are tried in that order and strictly (``True`` stays a
    boolean, ``1`` an integer); no Python code runs per value, which matters
    for batch columns. A value none accepts fails with the error type
    :data:`FEATURE_VALUE_ERROR`, which :func:`schemas.validation.validation_summary`
    explains with :func:`feature_value_error`.
    """
    return core_schema.union_schema(
        [
            core_schema.bool_schema(strict=True),
            core_schema.int_schema(strict=True),
            core_schema.float_schema(strict=True, allow_inf_nan=False),
            core_schema.str_schema(strict=True),
            core_schema.none_schema(),
        ],
        mode="left_to_right",
        custom_error_type=FEATURE_VALUE_ERROR,
        custom_error_message="a feature value must be a finite number, string, boolean or null",
    )


def scalar_output(value: Any, what: str) -> bool | int | float | str:
    """Accept a finite number, string or boolean as a prediction or label."""
    if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    raise ValueError(f"{what} must be a finite number, string or boolean")


def prediction_value(value: Any) -> bool | int | float | str | dict[str, float]:
    """Accept a scalar prediction or a class -> probability map.

    Examples
    --------
    >>> prediction_value({"yes": 0.75, "no": 0.25})
    {'yes': 0.75, 'no': 0.25}
    >>> prediction_value({"yes": 1.5})
    Traceback (most recent call last):
    ...
    ValueError: class probabilities must be numbers in [0, 1]: 'yes' is 1.5
    """
    if not isinstance(value, dict):
        return scalar_output(value, "a prediction (or a map of class probabilities)")
    if not value:
        raise ValueError("class probabilities must name at least one class")
    for name, probability in value.items():
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH:
            raise ValueError(f"class names must be 1 to {MAX_NAME_LENGTH} characters")
        valid = isinstance(probability, int | float) and not isinstance(probability, bool)
        if not valid or not 0.0 <= probability <= 1.0:
            raise ValueError(
                f"class probabilities must be numbers in [0, 1]: {name!r} is {probability!r}"
            )
    return {name: float(probability) for name, probability in value.items()}


SCALAR_SCHEMA: dict[str, Any] = {"type": ["number", "string", "boolean"]}
FeatureValue = Annotated[
    bool | int | float | str | None,
    GetPydanticSchema(feature_value_schema),
    WithJsonSchema({"type": ["number", "string", "boolean", "null"]}),
]
Prediction = Annotated[
    bool | int | float | str | dict[str, float],
    PlainValidator(prediction_value),
    WithJsonSchema(
        {
            "anyOf": [
                SCALAR_SCHEMA,
                {
                    "type": "object",
                    "description": "Class name -> probability.",
                    "minProperties": 1,
                    "additionalProperties": {"type": "number", "minimum": 0, "maximum": 1},
                },
            ]
        }
    ),
]
Label = Annotated[
    bool | int | float | str,
    PlainValidator(partial(scalar_output, what="a label")),
    WithJsonSchema(SCALAR_SCHEMA),
]


class Event(BaseModel):
    """Common configuration: immutable, unknown fields kept and listed."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    @property
    def unknown_fields(self) -> list[str]:
        """Top-level fields this version of the contract does not know."""
        return sorted(self.model_extra or {})


class PredictionEvent(Event):
    """One prediction of one model version.

    Examples
    --------
    >>> event = PredictionEvent.model_validate_json(
    ...     '{"event_id": "e1", "model": "churn", "model_version": "7",'
    ...     ' "timestamp": 1700000000000, "features": {"age": 41, "plan": "pro"},'
    ...     ' "prediction": {"yes": 0.8, "no": 0.2}, "region": "eu"}'
    ... )
    >>> event.features["plan"], event.unknown_fields
    ('pro', ['region'])
    """

    type: Literal["prediction"] = "prediction"
    event_id: Name
    model: Name
    model_version: Name
    timestamp: Timestamp
    features: Annotated[dict[Name, FeatureValue], Field(max_length=MAX_FEATURES)]
    prediction: Prediction
    segment: Name | None = None
    tags: dict[Name, Name] = Field(default_factory=dict)


class PredictionBatch(Event):
    """Many predictions of one model version, one list per field (columnar).

    Every list has one entry per prediction, in the same order; ``features``
    maps each feature name to its column. ``segments``, when given, is a
    column too; ``tags`` apply to every prediction.

    Examples
    --------
    >>> batch = PredictionBatch.model_validate(
    ...     {"type": "prediction_batch", "model": "churn", "model_version": "7",
    ...      "event_ids": ["a", "b"], "timestamps": ["2026-11-23T10:00:00Z", 1700000000000],
    ...      "features": {"age": [41, None]}, "predictions": [0.1, 0.9]}
    ... )
    >>> len(batch), batch.features["age"]
    (2, [41, None])
    """

    type: Literal["prediction_batch"]
    model: Name
    model_version: Name
    event_ids: Annotated[list[Name], Field(min_length=1, max_length=MAX_BATCH_ROWS)]
    timestamps: list[Timestamp]
    features: Annotated[dict[Name, list[FeatureValue]], Field(max_length=MAX_FEATURES)]
    predictions: list[Prediction]
    segments: list[Name | None] | None = None
    tags: dict[Name, Name] = Field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.event_ids)

    @model_validator(mode="after")
    def columns_have_one_entry_per_prediction(self) -> PredictionBatch:
        """Every column is as long as ``event_ids``."""
        rows = len(self.event_ids)
        columns: dict[str, int] = {
            "timestamps": len(self.timestamps),
            "predictions": len(self.predictions),
        }
        columns |= {f"features.{name}": len(values) for name, values in self.features.items()}
        if self.segments is not None:
            columns["segments"] = len(self.segments)
        wrong = {name: size for name, size in columns.items() if size != rows}
        if wrong:
            details = ", ".join(f"{name} has {size}" for name, size in sorted(wrong.items()))
            raise ValueError(f"event_ids has {rows} entries but {details}")
        return self


class LabelEvent(Event):
    """The ground truth for an earlier prediction, joined by ``event_id``.

    Examples
    --------
    >>> label = LabelEvent.model_validate(
    ...     {"event_id": "e1", "model": "churn", "label": "yes",
    ...      "timestamp": "2026-11-23T10:05:00+01:00"}
    ... )
    >>> label.timestamp.isoformat()
    '2026-11-23T10:05:00+01:00'
    """

    type: Literal["label"] = "label"
    event_id: Name
    model: Name
    label: Label
    timestamp: Timestamp
