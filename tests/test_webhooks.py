"""Webhook sink against real local HTTP servers: payloads, signatures, retries, presets."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from alerting.sink import DeliveryFailedError
from alerting.sink_config import WebhookSinkConfig
from alerting.webhooks import (
    WebhookSink,
    build_request,
    sign,
    verify_signature,
)
from schemas.alerts import AlertEvent
from tests.http_recorder import RecordedRequest, Reply, recording_server

SECRET = "whsec-3f9a1c-signing-key"
SECRET_ENV = "DRIFTSTREAM_TEST_WEBHOOK_SECRET"
TOKEN = "ghp-or-airflow-token-7c21"
TOKEN_ENV = "DRIFTSTREAM_TEST_WEBHOOK_TOKEN"
PASSWORD = "airflow-password-0d4e"
PASSWORD_ENV = "DRIFTSTREAM_TEST_AIRFLOW_PASSWORD"

EVENT = AlertEvent(
    fingerprint="d1d4b1bd8e1b5d3a",
    sequence=2,
    status="firing",
    previous_status="pending",
    rule="drift",
    kind="feature_drift",
    severity="critical",
    model="churn",
    model_version="7",
    feature="plan",
    summary="churn 7: plan drifted (psi 0.41 >= 0.25)",
    at="2026-11-23T10:00:00Z",
)
ALERT = EVENT.model_dump(mode="json", exclude_none=True)


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sinks' secrets, in the environment as deployments provide them."""
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)


def make_config(url: str, **settings: Any) -> WebhookSinkConfig:
    """A generic signed sink with tiny backoffs, unless ``settings`` say otherwise."""
    return WebhookSinkConfig.model_validate(
        {
            "name": "retrain",
            "url": url,
            "secret": {"env": SECRET_ENV},
            "backoff_initial": "10ms",
            "backoff_max": "50ms",
            **settings,
        }
    )


def airflow_config(url: str, **settings: Any) -> WebhookSinkConfig:
    """An Airflow sink with basic authentication."""
    return make_config(
        url,
        preset="airflow",
        secret=None,
        dag_id="retrain_churn",
        username="driftstream",
        password={"env": PASSWORD_ENV},
        **settings,
    )


def deliver(config: WebhookSinkConfig, event: AlertEvent = EVENT) -> int:
    """Deliver ``event`` through a fresh sink, closing it afterwards."""

    async def run() -> int:
        sink = WebhookSink(config, rng=random.Random(7))
        try:
            return await sink.deliver(event)
        finally:
            await sink.close()

    return asyncio.run(run())


def assert_signed(request: RecordedRequest, secret: str = SECRET) -> None:
    """The request's signature is the HMAC of its timestamp and body, recomputed here."""
    timestamp = request.headers["x-driftstream-timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert request.headers["x-driftstream-signature"] == f"sha256={expected}"
    assert verify_signature(
        secret.encode(),
        timestamp,
        request.body,
        request.headers["x-driftstream-signature"],
        now=time.time(),
    )


def test_generic_posts_the_event_signed() -> None:
    with recording_server(Reply(200)) as rec:
        attempts = deliver(make_config(f"{rec.url}/hooks/retrain?team=ml"))
        [request] = rec.wait_for_count(1)
    assert attempts == 1
    assert request.method == "POST"
    assert request.path == "/hooks/retrain?team=ml"
    assert request.body == EVENT.to_json()
    assert request.json() == ALERT
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "driftstream"
    assert request.headers["idempotency-key"] == "d1d4b1bd8e1b5d3a:2"
    assert "authorization" not in request.headers
    assert_signed(request)


def test_secret_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "webhook-key"
    key_file.write_text("key-from-a-file\n")
    with recording_server(Reply(200)) as rec:
        deliver(make_config(rec.url, secret={"file": str(key_file)}))
        [request] = rec.wait_for_count(1)
    assert_signed(request, secret="key-from-a-file")


def test_retries_server_errors_then_succeeds() -> None:
    with recording_server(Reply(500), Reply(502), Reply(200)) as rec:
        attempts = deliver(make_config(rec.url))
        requests = rec.wait_for_count(3)
    assert attempts == 3
    assert len(requests) == 3
    assert {r.headers["idempotency-key"] for r in requests} == {"d1d4b1bd8e1b5d3a:2"}
    assert {r.body for r in requests} == {EVENT.to_json()}
    for request in requests:
        assert_signed(request)


def test_retries_after_a_timeout() -> None:
    with recording_server(Reply(200, hold=5), Reply(200)) as rec:
        attempts = deliver(make_config(rec.url, timeout="0.2s"))
        requests = rec.wait_for_count(2)
    assert attempts == 2
    assert len(requests) == 2


def test_429_waits_for_retry_after() -> None:
    with recording_server(Reply(429, headers={"Retry-After": "1"}), Reply(200)) as rec:
        attempts = deliver(make_config(rec.url, backoff_max="5s"))
        first, second = rec.wait_for_count(2)
    assert attempts == 2
    assert second.received_at - first.received_at >= 1.0


def test_gives_up_after_max_attempts_without_leaking_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="driftstream.alerting")
    with recording_server(Reply(503)) as rec:
        config = make_config(f"{rec.url}/hook?token=query-token-5b8e", max_attempts=3)
        with pytest.raises(DeliveryFailedError) as failed:
            deliver(config)
        assert len(rec.requests) == 3
    message = str(failed.value)
    assert failed.value.attempts == 3
    assert message == f"POST {rec.url}/hook: HTTP 503 Service Unavailable after 3 attempts"
    warnings = [r.getMessage() for r in caplog.records if r.name == "driftstream.alerting"]
    assert len(warnings) == 2
    for text in [message, *warnings]:
        assert SECRET not in text
        assert "query-token" not in text


def test_client_error_fails_at_once() -> None:
    with recording_server(Reply(400)) as rec:
        with pytest.raises(
            DeliveryFailedError, match=r"HTTP 400 Bad Request after 1 attempt$"
        ) as failed:
            deliver(make_config(rec.url))
        assert len(rec.requests) == 1
    assert failed.value.attempts == 1


def test_connection_errors_are_retried() -> None:
    with recording_server() as rec:
        url = rec.url  # nothing listens here once the server is gone
    with pytest.raises(
        DeliveryFailedError, match=r"connection failed .* after 2 attempts"
    ) as failed:
        deliver(make_config(url, max_attempts=2))
    assert failed.value.attempts == 2


def test_airflow_v1_triggers_a_dag_run_with_basic_auth() -> None:
    with recording_server(Reply(200)) as rec:
        attempts = deliver(airflow_config(rec.url))
        [request] = rec.wait_for_count(1)
    assert attempts == 1
    assert request.path == "/api/v1/dags/retrain_churn/dagRuns"
    assert request.json() == {"dag_run_id": "driftstream-d1d4b1bd8e1b5d3a-2", "conf": ALERT}
    scheme, credentials = request.headers["authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == f"driftstream:{PASSWORD}"
    assert request.headers["idempotency-key"] == "d1d4b1bd8e1b5d3a:2"
    assert request.headers["content-type"] == "application/json"
    assert "x-driftstream-signature" not in request.headers


def test_airflow_v2_with_a_token_counts_409_as_delivered() -> None:
    with recording_server(Reply(409, body=b'{"detail": "already exists"}')) as rec:
        config = make_config(
            rec.url + "/",
            preset="airflow",
            airflow_api="v2",
            dag_id="retrain_churn",
            token={"env": TOKEN_ENV},
        )
        attempts = deliver(config)
        [request] = rec.wait_for_count(1)
    assert attempts == 1
    assert request.path == "/api/v2/dags/retrain_churn/dagRuns"
    assert request.json() == {
        "dag_run_id": "driftstream-d1d4b1bd8e1b5d3a-2",
        "conf": ALERT,
        "logical_date": None,
    }
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert_signed(request)


def test_409_is_a_failure_for_generic_webhooks() -> None:
    with recording_server(Reply(409)) as rec, pytest.raises(DeliveryFailedError, match="HTTP 409"):
        deliver(make_config(rec.url))


def test_github_sends_a_repository_dispatch() -> None:
    with recording_server(Reply(204, body=b"")) as rec:
        config = make_config(
            rec.url,
            preset="github",
            secret=None,
            repository="acme/churn-model",
            token={"env": TOKEN_ENV},
        )
        attempts = deliver(config)
        [request] = rec.wait_for_count(1)
    assert attempts == 1
    assert request.path == "/repos/acme/churn-model/dispatches"
    assert request.json() == {
        "event_type": "driftstream-alert",
        "client_payload": {"idempotency_key": "d1d4b1bd8e1b5d3a:2", "alert": ALERT},
    }
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    assert request.headers["idempotency-key"] == "d1d4b1bd8e1b5d3a:2"
    assert request.headers["user-agent"] == "driftstream"


def test_build_request_per_preset() -> None:
    generic = build_request(make_config("https://hooks.example.com/x?token=t"), EVENT)
    assert generic == ("https://hooks.example.com/x?token=t", EVENT.to_json(), {})
    github = build_request(
        WebhookSinkConfig(
            name="gh",
            preset="github",
            repository="acme/churn-model",
            event_type="retrain",
            token={"env": TOKEN_ENV},
        ),
        EVENT,
    )
    assert github.url == "https://api.github.com/repos/acme/churn-model/dispatches"
    assert orjson.loads(github.body)["event_type"] == "retrain"
    assert github.headers["X-GitHub-Api-Version"] == "2022-11-28"
    airflow = build_request(airflow_config("http://airflow:8080/", airflow_api="v2"), EVENT)
    assert airflow.url == "http://airflow:8080/api/v2/dags/retrain_churn/dagRuns"
    assert orjson.loads(airflow.body)["conf"] == ALERT
    assert airflow.headers == {}


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"secret": None}, "secret: required by the generic preset"),
        ({"secret": {"env": SECRET_ENV, "file": "/run/secrets/key"}}, "(?s)secret.*exactly one"),
        ({"preset": "airflow", "username": "u", "password": {"env": "P"}}, "dag_id: required"),
        ({"preset": "airflow", "dag_id": "d"}, "airflow authentication"),
        ({"preset": "airflow", "dag_id": "d", "username": "u"}, "username and password"),
        ({"preset": "github", "repository": "acme/churn"}, "repository and token"),
        ({"preset": "github", "repository": "acme", "token": {"env": "T"}}, "repository"),
        ({"dag_id": "d"}, "dag_id: not used by the generic preset"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"statuses": ["firing", "gone"]}, "statuses"),
        ({"timeout": "soon"}, "timeout"),
    ],
)
def test_config_validation(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        make_config("https://hooks.example.com/retrain", **settings)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/drop",
        "http:///no-host",
        "hooks.example.com/x",
        "http://[::1/x",
        "http://two words.example/x",
    ],
)
def test_url_must_be_http(url: str) -> None:
    with pytest.raises(ValidationError, match=r"(?s)url.*absolute http"):
        make_config(url)


def test_url_is_required_except_for_github() -> None:
    with pytest.raises(ValidationError, match="url: required by the airflow preset"):
        WebhookSinkConfig(
            name="af",
            preset="airflow",
            dag_id="d",
            token={"env": TOKEN_ENV},
        )


def test_missing_secret_stops_construction_naming_the_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(SECRET_ENV)
    config = make_config("https://hooks.example.com/retrain")
    with pytest.raises(ValueError, match=f"secret: environment variable {SECRET_ENV} is unset"):
        WebhookSink(config)


def test_missing_token_file_names_the_field(tmp_path: Path) -> None:
    config = make_config(
        "https://api.github.com",
        preset="github",
        repository="acme/churn-model",
        token={"file": str(tmp_path / "absent")},
    )
    with pytest.raises(ValueError, match="token: cannot read file"):
        WebhookSink(config)


def test_accepts_filters_by_status_and_rule() -> None:
    config = make_config(
        "https://hooks.example.com/retrain", statuses=["firing", "resolved"], rules=["drift"]
    )
    sink = WebhookSink(config)
    try:
        assert sink.name == "retrain"
        assert sink.accepts(EVENT)
        assert sink.accepts(EVENT.model_copy(update={"status": "resolved"}))
        assert not sink.accepts(EVENT.model_copy(update={"status": "pending"}))
        assert not sink.accepts(EVENT.model_copy(update={"rule": "quality"}))
    finally:
        asyncio.run(sink.close())
    every_rule = WebhookSink(make_config("https://hooks.example.com/retrain"))
    try:
        assert every_rule.accepts(EVENT.model_copy(update={"rule": "quality"}))
        assert not every_rule.accepts(EVENT.model_copy(update={"status": "resolved"}))
    finally:
        asyncio.run(every_rule.close())


def test_verify_signature_rejects_forgeries() -> None:
    body = EVENT.to_json()
    now = 1_800_000_000
    signature = sign(SECRET.encode(), now, body)
    assert verify_signature(SECRET.encode(), str(now), body, signature, now=now + 10)
    assert not verify_signature(b"another-secret", str(now), body, signature, now=now)
    assert not verify_signature(SECRET.encode(), str(now), body + b"\n", signature, now=now)
    assert not verify_signature(SECRET.encode(), str(now + 1), body, signature, now=now)
    assert not verify_signature(SECRET.encode(), str(now), body, signature, now=now + 301)
    assert not verify_signature(SECRET.encode(), str(now), body, signature, now=now - 301)
    assert not verify_signature(SECRET.encode(), "yesterday", body, signature, now=now)
