"""Bearer tokens on the web endpoints and /metrics, against real `driftstream run` processes."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import load_config
from monitor.metrics import UNAUTHORIZED_BODY, bearer_authorized, bearer_wsgi
from monitor.publishing import publish_reference
from monitor.simulation import CHURN, ServingSimulator
from tests.console import run
from tests.worker_process import (
    DIRECT,
    WorkerProcess,
    churn_reference,
    send,
    start_worker,
    wait_for,
    write_config,
)

START_MS = 1_700_000_000_000
#: Endpoints that show models, features and values (Faust's own page and an
#: unknown path too: nothing but the probes answers without the token).
PROTECTED = ("/models", "/alerts", f"/models/{CHURN.name}/drift", "/router/", "/no/such/page")
FEATURES = [feature.name for feature in CHURN.features]


def request(port: int, path: str, authorization: str | None = None) -> tuple[int, Message, bytes]:
    """Status, headers and body of a GET on the loopback (no proxy)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if authorization is not None:
        req.add_header("Authorization", authorization)
    try:
        with DIRECT.open(req, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def assert_refused(status: int, headers: Message, body: bytes, secrets: Iterable[str]) -> None:
    """A 401 with a Bearer challenge whose body names nothing (no model, feature, token)."""
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer ")
    assert json.loads(body) == {"error": "unauthorized"}
    text = body.decode() + str(headers)
    for secret in secrets:
        assert secret not in text


def drifted_traffic(n: int) -> list[dict[str, Any]]:
    """Churn predictions drifted from the first event (every window flags features)."""
    simulator = ServingSimulator([CHURN], seed=5, drift_after_events=0, unlabelled_share=1.0)
    return simulator.predictions(n, START_MS, 100)


def test_with_tokens_only_the_probes_answer_without_one(
    tmp_path: Path, broker: str, workers: list[WorkerProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    """worker.web_token (from the environment) and metrics.token (from a file) are enforced."""
    web_token = f"web-{uuid.uuid4().hex}"
    metrics_token = f"metrics-{uuid.uuid4().hex}"
    monkeypatch.setenv("DS_TEST_WEB_TOKEN", web_token)
    token_file = tmp_path / "metrics-token"
    token_file.write_text(metrics_token + "\n")  # surrounding whitespace is not the token
    path, config = write_config(
        tmp_path,
        broker,
        worker={"web_token": {"env": "DS_TEST_WEB_TOKEN"}},
        metrics={"token": {"file": str(token_file)}},
    )
    publish_reference(broker, {}, config.topics, churn_reference())
    worker = start_worker(path, workers)
    ready = worker.wait_ready()
    send(broker, config.topics.predictions, drifted_traffic(1000))
    right = f"Bearer {web_token}"

    def firing() -> dict[str, Any] | None:
        status, _, body = request(worker.port, "/alerts", right)
        assert status == 200
        alerts = json.loads(body)
        return alerts if any(a["status"] == "firing" for a in alerts["active"]) else None

    def two_windows() -> dict[str, Any] | None:
        status, _, body = request(worker.port, f"/models/{CHURN.name}/drift", right)
        drift = json.loads(body)
        return drift if status == 200 and len(drift["versions"][CHURN.version]) == 2 else None

    # with the right token: what the pages show (so that a leak would be seen below)
    alerts = wait_for(firing, 90, "a firing drift alert")
    assert {a["feature"] for a in alerts["active"]} & set(FEATURES)
    drift = wait_for(two_windows, 30, "two window results")
    assert drift["model"] == CHURN.name
    assert all(name in json.dumps(drift) for name in FEATURES)
    status, _, body = request(worker.port, "/models", right)
    assert (status, list(json.loads(body))) == (200, [CHURN.name])
    assert request(worker.port, "/no/such/page", right)[0] == 404
    assert request(worker.port, "/health", right)[0] == 200

    sensitive = [CHURN.name, *FEATURES, web_token, metrics_token]
    for page in PROTECTED:
        for authorization in (
            None,
            f"Bearer {web_token[:-1]}",
            f"Bearer {web_token}x",
            f"Bearer {metrics_token}",  # the other endpoint's token
            f"Basic {web_token}",
            web_token,
            "Bearer",
        ):
            assert_refused(*request(worker.port, page, authorization), sensitive)
    assert "error=" not in request(worker.port, "/models")[1]["WWW-Authenticate"]
    presented = request(worker.port, "/models", "Bearer nope")[1]["WWW-Authenticate"]
    assert 'error="invalid_token"' in presented

    # the probes stay open, and /ready tells partitions and a count, no names
    assert worker.get("/health") == (200, {"status": "alive"})
    status, _, body = request(worker.port, "/ready")
    assert status == 200
    probe = {"ready", "references_loaded", "partitions", "references"}
    assert set(json.loads(body)) == set(ready) == probe
    assert not any(secret in body.decode() for secret in sensitive)

    # /metrics: its own token, not the web one
    for authorization in (None, right, f"Bearer {metrics_token[:-1]}"):
        assert_refused(*request(worker.metrics_port, "/metrics", authorization), sensitive)
    status, _, body = request(worker.metrics_port, "/metrics", f"bearer {metrics_token}")
    assert status == 200
    assert f'model="{CHURN.name}"' in body.decode()
    assert web_token not in worker.log()
    assert metrics_token not in worker.log()


def test_without_tokens_every_endpoint_answers_as_before(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    """No token configured: no header needed, and an Authorization header is ignored."""
    path, config = write_config(tmp_path, broker)
    publish_reference(broker, {}, config.topics, churn_reference())
    worker = start_worker(path, workers)
    worker.wait_ready()
    send(broker, config.topics.predictions, drifted_traffic(500))
    drift = f"/models/{CHURN.name}/drift"
    wait_for(lambda: request(worker.port, drift)[0] == 200, 90, "the first window result")
    for authorization in (None, "Bearer anything"):
        for page in ("/health", "/ready", "/models", "/alerts", drift):
            status, headers, body = request(worker.port, page, authorization)
            assert status == 200, page
            assert "WWW-Authenticate" not in headers
        assert request(worker.port, "/models/nothing/drift", authorization)[0] == 404
        status, _, body = request(worker.metrics_port, "/metrics", authorization)
        assert status == 200
        assert f'model="{CHURN.name}"' in body.decode()


def check_config(tmp_path: Path, document: dict[str, Any], **environment: str) -> tuple[int, str]:
    path = tmp_path / "driftstream.yaml"
    path.write_text(yaml.safe_dump(document))
    result = run("check-config", path, environment=environment)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"worker": {"web_token": {"env": "DS_UNSET_WEB_TOKEN"}}},
            "error: worker.web_token: environment variable DS_UNSET_WEB_TOKEN is unset or empty",
        ),
        (
            {"metrics": {"token": {"file": "/nonexistent/metrics-token"}}},
            "error: metrics.token: cannot read file /nonexistent/metrics-token: "
            "No such file or directory",
        ),
        (
            {"worker": {"web_token": {"env": "A", "file": "/b"}}},
            "driftstream.yaml: worker.web_token: set exactly one of env",
        ),
    ],
)
def test_an_unreadable_token_fails_check_config_naming_the_field(
    tmp_path: Path, document: dict[str, Any], expected: str
) -> None:
    code, output = check_config(tmp_path, document)
    assert code == 2
    assert expected in output
    assert len(output.strip().splitlines()) == 1


def test_an_empty_token_variable_fails_like_a_missing_one(tmp_path: Path) -> None:
    code, output = check_config(
        tmp_path, {"metrics": {"token": {"env": "DS_EMPTY_TOKEN"}}}, DS_EMPTY_TOKEN="  "
    )
    assert (code, output.strip()) == (
        2,
        "error: metrics.token: environment variable DS_EMPTY_TOKEN is unset or empty",
    )


def test_check_config_reads_the_tokens_and_never_prints_them(tmp_path: Path) -> None:
    token_file = tmp_path / "web-token"
    token_file.write_text("file-token-value")
    code, output = check_config(
        tmp_path,
        {"worker": {"web_token": {"file": str(token_file)}}, "metrics": {"token": {"env": "T"}}},
        T="env-token-value",
    )
    assert code == 0, output
    assert "file-token-value" not in output
    assert "env-token-value" not in output
    effective = yaml.safe_load(output)
    assert effective["worker"]["web_token"] == {"env": None, "file": str(token_file)}
    assert effective["metrics"]["token"] == {"env": "T", "file": None}


def test_run_stops_on_a_missing_token_before_starting_a_broker(tmp_path: Path) -> None:
    path = tmp_path / "driftstream.yaml"
    path.write_text("worker: {web_token: {env: DS_UNSET_WEB_TOKEN}}\n")
    result = run("run", "--config", path)
    assert result.returncode == 2
    assert result.stderr == (
        "error: worker.web_token: environment variable DS_UNSET_WEB_TOKEN is unset or empty\n"
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer s3cret", True),
        ("bearer s3cret", True),
        ("BEARER  s3cret ", True),
        ("Bearer s3cre", False),
        ("Bearer s3crett", False),
        ("Bearer S3CRET", False),
        ("Bearer", False),
        ("Bearer ", False),
        ("s3cret", False),
        ("Basic s3cret", False),
        ("Token s3cret", False),
        (None, False),
    ],
)
def test_bearer_authorized(header: str | None, expected: bool) -> None:
    assert bearer_authorized(header, "s3cret") is expected


def test_bearer_authorized_compares_any_str_without_raising() -> None:
    # header bytes that are not UTF-8 arrive as surrogate escapes; lone surrogates too
    assert not bearer_authorized("Bearer s3cr" + chr(0xDCC3) + "t", "s3cret")
    assert not bearer_authorized("Bearer s3cr" + chr(0xD800) + "t", "s3cret")
    assert bearer_authorized("Bearer s3cr" + chr(0xD800) + "t", "s3cr" + chr(0xD800) + "t")


def test_bearer_authorized_with_a_non_ascii_token() -> None:
    assert bearer_authorized("Bearer jeton-été", "jeton-été")
    assert not bearer_authorized("Bearer jeton-ete", "jeton-été")


def call_wsgi(header: str | None) -> tuple[str, dict[str, str], bytes]:
    """Call :func:`bearer_wsgi` around an app that answers ``ok``."""

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer.update(status=status, headers=dict(headers))
        return io.BytesIO().write

    environ: dict[str, Any] = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics"}
    if header is not None:
        # WSGI carries header bytes as latin-1 text
        environ["HTTP_AUTHORIZATION"] = header.encode().decode("latin-1")
    body = b"".join(bearer_wsgi(app, "jeton-été")(environ, start_response))
    return answer["status"], answer["headers"], body


def test_bearer_wsgi_answers_401_unless_the_token_matches() -> None:
    assert call_wsgi("Bearer jeton-été") == ("200 OK", {"Content-Type": "text/plain"}, b"ok")
    for header in (None, "Bearer jeton-ete", "Basic jeton-été"):
        status, headers, body = call_wsgi(header)
        assert status == "401 Unauthorized"
        assert headers["WWW-Authenticate"].startswith('Bearer realm="driftstream"')
        assert headers["Content-Length"] == str(len(body))
        assert body == UNAUTHORIZED_BODY


def readme_blocks(heading: str, language: str) -> list[str]:
    """The fenced ``language`` blocks of one README section."""
    text = (Path(__file__).parent.parent / "README.md").read_text()
    section = text.split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]
    return [part.split("```", 1)[0] for part in section.split(f"```{language}\n")[1:]]


def test_the_readme_examples_are_valid(tmp_path: Path) -> None:
    """The README's token configuration loads; its scrape config reads the token from a file."""
    config_block, scrape_block = readme_blocks("### Securing the endpoints", "yaml")
    path = tmp_path / "driftstream.yaml"
    path.write_text(config_block)
    config = load_config(path)
    assert config.worker.web_token is not None
    assert config.metrics.token is not None
    (job,) = yaml.safe_load(scrape_block)["scrape_configs"]
    assert job["authorization"]["type"] == "Bearer"
    assert job["authorization"]["credentials_file"]
