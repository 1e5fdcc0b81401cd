"""``driftstream demo``: broker, worker and a simulated serving service, live in the terminal.

The demo starts the embedded broker, publishes reference profiles of the
simulated models (:mod:`monitor.simulation`), runs a worker as a child
process (``driftstream run``), and plays a serving service that sends
predictions and delayed labels in real time and injects a drift after a
delay. It shows the latest window of every model as it closes, and stops
cleanly, in order, on Ctrl-C or SIGTERM (or after ``--duration``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from monitor.broker import broker_for, free_port, port_is_free
from monitor.child_process import spawn, stop_process
from monitor.config import DriftstreamConfig, TopicsConfig
from monitor.errors import DriftstreamError
from monitor.publishing import publish_reference
from monitor.reference import ReferenceProfile
from monitor.simulation import DEMO_MODELS, ServingSimulator, reference_frame
from monitor.stats.decision import DEFAULT_THRESHOLDS
from monitor.stop_requests import StopRequested, StopRequests
from monitor.topics import ensure_topics

SEVERITY_STYLE = {
    "ok": "green",
    "warning": "yellow",
    "critical": "bold red",
    "insufficient_data": "dim",
}
#: Reference rows per simulated model.
REFERENCE_ROWS = 20_000
TICK_SECONDS = 0.2
#: Ports the demo's worker prefers (the configuration's defaults), when free.
DEFAULT_WEB_PORT = 6066
DEFAULT_METRICS_PORT = 9464
#: Seconds the worker, then the simulated service's producer, get to stop.
WORKER_STOP_SECONDS = 10.0
TRAFFIC_STOP_SECONDS = 2.0


@dataclass(frozen=True)
class DemoSettings:
    """How the demo runs."""

    events_per_second: int = 600
    drift_after_seconds: float = 20.0
    window_events: int = 500
    duration: float | None = None
    live: bool = True
    seed: int = 0


def demo_config(window_events: int, web_port: int, metrics_port: int) -> DriftstreamConfig:
    """Defaults with demo-sized windows, the given ports and a quick group join."""
    return DriftstreamConfig(
        worker={"web_port": web_port, "session_timeout": "6s"},
        metrics={"port": metrics_port},
        defaults={"window": {"size_events": window_events}},
    )


@dataclass
class Board:
    """The latest window result of every model version, for display."""

    latest: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    windows: int = 0
    drifted_windows: int = 0

    def add(self, result: dict[str, Any]) -> None:
        """Record a window result."""
        self.latest[result["model"], result["model_version"]] = result
        self.windows += 1
        self.drifted_windows += bool(result["drifted_features"])

    def table(self) -> Table:
        """One row per model version, so three models fit a 24-line terminal.

        The row shows the latest window's severity, its drifted features,
        the feature closest to (or furthest past) its critical threshold,
        the model output's severity and the performance on joined labels.
        """
        table = Table(expand=False, padding=(0, 1))
        for header in ("model", "window", "severity", "drifted", "worst feature", "output"):
            table.add_column(header)
        table.add_column("labels", overflow="fold")
        for (model, version), result in sorted(self.latest.items()):
            severity = result["severity"]
            drifted = ", ".join(result["drifted_features"])
            worst = worst_feature(result["features"])
            prediction = result.get("prediction") or {}
            output = prediction.get("severity", "-")
            table.add_row(
                Text(f"{model} v{version}", style="bold"),
                f"{result['window']['id']} ({result['n_events']})",
                Text(severity, style=SEVERITY_STYLE.get(severity, "")),
                Text(drifted or "-", style=SEVERITY_STYLE["critical"] if drifted else ""),
                worst,
                Text(output, style=SEVERITY_STYLE.get(output, "")),
                performance_summary(result.get("performance")),
            )
        return table


def worst_feature(features: Mapping[str, dict[str, Any]]) -> str:
    """The feature whose headline score is largest relative to its critical threshold.

    Examples
    --------
    >>> worst_feature({
    ...     "a": {"kind": "numeric", "tests": {"ks": {"effect_size": 0.05}}},
    ...     "b": {"kind": "categorical", "tests": {"chi2": {"effect_size": 0.6}}},
    ... })
    'b: chi2 0.600 / 0.5'
    >>> worst_feature({})
    '-'
    """
    best: tuple[float, str] | None = None
    for name, feature in features.items():
        test = "ks" if feature["kind"] == "numeric" else "chi2"
        effect = (feature["tests"].get(test) or {}).get("effect_size")
        critical = DEFAULT_THRESHOLDS[test].critical
        if effect is None or not critical:
            continue
        shown = f"{name}: {test} {effect:.3f} / {critical:g}"
        if best is None or effect / critical > best[0]:
            best = (effect / critical, shown)
    return "-" if best is None else best[1]


def performance_summary(performance: Mapping[str, Any] | None) -> str:
    """Metrics on joined labels and the label coverage, briefly.

    Examples
    --------
    >>> performance_summary({"metrics": {"accuracy": 0.8123, "roc_auc": None},
    ...                      "label_coverage": 0.9})
    'accuracy 0.812, 90%'
    >>> performance_summary(None)
    '-'
    """
    if not performance:
        return "-"
    metrics = performance.get("metrics") or {}
    shown = [f"{name} {value:.3f}" for name, value in metrics.items() if value is not None]
    coverage = performance.get("label_coverage")
    if coverage is not None:
        shown.append(f"{coverage:.0%}")
    return ", ".join(shown) or "-"


def publish_references(
    bootstrap: str,
    config: DriftstreamConfig,
    seed: int,
    client_options: Mapping[str, Any] | None = None,
) -> None:
    """Reference profiles of every simulated model on the references topic."""
    for model in DEMO_MODELS.values():
        frame = reference_frame(model, REFERENCE_ROWS, seed=seed).drop(columns=["label"])
        profile = ReferenceProfile.from_frame(
            frame, model=model.name, model_version=model.version, kinds=model.kinds
        )
        publish_reference(bootstrap, dict(client_options or {}), config.topics, profile)


@dataclass
class WorkerChild:
    """The demo's ``driftstream run`` child process."""

    process: subprocess.Popen[bytes]
    log_path: Path
    web_port: int

    def ready(self) -> bool:
        """Whether its ``/ready`` endpoint answers 200; raise if the process died."""
        if self.process.poll() is not None:
            raise DriftstreamError(
                f"the worker exited with code {self.process.returncode}; see {self.log_path}"
            )
        try:
            with httpx.Client(trust_env=False, timeout=0.2) as client:
                answer = client.get(f"http://127.0.0.1:{self.web_port}/ready")
        except httpx.HTTPError:
            return False
        return answer.status_code == 200


@contextmanager
def worker_process(
    config: DriftstreamConfig, bootstrap: str, folder: Path, hurry: threading.Event
) -> Iterator[WorkerChild]:
    """``driftstream run`` as a child process, stopped (or killed) on the way out."""
    document = config.model_dump(mode="json", exclude={"broker"})
    document["broker"] = {"url": f"kafka://{bootstrap}"}
    config_path = folder / "driftstream-demo.yaml"
    config_path.write_text(yaml.safe_dump(document))
    log_path = folder / "worker.log"
    command = [
        str(Path(sys.executable).parent / "driftstream"),
        "run",
        "--config",
        str(config_path),
    ]
    process = spawn(command, log_path)
    try:
        yield WorkerChild(process, log_path, config.worker.web_port)
    finally:
        # State is crash-safe, so a worker slow to stop may be killed.
        stop_process(process, WORKER_STOP_SECONDS, hurry)


def results_consumer(bootstrap: str, topic: str) -> KafkaConsumer:
    """A group-less reader of the results topic, from the beginning."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    return consumer


def run_demo(settings: DemoSettings, console: Console, notices: Console) -> Board:
    """Run everything until Ctrl-C, SIGTERM or ``settings.duration``; returns what was seen.

    ``console`` shows the results, ``notices`` (stderr) what starts and
    stops. Shutdown goes in order: the simulated traffic, the worker, then
    the broker, each bounded in time; a second Ctrl-C (a second or more
    after the first) kills what is still stopping.
    """
    board = Board()
    # each step has stopped what it started when StopRequested reaches here
    with StopRequests() as stop, suppress(StopRequested):
        _run_demo(settings, console, notices, board, stop.hurry)
    notices.print("stopped: simulated service, worker and broker.", style="dim")
    return board


def _run_demo(
    settings: DemoSettings,
    console: Console,
    notices: Console,
    board: Board,
    hurry: threading.Event,
) -> None:
    web_port = DEFAULT_WEB_PORT if port_is_free(DEFAULT_WEB_PORT) else free_port()
    metrics_port = DEFAULT_METRICS_PORT if port_is_free(DEFAULT_METRICS_PORT) else free_port()
    config = demo_config(settings.window_events, web_port, metrics_port)

    def announce(message: str) -> None:
        notices.print(message, style="dim")

    with (
        tempfile.TemporaryDirectory(prefix="driftstream-demo-") as folder,
        broker_for(config.broker, announce, hurry=hurry) as bootstrap,
    ):
        ensure_topics(bootstrap, config.topics, {})
        publish_references(bootstrap, config, settings.seed)
        with worker_process(config, bootstrap, Path(folder), hurry) as worker:
            announce(
                f"worker log: {worker.log_path}; health: http://127.0.0.1:{web_port}/models; "
                f"metrics: http://127.0.0.1:{metrics_port}/metrics"
            )
            try:
                serve(settings, config, bootstrap, board, console, worker)
            except StopRequested:
                announce("stopping: the simulated service, then the worker, then the broker...")
                raise


class Traffic:
    """The simulated serving service: predictions at a steady rate, delayed labels.

    Both ``driftstream demo`` and ``driftstream simulate`` play it: call
    :meth:`tick` often (every :data:`TICK_SECONDS` or so); each call sends
    the predictions due since the start at ``settings.events_per_second``
    and the labels whose delay has passed. The drift starts after
    ``settings.drift_after_seconds`` of traffic.
    """

    def __init__(
        self,
        settings: DemoSettings,
        topics: TopicsConfig,
        bootstrap: str,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        per_model = settings.events_per_second / len(DEMO_MODELS)
        self.settings = settings
        self.topics = topics
        self.simulator = ServingSimulator(
            seed=settings.seed,
            drift_after_events=int(per_model * settings.drift_after_seconds),
        )
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap, linger_ms=20, **dict(client_options or {})
        )
        self.started = time.monotonic()
        self.sent = 0
        self.labels_sent = 0

    def elapsed(self) -> float:
        """Seconds since the traffic started."""
        return time.monotonic() - self.started

    def running(self) -> bool:
        """Whether ``settings.duration`` (if any) has not passed yet."""
        return self.settings.duration is None or self.elapsed() < self.settings.duration

    def tick(self) -> float:
        """Send what is due now; returns the seconds elapsed since the start."""
        elapsed = self.elapsed()
        due = int(elapsed * self.settings.events_per_second) - self.sent
        now_ms = time.time_ns() // 1_000_000
        if due > 0:
            for document in self.simulator.predictions(due, now_ms, 1):
                self.producer.send(
                    self.topics.predictions,
                    key=document["model"].encode(),
                    value=orjson.dumps(document),
                )
            self.sent += due
        for label in self.simulator.labels_due(now_ms):
            self.producer.send(
                self.topics.labels, key=label["model"].encode(), value=orjson.dumps(label)
            )
            self.labels_sent += 1
        return elapsed

    def close(self) -> None:
        """Deliver what is buffered (bounded by :data:`TRAFFIC_STOP_SECONDS`) and stop."""
        self.producer.close(timeout=TRAFFIC_STOP_SECONDS)


def serve(
    settings: DemoSettings,
    config: DriftstreamConfig,
    bootstrap: str,
    board: Board,
    console: Console,
    worker: WorkerChild,
) -> None:
    """The simulated serving service plus the live view of the results topic."""
    traffic = Traffic(settings, config.topics, bootstrap)
    consumer = results_consumer(bootstrap, config.topics.results)
    ready = False
    try:
        with (
            Live(board.table(), console=console, refresh_per_second=4, transient=False)
            if settings.live
            else nullcontext() as live
        ):
            while traffic.running():
                elapsed = traffic.tick()
                ready = ready or worker.ready()
                for records in consumer.poll(timeout_ms=int(TICK_SECONDS * 1000)).values():
                    for record in records:
                        result = orjson.loads(record.value)
                        board.add(result)
                        if live is None:
                            console.print(result_line(result, elapsed))
                if live is not None:
                    status = status_line(settings, elapsed, traffic.sent, ready, board.windows)
                    live.update(Group(Text(status, style="dim"), board.table()))
    finally:
        traffic.close()
        consumer.close()


def simulate(
    settings: DemoSettings,
    config: DriftstreamConfig,
    bootstrap: str,
    announce: Callable[[str], None],
    *,
    publish_profiles: bool = False,
) -> tuple[int, int]:
    """Only the simulated serving service, against an existing broker, until stopped.

    Creates the missing topics, publishes the simulated models' reference
    profiles when ``publish_profiles``, then sends traffic until
    ``settings.duration`` passes or SIGINT/SIGTERM arrives. Returns the
    numbers of predictions and labels sent.
    """
    options = config.broker.client_options()
    traffic: Traffic | None = None
    with StopRequests(), suppress(StopRequested):
        ensure_topics(bootstrap, config.topics, options)
        if publish_profiles:
            publish_references(bootstrap, config, settings.seed, options)
            announce(f"published the reference profiles of {', '.join(DEMO_MODELS)}")
        traffic = Traffic(settings, config.topics, bootstrap, options)
        announce(
            f"sending {settings.events_per_second} predictions/s and their labels to "
            f"{bootstrap}; drift starts after {settings.drift_after_seconds:g} s; "
            "Ctrl-C or SIGTERM stops"
        )
        try:
            while traffic.running():
                traffic.tick()
                time.sleep(TICK_SECONDS)
        finally:
            traffic.close()
    sent = (traffic.sent, traffic.labels_sent) if traffic is not None else (0, 0)
    announce(f"stopped: {sent[0]} predictions and {sent[1]} labels sent")
    return sent


def status_line(
    settings: DemoSettings, elapsed: float, sent: int, ready: bool, windows: int
) -> str:
    """What the demo is doing, above the table; says what it waits for before any window.

    Examples
    --------
    >>> print(status_line(DemoSettings(), 3.2, 1900, ready=False, windows=0))
    3 s  1900 predictions sent. Waiting for the worker to start: it joins its consumer
    group and reads the references topic (10-20 s). Ctrl-C to stop.
    >>> print(status_line(DemoSettings(), 30.0, 18000, ready=True, windows=12))
    30 s  18000 predictions sent; drift started at 20 s. Ctrl-C to stop.
    """
    head = f"{elapsed:.0f} s  {sent} predictions sent"
    if not windows and not ready:
        return (
            f"{head}. Waiting for the worker to start: it joins its consumer\n"
            "group and reads the references topic (10-20 s). Ctrl-C to stop."
        )
    if not windows:
        seconds = settings.window_events * len(DEMO_MODELS) / settings.events_per_second
        return (
            f"{head}. Worker ready; each model's first window closes after\n"
            f"{settings.window_events} of its events (about {seconds:.1f} s). Ctrl-C to stop."
        )
    tense = "started" if elapsed >= settings.drift_after_seconds else "starts"
    return f"{head}; drift {tense} at {settings.drift_after_seconds:.0f} s. Ctrl-C to stop."


def result_line(result: dict[str, Any], elapsed: float) -> str:
    """One plain line per window (for ``--no-live`` and logs)."""
    drifted = ", ".join(result["drifted_features"]) or "-"
    return (
        f"{elapsed:6.1f}s {result['model']} v{result['model_version']} "
        f"window {result['window']['id']}: {result['severity']} (drifted: {drifted})"
    )
