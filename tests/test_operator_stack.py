"""The operator's stack against real servers: broker, worker, Prometheus, Alertmanager.

One worker reads simulated serving traffic (three models, three of whose
features drift after a while, delayed labels, a Slack sink and a webhook
that is down) plus a burst of events that break the contract. A real
Prometheus scrapes it with the shipped rule files (their ``for:`` durations
cut to nothing, the only change) and sends alerts to a real Alertmanager
running the shipped configuration (its Slack webhook files pointing at a
local recording server). Then:

- every query of every shipped dashboard panel, its variables resolved from
  label values Prometheus really has, parses and returns series;
- the overview's drifting-features panel names exactly the features the
  simulator drifted;
- shipped alerts (critical drift, dead-letter ratio, failing sink) reach
  Alertmanager, and Alertmanager's Slack receiver gets them.
"""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kafka import KafkaProducer

from grafana.generate import panel_queries
from monitor.demo import publish_references
from monitor.simulation import DEMO_MODELS, ServingSimulator
from tests.alertmanager import Alertmanager, running_alertmanager
from tests.console import DRIFTSTREAM, ENVIRONMENT
from tests.http_recorder import Recorder, Reply, recording_server
from tests.prometheus import Prometheus, running_prometheus
from tests.promql import ROOT, RULE_FILES
from tests.worker_process import WorkerProcess, start_worker, wait_for, write_config

DRIFT_AFTER_SECONDS = 15
RATE = 600
BAD_PER_SECOND = 20
BAD_EVENTS = 240 * BAD_PER_SECOND

#: Grafana's built-in interval variables, as a dashboard over the last hour would set them.
BUILT_INS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}


def rule_files_without_waiting(folder: Path) -> list[Path]:
    """Copies of the shipped rule files whose alerts fire on their first breach."""
    copies = []
    for path in RULE_FILES:
        document = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = "0s"
        copy = folder / path.name
        copy.write_text(yaml.safe_dump(document))
        copies.append(copy)
    return copies


def shipped_alertmanager_config(folder: Path, slack_url: str) -> Path:
    """prometheus/alertmanager.yml with its secret files in ``folder``, holding ``slack_url``.

    Its grouping waits are cut to a second so the receiver hears within the test.
    """
    text = (ROOT / "prometheus" / "alertmanager.yml").read_text()
    for secret in set(re.findall(r"/etc/alertmanager/secrets/[\w.-]+", text)):
        local = folder / Path(secret).name
        local.write_text(slack_url + "\n")
        text = text.replace(secret, str(local))
    document = yaml.safe_load(text)
    document["route"]["group_wait"] = "1s"
    document["route"]["group_interval"] = "1s"
    config = folder / "alertmanager.yml"
    config.write_text(yaml.safe_dump(document))
    return config


def bad_events(count: int) -> list[bytes]:
    """Churn events that break the contract in one feature (a nested object)."""
    documents = ServingSimulator(["churn"], seed=9).predictions(count, 1_700_000_000_000, 1)
    broken = []
    for document in documents:
        feature = next(iter(document["features"]))
        document["features"][feature] = {"nested": 1}
        broken.append(orjson.dumps(document))
    return broken


def resolved(expr: str, values: dict[str, str]) -> str:
    """``expr`` with ``$name`` and ``${name}`` replaced from ``values``."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise AssertionError(f"unresolved dashboard variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


@pytest.fixture
def stack(
    tmp_path: Path, broker: str, workers: list[WorkerProcess], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[WorkerProcess, Prometheus, Alertmanager, Recorder, ServingSimulator]]:
    with (
        recording_server() as slack,
        recording_server(Reply(503, b"down")) as down,
        recording_server() as alertmanager_slack,
    ):
        monkeypatch.setenv("DS_TEST_SLACK_URL", f"{slack.url}/services/T0/B0/X")
        monkeypatch.setenv("DS_TEST_HOOK_SECRET", "not-a-secret-test-value")
        alerting: dict[str, Any] = {
            "rules": [{"kind": "feature_drift", "name": "drift", "fire_after": 1}],
            "slack": [{"webhook_url": {"env": "DS_TEST_SLACK_URL"}}],
            "webhooks": [
                {
                    "name": "retrain",
                    "url": f"{down.url}/retrain",
                    "secret": {"env": "DS_TEST_HOOK_SECRET"},
                    "max_attempts": 1,
                    "delivery_timeout": "0s",
                }
            ],
        }
        path, config = write_config(tmp_path, broker, partitions=3, alerting=alerting)
        # What `driftstream simulate --publish-references` publishes (with
        # labels and a build time), before the worker starts.
        publish_references(broker, config, seed=0)
        worker = start_worker(path, workers)
        worker.wait_ready()

        environment = {
            **ENVIRONMENT,
            **{
                f"DRIFTSTREAM_TOPICS__{role.upper()}": getattr(config.topics, role)
                for role in ("predictions", "labels")
            },
        }
        with (tmp_path / "simulate.log").open("wb") as simulate_log:
            traffic = subprocess.Popen(
                [
                    DRIFTSTREAM,
                    "simulate",
                    "--bootstrap",
                    broker,
                    "--rate",
                    str(RATE),
                    "--drift-after",
                    str(DRIFT_AFTER_SECONDS),
                    "--duration",
                    "240",
                ],
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=simulate_log,
            )
        # A broken producer beside the good one: 20 bad churn events a second
        # (10 % of churn's traffic), for at most the traffic's duration.
        stop_bad = threading.Event()

        def produce_bad() -> None:
            producer = KafkaProducer(bootstrap_servers=broker)
            try:
                for message in bad_events(BAD_EVENTS):
                    producer.send(config.topics.predictions, key=b"churn", value=message)
                    if stop_bad.wait(1 / BAD_PER_SECOND):
                        break
            finally:
                producer.close(10)

        bad = threading.Thread(target=produce_bad, daemon=True)
        bad.start()

        am_folder = tmp_path / "alertmanager"
        am_folder.mkdir()
        am_config = shipped_alertmanager_config(am_folder, f"{alertmanager_slack.url}/hooks/x")
        try:
            with running_alertmanager(am_config, am_folder) as alertmanager:
                prom_folder = tmp_path / "prometheus"
                prom_folder.mkdir()
                with running_prometheus(
                    [f"127.0.0.1:{worker.metrics_port}"],
                    prom_folder,
                    rule_files=rule_files_without_waiting(prom_folder),
                    alertmanager=alertmanager.address,
                ) as prometheus:
                    yield (
                        worker,
                        prometheus,
                        alertmanager,
                        alertmanager_slack,
                        ServingSimulator(seed=0, drift_after_events=1),
                    )
        finally:
            stop_bad.set()
            bad.join(30)
            traffic.terminate()
            traffic.wait(30)


def test_every_panel_query_returns_series_and_shipped_alerts_reach_alertmanager(
    stack: tuple[WorkerProcess, Prometheus, Alertmanager, Recorder, ServingSimulator],
) -> None:
    worker, prometheus, alertmanager, alertmanager_slack, simulator = stack
    injected = {model: simulator.drifted_features(model) for model in DEMO_MODELS}

    # The overview's drifting-features panel, all models selected, names
    # exactly the drifted features of every model.
    [drifting_panel] = [
        expr for uid, title, expr in panel_queries() if title == "Drifting features"
    ]
    everything = {"model": ".*", "version": ".*", **BUILT_INS}

    def drifting(result: list[dict[str, Any]]) -> bool:
        seen: dict[str, set[str]] = {model: set() for model in DEMO_MODELS}
        for sample in result:
            seen[sample["metric"]["model"]].add(sample["metric"]["feature"])
        return seen == injected

    prometheus.wait_for(resolved(drifting_panel, everything), drifting, timeout=150)

    # Shipped alerts reach Alertmanager through Prometheus.
    def received(names: set[str]) -> bool:
        return names <= {alert["labels"]["alertname"] for alert in alertmanager.alerts()}

    expected = {
        "DriftstreamCriticalDrift",
        "DriftstreamDeadLetterRatioHigh",
        "DriftstreamSinkDeliveriesFailing",
    }
    try:
        wait_for(lambda: received(expected), 90, f"{sorted(expected)} in Alertmanager")
    except AssertionError as error:
        firing = sorted({a["labels"]["alertname"] for a in prometheus.alerts()})
        raise AssertionError(f"{error}; Prometheus has {firing}") from None
    dead_letters = [
        a
        for a in alertmanager.alerts()
        if a["labels"]["alertname"] == "DriftstreamDeadLetterRatioHigh"
    ]
    assert [a["labels"]["model"] for a in dead_letters] == ["churn"]
    critical = {
        a["labels"]["model"]
        for a in alertmanager.alerts()
        if a["labels"]["alertname"] == "DriftstreamCriticalDrift"
    }
    assert critical
    assert critical <= set(DEMO_MODELS)
    # ... and Alertmanager's Slack receiver (the shipped routing) hears of them.
    alertmanager_slack.wait_for(
        lambda requests: any("DriftstreamCriticalDrift" in r.body.decode() for r in requests),
        timeout=60,
    )

    # Every panel query, with variables from real label values, returns series.
    model = "churn"
    [version] = {
        s["metric"]["model_version"]
        for s in prometheus.query(f'driftstream_window_severity{{model="{model}"}}')
    }
    # As the multi-value variables send a selection: the drifted features
    # (numeric and categorical ones) and every test.
    values = {
        "model": model,
        "version": version,
        "feature": "|".join(sorted(injected[model])),
        "test": ".*",
        **BUILT_INS,
    }
    empty = []
    for uid, title, expr in panel_queries():
        query = resolved(expr, values)
        if not prometheus.query(query):
            empty.append(f"{uid} / {title}: {query}")
    assert not empty, "panel queries without series:\n" + "\n".join(empty)
    assert worker.process is not None
    assert worker.process.poll() is None, "the worker died"
