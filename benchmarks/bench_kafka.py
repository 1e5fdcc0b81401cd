"""Consumption speed through the embedded broker: bare aiokafka, an empty Faust agent, the worker.

Everything reads the same topic contents from the embedded broker (Tansu,
:class:`monitor.broker.EmbeddedBroker`, on 127.0.0.1) in one run: seeded
predictions of one model version with 25 features (20 numeric, 5
categorical: :func:`benchmarks.bench_stats.make_frame`, numbers rounded to 4
decimals, and a numeric prediction), once as single-event messages (about
550 bytes) and once as ``prediction_batch`` messages of 1,000 rows
(:func:`monitor.simulation.to_batch`, about 230 KB), keyed by model as
producers do, so one partition of each topic holds them all. Readers:

(k) **bare aiokafka**: ``AIOKafkaConsumer.getmany`` (partitions assigned,
    no group) and ``orjson.loads`` of every message, the floor any Python
    consumer pays; with aiokafka's default fetch size and with 8 MiB; best
    of :data:`BARE_REPEATS`;
(l) **an empty Faust agent**, in a process of its own, that does nothing
    but ``orjson.loads`` each message: first as a new user writes it
    (Faust's defaults, ``async for value in stream``), then with one change
    at a time towards the fastest settings found (:data:`AGENT_VARIANTS`),
    then reading as the worker does (``noack_take``), with Faust's defaults
    and tuned. A run of the new user's agent and one of the best under
    cProfile show where the main thread's time goes (Faust runs aiokafka in
    a consumer thread of its own; CPU time is reported per thread);
(m) **the worker's computation alone**:
    :meth:`monitor.partition.PartitionState.on_predictions` on the same
    messages in the worker's steps, no Kafka (as in ``bench_pipeline``);
(n) **the worker**: ``driftstream run`` with a configuration pointing at the
    broker, a reference profile file for the model and count windows of
    1,000 events (so the events close windows and compare them with the
    reference), with Faust's defaults and with the tuned fetch size and
    stream buffer (Faust reads those settings from the environment). Timed
    from the moment ``/ready`` answers 200 to the moment its Prometheus
    endpoint counts every event processed
    (``driftstream_events_total{outcome="processed"}``), polled with a
    deadline; its start-up (imports, group join, references) is shown apart.

Faust and the worker are timed from the partition assignment (Faust's
``on_partitions_assigned``, the worker's ``/ready``) to the last message, so
their start-up is left out; the bare consumer from its first ``getmany``.
The last table puts every reader side by side with ratios of their rates.

What the exploration behind :data:`AGENT_VARIANTS` found (single partition,
this 2-core VM): the fetch size (``consumer_max_fetch_size``, per partition)
is the setting that matters, and a larger stream buffer matters once the
agent is slower than the fetches (as the worker is: with the default 4,096
a full buffer takes the partition out of the fetch and Faust's fetch loop
then sleeps a whole second); uvloop (``mode.loop.use("uvloop")``) adds
5-20%. No gain, within the noise (one run of Faust varies by 10-25%):
``cython_optimizations``, ``stream.events()`` or ``take`` instead of
iterating values, ``broker_commit_every`` (100,000),
``stream_wait_empty=False``, ``concurrency=2`` (one partition),
``noack_take(10000, 0.5)``, fetches of 32 MiB; ``broker_max_poll_records=500``
costs 40%. ``stream_recovery_delay`` is already 0 in this Faust. What stays
is Faust's cost per message: its fetch loop awaits ``Service.wait_first``
(four new tasks) for every message before the stream sees it.

Run: ``python -m benchmarks.bench_kafka [--quick]`` (about 3 minutes; quick:
fewer events and Faust variants, no tuned worker, about 80 s).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import aiokafka
import faust
import mode.loop
import numpy as np
import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.streams import Stream
from faust.types import EventT, StreamT

from benchmarks.bench_stats import make_frame, print_table
from monitor.broker import EmbeddedBroker, free_port
from monitor.catalog import ReferenceCatalog
from monitor.child_process import spawn, stop_process
from monitor.config import DriftstreamConfig, TopicsConfig, WorkerConfig
from monitor.partition import InputMessage, PartitionState
from monitor.reference import ReferenceProfile
from monitor.simulation import to_batch
from monitor.topics import TOPIC_ROLES, TopicRole, ensure_topics

SEED = 20261123
MODEL, MODEL_VERSION = "bench", "1"
#: Predictions in each topic (the single-event one and the batch one).
EVENTS = 60_000
QUICK_EVENTS = 30_000
BATCH_ROWS = 1_000
WINDOW_EVENTS = 1_000
REFERENCE_ROWS = 20_000
DECIMALS = 4
START_MS = 1_700_000_000_000
STEP_MS = 10
#: Partitions of the source topics (the configuration's default); the model
#: key sends every message to one of them.
PARTITIONS = TopicsConfig().partitions
BARE_REPEATS = 3
#: The worker's session timeout: the broker's group joins take about half of
#: it (Faust's default, 60 s, would cost 30 s per start). Only start-up,
#: which is not timed, depends on it.
WORKER_SESSION_TIMEOUT_S = 2.0
#: A heartbeat shorter than that session, set the way Faust reads it from
#: the worker's environment.
WORKER_GROUP_VARIABLES = {"BROKER_HEARTBEAT_INTERVAL": "0.5"}
#: The same group settings for the agents.
AGENT_GROUP_SETTINGS = {"broker_session_timeout": 2.0, "broker_heartbeat_interval": 0.5}
#: Bounds of every wait (start-up, consumption, shutdown), in seconds.
START_TIMEOUT = 90.0
CONSUME_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
POLL_S = 0.02
#: Longest time between two scrapes of a worker's metrics (see :func:`poll_processed`).
METRICS_POLL_S = 0.1
PROFILE_TOP = 12
#: Messages the profiled agents read (cProfile slows them down).
PROFILE_ROWS = 20_000
#: A worker's ``events_total`` series counting processed events.
PROCESSED = 'outcome="processed"'
ROOT = Path(__file__).resolve().parents[1]
DRIFTSTREAM = str(Path(sys.executable).parent / "driftstream")
#: Loopback requests must not go through a proxy from the environment.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))

T = TypeVar("T")


# -- topic contents ------------------------------------------------------------


def feature_frame(rng: np.random.Generator, rows: int) -> dict[str, list[Any]]:
    """Columns of ``rows`` predictions: the 25 features and a numeric ``prediction``."""
    frame = make_frame(rng, rows, shifted=False)
    numeric = [name for name in frame.columns if name.startswith("num_")]
    frame[numeric] = frame[numeric].round(DECIMALS)
    frame["prediction"] = (frame[numeric[:5]].sum(axis=1) / 5).round(DECIMALS)
    return {str(name): frame[name].tolist() for name in frame.columns}


def prediction_documents(rows: int) -> list[dict[str, Any]]:
    """``rows`` prediction documents of :data:`MODEL`, seeded."""
    columns = feature_frame(np.random.default_rng(SEED), rows)
    predictions = columns.pop("prediction")
    names = list(columns)
    return [
        {
            "type": "prediction",
            "event_id": f"e{index}",
            "model": MODEL,
            "model_version": MODEL_VERSION,
            "timestamp": START_MS + STEP_MS * index,
            "features": {name: columns[name][index] for name in names},
            "prediction": predictions[index],
        }
        for index in range(rows)
    ]


def reference_profile() -> ReferenceProfile:
    """The profile of :data:`REFERENCE_ROWS` rows of the same (healthy) traffic."""
    import pandas as pd

    columns = feature_frame(np.random.default_rng(SEED + 1), REFERENCE_ROWS)
    return ReferenceProfile.from_frame(
        pd.DataFrame(columns), model=MODEL, model_version=MODEL_VERSION
    )


@dataclass(frozen=True)
class Workload:
    """A topic holding every prediction in one encoding."""

    name: str
    topic: str
    values: list[bytes]
    rows: int

    @property
    def messages(self) -> int:
        """Messages in the topic."""
        return len(self.values)


def workloads(documents: Sequence[dict[str, Any]], tag: str) -> list[Workload]:
    """Single-event messages and :data:`BATCH_ROWS`-row batches of the same documents."""
    singles = [orjson.dumps(document) for document in documents]
    batches = [
        orjson.dumps(to_batch(documents[start : start + BATCH_ROWS]))
        for start in range(0, len(documents), BATCH_ROWS)
    ]
    return [
        Workload("single-event messages", f"bench-singles-{tag}", singles, len(documents)),
        Workload(
            f"{BATCH_ROWS:,}-row prediction_batch messages",
            f"bench-batches-{tag}",
            batches,
            len(documents),
        ),
    ]


async def produce(bootstrap: str, workload: Workload) -> float:
    """Send the workload's messages keyed by model; seconds until all were acknowledged."""
    largest = max(len(value) for value in workload.values)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=20,
        max_batch_size=max(1 << 20, largest + 1024),
        max_request_size=max(8 << 20, 2 * largest),
        request_timeout_ms=int(CONSUME_TIMEOUT * 1000),
    )
    await producer.start()
    try:
        start = time.perf_counter()
        key = MODEL.encode()
        futures = [await producer.send(workload.topic, value, key=key) for value in workload.values]
        await asyncio.wait_for(asyncio.gather(*futures), CONSUME_TIMEOUT)
        return time.perf_counter() - start
    finally:
        await producer.stop()


def create_topics(bootstrap: str, topics: Sequence[str]) -> None:
    """Create the source topics with :data:`PARTITIONS` partitions (Faust creates none)."""
    only: tuple[TopicRole, ...] = ("predictions",)
    for topic in topics:
        config = TopicsConfig(predictions=topic, partitions=PARTITIONS)
        ensure_topics(bootstrap, config, {}, roles=only)


def rows_of(value: bytes) -> int:
    """Predictions in one message: parse it, count a batch's rows."""
    document = orjson.loads(value)
    if document.get("type") == "prediction_batch":
        return len(document["event_ids"])
    return 1


# -- (k) bare aiokafka ------------------------------------------------------------


async def bare_consume(bootstrap: str, workload: Workload, fetch_bytes: int | None = None) -> float:
    """Seconds for ``getmany`` + ``orjson.loads`` to read every message of the workload.

    ``fetch_bytes`` is the consumer's ``max_partition_fetch_bytes`` (default:
    aiokafka's, 1 MiB).
    """
    options = {} if fetch_bytes is None else {"max_partition_fetch_bytes": fetch_bytes}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **options,
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(workload.topic, p)
            for p in sorted(consumer.partitions_for_topic(workload.topic) or ())
        ]
        if not partitions:
            raise RuntimeError(f"topic {workload.topic} has no partitions")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        rows = 0
        start = time.perf_counter()
        deadline = time.monotonic() + CONSUME_TIMEOUT
        while rows < workload.rows:
            if time.monotonic() > deadline:
                raise RuntimeError(f"bare consumer read {rows} of {workload.rows} rows")
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    rows += rows_of(record.value or b"")
        return time.perf_counter() - start
    finally:
        await consumer.stop()


# -- (l) the empty Faust agent ----------------------------------------------------


@dataclass(frozen=True)
class AgentVariant:
    """How the empty agent reads its stream, and the app settings it runs with.

    ``mode`` is ``values`` (``async for value in stream``), ``events``
    (``stream.events()``), ``take`` (``stream.take(take, within)``) or
    ``noack_take`` (``stream.noack_take(take, within)`` acking each event
    after parsing, as the worker does once a snapshot covers it).
    """

    name: str
    mode: str = "values"
    take: int = 2_000
    within: float = 0.2
    concurrency: int = 1
    loop: str = "aio"
    settings: dict[str, Any] = field(default_factory=dict)


def describe(variant: AgentVariant) -> str:
    """What a variant changes, in full (its name may only say what it adds).

    Examples
    --------
    >>> describe(AgentVariant("x", loop="uvloop", settings={"consumer_max_fetch_size": 1 << 23}))
    'async for value in stream, consumer_max_fetch_size=8 MiB, uvloop'
    """
    reading = {
        "values": "async for value in stream",
        "events": "stream.events()",
        "take": f"take({variant.take}, within={variant.within})",
        "noack_take": f"noack_take({variant.take}, within={variant.within}) + ack",
    }[variant.mode]
    parts = [reading]
    for name, value in variant.settings.items():
        shown = f"{value >> 20} MiB" if name.endswith("fetch_size") else f"{value:,}"
        parts.append(f"{name}={shown}" if not isinstance(value, bool) else f"{name}={value}")
    if variant.loop != "aio":
        parts.append(variant.loop)
    if variant.concurrency != 1:
        parts.append(f"concurrency={variant.concurrency}")
    if len(parts) == 1:
        parts.append("Faust's defaults")
    return ", ".join(parts)


#: The consumer fetch size (per partition) of the tuned variants: 8 MiB
#: instead of Faust's 1 MiB.
FETCH_BYTES = 8 << 20
#: The stream buffer of the tuned variants, instead of Faust's 4,096.
BUFFER_EVENTS = 262_144
FETCH = {"consumer_max_fetch_size": FETCH_BYTES}
TUNED = FETCH | {"stream_buffer_maxsize": BUFFER_EVENTS}
DEFAULT_AGENT = AgentVariant("new user: defaults, async for value in stream")
BEST_AGENT = AgentVariant("  + uvloop event loop (best)", loop="uvloop", settings=TUNED)
WORKER_AGENT = AgentVariant("noack_take(2000, within=0.2) + ack, as the worker", mode="noack_take")
WORKER_TUNED_AGENT = AgentVariant(
    f"  + fetch {FETCH_BYTES >> 20} MiB + buffer {BUFFER_EVENTS:,}, as the tuned worker",
    mode="noack_take",
    settings=TUNED,
)
#: From a new user's agent to the best one found, one change at a time; then
#: the worker's way of reading, with Faust's defaults and tuned.
AGENT_VARIANTS = (
    DEFAULT_AGENT,
    AgentVariant(f"  + consumer_max_fetch_size={FETCH_BYTES >> 20} MiB", settings=FETCH),
    AgentVariant(f"  + stream_buffer_maxsize={BUFFER_EVENTS:,}", settings=TUNED),
    BEST_AGENT,
    WORKER_AGENT,
    WORKER_TUNED_AGENT,
)
QUICK_AGENT_VARIANTS = (DEFAULT_AGENT, BEST_AGENT, WORKER_AGENT)
#: The worker's environment in its tuned run: Faust reads its settings there
#: (uvloop cannot be chosen that way).
WORKER_TUNED = {
    "CONSUMER_MAX_FETCH_SIZE": str(FETCH_BYTES),
    "STREAM_BUFFER_MAXSIZE": str(BUFFER_EVENTS),
}


@dataclass
class AgentSpec:
    """What an agent child process reads and how (written as JSON for it)."""

    bootstrap: str
    topic: str
    #: Rows after which the agent reports (and the parent stops it).
    rows: int
    variant: dict[str, Any]
    result_path: str
    profile: bool = False


@dataclass
class AgentResult:
    """What an agent child reports (monotonic seconds of the child process).

    ``profile`` (profiled runs only) holds the functions with the most own
    time in the main thread, as ``[name, calls, own s, cumulative s]``, and
    ``areas`` that thread's own time summed by where the code lives.
    """

    assigned: float
    first: float
    done: float
    messages: int
    rows: int
    thread_cpu: dict[str, float]
    profile: list[list[Any]] = field(default_factory=list)
    areas: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        """From the partition assignment to the last message parsed."""
        return self.done - self.assigned


def thread_cpu_seconds() -> dict[int, float]:
    """CPU seconds (user + system) of each thread of this process, by native id."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def entry_name(entry: Any) -> str:
    """``module.py:qualified_name`` of a profiled function, or a built-in's description."""
    code = entry.code
    if isinstance(code, str):
        return code
    return f"{os.path.basename(code.co_filename)}:{code.co_qualname}"


#: Where profiled code lives (a path fragment) -> the area its own time counts to.
AREAS = (
    ("/asyncio/", "asyncio event loop (tasks, futures, callbacks)"),
    ("/mode/", "mode (Service.wait_first, events)"),
    ("/faust/", "faust (drain loop, conductor, stream, acks, sensors)"),
    ("/aiokafka/", "aiokafka"),
    ("bench_kafka.py", "the agent's own code (orjson.loads, counting)"),
)
#: Built-ins whose time is an area of its own.
OWN_AREA_BUILTINS = {
    "<method 'poll' of 'select.epoll' objects>": "waiting for the network (epoll.poll)",
}


def area_of(code: Any) -> str:
    """The area of a profiled Python function (see :data:`AREAS`)."""
    filename = str(getattr(code, "co_filename", code))
    for fragment, area in AREAS:
        if fragment in filename:
            return area
    return "other Python code"


def profile_areas(entries: Sequence[Any]) -> dict[str, float]:
    """Own time by area; a built-in's time counts to the area of the code calling it."""
    areas: dict[str, float] = {}
    for entry in entries:
        if isinstance(entry.code, str):
            area = OWN_AREA_BUILTINS.get(entry.code)
            if area is not None:
                areas[area] = areas.get(area, 0.0) + entry.inlinetime
            continue
        area = area_of(entry.code)
        areas[area] = areas.get(area, 0.0) + entry.inlinetime
        for call in entry.calls or ():
            if isinstance(call.code, str) and call.code not in OWN_AREA_BUILTINS:
                areas[area] = areas.get(area, 0.0) + call.inlinetime
    return areas


class Progress:
    """Counts what the agent parsed; writes the child's result when all is in."""

    def __init__(self, spec: AgentSpec) -> None:
        self.spec = spec
        self.assigned = float("nan")
        self.first = float("nan")
        self.messages = 0
        self.rows = 0
        self.cpu_at_start: dict[int, float] = {}
        self.profiler = cProfile.Profile() if spec.profile else None
        self.finished = False

    def on_assigned(self) -> None:
        """The consumer got its partitions: timing (and profiling) starts."""
        if self.assigned != self.assigned:  # NaN: the first assignment only
            self.assigned = time.monotonic()
            self.cpu_at_start = thread_cpu_seconds()
            if self.profiler is not None:
                self.profiler.enable()

    def add(self, value: bytes) -> None:
        """Parse one message."""
        if self.messages == 0:
            self.first = time.monotonic()
        self.messages += 1
        self.rows += rows_of(value)
        if self.rows >= self.spec.rows and not self.finished:
            self.finish()

    def finish(self) -> None:
        """Write the result file (the parent stops this process)."""
        done = time.monotonic()
        self.finished = True
        result = AgentResult(self.assigned, self.first, done, self.messages, self.rows, {})
        if self.profiler is not None:
            self.profiler.disable()
            entries = self.profiler.getstats()
            result.areas = profile_areas(entries)
            top = sorted(entries, key=lambda e: -float(e.inlinetime))[:PROFILE_TOP]
            result.profile = [[entry_name(e), e.callcount, e.inlinetime, e.totaltime] for e in top]
        names = {thread.native_id: thread.name for thread in threading.enumerate()}
        result.thread_cpu = {
            names.get(tid, f"thread {tid}"): seconds - self.cpu_at_start.get(tid, 0.0)
            for tid, seconds in thread_cpu_seconds().items()
        }
        path = Path(self.spec.result_path)
        partial = path.with_suffix(".partial")
        partial.write_bytes(orjson.dumps(asdict(result)))
        partial.rename(path)


def agent_app(spec: AgentSpec, datadir: Path) -> faust.App:
    """The Faust app of an agent child: one agent that parses every message."""
    variant = AgentVariant(**spec.variant)
    app = faust.App(
        f"bench-agent-{uuid.uuid4().hex[:10]}",
        datadir=datadir,
        broker=f"kafka://{spec.bootstrap}",
        store="memory://",
        autodiscover=False,
        web_enabled=False,
        topic_disable_leader=True,
        **(AGENT_GROUP_SETTINGS | variant.settings),
    )
    topic = app.topic(
        spec.topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    progress = Progress(spec)

    async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        progress.on_assigned()

    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]

    @app.agent(topic, concurrency=variant.concurrency)
    async def empty(stream: StreamT[bytes]) -> AsyncIterator[None]:
        if variant.mode == "values":
            async for value in stream:
                progress.add(value)
        elif variant.mode == "events":
            async for event in stream.events():
                progress.add(event.value)
        elif variant.mode == "take":
            async for values in stream.take(variant.take, within=variant.within):
                for value in values:
                    progress.add(value)
        elif variant.mode == "noack_take":
            noack = cast(Stream[bytes], stream).noack_take(variant.take, within=variant.within)
            async for events in noack:
                for event in cast(Sequence[EventT[bytes]], events):
                    progress.add(event.value)
                    event.ack()
        else:
            raise ValueError(f"unknown mode {variant.mode!r}")
        yield None

    return app


def run_agent_child(spec_path: Path) -> None:
    """Entry point of an agent child process: run the app until stopped."""
    spec = AgentSpec(**orjson.loads(spec_path.read_bytes()))
    mode.loop.use(AgentVariant(**spec.variant).loop)  # before the app makes its loop
    with tempfile.TemporaryDirectory(prefix="bench-kafka-faust-") as datadir:
        app = agent_app(spec, Path(datadir))
        worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
        worker.execute_from_commandline()


def wait_for(check: Callable[[], T | None], timeout: float, what: str, step: float = POLL_S) -> T:
    """Poll ``check`` until it returns something other than ``None``; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def exited(process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    """Fail when ``process`` has exited, with the end of its log."""
    if process.poll() is not None:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"{what} exited with code {process.returncode}:\n{tail}")


def run_agent(
    bootstrap: str,
    workload: Workload,
    variant: AgentVariant,
    folder: Path,
    profile: bool = False,
    rows: int | None = None,
) -> tuple[AgentResult, float]:
    """Run an agent child on ``workload``; its result and the seconds from launch to assignment.

    The child stops at ``rows`` rows (default: all of them) and, with
    ``profile``, runs under cProfile.
    """
    tag = uuid.uuid4().hex[:10]
    result_path = folder / f"agent-{tag}.json"
    spec = AgentSpec(
        bootstrap,
        workload.topic,
        workload.rows if rows is None else min(rows, workload.rows),
        asdict(variant),
        str(result_path),
        profile,
    )
    spec_path = folder / f"agent-{tag}-spec.json"
    spec_path.write_bytes(orjson.dumps(asdict(spec)))
    log = folder / f"agent-{tag}.log"
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
        "from benchmarks.bench_kafka import main; "
        f"main(['--agent-child', {str(spec_path)!r}])"
    )
    launched = time.monotonic()
    process = spawn([sys.executable, "-c", code], log)
    try:

        def result() -> AgentResult | None:
            if result_path.exists():
                return AgentResult(**orjson.loads(result_path.read_bytes()))
            exited(process, log, "the agent process")
            return None

        found = wait_for(result, START_TIMEOUT + CONSUME_TIMEOUT, f"agent {variant.name!r}")
    finally:
        stop_process(process, STOP_TIMEOUT)
    return found, found.assigned - launched


# -- (m) the computation alone, (n) the worker ------------------------------------


def pipeline_seconds(workload: Workload, profile: ReferenceProfile) -> float:
    """Seconds of the worker's computation alone on the workload's messages (no Kafka).

    :meth:`monitor.partition.PartitionState.on_predictions` on a new
    partition state, as a new worker's, in steps of the worker's default
    ``batch_max_events`` messages (all the batch messages fit in one step).
    """
    catalog = ReferenceCatalog()
    catalog.put(profile)
    state = PartitionState(0, worker_settings(), catalog)
    messages = [
        InputMessage(workload.topic, 0, offset, value)
        for offset, value in enumerate(workload.values)
    ]
    step = WorkerConfig().batch_max_events
    processed = 0
    start = time.perf_counter()
    for first in range(0, len(messages), step):
        outputs = state.on_predictions(messages[first : first + step])
        if outputs.dead_letters:
            raise RuntimeError(f"unexpected dead letter: {outputs.dead_letters[0].reason}")
        processed += sum(outputs.events.values())
    seconds = time.perf_counter() - start
    if processed != workload.rows:
        raise RuntimeError(f"the pipeline processed {processed} of {workload.rows} events")
    return seconds


def worker_settings() -> DriftstreamConfig:
    """The processing settings every worker of this benchmark runs with."""
    return DriftstreamConfig(defaults={"window": {"size_events": WINDOW_EVENTS}})


def worker_config(folder: Path, bootstrap: str, topic: str, reference: Path) -> WorkerEndpoints:
    """A worker configuration reading ``topic``, written to ``folder``."""
    tag = uuid.uuid4().hex[:10]
    web_port, metrics_port = free_port(), free_port()
    document = {
        "broker": {"url": f"kafka://{bootstrap}"},
        "topics": {role: f"bench-{role}-{tag}" for role in TOPIC_ROLES}
        | {"predictions": topic, "partitions": PARTITIONS},
        "worker": {
            "group_id": f"bench-worker-{tag}",
            "web_port": web_port,
            "session_timeout": f"{WORKER_SESSION_TIMEOUT_S:.0f}s",
        },
        "metrics": {"port": metrics_port},
        "defaults": {"window": {"size_events": WINDOW_EVENTS}},
        "models": {MODEL: {"reference": str(reference)}},
    }
    path = folder / f"driftstream-{tag}.yaml"
    path.write_text(yaml.safe_dump(document))
    return WorkerEndpoints(
        path, f"http://127.0.0.1:{web_port}/ready", f"http://127.0.0.1:{metrics_port}/metrics"
    )


@dataclass(frozen=True)
class WorkerEndpoints:
    """A worker's configuration file and the URLs the benchmark polls."""

    config: Path
    ready: str
    metrics: str


def http_get(url: str) -> tuple[int, bytes] | None:
    """Status and body of a loopback GET, or ``None`` while nothing answers."""
    try:
        with DIRECT.open(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return None


def processed_events(body: bytes) -> tuple[int, int]:
    """Processed events and all events (any outcome) counted in a metrics page."""
    processed = total = 0
    for line in body.decode().splitlines():
        if line.startswith("driftstream_events_total{"):
            count = int(float(line.rsplit(" ", 1)[1]))
            total += count
            if PROCESSED in line:
                processed += count
    return processed, total


@dataclass(frozen=True)
class WorkerRun:
    """Times of one worker run, in seconds since its launch."""

    ready: float
    first: float
    done: float
    first_events: int
    #: CPU seconds the worker process used from ``/ready`` to the end (all threads).
    cpu: float

    @property
    def seconds(self) -> float:
        """From ``/ready`` to every event processed."""
        return self.done - self.ready


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, every thread) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_worker(
    bootstrap: str,
    workload: Workload,
    reference: Path,
    folder: Path,
    variables: Mapping[str, str] | None = None,
) -> WorkerRun:
    """Start ``driftstream run`` on the workload's topic; time it until every event is counted.

    ``variables`` go to its environment (Faust reads its settings from
    there, such as ``CONSUMER_MAX_FETCH_SIZE``).
    """
    endpoints = worker_config(folder, bootstrap, workload.topic, reference)
    log = folder / f"{endpoints.config.stem}.log"
    command = [DRIFTSTREAM, "run", "--config", str(endpoints.config), "--log-level", "warning"]
    launched = time.monotonic()
    process = spawn(command, log, WORKER_GROUP_VARIABLES | dict(variables or {}))
    try:

        def ready() -> float | None:
            exited(process, log, "the worker")
            answer = http_get(endpoints.ready)
            return time.monotonic() if answer is not None and answer[0] == 200 else None

        ready_at = wait_for(ready, START_TIMEOUT, "the worker to be ready")
        cpu_at_ready = process_cpu_seconds(process.pid)
        done_at, first = poll_processed(process, log, endpoints.metrics, workload.rows)
        cpu = process_cpu_seconds(process.pid) - cpu_at_ready
    finally:
        stop_process(process, STOP_TIMEOUT)
    return WorkerRun(ready_at - launched, first[0] - launched, done_at - launched, first[1], cpu)


def poll_processed(
    process: subprocess.Popen[bytes], log: Path, url: str, rows: int
) -> tuple[float, tuple[float, int]]:
    """Poll the worker's metrics until ``rows`` events are processed.

    Each scrape costs the worker a few milliseconds, so polls are
    :data:`METRICS_POLL_S` apart at most and come closer (down to
    :data:`POLL_S`) as the end that the rate so far predicts comes near.

    Returns
    -------
    tuple
        When every event was counted, and when (and how many) were first seen.
    """
    deadline = time.monotonic() + CONSUME_TIMEOUT
    first: tuple[float, int] | None = None
    while True:
        exited(process, log, "the worker")
        answer = http_get(url)
        now = time.monotonic()
        step = METRICS_POLL_S
        if answer is not None and answer[0] == 200:
            processed, total = processed_events(answer[1])
            if total > processed:
                raise RuntimeError(f"the worker did not process {total - processed} events")
            if processed and first is None:
                first = (now, processed)
            if processed >= rows and first is not None:
                return now, first
            if first is not None and processed > first[1]:
                remaining = (rows - processed) * (now - first[0]) / (processed - first[1])
                step = min(METRICS_POLL_S, max(POLL_S, remaining / 2))
        if now > deadline:
            raise RuntimeError(f"timed out after {CONSUME_TIMEOUT:.0f} s waiting for the worker")
        time.sleep(step)


# -- the run ----------------------------------------------------------------------


@dataclass
class Measured:
    """Everything one benchmark run measured."""

    events: int
    loads: list[Workload]
    produced: dict[str, float] = field(default_factory=dict)
    bare: dict[str, float] = field(default_factory=dict)
    bare_fetch: dict[str, float] = field(default_factory=dict)
    #: Per workload name: (variant, result, seconds from launch to assignment).
    agents: dict[str, list[tuple[AgentVariant, AgentResult, float]]] = field(default_factory=dict)
    profiles: list[tuple[AgentVariant, AgentResult]] = field(default_factory=list)
    pipeline: dict[str, float] = field(default_factory=dict)
    #: Per workload name: (label, run).
    workers: dict[str, list[tuple[str, WorkerRun]]] = field(default_factory=dict)


def measure(quick: bool) -> Measured:
    """Produce the topics, then time every reader on them."""
    events = QUICK_EVENTS if quick else EVENTS
    loads = workloads(prediction_documents(events), uuid.uuid4().hex[:8])
    singles, batches = loads
    found = Measured(events, loads)
    profile = reference_profile()
    for load in loads:
        found.pipeline[load.name] = pipeline_seconds(load, profile)
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as temporary:
        folder = Path(temporary)
        reference = folder / f"{MODEL}-{MODEL_VERSION}.dsprofile"
        profile.save(reference)
        with EmbeddedBroker(log_path=folder / "broker.log") as broker:
            bootstrap = broker.bootstrap_servers
            create_topics(bootstrap, [load.topic for load in loads])
            for load in loads:
                found.produced[load.name] = asyncio.run(produce(bootstrap, load))
            for load in loads:
                for fetch, times in ((None, found.bare), (FETCH_BYTES, found.bare_fetch)):
                    runs = [bare_consume(bootstrap, load, fetch) for _ in range(BARE_REPEATS)]
                    times[load.name] = min(asyncio.run(run) for run in runs)
            ladder = QUICK_AGENT_VARIANTS if quick else AGENT_VARIANTS
            batch_variants = (
                (DEFAULT_AGENT, WORKER_AGENT)
                if quick
                else (DEFAULT_AGENT, BEST_AGENT, WORKER_AGENT, WORKER_TUNED_AGENT)
            )
            for load, variants in ((singles, ladder), (batches, batch_variants)):
                found.agents[load.name] = [
                    (variant, *run_agent(bootstrap, load, variant, folder)) for variant in variants
                ]
            profiled = (DEFAULT_AGENT,) if quick else (DEFAULT_AGENT, BEST_AGENT)
            found.profiles = [
                (variant, run_agent(bootstrap, singles, variant, folder, True, PROFILE_ROWS)[0])
                for variant in profiled
            ]
            tunings: list[tuple[str, Mapping[str, str]]] = [("Faust defaults", {})]
            if not quick:
                tunings.append(
                    (f"fetch {FETCH_BYTES >> 20} MiB + buffer {BUFFER_EVENTS:,}", WORKER_TUNED)
                )
            for load in loads:
                found.workers[load.name] = [
                    (label, run_worker(bootstrap, load, reference, folder, variables))
                    for label, variables in tunings
                ]
    return found


def rate(count: float, seconds: float) -> str:
    """``count / seconds`` as ``12.3k``."""
    return f"{count / seconds / 1e3:.1f}k"


def agent_of(found: Measured, load: Workload, variant: AgentVariant) -> AgentResult:
    """The result of ``variant`` on ``load``."""
    return next(result for v, result, _ in found.agents[load.name] if v == variant)


def fastest_agent(found: Measured, load: Workload) -> tuple[AgentVariant, AgentResult]:
    """The variant that read ``load`` fastest, and its result."""
    variant, result, _ = min(found.agents[load.name], key=lambda run: run[1].seconds)
    return variant, result


def print_agents(found: Measured) -> None:
    """(l): the empty agent's variants on single-event messages, and its profiles."""
    singles = found.loads[0]
    runs = found.agents[singles.name]
    default = runs[0][1]
    print_table(
        f"(l) empty Faust agent (orjson.loads per message, nothing else), "
        f"{singles.messages:,} single-event messages in one partition, from partition "
        "assignment to the last message; one run each",
        [
            "variant",
            "seconds",
            "messages/s",
            "speed vs new user",
            "CPU s: main thread",
            "other threads",
            "launch s",
        ],
        [
            [
                variant.name,
                f"{result.seconds:.2f}",
                rate(result.messages, result.seconds),
                f"{default.seconds / result.seconds:.2f}x",
                f"{result.thread_cpu.get('MainThread', float('nan')):.2f}",
                f"{sum(v for k, v in result.thread_cpu.items() if k != 'MainThread'):.2f}",
                f"{startup:.1f}",
            ]
            for variant, result, startup in runs
        ],
    )
    print(
        "  launch s: from the process start to the partition assignment (imports, group "
        "join), not timed;\n  other threads: mostly Faust's consumer thread, where aiokafka "
        "fetches and parses records"
    )
    for variant, result in found.profiles:
        print_profile(describe(variant), result)


def print_profile(title: str, result: AgentResult) -> None:
    """Where the agent's main thread spends its time, and CPU time per thread."""
    wall = result.done - result.assigned
    areas = sorted(result.areas.items(), key=lambda item: -item[1])
    areas.append(
        ("not in any Python function (C event loop, GIL waits)", wall - sum(result.areas.values()))
    )
    print_table(
        f"  where the time goes, {title}: cProfile of the agent's main thread, "
        f"{result.messages:,} messages in {wall:.2f} s (slower under cProfile)",
        ["area (own time; a built-in counts to its caller)", "seconds", "share"],
        [[area, f"{seconds:.3f}", f"{seconds / wall:.0%}"] for area, seconds in areas],
    )
    print_table(
        f"  top {PROFILE_TOP} functions by own time",
        ["function", "calls", "own s", "cumulative s", "own share"],
        [
            [str(name)[:80], f"{calls:,}", f"{own:.3f}", f"{cumulative:.3f}", f"{own / wall:.0%}"]
            for name, calls, own, cumulative in result.profile
        ],
    )
    print(
        f"  calls per message: {calls_per_message(result)}; CPU s by thread: "
        + ", ".join(
            f"{name} {seconds:.2f}"
            for name, seconds in sorted(result.thread_cpu.items(), key=lambda item: -item[1])
            if seconds >= 0.01
        )
    )


def calls_per_message(result: AgentResult) -> str:
    """How often the hottest functions ran per message."""
    shown = ("BaseEventLoop._run_once", "BaseEventLoop.create_task", "Service.wait_first")
    counts = {
        str(name).rsplit(":", 1)[-1]: calls
        for name, calls, *_ in result.profile
        if any(str(name).endswith(wanted) for wanted in shown)
    }
    if not counts:
        return "n/a (not among the top functions)"
    return ", ".join(f"{name} {calls / result.messages:.1f}" for name, calls in counts.items())


def print_summary(found: Measured) -> None:
    """(k)-(n): every reader on each workload, and the ratios between them."""
    rows: list[list[str]] = []
    notes: list[str] = []
    for load in found.loads:
        bare = found.bare[load.name]
        fastest, best = fastest_agent(found, load)
        default = agent_of(found, load, DEFAULT_AGENT)
        readers: list[tuple[str, float]] = [
            (f"{load.name}: bare aiokafka getmany + orjson.loads", bare),
            (
                f"  bare aiokafka, max_partition_fetch_bytes={FETCH_BYTES >> 20} MiB",
                found.bare_fetch[load.name],
            ),
            ("  empty Faust agent, new user's settings", default.seconds),
            ("  empty Faust agent, the fastest variant (see below)", best.seconds),
        ]
        shapes = [
            (variant, label, result)
            for variant, label in ((WORKER_AGENT, "defaults"), (WORKER_TUNED_AGENT, "tuned"))
            for ran, result, _ in found.agents[load.name]
            if ran == variant
        ]
        readers.extend(
            (f"  empty Faust agent read as the worker does, {label}", result.seconds)
            for _, label, result in shapes
        )
        computation = found.pipeline[load.name]
        readers.append(("  the worker's computation alone (no Kafka)", computation))
        readers.extend(
            (f"  driftstream run, {label}", run.seconds) for label, run in found.workers[load.name]
        )
        rows.extend(
            [
                name,
                f"{seconds:.3f}",
                rate(load.messages, seconds),
                rate(load.rows, seconds),
                f"{bare / seconds:.3f}",
                f"{best.seconds / seconds:.2f}",
            ]
            for name, seconds in readers
        )
        worker = found.workers[load.name][0][1]
        notes.append(f"  {load.name}, fastest empty agent: {describe(fastest)}")
        notes.append(
            f"    rates: worker / bare {bare / worker.seconds:.3f}; worker / empty "
            f"agent {default.seconds / worker.seconds:.2f} (new user's), "
            f"{best.seconds / worker.seconds:.2f} (fastest); empty agent / bare "
            f"{bare / default.seconds:.3f} (new user's), {bare / best.seconds:.3f} (fastest)"
        )
        for (_, label, empty), (_, run) in zip(shapes, found.workers[load.name], strict=False):
            notes.append(
                f"    worker ({label}) {run.seconds:.2f} s, {run.cpu:.2f} s of CPU; its "
                f"computation alone {computation:.2f} s + the empty agent reading as it does "
                f"{empty.seconds:.2f} s = {computation + empty.seconds:.2f} s"
            )
    print_table(
        f"(k)-(n) the same {found.events:,} predictions through the embedded broker; bare: "
        f"best of {BARE_REPEATS}, the others one run each, start-up left out",
        ["reader", "seconds", "messages/s", "rows/s", "rate vs bare", "vs fastest agent"],
        rows,
    )
    for note in notes:
        print(note)


def print_workers(found: Measured) -> None:
    """(n): the worker's start-up and steady rate, per run."""
    rows = []
    for load in found.loads:
        for label, run in found.workers[load.name]:
            steady = (
                rate(load.rows - run.first_events, run.done - run.first)
                if run.first_events < load.rows
                else "-"
            )
            rows.append(
                [
                    f"{load.name}, {label}",
                    f"{run.ready:.1f}",
                    f"{run.first - run.ready:.2f}",
                    f"{run.seconds:.2f}",
                    f"{run.cpu:.2f}",
                    rate(load.rows, run.seconds),
                    steady,
                ]
            )
    print_table(
        "(n) driftstream run: launch to /ready (start-up, left out), /ready to the first "
        "processed step, /ready to every event processed",
        ["run", "start-up s", "to 1st step s", "seconds", "CPU s", "events/s", "after 1st step"],
        rows,
    )


def benchmark(quick: bool) -> None:
    """Measure, then print every table."""
    found = measure(quick)
    for load in found.loads:
        size = sum(map(len, load.values)) / load.messages
        print(
            f"  produced {load.messages:,} {load.name} ({size:,.0f} bytes each) in "
            f"{found.produced[load.name]:.1f} s"
        )
    print_agents(found)
    print_workers(found)
    print_summary(found)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the Kafka consumption benchmarks and print their tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_EVENTS:,} events, fewer Faust variants, no tuned worker",
    )
    parser.add_argument("--agent-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.agent_child is not None:
        run_agent_child(args.agent_child)
        return
    start = time.perf_counter()
    print(
        f"driftstream Kafka benchmarks: {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, faust {faust.__version__}, "
        f"aiokafka {aiokafka.__version__}, orjson {orjson.__version__}, seed {SEED}; "
        f"embedded broker (Tansu) on 127.0.0.1"
    )
    benchmark(args.quick)
    print(f"\ntotal Kafka benchmark time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
