"""Reading data files (CSV, TSV, Parquet) into typed columns, one way for every command.

``reference build``, ``compare``, ``report`` and ``publish`` read their files
here, so a cell has the same value whichever command reads it: the
reference's ``True`` is the published event's ``true``, not the text
``"True"``. Each column gets one type, inferred by pandas from all its cells,
in pandas' nullable dtypes so that a null does not change the type of the
other cells:

- booleans (``True``, ``true``, ``FALSE``, ...) when every cell is one;
- integers when every cell is a whole number written without a decimal
  point (``3``, ``007``, ``+3``), even with empty cells;
- floats when any cell has a decimal point or exponent (``3.0`` stays a
  float, which is the same category key ``"3"`` as the integer ``3``);
- text otherwise, cell by cell as written (``"1.50"`` in a column that
  also holds ``"abc"`` stays ``"1.50"``);
- null for empty cells and pandas' missing-value markers (``NA``, ``N/A``,
  ``null``, ``NaN``, ``None``, ...).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from monitor.errors import DriftstreamError

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


def read_delimited(
    source: Path | TextIO, sep: str = ",", text_columns: Collection[str] = ()
) -> pd.DataFrame:
    """Delimited text as typed columns (see the module docstring).

    Cells of ``text_columns`` are kept exactly as written (empty is ``""``,
    ``NA`` is ``"NA"``): identifiers such as a model version ``007`` are not
    values.

    Examples
    --------
    >>> import io
    >>> text = "flag,count,share,plan,version\\nTrue,3,1,a,007\\n,,0.5,NA,\\nfalse,4,,b,1\\n"
    >>> frame = read_delimited(io.StringIO(text), text_columns=["version"])
    >>> frame.dtypes.astype(str).tolist()
    ['boolean', 'Int64', 'Float64', 'string', 'object']
    >>> [row for row in frame.astype(object).itertuples(index=False)][1]
    Pandas(flag=<NA>, count=<NA>, share=0.5, plan=<NA>, version='')
    """
    return pd.read_csv(
        source,
        sep=sep,
        low_memory=False,
        dtype_backend="numpy_nullable",
        converters=dict.fromkeys(text_columns, str),
    )


def nan_as_null(frame: pd.DataFrame) -> pd.DataFrame:
    """Float columns with NaN turned into nulls.

    Parquet (and so pandas' nullable floats read from it) keeps NaN apart
    from null; driftstream treats NaN as a null everywhere.

    Examples
    --------
    >>> zero_by_zero = pd.array([1.0, 0.0, None], dtype="Float64") / 0.0
    >>> frame = pd.DataFrame({"x": zero_by_zero})
    >>> frame["x"].isna().tolist(), nan_as_null(frame)["x"].isna().tolist()
    ([False, False, True], [False, True, True])
    """
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_float_dtype(column.dtype):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            # the mask given outright: pd.array(values, "Float64") would scan
            # the values one by one (about 70 ms per million)
            frame[name] = pd.arrays.FloatingArray(values, np.isnan(values))
    return frame


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, TSV or Parquet file into typed columns, failing with one clear line.

    The format is chosen by suffix: ``.csv``/``.tsv``/``.txt`` are read as
    delimited text (``.tsv`` tab-separated) by :func:`read_delimited`,
    ``.parquet``/``.pq`` as Parquet (its own column types, in the same
    nullable dtypes, NaN as null).

    Raises
    ------
    DriftstreamError
        Missing file, unknown suffix, unreadable content, or no rows.

    Examples
    --------
    >>> read_table("missing.csv")
    Traceback (most recent call last):
    ...
    monitor.errors.DriftstreamError: missing.csv: no such file
    """
    file = Path(path)
    if not file.is_file():
        raise DriftstreamError(f"{file}: no such file")
    suffix = file.suffix.lower()
    try:
        if suffix in CSV_SUFFIXES:
            frame = read_delimited(file, sep="\t" if suffix == ".tsv" else ",")
        elif suffix in PARQUET_SUFFIXES:
            frame = nan_as_null(pd.read_parquet(file, dtype_backend="numpy_nullable"))
        else:
            raise DriftstreamError(
                f"{file}: unknown format {suffix or '(no suffix)'!r}; use .csv, .tsv or .parquet"
            )
    except pd.errors.EmptyDataError:
        raise DriftstreamError(f"{file}: file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as error:
        first_line = (
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        )
        raise DriftstreamError(f"{file}: cannot read as {suffix[1:]}: {first_line}") from None
    if frame.empty:
        raise DriftstreamError(f"{file}: no rows")
    return frame
