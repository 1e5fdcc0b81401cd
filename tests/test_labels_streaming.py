"""Labels published before their predictions, through the real broker and `driftstream run`.

The label topic is made to run fully ahead of the prediction topic: every
label is published with ``driftstream publish``, and the predictions only
once a snapshot of the worker shows it has consumed all of them. Expected
window performance is computed here from the published documents alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from monitor.catalog import ReferenceCatalog
from monitor.config import DriftstreamConfig
from monitor.partition import PartitionState
from monitor.publishing import publish_reference
from monitor.simulation import CHURN, ServingSimulator
from monitor.snapshots import latest_snapshot
from schemas.outputs import DeadLetter
from tests.conftest import read_all
from tests.console import run
from tests.worker_process import (
    WorkerProcess,
    churn_reference,
    latest_results,
    start_worker,
    wait_for,
    write_config,
)

START_MS = 1_700_000_000_000
STEP_MS = 100
PREDICTIONS = 2000
WINDOW_EVENTS = 500  # write_config's count windows
LABEL_DELAY_S = 2.0  # the simulator's default


def publish(
    folder: Path, config_path: Path, name: str, documents: Sequence[dict[str, Any]]
) -> None:
    """Send ``documents`` with ``driftstream publish`` (a JSONL file, one event a line)."""
    events = folder / f"{name}.jsonl"
    events.write_bytes(b"".join(orjson.dumps(document) + b"\n" for document in documents))
    result = run("publish", events, "--config", config_path)
    assert result.returncode == 0, result.stderr


def snapshot_state(config: DriftstreamConfig, broker: str) -> PartitionState | None:
    """The state of partition 0 as its latest snapshot holds it (``None`` before one)."""
    records = read_all(broker, config.topics.state)
    found = latest_snapshot([(r.key, r.value) for r in records if r.partition == 0], 0)
    return None if found is None else PartitionState.restore(found[1], config, ReferenceCatalog())


def wait_for_snapshot(
    config: DriftstreamConfig, broker: str, labels: int, predictions: int
) -> PartitionState:
    """Wait until a snapshot covers that many label and prediction messages."""

    def covered() -> PartitionState | None:
        state = snapshot_state(config, broker)
        if state is None:
            return None
        offsets = state.offsets
        done = (offsets.get(config.topics.labels, 0), offsets.get(config.topics.predictions, 0))
        return state if done == (labels, predictions) else None

    return wait_for(covered, 60, f"a snapshot covering {labels} labels, {predictions} predictions")


def window_performances(broker: str, config: DriftstreamConfig) -> list[dict[str, Any]]:
    """Each window's performance, by window id."""
    results = latest_results(broker, config.topics.results, PREDICTIONS // WINDOW_EVENTS)
    ordered = sorted(results.values(), key=lambda result: result["window"]["id"])
    assert [r["window"]["id"] for r in ordered] == list(range(PREDICTIONS // WINDOW_EVENTS))
    missing = [r["window"]["id"] for r in ordered if "performance" not in r]  # nothing joined
    assert not missing, f"windows without performance: {missing}"
    return [r["performance"] for r in ordered]


def labelled_per_window(predictions: list[dict[str, Any]], ids: set[str]) -> list[int]:
    """Predictions of each window that have a label."""
    return [
        sum(p["event_id"] in ids for p in predictions[start : start + WINDOW_EVENTS])
        for start in range(0, len(predictions), WINDOW_EVENTS)
    ]


def served(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The churn simulator's predictions (every 100 ms) and all their labels (2 s later)."""
    simulator = ServingSimulator([CHURN], seed=seed, unlabelled_share=0.1)
    predictions = simulator.predictions(PREDICTIONS, START_MS, STEP_MS)
    labels = simulator.labels_due(START_MS + 10**9)
    assert 0.8 * PREDICTIONS < len(labels) < PREDICTIONS
    return predictions, labels


def test_labels_ahead_of_their_predictions_all_join_across_a_kill_9(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    """All labels first, waiting in a snapshot through a kill -9; then the predictions:
    no label is dead-lettered and every window reports exactly its labelled predictions."""
    path, config = write_config(tmp_path, broker, partitions=1)
    publish_reference(broker, {}, config.topics, churn_reference())
    first = start_worker(path, workers)
    first.wait_ready()
    predictions, labels = served(seed=21)
    publish(tmp_path, path, "labels", labels)
    waiting = wait_for_snapshot(config, broker, len(labels), 0)
    assert waiting.joins[CHURN.name].waiting == len(labels)
    # The waiting labels now live only in the snapshot: their offsets may be committed.
    first.kill()

    second = start_worker(path, workers)
    second.wait_ready()
    publish(tmp_path, path, "predictions", predictions)
    performances = window_performances(broker, config)
    expected = labelled_per_window(predictions, {label["event_id"] for label in labels})
    assert [p["n_labeled"] for p in performances] == expected
    for performance in performances:
        assert performance["n_unlabeled"] == 0  # unlabelled ones wait: the TTL is 1 h
        assert performance["label_coverage"] == 1.0
        assert performance["label_delay_seconds"]["mean"] == LABEL_DELAY_S
        assert performance["label_delay_seconds"]["max"] == LABEL_DELAY_S
    final = wait_for_snapshot(config, broker, len(labels), len(predictions))
    assert final.joins[CHURN.name].waiting == 0
    assert read_all(broker, config.topics.deadletter) == []
    status, view = second.get("/models")
    assert status == 200
    assert view[CHURN.name][CHURN.version]["labels"] == {"joined": len(labels)}


def test_only_labels_without_a_prediction_are_dead_lettered_when_labels_run_ahead(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    """Control: orphan labels and second labels of a prediction wait, then leave as
    ``unmatched_label`` once the predictions are more than the TTL (30 s) past them;
    every other label joins, and unlabelled predictions leave where the TTL says."""
    ttl_ms = 30_000
    path, config = write_config(tmp_path, broker, partitions=1, defaults={"label_join_ttl": "30s"})
    publish_reference(broker, {}, config.topics, churn_reference())
    worker = start_worker(path, workers)
    worker.wait_ready()
    predictions, labels = served(seed=22)
    orphans = [
        {**labels[0], "event_id": f"never-predicted-{i}", "timestamp": START_MS + 5_000 * i}
        for i in range(20)
    ]
    seconds = [
        {**label, "label": "other", "timestamp": label["timestamp"] + 1}
        for label in labels[:600:60]
    ]
    # Oldest first, so a second label arrives after the first one of its prediction.
    ahead = sorted(labels + orphans + seconds, key=lambda label: label["timestamp"])
    publish(tmp_path, path, "labels", ahead)
    wait_for_snapshot(config, broker, len(ahead), 0)
    publish(tmp_path, path, "predictions", predictions)

    performances = window_performances(broker, config)
    ids = {label["event_id"] for label in labels}
    assert [p["n_labeled"] for p in performances] == labelled_per_window(predictions, ids)
    # An unlabelled prediction at p leaves with the first prediction after p + ttl,
    # and counts in that prediction's window.
    unlabelled = [i for i, p in enumerate(predictions) if p["event_id"] not in ids]
    leaves_at = [i + ttl_ms // STEP_MS + 1 for i in unlabelled]
    expected_unlabelled = [
        sum(start <= j < start + WINDOW_EVENTS for j in leaves_at)
        for start in range(0, PREDICTIONS, WINDOW_EVENTS)
    ]
    assert [p["n_unlabeled"] for p in performances] == expected_unlabelled
    assert all(p["label_delay_seconds"]["max"] == LABEL_DELAY_S for p in performances)

    final = wait_for_snapshot(config, broker, len(ahead), len(predictions))
    # Every orphan and second label is older than the last prediction minus the TTL.
    assert (
        max(label["timestamp"] for label in orphans + seconds) + ttl_ms
        < predictions[-1]["timestamp"]
    )
    assert final.joins[CHURN.name].waiting == 0
    records = read_all(broker, config.topics.deadletter)
    letters = [DeadLetter.model_validate_json(record.value) for record in records]
    assert {letter.reason for letter in letters} == {"unmatched_label"}
    unmatched = [orjson.loads(letter.raw_bytes()) for letter in letters]
    assert sorted(unmatched, key=orjson.dumps) == sorted(orphans + seconds, key=orjson.dumps)
    assert all("within the label join TTL (30 s)" in letter.error for letter in letters)
    assert {letter.source.topic for letter in letters} == {config.topics.labels}
    status, view = worker.get("/models")
    assert status == 200
    assert view[CHURN.name][CHURN.version]["labels"] == {"joined": len(labels)}
