"""Streaming pipeline speed: what a worker computes per batch of Kafka messages.

The benchmarks time :class:`monitor.partition.PartitionState`, the pure
per-partition pipeline a worker runs on every batch of messages it takes
from a prediction partition (no Kafka, no I/O). The traffic is the demo
simulator's (:class:`monitor.simulation.ServingSimulator`, the three demo
models in turn, drifting halfway through the timed events) encoded with
orjson, against reference profiles of each model's healthy traffic.

Every number is printed next to a baseline measured in the same run:

(e) events per second of ``PartitionState.on_predictions`` against just
    decoding and validating the same messages
    (:func:`schemas.decoding.decode_prediction`), the floor any worker pays:
    single-event messages in steps of the worker's default
    ``batch_max_events`` (2,000 messages), and ``prediction_batch`` messages
    of 1,000 rows; count windows of 1,000 events, so the timed events close
    windows and compare them with the reference. The same single-event run
    with windows that never close separates the per-window evaluation cost;
    it is also run with BLAS (OpenBLAS) limited to one thread, with another
    busy process on the machine, and both; a cProfile of its first steps
    shows where the time goes;
(f) snapshot size, ``snapshot()`` and ``restore()`` time with every model's
    window half full, against the time of one processing step.
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import orjson
import pandas as pd

from benchmarks.bench_stats import print_table
from monitor.catalog import ReferenceCatalog
from monitor.config import DriftstreamConfig, WorkerConfig
from monitor.partition import InputMessage, Outputs, PartitionState
from monitor.reference import ReferenceProfile
from monitor.simulation import DEMO_MODELS, ServingSimulator, reference_frame, to_batch
from schemas.decoding import decode_prediction
from schemas.events import PredictionBatch

SEED = 20261123
TOPIC = "driftstream.predictions"
WINDOW_EVENTS = 1_000
#: Messages per ``on_predictions`` call: the worker's default ``batch_max_events``.
STEP_MESSAGES = WorkerConfig().batch_max_events
BATCH_ROWS = 1_000
#: Events before the timed ones: a window per model closes, so the
#: comparators' null calibrations are cached as in a running worker.
WARMUP_EVENTS = WINDOW_EVENTS * len(DEMO_MODELS)
#: Timed events: five windows per model.
TIMED_EVENTS = 5 * WINDOW_EVENTS * len(DEMO_MODELS)
#: Each model drifts after this many of its events: halfway through the timed ones.
DRIFT_AFTER = (WARMUP_EVENTS + TIMED_EVENTS // 2) // len(DEMO_MODELS)
#: A window no benchmark run fills, for the run without window closes.
NEVER_CLOSES = 1_000_000
REPEATS = 5
#: Repeats of each on_predictions run (they take turns, see :func:`time_interleaved`).
PIPELINE_REPEATS = 3
#: Seconds the busy process gets to start before a contended run.
BUSY_START_S = 0.2
PROFILE_TOP = 5
#: Steps of the timed single-event messages profiled.
PROFILE_STEPS = 3
#: Profiled functions (``module.py:qualified name``) shown as pipeline stages.
PROFILE_STAGES = {
    "decoding.py:decode_prediction": "decode + validate (decode_prediction)",
    "partition.py:Rows.append": "group rows by model (Rows.append)",
    "partition.py:Rows.frame": "rows to DataFrame (Rows.frame)",
    "panes.py:WindowAssembler.update": "window panes, incl. closing (WindowAssembler.update)",
    "labels.py:LabelJoin.add": "label join (LabelJoin.add)",
    "partition.py:PartitionState._evaluate": "compare closed windows (_evaluate)",
}
#: Events (whole windows) before the large snapshot, none of them labelled yet.
LAGGING_EVENTS = 16 * WINDOW_EVENTS * len(DEMO_MODELS)

S = TypeVar("S")
T = TypeVar("T")


def best_of_prepared(
    prepare: Callable[[], S], run: Callable[[S], T], repeats: int = REPEATS
) -> tuple[float, T]:
    """Time ``run`` on fresh input from ``prepare`` (not timed), several times.

    Returns
    -------
    tuple
        The shortest wall time of ``run`` in seconds, and its last result.
    """
    best = float("inf")
    result: T | None = None
    for _ in range(repeats):
        prepared = prepare()
        start = time.perf_counter()
        result = run(prepared)
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def build_catalog() -> ReferenceCatalog:
    """Reference profiles of the demo models' healthy traffic."""
    catalog = ReferenceCatalog()
    for model in DEMO_MODELS.values():
        frame = reference_frame(model, seed=SEED).drop(columns=["label"])
        catalog.put(
            ReferenceProfile.from_frame(
                frame, model=model.name, model_version=model.version, kinds=model.kinds
            )
        )
    return catalog


def config(window_events: int) -> DriftstreamConfig:
    """Default configuration with count windows of ``window_events``."""
    return DriftstreamConfig(defaults={"window": {"size_events": window_events}})


def single_messages(documents: Sequence[dict[str, Any]]) -> list[InputMessage]:
    """One message per prediction document, at consecutive offsets."""
    return [
        InputMessage(TOPIC, 0, offset, orjson.dumps(document))
        for offset, document in enumerate(documents)
    ]


def batch_messages(documents: Sequence[dict[str, Any]]) -> list[InputMessage]:
    """``prediction_batch`` messages of :data:`BATCH_ROWS` rows, one model each.

    The documents are taken in runs of ``BATCH_ROWS`` per model (the
    simulator serves the models in turn), so each model's events keep their
    order.
    """
    chunk = BATCH_ROWS * len(DEMO_MODELS)
    batches: list[dict[str, Any]] = []
    for start in range(0, len(documents), chunk):
        groups: dict[str, list[dict[str, Any]]] = {}
        for document in documents[start : start + chunk]:
            groups.setdefault(document["model"], []).append(document)
        batches.extend(to_batch(group) for group in groups.values())
    return [
        InputMessage(TOPIC, 0, offset, orjson.dumps(batch)) for offset, batch in enumerate(batches)
    ]


def steps(messages: Sequence[InputMessage], size: int) -> list[Sequence[InputMessage]]:
    """The messages cut into ``on_predictions`` calls of ``size`` messages."""
    return [messages[start : start + size] for start in range(0, len(messages), size)]


class Pipeline:
    """Warm-up and timed steps of one workload, the state that runs them, its best time.

    Parameters
    ----------
    one_thread
        Run with BLAS limited to one thread (see :func:`one_blas_thread`).
    busy
        Run with a busy process alongside (see :func:`busy_process`).
    """

    def __init__(
        self,
        catalog: ReferenceCatalog,
        settings: DriftstreamConfig,
        warmup: Sequence[Sequence[InputMessage]],
        timed: Sequence[Sequence[InputMessage]],
        one_thread: bool = False,
        busy: bool = False,
    ) -> None:
        self.catalog = catalog
        self.settings = settings
        self.warmup = warmup
        self.timed = timed
        self.one_thread = one_thread
        self.busy = busy
        self.seconds = float("nan")
        self.outputs: list[Outputs] = []

    def warm_state(self) -> PartitionState:
        """A new partition state that has processed the warm-up steps (not timed)."""
        state = PartitionState(0, self.settings, self.catalog)
        for step in self.warmup:
            check(state.on_predictions(step))
        return state

    @staticmethod
    def run(state: PartitionState, timed: Sequence[Sequence[InputMessage]]) -> list[Outputs]:
        """Process the timed steps."""
        return [state.on_predictions(step) for step in timed]

    def time_once(self) -> None:
        """Process the timed steps on a warm state; keep the best time and the outputs."""
        with contextlib.ExitStack() as stack:
            if self.one_thread and not stack.enter_context(one_blas_thread()):
                return  # no threadpoolctl: the time stays NaN
            if self.busy:
                stack.enter_context(busy_process())
            state = self.warm_state()
            start = time.perf_counter()
            self.outputs = self.run(state, self.timed)
            elapsed = time.perf_counter() - start
        self.seconds = elapsed if np.isnan(self.seconds) else min(self.seconds, elapsed)


def time_interleaved(pipelines: Sequence[Pipeline]) -> None:
    """Best of :data:`PIPELINE_REPEATS` for each pipeline, taking turns.

    Taking turns spreads changes in the machine's load over every pipeline,
    so their ratios are steadier than when each is repeated in a block.
    """
    for _ in range(PIPELINE_REPEATS):
        for pipeline in pipelines:
            pipeline.time_once()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[bool]:
    """Limit BLAS to one thread while inside; yields whether that was possible.

    Uses threadpoolctl (installed with evidently's scikit-learn); without it
    the block runs unchanged and yields ``False``.
    """
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield True


@contextlib.contextmanager
def busy_process() -> Iterator[None]:
    """A Python process spinning on a CPU core while inside.

    It stands for what shares a worker's machine: another worker (one per
    core is the usual deployment), tests, other services.
    """
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(BUSY_START_S)  # let it start spinning
        yield
    finally:
        spinner.kill()
        spinner.wait()


def check(outputs: Outputs) -> Outputs:
    """Fail on dead letters: every benchmark event must be processed."""
    if outputs.dead_letters:
        letter = outputs.dead_letters[0]
        raise RuntimeError(f"unexpected dead letter: {letter.reason}: {letter.error}")
    return outputs


def decode_all(messages: Sequence[InputMessage]) -> int:
    """Decode and validate every message; returns the events they hold."""
    events = 0
    for message in messages:
        event = decode_prediction(message.value or b"")
        events += len(event) if isinstance(event, PredictionBatch) else 1
    return events


def parse_all(messages: Sequence[InputMessage]) -> int:
    """JSON-parse every message (no validation); returns the messages parsed."""
    for message in messages:
        orjson.loads(message.value or b"")
    return len(messages)


def severities(outputs: Sequence[Outputs]) -> Counter[str]:
    """Closed windows by severity."""
    return Counter(result.severity for output in outputs for result in output.results)


def entry_name(entry: Any) -> str:
    """``module.py:qualified_name`` of a profiled function, or a built-in's description."""
    code = entry.code
    if isinstance(code, str):
        return code
    return f"{os.path.basename(code.co_filename)}:{code.co_qualname}"


def print_profile(pipeline: Pipeline) -> None:
    """cProfile of the first timed steps on a warm state, BLAS on one thread.

    Prints the cumulative time of the pipeline's stages and the functions
    with the most own time, as shares of ``on_predictions``.
    """
    state = pipeline.warm_state()
    profiled = pipeline.timed[:PROFILE_STEPS]
    profiler = cProfile.Profile()
    with one_blas_thread():
        profiler.enable()
        pipeline.run(state, profiled)
        profiler.disable()
    entries = {entry_name(entry): entry for entry in profiler.getstats()}
    total = float(entries["partition.py:PartitionState.on_predictions"].totaltime)
    seconds = [
        (label, float(entries[name].totaltime))
        for name, label in PROFILE_STAGES.items()
        if name in entries
    ]
    seconds.append(
        ("rest: offsets, grouping, per-row label-join loop", total - sum(s for _, s in seconds))
    )
    stages = [[label, f"{stage:.3f}", f"{stage / total:.0%}"] for label, stage in seconds]
    top = sorted(entries.items(), key=lambda item: -float(item[1].inlinetime))[:PROFILE_TOP]
    print_table(
        f"  where the time goes: cProfile of (e) single-event messages, BLAS 1 thread, "
        f"{sum(len(step) for step in profiled):,} timed events; on_predictions {total:.2f} s",
        ["stage (cumulative)", "seconds", "share"],
        stages,
    )
    print_table(
        f"  top {PROFILE_TOP} functions by own time",
        ["function", "calls", "own s", "share"],
        [
            [
                name,
                f"{entry.callcount:,}",
                f"{entry.inlinetime:.3f}",
                f"{entry.inlinetime / total:.0%}",
            ]
            for name, entry in top
        ],
    )


def bench_throughput(
    catalog: ReferenceCatalog, documents: Sequence[dict[str, Any]]
) -> tuple[float, Pipeline]:
    """(e) ``on_predictions`` events per second against decoding the same messages.

    Returns
    -------
    tuple
        The time of one single-event step, and the single-event workload
        (for the profile and the snapshots).
    """
    documents = documents[: WARMUP_EVENTS + TIMED_EVENTS]
    singles = single_messages(documents)
    batches = batch_messages(documents)
    warm_singles, timed_singles = singles[:WARMUP_EVENTS], singles[WARMUP_EVENTS:]
    warm_batches = batches[: WARMUP_EVENTS // BATCH_ROWS]
    timed_batches = batches[WARMUP_EVENTS // BATCH_ROWS :]
    warm, timed = steps(warm_singles, STEP_MESSAGES), steps(timed_singles, STEP_MESSAGES)
    windowed = config(WINDOW_EVENTS)
    single = Pipeline(catalog, windowed, warm, timed)
    one_thread = Pipeline(catalog, windowed, warm, timed, one_thread=True)
    open_only = Pipeline(catalog, config(NEVER_CLOSES), warm, timed)
    busy = Pipeline(catalog, windowed, warm, timed, busy=True)
    busy_one_thread = Pipeline(catalog, windowed, warm, timed, one_thread=True, busy=True)
    # The worker takes up to STEP_MESSAGES messages per step, so a backlog of
    # batch messages arrives in one call.
    batched = Pipeline(
        catalog, windowed, steps(warm_batches, STEP_MESSAGES), steps(timed_batches, STEP_MESSAGES)
    )

    parse_time, _ = best_of_prepared(lambda: timed_singles, parse_all)
    decode_single_time, n_events = best_of_prepared(lambda: timed_singles, decode_all)
    decode_batch_time, n_batch_events = best_of_prepared(lambda: timed_batches, decode_all)
    if n_events != TIMED_EVENTS or n_batch_events != TIMED_EVENTS:
        raise RuntimeError("the workloads must hold the timed events")
    time_interleaved([single, one_thread, open_only, busy, busy_one_thread, batched])
    windows = sum(severities(single.outputs).values())
    if sum(severities(batched.outputs).values()) != windows or severities(open_only.outputs):
        raise RuntimeError("unexpected number of closed windows")
    limited = "" if not np.isnan(one_thread.seconds) else " (skipped: no threadpoolctl)"

    # (workload, seconds, seconds of its decoding baseline)
    rows: list[tuple[str, float, float | None]] = [
        (f"JSON parse only (orjson.loads), {len(timed_singles):,} messages", parse_time, None),
        (
            "decode + validate, single-event messages (baseline)",
            decode_single_time,
            decode_single_time,
        ),
        (
            f"on_predictions, single-event messages, steps of {STEP_MESSAGES:,}",
            single.seconds,
            decode_single_time,
        ),
        (
            f"  same, BLAS limited to 1 thread{limited}",
            one_thread.seconds,
            decode_single_time,
        ),
        (
            f"  same, window never closes ({NEVER_CLOSES:,} events)",
            open_only.seconds,
            decode_single_time,
        ),
        ("  same, one busy process alongside", busy.seconds, decode_single_time),
        (
            f"  same, busy process + BLAS 1 thread{limited}",
            busy_one_thread.seconds,
            decode_single_time,
        ),
        (
            f"decode + validate, {BATCH_ROWS:,}-row prediction_batch messages (baseline)",
            decode_batch_time,
            decode_batch_time,
        ),
        (
            f"on_predictions, {BATCH_ROWS:,}-row prediction_batch messages, "
            f"{len(timed_batches)} in one step",
            batched.seconds,
            decode_batch_time,
        ),
    ]
    print_table(
        f"(e) PartitionState.on_predictions, {TIMED_EVENTS:,} events of {len(DEMO_MODELS)} "
        f"demo models after {WARMUP_EVENTS:,} warm-up events, count windows of "
        f"{WINDOW_EVENTS:,} ({windows} close); best of {REPEATS} (decoding) or "
        f"{PIPELINE_REPEATS} taking turns (on_predictions)",
        ["workload", "seconds", "events/s", "time vs decoding"],
        [
            [
                name,
                f"{seconds:.3f}",
                f"{TIMED_EVENTS / seconds / 1e3:.1f}k",
                "-" if baseline is None else f"{seconds / baseline:.1f}x",
            ]
            for name, seconds, baseline in rows
        ],
    )
    for label, pipeline in (("default BLAS", single), ("BLAS 1 thread", one_thread)):
        per_window = (pipeline.seconds - open_only.seconds) / windows
        print(
            f"  window close + compare, {label}: {per_window * 1e3:.1f} ms per window "
            f"({per_window / WINDOW_EVENTS * 1e6:.1f} us per event)"
        )
    print(
        f"  default BLAS / BLAS 1 thread: {single.seconds / one_thread.seconds:.2f}x alone, "
        f"{busy.seconds / busy_one_thread.seconds:.2f}x with a busy process alongside"
    )
    counts = severities(single.outputs)
    print(
        "  closed windows (single-event run): "
        + ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
    )
    print_profile(single)
    return single.seconds / len(single.timed), single


def half_full_state(
    catalog: ReferenceCatalog, documents: Sequence[dict[str, Any]], closed_events: int
) -> PartitionState:
    """A state fed ``closed_events`` (whole windows) plus half a window per model.

    The whole windows are fed as prediction batches (quicker to build), the
    half windows as single-event messages; no labels, so every event is a
    pending prediction of the label join.
    """
    half = WINDOW_EVENTS // 2 * len(DEMO_MODELS)
    messages = batch_messages(documents[:closed_events]) + single_messages(
        documents[closed_events : closed_events + half]
    )
    # Offsets must grow: renumber the single-event messages after the batches.
    renumbered = [
        InputMessage(TOPIC, 0, offset, message.value) for offset, message in enumerate(messages)
    ]
    state = PartitionState(0, config(WINDOW_EVENTS), catalog)
    with one_blas_thread():  # not timed: only quicker to build
        for step in steps(renumbered, STEP_MESSAGES):
            check(state.on_predictions(step))
    return state


def snapshot_row(state: PartitionState, catalog: ReferenceCatalog, step_time: float) -> list[str]:
    """Snapshot bytes, snapshot and restore times (and their ratio to one step) of a state."""
    snapshot_time, data = best_of_prepared(lambda: state, PartitionState.snapshot)
    restore_time, restored = best_of_prepared(
        lambda: data, lambda blob: PartitionState.restore(blob, state.config, catalog)
    )
    if restored.snapshot() != data:
        raise RuntimeError("restore must give back the same state")
    pending = sum(len(join) for join in state.joins.values())
    return [
        f"{state.pending_events():,} events in open windows, {pending:,} pending predictions",
        f"{len(data):,}",
        f"{snapshot_time * 1e3:.1f}",
        f"{snapshot_time / step_time:.2f}x",
        f"{restore_time * 1e3:.1f}",
        f"{restore_time / step_time:.2f}x",
    ]


def bench_snapshots(
    catalog: ReferenceCatalog, documents: Sequence[dict[str, Any]], step_time: float
) -> None:
    """(f) Snapshot size and time, and restore time, with half-full windows.

    Once right after start (few pending predictions), once after
    :data:`LAGGING_EVENTS` events whose labels have not arrived (the label
    join holds every one of them).
    """
    rows = [
        snapshot_row(half_full_state(catalog, documents, closed), catalog, step_time)
        for closed in (0, LAGGING_EVENTS)
    ]
    print_table(
        f"(f) partition snapshot, {len(DEMO_MODELS)} models, windows {WINDOW_EVENTS // 2:,} of "
        f"{WINDOW_EVENTS:,} events full, vs one {STEP_MESSAGES:,}-message step of (e) "
        f"({step_time * 1e3:.0f} ms), best of {REPEATS}",
        ["state", "bytes", "snapshot ms", "vs step", "restore ms", "vs step"],
        rows,
    )


def main() -> None:
    """Run the streaming pipeline benchmarks and print their tables."""
    start = time.perf_counter()
    print(
        f"driftstream pipeline benchmarks: {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"orjson {orjson.__version__}, seed {SEED}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    catalog = build_catalog()
    simulator = ServingSimulator(seed=SEED, drift_after_events=DRIFT_AFTER)
    events = max(WARMUP_EVENTS + TIMED_EVENTS, LAGGING_EVENTS + WINDOW_EVENTS * len(DEMO_MODELS))
    documents = simulator.predictions(events, start_ms=1_700_000_000_000, step_ms=10)
    step_time, _ = bench_throughput(catalog, documents)
    bench_snapshots(catalog, documents, step_time)
    print(f"\ntotal pipeline benchmark time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
