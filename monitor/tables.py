"""Reading tabular data files (CSV, Parquet) into DataFrames with clear errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from monitor.errors import DriftstreamError

CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
PARQUET_SUFFIXES = {".parquet", ".pq"}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file, failing with one clear line on bad input.

    The format is chosen by suffix: ``.csv``/``.tsv``/``.txt`` are read as
    delimited text (``.tsv`` tab-separated), ``.parquet``/``.pq`` as Parquet.

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
            frame = pd.read_csv(file, sep="\t" if suffix == ".tsv" else ",", low_memory=False)
        elif suffix in PARQUET_SUFFIXES:
            frame = pd.read_parquet(file)
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
