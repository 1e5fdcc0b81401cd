"""Building blocks of configuration sections: strict sections and durations.

Shared by ``monitor.config`` and the alerting package's sink settings.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

DURATION_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> Any:
    """``"90s"``, ``"5m"``, ``"1.5h"``, ``"250ms"``, ``"2d"`` or seconds as a number.

    Examples
    --------
    >>> parse_duration("5m"), parse_duration(30)
    (datetime.timedelta(seconds=300), datetime.timedelta(seconds=30))
    """
    if isinstance(value, bool):
        raise ValueError("a duration cannot be a boolean")
    if isinstance(value, int | float):
        return _seconds(value)
    if isinstance(value, str):
        match = DURATION_PATTERN.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration such as '30s', '5m', '1h' or '2d'")
        amount, unit = match.groups()
        return _seconds(float(amount) * DURATION_UNITS[unit])
    return value


def _seconds(value: float) -> timedelta:
    """``value`` seconds, or a ``ValueError`` (not NaN, not beyond a timedelta's range)."""
    try:
        return timedelta(seconds=value)
    except (OverflowError, ValueError):
        raise ValueError(f"{value!r} seconds is not a duration a timedelta can hold") from None


def format_duration(value: timedelta) -> str:
    """Seconds with an ``s``, the form :func:`parse_duration` reads back.

    Examples
    --------
    >>> format_duration(timedelta(minutes=5))
    '300s'
    """
    return f"{value.total_seconds():g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]


class Section(BaseModel):
    """A configuration section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)
