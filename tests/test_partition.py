"""PartitionState: the whole per-partition pipeline without a broker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from monitor.catalog import ReferenceCatalog
from monitor.config import DriftstreamConfig
from monitor.partition import InputMessage, Outputs, PartitionState
from monitor.reference import ReferenceProfile
from schemas.outputs import DeadLetter

TOPIC = "predictions"
LABELS = "labels"


def config(**defaults: Any) -> DriftstreamConfig:
    return DriftstreamConfig(
        topics={"predictions": TOPIC, "labels": LABELS},
        defaults={"window": {"size_events": 500}, **defaults},
    )


def reference(seed: int = 0, version: str = "1") -> ReferenceProfile:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=5000),
            "y": rng.normal(size=5000),
            "plan": rng.choice(["a", "b", "c"], size=5000, p=[0.5, 0.3, 0.2]),
            "prediction": rng.choice(["yes", "no"], size=5000),
        }
    )
    return ReferenceProfile.from_frame(frame, model="m", model_version=version)


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
    (unmatched,) = label_outputs.dead_letters
    assert unmatched.reason == "unmatched_label"
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


def test_a_new_reference_applies_to_the_next_windows() -> None:
    state = state_with_reference()
    docs = events(1000, seed=9)
    state.on_predictions(messages(docs[:250]))
    state.catalog.put(reference(seed=42))
    outputs = state.on_predictions(messages(docs[250:], start=250))
    assert [r.reference.n_rows for r in outputs.results] == [5000, 5000]
    assert [r.window.id for r in outputs.results] == [0, 1]
    # window 0 was opened on the first reference, window 1 on the new one
    assert state.versions["m", "1"].assembler is not None
    assert len(state.versions["m", "1"].comparators) == 1


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
