"""Alerts end to end: a `driftstream run` worker, a real broker, local Slack and webhook servers."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from alerting.webhooks import verify_signature
from monitor.publishing import publish_reference
from monitor.simulation import CHURN, ServingSimulator, reference_frame
from monitor.values import FeatureKind
from tests.conftest import read_all
from tests.evidently_html import P_VALUE_METHODS, Column, check_entries, drift_entries
from tests.http_recorder import RecordedRequest, Reply, recording_server
from tests.worker_process import (
    WorkerProcess,
    alerts_settled,
    churn_reference,
    latest_results,
    send,
    start_worker,
    wait_for,
    write_config,
)

START_MS = 1_700_000_000_000
SECRET = "hook-secret-0123"


def slack_text(request: RecordedRequest) -> str:
    """Every text of a Slack message, flattened."""
    return orjson.dumps(request.json()).decode()


def test_one_firing_and_one_resolved_message_per_incident_across_a_kill(
    tmp_path: Path, broker: str, workers: list[WorkerProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack, a signed webhook, a dead sink, the audit topic, the drift log and reports."""
    with (
        recording_server() as slack,
        recording_server() as hook,
        recording_server(Reply(500, b"down")) as down,
    ):
        monkeypatch.setenv("DS_TEST_SLACK_URL", f"{slack.url}/services/T0/B0/SECRETPATH")
        monkeypatch.setenv("DS_TEST_HOOK_SECRET", SECRET)
        alerting: dict[str, Any] = {
            "rules": [
                {"kind": "feature_drift", "name": "drift", "fire_after": 1, "resolve_after": 1}
            ],
            "links": {"grafana": "http://grafana.local/d/driftstream?var-model={model}"},
            "slack": [{"webhook_url": {"env": "DS_TEST_SLACK_URL"}}],
            "webhooks": [
                {
                    "name": "retrain",
                    "url": f"{hook.url}/retrain",
                    "secret": {"env": "DS_TEST_HOOK_SECRET"},
                    "statuses": ["firing", "resolved"],
                },
                {
                    "name": "down",
                    "url": f"{down.url}/retrain?token=abc",
                    "secret": {"env": "DS_TEST_HOOK_SECRET"},
                    "max_attempts": 2,
                    "delivery_timeout": "0s",
                    "backoff_initial": "10ms",
                },
            ],
            "drift_log": str(tmp_path / "drift.jsonl"),
            "reports_dir": str(tmp_path / "reports"),
        }
        path, config = write_config(tmp_path, broker, alerting=alerting)
        publish_reference(broker, {}, config.topics, churn_reference())
        worker = start_worker(path, workers)
        worker.wait_ready()

        simulator = ServingSimulator([CHURN], seed=3, drift_after_events=1000)
        drifted = simulator.drifted_features(CHURN.name)
        first = simulator.predictions(2000, START_MS, 100)
        send(broker, config.topics.predictions, first)
        latest_results(broker, config.topics.results, 4)
        slack.wait_for_count(len(drifted))
        wait_for(lambda: alerts_settled(worker), 60, "deliveries to settle")

        worker.kill()
        worker = start_worker(path, workers)
        worker.wait_ready()
        still_drifting = simulator.predictions(500, START_MS + 2000 * 100, 100)
        healthy = ServingSimulator([CHURN], seed=4).predictions(1000, START_MS + 2500 * 100, 100)
        send(broker, config.topics.predictions, still_drifting + healthy)
        latest_results(broker, config.topics.results, 7)
        slack.wait_for_count(2 * len(drifted))
        wait_for(lambda: alerts_settled(worker), 60, "deliveries to settle")

        # Slack: exactly one firing and one resolved message per drifted feature.
        announced: Counter[tuple[str, str]] = Counter()
        for request in slack.requests:
            assert request.path == "/services/T0/B0/SECRETPATH"
            text = slack_text(request)
            status = "resolved" if "Resolved" in text else "firing"
            features = [f for f in drifted if f in text]
            assert len(features) == 1, text
            announced[status, features[0]] += 1
        assert announced == Counter(
            {(status, f): 1 for status in ("firing", "resolved") for f in drifted}
        )
        firing_texts = [slack_text(r) for r in slack.requests if "Resolved" not in slack_text(r)]
        assert all(
            "http://grafana.local/d/driftstream?var-model=churn" in text for text in firing_texts
        )

        # Each firing message links the report of its feature in the window that fired
        # (window 2: events 1000-1499, all drifted) against the reference.
        reports = sorted((tmp_path / "reports").glob("*.html"))
        assert len(reports) == len(drifted)
        linked = {}
        for text in firing_texts:
            [feature] = [f for f in drifted if f in text]
            [url] = set(re.findall(r"file://(/[^\"|>\s]+\.html)", text))
            linked[feature] = Path(url)
        assert sorted(linked.values()) == reports
        reference = reference_frame(CHURN, 20_000, seed=0)  # what churn_reference() profiles
        window = first[1000:1500]
        for feature, report in linked.items():
            assert report.name.startswith(f"{CHURN.name}-{CHURN.version}-window2-")
            values = [event["features"][feature] for event in window]
            if CHURN.kinds[feature] is FeatureKind.CATEGORICAL:
                known = set(reference[feature])
                # Values the reference never saw are the profile's "other" bin.
                column = Column(
                    reference[feature].tolist(),
                    [v if v in known else "__other__" for v in values],
                    categorical=True,
                )
            else:
                column = Column(reference[feature].tolist(), values, categorical=False)
            entries = drift_entries(report.read_text())
            check_entries(entries, {feature: column})
            # The p-value test (KS or chi-square) sees the drift that fired the alert.
            assert [e.drift_detected for e in entries if e.method in P_VALUE_METHODS] == [True]

        # The retraining webhook: signed, idempotent, one request per transition.
        bodies = []
        for request in hook.requests:
            timestamp = request.headers["x-driftstream-timestamp"]
            signature = request.headers["x-driftstream-signature"]
            expected = hmac.new(
                SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
            ).hexdigest()
            assert signature == f"sha256={expected}"
            assert verify_signature(
                SECRET.encode(), timestamp, request.body, signature, now=int(timestamp)
            )
            body = request.json()
            assert request.headers["idempotency-key"] == body["idempotency_key"]
            bodies.append(body)
        assert sorted((b["status"], b["feature"]) for b in bodies) == sorted(
            (status, f) for status in ("firing", "resolved") for f in drifted
        )
        for body in bodies:
            assert body["model"] == CHURN.name
            assert body["model_version"] == CHURN.version
            if body["status"] == "firing":
                assert body["window"]["id"] == 2
                (breach,) = body["features"]
                assert breach["feature"] == body["feature"]
                assert breach["severity"] in {"warning", "critical"}
                scores = [t for t in breach["tests"].values() if t["severity"] != "ok"]
                assert scores
                assert all(t["score"] >= t["warning"] for t in scores)

        # The dead sink: two attempts per firing transition, then the alert dead-letter topic.
        assert len(down.requests) == 2 * len(drifted)
        letters = [orjson.loads(r.value) for r in read_all(broker, config.topics.alert_deadletter)]
        assert sorted(letter["alert"]["feature"] for letter in letters) == sorted(drifted)
        for letter in letters:
            assert letter["sink"] == "down"
            assert letter["attempts"] == 2
            assert "HTTP 500" in letter["error"]
            assert "token=abc" not in letter["error"]

        # The audit log and the drift log hold every transition once.
        audit = [orjson.loads(r.value) for r in read_all(broker, config.topics.alerts)]
        log = [orjson.loads(line) for line in (tmp_path / "drift.jsonl").read_text().splitlines()]
        for transitions in (audit, log):
            keys = [t["idempotency_key"] for t in transitions]
            assert len(keys) == len(set(keys)) == 2 * len(drifted)
            assert Counter(t["status"] for t in transitions) == {
                "firing": len(drifted),
                "resolved": len(drifted),
            }
        for worker_log in (worker.log(), workers[0].log()):
            assert SECRET not in worker_log
            assert "SECRETPATH" not in worker_log
            assert "token=abc" not in worker_log
