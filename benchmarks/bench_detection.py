"""Detection power and false alarms: driftstream's defaults, Evidently's, and naive KS.

Streams with known truth. Every cell draws a reference and windows from one
population and compares each window with the reference three ways, in the
same run:

- **driftstream**: ``Comparator(profile)`` with the default ``DriftPolicy``,
  the verdict users get (a window is flagged when any feature's severity is
  warning or critical);
- **Evidently**: ``Report([DataDriftPreset()])`` with its defaults (flagged
  when any column's drift is detected);
- **naive**: one test per feature at p < 0.05 with no correction (SciPy's
  ``ks_2samp`` for numeric, ``chisquare`` of the window's category counts
  against the reference's shares for categorical features).

Per cell it prints the share of null windows with any feature flagged and,
for each shift, the share of shifted windows caught and the share in which
the shifted feature itself was named.

Populations
-----------
- ``synthetic``: correlated features from a Gaussian factor model (one
  factor per group of five features, loading 0.7), turned into normal,
  log-normal, exponential, uniform and rounded (tied) shapes; one feature
  in five is categorical (Zipf-like shares, cut from the same factor model).
  10 or 50 features.
- ``randhie``: the RAND Health Insurance Experiment data shipped with
  statsmodels (20,190 rows): its 10-column modelling table, and the 45-column
  source table with ``plan`` and ``site`` as categorical features. Rows are
  drawn with replacement, so the population is exactly the table.

The reference has ``max(8,000, window size)`` rows: 8,000 as in a new user's
first trial, and as large as the window at 10,000 and 100,000 rows, where
a reference smaller than the window would make every test weak.

Run: ``python -m benchmarks.bench_detection [--quick]`` (also part of
``make bench``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from benchmarks.bench_stats import print_table
from monitor.comparison import Comparator
from monitor.reference import ReferenceProfile
from monitor.windows import WindowState

SEED = 20261204
REFERENCE_ROWS = 8_000
WINDOW_SIZES = (300, 1_000, 10_000, 100_000)
#: Windows per cell. Null cells need enough windows to resolve 1 in 30.
NULL_WINDOWS = 60
SHIFTED_WINDOWS = 20
#: At this window size and above, fewer: a 50-feature window takes 2 s there.
LARGE_WINDOW = 100_000
LARGE_NULL_WINDOWS = 30
LARGE_SHIFTED_WINDOWS = 10
#: Evidently's ``DataDriftPreset`` takes 2.5 s per 50-column window (16 s at
#: 100,000 rows), mostly drawing its plots, so it sees fewer windows.
EVIDENTLY_NULL_WINDOWS = 10
EVIDENTLY_SHIFTED_WINDOWS = 5
#: Evidently is skipped above this many cell values (rows x features) per window.
EVIDENTLY_MAX_VALUES = 1_000_000
SUBGROUP_QUANTILE = 0.75
FACTOR_LOADING = 0.7
CATEGORY_SHARES = np.array([0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
NEW_CATEGORY = "__new__"

Frame = pd.DataFrame
Rng = np.random.Generator


@dataclass(frozen=True)
class Population:
    """A population to draw reference and windows from.

    ``draw(rng, n)`` returns ``n`` rows; ``numeric`` is the feature that
    numeric shifts and sub-group mixes act on, ``categorical`` the one
    categorical shifts act on (``None``: those shifts are not run).
    """

    name: str
    draw: Callable[[Rng, int], Frame]
    numeric: str
    categorical: str | None
    n_features: int


def synthetic(n_features: int) -> Population:
    """Correlated synthetic features of several shapes (one in five categorical)."""
    n_groups = -(-n_features // 5)
    categories = np.array(list("abcdef"), dtype=object)
    cuts = np.cumsum(CATEGORY_SHARES)[:-1]

    def draw(rng: Rng, n: int) -> Frame:
        factors = rng.standard_normal((n, n_groups))
        noise = rng.standard_normal((n, n_features))
        latent = (
            FACTOR_LOADING * factors[:, np.arange(n_features) // 5]
            + np.sqrt(1 - FACTOR_LOADING**2) * noise
        )
        uniform = stats.norm.cdf(latent)
        columns: dict[str, object] = {}
        for i in range(n_features):
            z, u = latent[:, i], uniform[:, i]
            match i % 5:
                case 0:
                    columns[f"num_{i}"] = 10 + 2 * z
                case 1:
                    columns[f"num_{i}"] = np.exp(0.8 * z)
                case 2:
                    columns[f"num_{i}"] = -np.log1p(-u) * 3
                case 3:
                    columns[f"cat_{i}"] = categories[np.searchsorted(cuts, u)]
                case _:
                    columns[f"num_{i}"] = np.round(5 * z)
        return pd.DataFrame(columns)

    return Population(f"synthetic, {n_features} features", draw, "num_0", "cat_3", n_features)


def randhie(wide: bool) -> Population:
    """The RAND HIE table from statsmodels, 10 or 45 columns, drawn with replacement."""
    # statsmodels comes with Evidently; only its data files are read.
    spec = importlib.util.find_spec("statsmodels")
    assert spec is not None
    assert spec.origin is not None
    folder = Path(spec.origin).parent / "datasets" / "randhie"
    if wide:
        table = pd.read_csv(folder / "src" / "randhie.csv")
        for name in ("plan", "site"):
            table[name] = (name + table[name].astype(str)).astype(object)
        numeric, categorical = "xage", "site"
    else:
        table = pd.read_csv(folder / "randhie.csv")
        numeric, categorical = "lpi", None

    def draw(rng: Rng, n: int) -> Frame:
        return table.iloc[rng.integers(0, len(table), n)].reset_index(drop=True)

    return Population(
        f"randhie, {table.shape[1]} features", draw, numeric, categorical, table.shape[1]
    )


@dataclass(frozen=True)
class Shift:
    """A change applied to windows; ``target`` is the feature it changes."""

    name: str
    apply: Callable[[Population, Rng, int, Frame], Frame]
    categorical: bool = False


def mean_shift(sigmas: float) -> Shift:
    """Add ``sigmas`` population standard deviations to the numeric feature."""

    def apply(population: Population, rng: Rng, n: int, frame: Frame) -> Frame:
        scale = _scale(population, population.numeric)
        frame[population.numeric] = frame[population.numeric] + sigmas * scale
        return frame

    return Shift(f"mean +{sigmas:g} sd", apply)


def scale_change(factor: float) -> Shift:
    """Stretch the numeric feature around its population mean by ``factor``."""

    def apply(population: Population, rng: Rng, n: int, frame: Frame) -> Frame:
        column = frame[population.numeric]
        centre = _centre(population, population.numeric)
        frame[population.numeric] = centre + (column - centre) * factor
        return frame

    return Shift(f"scale x{factor:g}", apply)


def subgroup_mix(share: float) -> Shift:
    """Replace ``share`` of the rows by rows from the numeric feature's top quartile."""

    def apply(population: Population, rng: Rng, n: int, frame: Frame) -> Frame:
        k = round(share * n)
        cut = _quantile(population, population.numeric, SUBGROUP_QUANTILE)
        rows: list[Frame] = []
        while sum(len(r) for r in rows) < k:
            pool = population.draw(rng, 4 * k + 100)
            rows.append(pool[pool[population.numeric] > cut])
        subgroup = pd.concat(rows, ignore_index=True).iloc[:k]
        return pd.concat([frame.iloc[k:], subgroup], ignore_index=True)

    return Shift(f"sub-group {share:.0%}", apply)


def share_change(points: float) -> Shift:
    """Move ``points`` of the window from the most common category to the others."""

    def apply(population: Population, rng: Rng, n: int, frame: Frame) -> Frame:
        assert population.categorical is not None
        column = frame[population.categorical].to_numpy(dtype=object).copy()
        top = pd.Series(column).mode().iloc[0]
        others = np.unique(column[column != top])
        flip = np.flatnonzero(column == top)
        flip = flip[rng.random(flip.size) < points / max(np.mean(column == top), points)]
        column[flip] = rng.choice(others, flip.size)
        frame[population.categorical] = column
        return frame

    return Shift(f"category share -{points:.0%}", apply, categorical=True)


def new_category(share: float) -> Shift:
    """A category the reference never saw, in ``share`` of the rows."""

    def apply(population: Population, rng: Rng, n: int, frame: Frame) -> Frame:
        assert population.categorical is not None
        column = frame[population.categorical].to_numpy(dtype=object).copy()
        column[rng.random(n) < share] = NEW_CATEGORY
        frame[population.categorical] = column
        return frame

    return Shift(f"new category {share:.0%}", apply, categorical=True)


def null_rise(share: float) -> Shift:
    """Blank ``share`` of the numeric feature's values."""

    def apply(population: Population, rng: Rng, n: int, frame: Frame) -> Frame:
        column = frame[population.numeric].to_numpy(dtype=np.float64).copy()
        column[rng.random(n) < share] = np.nan
        frame[population.numeric] = column
        return frame

    return Shift(f"nulls +{share:.0%}", apply)


SHIFTS = (
    mean_shift(0.02),
    mean_shift(0.1),
    mean_shift(0.3),
    mean_shift(0.5),
    mean_shift(0.8),
    mean_shift(1.0),
    scale_change(1.1),
    scale_change(1.5),
    subgroup_mix(0.05),
    subgroup_mix(0.1),
    subgroup_mix(0.2),
    share_change(0.1),
    new_category(0.02),
    null_rise(0.1),
)

#: Sorted values of one large seeded sample, by (population, feature).
_SAMPLES: dict[tuple[str, str], npt.NDArray[np.float64]] = {}


def _sample(population: Population, feature: str) -> npt.NDArray[np.float64]:
    key = (population.name, feature)
    if key not in _SAMPLES:
        values = population.draw(np.random.default_rng(SEED), 200_000)[feature]
        _SAMPLES[key] = np.sort(values.dropna().to_numpy(dtype=np.float64))
    return _SAMPLES[key]


def _scale(population: Population, feature: str) -> float:
    return float(np.std(_sample(population, feature)))


def _centre(population: Population, feature: str) -> float:
    return float(np.mean(_sample(population, feature)))


def _quantile(population: Population, feature: str, q: float) -> float:
    return float(np.quantile(_sample(population, feature), q))


Detector = Callable[[Frame], set[str]]


def driftstream_detector(reference: Frame) -> Detector:
    """Features driftstream's default policy flags in a window."""
    profile = ReferenceProfile.from_frame(reference, model="bench", model_version="1")
    comparator = Comparator(profile)

    def detect(window: Frame) -> set[str]:
        state = WindowState.for_profile(profile)
        state.update_frame(window)
        return set(comparator.compare(state).drifted_features)

    return detect


def naive_detector(reference: Frame) -> Detector:
    """Features with p < 0.05 in an uncorrected per-feature test."""
    numeric = {
        str(name): reference[name].dropna().to_numpy(dtype=np.float64)
        for name in reference
        if reference[name].dtype != object
    }
    categorical = {
        str(name): reference[name].value_counts(normalize=True)
        for name in reference
        if reference[name].dtype == object
    }

    def detect(window: Frame) -> set[str]:
        flagged: set[str] = set()
        for name, values in numeric.items():
            current = window[name].dropna().to_numpy(dtype=np.float64)
            # scipy warns when its exact p-value falls back to the asymptotic one.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                p_value = stats.ks_2samp(values, current).pvalue if current.size else 1.0
            if p_value < 0.05:
                flagged.add(name)
        for name, shares in categorical.items():
            counts = window[name].value_counts()
            support = shares.index.union(counts.index)
            observed = counts.reindex(support, fill_value=0).to_numpy(dtype=np.float64)
            expected = shares.reindex(support, fill_value=0).to_numpy() + 1e-4
            expected = expected / expected.sum() * observed.sum()
            if stats.chisquare(observed, expected).pvalue < 0.05:
                flagged.add(name)
        return flagged

    return detect


def evidently_detector(reference: Frame) -> Detector:
    """Columns Evidently's ``DataDriftPreset`` (defaults) finds drifted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently import Report
        from evidently.presets import DataDriftPreset

    def detect(window: Frame) -> set[str]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            snapshot = Report([DataDriftPreset()]).run(window, reference).dict()
        flagged = set()
        for metric in snapshot["metrics"]:
            config = metric["config"]
            if not config["type"].endswith("ValueDrift"):
                continue
            value, threshold = float(metric["value"]), config["threshold"]
            # p-value methods drift below the threshold, distances at or above it.
            drifted = value < threshold if "p_value" in config["method"] else value >= threshold
            if drifted:
                flagged.add(config["column"])
        return flagged

    return detect


METHODS: dict[str, Callable[[Frame], Detector]] = {
    "driftstream": driftstream_detector,
    "Evidently": evidently_detector,
    "naive KS": naive_detector,
}


@dataclass
class Tally:
    """Windows seen, windows with anything flagged, windows naming the target."""

    windows: int = 0
    flagged: int = 0
    named: int = 0

    def rate(self, count: int) -> str:
        return "-" if self.windows == 0 else f"{count}/{self.windows}"


@dataclass
class CellResult:
    """One population at one window size: a tally per (scenario, method)."""

    population: str
    size: int
    seconds: float = 0.0
    tallies: dict[tuple[str, str], Tally] = field(default_factory=dict)


def windows_of(method: str, scenario: str, quick: bool, size: int, n_features: int) -> int:
    """How many windows ``method`` sees in a scenario (``"null"`` or a shift)."""
    if method == "Evidently":
        if size * n_features > EVIDENTLY_MAX_VALUES:
            return 0
        count = EVIDENTLY_NULL_WINDOWS if scenario == "null" else EVIDENTLY_SHIFTED_WINDOWS
    elif size >= LARGE_WINDOW:
        count = LARGE_NULL_WINDOWS if scenario == "null" else LARGE_SHIFTED_WINDOWS
    else:
        count = NULL_WINDOWS if scenario == "null" else SHIFTED_WINDOWS
    return max(1, count // 5) if quick else count


def scenarios(population: Population) -> Iterator[Shift | None]:
    """The null (``None``) and every shift that applies to ``population``."""
    yield None
    for shift in SHIFTS:
        if not shift.categorical or population.categorical is not None:
            yield shift


def run_cell(index: int, size: int, quick: bool, methods: Sequence[str]) -> CellResult:
    """Every scenario and method on ``populations()[index]`` at one window size."""
    start = time.perf_counter()
    population = populations()[index]
    rng = np.random.default_rng([SEED, size, population.n_features])
    reference = population.draw(rng, max(REFERENCE_ROWS, size))
    detectors = {name: METHODS[name](reference) for name in methods}
    result = CellResult(population.name, size)
    for shift in scenarios(population):
        scenario = "null" if shift is None else shift.name
        target = None
        if shift is not None:
            target = population.categorical if shift.categorical else population.numeric
        counts = {m: windows_of(m, scenario, quick, size, population.n_features) for m in methods}
        for i in range(max(counts.values())):
            window = population.draw(rng, size)
            if shift is not None:
                window = shift.apply(population, rng, size, window)
            for method, detector in detectors.items():
                if i >= counts[method]:
                    continue
                tally = result.tallies.setdefault((scenario, method), Tally())
                flagged = detector(window)
                tally.windows += 1
                tally.flagged += bool(flagged)
                tally.named += target in flagged
    result.seconds = time.perf_counter() - start
    return result


def populations() -> list[Population]:
    """Every population of the benchmark, in print order."""
    return [synthetic(10), synthetic(50), randhie(wide=False), randhie(wide=True)]


def print_cell(result: CellResult, methods: Sequence[str]) -> None:
    """One cell's table: null false alarms, then caught / named per shift."""
    header = ["scenario", *(f"{m} {col}" for m in methods for col in ("caught", "named"))]
    rows = []
    for scenario in dict.fromkeys(s for s, _ in result.tallies):
        row = [scenario]
        for method in methods:
            tally = result.tallies.get((scenario, method), Tally())
            row.append(tally.rate(tally.flagged))
            row.append("" if scenario == "null" else tally.rate(tally.named))
        rows.append(row)
    title = f"{result.population}, {result.size:,}-row windows ({result.seconds:.0f} s)"
    print_table(title, header, rows)
    if "driftstream" in methods and "Evidently" in methods:
        print(f"  {evidently_margin(result)}")


def share(result: CellResult, scenario: str, method: str) -> float | None:
    """Share of a scenario's windows a method flagged (``None``: it saw none)."""
    tally = result.tallies.get((scenario, method), Tally())
    return tally.flagged / tally.windows if tally.windows else None


def evidently_margin(result: CellResult) -> str:
    """Where Evidently catches more than driftstream, and whether fewer false alarms pay for it.

    The issue's rule: in every cell where Evidently's defaults catch more
    shifted windows, driftstream's false-alarm rate must be lower by at
    least as many points.
    """
    null_ours = share(result, "null", "driftstream")
    null_theirs = share(result, "null", "Evidently")
    if null_ours is None or null_theirs is None:
        return "Evidently: not run at this size"
    fewer_alarms = null_theirs - null_ours
    ahead = []
    for scenario in dict.fromkeys(s for s, _ in result.tallies):
        ours, theirs = share(result, scenario, "driftstream"), share(result, scenario, "Evidently")
        if scenario != "null" and ours is not None and theirs is not None and theirs > ours:
            ahead.append((scenario, theirs - ours))
    if not ahead:
        return "Evidently catches more in no scenario"
    worst = max(margin for _, margin in ahead)
    listed = ", ".join(f"{scenario} (+{margin:.0%})" for scenario, margin in ahead)
    verdict = "covered" if fewer_alarms >= worst else "NOT covered"
    return (
        f"Evidently catches more in: {listed}; driftstream's false alarms are "
        f"{fewer_alarms:.0%} lower: {verdict}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run every cell (two processes) and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fifth of the windows")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=list(WINDOW_SIZES), help="window sizes"
    )
    parser.add_argument(
        "--methods", nargs="+", default=list(METHODS), choices=list(METHODS), help="methods"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    print(
        f"\n(h) detection: {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"seed {SEED}; windows per cell: null {NULL_WINDOWS}, shifted {SHIFTED_WINDOWS} "
        f"({LARGE_NULL_WINDOWS} / {LARGE_SHIFTED_WINDOWS} at {LARGE_WINDOW:,} rows; "
        f"Evidently {EVIDENTLY_NULL_WINDOWS} / {EVIDENTLY_SHIFTED_WINDOWS}, "
        f"only up to {EVIDENTLY_MAX_VALUES:,} values per window)"
        + (", quick: a fifth of those" if args.quick else "")
    )
    print("  caught: windows with any feature flagged; named: the shifted feature was flagged")
    cells = [(i, size) for size in args.sizes for i in range(len(populations()))]
    # Populations hold closures, so workers rebuild them from their index.
    with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        futures = [pool.submit(run_cell, i, size, args.quick, args.methods) for i, size in cells]
        for future in futures:
            print_cell(future.result(), args.methods)
    print(f"\ndetection benchmark time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
