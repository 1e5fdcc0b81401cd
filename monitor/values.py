"""How raw feature values become numbers or category keys.

Both sides of a comparison (a reference file and events in a window) go
through these functions, so ``3``, ``3.0`` and ``"3"`` are the same
category and ``True`` is ``"true"`` everywhere.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from monitor.errors import DriftstreamError

#: Integer-valued columns with at most this many distinct values are
#: categorical unless the user says otherwise.
MAX_INTEGER_CATEGORIES = 20


class FeatureKind(StrEnum):
    """How a feature is compared: by its distribution on a line, or by category shares."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


def category_key(value: Any) -> str | None:
    """The category a single raw value belongs to (``None`` for a null).

    Examples
    --------
    >>> [category_key(v) for v in (3, 3.0, "3", True, 0.5, None, float("nan"))]
    ['3', '3', '3', 'true', '0.5', None, None]
    """
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
        return repr(float(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value)


def category_column(column: pd.Series) -> npt.NDArray[np.object_]:
    """Category keys of a column; nulls become ``None``.

    Examples
    --------
    >>> category_column(pd.Series([1.0, None, 2.0])).tolist()
    ['1', None, '2']
    >>> category_column(pd.Series([True, None, False], dtype="boolean")).tolist()
    ['true', None, 'false']
    """
    nulls = column.isna().to_numpy()
    keys = np.full(len(column), None, dtype=object)
    present = column[~nulls]
    if pd.api.types.is_bool_dtype(present.dtype):
        converted = np.where(present.to_numpy(dtype=bool), "true", "false")
    elif pd.api.types.is_integer_dtype(present.dtype) or (
        pd.api.types.is_float_dtype(present.dtype) and _all_integral(present)
    ):
        converted = present.astype(np.int64).astype(str).to_numpy()
    elif pd.api.types.is_string_dtype(present.dtype) and _all_str(present):
        converted = present.to_numpy(dtype=object)
    else:
        converted = np.array([category_key(v) for v in present.to_numpy()], dtype=object)
    keys[~nulls] = converted
    return keys


def numeric_column(column: pd.Series, name: str) -> npt.NDArray[np.float64]:
    """A column as float64, nulls as NaN; a clear error for non-numbers.

    Examples
    --------
    >>> numeric_column(pd.Series([1, None, "2.5"]), "x")
    array([1. , nan, 2.5])
    >>> numeric_column(pd.Series([True, None], dtype="boolean"), "flag")
    array([ 1., nan])
    >>> numeric_column(pd.Series(["a"]), "x")
    Traceback (most recent call last):
    ...
    monitor.errors.DriftstreamError: feature 'x' is numeric but has a non-numeric value: 'a'
    """
    if pd.api.types.is_bool_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64)
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    converted = pd.to_numeric(column, errors="coerce")
    bad = converted.isna() & column.notna()
    if bad.any():
        example = column[bad].iloc[0]
        raise DriftstreamError(
            f"feature {name!r} is numeric but has a non-numeric value: {example!r}"
        )
    return converted.to_numpy(dtype=np.float64, na_value=np.nan)


def infer_kind(column: pd.Series) -> FeatureKind:
    """Numeric for real-valued columns; categorical for text, booleans and
    integer columns with at most :data:`MAX_INTEGER_CATEGORIES` distinct values.

    Examples
    --------
    >>> infer_kind(pd.Series([0.1, 0.2])).value, infer_kind(pd.Series([1, 2, 1])).value
    ('numeric', 'categorical')
    >>> infer_kind(pd.Series(range(100))).value, infer_kind(pd.Series(["a"])).value
    ('numeric', 'categorical')
    """
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return FeatureKind.CATEGORICAL
    if pd.api.types.is_numeric_dtype(dtype):
        present = column.dropna()
        if present.empty:
            # An all-empty CSV column reads as nullable integers: nothing in it
            # says categorical, so it stays numeric as an all-NaN column does.
            return FeatureKind.NUMERIC
        if _is_integral(present) and present.nunique() <= MAX_INTEGER_CATEGORIES:
            return FeatureKind.CATEGORICAL
        return FeatureKind.NUMERIC
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise DriftstreamError(
            f"feature {column.name!r} holds dates or durations; convert it to a number first"
        )
    return FeatureKind.CATEGORICAL


def _is_integral(values: pd.Series) -> bool:
    if pd.api.types.is_integer_dtype(values.dtype):
        return True
    return pd.api.types.is_float_dtype(values.dtype) and _all_integral(values)


def _all_integral(values: pd.Series) -> bool:
    # Only values an int64 holds exactly: larger ones would wrap around when
    # converted in bulk, so they go through category_key one by one.
    array = values.to_numpy(dtype=np.float64)
    return bool(np.all((np.abs(array) < 2**63) & (array == np.round(array))))


def _all_str(values: pd.Series) -> bool:
    return pd.api.types.infer_dtype(values, skipna=True) == "string"
