"""Drill: traffic at twice the rate the worker was just measured to handle.

The worker's rate is measured on a first burst; then events are produced at
twice that rate for 10 s. Lag builds up and drains, the worker's memory stays
bounded, ``/ready`` and ``/metrics`` keep answering throughout, and every
event ends up in exactly one window result.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from pathlib import Path

import orjson
import psutil
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from monitor.demo import demo_profiles
from monitor.publishing import publish_reference
from monitor.simulation import ServingSimulator
from tests.worker_process import (
    WorkerProcess,
    expected_results,
    latest_results,
    send,
    start_worker,
    wait_for,
    write_config,
)

START_MS = 1_700_000_000_000
WINDOW = 500
OVERLOAD_SECONDS = 10
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def processed(worker: WorkerProcess) -> int:
    status, body = worker.get("/models")
    assert status == 200
    return sum(
        int(version["events"].get("processed", 0))
        for versions in body.values()
        for version in versions.values()
    )


def lag(worker: WorkerProcess) -> float:
    """The worker's prediction-topic lag, from its /metrics."""
    url = f"http://127.0.0.1:{worker.metrics_port}/metrics"
    with DIRECT.open(url, timeout=5) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "driftstream_consumer_lag_messages"
        and sample.labels["topic"].startswith("predictions")
    )


def test_twice_the_measured_rate_builds_lag_that_drains(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    path, config = write_config(tmp_path, broker, partitions=1)
    [churn] = [p for p in demo_profiles(seed=0) if p.model == "churn"]
    publish_reference(broker, {}, config.topics, churn)
    worker = start_worker(path, workers)
    worker.wait_ready()
    assert worker.process is not None
    memory = psutil.Process(worker.process.pid)
    simulator = ServingSimulator(["churn"], seed=6)

    # Measure: a burst of 5,000 events, timed from send to processed.
    warm = simulator.predictions(5000, START_MS, 10)
    began = time.monotonic()
    send(broker, config.topics.predictions, warm)
    wait_for(lambda: processed(worker) >= len(warm), 120, "the measuring burst")
    rate = len(warm) / (time.monotonic() - began)
    rss_before = memory.memory_info().rss

    # Overload: twice that rate for OVERLOAD_SECONDS, paced in 0.1 s ticks.
    target = int(2 * rate * OVERLOAD_SECONDS)
    flood = simulator.predictions(target, START_MS + len(warm) * 10, 10)
    done = threading.Event()

    def produce() -> None:
        producer = KafkaProducer(bootstrap_servers=broker, linger_ms=5)
        started = time.monotonic()
        sent = 0
        try:
            while sent < len(flood):
                due = min(len(flood), int((time.monotonic() - started) * 2 * rate))
                for document in flood[sent:due]:
                    producer.send(
                        config.topics.predictions, key=b"churn", value=orjson.dumps(document)
                    )
                sent = due
                time.sleep(0.1)
            producer.flush(30)
        finally:
            producer.close()
            done.set()

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    peak_lag, peak_rss, answers = 0.0, rss_before, 0
    deadline = time.monotonic() + OVERLOAD_SECONDS + 120
    # Through the overload and the drain: the endpoints answer, memory is watched.
    while time.monotonic() < deadline:
        assert worker.get("/ready")[0] == 200
        peak_lag = max(peak_lag, lag(worker))
        peak_rss = max(peak_rss, memory.memory_info().rss)
        answers += 1
        if done.is_set() and processed(worker) >= len(warm) + len(flood):
            break
        time.sleep(0.5)
    thread.join(30)
    assert done.is_set()
    assert processed(worker) == len(warm) + len(flood), "the backlog did not drain in time"
    wait_for(lambda: lag(worker) == 0, 30, "the lag gauge to return to 0")

    produced = len(warm) + len(flood)
    windows = produced // WINDOW
    results = latest_results(broker, config.topics.results, windows)
    assert results == expected_results(config, broker, [churn], produced)
    assert sum(r["n_events"] for r in results.values()) == windows * WINDOW
    growth = (peak_rss - rss_before) / rss_before
    print(
        f"measured {rate:.0f} events/s; produced {len(flood)} at {2 * rate:.0f}/s for "
        f"{OVERLOAD_SECONDS} s; peak lag {peak_lag:.0f}; RSS {rss_before / 2**20:.0f} -> "
        f"peak {peak_rss / 2**20:.0f} MiB ({growth:+.0%}); {answers} /ready and /metrics "
        f"answers; {produced} events in {len(results)} windows"
    )
    assert peak_lag > 0, "twice the rate built no lag: the measurement was off"
    assert growth < 0.5, "memory grew with the backlog"
