"""``driftstream demo``: broker, worker and a simulated serving service, live in the terminal.

The demo starts the embedded broker, publishes reference profiles of the
simulated models (:mod:`monitor.simulation`), runs a worker as a child
process (``driftstream run``), and plays a serving service that sends
predictions and delayed labels in real time and injects a drift after a
delay. It shows the latest window of every model as it closes, the alert
transitions (firing, resolved) the worker publishes to the alerts topic,
and where to look further (the worker's ``/alerts``, ``/models`` and
``/metrics``, the command tailing the results topic); it stops cleanly, in
order, on Ctrl-C or SIGTERM (or after ``--duration``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from rich import box
from rich.console import Console, Group, RenderableType
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
#: A table cell that stays on one line, cut with an ellipsis if it must.
CUT: dict[str, Any] = {"no_wrap": True, "overflow": "ellipsis"}
#: Reference rows per simulated model.
REFERENCE_ROWS = 20_000
TICK_SECONDS = 0.2
#: Ports the demo's worker prefers (the configuration's defaults), when free.
DEFAULT_WEB_PORT = 6066
DEFAULT_METRICS_PORT = 9464
#: Alert transitions the demo shows (firing and resolved; pending and
#: cleared ones are on the alerts topic too) and how many it keeps.
SHOWN_TRANSITIONS = {"firing": "bold red", "resolved": "green"}
KEPT_TRANSITIONS = 50
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
    transitions: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=KEPT_TRANSITIONS)
    )

    def add(self, result: dict[str, Any]) -> None:
        """Record a window result."""
        self.latest[result["model"], result["model_version"]] = result
        self.windows += 1
        self.drifted_windows += bool(result["drifted_features"])

    def add_alert(self, event: dict[str, Any]) -> bool:
        """Record an alert transition from the alerts topic; whether it is one shown."""
        if event.get("status") not in SHOWN_TRANSITIONS:
            return False
        self.transitions.append(event)
        return True

    def table(self) -> Table:
        """One row per model version, so three models fit an 80 x 24 terminal.

        The row shows the latest window's id and severity, its drifted
        features (how many, then their names; while none drifted, the
        feature closest to its critical threshold, dimmed), the model
        output's severity and the headline metric on joined labels with the
        label coverage. Every row is one line: a cell too long for the
        terminal ends in an ellipsis (the alert transitions below the table
        name every drifted feature).
        """
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0), show_edge=False)
        for header in ("model", "win", "severity", "features", "output", "labels"):
            # only features and labels give way (their texts never wrap)
            table.add_column(header, no_wrap=header not in ("features", "labels"))
        for (model, version), result in sorted(self.latest.items()):
            severity = result["severity"]
            drifted = result["drifted_features"]
            features = (
                Text(f"{len(drifted)}: {', '.join(drifted)}", SEVERITY_STYLE["critical"], **CUT)
                if drifted
                else Text(worst_feature(result["features"]), "dim", **CUT)
            )
            prediction = result.get("prediction") or {}
            output = prediction.get("severity", "-")
            table.add_row(
                Text(f"{model} v{version}", style="bold"),
                str(result["window"]["id"]),
                Text(severity, style=SEVERITY_STYLE.get(severity, "")),
                features,
                Text(output, style=SEVERITY_STYLE.get(output, "")),
                Text(performance_summary(result.get("performance")), **CUT),
            )
        return table

    def alerts(self, lines: int) -> RenderableType:
        """The latest alert transitions, newest last, in at most ``lines`` lines."""
        if not self.transitions:
            return Text("alert transitions: none yet", style="dim")
        shown = list(self.transitions)[-max(1, lines - 1) :]
        lines_shown = [alert_text(event) for event in shown]
        heading = f"alert transitions, latest {len(shown)} of {len(self.transitions)}:"
        return Group(Text(heading, style="dim"), *lines_shown)


def alert_text(event: Mapping[str, Any]) -> Text:
    """One line of a transition: time, status, rule, model and version, what breached.

    Examples
    --------
    >>> alert_text({"status": "firing", "rule": "feature_drift", "model": "churn",
    ...     "model_version": "1", "feature": "plan", "at": "2026-11-23T10:00:00Z"}).plain[8:]
    ' FIRING   feature_drift churn v1 plan'
    """
    status = event["status"]
    subject = event["model"] + (f" v{event['model_version']}" if event.get("model_version") else "")
    return Text.assemble(
        local_time(event["at"]),
        " ",
        (f"{status.upper():<8}", SHOWN_TRANSITIONS.get(status, "")),
        f" {event['rule']} ",
        (subject, "bold"),
        f" {alert_detail(event)}",
        no_wrap=True,
        overflow="ellipsis",
    )


def alert_detail(event: Mapping[str, Any]) -> str:
    """The feature(s) of a transition, else the detail of its summary.

    Examples
    --------
    >>> alert_detail({"features": [{"feature": "plan"}, {"feature": "amount"}]})
    'plan, amount'
    >>> alert_detail({"summary": "churn 1: no events firing — silent for 60 s"})
    'silent for 60 s'
    """
    if event.get("feature"):
        return str(event["feature"])
    features = [breach["feature"] for breach in event.get("features") or []]
    if features:
        return ", ".join(features)
    return str(event.get("summary", "")).rpartition(" — ")[2]


def local_time(at: str) -> str:
    """``HH:MM:SS`` in the local time zone of an ISO 8601 timestamp."""
    return datetime.fromisoformat(at).astimezone().strftime("%H:%M:%S")


def where_to_look(web_port: int, metrics_port: int, bootstrap: str) -> str:
    """The worker's URLs and the command that tails the results topic.

    Examples
    --------
    >>> print(where_to_look(6066, 9464, "127.0.0.1:9092"))
    alerts http://127.0.0.1:6066/alerts   models http://127.0.0.1:6066/models
    metrics http://127.0.0.1:9464/metrics
    results driftstream tail results --bootstrap 127.0.0.1:9092 --follow
    """
    worker = f"http://127.0.0.1:{web_port}"
    return (
        f"alerts {worker}/alerts   models {worker}/models\n"
        f"metrics http://127.0.0.1:{metrics_port}/metrics\n"
        f"results driftstream tail results --bootstrap {bootstrap} --follow"
    )


def worst_feature(features: Mapping[str, dict[str, Any]]) -> str:
    """The feature whose headline score is largest relative to its critical threshold.

    Examples
    --------
    >>> worst_feature({
    ...     "a": {"kind": "numeric", "tests": {"ks": {"effect_size": 0.05}}},
    ...     "b": {"kind": "categorical", "tests": {"chi2": {"effect_size": 0.6}}},
    ... })
    'b chi2 0.6/0.5'
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
        shown = f"{name} {test} {effect:.3g}/{critical:g}"
        if best is None or effect / critical > best[0]:
            best = (effect / critical, shown)
    return "-" if best is None else best[1]


def performance_summary(performance: Mapping[str, Any] | None) -> str:
    """The headline metric on joined labels and the label coverage, briefly.

    Examples
    --------
    >>> performance_summary({"metrics": {"accuracy": 0.8123, "roc_auc": 0.7},
    ...                      "label_coverage": 0.9})
    'accuracy 0.812, 90%'
    >>> performance_summary(None)
    '-'
    """
    if not performance:
        return "-"
    metrics = performance.get("metrics") or {}
    shown = [f"{name} {value:.3f}" for name, value in metrics.items() if value is not None][:1]
    coverage = performance.get("label_coverage")
    if coverage is not None:
        shown.append(f"{coverage:.0%}")
    return ", ".join(shown) or "-"


def demo_profiles(seed: int) -> list[ReferenceProfile]:
    """Reference profiles of every simulated model.

    Built with the labels (so windows report performance against the
    reference's) and the time of building (so the reference's age is known).
    """
    built_at = datetime.now(UTC).isoformat()
    return [
        ReferenceProfile.from_frame(
            reference_frame(model, REFERENCE_ROWS, seed=seed),
            model=model.name,
            model_version=model.version,
            kinds=model.kinds,
            label_column="label",
            built_at=built_at,
        )
        for model in DEMO_MODELS.values()
    ]


def publish_references(
    bootstrap: str,
    config: DriftstreamConfig,
    seed: int,
    client_options: Mapping[str, Any] | None = None,
) -> None:
    """:func:`demo_profiles` on the references topic."""
    for profile in demo_profiles(seed):
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


def results_consumer(bootstrap: str, *topics: str) -> KafkaConsumer:
    """A group-less reader of the results (and alerts) topics, from the beginning."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [
        TopicPartition(topic, p)
        for topic in topics
        for p in sorted(consumer.partitions_for_topic(topic))
    ]
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
            announce(f"worker log: {worker.log_path}")
            try:
                serve(settings, config, bootstrap, board, console, notices, worker)
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
    notices: Console,
    worker: WorkerChild,
) -> None:
    """The simulated serving service plus the live view of the results and alerts topics."""
    traffic = Traffic(settings, config.topics, bootstrap)
    consumer = results_consumer(bootstrap, config.topics.results, config.topics.alerts)
    links = where_to_look(worker.web_port, config.metrics.port, bootstrap)
    ready = False
    try:
        with (
            Live(board.table(), console=console, refresh_per_second=4, transient=False)
            if settings.live
            else nullcontext() as live
        ):
            while traffic.running():
                elapsed = traffic.tick()
                if not ready and worker.ready():
                    ready = True
                    if live is None:
                        notices.print(links, style="dim", soft_wrap=True)
                for records in consumer.poll(timeout_ms=int(TICK_SECONDS * 1000)).values():
                    for record in records:
                        document = orjson.loads(record.value)
                        if record.topic == config.topics.alerts:
                            if board.add_alert(document) and live is None:
                                console.print(alert_line(document, elapsed), soft_wrap=True)
                            continue
                        board.add(document)
                        if live is None:
                            console.print(result_line(document, elapsed))
                if live is not None:
                    status = status_line(settings, elapsed, traffic.sent, ready, board.windows)
                    live.update(screen(console, board, status, links if ready else None))
    finally:
        traffic.close()
        consumer.close()


def screen(console: Console, board: Board, status: str, links: str | None) -> RenderableType:
    """The live view: status line, table, where to look, then as many alerts as fit.

    The alert list gets the lines the rest leaves of the terminal's height
    (one kept free for the cursor), so the whole view stays on the screen.
    """
    parts: list[RenderableType] = [Text(status, style="dim"), board.table()]
    if links is not None:
        parts.append(Text(links, style="dim"))
    options = console.options
    used = sum(len(console.render_lines(part, options, pad=False)) for part in parts)
    parts.append(board.alerts(max(1, console.size.height - used - 1)))
    return Group(*parts)


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


def alert_line(event: dict[str, Any], elapsed: float) -> str:
    """One plain line per firing or resolved transition (for ``--no-live`` and logs)."""
    subject = event["model"] + (f" v{event['model_version']}" if event.get("model_version") else "")
    return (
        f"{elapsed:6.1f}s alert {event['status'].upper()} {event['rule']} {subject}: "
        f"{alert_detail(event)}"
    )
