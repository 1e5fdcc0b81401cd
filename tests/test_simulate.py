"""`driftstream simulate`: the demo's serving service alone, against a running broker."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid

import orjson

from monitor.reference import ReferenceProfile
from monitor.simulation import DEMO_MODELS
from tests.conftest import read_all
from tests.console import DRIFTSTREAM, ENVIRONMENT, run

ROLES = (
    "predictions",
    "labels",
    "results",
    "deadletter",
    "references",
    "state",
    "alerts",
    "alert_deadletter",
)


def own_topics() -> dict[str, str]:
    """Environment naming topics of this test only (the session's broker is shared)."""
    prefix = f"sim-{uuid.uuid4().hex[:10]}"
    return {f"DRIFTSTREAM_TOPICS__{role.upper()}": f"{prefix}.{role}" for role in ROLES}


def test_simulate_publishes_references_predictions_and_labels(broker: str) -> None:
    environment = own_topics()
    done = run(
        "simulate",
        "--bootstrap",
        broker,
        "--duration",
        "5",
        "--rate",
        "300",
        "--publish-references",
        environment=environment,
    )
    assert done.returncode == 0, done.stderr
    assert "published the reference profiles" in done.stderr

    references = read_all(broker, environment["DRIFTSTREAM_TOPICS__REFERENCES"])
    profiles = [ReferenceProfile.from_bytes(record.value) for record in references]
    assert {(p.model, p.model_version) for p in profiles} == {
        (m.name, m.version) for m in DEMO_MODELS.values()
    }

    predictions = [
        orjson.loads(r.value)
        for r in read_all(broker, environment["DRIFTSTREAM_TOPICS__PREDICTIONS"])
    ]
    # 300/s for 5 s, paced from the start (the last tick may fall just short)
    assert 1200 <= len(predictions) <= 1500
    assert {p["model"] for p in predictions} == set(DEMO_MODELS)
    labels = [
        orjson.loads(r.value) for r in read_all(broker, environment["DRIFTSTREAM_TOPICS__LABELS"])
    ]
    assert labels, "no labels arrived"
    assert {label["type"] for label in labels} == {"label"}
    # every label is of a prediction that was sent
    assert {label["event_id"] for label in labels} <= {p["event_id"] for p in predictions}
    assert f"{len(predictions)} predictions and {len(labels)} labels sent" in done.stderr


def test_simulate_stops_cleanly_on_sigterm(broker: str) -> None:
    environment = own_topics()
    process = subprocess.Popen(
        [DRIFTSTREAM, "simulate", "--bootstrap", broker, "--rate", "300"],
        env={**ENVIRONMENT, **environment},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()  # its first notice: traffic has started
        assert line.startswith("sending 300 predictions/s"), line
        time.sleep(2.0)
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        rest = process.communicate(timeout=10)[1]
        assert time.monotonic() - started < 5.0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    assert "stopped:" in rest
    assert "Traceback" not in rest
    sent = read_all(broker, environment["DRIFTSTREAM_TOPICS__PREDICTIONS"])
    assert len(sent) >= 300
