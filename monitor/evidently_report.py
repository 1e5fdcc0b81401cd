"""Evidently HTML reports of the same comparison driftstream makes."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from monitor.reference import CategoricalProfile, NumericProfile, ReferenceProfile
from monitor.stats.decision import DriftPolicy
from monitor.values import category_column, numeric_column
from monitor.windows import NumericWindow, WindowState

#: driftstream test name -> Evidently ``ValueDrift`` method (L-inf has none).
EVIDENTLY_METHODS = {
    "ks": "ks",
    "psi": "psi",
    "wasserstein": "wasserstein",
    "chi2": "chisquare",
    "js": "jensenshannon",
}
#: Category label of the profile's "other/unseen" bin in rebuilt references.
OTHER_CATEGORY = "__other__"


def frame_from_profile(profile: ReferenceProfile) -> pd.DataFrame:
    """A reference DataFrame rebuilt from a saved profile.

    Numeric columns hold the retained sample; categorical columns repeat
    each category as often as the reference counted it (the "other" bin as
    ``"__other__"``). Shorter columns are padded with nulls, which Evidently's
    drift tests ignore.

    Examples
    --------
    >>> source = pd.DataFrame({"x": [0.5, 1.5, 2.5], "c": ["a", "b", "a"]})
    >>> rebuilt = frame_from_profile(ReferenceProfile.from_frame(source, "m", "1"))
    >>> sorted(rebuilt["c"])
    ['a', 'a', 'b']
    """
    columns: dict[str, pd.Series] = {}
    for name, feature in profile.features.items():
        if isinstance(feature, NumericProfile):
            columns[name] = pd.Series(feature.sample, dtype=np.float64)
        else:
            labels = [*feature.categories, OTHER_CATEGORY]
            columns[name] = pd.Series(np.repeat(labels, feature.counts), dtype=object)
    return pd.DataFrame(columns)


def frame_from_window(window: WindowState) -> pd.DataFrame:
    """A DataFrame rebuilt from a window's state, for a report on that window.

    Numeric columns hold the window's reservoir sample (every value up to
    the sample cap, a uniform sample above it); categorical columns repeat
    each category as often as the window counted it, values outside the
    reference's categories as ``"__other__"``. Nulls are not kept.

    Examples
    --------
    >>> source = pd.DataFrame({"x": [0.5, 1.5, 2.5], "c": ["a", "b", "a"]})
    >>> window = WindowState.for_profile(ReferenceProfile.from_frame(source, "m", "1"))
    >>> window.update_frame(pd.DataFrame({"x": [1.0, 2.0], "c": ["b", "z"]}))
    >>> rebuilt = frame_from_window(window)
    >>> sorted(rebuilt["x"]), sorted(rebuilt["c"])
    ([1.0, 2.0], ['__other__', 'b'])
    """
    columns: dict[str, pd.Series] = {}
    for name, feature in window.features.items():
        if isinstance(feature, NumericWindow):
            columns[name] = pd.Series(np.sort(feature.reservoir.values), dtype=np.float64)
        else:
            labels = [*feature.categories, OTHER_CATEGORY]
            columns[name] = pd.Series(np.repeat(labels, feature.counts), dtype=object)
    return pd.DataFrame(columns)


def write_evidently_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    profile: ReferenceProfile,
    out: str | Path,
    features: Sequence[str] | None = None,
    policy: DriftPolicy | None = None,
) -> None:
    """Write an Evidently HTML report comparing ``current`` with ``reference``.

    Each feature gets one Evidently ``ValueDrift`` per driftstream test that
    Evidently also implements, with the feature's kind taken from the
    profile and categorical values turned into the same category keys
    driftstream uses. Evidently bins PSI its own way, so its PSI numbers
    differ from driftstream's (see the README).
    """
    policy = policy or DriftPolicy()
    names = list(profile.features if features is None else features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import DataDefinition, Dataset, Report
        from evidently.metrics import ValueDrift

    numeric = [n for n in names if isinstance(profile.features[n], NumericProfile)]
    categorical = [n for n in names if isinstance(profile.features[n], CategoricalProfile)]

    def prepared(frame: pd.DataFrame) -> Dataset:
        columns: dict[str, np.ndarray[Any, Any]] = {
            n: numeric_column(frame[n], n) for n in numeric if n in frame
        }
        columns |= {n: category_column(frame[n]) for n in categorical if n in frame}
        definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
        return Dataset.from_pandas(pd.DataFrame(columns), data_definition=definition)

    metrics = [
        ValueDrift(column=name, method=EVIDENTLY_METHODS[test])
        for name in names
        for test in (policy.numeric_tests if name in numeric else policy.categorical_tests)
        if test in EVIDENTLY_METHODS
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report(metrics).run(prepared(current), prepared(reference))
        snapshot.save_html(str(out))
