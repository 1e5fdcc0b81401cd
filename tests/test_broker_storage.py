"""The embedded broker's storage: memory by default, or durable ``s3://`` on a local moto.

With S3 storage, topics, records and a group's committed offsets survive a
``kill -9`` of the broker and a restart on the same port and bucket.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata
from typer.testing import CliRunner

from monitor.broker import MEMORY_STORAGE, EmbeddedBroker, check_storage
from monitor.cli import app
from tests.conftest import read_all
from tests.console import DRIFTSTREAM, ENVIRONMENT
from tests.s3_server import object_count, s3_server

TIMEOUT = 30.0


@pytest.mark.parametrize("url", ["memory://tansu/", "memory://other/", "s3://tansu/", "s3://b"])
def test_memory_and_s3_urls_are_accepted(url: str) -> None:
    assert check_storage(url) == url


@pytest.mark.parametrize(
    "url", ["", "tansu", "file:///tmp/tansu", "postgres://pg@localhost", "s3://", "S3:/x"]
)
def test_other_storage_urls_are_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(ValueError, match=r"^--storage: .*memory://tansu/ or s3://BUCKET/"):
        check_storage(url, "--storage")


def test_the_default_storage_is_memory() -> None:
    assert EmbeddedBroker().storage == MEMORY_STORAGE == "memory://tansu/"


def test_a_broker_refuses_bad_storage_before_starting() -> None:
    with pytest.raises(ValueError, match=r"^storage: 'file:///x'"):
        EmbeddedBroker(storage="file:///x")


def test_the_broker_command_names_the_option_of_a_bad_storage_url() -> None:
    outcome = CliRunner().invoke(app, ["broker", "--port", "0", "--storage", "file:///x"])
    assert outcome.exit_code == 2
    assert "error: --storage: 'file:///x' is not a storage URL" in outcome.output


def test_the_broker_command_help_names_the_s3_environment() -> None:
    outcome = CliRunner().invoke(app, ["broker", "--help"], env={"COLUMNS": "200"})
    assert outcome.exit_code == 0
    text = " ".join(outcome.output.replace("│", " ").split())
    for name in ("AWS_ENDPOINT", "AWS_ALLOW_HTTP", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert name in text
    assert "--storage URL" in text


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        for number in range(count):
            producer.send(topic, key=b"k", value=str(number).encode())
        producer.flush(TIMEOUT)
    finally:
        producer.close(TIMEOUT)


def test_s3_storage_keeps_topics_records_and_offsets_across_a_broker_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with s3_server(tmp_path / "moto.log") as s3:
        for name, value in s3.env.items():
            monkeypatch.setenv(name, value)
        first = EmbeddedBroker(log_path=tmp_path / "broker.log", storage=s3.storage)
        bootstrap = first.start()
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap)
            try:
                admin.create_topics([NewTopic("kept", num_partitions=2, replication_factor=1)])
            finally:
                admin.close()
            produce(bootstrap, "kept", 500)
            consumer = KafkaConsumer(
                bootstrap_servers=bootstrap, group_id="kept-group", enable_auto_commit=False
            )
            partition = TopicPartition("kept", 0)
            try:
                consumer.assign([partition, TopicPartition("kept", 1)])
                consumer.commit({partition: OffsetAndMetadata(123, "", -1)})
            finally:
                consumer.close()
            assert first.process is not None
            os.kill(first.process.pid, signal.SIGKILL)
            first.process.wait(10)
        finally:
            first.stop()
        assert object_count(s3) > 0

        second = EmbeddedBroker(
            port=first.port, log_path=tmp_path / "broker.log", storage=s3.storage
        )
        second.start()
        try:
            records = read_all(bootstrap, "kept")
            assert sorted(int(r.value) for r in records) == list(range(500))
            consumer = KafkaConsumer(
                bootstrap_servers=bootstrap, group_id="kept-group", enable_auto_commit=False
            )
            try:
                assert consumer.partitions_for_topic("kept") == {0, 1}
                assert consumer.committed(partition) == 123
            finally:
                consumer.close()
        finally:
            second.stop()


def test_the_broker_command_runs_on_s3_storage(tmp_path: Path) -> None:
    with s3_server(tmp_path / "moto.log") as s3:
        process = subprocess.Popen(
            [DRIFTSTREAM, "broker", "--port", "0", "--storage", s3.storage],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**ENVIRONMENT, **s3.env},
        )
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            assert f"(Tansu, storage {s3.storage})" in first, first
            assert "lost" not in first
            time.sleep(0.2)
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=TIMEOUT)
        finally:
            if process.poll() is None:
                process.terminate()
                process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0, err
        assert out.splitlines()[-1] == "broker stopped"
