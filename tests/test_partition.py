"""PartitionState: the whole per-partition pipeline without a broker."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp

from monitor.catalog import ReferenceCatalog
from monitor.config import DriftstreamConfig
from monitor.framing import frame, unframe
from monitor.partition import (
    SNAPSHOT_MAGIC,
    SNAPSHOT_VERSION,
    InputMessage,
    Outputs,
    PartitionState,
)
from monitor.reference import ReferenceProfile
from schemas.outputs import DeadLetter, WindowResult

TOPIC = "predictions"
LABELS = "labels"


def config(**defaults: Any) -> DriftstreamConfig:
    return DriftstreamConfig(
        topics={"predictions": TOPIC, "labels": LABELS},
        defaults={"window": {"size_events": 500}, **defaults},
    )


def reference_data(seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """5000 rows distributed like ``events``' traffic, ``x`` moved by ``shift``."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=5000) + shift,
            "y": rng.normal(size=5000),
            "plan": rng.choice(["a", "b", "c"], size=5000, p=[0.5, 0.3, 0.2]),
            "prediction": rng.choice(["yes", "no"], size=5000),
        }
    )


def reference(seed: int = 0, version: str = "1") -> ReferenceProfile:
    return ReferenceProfile.from_frame(reference_data(seed), model="m", model_version=version)


def events(n: int, seed: int, shift: float = 0.0, start: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    plans = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    return [
        {
            "event_id": f"e{start + i}",
            "model": "m",
            "model_version": "1",
            "timestamp": 1_700_000_000_000 + 1000 * (start + i),
            "features": {
                "x": float(rng.normal() + shift),
                "y": float(rng.normal()),
                "plan": str(plans[i]),
            },
            "prediction": {"yes": 0.7, "no": 0.3} if i % 2 else {"yes": 0.2, "no": 0.8},
        }
        for i in range(n)
    ]


def messages(docs: list[Any], start: int = 0, topic: str = TOPIC) -> list[InputMessage]:
    return [
        InputMessage(topic, 0, start + i, d if isinstance(d, bytes) else orjson.dumps(d))
        for i, d in enumerate(docs)
    ]


def batch_document(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "prediction_batch",
        "model": "m",
        "model_version": "1",
        "event_ids": [d["event_id"] for d in docs],
        "timestamps": [d["timestamp"] for d in docs],
        "features": {name: [d["features"][name] for d in docs] for name in docs[0]["features"]},
        "predictions": [d["prediction"] for d in docs],
    }


def state_with_reference(**defaults: Any) -> PartitionState:
    catalog = ReferenceCatalog()
    catalog.put(reference())
    return PartitionState(0, config(**defaults), catalog)


def chunks(items: list[InputMessage], size: int) -> Iterator[list[InputMessage]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def results_of(outputs: list[Outputs]) -> list[dict[str, Any]]:
    return [r.model_dump(mode="json") for o in outputs for r in o.results]


def test_healthy_traffic_gives_ok_windows_and_a_shift_flags_exactly_the_shifted_feature() -> None:
    state = state_with_reference()
    docs = events(1000, seed=1) + events(500, seed=2, shift=1.0, start=1000)
    outputs = [state.on_predictions(c) for c in chunks(messages(docs), 300)]
    results = results_of(outputs)
    assert [r["window"]["id"] for r in results] == [0, 1, 2]
    assert [r["drifted_features"] for r in results] == [[], [], ["x"]]
    assert results[2]["window"]["start_event"] == 1000
    assert set(results[0]["features"]) == {"x", "y", "plan"}
    assert results[0]["prediction"]["severity"] == "ok"
    assert sum(o.events["m", "1", "processed"] for o in outputs) == 1500


def test_batch_messages_give_the_same_results_as_single_events() -> None:
    docs = events(1000, seed=3, shift=0.5)
    single = results_of([state_with_reference().on_predictions(messages(docs))])
    batches = [batch_document(docs[i : i + 128]) for i in range(0, len(docs), 128)]
    batched = results_of([state_with_reference().on_predictions(messages(batches))])
    assert len(single) == 2
    assert batched == single


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b'{"model": "m"}', "schema"),
        (b"[1, 2]", "schema"),
        (b"x" * 5000, "too_large"),
    ],
)
def test_malformed_messages_are_dead_lettered_with_their_reason(raw: bytes, reason: str) -> None:
    state = PartitionState(
        0,
        DriftstreamConfig(limits={"max_message_bytes": 4096}),
        ReferenceCatalog(),
    )
    outputs = state.on_predictions([InputMessage(TOPIC, 0, 7, raw)])
    (letter,) = outputs.dead_letters
    assert letter.reason == reason
    assert letter.raw_bytes() == raw
    assert (letter.source.topic, letter.source.offset) == (TOPIC, 7)
    assert letter.error


def test_without_a_reference_events_are_dead_lettered_or_bootstrap_one() -> None:
    docs = events(10, seed=4)
    state = PartitionState(0, config(), ReferenceCatalog())
    outputs = state.on_predictions(messages([docs[0], batch_document(docs[1:4])]))
    assert [(d.reason, d.row) for d in outputs.dead_letters] == [
        ("no_reference", None),
        ("no_reference", 0),
        ("no_reference", 1),
        ("no_reference", 2),
    ]
    replayed = orjson.loads(outputs.dead_letters[2].raw_bytes())
    assert replayed["event_id"] == docs[2]["event_id"]
    assert "reference publish" in outputs.dead_letters[0].error

    catalog = ReferenceCatalog()
    state = PartitionState(0, config(bootstrap_reference_events=600), catalog)
    docs = events(1200, seed=5)
    steps = [state.on_predictions(c) for c in chunks(messages(docs), 250)]
    (profile,) = [p for o in steps for p in o.references]
    assert profile.n_rows == 600
    assert set(profile.features) == {"x", "y", "plan", "prediction"}
    assert catalog.latest("m", "1") is not None
    assert sum(o.events["m", "1", "bootstrap"] for o in steps) == 600
    # events 600..1099 fill the first window on the bootstrapped reference
    assert [r["window"]["start_event"] for r in results_of(steps)] == [0]
    assert sum(o.events["m", "1", "processed"] for o in steps) == 600


def test_replayed_messages_are_skipped_and_a_restore_continues_exactly() -> None:
    docs = events(1300, seed=6, shift=0.3)
    uninterrupted = state_with_reference()
    expected = results_of([uninterrupted.on_predictions(messages(docs))])

    first = state_with_reference()
    head = first.on_predictions(messages(docs[:700]))
    snapshot = first.snapshot()
    catalog = ReferenceCatalog()
    catalog.put(reference())
    second = PartitionState.restore(snapshot, config(), catalog)
    # a restarted consumer resumes from an older committed offset: 600
    tail = second.on_predictions(messages(docs[600:], start=600))
    assert tail.duplicates == 100
    assert results_of([head, tail]) == expected
    assert len(expected) == 2


def test_labels_join_predictions_and_performance_is_reported() -> None:
    state = state_with_reference()
    docs = events(1000, seed=7)
    state.on_predictions(messages(docs[:500]))
    labels = [
        {
            "event_id": d["event_id"],
            "model": "m",
            "label": "yes",
            "timestamp": d["timestamp"] + 30_000,
        }
        for d in docs[:400]
    ]
    label_outputs = state.on_labels(
        messages([*labels, {**labels[0], "event_id": "nope"}], topic=LABELS)
    )
    assert label_outputs.labels["m", "1", "joined"] == 400
    # "nope" may still get its prediction: it waits instead of being dead-lettered
    assert label_outputs.dead_letters == []
    assert state.joins["m"].waiting == 1
    result = state.on_predictions(messages(docs[500:], start=500)).results[0]
    performance = result.performance
    assert performance is not None
    assert performance["n_labeled"] == 400
    # odd events predict "yes" (0.7), even ones "no": half are right
    assert performance["metrics"]["accuracy"] == pytest.approx(0.5)
    assert performance["label_delay_seconds"]["mean"] == pytest.approx(30.0)


def test_late_events_are_dead_lettered_in_time_windows() -> None:
    state = state_with_reference(window={"duration": "100s", "min_samples": 10})
    docs = events(250, seed=8)
    late = {**docs[10], "event_id": "late", "timestamp": docs[0]["timestamp"]}
    outputs = state.on_predictions(messages([*docs, late]))
    assert [d.reason for d in outputs.dead_letters] == ["late"]
    assert [r.n_events for r in outputs.results] == [100, 100]
    assert outputs.events["m", "1", "processed"] == 250


def sha256_id(profile: ReferenceProfile) -> str:
    """A profile's id as the README defines it."""
    return hashlib.sha256(profile.to_bytes()).hexdigest()[:16]


def assert_ks_against(
    result: WindowResult, window: list[dict[str, Any]], data: pd.DataFrame
) -> None:
    """The result's KS test of ``x`` is scipy's on the window's raw values against ``data``."""
    expected = ks_2samp([d["features"]["x"] for d in window], data["x"])
    ks = result.features["x"]["tests"]["ks"]
    assert (ks["statistic"], ks["p_value"]) == (
        pytest.approx(expected.statistic),
        pytest.approx(expected.pvalue),
    )


def test_a_new_reference_applies_to_windows_opened_after_it_arrives() -> None:
    """A reference shifted in ``x`` arrives while window 0 is half full: window 0 keeps the
    old one (healthy traffic is ok), window 1 uses the new one (the same traffic drifts)."""
    old_data, new_data = reference_data(), reference_data(seed=42, shift=1.0)
    old, new = (ReferenceProfile.from_frame(d, "m", "1") for d in (old_data, new_data))
    catalog = ReferenceCatalog()
    catalog.put(old)
    state = PartitionState(0, config(), catalog)
    docs = events(1000, seed=9)
    head = state.on_predictions(messages(docs[:250]))
    catalog.put(new)
    tail = state.on_predictions(messages(docs[250:], start=250))
    results = head.results + tail.results
    assert sha256_id(old) != sha256_id(new)
    assert [(r.window.id, r.reference.id) for r in results] == [
        (0, sha256_id(old)),
        (1, sha256_id(new)),
    ]
    assert [r.drifted_features for r in results] == [[], ["x"]]
    assert_ks_against(results[0], docs[:500], old_data)
    assert_ks_against(results[1], docs[500:], new_data)


def test_a_sliding_window_straddling_a_new_reference_is_skipped() -> None:
    """Windows of 500 events sliding by 250; traffic shifted in ``x`` drifts until a reference
    matching it arrives at event 600. Window 1 (panes opened before) keeps the old reference,
    window 2 (one pane on each) is skipped, windows 3 and 4 use the new one: drift stops."""
    old_data, new_data = reference_data(), reference_data(seed=42, shift=1.0)
    old, new = (ReferenceProfile.from_frame(d, "m", "1") for d in (old_data, new_data))
    catalog = ReferenceCatalog()
    catalog.put(old)
    state = PartitionState(
        0, config(window={"type": "sliding", "size_events": 500, "slide_events": 250}), catalog
    )
    docs = events(1500, seed=10, shift=1.0)
    head = state.on_predictions(messages(docs[:600]))
    catalog.put(new)
    tail = state.on_predictions(messages(docs[600:], start=600))
    results = head.results + tail.results
    assert (head.skipped_windows, tail.skipped_windows) == (0, 1)
    assert [(r.window.id, r.reference.id) for r in results] == [
        (0, sha256_id(old)),
        (1, sha256_id(old)),
        (3, sha256_id(new)),
        (4, sha256_id(new)),
    ]
    assert [r.drifted_features for r in results] == [["x"], ["x"], [], []]
    for result, data in zip(results, (old_data, old_data, new_data, new_data), strict=True):
        start = result.window.start_event
        assert start is not None
        assert_ks_against(result, docs[start : start + 500], data)


def test_dead_letter_keys_are_idempotent() -> None:
    letter = DeadLetter.for_message(
        b"x", InputMessage(TOPIC, 2, 9, b"x").source, "schema", "bad", row=3
    )
    assert letter.key() == b'["predictions",2,9,3]'


def test_performance_is_compared_with_the_reference_performance() -> None:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=2000),
            "prediction": rng.choice(["yes", "no"], size=2000),
        }
    )
    frame["label"] = np.where(rng.random(2000) < 0.9, frame["prediction"], "other")
    profile = ReferenceProfile.from_frame(frame, "m", "1", label_column="label")
    assert "label" not in profile.features
    assert profile.performance is not None
    assert profile.performance["accuracy"] == pytest.approx(
        float((frame["label"] == frame["prediction"]).mean())
    )
    restored = ReferenceProfile.from_bytes(profile.to_bytes())
    assert restored.performance == profile.performance
    catalog = ReferenceCatalog()
    catalog.put(profile)
    state = PartitionState(0, config(), catalog)
    docs = events(500, seed=12)
    state.on_predictions(messages(docs[:100]))
    labels = [
        {"event_id": d["event_id"], "model": "m", "label": "yes", "timestamp": d["timestamp"]}
        for d in docs[:100]
    ]
    state.on_labels(messages(labels, topic=LABELS))
    (result,) = state.on_predictions(messages(docs[100:], start=100)).results
    performance = result.performance
    assert performance is not None
    assert performance["reference"] == dict(profile.performance)
    assert performance["change"]["accuracy"] == pytest.approx(
        performance["metrics"]["accuracy"] - profile.performance["accuracy"]
    )


def label_documents(docs: list[dict[str, Any]], delay_ms: int = 2000) -> list[dict[str, Any]]:
    """A "yes" label for each prediction, ``delay_ms`` after it."""
    return [
        {
            "event_id": d["event_id"],
            "model": "m",
            "label": "yes",
            "timestamp": d["timestamp"] + delay_ms,
        }
        for d in docs
    ]


def performances(outputs: list[Outputs]) -> list[dict[str, Any] | None]:
    return [r.performance for o in outputs for r in o.results]


@pytest.mark.parametrize("chunk", [1000, 333, 7])
def test_labels_ahead_of_their_predictions_join_in_the_window_of_their_prediction(
    chunk: int,
) -> None:
    """Every label published before its prediction joins it; a window counts exactly the
    labelled predictions it holds, however the predictions were batched."""
    state = state_with_reference()
    docs = events(1000, seed=13)
    labelled = [d for i, d in enumerate(docs) if i % 10 != 3 and i % 7 != 0]
    ahead = state.on_labels(messages(label_documents(labelled), topic=LABELS))
    assert ahead.dead_letters == []
    assert sum(ahead.labels.values()) == 0
    assert state.joins["m"].waiting == len(labelled)
    steps = [state.on_predictions(c) for c in chunks(messages(docs), chunk)]
    assert [d for o in steps for d in o.dead_letters] == []
    assert sum(o.labels["m", "1", "joined"] for o in steps) == len(labelled)
    ids = {d["event_id"] for d in labelled}
    expected = [sum(d["event_id"] in ids for d in docs[k : k + 500]) for k in (0, 500)]
    found = performances(steps)
    assert [p["n_labeled"] if p else None for p in found] == expected
    for performance in found:
        assert performance is not None
        assert performance["n_unlabeled"] == 0
        assert performance["label_delay_seconds"] == {"mean": 2.0, "p50": 2.0, "max": 2.0}
    assert (len(state.joins["m"]), state.joins["m"].waiting) == (1000 - len(labelled), 0)


def test_an_unmatched_label_is_dead_lettered_once_predictions_pass_its_time_plus_ttl() -> None:
    """It waits while T <= L + ttl and leaves, with its own bytes and source, when T > L + ttl."""
    state = state_with_reference(label_join_ttl="10s")
    docs = events(3, seed=14)
    orphan = {"event_id": "orphan", "model": "m", "label": "yes", "timestamp": docs[0]["timestamp"]}
    [message] = messages([orphan], start=41, topic=LABELS)
    assert state.on_labels([message]).dead_letters == []
    at_boundary = {**docs[1], "timestamp": orphan["timestamp"] + 10_000}
    outputs = state.on_predictions(messages([docs[0], at_boundary]))
    assert outputs.dead_letters == []
    assert state.joins["m"].waiting == 1
    past = {**docs[2], "timestamp": orphan["timestamp"] + 10_001}
    outputs = state.on_predictions(messages([past], start=2))
    (letter,) = outputs.dead_letters
    assert letter.reason == "unmatched_label"
    assert letter.raw_bytes() == message.value
    assert (letter.source.topic, letter.source.partition, letter.source.offset) == (LABELS, 0, 41)
    assert letter.model == "m"
    assert "no prediction 'orphan' of model 'm' arrived within the label join TTL (10 s)" in (
        letter.error
    )
    assert outputs.labels == {("m", "", "unmatched_label"): 1}
    assert state.joins["m"].waiting == 0


def test_waiting_labels_are_bounded_per_model_oldest_out_first() -> None:
    """Over max_pending_labels waiting labels, the oldest is dead-lettered at once, saying why."""
    catalog = ReferenceCatalog()
    catalog.put(reference())
    state = PartitionState(0, config(), catalog, max_pending_labels=3)
    labels = label_documents(events(5, seed=15))[::-1]  # newest first
    outputs = state.on_labels(messages(labels, topic=LABELS))
    assert [d.source.offset for d in outputs.dead_letters] == [3, 4]
    assert "more than 3 labels of model 'm' were waiting" in outputs.dead_letters[0].error
    assert outputs.labels == {("m", "", "unmatched_label"): 2}
    assert state.joins["m"].waiting == 3


def test_waiting_labels_survive_a_snapshot_and_old_snapshots_restore_without_them() -> None:
    """Restored midway, labels waiting in the snapshot join as in an uninterrupted run."""
    docs = events(1000, seed=16)
    label_messages = messages(label_documents(docs[::2]), topic=LABELS)
    uninterrupted = state_with_reference()
    uninterrupted.on_labels(label_messages)
    expected = results_of([uninterrupted.on_predictions(messages(docs))])

    first = state_with_reference()
    first.on_labels(label_messages[:300])
    head = first.on_predictions(messages(docs[:100]))
    snapshot = first.snapshot()
    second = PartitionState.restore(snapshot, config(), first.catalog)
    assert second.joins["m"].waiting == first.joins["m"].waiting == 250
    # replayed from older committed offsets: the snapshot's part is skipped
    second.on_labels(label_messages)
    tail = second.on_predictions(messages(docs[50:], start=50))
    assert results_of([head, tail]) == expected
    assert [p["n_labeled"] for p in performances([head, tail]) if p] == [250, 250]

    header, body = unframe(snapshot, SNAPSHOT_MAGIC, SNAPSHOT_VERSION, "partition snapshot")
    del header["joins"]["m"]["waiting"]
    old = PartitionState.restore(
        frame(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, header, body), config(), first.catalog
    )
    assert (len(old.joins["m"]), old.joins["m"].waiting) == (50, 0)


@given(
    label_chunks=st.lists(st.integers(1, 40), min_size=1, max_size=12),
    prediction_chunks=st.lists(st.integers(1, 40), min_size=1, max_size=12),
    order=st.lists(st.booleans(), max_size=30),
)
@settings(max_examples=25, deadline=None)
def test_every_label_is_joined_or_dead_lettered_exactly_once_in_any_interleaving(
    label_chunks: list[int], prediction_chunks: list[int], order: list[bool]
) -> None:
    """Labels of real predictions all join, orphans all dead-letter, whichever topic is ahead
    (the TTL is longer than the stream, so no prediction leaves before its label comes)."""
    docs = events(120, seed=17)
    orphans = [
        {"event_id": f"orphan-{i}", "model": "m", "label": "no", "timestamp": d["timestamp"]}
        for i, d in enumerate(docs[:60:6])
    ]
    labels = label_documents(docs[::3]) + orphans
    labels.sort(key=lambda label: label["timestamp"])
    label_steps = list(split_into(messages(labels, topic=LABELS), label_chunks))
    prediction_steps = list(split_into(messages(docs), prediction_chunks))
    state = state_with_reference(label_join_ttl="200s", window={"size_events": 50})
    outputs: list[Outputs] = []
    for labels_next in [*order, *[True] * len(label_steps), *[False] * len(prediction_steps)]:
        steps = label_steps if labels_next else prediction_steps
        if steps:
            batch = steps.pop(0)
            outputs.append(state.on_labels(batch) if labels_next else state.on_predictions(batch))
    final = {**docs[-1], "event_id": "final", "timestamp": docs[-1]["timestamp"] + 10**6}
    outputs.append(state.on_predictions(messages([final], start=len(docs))))
    unmatched = [orjson.loads(d.raw_bytes())["event_id"] for o in outputs for d in o.dead_letters]
    assert sorted(unmatched) == sorted(o["event_id"] for o in orphans)
    joined = sum(o.labels["m", "1", "joined"] for o in outputs)
    assert joined == len(docs[::3])
    assert sum(o.labels["m", "", "unmatched_label"] for o in outputs) == len(orphans)
    # ... and every prediction joined xor left unlabelled, but the final one, still held
    current = state.versions["m", "1"].performance
    closed = [p for p in performances(outputs) if p]
    assert sum(p["n_labeled"] for p in closed) + current.n_labeled == joined
    unlabelled = len(docs) - len(docs[::3])
    assert sum(p["n_unlabeled"] for p in closed) + current.n_unlabeled == unlabelled
    assert (len(state.joins["m"]), state.joins["m"].waiting) == (1, 0)


def split_into(items: list[InputMessage], sizes: list[int]) -> Iterator[list[InputMessage]]:
    """Consecutive runs of ``items`` of the given sizes, the last size repeated."""
    start = 0
    index = 0
    while start < len(items):
        size = sizes[min(index, len(sizes) - 1)]
        yield items[start : start + size]
        start += size
        index += 1


def test_a_label_that_cannot_be_scored_is_dead_lettered_and_the_worker_goes_on() -> None:
    """A regression model's probability-map predictions cannot meet a label: no crash."""
    catalog = ReferenceCatalog()
    catalog.put(reference())
    regression = DriftstreamConfig(
        topics={"predictions": TOPIC, "labels": LABELS},
        defaults={"window": {"size_events": 500}},
        models={"m": {"task": "regression"}},
    )
    state = PartitionState(0, regression, catalog)
    docs = events(500, seed=3)
    state.on_predictions(messages(docs[:100]))
    labels = label_documents(docs[:10])
    outputs = state.on_labels(messages(labels, topic=LABELS))
    assert [d.reason for d in outputs.dead_letters] == ["mismatched_label"] * 10
    assert [d.source.offset for d in outputs.dead_letters] == list(range(10))
    assert base64.b64decode(outputs.dead_letters[0].raw) == orjson.dumps(labels[0])
    assert "regression needs numbers" in outputs.dead_letters[0].error
    assert outputs.labels == {("m", "1", "mismatched_label"): 10}
    [result] = state.on_predictions(messages(docs[100:], start=100)).results
    assert result.performance is not None
    assert (result.performance["n_labeled"], result.performance["n_unlabeled"]) == (0, 10)


def test_a_contract_violation_counts_against_the_model_it_claims_only_if_known() -> None:
    state = state_with_reference()
    broken = events(3, seed=1)
    for document in broken:
        document["features"]["x"] = {"nested": 1}
    broken[1]["model"] = "never-seen"
    broken[2]["model_version"] = "9"
    # The first message is valid: it makes model m, version 1 known here.
    outputs = state.on_predictions(messages(events(1, seed=0) + broken))
    assert outputs.events == {
        ("m", "1", "processed"): 1,
        ("m", "1", "schema"): 1,
        ("", "", "schema"): 1,
        ("m", "", "schema"): 1,
    }
    assert [(d.model, d.model_version) for d in outputs.dead_letters] == [
        ("m", "1"),
        (None, None),
        ("m", None),
    ]
    label = state.on_labels(messages([{"event_id": "e0", "model": "m"}], topic=LABELS))
    assert label.labels == {("m", "", "schema"): 1}
