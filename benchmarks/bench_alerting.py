"""Alerting and metrics per closed window: what a worker does after the comparison.

After :meth:`monitor.partition.PartitionState.on_predictions` closes and
compares a window, the worker (``monitor/worker.py``) judges the alert rules
on its :class:`~schemas.outputs.WindowResult`
(:meth:`alerting.book.AlertBook.observe`), updates the Prometheus exporter
(:meth:`monitor.metrics.DriftMetrics.processed` and
:meth:`~monitor.metrics.DriftMetrics.window`), is scraped, and writes the
alert book's state into every partition snapshot
(:meth:`alerting.book.AlertBook.state`). No Kafka, no I/O, no sinks.

The windows are real: the demo simulator's traffic
(:class:`monitor.simulation.ServingSimulator`, the three demo models in turn,
each drifting halfway through, with its labels) runs through a
:class:`~monitor.partition.PartitionState` with count windows of 1,000
events; its :class:`~monitor.partition.Outputs` give the window results
and, via ``Outputs.windows``, the closed windows. References: each model's
``reference_frame`` with its labels (so results carry the reference's
performance too).

The baseline, measured in the same run, is the comparison of a closed
window with its reference: the two ``Comparator.compare`` calls
``PartitionState._evaluate`` makes (the input features, then the prediction
column), on the comparator the partition state keeps for that reference,
so its null calibrations are cached as in a running worker. ``_evaluate``
itself is not the baseline: it also builds the ``WindowResult`` (feature
dicts, pydantic validation), and it consumes the version's performance
window, so repeating it needs that window restored before each call. It is
timed too, that way (the restore not timed), as what a worker pays per
window in all. Every time is per call, the median of :data:`REPEATS` runs
over every window; the stages take turns, so a change in the machine's load
hits them all.

(g) per closed window of the demo models, against the comparison:

    - ``AlertBook.observe([result], active, now)``, the pure alert engine,
      with :func:`alerting.rules.default_rules` alone and with one
      ``performance`` and one ``data_quality`` rule added, on a fresh book
      that sees every window in order (so it makes transitions);
    - ``DriftMetrics.processed(...)`` plus ``DriftMetrics.window(result,
      now)``, the exporter update, once its series exist and for the first
      window of each version (which creates them);
    - ``prometheus_client.generate_latest``: one scrape after every window,
      its size and series (sample lines);
    - ``AlertBook.state()`` encoded as the snapshot header encodes it
      (compact ``json.dumps``) after all the windows, its size and time: with
      the undelivered transitions in the outbox (the snapshot written right
      after the step that made them) and with the outbox delivered.

    The same for a wide synthetic model of 200 numeric features (reference
    built with ``ReferenceProfile.from_frame``, windows with
    ``WindowState``), whose exporter runs with ``max_features_per_model=100``
    (100 features fold into ``feature="other"``) and without folding.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version

import numpy as np
import orjson
import pandas as pd
from prometheus_client import generate_latest

from alerting.book import AlertBook
from alerting.rules import AnyRule, DataQualityRule, PerformanceRule, default_rules
from benchmarks.bench_pipeline import (
    STEP_MESSAGES,
    check,
    config,
    one_blas_thread,
    single_messages,
    steps,
)
from benchmarks.bench_stats import print_table
from monitor.catalog import ReferenceCatalog
from monitor.comparison import Comparator
from monitor.config import DriftstreamConfig
from monitor.labels import PerformanceWindow
from monitor.metrics import DriftMetrics
from monitor.panes import ClosedWindow
from monitor.partition import InputMessage, PartitionState
from monitor.reference import ReferenceProfile
from monitor.simulation import DEMO_MODELS, ServingSimulator, reference_frame
from monitor.values import FeatureKind
from monitor.windows import WindowState
from schemas.outputs import ReferenceInfo, WindowBounds, WindowResult

SEED = 20261123
LABEL_TOPIC = "driftstream.labels"
WINDOW_EVENTS = 1_000
#: Windows each demo model closes; it drifts from the middle one on.
WINDOWS_PER_MODEL = 10
DRIFT_AFTER = WINDOWS_PER_MODEL // 2 * WINDOW_EVENTS
START_MS = 1_700_000_000_000
STEP_MS = 10
REPEATS = 9
#: A link template, as deployments configure one (filled in every transition).
LINKS = {
    "grafana": "https://grafana.example/d/driftstream?var-model={model}"
    "&var-version={model_version}&var-feature={feature}"
}
#: One rule of each other window kind, next to the default rules.
EXTRA_RULES: list[AnyRule] = [
    PerformanceRule(kind="performance", name="accuracy", metric="accuracy", below=0.75),
    DataQualityRule(
        kind="data_quality", name="unseen_categories", check="unseen_categories", above=0.02
    ),
]
WIDE_FEATURES = 200
#: Features of the wide model shifted in its drifted windows: the last ones,
#: which the exporter folds into ``other``.
WIDE_SHIFTED = 10
WIDE_REFERENCE_ROWS = 20_000
WIDE_WINDOWS = 4
WIDE_MAX_FEATURES = 100

#: One timed run: returns seconds per call.
Measure = Callable[[], float]


@dataclass(frozen=True)
class Closed:
    """A closed window, its result and what compares it again."""

    result: WindowResult
    state: WindowState
    comparator: Comparator
    names: list[str]
    column: str | None
    evaluation_seconds: float
    #: Worker clock at the close (the window's last event time).
    now: float
    window: ClosedWindow | None = None
    #: Per-window outcome counts for ``DriftMetrics.processed``.
    events: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    labels: Counter[tuple[str, str, str]] = field(default_factory=Counter)


def per_call(prepare: Callable[[], Callable[[], int]]) -> Measure:
    """A measure: ``prepare`` (not timed) gives a run, which returns the calls it made."""

    def measure() -> float:
        run = prepare()
        start = time.perf_counter()
        calls = run()
        return (time.perf_counter() - start) / calls

    return measure


def once(call: Callable[[], object]) -> Callable[[], Callable[[], int]]:
    """For :func:`per_call`: a run making ``call`` once, nothing to prepare."""

    def run() -> int:
        call()
        return 1

    return lambda: run


def exporting(
    new_metrics: Callable[[], DriftMetrics], windows: Sequence[Closed]
) -> Callable[[], Callable[[], int]]:
    """For :func:`per_call`: a new exporter (not timed), then a run exporting every window."""

    def prepare() -> Callable[[], int]:
        metrics = new_metrics()
        return lambda: export(metrics, windows)

    return prepare


def one_thread(measure: Measure) -> Measure:
    """``measure`` with BLAS limited to one thread (NaN without threadpoolctl)."""

    def limited() -> float:
        with one_blas_thread() as possible:
            return measure() if possible else float("nan")

    return limited


def in_turns(measures: Mapping[str, Measure], repeats: int = REPEATS) -> dict[str, float]:
    """Median seconds per call of each measure over ``repeats`` runs, taking turns."""
    times: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(repeats):
        for name, measure in measures.items():
            times[name].append(measure())
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def compare(closed: Closed) -> None:
    """The comparisons ``PartitionState._evaluate`` runs on a closed window."""
    closed.comparator.compare(closed.state, closed.names, output=closed.column)


def compare_all(windows: Sequence[Closed]) -> Callable[[], int]:
    """A run comparing every window."""

    def run() -> int:
        for closed in windows:
            compare(closed)
        return len(windows)

    return run


def new_book(rules: Sequence[AnyRule], settings: DriftstreamConfig) -> AlertBook:
    """An empty alert book, configured as a worker's partition state configures it."""
    return AlertBook(
        rules, settings.policy_for, LINKS, settings.alerting.version_ttl.total_seconds()
    )


def observe_all(
    book: AlertBook, windows: Sequence[Closed], active: Sequence[tuple[str, str]]
) -> Callable[[], int]:
    """A run observing every window, in order, with ``book``."""

    def run() -> int:
        for closed in windows:
            book.observe([closed.result], active, closed.now)
        return len(windows)

    return run


def export(metrics: DriftMetrics, windows: Sequence[Closed]) -> int:
    """The exporter update of every window, as the worker makes it."""
    for closed in windows:
        metrics.processed(closed.events, closed.labels, 0, [closed.evaluation_seconds], closed.now)
        metrics.window(closed.result, closed.now)
    return len(windows)


def exported(windows: Sequence[Closed], max_features: int = 100) -> DriftMetrics:
    """A new exporter that has seen every window (so its series exist)."""
    metrics = DriftMetrics(max_features_per_model=max_features)
    export(metrics, windows)
    return metrics


def snapshot_json(book: AlertBook) -> bytes:
    """The book's state as the snapshot header encodes it (see ``monitor.framing``)."""
    return json.dumps(book.state(), separators=(",", ":")).encode()


def sample_lines(scrape: bytes) -> int:
    """Series in a scrape: its sample lines."""
    return sum(1 for line in scrape.splitlines() if line and not line.startswith(b"#"))


def ratio(seconds: float, baseline: float) -> str:
    """``seconds / baseline`` with three significant digits."""
    value = seconds / baseline
    return f"{value:.3g}x" if np.isfinite(value) else "-"


def ms(seconds: float) -> str:
    """Milliseconds, three decimals."""
    return f"{seconds * 1e3:.3f}" if np.isfinite(seconds) else "-"


def alert_summary(book: AlertBook) -> str:
    """Alert states by status, and the outbox length."""
    statuses = Counter(state.status for state in book.alerts.values())
    return (
        f"{len(book.alerts)} alert states ("
        + ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
        + f"), {len(book.outbox)} undelivered transitions"
    )


# -- the demo models ------------------------------------------------------------


def build_catalog() -> ReferenceCatalog:
    """Reference profiles of the demo models' healthy traffic, with its performance."""
    catalog = ReferenceCatalog()
    for model in DEMO_MODELS.values():
        catalog.put(
            ReferenceProfile.from_frame(
                reference_frame(model, seed=SEED),
                model=model.name,
                model_version=model.version,
                kinds=model.kinds,
                label_column="label",
                task=model.task,
            )
        )
    return catalog


def demo_windows(
    catalog: ReferenceCatalog, settings: DriftstreamConfig
) -> tuple[PartitionState, list[Closed]]:
    """The demo simulator's traffic and labels processed; the windows that closed, in order.

    Not timed; BLAS on one thread only to build them sooner.
    """
    simulator = ServingSimulator(seed=SEED, drift_after_events=DRIFT_AFTER)
    events = WINDOWS_PER_MODEL * WINDOW_EVENTS * len(DEMO_MODELS)
    documents = simulator.predictions(events, start_ms=START_MS, step_ms=STEP_MS)
    state = PartitionState(0, settings, catalog)
    label_offset = 0
    found: list[Closed] = []
    with one_blas_thread():
        for step in steps(single_messages(documents), STEP_MESSAGES):
            outputs = check(state.on_predictions(step))
            if outputs.skipped_windows or len(outputs.results) != len(outputs.windows):
                raise RuntimeError("every closed window must be compared")
            for result, seconds in zip(outputs.results, outputs.evaluation_seconds, strict=True):
                key = (result.model, result.model_version)
                window = outputs.windows[(*key, result.window.id)]
                found.append(closed_window(state, result, window, seconds))
            last_ms = orjson.loads(step[-1].value or b"")["timestamp"]
            labels = [
                InputMessage(LABEL_TOPIC, 0, label_offset + position, orjson.dumps(label))
                for position, label in enumerate(simulator.labels_due(last_ms))
            ]
            label_offset += len(labels)
            check(state.on_labels(labels))
    if len(found) != WINDOWS_PER_MODEL * len(DEMO_MODELS):
        raise RuntimeError(f"expected {WINDOWS_PER_MODEL} windows per model, got {len(found)}")
    return state, found


def closed_window(
    state: PartitionState, result: WindowResult, window: ClosedWindow, seconds: float
) -> Closed:
    """A closed window with the comparator and features ``_evaluate`` used for it."""
    key = (result.model, result.model_version)
    monitor = state.versions[key]
    profile = state.catalog.get(window.profile_id)
    assert profile is not None
    comparator = monitor.comparator(window.profile_id, profile)
    column = monitor.settings.prediction_column
    names = [
        name for name in (monitor.settings.features or profile.features) if name in profile.features
    ]
    last = result.window.last_event_time
    closed = Closed(
        result=result,
        state=window.state,
        comparator=comparator,
        names=names,
        column=column if column in profile.features else None,
        evaluation_seconds=seconds,
        now=START_MS / 1000 if last is None else last.timestamp(),
        window=window,
        events=Counter({(*key, "processed"): result.n_events}),
        labels=Counter({(*key, "joined"): int((result.performance or {}).get("n_labeled", 0))}),
    )
    again = comparator.compare(window.state, names, output=column)
    if again.severity.value != result.severity or again.drifted_features != list(
        result.drifted_features
    ):
        raise RuntimeError("the timed comparison must be the one the worker made")
    return closed


def evaluate_measure(state: PartitionState, windows: Sequence[Closed]) -> Measure:
    """``PartitionState._evaluate`` per window, on ``state`` (which closed the windows).

    Before each call (not timed) the version's performance window is
    restored to the one open when the traffic ended, which ``_evaluate``
    consumes.
    """
    saved = {key: monitor.performance.state() for key, monitor in state.versions.items()}

    def measure() -> float:
        seconds = 0.0
        for closed in windows:
            key = (closed.result.model, closed.result.model_version)
            monitor = state.versions[key]
            monitor.performance = PerformanceWindow.restore(saved[key])
            assert closed.window is not None
            start = time.perf_counter()
            state._evaluate(monitor, closed.window)
            seconds += time.perf_counter() - start
        return seconds / len(windows)

    return measure


def bench_demo(catalog: ReferenceCatalog, settings: DriftstreamConfig) -> None:
    """(g) Alerting and metrics per closed window of the demo models."""
    partition, windows = demo_windows(catalog, settings)
    active = sorted({(c.result.model, c.result.model_version) for c in windows})
    all_rules = [*default_rules(), *EXTRA_RULES]
    firsts = list({(c.result.model, c.result.model_version): c for c in reversed(windows)}.values())

    # Built once, not timed: what the scrape and the snapshot see after every window.
    metrics = exported(windows)
    book = new_book(all_rules, settings)
    transitions = Counter(
        event.status
        for closed in windows
        for event in book.observe([closed.result], active, closed.now)
    )
    delivered = new_book(all_rules, settings)
    delivered.restore(book.state())
    delivered.outbox = {}
    scrape = generate_latest(metrics.registry)

    measures: dict[str, Measure] = {
        "compare": per_call(lambda: compare_all(windows)),
        "compare 1": one_thread(per_call(lambda: compare_all(windows))),
        "evaluate": evaluate_measure(partition, windows),
        "observe default": per_call(
            lambda: observe_all(new_book(default_rules(), settings), windows, active)
        ),
        "observe all": per_call(
            lambda: observe_all(new_book(all_rules, settings), windows, active)
        ),
        "export": per_call(exporting(lambda: exported(windows), windows)),
        "export first": per_call(exporting(DriftMetrics, firsts)),
        "scrape": per_call(once(lambda: generate_latest(metrics.registry))),
        "state": per_call(once(lambda: snapshot_json(book))),
        "state delivered": per_call(once(lambda: snapshot_json(delivered))),
    }
    t = in_turns(measures)
    base = t["compare"]
    severities = Counter(c.result.severity for c in windows)

    def row(label: str, name: str, size: str = "-", series: str = "-") -> list[str]:
        return [label, ms(t[name]), ratio(t[name], base), size, series]

    rows = [
        row("Comparator.compare, features + prediction, warm (baseline)", "compare"),
        row("  same, BLAS limited to 1 thread", "compare 1"),
        row("PartitionState._evaluate (compare + WindowResult)", "evaluate"),
        row("AlertBook.observe, default rules (feature_drift, dataset_drift)", "observe default"),
        row("AlertBook.observe, + performance + data_quality (4 rules)", "observe all"),
        row("DriftMetrics.processed + window, series exist", "export"),
        row("  same, first window of a version (creates its series)", "export first"),
        row(
            "generate_latest, one scrape after every window",
            "scrape",
            f"{len(scrape):,}",
            f"{sample_lines(scrape):,}",
        ),
        row(
            f"AlertBook.state() + json.dumps, {len(book.outbox)} transitions in the outbox",
            "state",
            f"{len(snapshot_json(book)):,}",
        ),
        row("  same, outbox delivered", "state delivered", f"{len(snapshot_json(delivered)):,}"),
    ]
    print_table(
        f"(g) alerting and metrics per closed window: {len(windows)} windows of "
        f"{len(DEMO_MODELS)} demo models (count windows of {WINDOW_EVENTS:,} events, drifting "
        f"from window {WINDOWS_PER_MODEL // 2}), per call, median of {REPEATS} taking turns",
        ["step", "ms per call", "vs compare", "bytes", "series"],
        rows,
    )
    print(
        "  closed windows: "
        + ", ".join(f"{count} {name}" for name, count in sorted(severities.items()))
        + "; transitions (4 rules): "
        + ", ".join(f"{count} {name}" for name, count in sorted(transitions.items()))
    )
    print(f"  after every window: {alert_summary(book)}")


# -- a wide model -----------------------------------------------------------------


def wide_windows(settings: DriftstreamConfig) -> list[Closed]:
    """Windows of a 200-feature numeric model, the second half drifted; calibrated comparator."""
    rng = np.random.default_rng(SEED)
    names = [f"x{i:03d}" for i in range(WIDE_FEATURES)]
    loc = rng.uniform(-5.0, 5.0, WIDE_FEATURES)
    scale = rng.uniform(0.5, 5.0, WIDE_FEATURES)

    def frame(rows: int, drifted: bool) -> pd.DataFrame:
        values = rng.normal(loc, scale, size=(rows, WIDE_FEATURES))
        if drifted:
            values[:, -WIDE_SHIFTED:] += 0.5 * scale[-WIDE_SHIFTED:]
        return pd.DataFrame(values, columns=names)

    profile = ReferenceProfile.from_frame(
        frame(WIDE_REFERENCE_ROWS, drifted=False),
        model="wide",
        model_version="1",
        kinds=dict.fromkeys(names, FeatureKind.NUMERIC),
    )
    policy = settings.policy_for("wide")
    comparator = Comparator(profile, policy)
    found = []
    for index in range(WIDE_WINDOWS):
        state = WindowState.for_profile(profile)
        state.update_frame(frame(WINDOW_EVENTS, drifted=index >= WIDE_WINDOWS // 2))
        started = time.perf_counter()
        comparison = comparator.compare(state)  # the first one calibrates, not timed later
        seconds = time.perf_counter() - started
        result = WindowResult(
            model=profile.model,
            model_version=profile.model_version,
            window=WindowBounds(
                kind="count",
                id=index,
                start_event=index * WINDOW_EVENTS,
                end_event=(index + 1) * WINDOW_EVENTS,
            ),
            n_events=state.n_rows,
            severity=comparison.severity.value,
            drifted_features=comparison.drifted_features,
            features={name: f.to_dict() for name, f in comparison.features.items()},
            reference=ReferenceInfo(
                model_version=profile.model_version,
                n_rows=profile.n_rows,
                built_at=profile.built_at,
            ),
            alpha=policy.alpha,
            correction=policy.correction.value,
            min_samples=policy.min_samples,
        )
        key = (profile.model, profile.model_version)
        found.append(
            Closed(
                result=result,
                state=state,
                comparator=comparator,
                names=list(profile.features),
                column=None,
                evaluation_seconds=seconds,
                now=START_MS / 1000 + 30.0 * index,
                events=Counter({(*key, "processed"): state.n_rows}),
            )
        )
    return found


def bench_wide(settings: DriftstreamConfig) -> None:
    """(g) The same per window of a 200-feature model, with and without folding."""
    windows = wide_windows(settings)
    active = [("wide", "1")]
    all_rules = [*default_rules(), *EXTRA_RULES]
    folded, unfolded = exported(windows, WIDE_MAX_FEATURES), exported(windows, WIDE_FEATURES)
    book = new_book(all_rules, settings)
    observe_all(book, windows, active)()
    scrapes = {
        "folded": generate_latest(folded.registry),
        "all": generate_latest(unfolded.registry),
    }
    other = folded.registry.get_sample_value(
        "driftstream_feature_severity", {"model": "wide", "model_version": "1", "feature": "other"}
    )

    measures: dict[str, Measure] = {
        "compare": per_call(lambda: compare_all(windows)),
        "observe": per_call(lambda: observe_all(new_book(all_rules, settings), windows, active)),
        "export folded": per_call(exporting(lambda: exported(windows, WIDE_MAX_FEATURES), windows)),
        "export all": per_call(exporting(lambda: exported(windows, WIDE_FEATURES), windows)),
        "scrape folded": per_call(once(lambda: generate_latest(folded.registry))),
        "scrape all": per_call(once(lambda: generate_latest(unfolded.registry))),
        "state": per_call(once(lambda: snapshot_json(book))),
    }
    t = in_turns(measures)
    base = t["compare"]

    def row(label: str, name: str, size: str = "-", series: str = "-") -> list[str]:
        return [label, ms(t[name]), ratio(t[name], base), size, series]

    print_table(
        f"(g) wide model: {WIDE_FEATURES} numeric features ({WIDE_SHIFTED} shifted by 0.5 sd in "
        f"the last {WIDE_WINDOWS - WIDE_WINDOWS // 2} of {WIDE_WINDOWS} windows of "
        f"{WINDOW_EVENTS:,} events), per call, median of {REPEATS} taking turns",
        ["step", "ms per call", "vs compare", "bytes", "series"],
        [
            ["Comparator.compare, warm (baseline)", ms(base), "1x", "-", "-"],
            row("AlertBook.observe, 4 rules", "observe"),
            row(
                f"DriftMetrics.processed + window, max_features_per_model={WIDE_MAX_FEATURES}",
                "export folded",
            ),
            row(f"  same, no folding (max_features_per_model={WIDE_FEATURES})", "export all"),
            row(
                f"generate_latest, {WIDE_FEATURES - WIDE_MAX_FEATURES} features folded",
                "scrape folded",
                f"{len(scrapes['folded']):,}",
                f"{sample_lines(scrapes['folded']):,}",
            ),
            row(
                "generate_latest, no folding",
                "scrape all",
                f"{len(scrapes['all']):,}",
                f"{sample_lines(scrapes['all']):,}",
            ),
            row(
                f"AlertBook.state() + json.dumps, {len(book.outbox)} transitions in the outbox",
                "state",
                f"{len(snapshot_json(book)):,}",
            ),
        ],
    )
    print(
        f'  feature="other" severity after the last window: {other} '
        f"(the shifted features are among the folded ones); {alert_summary(book)}"
    )


def main() -> None:
    """Run the alerting and metrics benchmarks and print their tables."""
    start = time.perf_counter()
    print(
        f"driftstream alerting benchmarks: {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"pydantic {version('pydantic')}, prometheus-client {version('prometheus-client')}, "
        f"seed {SEED}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    settings = config(WINDOW_EVENTS)
    bench_demo(build_catalog(), settings)
    bench_wide(settings)
    print(f"\ntotal alerting benchmark time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
