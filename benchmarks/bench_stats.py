"""Drift evaluation speed, window update throughput and window memory.

Every benchmark prints driftstream's numbers next to a baseline measured in
the same run, and the ratio between them:

(a) one 100k-row window against a 100k-row reference (20 numeric and 5
    categorical features; KS + PSI on numeric, chi-square + PSI on
    categorical) against Evidently's ``ValueDrift`` metrics with the same
    tests on the same two DataFrames;
(a2) warm comparisons of 1,000-row windows (the streaming case) under the
    default policy, against the same tests done with SciPy's functions on
    the same samples (``ks_2samp``, ``wasserstein_distance``, ``chisquare``:
    every window re-sorting the reference);
(b) ``WindowState`` batch updates against the same updates made value by
    value in a Python loop;
(c) ``WindowState`` memory at growing window lengths against its memory at
    the default window sample cap;
(d) building a reference profile from a 1M-row x 25-column Parquet file
    against just reading that file with pandas.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from monitor.comparison import Comparator, Comparison
from monitor.reference import NumericProfile, ReferenceProfile
from monitor.reservoir import Reservoir
from monitor.stats.chi_square import expected_shares
from monitor.stats.decision import DriftPolicy
from monitor.tables import read_table
from monitor.windows import DEFAULT_WINDOW_SAMPLE_CAP, NumericWindow, WindowState

SEED = 20261123
N_ROWS = 100_000
N_NUMERIC = 20
N_CATEGORICAL = 5
#: Shifted in the window: (location shift, spread factor), both in units of the feature's scale.
NUMERIC_SHIFTS = {"num_0": (0.5, 1.0), "num_1": (0.0, 1.6), "num_2": (0.0, 1.4)}
#: Categorical features whose shares are reversed in the window.
REVERSED_CATEGORICALS = frozenset({"cat_0"})
#: Share of window values of these features that are a category the reference never saw.
UNSEEN_CATEGORY_SHARES = {"cat_1": 0.02}
REPEATS = 5
SMALL_WINDOW = 1_000
SMALL_WINDOWS = 20
POLICY = DriftPolicy(numeric_tests=("ks", "psi"), categorical_tests=("chi2", "psi"))
EVIDENTLY_METHODS = {"numeric": ("ks", "psi"), "categorical": ("chisquare", "psi")}
NUMERIC_BATCH = 1_000_000
#: Values fed one at a time to the Python-loop baselines; their per-value rate is
#: extrapolated, as a million-value loop would take minutes.
LOOP_VALUES = 20_000
END_TO_END_TARGET = 20.0
THROUGHPUT_TARGET = 5e6
MEMORY_LENGTHS = (10_000, DEFAULT_WINDOW_SAMPLE_CAP, 100_000, 1_000_000)
MEMORY_CHUNK = 100_000
PROFILE_FILE_ROWS = 1_000_000

T = TypeVar("T")


def numeric_feature(
    rng: np.random.Generator, index: int, n_rows: int, shifted: bool
) -> npt.NDArray[np.float64]:
    """Values of numeric feature ``num_{index}``.

    Parameters
    ----------
    rng
        Source of the values.
    index
        Feature number: it picks the shape (normal, log-normal, exponential,
        uniform, in turn) and the scale (``1 + index``).
    n_rows
        Values drawn.
    shifted
        Whether the features in :data:`NUMERIC_SHIFTS` move and widen.

    Returns
    -------
    numpy.ndarray
        ``n_rows`` float64 values, without nulls.
    """
    location, spread = NUMERIC_SHIFTS.get(f"num_{index}", (0.0, 1.0)) if shifted else (0.0, 1.0)
    shape = index % 4
    if shape == 0:
        values = rng.normal(0.0, spread, n_rows)
    elif shape == 1:
        values = rng.lognormal(0.0, 0.5 * spread, n_rows)
    elif shape == 2:
        values = rng.exponential(spread, n_rows)
    else:
        values = rng.uniform(0.0, spread, n_rows)
    scale = 1.0 + index
    return scale * (values + location)


def categorical_feature(
    rng: np.random.Generator, index: int, n_rows: int, shifted: bool
) -> npt.NDArray[np.object_]:
    """String categories of feature ``cat_{index}``.

    Parameters
    ----------
    rng
        Source of the values.
    index
        Feature number: the feature has ``5 + index % 5`` categories with
        Zipf-like shares (the ``k``-th most common has share ``~ 1 / k``).
    n_rows
        Values drawn.
    shifted
        Whether the features in :data:`REVERSED_CATEGORICALS` get their shares
        reversed and those in :data:`UNSEEN_CATEGORY_SHARES` a new category.

    Returns
    -------
    numpy.ndarray
        ``n_rows`` Python strings (object dtype), without nulls.
    """
    name = f"cat_{index}"
    n_categories = 5 + index % 5
    labels = [f"{name}_v{v}" for v in range(n_categories)]
    shares = 1.0 / np.arange(1, n_categories + 1)
    if shifted and name in REVERSED_CATEGORICALS:
        shares = shares[::-1]
    shares = shares / shares.sum()
    unseen = UNSEEN_CATEGORY_SHARES.get(name, 0.0) if shifted else 0.0
    if unseen:
        labels.append(f"{name}_new")
        shares = np.append(shares * (1.0 - unseen), unseen)
    return np.array(labels, dtype=object)[rng.choice(len(labels), n_rows, p=shares)]


def make_frame(rng: np.random.Generator, n_rows: int, shifted: bool) -> pd.DataFrame:
    """Model inputs: ``num_0`` ... ``num_19`` (float) and ``cat_0`` ... ``cat_4`` (str).

    Parameters
    ----------
    rng
        Source of every column, drawn in column order.
    n_rows
        Rows of the frame.
    shifted
        Whether to inject the window's drift (see :func:`numeric_feature` and
        :func:`categorical_feature`); the other features keep the reference's
        distribution.
    """
    columns: dict[str, npt.NDArray[Any]] = {}
    for index in range(N_NUMERIC):
        columns[f"num_{index}"] = numeric_feature(rng, index, n_rows, shifted)
    for index in range(N_CATEGORICAL):
        columns[f"cat_{index}"] = categorical_feature(rng, index, n_rows, shifted)
    return pd.DataFrame(columns)


def best_of(run: Callable[[], T], repeats: int = REPEATS) -> tuple[float, T]:
    """Time ``run`` several times.

    Parameters
    ----------
    run
        The work to time, with its own setup so that each call starts afresh.
    repeats
        Calls made.

    Returns
    -------
    tuple
        The shortest wall time in seconds, and the last call's result.
    """
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print rows under a header, first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    for row in [header, *rows]:
        cells = [
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  " + "   ".join(cells))


def build_profile(reference: pd.DataFrame) -> ReferenceProfile:
    """The reference profile, keeping every value so KS is exact."""
    return ReferenceProfile.from_frame(
        reference, model="bench", model_version="1", sample_cap=len(reference)
    )


def build_window(profile: ReferenceProfile, frame: pd.DataFrame, sample_cap: int) -> WindowState:
    """A window state of ``frame``, updated in one batch."""
    window = WindowState.for_profile(profile, sample_cap=sample_cap)
    window.update_frame(frame)
    return window


def first_compare(profile: ReferenceProfile, window: WindowState) -> Comparison:
    """Compare with a new comparator, so the PSI null calibration is included."""
    return Comparator(profile, POLICY).compare(window)


def new_window_first_compare(
    profile: ReferenceProfile, current: pd.DataFrame, cap: int
) -> Comparison:
    """A window of ``current`` compared by a new comparator (calibration included)."""
    return first_compare(profile, build_window(profile, current, cap))


def next_window_warm_compare(comparator: Comparator, current: pd.DataFrame, cap: int) -> Comparison:
    """A window of ``current`` compared by a comparator that has seen this size."""
    return comparator.compare(build_window(comparator.profile, current, cap))


def evidently_run(reference: pd.DataFrame, current: pd.DataFrame) -> Callable[[], Any]:
    """A callable running Evidently's ``ValueDrift`` metrics, the same tests as :data:`POLICY`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from evidently import Report
        from evidently.metrics import ValueDrift

    metrics = [
        ValueDrift(column=name, method=method)
        for name in reference.columns
        for method in EVIDENTLY_METHODS["numeric" if name.startswith("num") else "categorical"]
    ]

    def run() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            # scipy's chisquare divides by zero on Evidently's zero expected share of a
            # category the reference never saw; the result (p = 0) is still right.
            warnings.simplefilter("ignore", RuntimeWarning)
            return Report(metrics).run(current, reference)

    return run


def evidently_drifted(snapshot: Any) -> list[str]:
    """Columns for which any Evidently test crossed its default threshold."""
    drifted: list[str] = []
    for metric in snapshot.dict()["metrics"]:
        config, value = metric["config"], float(metric["value"])
        threshold = config["threshold"]
        # PSI is a distance (drift above the threshold); the others are p-values.
        hit = value >= threshold if config["method"] == "psi" else value < threshold
        if hit and config["column"] not in drifted:
            drifted.append(config["column"])
    return drifted


def bench_evaluation(
    profile: ReferenceProfile, reference: pd.DataFrame, current: pd.DataFrame
) -> None:
    """(a) One window against one reference: driftstream stages versus Evidently.

    Two window sample caps: the default (KS on a uniform 20k sample of the
    window, what a deployment runs) and 100k (every value kept, KS exact,
    the same work Evidently does).
    """
    profile_time, _ = best_of(lambda: build_profile(reference))
    caps = {"default cap": DEFAULT_WINDOW_SAMPLE_CAP, "exact": N_ROWS}
    stages: list[tuple[str, float]] = [
        ("profile build (reference, every value kept)", profile_time)
    ]
    whole_jobs: list[tuple[str, float]] = []
    for label, cap in caps.items():
        window_time, window = best_of(partial(build_window, profile, current, cap))
        first_time, _ = best_of(partial(first_compare, profile, window))
        comparator = Comparator(profile, POLICY)
        comparator.compare(window)
        warm_time, _ = best_of(partial(comparator.compare, window))
        stages += [
            (f"window update, {label} ({cap:,})", window_time),
            (f"first compare, {label} (null calibration)", first_time),
            (f"warm compare, {label} (calibration cached)", warm_time),
        ]
        cold, _ = best_of(partial(new_window_first_compare, profile, current, cap))
        warm, _ = best_of(partial(next_window_warm_compare, comparator, current, cap))
        whole_jobs += [
            (f"new window + first compare, {label}", cold),
            (f"next window + warm compare, {label}", warm),
        ]
    total_time, _ = best_of(
        lambda: new_window_first_compare(build_profile(reference), current, N_ROWS)
    )
    whole_jobs.append(("profile + window + first compare, exact", total_time))

    run_evidently = evidently_run(reference, current)
    run_evidently()  # warms Evidently's imports and caches; not timed
    evidently_time, snapshot = best_of(run_evidently)
    n_tests = 2 * (N_NUMERIC + N_CATEGORICAL)
    # Only rows that do the whole job (DataFrames in, every test out) get a
    # ratio to Evidently; a single stage would overstate it.
    print_table(
        f"(a) {N_ROWS:,}-row window vs {N_ROWS:,}-row reference, {N_NUMERIC} numeric "
        f"(KS + PSI) + {N_CATEGORICAL} categorical (chi2 + PSI) features, best of {REPEATS}, "
        f"target >= {END_TO_END_TARGET:.0f}x",
        ["stage", "seconds", "Evidently / driftstream"],
        [[name, f"{seconds:.3f}", "-"] for name, seconds in stages]
        + [
            [name, f"{seconds:.3f}", f"{evidently_time / seconds:.1f}x"]
            for name, seconds in whole_jobs
        ]
        + [
            [
                f"Evidently Report, {n_tests} ValueDrift metrics (warm)",
                f"{evidently_time:.3f}",
                "1.0x",
            ]
        ],
    )
    comparison = new_window_first_compare(profile, current, N_ROWS)
    print(f"  drifted, driftstream: {', '.join(comparison.drifted_features)}")
    print(f"  drifted, Evidently:   {', '.join(evidently_drifted(snapshot))}")


def empty_numeric_window(feature: NumericProfile) -> NumericWindow:
    """An empty window on the feature's bins with the default sample cap."""
    reservoir = Reservoir(DEFAULT_WINDOW_SAMPLE_CAP, np.random.default_rng(SEED))
    return NumericWindow(feature.edges, feature.minimum, feature.maximum, reservoir)


def bench_throughput(
    profile: ReferenceProfile, current: pd.DataFrame, rng: np.random.Generator
) -> None:
    """(b) Batch updates versus one value at a time, in values per second."""
    feature = profile.features["num_0"]
    if not isinstance(feature, NumericProfile):
        raise TypeError("num_0 must be a numeric feature")
    batch = numeric_feature(rng, 0, NUMERIC_BATCH, shifted=True)
    loop_values = batch[:LOOP_VALUES].tolist()

    def numeric_batch() -> None:
        empty_numeric_window(feature).update_batch(batch)

    def numeric_loop() -> None:
        window = empty_numeric_window(feature)
        for value in loop_values:
            window.update(value)

    n_features = len(current.columns)
    # Events arrive as Python objects (e.g. decoded JSON), one dict per event.
    names = [str(name) for name in current.columns]
    events = [
        dict(zip(names, values, strict=True))
        for values in current.iloc[: LOOP_VALUES // n_features].to_numpy(dtype=object).tolist()
    ]

    def frame_loop() -> None:
        window = WindowState.for_profile(profile)
        for event in events:
            window.update(event)

    batch_time, _ = best_of(numeric_batch)
    loop_time, _ = best_of(numeric_loop)
    frame_time, _ = best_of(lambda: build_window(profile, current, DEFAULT_WINDOW_SAMPLE_CAP))
    frame_loop_time, _ = best_of(frame_loop)

    workloads = [
        (
            f"numeric feature, {NUMERIC_BATCH:,}-value batch",
            NUMERIC_BATCH / batch_time,
            len(loop_values) / loop_time,
        ),
        (
            f"mixed {n_features}-feature frame, {len(current):,} rows",
            len(current) * n_features / frame_time,
            len(events) * n_features / frame_loop_time,
        ),
    ]
    print_table(
        f"(b) WindowState update throughput (sample cap {DEFAULT_WINDOW_SAMPLE_CAP:,}), "
        f"target >= {THROUGHPUT_TARGET / 1e6:.0f}M values/s, best of {REPEATS}",
        ["workload", "batch values/s", "per-value loop values/s", "batch / loop"],
        [
            [name, f"{fast / 1e6:.2f}M", f"{slow / 1e3:.1f}k", f"{fast / slow:.0f}x"]
            for name, fast, slow in workloads
        ],
    )
    print(
        f"  loops: NumericWindow.update on {len(loop_values):,} values, "
        f"WindowState.update on {len(events):,} events ({len(events) * n_features:,} values)"
    )


def array_bytes(window: WindowState) -> int:
    """Bytes of the numpy arrays a window state holds (counts, edges, samples)."""
    total = 0
    for feature in window.features.values():
        total += feature.counts.nbytes
        if isinstance(feature, NumericWindow):
            # The reservoir's buffer is the size of its sample here: it grows only as
            # far as each chunk needs, up to the cap.
            total += feature.edges.nbytes + feature.reservoir.values.nbytes
    return total


def bench_memory(profile: ReferenceProfile, rng: np.random.Generator) -> None:
    """(c) Window state size as the window grows past the sample cap."""
    window = WindowState.for_profile(profile)
    sizes: list[tuple[int, int, int]] = []
    for length in MEMORY_LENGTHS:
        while window.n_rows < length:
            rows = min(MEMORY_CHUNK, length - window.n_rows)
            window.update_frame(make_frame(rng, rows, shifted=True))
        sizes.append((length, len(window.to_bytes()), array_bytes(window)))
    _, cap_serialised, cap_arrays = sizes[MEMORY_LENGTHS.index(DEFAULT_WINDOW_SAMPLE_CAP)]
    print_table(
        f"(c) WindowState memory, {len(profile.features)} features, "
        f"default window sample cap {DEFAULT_WINDOW_SAMPLE_CAP:,}",
        ["window length (rows)", "to_bytes() bytes", "vs cap", "array nbytes", "vs cap"],
        [
            [
                f"{length:,}" + (" (cap)" if length == DEFAULT_WINDOW_SAMPLE_CAP else ""),
                f"{serialised:,}",
                f"{serialised / cap_serialised:.4f}x",
                f"{arrays:,}",
                f"{arrays / cap_arrays:.4f}x",
            ]
            for length, serialised, arrays in sizes
        ],
    )


def bench_profile_file(rng: np.random.Generator) -> None:
    """(d) Profile a 1M-row file: read + profile versus reading alone."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "reference.parquet"
        make_frame(rng, PROFILE_FILE_ROWS, shifted=False).to_parquet(path)
        read_time, _ = best_of(partial(read_table, path))
        build_time, profile = best_of(partial(ReferenceProfile.from_data_file, path, "bench", "1"))
    print_table(
        f"(d) reference profile of a {PROFILE_FILE_ROWS:,}-row x {len(profile.features)}-column "
        f"Parquet file (default sample cap), best of {REPEATS}",
        ["step", "seconds", "vs reading the file"],
        [
            ["read the file (pandas.read_parquet)", f"{read_time:.3f}", "1.0x"],
            ["read + build the profile", f"{build_time:.3f}", f"{build_time / read_time:.1f}x"],
        ],
    )


def scipy_window_tests(profile: ReferenceProfile, window: WindowState) -> int:
    """The default numeric and categorical tests of one window, straight from SciPy."""
    done = 0
    for name, feature in profile.features.items():
        state = window.features[name]
        if isinstance(feature, NumericProfile) and isinstance(state, NumericWindow):
            current = state.reservoir.values
            stats.ks_2samp(feature.sample, current)
            stats.wasserstein_distance(feature.sample, current)
        else:
            observed, expected = expected_shares(feature.proportions, state.counts)
            stats.chisquare(observed, expected * observed.sum())
        done += 1
    return done


def bench_small_windows(profile: ReferenceProfile, rng: np.random.Generator) -> None:
    """(a2) Warm default-policy comparisons of 1,000-row windows against SciPy's functions."""
    windows = [
        build_window(profile, make_frame(rng, SMALL_WINDOW, shifted=False), SMALL_WINDOW)
        for _ in range(SMALL_WINDOWS)
    ]
    comparator = Comparator(profile)
    comparator.compare(windows[0])  # calibration for this size, not timed
    ours, _ = best_of(lambda: [comparator.compare(window) for window in windows])
    theirs, _ = best_of(lambda: [scipy_window_tests(profile, window) for window in windows])
    per_window = 1e3 / SMALL_WINDOWS
    print_table(
        f"\n(a2) {SMALL_WINDOWS} windows of {SMALL_WINDOW:,} rows vs the {N_ROWS:,}-row "
        f"reference, default policy, warm, best of {REPEATS}",
        ["work per window", "ms", "SciPy / driftstream"],
        [
            [
                "driftstream compare (KS, PSI, Wasserstein; chi2, PSI, JS, L-inf; quality; BH)",
                f"{ours * per_window:.2f}",
                f"{theirs / ours:.1f}x",
            ],
            [
                "SciPy ks_2samp + wasserstein_distance; chisquare (no PSI, JS, ...)",
                f"{theirs * per_window:.2f}",
                "1.0x",
            ],
        ],
    )


def main() -> None:
    """Run the benchmarks and print their tables."""
    start = time.perf_counter()
    print(
        f"driftstream benchmarks: {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"numpy {np.__version__}, pandas {pd.__version__}, seed {SEED}"
    )
    rng = np.random.default_rng(SEED)
    reference = make_frame(rng, N_ROWS, shifted=False)
    current = make_frame(rng, N_ROWS, shifted=True)
    profile = build_profile(reference)
    bench_evaluation(profile, reference, current)
    bench_small_windows(profile, rng)
    bench_throughput(profile, current, rng)
    bench_memory(profile, rng)
    bench_profile_file(rng)
    print(f"\ntotal benchmark time: {time.perf_counter() - start:.0f} s")
