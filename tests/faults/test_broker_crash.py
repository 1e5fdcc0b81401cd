"""Drill: the broker is killed -9 mid-stream and restarted on durable (S3) storage.

The embedded broker keeps its data in a local S3-compatible server (moto).
Events stream: two windows close and their alerts reach Slack, the third is
half full; more events are sent and the broker process is killed -9 while
the worker consumes them, and a new broker starts on the same port and
bucket. It serves the state topic's snapshot and the group's committed
offset from before the crash. The worker reconnects by itself; every event
is in exactly one window result, the results equal what one undisturbed
worker computes, and each alert reaches Slack once.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from monitor.broker import EmbeddedBroker
from monitor.demo import demo_profiles
from monitor.publishing import publish_reference
from monitor.simulation import ServingSimulator
from monitor.snapshots import latest_snapshot
from tests.conftest import read_all
from tests.http_recorder import recording_server
from tests.s3_server import s3_server
from tests.worker_process import (
    WorkerProcess,
    alerts_settled,
    expected_results,
    latest_results,
    send,
    slack_key,
    start_worker,
    wait_for,
    write_config,
)

START_MS = 1_700_000_000_000
WINDOW = 500
STEP_MS = 10


def snapshot_generation(bootstrap: str, topic: str) -> int | None:
    """The generation of partition 0's latest complete snapshot on the state topic."""
    found = latest_snapshot(((r.key, r.value) for r in read_all(bootstrap, topic)), 0)
    return None if found is None else found[0]


def committed(bootstrap: str, group: str, topic: str) -> int | None:
    """The group's committed offset of partition 0 of ``topic`` (no group join)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    try:
        offset: int | None = consumer.committed(TopicPartition(topic, 0))
        return offset
    finally:
        consumer.close()


def test_a_broker_killed_mid_stream_restarts_on_s3_without_loss_or_repeats(
    tmp_path: Path, workers: list[WorkerProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    began = time.monotonic()
    with s3_server(tmp_path / "moto.log") as s3, recording_server() as slack:
        for name, value in s3.env.items():
            monkeypatch.setenv(name, value)  # for Tansu, which the broker inherits
        monkeypatch.setenv("DS_DRILL_SLACK_URL", f"{slack.url}/services/T0/B0/X")
        broker_log = tmp_path / "broker.log"
        embedded = EmbeddedBroker(log_path=broker_log, storage=s3.storage)
        bootstrap = embedded.start()
        try:
            alerting = {
                "rules": [
                    {"kind": "feature_drift", "name": "drift", "fire_after": 1, "cooldown": "0s"}
                ],
                "slack": [{"webhook_url": {"env": "DS_DRILL_SLACK_URL"}}],
            }
            path, config = write_config(tmp_path, bootstrap, partitions=1, alerting=alerting)
            [churn] = [p for p in demo_profiles(seed=0) if p.model == "churn"]
            publish_reference(bootstrap, {}, config.topics, churn)
            worker = start_worker(path, workers)
            worker.wait_ready()

            # Drifts after its first window. Two windows closed, the third half
            # full, their alerts delivered and snapshotted before the crash.
            simulator = ServingSimulator(["churn"], seed=7, drift_after_events=WINDOW)
            sent_ms = START_MS

            def stream(count: int) -> list[dict[str, Any]]:
                nonlocal sent_ms
                events = simulator.predictions(count, sent_ms, STEP_MS)
                sent_ms += count * STEP_MS
                send(bootstrap, config.topics.predictions, events)
                return events

            first = stream(1250)
            latest_results(bootstrap, config.topics.results, 2)
            wait_for(lambda: alerts_settled(worker), 60, "alert deliveries and their snapshot")
            delivered_before = len(slack.requests)
            generation_before = snapshot_generation(bootstrap, config.topics.state)
            committed_before = wait_for(
                lambda: committed(bootstrap, config.worker.group_id, config.topics.predictions),
                30,
                "a committed offset",
            )
            assert generation_before is not None
            first += stream(1000)

            # Kill it at once, while the worker is consuming those events.
            process = embedded.process
            assert process is not None
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
            embedded.stop()
            crashed_at = time.monotonic()
            time.sleep(1.0)  # down for a moment: the worker sees connections refused
            embedded = EmbeddedBroker(port=embedded.port, log_path=broker_log, storage=s3.storage)
            embedded.start()
            restarted_after = time.monotonic() - crashed_at
            # What the restarted broker read back from the bucket.
            generation_after = snapshot_generation(bootstrap, config.topics.state)
            committed_after = committed(
                bootstrap, config.worker.group_id, config.topics.predictions
            )
            assert generation_after is not None
            assert generation_after >= generation_before
            assert committed_after is not None
            assert committed_after >= committed_before

            second = stream(2250)
            produced = len(first) + len(second)
            closed = produced // WINDOW
            results = latest_results(bootstrap, config.topics.results, closed)
            in_results = sum(r["n_events"] for r in results.values())
            expected = expected_results(config, bootstrap, [churn], produced)
            wait_for(lambda: alerts_settled(worker), 60, "alert deliveries and their snapshot")

            audit = [orjson.loads(r.value) for r in read_all(bootstrap, config.topics.alerts)]
            by_key: dict[str, dict[str, Any]] = {}
            for transition in audit:
                # a replayed transition is republished identically, never differently
                key = transition["idempotency_key"]
                assert by_key.setdefault(key, transition) == transition
            announced = {k for k, t in by_key.items() if t["status"] in ("firing", "resolved")}
            delivered = Counter(slack_key(r) for r in slack.requests)
            print(
                f"broker killed -9 and back after {restarted_after:.1f} s: produced {produced}, "
                f"in results {in_results} ({len(results)} windows of {closed}); alerts "
                f"announced {len(announced)}, delivered {len(delivered)} ({delivered_before} "
                f"before the crash), duplicated "
                f"{sum(n - 1 for n in delivered.values())}; snapshot generation "
                f"{generation_before} -> {generation_after}, committed offset "
                f"{committed_before} -> {committed_after} across the restart; "
                f"{time.monotonic() - began:.0f} s in all"
            )
            assert len(results) == closed
            assert results == expected
            assert in_results == closed * WINDOW == produced
            assert worker.process is not None
            assert worker.process.poll() is None, "the worker died"
            assert announced, "the drift fired no alert"
            assert set(delivered) == announced
            assert all(n == 1 for n in delivered.values())
        finally:
            # Workers first: a worker whose broker is gone waits for it at shutdown.
            for started in workers:
                started.stop()
            embedded.stop()
