"""What an Evidently 0.7 HTML report says, read back from the file, and what it should say.

An Evidently HTML page embeds its dashboard as one JSON object in a
``<script>``: ``var metric_<id> = {...};``, drawn by
``window.drawDashboard(metric_<id>, ...)``. Each ``ValueDrift`` metric adds
a counter widget (``"Drift in column 'age'"`` / ``"Data drift detected.
Drift detection method: K-S p_value. Drift score: 0.0"``) and a tabs widget
with the two sides' histograms, both tagged with the metric's id in
``linked_metrics``. :func:`drift_entries` turns a page into one
:class:`DriftEntry` per metric, in page order, and refuses a page it does
not fully understand (a counter that is not a drift verdict, an unknown
method, a verdict without its histograms).

:func:`evidently_score` computes, independently with scipy and numpy, the
score Evidently 0.7.23 computes for a method, :func:`drift_verdict` its
verdict at Evidently's default thresholds, and :func:`check_entries` holds a
page's entries against both.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats
from scipy.spatial import distance

#: Evidently's display name of each drift method -> the method's name in ``ValueDrift``.
METHODS = {
    "K-S p_value": "ks",
    "PSI": "psi",
    "Wasserstein distance (normed)": "wasserstein",
    "chi-square p_value": "chisquare",
    "Jensen-Shannon distance": "jensenshannon",
}
#: Methods whose score is a p-value (small means drift); the others score a distance.
P_VALUE_METHODS = {"ks", "chisquare"}
#: Evidently's default threshold of each method.
THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "psi": 0.1, "wasserstein": 0.1, "jensenshannon": 0.1}
#: Methods ``write_evidently_report`` runs on each kind of column, in order.
NUMERIC_METHODS = ("ks", "psi", "wasserstein")
CATEGORICAL_METHODS = ("chisquare", "psi", "jensenshannon")
#: The report shows scores rounded to 3 decimals.
SHOWN_TOLERANCE = 0.0005 + 1e-9

DASHBOARD_CALL = re.compile(r"window\.drawDashboard\(\s*(metric_\w+)\s*,")
COLUMN = re.compile(r"Drift in column '(?P<feature>.*)'", re.DOTALL)
VERDICT = re.compile(
    r"Data drift (?P<verdict>detected|not detected)\. "
    r"Drift detection method: (?P<method>.+)\. Drift score: (?P<score>\S+)",
    re.DOTALL,
)


@dataclass(frozen=True)
class Histogram:
    """One side's histogram: bin edges (numeric) or category labels, and counts."""

    x: list[Any]
    counts: list[int]


@dataclass(frozen=True)
class DriftEntry:
    """One ``ValueDrift`` metric of a report, as the page shows it."""

    feature: str
    method: str
    #: The score as shown: rounded to 3 decimals.
    score: float
    drift_detected: bool
    current: Histogram
    reference: Histogram


def dashboard(html: str) -> dict[str, Any]:
    """The dashboard JSON object a report page draws (exactly one per page)."""
    calls = DASHBOARD_CALL.findall(html)
    if len(calls) != 1:
        raise ValueError(f"expected one drawDashboard call, found {len(calls)}")
    assignment = re.search(rf"\bvar {re.escape(calls[0])}\s*=\s*", html)
    if assignment is None:
        raise ValueError(f"no data for {calls[0]}")
    data, _ = json.JSONDecoder().raw_decode(html, assignment.end())
    if not isinstance(data, dict) or not isinstance(data.get("widgets"), list):
        raise ValueError("the dashboard data has no widgets")
    return data


def widgets(tree: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every widget of a widget list, nested ones and tabs' ones included, in page order."""
    for widget in tree:
        yield widget
        yield from widgets(widget.get("widgets") or [])
        yield from widgets([tab["widget"] for tab in widget.get("tabs") or []])


def distribution(tabs: dict[str, Any]) -> tuple[Histogram, Histogram]:
    """Current and reference counts from a tabs widget's DATA DISTRIBUTION tab."""
    [tab] = [tab for tab in tabs["tabs"] if tab["title"] == "DATA DISTRIBUTION"]
    sides: dict[str, Histogram] = {}
    for trace in tab["widget"]["params"]["data"]:
        if trace.get("visible") is True:  # counts; the hidden twin holds percentages
            if trace["name"] in sides:
                raise ValueError(f"two {trace['name']} histograms")
            sides[trace["name"]] = Histogram(list(trace["x"]), [int(y) for y in trace["y"]])
    return sides["current"], sides["reference"]


def drift_entries(html: str) -> list[DriftEntry]:
    """Every drift verdict of a report page, in page order."""
    everything = list(widgets(dashboard(html)["widgets"]))
    tabs = {
        tuple(widget["linked_metrics"] or ()): widget
        for widget in everything
        if widget["type"] == "tabs"
    }
    entries = []
    for widget in everything:
        if widget["type"] != "counter":
            continue
        for counter in widget["params"]["counters"]:
            column = COLUMN.fullmatch(counter["value"])
            verdict = VERDICT.fullmatch(counter["label"])
            if column is None or verdict is None:
                raise ValueError(f"not a drift verdict: {counter}")
            if verdict["method"] not in METHODS:
                raise ValueError(f"unknown drift method {verdict['method']!r}")
            current, reference = distribution(tabs[tuple(widget["linked_metrics"])])
            entries.append(
                DriftEntry(
                    feature=column["feature"],
                    method=METHODS[verdict["method"]],
                    score=float(verdict["score"]),
                    drift_detected=verdict["verdict"] == "detected",
                    current=current,
                    reference=reference,
                )
            )
    return entries


def verdicts(entries: Sequence[DriftEntry]) -> dict[str, set[bool]]:
    """Feature -> the drift verdicts of its entries (``{True}``: every test sees drift)."""
    found: dict[str, set[bool]] = {}
    for entry in entries:
        found.setdefault(entry.feature, set()).add(entry.drift_detected)
    return found


FloatArray = npt.NDArray[np.float64]


def shares(
    reference: Sequence[Any], current: Sequence[Any], categorical: bool
) -> tuple[FloatArray, FloatArray]:
    """Both sides' shares on Evidently's bins.

    Per value for categorical columns and numeric ones with at most 20
    distinct reference values; else equal-width Sturges bins over both
    sides together.
    """
    if not categorical and len(set(reference)) > 20:
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        return (
            np.histogram(reference, edges)[0] / len(reference),
            np.histogram(current, edges)[0] / len(current),
        )
    reference_counts, current_counts = Counter(reference), Counter(current)
    keys = list(reference_counts.keys() | current_counts.keys())
    return (
        np.array([reference_counts[k] / len(reference) for k in keys]),
        np.array([current_counts[k] / len(current) for k in keys]),
    )


def filled(share: FloatArray) -> FloatArray:
    """Empty bins' shares replaced as Evidently's PSI does."""
    smallest = share[share > 0].min()
    return np.where(share > 0, share, smallest / 1e6 if smallest <= 1e-4 else 1e-4)


def evidently_score(
    method: str, reference: Sequence[Hashable], current: Sequence[Hashable], categorical: bool
) -> float:
    """The score Evidently computes for ``method``, computed here with scipy and numpy.

    ``reference`` and ``current`` hold one column's values without nulls
    (category keys for a categorical column).
    """
    if method in ("ks", "wasserstein"):  # numeric columns only
        before = np.asarray(reference, dtype=np.float64)
        after = np.asarray(current, dtype=np.float64)
        if method == "ks":
            return float(stats.ks_2samp(before, after).pvalue)
        norm = max(float(np.std(before)), 0.001)
        return float(stats.wasserstein_distance(before, after)) / norm
    if method == "chisquare":
        reference_counts, current_counts = Counter(reference), Counter(current)
        keys = list(reference_counts.keys() | current_counts.keys())
        scale = len(current) / len(reference)
        with np.errstate(divide="ignore", invalid="ignore"):  # a category new in current
            return float(
                stats.chisquare(
                    [current_counts[k] for k in keys], [reference_counts[k] * scale for k in keys]
                ).pvalue
            )
    reference_share, current_share = shares(reference, current, categorical)
    if method == "jensenshannon":
        return float(distance.jensenshannon(reference_share, current_share))
    if method == "psi":
        reference_share, current_share = filled(reference_share), filled(current_share)
        return float(
            np.sum((reference_share - current_share) * np.log(reference_share / current_share))
        )
    raise ValueError(f"unknown method {method!r}")


def drift_verdict(method: str, score: float) -> bool:
    """Whether Evidently reports drift for this score at its default threshold."""
    if method == "ks":
        return score <= THRESHOLDS[method]
    if method == "chisquare":
        return score < THRESHOLDS[method]
    return score >= THRESHOLDS[method]


@dataclass(frozen=True)
class Column:
    """What a report should compare for one column: both sides' values, without nulls.

    A categorical column's values are its category keys as the report
    shows them (``"3"`` for the integer 3).
    """

    reference: Sequence[Hashable]
    current: Sequence[Hashable]
    categorical: bool


def check_entries(entries: Sequence[DriftEntry], columns: Mapping[str, Column]) -> None:
    """Assert that a report compares exactly ``columns``, in order, and says what it should.

    Each column has one entry per method of its kind; each entry's score
    is the independently computed one (as rounded for display), its
    verdict the one that score gives, and its histograms count the
    column's values on each side.
    """
    compared = [(e.feature, e.method) for e in entries]
    expected_tests = [
        (name, method)
        for name, column in columns.items()
        for method in (CATEGORICAL_METHODS if column.categorical else NUMERIC_METHODS)
    ]
    assert compared == expected_tests, f"the report compares {compared}"
    for entry in entries:
        column = columns[entry.feature]
        expected = evidently_score(
            entry.method, column.reference, column.current, column.categorical
        )
        where = f"{entry.feature} {entry.method}"
        score = f"{where}: shown {entry.score}, expected {expected}"
        assert abs(entry.score - expected) <= SHOWN_TOLERANCE, score
        assert entry.drift_detected == drift_verdict(entry.method, expected), f"verdict of {score}"
        for side, histogram, values in (
            ("current", entry.current, column.current),
            ("reference", entry.reference, column.reference),
        ):
            drawn: dict[Any, int] | list[int]
            counted: dict[Any, int] | list[int]
            if column.categorical:
                drawn = dict(zip(histogram.x, histogram.counts, strict=True))
                counted = dict(Counter(values))
            else:
                edges = np.asarray(histogram.x, dtype=np.float64)
                drawn = histogram.counts
                counted = np.histogram(np.asarray(values, dtype=np.float64), edges)[0].tolist()
            assert drawn == counted, f"{where}: {side} histogram {drawn}, expected {counted}"
