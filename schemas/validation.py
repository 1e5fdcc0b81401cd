"""One-line explanations of pydantic validation errors."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from schemas.events import FEATURE_VALUE_ERROR, feature_value_error

#: A location in the validated input, as pydantic reports it.
Location = tuple[int | str, ...]


def validation_summary(
    error: ValidationError, limit: int = 5, origin: Callable[[Location], str] | None = None
) -> str:
    """One line naming each invalid field and why, e.g. ``features.age: ...``.

    Parameters
    ----------
    error
        What pydantic raised.
    limit
        Errors described; the rest are counted.
    origin
        Where the value at a location came from (a file, an environment
        variable). Each error is preceded by its origin unless it has the
        previous error's.

    Examples
    --------
    >>> from schemas.events import LabelEvent
    >>> try:
    ...     LabelEvent.model_validate({"event_id": "e", "model": "m", "label": []})
    ... except ValidationError as error:
    ...     print(validation_summary(error))
    ...     print(validation_summary(error, limit=1, origin=lambda location: "event.json"))
    label: a label must be a finite number, string or boolean; timestamp: Field required
    event.json: label: a label must be a finite number, string or boolean; and 1 more
    """
    parts = []
    previous = None
    for item in error.errors()[:limit]:
        location = ".".join(str(part) for part in item["loc"]) or "message"
        message = (
            feature_value_error(item["input"])
            if item["type"] == FEATURE_VALUE_ERROR
            else item["msg"].removeprefix("Value error, ")
        )
        source = None if origin is None else origin(item["loc"])
        prefix = f"{source}: " if source is not None and source != previous else ""
        parts.append(f"{prefix}{location}: {message}")
        previous = source
    hidden = error.error_count() - limit
    if hidden > 0:
        parts.append(f"and {hidden} more")
    return "; ".join(parts)
