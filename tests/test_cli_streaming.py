"""``driftstream broker``, ``publish``, ``tail`` and ``reference publish``, and their modules.

Broker tests use the session ``broker`` fixture with unique topic names per
test (a ``topics:`` section in a config file written to ``tmp_path``); the
commands run through the installed console script, like ``test_cli.py``.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import io
import json
import math
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from monitor.broker import free_port
from monitor.config import DriftstreamConfig, TailTopic, TopicsConfig, load_config
from monitor.errors import DriftstreamError
from monitor.publishing import (
    Destination,
    InvalidLine,
    OutgoingMessage,
    csv_messages,
    jsonl_messages,
    read_events,
    timestamp_value,
)
from monitor.reference import NumericProfile, ReferenceProfile
from monitor.tailing import record_document
from monitor.topics import TOPIC_ROLES, ensure_topics, existing_topics, topic_specs
from schemas.decoding import EventLimits, decode_label, decode_prediction
from schemas.events import LabelEvent, PredictionBatch, PredictionEvent
from schemas.outputs import window_result_key
from tests.conftest import read_topic
from tests.console import DRIFTSTREAM, ENVIRONMENT, run

TIMEOUT = 60.0


def write_config(tmp_path: Path, broker: str, partitions: int = 2) -> tuple[Path, TopicsConfig]:
    """A config file pointing at ``broker`` with topic names unique to this test."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    topics: dict[str, Any] = {role: f"{prefix}.{role}" for role in TOPIC_ROLES}
    topics["partitions"] = partitions
    path = tmp_path / "driftstream.yaml"
    path.write_text(yaml.safe_dump({"broker": {"url": f"kafka://{broker}"}, "topics": topics}))
    return path, load_config(path).topics


@pytest.fixture
def configured(tmp_path: Path, broker: str) -> tuple[Path, TopicsConfig]:
    """A config file for this test, and its topics created."""
    path, topics = write_config(tmp_path, broker)
    ensure_topics(broker, topics, {})
    return path, topics


def highwaters(broker: str, topic: str, timeout: float = TIMEOUT) -> dict[int, int]:
    """Each partition's high-water mark, from fetch responses (not ListOffsets)."""
    consumer = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        assert partitions, f"{topic} has no partitions"
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while any(consumer.highwater(tp) is None for tp in partitions):
            assert time.monotonic() < deadline, "no fetch response in time"
            consumer.poll(timeout_ms=200)
        return {tp.partition: consumer.highwater(tp) for tp in partitions}
    finally:
        consumer.close()


def prediction(event_id: str, model: str, age: int | None = 41) -> dict[str, Any]:
    """A prediction event document."""
    return {
        "event_id": event_id,
        "model": model,
        "model_version": "7",
        "timestamp": "2026-11-23T10:00:00Z",
        "features": {"age": age, "plan": "pro"},
        "prediction": {"yes": 0.8, "no": 0.2},
    }


def label(event_id: str, model: str) -> dict[str, Any]:
    """A label event document."""
    return {
        "type": "label",
        "event_id": event_id,
        "model": model,
        "label": "yes",
        "timestamp": 1_700_000_000_000,
    }


BATCH = {
    "type": "prediction_batch",
    "model": "fraud",
    "model_version": "2",
    "event_ids": ["b1", "b2", "b3", "b4"],
    "timestamps": [1_700_000_000_000 + i for i in range(4)],
    "features": {"amount": [1.5, None, 3.0, 4.25]},
    "predictions": [0, 1, 0, 0],
}


# ---------------------------------------------------------------- publish


def test_publish_jsonl_sends_each_event_to_its_topic_keyed_by_model(
    configured: tuple[Path, TopicsConfig], broker: str, tmp_path: Path
) -> None:
    """Predictions and a batch go to predictions, labels to labels, keyed by model, verbatim."""
    config, topics = configured
    documents = [
        prediction("e1", "churn"),
        prediction("e2", "fraud", age=None),
        BATCH,
        label("e1", "churn"),
        prediction("e3", "churn"),
        label("e2", "fraud"),
    ]
    lines = [orjson.dumps(document) for document in documents]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines[:3]) + b"\n\n" + b"\n".join(lines[3:]) + b"\n")
    result = run("publish", events, "--config", config)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"sent 7 predictions in 4 messages to {topics.predictions} and 2 labels to {topics.labels}"
    )
    records = read_topic(broker, topics.predictions, 4)
    assert len(records) == 4
    assert {record.value for record in records} == {lines[0], lines[1], lines[2], lines[4]}
    decoded = {record.value: decode_prediction(record.value) for record in records}
    for record in records:
        assert record.key == decoded[record.value].model.encode()
    batch = decoded[lines[2]]
    assert isinstance(batch, PredictionBatch)
    assert len(batch) == 4
    assert sum(highwaters(broker, topics.predictions).values()) == 4
    label_records = read_topic(broker, topics.labels, 2)
    assert len(label_records) == 2
    labels = {decode_label(record.value).event_id: record.key for record in label_records}
    assert labels == {"e1": b"churn", "e2": b"fraud"}
    assert sum(highwaters(broker, topics.labels).values()) == 2


def test_publish_csv_rows_become_predictions_with_typed_features(
    configured: tuple[Path, TopicsConfig], broker: str, tmp_path: Path
) -> None:
    """CSV: features from the other columns, empty is null, numbers are numbers."""
    config, topics = configured
    table = tmp_path / "predictions.csv"
    table.write_text(
        "event_id,model,model_version,timestamp,prediction,age,plan,score\n"
        "c1,churn,7,2026-11-23T10:00:00Z,no,41,pro,1.5e2\n"
        'c2,churn,7,1700000000000,"{""yes"": 0.3, ""no"": 0.7}",,"basic, annual",-3\n'
        "c3,fraud,1,2026-11-23T10:01:00+01:00,yes,007,,\n"
    )
    result = run("publish", table, "--config", config)
    assert result.returncode == 0, result.stderr
    assert "sent 3 predictions in 3 messages" in result.stdout
    assert "and 0 labels" in result.stdout
    records = read_topic(broker, topics.predictions, 3)
    assert len(records) == 3
    events = {}
    for record in records:
        event = decode_prediction(record.value)
        assert isinstance(event, PredictionEvent)
        assert record.key == event.model.encode()
        events[event.event_id] = event
    assert events["c1"].features == {"age": 41, "plan": "pro", "score": 150.0}
    assert events["c1"].prediction == "no"
    assert events["c2"].features == {"age": None, "plan": "basic, annual", "score": -3}
    assert events["c2"].prediction == {"yes": 0.3, "no": 0.7}
    assert events["c2"].timestamp.year == 2023
    assert events["c3"].features == {"age": 7, "plan": None, "score": None}
    assert events["c3"].prediction == "yes"
    assert events["c3"].model_version == "1"


def test_an_invalid_line_stops_publish_before_anything_is_sent(
    configured: tuple[Path, TopicsConfig], broker: str, tmp_path: Path
) -> None:
    """Each invalid line is named FILE:LINE, exit 2, nothing sent; --skip-invalid sends the rest."""
    config, topics = configured
    events = tmp_path / "events.jsonl"
    events.write_bytes(
        orjson.dumps(prediction("ok1", "churn"))
        + b"\n\n{not json\n"
        + orjson.dumps({**prediction("bad", "churn"), "features": {"age": [1]}})
        + b"\n"
        + orjson.dumps(label("ok1", "churn"))
        + b"\n"
    )
    result = run("publish", events, "--config", config)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = result.stderr.strip().splitlines()
    assert errors[0].startswith(f"error: {events}:3: invalid_json: ")
    assert errors[1] == (
        f"error: {events}:4: schema: features.age: "
        "a feature value must be a number, string, boolean or null, not list"
    )
    assert errors[2].startswith("error: 2 invalid line(s), nothing sent")
    assert len(errors) == 3
    assert result.stdout == ""
    assert highwaters(broker, topics.predictions) == {0: 0, 1: 0}
    assert highwaters(broker, topics.labels) == {0: 0, 1: 0}

    skipped = run("publish", events, "--config", config, "--skip-invalid")
    assert skipped.returncode == 0, skipped.stderr
    assert skipped.stderr.strip().splitlines()[0].startswith(f"skipped: {events}:3: ")
    assert skipped.stdout.strip().endswith(
        f"1 labels to {topics.labels}; skipped 2 invalid line(s)"
    )
    assert sum(highwaters(broker, topics.predictions).values()) == 1
    assert sum(highwaters(broker, topics.labels).values()) == 1


def test_publish_needs_a_broker_and_existing_topics(tmp_path: Path, broker: str) -> None:
    """No broker configured: one clear line; a missing topic is named, not auto-created."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps(prediction("e1", "churn")) + b"\n")
    result = run("publish", events)
    assert result.returncode == 2
    assert result.stderr.startswith("error: no broker: pass --bootstrap HOST:PORT")
    assert len(result.stderr.strip().splitlines()) == 1
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    result = run("publish", events, "--bootstrap", f"kafka://{broker}", "--topic", missing)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: topic(s) {missing} do not exist on {broker}")
    assert missing not in existing_topics(broker, {})


# ---------------------------------------------------------------- tail


def send_records(broker: str, topic: str, records: list[tuple[bytes, bytes]], batches: int) -> None:
    """Send in several flushes, so each partition holds several record batches."""
    producer = KafkaProducer(bootstrap_servers=broker)
    try:
        size = math.ceil(len(records) / batches)
        for start in range(0, len(records), size):
            for key, value in records[start : start + size]:
                producer.send(topic, key=key, value=value)
            producer.flush(TIMEOUT)
    finally:
        producer.close(TIMEOUT)


def test_tail_prints_every_record_and_stops_when_caught_up(
    configured: tuple[Path, TopicsConfig], broker: str
) -> None:
    """All records of all partitions as JSON lines; --max stops early; an empty topic: at once."""
    config, topics = configured
    sent = [
        (window_result_key("m", "1", i), orjson.dumps({"type": "window_result", "n": i}))
        for i in range(30)
    ]
    send_records(broker, topics.results, sent, batches=5)
    bare = run("tail", "results", "--config", config, "--timeout", "30")
    assert bare.returncode == 0, bare.stderr
    assert sorted(json.loads(line)["n"] for line in bare.stdout.splitlines()) == list(range(30))
    assert all(set(json.loads(line)) == {"type", "n"} for line in bare.stdout.splitlines())
    result = run("tail", "results", "--config", config, "--timeout", "30", "--envelope")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 30
    assert {(line["key"], line["value"]["n"]) for line in lines} == {
        (key.decode(), i) for i, (key, _) in enumerate(sent)
    }
    assert set(lines[0]) == {"partition", "offset", "key", "value"}
    positions = collections.defaultdict(list)
    for line in lines:
        positions[line["partition"]].append(line["offset"])
    assert len(positions) == 2
    for offsets in positions.values():
        assert offsets == list(range(len(offsets)))

    first = run("tail", "results", "--config", config, "--max", "3")
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.splitlines()) == 3

    late = run("tail", "results", "--config", config, "--timeout", "0.001")
    assert late.returncode == 1
    assert late.stderr.startswith(f"timeout: not caught up with {topics.results} after 0.001 s")

    # An empty topic: tail stops as soon as fetches report each partition's high-water
    # mark (0), not when its --timeout runs out (an hour: beyond run's 120 s; a timeout
    # this long must not reach kafka-python as a request timeout, which it refuses).
    assert highwaters(broker, topics.deadletter) == {0: 0, 1: 0}
    try:
        empty = run("tail", "deadletter", "--config", config, "--timeout", "3600")
    except subprocess.TimeoutExpired:
        pytest.fail("tail of an empty topic did not stop at the high-water marks")
    assert (empty.returncode, empty.stdout, empty.stderr) == (0, "", "")


def test_tail_model_filter_keeps_each_models_order_and_shows_unreadable_records_whole(
    configured: tuple[Path, TopicsConfig], broker: str
) -> None:
    """--model prints one model's records in written order; --max counts printed records."""
    config, topics = configured
    # as the worker writes results: all of a model's in one partition
    sent = [
        (model.encode(), orjson.dumps({"model": model, "n": i}))
        for i in range(10)
        for model in ("a", "b")
    ]
    sent.append((b"junk", b"\xff\xfe"))
    send_records(broker, topics.results, sent, batches=3)
    only_b = run("tail", "results", "--config", config, "--model", "b", "--timeout", "30")
    assert only_b.returncode == 0, only_b.stderr
    assert [json.loads(line) for line in only_b.stdout.splitlines()] == [
        {"model": "b", "n": i} for i in range(10)
    ]
    first_b = run("tail", "results", "--config", config, "--model", "b", "--max", "4")
    assert [json.loads(line)["n"] for line in first_b.stdout.splitlines()] == [0, 1, 2, 3]
    everything = run("tail", "results", "--config", config, "--timeout", "30")
    [unreadable] = [
        line for line in map(json.loads, everything.stdout.splitlines()) if "model" not in line
    ]
    assert unreadable["key"] == "junk"
    assert unreadable["value_encoding"] == "base64"


def test_tail_latest_follow_shows_only_new_records(
    configured: tuple[Path, TopicsConfig], broker: str
) -> None:
    """--latest skips what was there; --follow waits for the next record."""
    config, topics = configured
    old = [(b"old-%d" % i, orjson.dumps({"old": i})) for i in range(40)]
    send_records(broker, topics.deadletter, old, batches=4)
    assert all(mark > 0 for mark in highwaters(broker, topics.deadletter).values())
    process = subprocess.Popen(
        [
            DRIFTSTREAM,
            "tail",
            "deadletter",
            "--config",
            str(config),
            "--latest",
            "--follow",
            "--max",
            "1",
            "--timeout",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENVIRONMENT,
    )
    try:
        # New records keep coming until the tail has seen one and exits.
        deadline = time.monotonic() + TIMEOUT
        producer = KafkaProducer(bootstrap_servers=broker)
        try:
            while process.poll() is None:
                assert time.monotonic() < deadline, "tail --follow printed nothing"
                producer.send(topics.deadletter, key=b"new", value=b'{"new": true}')
                producer.flush(TIMEOUT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(0.5)
        finally:
            producer.close(TIMEOUT)
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    [line] = [json.loads(text) for text in out.splitlines()]
    assert line == {"new": True}


# ---------------------------------------------------------------- references


def test_reference_publish_then_tail_references(tmp_path: Path, broker: str) -> None:
    """The profile lands keyed ["model","version"] on a compacted topic; tail summarises it."""
    config, topics = write_config(tmp_path, broker)  # the references topic does not exist yet
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.normal(40, 10, 500), "plan": rng.choice(["a", "b"], 500)})
    profile_path = tmp_path / "churn.dsprofile"
    ReferenceProfile.from_frame(frame, "churn", "7").save(profile_path)

    result = run(
        "reference",
        "publish",
        profile_path,
        "--config",
        config,
        "--model",
        "churn2",
        "--version",
        "8",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("published churn2 8 (500 rows, 2 features, ")
    assert f"to {topics.references} partition 0 offset 0" in result.stdout
    [record] = read_topic(broker, topics.references, 1)
    assert record.key == b'["churn2","8"]'
    # the id window results name their profile by: a digest of the published bytes
    digest = hashlib.sha256(record.value).hexdigest()[:16]
    assert result.stdout.strip().endswith(f'key ["churn2","8"], id {digest}')
    published = ReferenceProfile.from_bytes(record.value)
    assert (published.model, published.model_version, published.n_rows) == ("churn2", "8", 500)
    age, original_age = (
        p.features["age"] for p in (published, ReferenceProfile.load(profile_path))
    )
    assert isinstance(age, NumericProfile)
    assert isinstance(original_age, NumericProfile)
    np.testing.assert_array_equal(age.sample, original_age.sample)
    assert topic_configs(broker, topics.references)["cleanup.policy"] == "compact"

    tailed = run("tail", "references", "--config", config, "--envelope")
    assert tailed.returncode == 0, tailed.stderr
    [line] = [json.loads(text) for text in tailed.stdout.splitlines()]
    assert line == {
        "partition": 0,
        "offset": 0,
        "key": '["churn2","8"]',
        "value": {
            "model": "churn2",
            "model_version": "8",
            "n_rows": 500,
            "built_at": None,
            "features": {"age": "numeric", "plan": "categorical"},
        },
    }

    data = tmp_path / "data.csv"
    frame.to_csv(data, index=False)
    refused = run("reference", "publish", data, "--config", config)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: {data}: not a reference profile; make one with `driftstream reference build`"
    )


# ---------------------------------------------------------------- topics


def topic_configs(broker: str, topic: str) -> dict[str, str]:
    """A topic's configuration values (all of them: Tansu marks set values as defaults)."""
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
        )
    finally:
        admin.close()
    return {name: entry["value"] for name, entry in described["topic"][topic].items()}


def partition_counts(broker: str, names: list[str]) -> dict[str, int]:
    """Partitions of each topic."""
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        return {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}
    finally:
        admin.close()


def test_ensure_topics_creates_compacted_and_plain_topics_once(tmp_path: Path, broker: str) -> None:
    """Partitions and cleanup policies as documented; existing topics are left alone."""
    _, topics = write_config(tmp_path, broker, partitions=3)
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        admin.create_topics({topics.labels: {"num_partitions": 1, "replication_factor": 1}})
    finally:
        admin.close()
    ensure_topics(broker, topics, {})
    ensure_topics(broker, topics, {})  # idempotent
    names = {spec.role: spec.name for spec in topic_specs(topics)}
    assert partition_counts(broker, list(names.values())) == {
        topics.predictions: 3,
        topics.labels: 1,  # existed before: untouched
        topics.state: 3,
        topics.results: 3,
        topics.deadletter: 3,
        topics.references: 1,
        topics.alerts: 3,
        topics.alert_deadletter: 3,
    }
    policies = {
        role: topic_configs(broker, name).get("cleanup.policy") for role, name in names.items()
    }
    assert policies == {
        "predictions": "delete",
        "labels": None,  # created above without settings
        "state": "compact",
        "results": "compact",
        "deadletter": "delete",
        "references": "compact",
        "alerts": "delete",
        "alert_deadletter": "delete",
    }
    assert int(topic_configs(broker, topics.predictions)["max.message.bytes"]) >= 4 * 1024 * 1024


# ---------------------------------------------------------------- broker


def test_broker_command_serves_clients_and_stops_on_sigint(tmp_path: Path) -> None:
    """It listens where it says, creates the configured topics, and exits 0 on Ctrl-C."""
    port = free_port()
    config, topics = write_config(tmp_path, "unused:1")
    process = subprocess.Popen(
        [DRIFTSTREAM, "broker", "--port", str(port), "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENVIRONMENT,
    )
    bootstrap = f"127.0.0.1:{port}"
    try:
        wait_until(lambda: topics.references in existing_topics_or_none(bootstrap, port), process)
        assert partition_counts(bootstrap, [topics.predictions]) == {topics.predictions: 2}
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        try:
            producer.send(topics.predictions, key=b"k", value=b"hello").get(TIMEOUT)
        finally:
            producer.close(TIMEOUT)
        [record] = read_topic(bootstrap, topics.predictions, 1)
        assert (record.key, record.value) == (b"k", b"hello")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.terminate()  # the command stops its broker on SIGTERM too
            process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, err
    lines = out.splitlines()
    assert f"kafka://127.0.0.1:{port}" in lines[0]
    assert "lost" in lines[0]
    assert lines[-1] == "broker stopped"
    assert not port_open(port)


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    """Poll ``condition`` until true; fail if ``process`` exits or after :data:`TIMEOUT`."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        try:
            process.wait(0.05)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"the process exited with {process.returncode}: {process.communicate()}")


def port_open(port: int) -> bool:
    """Whether something accepts connections on the loopback ``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def existing_topics_or_none(bootstrap: str, port: int) -> set[str]:
    """The broker's topics, or an empty set while its port is still closed."""
    if not port_open(port):
        return set()
    try:
        return existing_topics(bootstrap, {}, timeout=5)
    except DriftstreamError:
        return set()


# ---------------------------------------------------------------- parsing, no broker


def test_jsonl_lines_are_classified_counted_and_numbered() -> None:
    """Destination and prediction count per line; blank lines skipped; BOM tolerated."""
    lines = [
        b"\xef\xbb\xbf" + orjson.dumps(prediction("e1", "churn")) + b"\r\n",
        b"   \n",
        orjson.dumps(BATCH) + b"\n",
        orjson.dumps(label("e1", "churn")),
    ]
    items = list(jsonl_messages(lines, EventLimits()))
    assert all(isinstance(item, OutgoingMessage) for item in items)
    messages = [item for item in items if isinstance(item, OutgoingMessage)]
    assert [(m.line, m.destination, m.key, m.predictions) for m in messages] == [
        (1, Destination.PREDICTIONS, b"churn", 1),
        (3, Destination.PREDICTIONS, b"fraud", 4),
        (4, Destination.LABELS, b"churn", 0),
    ]
    assert messages[0].value == orjson.dumps(prediction("e1", "churn"))
    assert isinstance(LabelEvent.model_validate_json(messages[2].value), LabelEvent)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"{oops", "invalid_json: "),
        (b"[1, 2]", "schema: message must be a JSON object, not list"),
        (b'{"type": "feedback", "model": "m"}', "schema: type: Input should be 'prediction'"),
        (orjson.dumps({**label("e", "m"), "label": None}), "schema: label: a label must be"),
        (
            orjson.dumps({**BATCH, "predictions": [0]}),
            "event_ids has 4 entries but predictions has 1",
        ),
        (orjson.dumps(prediction("e", "m")), "schema: 2 features, the limit is 1"),
    ],
)
def test_jsonl_invalid_lines_say_why(line: bytes, reason: str) -> None:
    """Reasons are the worker's dead-letter reasons, with the configured limits."""
    [item] = jsonl_messages([b"\n", line], EventLimits(max_features=1))
    assert isinstance(item, InvalidLine)
    assert item.line == 2
    assert reason in item.reason


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("", None),
        ("1700000000000", 1_700_000_000_000),
        ("+3", 3),
        ("1.7e12", 1.7e12),
        ("2026-11-23T10:00:00Z", "2026-11-23T10:00:00Z"),
        ("1_000", "1_000"),
        (" 7", " 7"),
        ("NaN", "NaN"),
    ],
)
def test_csv_timestamps_are_epoch_milliseconds_or_text(cell: str, value: object) -> None:
    """Only plain decimal numbers are epoch milliseconds; anything else goes to RFC 3339."""
    parsed = timestamp_value(cell)
    assert parsed == value
    assert type(parsed) is type(value)


def test_csv_rows_are_numbered_by_their_first_line() -> None:
    """A quoted cell may span lines; short rows and bad predictions are reported per row."""
    text = (
        "event_id,model,model_version,timestamp,prediction,note\n"
        'a,m,1,1700000000000,1,"two\nlines"\n'
        "b,m,1,1700000000000,1\n"
        "c,m,1,1700000000000,{oops,x\n"
        "\n"
        "d,,1,1700000000000,1,x\n"
        "e,m,1,1700000000000,0.5,x\n"
    )
    items = list(csv_messages(io.StringIO(text, newline=""), EventLimits(), "p.csv"))
    summary = [(item.line, getattr(item, "reason", "ok")) for item in items]
    assert summary == [
        (2, "ok"),
        (4, "5 cells, the header has 6 columns"),
        (5, "prediction: starts with '{' but is not a JSON object of class probabilities"),
        (7, "schema: model: Input should be a valid string"),
        (8, "ok"),
    ]
    first = items[0]
    assert isinstance(first, OutgoingMessage)
    assert orjson.loads(first.value)["features"] == {"note": "two\nlines"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "p.csv: file is empty"),
        (
            "event_id,model,timestamp,prediction\n",
            "p.csv:1: missing required column(s) model_version",
        ),
        (
            "event_id,model,model_version,timestamp,prediction,x,x\n",
            "p.csv:1: duplicate column(s) x",
        ),
    ],
)
def test_csv_header_problems_stop_everything(content: str, message: str) -> None:
    """A bad header is one error at line 1 (no row can be read without it)."""
    with pytest.raises(DriftstreamError) as raised:
        list(csv_messages(io.StringIO(content), EventLimits(), "p.csv"))
    assert str(raised.value) == message


def test_read_events_picks_the_format_by_suffix_and_counts(tmp_path: Path) -> None:
    """JSONL and CSV by suffix; unknown suffixes and missing files are errors."""
    events = tmp_path / "events.ndjson"
    events.write_bytes(
        b"\n".join(orjson.dumps(d) for d in (BATCH, label("b1", "fraud"))) + b"\n{bad\n"
    )
    plan = read_events(events)
    assert (plan.predictions, plan.labels, len(plan.messages)) == (4, 1, 2)
    [invalid] = plan.invalid
    assert plan.describe(invalid).startswith(f"{events}:3: invalid_json: unexpected character")
    table = tmp_path / "rows.CSV"
    table.write_text("event_id,model,model_version,timestamp,prediction\nx,m,1,5,0\n")
    assert read_events(table).predictions == 1
    other = tmp_path / "x.parquet"
    other.write_bytes(b"PAR1")
    with pytest.raises(DriftstreamError) as unknown:
        read_events(other)
    assert str(unknown.value) == (
        f"{other}: unknown format '.parquet'; use .jsonl, .ndjson, .json, .csv"
    )
    with pytest.raises(DriftstreamError) as missing:
        read_events(tmp_path / "absent.jsonl")
    assert str(missing.value) == f"{tmp_path / 'absent.jsonl'}: no such file"


def test_tail_documents_fall_back_to_base64_and_report_bad_profiles() -> None:
    """Keys and values that are not UTF-8/JSON are base64, and marked as such."""
    document = record_document(TailTopic.DEADLETTER, 3, 9, b"\xff\xfe", b"not json")
    assert document == {
        "partition": 3,
        "offset": 9,
        "key": "//4=",
        "key_encoding": "base64",
        "value": "bm90IGpzb24=",
        "value_encoding": "base64",
    }
    tombstone = record_document(TailTopic.RESULTS, 0, 1, b"k", None)
    assert tombstone == {"partition": 0, "offset": 1, "key": "k", "value": None}
    bad = record_document(TailTopic.REFERENCES, 0, 0, b"k", b"PK\x03\x04 truncated zip")
    assert bad["value"] is None
    assert bad["error"] == "not a driftstream reference profile"


def test_default_config_has_every_topic_role() -> None:
    """topic_specs covers every role of the default configuration, names unique."""
    specs = topic_specs(DriftstreamConfig().topics)
    assert [spec.role for spec in specs] == [
        "predictions",
        "labels",
        "state",
        "results",
        "deadletter",
        "references",
        "alerts",
        "alert_deadletter",
    ]
    assert len({spec.name for spec in specs}) == 8
