"""One reading of a data file's values for every path: reference build, publish, compare.

The same CSV cell must be the same value whether ``reference build`` and
``compare`` read it (:func:`monitor.tables.read_table`) or ``publish`` sends
it to a worker as JSON; otherwise every published value of a column is
"unseen" and the feature is flagged critical although nothing drifted.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from scipy import stats

from monitor.publishing import InvalidLine, OutgoingMessage, read_events
from monitor.reference import CategoricalProfile, ReferenceProfile
from monitor.tables import read_table
from tests.conftest import read_topic
from tests.console import run
from tests.worker_process import WorkerProcess, latest_results, start_worker, write_config

#: Cells of a publish CSV, and the JSON values they must become, written out by hand.
TRICKY_COLUMNS: dict[str, tuple[list[str], list[Any]]] = {
    "active": (["True", "false", "", "TRUE"], [True, False, None, True]),
    "children": (["3", "", "007", "+2"], [3, None, 7, 2]),
    "share": (["1", "0.5", "", "2"], [1.0, 0.5, None, 2.0]),
    "plan": (["pro", "NA", "basic, annual", "None"], ["pro", None, "basic, annual", None]),
    "code": (["1.50", "abc", "2", ""], ["1.50", "abc", "2", None]),
}
TRICKY_PREDICTIONS = (["True", "False", "False", "True"], [True, False, False, True])


def write_csv(path: Path, columns: Mapping[str, Sequence[str]]) -> None:
    """Columns of text cells as a CSV file, written with the csv module (not pandas)."""
    names = list(columns)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(names)
        writer.writerows(zip(*(columns[name] for name in names), strict=True))


def typed(values: list[Any]) -> list[tuple[Any, type]]:
    """Values with their types: ``1 == 1.0 == True`` must not pass for the same value."""
    return [(value, type(value)) for value in values]


def test_publish_sends_the_values_read_table_reads(tmp_path: Path) -> None:
    """Booleans, integers with nulls, floats, missing markers and text: the same on both paths."""
    rows = len(TRICKY_PREDICTIONS[0])
    columns: dict[str, list[str]] = {
        "event_id": ["NA", "e2", "e3", "e4"],
        "model": ["churn"] * rows,
        "model_version": ["007"] * rows,
        "timestamp": [str(1_700_000_000_000 + i) for i in range(rows)],
        "prediction": TRICKY_PREDICTIONS[0],
    } | {name: cells for name, (cells, _) in TRICKY_COLUMNS.items()}
    table = tmp_path / "tricky.csv"
    write_csv(table, columns)

    plan = read_events(table)
    assert plan.invalid == []
    events = [orjson.loads(message.value) for message in plan.messages]
    assert [e["event_id"] for e in events] == ["NA", "e2", "e3", "e4"]
    assert {e["model_version"] for e in events} == {"007"}
    assert typed([e["prediction"] for e in events]) == typed(TRICKY_PREDICTIONS[1])
    frame = read_table(table)
    for name, (_, expected) in TRICKY_COLUMNS.items():
        assert typed([e["features"][name] for e in events]) == typed(expected), name
        read = [None if pd.isna(cell) else cell for cell in frame[name].astype(object)]
        assert typed(read) == typed(expected), name


def test_an_infinite_cell_is_an_invalid_row_not_a_null(tmp_path: Path) -> None:
    """JSON has no infinity: the row is reported, not sent with ``null`` in its place."""
    table = tmp_path / "inf.csv"
    table.write_text(
        "event_id,model,model_version,timestamp,prediction,x\n"
        "e1,m,1,1700000000000,0.5,1.5\n"
        "e2,m,1,1700000000001,0.5,-inf\n"
    )
    plan = read_events(table)
    assert [type(item) for item in (*plan.messages, *plan.invalid)] == [
        OutgoingMessage,
        InvalidLine,
    ]
    assert (
        plan.describe(plan.invalid[0])
        == f"{table}:3: x: -inf cannot be sent (JSON has no infinity)"
    )


def test_parquet_nan_is_a_null_as_everywhere_else(tmp_path: Path) -> None:
    """Parquet keeps NaN apart from null; read_table does not, so kinds and null counts hold."""
    table = tmp_path / "children.parquet"
    # Written by pyarrow (it has no type information, hence the ignores on its
    # imports): pandas would write the NaN as a null.
    pq.write_table(pa.table({"children": pa.array([1.0, float("nan"), 2.0, None, 1.0])}), table)
    frame = read_table(table)
    assert frame["children"].isna().tolist() == [False, True, False, True, False]
    profile = ReferenceProfile.from_data_file(table, "m", "1")
    children = profile.features["children"]
    assert isinstance(children, CategoricalProfile)
    assert (children.categories, children.n, children.n_null) == (("1", "2"), 3, 2)


# ------------------------------------------------------------ the round trip

REFERENCE_ROWS = 3000
#: One count window of the worker (``write_config`` sets 500 events).
CURRENT_ROWS = 500
CATEGORICAL = ("active", "children", "plan")
NUMERIC = ("visits", "spend")


def healthy_columns(rng: np.random.Generator, n: int) -> dict[str, list[str]]:
    """Feature and prediction cells as a serving log would write them; ~5% empty."""

    def with_nulls(cells: list[str]) -> list[str]:
        return ["" if rng.random() < 0.05 else cell for cell in cells]

    return {
        "prediction": [str(v) for v in rng.random(n) < 0.3],
        "active": with_nulls([str(v) for v in rng.random(n) < 0.6]),
        "children": with_nulls([str(v) for v in rng.choice(5, n, p=[0.3, 0.3, 0.2, 0.1, 0.1])]),
        "visits": with_nulls([str(v) for v in rng.integers(0, 300, n)]),
        "plan": with_nulls(list(rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]))),
        "spend": with_nulls([f"{v:.2f}" for v in rng.lognormal(3, 1, n)]),
    }


def assert_healthy(entry: dict[str, Any], name: str, cells: list[str]) -> None:
    """No drift, no unseen categories, nulls exactly where the CSV had empty cells."""
    nulls = cells.count("")
    assert entry["severity"] == "ok", (name, entry)
    assert entry["n_current"] == len(cells) - nulls, name
    assert entry["quality"]["null_rate"]["count"] == nulls, name
    if name in CATEGORICAL or name == "prediction":
        assert entry["kind"] == "categorical", name
        assert entry["quality"]["unseen_categories"]["count"] == 0, name
        assert entry["quality"]["unseen_categories"]["rate"] == 0.0, name
    else:
        assert entry["kind"] == "numeric", name


def chi_square_of(reference: list[str], current: list[str]) -> float:
    """Pearson's statistic of the current counts against the reference shares, from the text."""
    ref = Counter(cell for cell in reference if cell)
    cur = Counter(cell for cell in current if cell)
    n, total = sum(cur.values()), sum(ref.values())
    keys = sorted(ref)
    expected = [n * ref[key] / total for key in keys]
    return float(stats.chisquare([cur[key] for key in keys], expected).statistic)


def test_a_csv_round_trip_through_build_publish_worker_and_compare_shows_no_drift(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    """Reference and current data from one distribution: no drift on any path.

    ``reference build`` profiles the reference CSV, a real worker compares
    the events ``publish`` sent from the current CSV, and ``compare`` the
    current CSV itself; all three read its booleans, integers with nulls,
    text and floats the same way, so the worker's window and ``compare``
    agree to the last digit.
    """
    rng = np.random.default_rng(11)
    reference = healthy_columns(rng, REFERENCE_ROWS)
    current = healthy_columns(rng, CURRENT_ROWS)
    write_csv(tmp_path / "reference.csv", reference)
    publish_columns = {
        "event_id": [f"e{i}" for i in range(CURRENT_ROWS)],
        "model": ["churn"] * CURRENT_ROWS,
        "model_version": ["7"] * CURRENT_ROWS,
        "timestamp": [str(1_700_000_000_000 + 1000 * i) for i in range(CURRENT_ROWS)],
    }
    write_csv(tmp_path / "current.csv", publish_columns | current)
    profile = tmp_path / "churn-7.dsprofile"
    built = run(
        "reference", "build", tmp_path / "reference.csv", "--model", "churn", "--version", "7",
        "--out", profile,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr

    config_path, config = write_config(tmp_path, broker)
    published = run("reference", "publish", profile, "--config", config_path)
    assert published.returncode == 0, published.stderr
    start_worker(config_path, workers).wait_ready()
    sent = run("publish", tmp_path / "current.csv", "--config", config_path)
    assert sent.returncode == 0, sent.stderr

    events = [
        orjson.loads(record.value)
        for record in read_topic(broker, config.topics.predictions, CURRENT_ROWS)
    ]
    kinds = {"active": bool, "children": int, "visits": int, "plan": str, "spend": float}
    for event in events:
        assert type(event["prediction"]) is bool
        for name, kind in kinds.items():
            value = event["features"][name]
            assert value is None or type(value) is kind, (name, value)

    [window] = latest_results(broker, config.topics.results, 1).values()
    compared = run(
        "compare", "--reference", profile, "--current", tmp_path / "current.csv", "--json",
        "--fail-on", "warning",
    )  # fmt: skip
    assert compared.returncode == 0, compared.stdout + compared.stderr
    offline = json.loads(compared.stdout)

    for result in (window, offline):
        assert result["severity"] == "ok"
        assert result["drifted_features"] == []
        assert sorted(result["features"]) == sorted(CATEGORICAL + NUMERIC)
        for name, entry in result["features"].items():
            assert_healthy(entry, name, current[name])
        assert_healthy(result["prediction"], "prediction", current["prediction"])
        for name in ("active", "children"):
            statistic = result["features"][name]["tests"]["chi2"]["statistic"]
            assert statistic == pytest.approx(chi_square_of(reference[name], current[name]))
    assert window["n_events"] == CURRENT_ROWS
    assert window["features"] == offline["features"]
    assert window["prediction"] == offline["prediction"]
