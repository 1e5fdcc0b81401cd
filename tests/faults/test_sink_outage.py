"""Drill: alerts survive an outage of Slack and a signed webhook, and a kill -9 within it.

Both receivers answer 503 while drift fires, then refuse connections while
it resolves, fires and resolves again; the worker is killed -9 once in the
middle. Windows keep closing throughout. When the receivers come back,
every firing and resolved transition of the alerts topic reaches each of
them exactly once (by idempotency key), in order per alert.
"""

from __future__ import annotations

import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from alerting.webhooks import verify_signature
from monitor.publishing import publish_reference
from monitor.simulation import CHURN, ServingSimulator
from tests.conftest import read_all
from tests.http_recorder import RecordedRequest, Reply, recording_server
from tests.worker_process import (
    WorkerProcess,
    alerts_settled,
    churn_reference,
    latest_results,
    send,
    slack_key,
    start_worker,
    wait_for,
    write_config,
)

START_MS = 1_700_000_000_000
SECRET = "drill-secret-0123"
WINDOW = 500
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sink_gauges(worker: WorkerProcess) -> dict[tuple[str, str], float]:
    """The worker's per-sink gauges now: (metric, sink) -> value."""
    with DIRECT.open(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, sample.labels["sink"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in ("driftstream_sink_queue", "driftstream_sink_oldest_undelivered_seconds")
    }


def webhook_key(request: RecordedRequest) -> str:
    timestamp = request.headers["x-driftstream-timestamp"]
    assert verify_signature(
        SECRET.encode(),
        timestamp,
        request.body,
        request.headers["x-driftstream-signature"],
        now=int(timestamp),
    )
    key: str = request.json()["idempotency_key"]
    assert request.headers["idempotency-key"] == key
    return key


def test_transitions_survive_a_receiver_outage_and_a_kill(
    tmp_path: Path, broker: str, workers: list[WorkerProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        recording_server(Reply(503, b"down")) as slack,
        recording_server(Reply(503, b"down")) as hook,
    ):
        slack_port, hook_port = (int(r.url.rsplit(":", 1)[1]) for r in (slack, hook))
        monkeypatch.setenv("DS_DRILL_SLACK_URL", f"{slack.url}/services/T0/B0/X")
        monkeypatch.setenv("DS_DRILL_SECRET", SECRET)
        quick = {"max_attempts": 2, "backoff_max": "200ms"}
        alerting: dict[str, Any] = {
            "rules": [
                {
                    "kind": "feature_drift",
                    "name": "drift",
                    "fire_after": 1,
                    "resolve_after": 1,
                    "cooldown": "0s",
                }
            ],
            "slack": [{"webhook_url": {"env": "DS_DRILL_SLACK_URL"}, "backoff": "50ms", **quick}],
            "webhooks": [
                {
                    "name": "retrain",
                    "url": f"{hook.url}/retrain",
                    "secret": {"env": "DS_DRILL_SECRET"},
                    "statuses": ["firing", "resolved"],
                    "backoff_initial": "50ms",
                    **quick,
                }
            ],
        }
        path, config = write_config(tmp_path, broker, alerting=alerting)
        publish_reference(broker, {}, config.topics, churn_reference())
        worker = start_worker(path, workers)
        worker.wait_ready()

        drifting = ServingSimulator([CHURN], seed=3, drift_after_events=0)
        healthy = ServingSimulator([CHURN], seed=4)
        sent = 0

        def play(simulator: ServingSimulator, windows: int) -> None:
            nonlocal sent
            events = simulator.predictions(windows * WINDOW, START_MS + sent * 100, 100)
            send(broker, config.topics.predictions, events)
            sent += len(events)

        drifted = drifting.drifted_features(CHURN.name)

        # 1. Receivers answer 503 while drift fires.
        play(drifting, 2)
        latest_results(broker, config.topics.results, 2)
        slack.wait_for_count(2)
        hook.wait_for_count(2)
        assert {r.path for r in slack.requests} == {"/services/T0/B0/X"}

    # 2. Receivers refuse connections: drift resolves, the worker is killed
    #    -9, drift fires and resolves again; windows go on closing.
    play(healthy, 1)
    latest_results(broker, config.topics.results, 3)
    wait_for(lambda: not worker.get("/alerts")[1]["unsnapshotted_partitions"], 30, "a snapshot")
    gauges = sink_gauges(worker)
    for sink in ("slack", "retrain"):
        assert gauges["driftstream_sink_queue", sink] >= 3
        assert gauges["driftstream_sink_oldest_undelivered_seconds", sink] > 0
    worker.kill()
    worker = start_worker(path, workers)
    worker.wait_ready()
    play(drifting, 1)
    play(healthy, 1)
    results = latest_results(broker, config.topics.results, 5)
    by_window = sorted(results.values(), key=lambda r: int(r["window"]["id"]))
    assert [int(r["window"]["id"]) for r in by_window] == [0, 1, 2, 3, 4]
    assert [set(r["drifted_features"]) >= drifted for r in by_window] == [
        True,
        True,
        False,
        True,
        False,
    ]
    assert not alerts_settled(worker)

    # 3. The receivers come back on the same ports.
    # The alerts topic (the audit sink, up all along) has every transition:
    # each drifted feature fired, resolved, fired and resolved again.
    def announced() -> list[dict[str, Any]] | None:
        audit = [orjson.loads(r.value) for r in read_all(broker, config.topics.alerts)]
        shown = [t for t in audit if t["status"] in ("firing", "resolved")]
        by_feature = Counter(t["feature"] for t in shown)
        return shown if by_feature == {feature: 4 for feature in drifted} else None

    expected = wait_for(announced, 30, "4 firing/resolved transitions per drifted feature")
    expected_keys = {t["idempotency_key"] for t in expected}
    assert len(expected_keys) == len(expected)
    during_outage = {"slack": len(slack.requests), "retrain": len(hook.requests)}
    with (
        recording_server(Reply(200, b"ok"), port=slack_port, recorder=slack),
        recording_server(Reply(200, b"ok"), port=hook_port, recorder=hook),
    ):
        wait_for(lambda: alerts_settled(worker), 60, "every transition delivered and snapshotted")
        delivered = {
            "slack": [slack_key(r) for r in slack.requests[during_outage["slack"] :]],
            "retrain": [webhook_key(r) for r in hook.requests[during_outage["retrain"] :]],
        }
    letters = read_all(broker, config.topics.alert_deadletter, timeout=5)

    sequence = {t["idempotency_key"]: (t["fingerprint"], t["sequence"]) for t in expected}
    for sink, keys in delivered.items():
        counts = Counter(keys)
        duplicated = sum(n - 1 for n in counts.values())
        print(
            f"{sink}: expected {len(expected_keys)}, delivered {len(counts)}, "
            f"duplicated {duplicated}, attempts during the outage {during_outage[sink]}"
        )
        assert set(counts) == expected_keys
        assert duplicated == 0
        # in order per alert: each fingerprint's sequences arrive increasing
        arrived: defaultdict[str, list[int]] = defaultdict(list)
        for key in keys:
            fingerprint, number = sequence[key]
            arrived[fingerprint].append(number)
        assert all(numbers == sorted(numbers) for numbers in arrived.values())
    assert letters == []
    print(
        f"produced {sent} predictions; {len(results)} windows closed during the outage; "
        f"0 alert dead letters"
    )
