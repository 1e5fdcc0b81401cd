"""Slack sink against real local HTTP servers: messages, both posting modes, retries, config."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from alerting.sink import DeliveryFailedError, Sink
from alerting.sink_config import SlackSinkConfig
from alerting.slack import (
    FIELD_LIMIT,
    HEADER_LIMIT,
    SECTION_LIMIT,
    SlackSink,
    slack_message,
)
from schemas.alerts import AlertEvent
from tests.http_recorder import Recorder, Reply, recording_server

WEBHOOK_ENV = "DRIFTSTREAM_TEST_SLACK_WEBHOOK"
WEBHOOK_PATH = "/services/T0001/B0002/hook-secret-9f3a7c"
TOKEN = "xoxb-test-4c1d-secret-token"
CHANNEL = "#ml-alerts"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy")
API_OK = Reply(200, orjson.dumps({"ok": True}), {"Content-Type": "application/json"})

FIRING: dict[str, Any] = {
    "fingerprint": "d1d4b1bd8e1b5d3a",
    "sequence": 2,
    "status": "firing",
    "previous_status": "pending",
    "rule": "drift",
    "kind": "feature_drift",
    "severity": "critical",
    "model": "churn",
    "model_version": "7",
    "summary": "churn 7: 2 features drifted",
    "at": "2026-11-23T10:00:00Z",
    "incident_started_at": "2026-11-23T09:55:00Z",
    "window": {"kind": "count", "id": 3, "start_event": 3000, "end_event": 4000},
    "features": [
        {
            "feature": "tenure",
            "severity": "warning",
            "tests": {
                "wasserstein": {
                    "score": 0.062,
                    "warning": 0.05,
                    "critical": 0.2,
                    "severity": "warning",
                }
            },
        },
        {
            "feature": "plan",
            "severity": "critical",
            "tests": {
                "psi": {"score": 0.412, "warning": 0.1, "critical": 0.25, "severity": "critical"},
                "chi2": {
                    "score": 0.18,
                    "warning": 0.1,
                    "critical": 0.3,
                    "p_value": 0.0001,
                    "severity": "warning",
                },
            },
        },
    ],
    "links": {
        "Grafana dashboard": "https://grafana.example/d/churn?var-version=7&from=now-6h",
        "Evidently report": "https://reports.example/churn/7/3.html",
        "Runbook": "https://wiki.example/runbooks/drift",
    },
}


def alert(**changes: Any) -> AlertEvent:
    """The firing feature-drift alert above, with ``changes``."""
    return AlertEvent.model_validate({**FIRING, **changes})


def breach(name: str, tests: int = 1) -> dict[str, Any]:
    """A critical feature breach with ``tests`` breaching tests."""
    score = {"score": 0.5, "warning": 0.1, "critical": 0.25, "severity": "critical"}
    return {
        "feature": name,
        "severity": "critical",
        "tests": {f"t{i}": score for i in range(tests)},
    }


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proxy settings of the machine running the tests must not reach the loopback servers."""
    for variable in PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


def webhook_sink(monkeypatch: pytest.MonkeyPatch, rec: Recorder, **settings: Any) -> SlackSink:
    """A webhook-mode sink posting to ``rec``, its URL in the environment."""
    monkeypatch.setenv(WEBHOOK_ENV, rec.url + WEBHOOK_PATH)
    config = {"webhook_url": {"env": WEBHOOK_ENV}, "backoff": "10ms", **settings}
    return SlackSink(SlackSinkConfig.model_validate(config))


def token_sink(tmp_path: Path, rec: Recorder, **settings: Any) -> SlackSink:
    """A bot-token sink posting to ``rec``'s Web API, its token in a file."""
    token_file = tmp_path / "slack-token"
    token_file.write_text(TOKEN + "\n")
    config = {
        "token": {"file": str(token_file)},
        "channel": CHANNEL,
        "base_url": f"{rec.url}/api/",
        "backoff": "10ms",
        **settings,
    }
    return SlackSink(SlackSinkConfig.model_validate(config))


def deliver(sink: Sink, event: AlertEvent | None = None) -> int:
    """Deliver ``event`` (the firing alert) in a fresh event loop, then close the sink."""

    async def run() -> int:
        try:
            return await sink.deliver(event or alert())
        finally:
            await sink.close()

    return asyncio.run(run())


def section_texts(blocks: list[dict[str, Any]]) -> list[str]:
    """The text of every section block."""
    return [block["text"]["text"] for block in blocks if block["type"] == "section"]


def table_of(blocks: list[dict[str, Any]]) -> str:
    """The section holding the drifted-features table."""
    [table] = [text for text in section_texts(blocks) if text.startswith("*Drifted features")]
    return table


def test_webhook_posts_the_firing_message(monkeypatch: pytest.MonkeyPatch) -> None:
    with recording_server(Reply(200, b"ok")) as rec:
        attempts = deliver(webhook_sink(monkeypatch, rec))
    [request] = rec.requests
    assert attempts == 1
    assert (request.method, request.path) == ("POST", WEBHOOK_PATH)
    assert request.headers["content-type"].startswith("application/json")
    body = request.json()
    assert body["text"] == "[CRITICAL] churn 7: 2 features drifted"
    assert (body["unfurl_links"], body["unfurl_media"]) == (False, False)
    blocks = body["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": ":rotating_light: [CRITICAL] feature drift — churn v7",
            "emoji": True,
        },
    }
    facts = {field["text"] for field in blocks[1]["fields"]}
    assert {
        "*Model*\nchurn",
        "*Version*\n7",
        "*Rule*\ndrift",
        "*Severity*\ncritical",
        "*Window*\ncount #3 · events [3000, 4000)",
        "*Since*\n2026-11-23 09:55:00 UTC",
    } <= facts
    # Critical features first; each test's score against the threshold it crossed.
    assert table_of(blocks) == (
        "*Drifted features (2)*\n"
        "```\n"
        "plan    psi          0.412 ≥ 0.250 (crit)\n"
        "        chi2         0.180 ≥ 0.100 (warn)\n"
        "tenure  wasserstein  0.062 ≥ 0.050 (warn)\n"
        "```"
    )
    assert blocks[-1] == {
        "type": "context",
        "elements": [
            {
                "type": "mrkdwn",
                "text": "<https://grafana.example/d/churn?var-version=7&amp;from=now-6h"
                "|Grafana dashboard> · <https://reports.example/churn/7/3.html|Evidently report>"
                " · <https://wiki.example/runbooks/drift|Runbook>",
            },
            {"type": "mrkdwn", "text": f"alert `{alert().idempotency_key}`"},
        ],
    }


def test_the_table_lists_at_most_max_features(monkeypatch: pytest.MonkeyPatch) -> None:
    features = [breach(f"feature_{i}") for i in range(8)]
    with recording_server() as rec:
        deliver(webhook_sink(monkeypatch, rec, max_features=3), alert(features=features))
    table = table_of(rec.requests[0].json()["blocks"])
    listed = [line.split()[0] for line in table.split("\n") if line.startswith("feature_")]
    assert listed == ["feature_0", "feature_1", "feature_2"]
    assert table.endswith("```\n_…and 5 more_")


def test_texts_stay_within_slack_limits() -> None:
    """Long names, many features and tests, many links: every text is cut safely."""
    event = alert(
        model="m" * 300,
        summary="&" * 1000,
        features=[breach(f"{i:03d}" + "f" * 60, tests=6) for i in range(200)],
        links={f"link {i}": "https://example.com/" + "x" * 400 for i in range(30)},
    )
    text, blocks = slack_message(event, max_features=200)
    assert len(text) <= SECTION_LIMIT
    assert len(blocks[0]["text"]["text"]) <= HEADER_LIMIT
    assert all(len(field["text"]) <= FIELD_LIMIT for field in blocks[1]["fields"])
    assert all(len(section) <= SECTION_LIMIT for section in section_texts(blocks))
    # Cut before an escape that would not fit whole.
    assert blocks[1]["text"]["text"] == "&amp;" * 599 + "…"
    table = table_of(blocks)
    assert table.count("```") == 2
    listed = sum(line[:1].isdigit() for line in table.split("\n"))
    assert 0 < listed < 200
    assert table.endswith(f"_…and {200 - listed} more_")
    assert "f" * FIELD_LIMIT not in table  # long names are shortened
    links = blocks[-1]["elements"][0]["text"]
    assert len(links) <= SECTION_LIMIT
    assert links.count("<https://example.com/") == 6  # the seventh would not fit
    assert links.endswith("|link 5>")


def test_bot_token_mode_posts_with_chat_post_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recording_server(API_OK) as rec:
        sink: Sink = token_sink(tmp_path, rec)
        attempts = deliver(sink)
    [request] = rec.requests
    assert attempts == 1
    assert (request.method, request.path) == ("POST", "/api/chat.postMessage")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    body = request.json()
    assert body["channel"] == CHANNEL
    assert body["text"] == "[CRITICAL] churn 7: 2 features drifted"
    assert (
        body["blocks"][0]["text"]["text"] == ":rotating_light: [CRITICAL] feature drift — churn v7"
    )
    assert "plan    psi          0.412 ≥ 0.250 (crit)" in table_of(body["blocks"])


def test_resolved_message_says_since_when_without_a_table() -> None:
    event = alert(
        status="resolved",
        previous_status="firing",
        summary="churn 7: drift resolved",
        at="2026-11-23T10:40:00Z",
        incident_started_at="2026-11-23T09:20:00Z",
        window={
            "kind": "time",
            "id": 1795946100000,
            "start": "2026-11-23T10:35:00Z",
            "end": "2026-11-23T10:40:00Z",
        },
    )
    text, blocks = slack_message(event, max_features=10)
    assert text == "Resolved: churn 7: drift resolved"
    assert blocks[0]["text"]["text"] == ":white_check_mark: Resolved — feature drift — churn v7"
    facts = [field["text"] for field in blocks[1]["fields"]]
    assert facts[-3:] == [
        "*Window*\ntime #1795946100000 · [2026-11-23 10:35:00 UTC, 2026-11-23 10:40:00 UTC)",
        "*Firing since*\n2026-11-23 09:20:00 UTC",
        "*Resolved*\n2026-11-23 10:40:00 UTC (after 1h 20m)",
    ]
    assert not any("```" in section for section in section_texts(blocks))
    assert blocks[-1]["type"] == "context"  # the dashboard and report still help


def test_rules_without_features_show_value_against_threshold() -> None:
    performance = alert(
        status="pending",
        rule="accuracy",
        kind="performance",
        severity="warning",
        summary="churn 7: accuracy 0.71 < 0.80",
        value=0.71,
        threshold=0.8,
        features=[],
        links={},
    )
    text, blocks = slack_message(performance, max_features=10)
    assert text == "Pending [WARNING] churn 7: accuracy 0.71 &lt; 0.80"
    assert blocks[0]["text"]["text"] == (
        ":hourglass_flowing_sand: Pending [WARNING] performance — churn v7"
    )
    assert "*Value*\n0.710 (threshold 0.800)" in [field["text"] for field in blocks[1]["fields"]]
    assert [block["type"] for block in blocks] == ["header", "section", "context"]

    silence = alert(
        rule="silence", kind="no_events", model_version=None, window=None, value=930, threshold=600
    )
    _, blocks = slack_message(silence, max_features=10)
    assert blocks[0]["text"]["text"] == ":rotating_light: [CRITICAL] no events — churn"
    facts = [field["text"] for field in blocks[1]["fields"]]
    assert "*Value*\n930 s (threshold 600 s)" in facts
    assert not any(fact.startswith(("*Window*", "*Version*")) for fact in facts)


def test_429_waits_for_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    with recording_server(Reply(429, b"rate_limited", {"Retry-After": "1"}), Reply(200)) as rec:
        attempts = deliver(webhook_sink(monkeypatch, rec))
    first, second = rec.requests
    assert attempts == 2
    assert second.received_at - first.received_at >= 1.0
    assert second.body == first.body


@pytest.mark.parametrize("mode", ["webhook", "token"])
def test_server_errors_exhaust_max_attempts_without_leaking_secrets(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recording_server(Reply(500, b"oops")) as rec:
        if mode == "webhook":
            sink = webhook_sink(monkeypatch, rec, max_attempts=3)
        else:
            sink = token_sink(tmp_path, rec, max_attempts=3)
        with pytest.raises(DeliveryFailedError, match="HTTP 500 Internal Server Error") as failure:
            deliver(sink)
    assert len(rec.requests) == 3
    assert failure.value.attempts == 3
    assert failure.value.__context__ is None  # aiohttp's errors name the URL
    message = str(failure.value)
    assert message.endswith("after 3 attempts")
    for secret in (TOKEN, WEBHOOK_PATH, "hook-secret", rec.url):
        assert secret not in message
    expected = (
        f"Slack incoming webhook (from environment variable {WEBHOOK_ENV})"
        if mode == "webhook"
        else f"Slack chat.postMessage to {CHANNEL} (token from file {tmp_path / 'slack-token'})"
    )
    assert message.startswith(expected + ": ")


def test_web_api_refusal_fails_at_once(tmp_path: Path) -> None:
    refusal = orjson.dumps({"ok": False, "error": "channel_not_found"})
    with (
        recording_server(Reply(200, refusal, {"Content-Type": "application/json"})) as rec,
        pytest.raises(DeliveryFailedError, match="channel_not_found") as failure,
    ):
        deliver(token_sink(tmp_path, rec))
    assert len(rec.requests) == 1
    assert failure.value.attempts == 1
    assert str(failure.value).endswith(
        "Slack API error channel_not_found (HTTP 200) after 1 attempt"
    )


def test_webhook_refusal_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        recording_server(Reply(404, b"no_service")) as rec,
        pytest.raises(DeliveryFailedError, match=r"HTTP 404 no_service after 1 attempt$"),
    ):
        deliver(webhook_sink(monkeypatch, rec))
    assert len(rec.requests) == 1


def test_timeouts_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    with recording_server(Reply(200, hold=30)) as rec:
        sink = webhook_sink(monkeypatch, rec, timeout="200ms", max_attempts=2)
        with pytest.raises(DeliveryFailedError, match=r"no answer within 0\.2s after 2 attempts"):
            deliver(sink)
        assert len(rec.requests) == 2


def test_connection_errors_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    with recording_server() as rec:
        pass  # closed: its port now refuses connections
    with pytest.raises(
        DeliveryFailedError, match=r"connection failed \(.+\) after 2 attempts"
    ) as failure:
        deliver(webhook_sink(monkeypatch, rec, max_attempts=2))
    assert failure.value.attempts == 2


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", None])
def test_proxy_variables_apply_unless_no_proxy_excludes_the_host(
    no_proxy: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recording_server() as proxy, recording_server() as rec:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        if no_proxy is not None:
            monkeypatch.setenv("NO_PROXY", no_proxy)
        deliver(webhook_sink(monkeypatch, rec))
    if no_proxy is not None:
        assert (len(rec.requests), len(proxy.requests)) == (1, 0)
    else:
        assert (len(rec.requests), len(proxy.requests)) == (0, 1)
        assert proxy.requests[0].path == rec.url + WEBHOOK_PATH  # a proxy request


def test_accepts_filters_by_status_and_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WEBHOOK_ENV, "https://hooks.slack.example/services/T/B/x")
    default = SlackSink(SlackSinkConfig.model_validate({"webhook_url": {"env": WEBHOOK_ENV}}))
    assert default.name == "slack"
    assert default.accepts(alert())
    assert default.accepts(alert(status="resolved", previous_status="firing"))
    assert not default.accepts(alert(status="pending", previous_status="inactive"))
    only_drift = SlackSink(
        SlackSinkConfig.model_validate(
            {
                "name": "oncall",
                "webhook_url": {"env": WEBHOOK_ENV},
                "statuses": ["pending", "firing"],
                "rules": ["drift"],
            }
        )
    )
    assert only_drift.name == "oncall"
    assert only_drift.accepts(alert(status="pending", previous_status="inactive"))
    assert not only_drift.accepts(alert(rule="accuracy"))
    assert not only_drift.accepts(alert(status="resolved", previous_status="firing"))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"webhook_url": {"env": "A"}, "token": {"env": "B"}, "channel": "C1"},
            r"set webhook_url \(incoming webhook\) or token and channel .*, not both",
        ),
        ({}, r"set webhook_url \(incoming webhook\) or token and channel \(chat.postMessage\)"),
        ({"token": {"env": "B"}}, "token needs channel"),
        ({"webhook_url": {"env": "A"}, "channel": "C1"}, "channel and base_url apply only with"),
        (
            {"webhook_url": {"env": "A"}, "base_url": "http://x/api/"},
            "channel and base_url apply only with token",
        ),
        ({"webhook_url": {"env": "A"}, "max_attempts": 0}, "max_attempts"),
        ({"webhook_url": {"env": "A"}, "timeout": "0s"}, "timeout"),
        ({"webhook_url": {"env": "A"}, "statuses": []}, "statuses"),
        ({"webhook_url": {"env": "A"}, "url": "x"}, "url"),
    ],
)
def test_config_errors(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SlackSinkConfig.model_validate(settings)


def test_missing_secrets_stop_construction_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    webhook = SlackSinkConfig.model_validate({"webhook_url": {"env": WEBHOOK_ENV}})
    with pytest.raises(
        ValueError, match=f"'slack': webhook_url: environment variable {WEBHOOK_ENV}"
    ):
        SlackSink(webhook)
    token = SlackSinkConfig.model_validate(
        {"token": {"file": str(tmp_path / "absent")}, "channel": CHANNEL}
    )
    with pytest.raises(ValueError, match=r"'slack': token: cannot read file .*absent"):
        SlackSink(token)
