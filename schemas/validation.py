"""One-line explanations of pydantic validation errors."""

from __future__ import annotations

from pydantic import ValidationError


def validation_summary(error: ValidationError, limit: int = 5) -> str:
    """One line naming each invalid field and why, e.g. ``features.age: ...``.

    Examples
    --------
    >>> from schemas.events import LabelEvent
    >>> try:
    ...     LabelEvent.model_validate({"event_id": "e", "model": "m", "label": []})
    ... except ValidationError as error:
    ...     print(validation_summary(error))
    label: a label must be a finite number, string or boolean; timestamp: Field required
    """
    parts = []
    for item in error.errors()[:limit]:
        location = ".".join(str(part) for part in item["loc"]) or "message"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{location}: {message}")
    hidden = error.error_count() - limit
    if hidden > 0:
        parts.append(f"and {hidden} more")
    return "; ".join(parts)
