"""``driftstream demo``: broker, worker and a simulated serving service, live in the terminal.

The demo starts the embedded broker, publishes reference profiles of the
simulated models (:mod:`monitor.simulation`), runs a worker as a child
process (``driftstream run``), and plays a serving service that sends
predictions and delayed labels in real time and injects a drift after a
delay. It shows the latest window of every model as it closes, and stops
cleanly on Ctrl-C (or after ``--duration``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from monitor.broker import broker_for, free_port, port_is_free
from monitor.config import DriftstreamConfig
from monitor.publishing import publish_reference
from monitor.reference import ReferenceProfile
from monitor.simulation import DEMO_MODELS, ServingSimulator, reference_frame
from monitor.stats.decision import DEFAULT_THRESHOLDS, EffectThresholds
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


@dataclass(frozen=True)
class DemoSettings:
    """How the demo runs."""

    events_per_second: int = 600
    drift_after_seconds: float = 20.0
    window_events: int = 500
    duration: float | None = None
    live: bool = True
    seed: int = 0


def demo_config(window_events: int, web_port: int) -> DriftstreamConfig:
    """Defaults with demo-sized windows and short snapshot intervals."""
    return DriftstreamConfig(
        worker={"web_port": web_port, "session_timeout": "6s"},
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
        """One block of rows per model: its features' main scores and severities."""
        table = Table(expand=False)
        for header in ("model", "window", "feature", "test", "score", "threshold", "severity"):
            table.add_column(header)
        for (model, version), result in sorted(self.latest.items()):
            severity = result["severity"]
            performance = result.get("performance") or {}
            metrics = performance.get("metrics") or {}
            shown = ", ".join(
                f"{name} {value:.3f}" for name, value in metrics.items() if value is not None
            )
            coverage = performance.get("label_coverage")
            summary = f"{result['n_events']} events" + (f", {shown}" if shown else "")
            if coverage is not None:
                summary += f", labels {coverage:.0%}"
            table.add_row(
                Text(f"{model} v{version}", style="bold"),
                str(result["window"]["id"]),
                summary,
                "",
                "",
                "",
                Text(severity, style=SEVERITY_STYLE.get(severity, "")),
                end_section=False,
            )
            features = dict(result["features"])
            if result.get("prediction"):
                features["(prediction)"] = result["prediction"]
            for position, (name, feature) in enumerate(features.items()):
                test, score, threshold = main_score(feature)
                table.add_row(
                    "",
                    "",
                    name,
                    test,
                    score,
                    threshold,
                    Text(feature["severity"], style=SEVERITY_STYLE.get(feature["severity"], "")),
                    end_section=position == len(features) - 1,
                )
        return table


def main_score(
    feature: dict[str, Any], thresholds: Mapping[str, EffectThresholds] = DEFAULT_THRESHOLDS
) -> tuple[str, str, str]:
    """The headline test of a feature entry: KS D (numeric) or Cohen's w (categorical).

    Returns the test name, its effect size (with the PSI) and the
    warning / critical effect thresholds.

    Examples
    --------
    >>> main_score({"kind": "numeric", "tests": {"ks": {"effect_size": 0.5}, "psi": {"value": 1}}})
    ('ks', '0.500 (psi 1.000)', '0.1 / 0.2')
    """
    name = "ks" if feature["kind"] == "numeric" else "chi2"
    test = feature["tests"].get(name) or {}
    effect = test.get("effect_size")
    psi = (feature["tests"].get("psi") or {}).get("value")
    score = "-" if effect is None else f"{effect:.3f}"
    if psi is not None:
        score += f" (psi {psi:.3f})"
    limits = thresholds.get(name, EffectThresholds())
    shown = " / ".join("-" if v is None else f"{v:g}" for v in (limits.warning, limits.critical))
    return name, score, shown


def publish_references(bootstrap: str, config: DriftstreamConfig, seed: int) -> None:
    """Reference profiles of every simulated model on the references topic."""
    for model in DEMO_MODELS.values():
        frame = reference_frame(model, REFERENCE_ROWS, seed=seed).drop(columns=["label"])
        profile = ReferenceProfile.from_frame(
            frame, model=model.name, model_version=model.version, kinds=model.kinds
        )
        publish_reference(bootstrap, {}, config.topics, profile)


@contextmanager
def worker_process(config: DriftstreamConfig, bootstrap: str, folder: Path) -> Iterator[Path]:
    """``driftstream run`` as a child process; yields its log file."""
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
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops the worker itself
        )
    try:
        yield log_path
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def results_consumer(bootstrap: str, topic: str) -> KafkaConsumer:
    """A group-less reader of the results topic, from the beginning."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    return consumer


def run_demo(settings: DemoSettings, console: Console) -> Board:
    """Run everything until Ctrl-C or ``settings.duration``; returns what was seen."""
    web_port = 6066 if port_is_free(6066) else free_port()
    config = demo_config(settings.window_events, web_port)
    board = Board()
    with (
        tempfile.TemporaryDirectory(prefix="driftstream-demo-") as folder,
        broker_for(config.broker, lambda message: console.print(message, style="dim")) as bootstrap,
    ):
        ensure_topics(bootstrap, config.topics, {})
        publish_references(bootstrap, config, settings.seed)
        with worker_process(config, bootstrap, Path(folder)) as log_path:
            console.print(
                f"worker log: {log_path}; health: http://127.0.0.1:{web_port}/models",
                style="dim",
            )
            try:
                serve(settings, config, bootstrap, board, console)
            except KeyboardInterrupt:
                console.print("stopping...", style="dim")
    return board


def serve(
    settings: DemoSettings,
    config: DriftstreamConfig,
    bootstrap: str,
    board: Board,
    console: Console,
) -> None:
    """The simulated serving service plus the live view of the results topic."""
    per_model = settings.events_per_second / len(DEMO_MODELS)
    simulator = ServingSimulator(
        seed=settings.seed,
        drift_after_events=int(per_model * settings.drift_after_seconds),
    )
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    consumer = results_consumer(bootstrap, config.topics.results)
    started = time.monotonic()
    sent = 0
    try:
        with (
            Live(board.table(), console=console, refresh_per_second=4, transient=False)
            if settings.live
            else nullcontext() as live
        ):
            while settings.duration is None or time.monotonic() - started < settings.duration:
                elapsed = time.monotonic() - started
                due = int(elapsed * settings.events_per_second) - sent
                now_ms = time.time_ns() // 1_000_000
                if due > 0:
                    for document in simulator.predictions(due, now_ms, 1):
                        producer.send(
                            config.topics.predictions,
                            key=document["model"].encode(),
                            value=orjson.dumps(document),
                        )
                    sent += due
                for label in simulator.labels_due(now_ms):
                    producer.send(
                        config.topics.labels,
                        key=label["model"].encode(),
                        value=orjson.dumps(label),
                    )
                for records in consumer.poll(timeout_ms=int(TICK_SECONDS * 1000)).values():
                    for record in records:
                        result = orjson.loads(record.value)
                        board.add(result)
                        if live is None:
                            console.print(result_line(result, elapsed))
                if live is not None:
                    live.update(
                        Group(
                            Text(
                                f"{elapsed:5.0f} s  {sent} predictions sent; drift starts "
                                f"at {settings.drift_after_seconds:.0f} s. Ctrl-C to stop.",
                                style="dim",
                            ),
                            board.table(),
                        )
                    )
    finally:
        producer.close(timeout=5)
        consumer.close()


def result_line(result: dict[str, Any], elapsed: float) -> str:
    """One plain line per window (for ``--no-live`` and logs)."""
    drifted = ", ".join(result["drifted_features"]) or "-"
    return (
        f"{elapsed:6.1f}s {result['model']} v{result['model_version']} "
        f"window {result['window']['id']}: {result['severity']} (drifted: {drifted})"
    )
