"""Drill: bad records on the references topic never replace a good profile.

A good churn profile is published and windows are compared with it; then
the same key (``["churn","3"]``) gets a truncated profile, a corrupted one
(bytes flipped inside its zip), one above the size the worker reads, one of
a newer profile schema version, and one naming another model version. Each
is rejected with a log line and ``driftstream_references_rejected_total``;
windows after them still carry the good profile's ``reference.id``, and so
do those of a worker restarted after them (it reads the whole topic again).

What compaction would leave (the bad record alone under the key) is drilled
on a second worker: it comes up, counts the rejection, and compares windows
with its configured profile file.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import time
import urllib.request
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from monitor.catalog import profile_id
from monitor.publishing import publish_reference
from monitor.reference import ReferenceProfile
from monitor.simulation import CHURN, ServingSimulator
from monitor.topics import TopicRole, ensure_topics
from monitor.worker import MAX_REFERENCE_BYTES
from schemas.outputs import reference_key
from tests.worker_process import (
    WorkerProcess,
    churn_reference,
    latest_results,
    send,
    start_worker,
    wait_for,
    write_config,
)

START_MS = 1_700_000_000_000
WINDOW = 500
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
LOGGED = re.compile(r"rejected a record on the references topic \((\w+)\)")


def rejected(worker: WorkerProcess) -> Counter[str]:
    """driftstream_references_rejected_total by reason."""
    with DIRECT.open(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return Counter(
        {
            sample.labels["reason"]: int(sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "driftstream_references_rejected_total"
        }
    )


def newer_schema(data: bytes) -> bytes:
    """The same profile with ``schema_version`` one above what this driftstream reads."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "profile.json":
                header = json.loads(content)
                header["schema_version"] += 1
                content = json.dumps(header).encode()
            target.writestr(info, content)
    return buffer.getvalue()


def corrupted(data: bytes) -> bytes:
    """Bytes flipped in the middle (compressed sample data), the zip structure intact."""
    flipped = bytearray(data)
    for position in range(len(data) // 3, len(data) // 3 + 64):
        flipped[position] ^= 0xFF
    return bytes(flipped)


def produce(bootstrap: str, topic: str, key: bytes, values: list[bytes]) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=MAX_REFERENCE_BYTES + 4 * 1024 * 1024
    )
    try:
        for value in values:
            producer.send(topic, key=key, value=value).get(60)
    finally:
        producer.close()


def test_bad_references_are_rejected_and_the_good_one_stays(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    started = time.monotonic()
    path, config = write_config(tmp_path, broker, partitions=1)
    topics = config.topics
    good = churn_reference()
    good_bytes = good.to_bytes()
    good_id = profile_id(good_bytes)
    publish_reference(broker, {}, topics, good)
    worker = start_worker(path, workers)
    worker.wait_ready()
    simulator = ServingSimulator([CHURN], seed=11)
    sent = 0

    def play_window(expected: int) -> dict[bytes, dict[str, Any]]:
        nonlocal sent
        send(
            broker,
            topics.predictions,
            simulator.predictions(WINDOW, START_MS + sent * 100, 100),
        )
        sent += WINDOW
        return latest_results(broker, topics.results, expected)

    first = play_window(1)
    assert {r["reference"]["id"] for r in first.values()} == {good_id}

    other_version = dataclasses.replace(good, model_version="other")
    bad = {
        "invalid_profile": [good_bytes[: len(good_bytes) // 2], corrupted(good_bytes)],
        "too_large": [good_bytes + b"\0" * (MAX_REFERENCE_BYTES - len(good_bytes) + 1)],
        "unsupported_version": [newer_schema(good_bytes)],
        "invalid_key": [other_version.to_bytes()],
    }
    for reason, values in bad.items():
        for value in values:
            if reason != "too_large":
                try:
                    ReferenceProfile.from_bytes(value)
                except Exception:
                    continue
                assert reason == "invalid_key", f"a {reason} profile that reads"
    key = reference_key(CHURN.name, CHURN.version)
    produce(broker, topics.references, key, [v for values in bad.values() for v in values])
    expected = Counter({reason: len(values) for reason, values in bad.items()})

    def all_rejected(worker: WorkerProcess) -> bool:
        logged = Counter(LOGGED.findall(worker.log()))
        return rejected(worker) == expected and logged == expected

    wait_for(lambda: all_rejected(worker), 60, "every bad reference to be rejected")
    second = play_window(2)
    assert {r["reference"]["id"] for r in second.values()} == {good_id}
    assert worker.get("/ready")[1]["references"] == 1
    print(
        f"\nrejected while running: {dict(sorted(rejected(worker).items()))}; "
        f"{len(second)} windows, all on reference {good_id}"
    )

    # A restarted worker reads the good record, then the bad ones after it.
    assert worker.stop() == 0
    worker = start_worker(path, workers)
    assert worker.wait_ready()["references"] == 1
    wait_for(lambda: all_rejected(worker), 60, "the restarted worker to reject them too")
    third = play_window(3)
    assert {r["reference"]["id"] for r in third.values()} == {good_id}
    print(
        f"rejected after a restart: {dict(sorted(rejected(worker).items()))}; "
        f"{len(third)} windows, all on reference {good_id}"
    )
    for line in sorted(set(LOGGED.findall(worker.log()))):
        print(f"  logged: rejected ... ({line})")

    # What compaction leaves: only the last (bad) record under the key. The
    # configured profile file is then the version's reference.
    profile_file = tmp_path / "churn.dsprofile"
    profile_file.write_bytes(good_bytes)
    compacted_path, compacted = write_config(
        tmp_path, broker, partitions=1, models={CHURN.name: {"reference": str(profile_file)}}
    )
    only: tuple[TopicRole, ...] = ("references",)
    ensure_topics(broker, compacted.topics, {}, roles=only)
    produce(broker, compacted.topics.references, key, bad["invalid_profile"][1:])
    compacted_worker = start_worker(compacted_path, workers)
    assert compacted_worker.wait_ready()["references"] == 1
    wait_for(
        lambda: rejected(compacted_worker)["invalid_profile"] == 1,
        30,
        "the compacted topic's bad record to be rejected",
    )
    send(broker, compacted.topics.predictions, simulator.predictions(WINDOW, START_MS, 100))
    results = latest_results(broker, compacted.topics.results, 1)
    assert {r["reference"]["id"] for r in results.values()} == {good_id}
    print(
        f"compacted topic (bad record only) + profile file: {len(results)} window on "
        f"{good_id}; {time.monotonic() - started:.1f} s"
    )
