"""The worker end to end: `driftstream run` processes against a real broker process."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
import yaml
from kafka.partitioner.default import murmur2
from scipy.stats import ks_2samp

from monitor.catalog import ReferenceCatalog
from monitor.config import DriftstreamConfig
from monitor.partition import PartitionState
from monitor.publishing import publish_reference
from monitor.reference import ReferenceProfile
from monitor.simulation import CHURN, ServingSimulator
from monitor.snapshots import latest_snapshot
from tests.conftest import read_all, read_topic
from tests.worker_process import (
    WorkerProcess,
    churn_reference,
    expected_results,
    latest_results,
    send,
    start_worker,
    wait_for,
    write_config,
)

START_MS = 1_700_000_000_000


def profile_data(seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """4000 rows distributed like ``events``' traffic, ``x`` moved by ``shift``."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=4000) + shift,
            "y": rng.normal(size=4000),
            "plan": rng.choice(["a", "b", "c"], size=4000, p=[0.5, 0.3, 0.2]),
        }
    )


def profile_for(model: str, version: str, seed: int = 0) -> ReferenceProfile:
    return ReferenceProfile.from_frame(profile_data(seed), model=model, model_version=version)


def events(
    n: int, model: str = "m", version: str = "1", start: int = 0, seed: int = 1
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    plans = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    return [
        {
            "event_id": f"{model}-{start + i}",
            "model": model,
            "model_version": version,
            "timestamp": START_MS + 1000 * (start + i),
            "features": {
                "x": round(float(rng.normal()), 6),
                "y": round(float(rng.normal()), 6),
                "plan": str(plans[i]),
            },
            "prediction": 0.5,
        }
        for i in range(n)
    ]


def models_view(worker: WorkerProcess) -> dict[str, Any]:
    status, body = worker.get("/models")
    assert status == 200
    return dict(body)


def test_drift_is_flagged_in_the_right_windows_with_labels_and_endpoints(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    """Healthy windows stay ok; after the injected drift exactly the drifted features flag."""
    path, config = write_config(tmp_path, broker)
    profile = churn_reference()
    publish_reference(broker, {}, config.topics, profile)
    worker = start_worker(path, workers)
    ready = worker.wait_ready()
    assert worker.get("/health") == (200, {"status": "alive"})
    assert ready["references"] == 1
    assert ready["references_loaded"]

    simulator = ServingSimulator([CHURN], seed=3, drift_after_events=1000, unlabelled_share=0.1)
    healthy = simulator.predictions(1000, START_MS, 100)
    send(broker, config.topics.predictions, healthy)
    latest_results(broker, config.topics.results, 2)
    labels = simulator.labels_due(START_MS + 10**7)
    assert 800 < len(labels) < 1000
    send(broker, config.topics.labels, labels)

    def joined() -> int:
        view = models_view(worker)[CHURN.name][CHURN.version]
        return int(view["labels"].get("joined", 0))

    wait_for(lambda: joined() == len(labels), 60, "labels to be joined")
    send(broker, config.topics.predictions, simulator.predictions(1000, START_MS + 10**5, 100))
    results = latest_results(broker, config.topics.results, 4)
    by_window = {r["window"]["id"]: r for r in results.values()}
    assert sorted(by_window) == [0, 1, 2, 3]
    assert by_window[0]["drifted_features"] == by_window[1]["drifted_features"] == []
    drifted = simulator.drifted_features(CHURN.name)
    assert len(drifted) == 3  # two numeric features, one categorical
    for window in (2, 3):
        assert set(by_window[window]["drifted_features"]) == drifted
        assert by_window[window]["prediction"]["severity"] != "ok"
        assert by_window[window]["n_events"] == 500
    performance = by_window[2]["performance"]
    assert performance["n_labeled"] == len(labels)
    assert 0.5 < performance["metrics"]["accuracy"] <= 1.0
    assert performance["label_delay_seconds"]["mean"] == pytest.approx(2.0)

    status, drift = worker.get(f"/models/{CHURN.name}/drift")
    assert status == 200
    assert [r["window"]["id"] for r in drift["versions"][CHURN.version]] == [0, 1, 2, 3]
    view = models_view(worker)[CHURN.name][CHURN.version]
    assert view["events"] == {"processed": 2000}
    assert view["latest_window"]["severity"] in {"warning", "critical"}
    assert worker.get("/models/nothing/drift")[0] == 404


def test_malformed_input_is_dead_lettered_and_nothing_is_lost(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    path, config = write_config(tmp_path, broker, limits={"max_message_bytes": 4096})
    publish_reference(broker, {}, config.topics, profile_for("m", "1"))
    worker = start_worker(path, workers)
    worker.wait_ready()
    good = events(500)
    bad: list[Any] = [
        b"{not json",
        orjson.dumps({"model": "m", "features": {}}),
        b'{"padding": "' + b"x" * 5000 + b'"}',
        orjson.dumps(events(1, version="9")[0]),
    ]
    send(broker, config.topics.predictions, good[:200] + bad + good[200:])
    # More than the label join TTL (1 h) before every prediction: its prediction can no
    # longer come, so it is dead-lettered as soon as a prediction has been seen.
    label = {
        "event_id": "never-predicted",
        "model": "m",
        "label": 1,
        "timestamp": START_MS - 3_600_001,
    }
    send(broker, config.topics.labels, [label, b"[]"])
    letters = [orjson.loads(r.value) for r in read_topic(broker, config.topics.deadletter, 6)]
    reasons = sorted(letter["reason"] for letter in letters)
    assert reasons == sorted(
        ["invalid_json", "schema", "too_large", "no_reference", "unmatched_label", "schema"]
    )
    for letter in letters:
        assert letter["error"]
        assert letter["source"]["topic"] in {
            config.topics.predictions,
            config.topics.labels,
        }
    # the worker kept going: the window completed by events after the bad ones closed
    (result,) = latest_results(broker, config.topics.results, 1).values()
    assert result["n_events"] == 500
    view = models_view(worker)
    processed = view["m"]["1"]["events"]["processed"]
    predictions_dead = sum(
        1 for letter in letters if letter["source"]["topic"] == config.topics.predictions
    )
    assert processed + predictions_dead == len(good) + len(bad)


def test_batch_messages_give_the_same_results_as_single_events(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    path, config = write_config(tmp_path, broker)
    for version in ("single", "batch"):
        publish_reference(broker, {}, config.topics, profile_for("m", version))
    worker = start_worker(path, workers)
    worker.wait_ready()
    docs = events(1000, version="single")
    batches = [
        {
            "type": "prediction_batch",
            "model": "m",
            "model_version": "batch",
            "event_ids": [d["event_id"] for d in chunk],
            "timestamps": [d["timestamp"] for d in chunk],
            "features": {f: [d["features"][f] for d in chunk] for f in ("x", "y", "plan")},
            "predictions": [d["prediction"] for d in chunk],
        }
        for chunk in (docs[i : i + 128] for i in range(0, 1000, 128))
    ]
    send(broker, config.topics.predictions, docs + batches)
    results = latest_results(broker, config.topics.results, 4)

    def comparable(result: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in result.items() if k not in {"model_version", "reference"}}

    by_version: dict[str, list[dict[str, Any]]] = {}
    for result in sorted(results.values(), key=lambda r: r["window"]["id"]):
        by_version.setdefault(result["model_version"], []).append(comparable(result))
    assert len(by_version["single"]) == 2
    assert by_version["batch"] == by_version["single"]


def test_a_reference_published_mid_stream_is_picked_up(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    path, config = write_config(tmp_path, broker)
    worker = start_worker(path, workers)
    assert worker.wait_ready()["references"] == 0
    send(broker, config.topics.predictions, events(50))
    letters = read_topic(broker, config.topics.deadletter, 50)
    assert {orjson.loads(r.value)["reason"] for r in letters} == {"no_reference"}
    publish_reference(broker, {}, config.topics, profile_for("m", "1"))
    wait_for(
        lambda: models_view(worker).get("m", {}).get("1", {}).get("reference"),
        30,
        "the reference to be loaded",
    )
    send(broker, config.topics.predictions, events(500, start=50))
    (result,) = latest_results(broker, config.topics.results, 1).values()
    assert result["n_events"] == 500
    assert result["window"]["start_event"] == 0


def test_a_replaced_reference_applies_to_windows_opened_after_it_arrives(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    """Windows of 500 events sliding by 250 over healthy traffic; a reference shifted in ``x``
    replaces the first once event 600 has been processed. Windows 0 and 1 (opened before)
    are compared with the old reference and are ok, window 2 (a pane on each) is skipped,
    windows 3 and 4 use the new one, name it, and the same traffic drifts in ``x``."""
    sliding = {"window": {"type": "sliding", "size_events": 500, "slide_events": 250}}
    path, config = write_config(tmp_path, broker, partitions=1, defaults=sliding)
    old_data, new_data = profile_data(), profile_data(seed=7, shift=1.0)
    old, new = (ReferenceProfile.from_frame(d, "m", "1") for d in (old_data, new_data))
    old_id, new_id = (hashlib.sha256(p.to_bytes()).hexdigest()[:16] for p in (old, new))
    assert old_id != new_id
    publish_reference(broker, {}, config.topics, old)
    worker = start_worker(path, workers)
    worker.wait_ready()
    docs = events(1500)
    send(broker, config.topics.predictions, docs[:600])
    wait_for(
        lambda: models_view(worker).get("m", {}).get("1", {}).get("events") == {"processed": 600},
        30,
        "the first 600 events to be processed",
    )
    publish_reference(broker, {}, config.topics, new)
    wait_for(
        lambda: f"reference m/1 is now {new_id}" in worker.log(), 30, "the new reference to load"
    )
    send(broker, config.topics.predictions, docs[600:])
    results = latest_results(broker, config.topics.results, 4)
    by_window = {r["window"]["id"]: r for r in results.values()}
    assert {w: r["reference"]["id"] for w, r in by_window.items()} == {
        0: old_id,
        1: old_id,
        3: new_id,
        4: new_id,
    }
    assert {w: r["drifted_features"] for w, r in by_window.items()} == {
        0: [],
        1: [],
        3: ["x"],
        4: ["x"],
    }
    for window, result in by_window.items():
        expected = ks_2samp(
            [d["features"]["x"] for d in docs[250 * window : 250 * window + 500]],
            (old_data if window < 2 else new_data)["x"],
        )
        ks = result["features"]["x"]["tests"]["ks"]
        assert (ks["statistic"], ks["p_value"]) == (
            pytest.approx(expected.statistic),
            pytest.approx(expected.pvalue),
        ), window
    assert models_view(worker)["m"]["1"]["events"] == {"processed": 1500}


def snapshot_offset(config: DriftstreamConfig, broker: str, partition: int) -> int:
    """The prediction offset the latest snapshot of ``partition`` covers (0 if none)."""
    records = read_all(broker, config.topics.state)
    found = latest_snapshot(
        [(r.key, r.value) for r in records if r.partition == partition], partition
    )
    if found is None:
        return 0
    state = PartitionState.restore(found[1], config, ReferenceCatalog())
    return state.offsets.get(config.topics.predictions, 0)


def test_kill_9_mid_window_loses_nothing_and_counts_nothing_twice(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    path, config = write_config(tmp_path, broker, partitions=1)
    profile = profile_for("m", "1")
    publish_reference(broker, {}, config.topics, profile)
    first = start_worker(path, workers)
    first.wait_ready()
    send(broker, config.topics.predictions, events(1250))
    latest_results(broker, config.topics.results, 2)
    # wait until a snapshot covers the half-full window, then kill -9
    wait_for(lambda: snapshot_offset(config, broker, 0) == 1250, 30, "a snapshot")
    first.kill()

    send(broker, config.topics.predictions, events(600, start=1250))
    second = start_worker(path, workers)
    second.wait_ready()
    latest_results(broker, config.topics.results, 3)
    assert "restored snapshot" in second.log()
    # kill again right after more events were processed, whether or not a
    # snapshot covers them yet: they are replayed, not lost or doubled
    send(broker, config.topics.predictions, events(100, start=1850))
    wait_for(
        lambda: models_view(second)["m"]["1"]["events"].get("processed", 0) >= 600,
        30,
        "the second worker to process its events",
    )
    second.kill()

    send(broker, config.topics.predictions, events(50, start=1950))
    third = start_worker(path, workers)
    third.wait_ready()
    results = latest_results(broker, config.topics.results, 4)
    assert results == expected_results(config, broker, [profile], 2000)
    assert [r["n_events"] for r in results.values()] == [500, 500, 500, 500]


def test_two_workers_split_partitions_and_agree_with_one(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    path, config = write_config(tmp_path, broker, partitions=4)
    models = [f"model-{i}" for i in range(6)]
    partitions = {murmur2(m.encode()) % 4 for m in models}
    assert len(partitions) >= 2  # the models really spread over partitions
    profiles = [profile_for(m, "1", seed=i) for i, m in enumerate(models)]
    for profile in profiles:
        publish_reference(broker, {}, config.topics, profile)
    one, two = start_worker(path, workers), start_worker(path, workers)

    def split() -> tuple[list[int], list[int]] | None:
        first, second = one.wait_ready()["partitions"], two.wait_ready()["partitions"]
        if first and second and sorted(first + second) == [0, 1, 2, 3]:
            return first, second
        return None

    first, second = wait_for(split, 90, "the two workers to split the partitions")
    assert not set(first) & set(second)
    docs = [e for i, m in enumerate(models) for e in events(1000, model=m, seed=i)]
    send(broker, config.topics.predictions, docs)
    results = latest_results(broker, config.topics.results, 12)
    assert results == expected_results(config, broker, profiles, len(docs))
    # each model's results sit in its input partition, in window order
    written: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
    for record in read_all(broker, config.topics.results):
        result = orjson.loads(record.value)
        written[result["model"]].append((record.partition, result["window"]["id"]))
    for model in models:
        assert {p for p, _ in written[model]} == {murmur2(model.encode()) % 4}, model
        ids = [window for _, window in written[model]]
        assert ids == sorted(ids), model
    seen = [
        {m for m, versions in models_view(w).items() if versions.get("1", {}).get("events")}
        for w in (one, two)
    ]
    assert seen[0]
    assert seen[1]
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] >= set(models)


def test_run_without_a_broker_starts_the_embedded_one_and_stops_cleanly(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    path, _ = write_config(tmp_path, broker)
    document = yaml.safe_load(path.read_text())
    del document["broker"]
    path.write_text(yaml.safe_dump(document))
    worker = start_worker(path, workers)
    assert worker.wait_ready()["partitions"] == [0, 1]
    assert "No broker configured: started the embedded development broker" in worker.log()
    assert worker.stop() == 0
    # The worker ran in tmp_path: Faust's data folder went elsewhere.
    assert not [entry.name for entry in tmp_path.iterdir() if entry.is_dir()]
