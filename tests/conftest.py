"""Shared fixtures: a real Kafka-protocol broker process on a loopback port."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.consumer.fetcher import ConsumerRecord

from monitor.broker import EmbeddedBroker

# helper modules whose asserts should explain themselves like tests' do
pytest.register_assert_rewrite("tests.evidently_html")

if TYPE_CHECKING:
    from tests.worker_process import WorkerProcess


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Tansu broker (memory storage) for the whole session; yields ``host:port``."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    embedded = EmbeddedBroker(log_path=log)
    embedded.start()
    try:
        yield embedded.bootstrap_servers
    finally:
        embedded.stop()


def create_topic(bootstrap_servers: str, partitions: int = 1, prefix: str = "test") -> str:
    """A new topic with a unique name (the test broker misbehaves on reused groups/topics)."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()
    return name


@contextmanager
def consumer_from_start(
    bootstrap_servers: str, topic: str, options: Mapping[str, Any] | None = None
) -> Iterator[tuple[KafkaConsumer, list[TopicPartition]]]:
    """A group-less consumer of every partition of ``topic``, at the start.

    ``options`` are kafka-python client settings (security).
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap_servers, enable_auto_commit=False, **dict(options or {})
    )
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        yield consumer, partitions
    finally:
        consumer.close()


def read_topic(
    bootstrap_servers: str,
    topic: str,
    expected: int,
    timeout: float = 30.0,
    options: Mapping[str, Any] | None = None,
) -> list[ConsumerRecord]:
    """Read ``expected`` records from every partition of ``topic``, from the start.

    Polls with a timeout instead of sleeping; fails if fewer arrive in time.
    """
    records: list[ConsumerRecord] = []
    with consumer_from_start(bootstrap_servers, topic, options) as (consumer, _):
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
    assert len(records) >= expected, f"{len(records)} of {expected} records arrived"
    return records


def read_all(bootstrap_servers: str, topic: str, timeout: float = 30.0) -> list[ConsumerRecord]:
    """Every record of ``topic`` now, read until each partition's high-water mark.

    The high-water mark comes from fetch responses (the test broker answers
    end-offset requests wrongly).
    """
    records: list[ConsumerRecord] = []
    with consumer_from_start(bootstrap_servers, topic) as (consumer, partitions):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            if all(
                (mark := consumer.highwater(tp)) is not None and consumer.position(tp) >= mark
                for tp in partitions
            ):
                return records
    raise AssertionError(f"could not read {topic} to its end in {timeout} s")


@pytest.fixture
def broker_log(tmp_path: Path) -> Path:
    """Where a test's own broker writes its log."""
    return tmp_path / "broker.log"


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    """Worker processes a test starts; all stopped at the end."""
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()
