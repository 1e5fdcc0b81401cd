"""The alerting configuration: start-up errors name the field; sinks fail independently."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerting.dispatch import Delivery, Dispatcher
from alerting.sink_config import WebhookSinkConfig
from alerting.webhooks import WebhookSink
from schemas.alerts import AlertDeadLetter, AlertEvent
from tests.console import run
from tests.http_recorder import Reply, recording_server


def check(tmp_path: Path, alerting: dict[str, Any]) -> tuple[int, str]:
    path = tmp_path / "driftstream.yaml"
    path.write_text(yaml.safe_dump({"alerting": alerting}))
    result = run("check-config", path)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("alerting", "expected"),
    [
        (
            {"slack": [{"webhook_url": {"env": "DS_UNSET_SLACK_URL"}}]},
            "alerting.slack.0.webhook_url: environment variable DS_UNSET_SLACK_URL is unset",
        ),
        (
            {"links": {"grafana": "http://g/d?var-model={modle}"}},
            "link 'grafana': unknown placeholder {modle}",
        ),
        (
            {"rules": [{"kind": "feature_drift", "name": "x", "fire_after": 3, "of_last": 2}]},
            "of_last (2) must be >= fire_after (3)",
        ),
        (
            {"rules": [{"kind": "no_events", "name": "quiet"}]},
            "alerting.rules.0.no_events.after",
        ),
        (
            {"webhooks": [{"name": "audit", "url": "http://x/h", "secret": {"env": "S"}}]},
            "sink names must be unique and not audit or drift_log: audit",
        ),
    ],
)
def test_bad_alerting_config_fails_at_start_up_naming_the_field(
    tmp_path: Path, alerting: dict[str, Any], expected: str
) -> None:
    code, output = check(tmp_path, alerting)
    assert code != 0
    assert expected in output


def test_a_secret_file_is_read_and_never_printed(tmp_path: Path) -> None:
    secret = tmp_path / "slack-url"
    secret.write_text("http://127.0.0.1:9/services/SECRETPATH\n")
    code, output = check(tmp_path, {"slack": [{"webhook_url": {"file": str(secret)}}]})
    assert code == 0, output
    assert "SECRETPATH" not in output
    assert str(secret) in output


def event(sequence: int) -> AlertEvent:
    return AlertEvent(
        fingerprint="f",
        sequence=sequence,
        status="firing",
        previous_status="pending",
        rule="drift",
        kind="feature_drift",
        severity="critical",
        model="churn",
        summary="s",
        at="2026-11-23T10:00:00Z",
    )


def test_a_hanging_sink_delays_only_its_own_deliveries(monkeypatch: pytest.MonkeyPatch) -> None:
    """One sink's endpoint never answers; the other sink delivers everything meanwhile."""
    monkeypatch.setenv("DS_TEST_SECRET", "s")
    with recording_server(Reply(200, hold=60)) as hanging, recording_server() as healthy:

        def sink(name: str, url: str) -> WebhookSink:
            return WebhookSink(
                WebhookSinkConfig(
                    name=name, url=url, secret={"env": "DS_TEST_SECRET"}, timeout="60s"
                )
            )

        async def scenario() -> tuple[list[Delivery], list[AlertDeadLetter]]:
            done: list[Delivery] = []
            letters: list[AlertDeadLetter] = []
            finished = asyncio.Event()

            def on_done(delivery: Delivery) -> None:
                done.append(delivery)
                if len(done) == 3:
                    finished.set()

            async def dead_letter(letter: AlertDeadLetter) -> None:
                letters.append(letter)

            dispatcher = Dispatcher(
                [sink("hanging", f"{hanging.url}/h"), sink("healthy", f"{healthy.url}/h")],
                on_done,
                dead_letter,
            )
            dispatcher.start()
            for sequence in (1, 2, 3):
                dispatcher.submit(0, event(sequence), done=set())
            await asyncio.wait_for(finished.wait(), 30)
            depths = dispatcher.depths()
            await dispatcher.close()
            # the one in flight counts too: it is not delivered yet
            assert depths == {"hanging": 3, "healthy": 0}
            return done, letters

        done, letters = asyncio.run(scenario())
        assert [(d.sink, d.event.sequence, d.outcome) for d in done] == [
            ("healthy", 1, "delivered"),
            ("healthy", 2, "delivered"),
            ("healthy", 3, "delivered"),
        ]
        assert letters == []
        assert len(hanging.requests) == 1  # still waiting on the first
