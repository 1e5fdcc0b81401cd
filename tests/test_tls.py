"""Kafka over TLS: the worker, the producer helper and the CLI through a TLS relay.

The broker listens in plaintext on one port and advertises only the relay's
TLS port (see ``tests/tls_relay.py``), with a certificate from a CA made for
this test. With ``security_protocol: SSL`` and ``ssl_cafile`` the producer
helper sends, the worker evaluates and the CLI reads results; a client that
does not trust the CA, and a plaintext client, are refused.
"""

from __future__ import annotations

import socket
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import yaml

from monitor.broker import EmbeddedBroker, free_port
from monitor.config import load_config
from monitor.demo import demo_profiles
from monitor.publishing import publish_reference
from monitor.simulation import ServingSimulator
from schemas.producer import PredictionProducer
from tests.conftest import read_topic
from tests.console import run
from tests.tls_relay import make_certificates, tls_relay
from tests.worker_process import WorkerProcess, start_worker, wait_for, write_config

START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_worker_producer_and_cli_work_over_tls_and_strangers_are_refused(
    tmp_path: Path, workers: list[WorkerProcess], broker_log: Path
) -> None:
    certificates = make_certificates(tmp_path)
    relay_port = free_port()
    embedded = EmbeddedBroker(log_path=broker_log, advertised_port=relay_port)
    plaintext = embedded.start()
    secure = f"127.0.0.1:{relay_port}"
    try:
        with tls_relay(relay_port, embedded.port, certificates) as relay:
            path, _ = write_config(tmp_path, plaintext, partitions=1)
            document = yaml.safe_load(path.read_text())
            document["broker"] = {
                "url": f"kafka://{secure}",
                "security_protocol": "SSL",
                "ssl_cafile": str(certificates.ca),
            }
            path.write_text(yaml.safe_dump(document))
            config = load_config(path)
            options = config.broker.client_options()
            assert options["security_protocol"] == "SSL"

            [churn] = [p for p in demo_profiles(seed=0) if p.model == "churn"]
            publish_reference(secure, options, config.topics, churn)
            worker = start_worker(path, workers)
            worker.wait_ready()

            # The producer helper, over TLS.
            simulator = ServingSimulator(["churn"], seed=8)
            documents = simulator.predictions(1000, int(START.timestamp() * 1000), 10)
            with PredictionProducer(
                secure, prediction_topic=config.topics.predictions, **options
            ) as producer:
                for i, doc in enumerate(documents):
                    producer.predict(
                        "churn",
                        doc["model_version"],
                        doc["features"],
                        doc["prediction"],
                        event_id=doc["event_id"],
                        timestamp=START + timedelta(milliseconds=10 * i),
                    )

            # The worker's results, read through TLS by the test and by the CLI.
            records = read_topic(secure, config.topics.results, 2, 90, options)
            assert sorted(orjson.loads(r.value)["n_events"] for r in records) == [500, 500]
            tailed = run("tail", "results", "--config", str(path), "--max", "2", "--timeout", "30")
            assert tailed.returncode == 0, tailed.stderr
            assert len([line for line in tailed.stdout.splitlines() if line.strip()]) == 2

            # Strangers: a TLS client that does not trust the test CA is
            # refused at the handshake; a plaintext Kafka request (ApiVersions)
            # gets no answer.
            before = relay.refused
            with (
                socket.create_connection(("127.0.0.1", relay_port), timeout=5) as raw,
                pytest.raises(ssl.SSLCertVerificationError),
                ssl.create_default_context().wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                pass
            with socket.create_connection(("127.0.0.1", relay_port), timeout=5) as raw:
                raw.sendall(bytes.fromhex("0000000c001200000000000100017800"))
                try:
                    answer = raw.recv(4096)
                except (ConnectionError, TimeoutError):
                    answer = b""
                assert answer == b"", "a plaintext request was answered"
            wait_for(lambda: relay.refused >= before + 2, 10, "two refused handshakes")
            # Workers stop while the relay still runs: a worker waits for its
            # broker at shutdown.
            for started in workers:
                assert started.stop() == 0
    finally:
        # After a failure the relay may be gone already: no graceful stop then.
        for started in workers:
            if started.process is not None and started.process.poll() is None:
                started.kill()
        embedded.stop()
