"""Running ``driftstream run`` as a real process against the test broker."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import orjson
import yaml
from kafka import KafkaProducer

from monitor.broker import free_port
from monitor.catalog import ReferenceCatalog
from monitor.config import DriftstreamConfig, load_config
from monitor.partition import InputMessage, PartitionState
from monitor.reference import ReferenceProfile
from monitor.simulation import CHURN, reference_frame
from monitor.topics import TOPIC_ROLES
from tests.conftest import read_all, read_topic
from tests.console import DRIFTSTREAM
from tests.http_recorder import RecordedRequest

#: Loopback requests must not go through a proxy from the environment.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def write_config(
    folder: Path, bootstrap: str, partitions: int = 2, **sections: Any
) -> tuple[Path, DriftstreamConfig]:
    """A config with unique topics and group (the test broker needs both)."""
    tag = uuid.uuid4().hex[:10]
    document: dict[str, Any] = {
        "broker": {"url": f"kafka://{bootstrap}"},
        "topics": {role: f"{role}-{tag}" for role in TOPIC_ROLES} | {"partitions": partitions},
        "worker": {
            "group_id": f"group-{tag}",
            "session_timeout": "6s",
            "snapshot_interval": "500ms",
            "batch_max_delay": "100ms",
        },
        "defaults": {"window": {"size_events": 500}},
    }
    for name, values in sections.items():
        document[name] = {**document.get(name, {}), **values}
    path = folder / f"driftstream-{tag}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path, load_config(path)


class WorkerProcess:
    """One ``driftstream run`` process with its own web port and log file."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.port = free_port()
        self.metrics_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        """Start the process (environment overrides the web and metrics ports).

        Proxy variables are dropped: every endpoint a test worker talks to
        (broker, fake Slack and webhook servers) is on the loopback.
        """
        environment = {
            name: value
            for name, value in os.environ.items()
            if name.lower() not in ("http_proxy", "https_proxy", "all_proxy")
        }
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [DRIFTSTREAM, "run", "--config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.log_path.parent,
                env={
                    **environment,
                    "DRIFTSTREAM_WORKER__WEB_PORT": str(self.port),
                    "DRIFTSTREAM_METRICS__PORT": str(self.metrics_port),
                },
            )
        return self

    def log(self) -> str:
        """Everything the process printed."""
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> tuple[int, Any]:
        """Status and JSON body of a web endpoint."""
        try:
            with DIRECT.open(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def wait_ready(self, timeout: float = 90.0) -> dict[str, Any]:
        """Poll ``/ready`` until the worker has references and an assignment."""

        def ready() -> dict[str, Any] | None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log()[-3000:]}")
            try:
                status, body = self.get("/ready")
            except OSError:
                return None
            return body if status == 200 else None

        return wait_for(ready, timeout, "the worker to be ready")

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.terminate()
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"worker did not stop on SIGTERM:\n{self.log()[-3000:]}") from None


def send(bootstrap: str, topic: str, documents: list[Any], key: bytes | None = None) -> None:
    """Produce documents (dicts as JSON, bytes as they are) keyed by model."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        for document in documents:
            if isinstance(document, bytes):
                producer.send(topic, key=key or b"m", value=document)
            else:
                model = str(document.get("model", "m")).encode()
                producer.send(topic, key=key or model, value=orjson.dumps(document))
        producer.flush(30)
    finally:
        producer.close()


def latest_results(bootstrap: str, topic: str, expected: int) -> dict[bytes, dict[str, Any]]:
    """The results topic as a compacted reader sees it: latest value per key.

    Also checks that any republished key carries exactly the same result.
    """

    def read() -> dict[bytes, dict[str, Any]] | None:
        records = read_all(bootstrap, topic)
        latest: dict[bytes, dict[str, Any]] = {}
        for record in records:
            value = orjson.loads(record.value)
            assert latest.get(record.key, value) == value, "a window was republished differently"
            latest[record.key] = value
        return latest if len(latest) >= expected else None

    return wait_for(read, 90, f"{expected} window results")


def expected_results(
    config: DriftstreamConfig, bootstrap: str, profiles: list[ReferenceProfile], produced: int
) -> dict[bytes, dict[str, Any]]:
    """What one uninterrupted worker computes from the predictions topic, offline."""
    catalog = ReferenceCatalog()
    for profile in profiles:
        catalog.put(profile)
    records = read_topic(bootstrap, config.topics.predictions, produced)
    states: dict[int, PartitionState] = {}
    results: dict[bytes, dict[str, Any]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        state = states.get(record.partition)
        if state is None:
            state = states[record.partition] = PartitionState(record.partition, config, catalog)
        message = InputMessage(record.topic, record.partition, record.offset, record.value)
        for result in state.on_predictions([message]).results:
            results[result.key()] = orjson.loads(result.to_json())
    return results


def start_worker(config_path: Path, started: list[WorkerProcess]) -> WorkerProcess:
    """Start a worker logging next to its config; ``started`` (the fixture) stops it."""
    log = config_path.parent / f"worker-{len(started)}.log"
    worker = WorkerProcess(config_path, log).start()
    started.append(worker)
    return worker


def churn_reference(built_at: str | None = None) -> ReferenceProfile:
    """The reference of the churn simulator's healthy traffic (20,000 rows)."""
    return ReferenceProfile.from_frame(
        reference_frame(CHURN, 20_000, seed=0).drop(columns=["label"]),
        model=CHURN.name,
        model_version=CHURN.version,
        built_at=built_at,
    )


def alerts_settled(worker: WorkerProcess) -> bool:
    """Every alert transition delivered to every sink, and that fact in a snapshot."""
    try:
        status, body = worker.get("/alerts")
    except OSError:
        return False
    return status == 200 and body["undelivered"] == 0 and body["unsnapshotted_partitions"] == 0


def slack_key(request: RecordedRequest) -> str:
    """The idempotency key in a Slack message's context line."""
    [key] = re.findall(r"alert `([0-9a-f]+:\d+)`", request.body.decode())
    return str(key)
