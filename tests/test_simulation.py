"""Simulated serving service: contracts, determinism, labels, and drift the comparator sees."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest

from monitor.comparison import Comparator
from monitor.reference import ReferenceProfile
from monitor.simulation import (
    DEMO_MODELS,
    PREDICTION_COLUMN,
    DriftSpec,
    ServingSimulator,
    predicted_value,
    reference_frame,
    to_batch,
    window_row,
)
from monitor.values import infer_kind
from monitor.windows import WindowState
from schemas.events import LabelEvent, PredictionBatch, PredictionEvent

MODELS = tuple(DEMO_MODELS)
WINDOW = 1_000


def window_of(profile: ReferenceProfile, documents: list[dict[str, Any]]) -> WindowState:
    """A window state holding the documents' features and predictions."""
    window = WindowState.for_profile(profile)
    window.update_frame(pd.DataFrame([window_row(d) for d in documents]))
    return window


@pytest.fixture(scope="module")
def comparators() -> dict[str, Comparator]:
    """One comparator per demo model, on a 20k-row reference of its healthy traffic."""
    result = {}
    for name, model in DEMO_MODELS.items():
        frame = reference_frame(name, n_rows=20_000, seed=0).drop(columns=["label"])
        result[name] = Comparator(ReferenceProfile.from_frame(frame, name, model.version))
    return result


def test_prediction_documents_are_json_ready_and_valid() -> None:
    simulator = ServingSimulator(seed=3, drift_after_events=500)
    documents = simulator.predictions(3_000, start_ms=1_700_000_000_000, step_ms=7)
    assert len({d["event_id"] for d in documents}) == len(documents)
    for document in documents:
        event = PredictionEvent.model_validate_json(json.dumps(document, allow_nan=False))
        model = DEMO_MODELS[event.model]
        assert event.model_version == model.version
        assert tuple(event.features) == model.feature_names
        assert event.unknown_fields == []
        if model.task == "classification":
            assert isinstance(event.prediction, dict)
            assert tuple(event.prediction) == model.classes
            assert sum(event.prediction.values()) == pytest.approx(1.0, abs=2e-6)
        else:
            assert isinstance(event.prediction, float)
    assert [d["timestamp"] for d in documents[:3]] == [
        1_700_000_000_000,
        1_700_000_000_007,
        1_700_000_000_014,
    ]
    # Round-robin: each model a third of the traffic, in models order.
    assert [d["model"] for d in documents[:4]] == ["churn", "fraud", "eta", "churn"]
    assert Counter(d["model"] for d in documents) == dict.fromkeys(MODELS, 1_000)


def test_label_documents_are_valid_late_and_refer_to_earlier_predictions() -> None:
    simulator = ServingSimulator(seed=1, label_delay_ms=2_000, label_jitter_ms=500)
    documents = simulator.predictions(3_000, start_ms=0, step_ms=10)
    predicted = {d["event_id"]: d for d in documents}
    assert simulator.labels_due(1_999) == []
    labels: list[dict[str, Any]] = []
    for now in range(0, 40_000, 1_000):
        due = simulator.labels_due(now)
        assert all(label["timestamp"] <= now for label in due)
        labels.extend(due)
    assert simulator.pending_labels == 0
    assert len({label["event_id"] for label in labels}) == len(labels)  # each label once
    timestamps = [label["timestamp"] for label in labels]
    assert timestamps == sorted(timestamps)
    delays = []
    for document in labels:
        label = LabelEvent.model_validate_json(json.dumps(document, allow_nan=False))
        prediction = predicted[label.event_id]
        assert label.model == prediction["model"]
        delays.append(document["timestamp"] - prediction["timestamp"])
        model = DEMO_MODELS[label.model]
        if model.task == "classification":
            assert label.label in model.classes
        else:
            assert isinstance(label.label, float)
            assert label.label >= 1.0
    assert min(delays) >= 2_000
    assert max(delays) <= 2_500
    assert max(delays) > min(delays)  # the jitter is used


def test_unlabelled_share_is_respected() -> None:
    n = 30_000
    for share in (0.0, 0.1, 0.5):
        simulator = ServingSimulator(seed=2, unlabelled_share=share)
        simulator.predictions(n, start_ms=0, step_ms=1)
        labelled = len(simulator.labels_due(n + 10_000)) / n
        # Binomial standard deviation is at most 0.003: 5 of them.
        assert labelled == pytest.approx(1.0 - share, abs=0.015)
    never = ServingSimulator(seed=2, unlabelled_share=1.0)
    never.predictions(100, start_ms=0, step_ms=1)
    assert never.pending_labels == 0


def test_pending_labels_are_capped_dropping_those_due_soonest() -> None:
    simulator = ServingSimulator(["churn"], seed=0, unlabelled_share=0.0, max_pending_labels=100)
    documents = simulator.predictions(1_000, start_ms=0, step_ms=1)
    assert simulator.pending_labels == 100
    assert simulator.dropped_labels == 900
    due = simulator.labels_due(10**9)
    assert [label["event_id"] for label in due] == [d["event_id"] for d in documents[-100:]]


def test_same_seed_same_events_whatever_the_chunking() -> None:
    options: dict[str, Any] = {
        "drift_after_events": 300,
        "weights": {"churn": 0.5, "fraud": 0.3, "eta": 0.2},
        "label_jitter_ms": 100,
    }
    whole = ServingSimulator(seed=11, **options)
    chunked = ServingSimulator(seed=11, **options)
    other = ServingSimulator(seed=12, **options)
    expected = whole.predictions(2_000, start_ms=0, step_ms=5)
    got = chunked.predictions(700, start_ms=0, step_ms=5)
    got += chunked.predictions(1_300, start_ms=3_500, step_ms=5)
    assert got == expected
    assert chunked.labels_due(20_000) == whole.labels_due(20_000)
    assert other.predictions(2_000, start_ms=0, step_ms=5) != expected
    assert reference_frame("fraud", 500, seed=4).equals(reference_frame("fraud", 500, seed=4))
    assert not reference_frame("fraud", 500, seed=4).equals(reference_frame("fraud", 500, seed=5))


def test_weights_set_the_traffic_mix() -> None:
    simulator = ServingSimulator(seed=0, weights={"churn": 0.7, "eta": 0.3})
    counts = Counter(d["model"] for d in simulator.predictions(20_000, start_ms=0, step_ms=1))
    assert counts["fraud"] == 0
    assert counts["churn"] / 20_000 == pytest.approx(0.7, abs=0.02)
    assert simulator.events_emitted("churn") == counts["churn"]


def test_drift_starts_after_each_models_own_count() -> None:
    simulator = ServingSimulator(seed=0, drift_after_events=200)
    documents = simulator.predictions(1_500, start_ms=0, step_ms=1)
    churn = [d for d in documents if d["model"] == "churn"]
    assert len(churn) == 500
    # "promo" has no share before drift and 60 % after it.
    assert all(d["features"]["plan"] != "promo" for d in churn[:200])
    promo = sum(d["features"]["plan"] == "promo" for d in churn[200:]) / 300
    assert promo == pytest.approx(0.6, abs=0.1)
    assert simulator.is_drifting("churn")
    assert simulator.drifted_features("churn") == {"tenure_months", "monthly_spend", "plan"}
    assert simulator.drifted_features("churn", include_prediction=True) == {
        "tenure_months",
        "monthly_spend",
        "plan",
        PREDICTION_COLUMN,
    }
    assert not ServingSimulator(seed=0).is_drifting("churn")
    assert ServingSimulator(seed=0).drifted_features("eta") == set()


def test_drift_mapping_replaces_the_defaults_and_is_checked() -> None:
    spec = DriftSpec(shifts={"prep_time_min": 2.0})
    simulator = ServingSimulator(seed=0, drift_after_events=0, drift={"eta": spec})
    assert simulator.drifted_features("eta") == {"prep_time_min"}
    assert simulator.drifted_features("churn") == set()
    with pytest.raises(ValueError, match="eta: cannot shift 'vehicle', not a numeric feature"):
        ServingSimulator(drift={"eta": DriftSpec(shifts={"vehicle": 1.0})})
    with pytest.raises(ValueError, match="eta: 'vehicle' has no category truck"):
        ServingSimulator(drift={"eta": DriftSpec(weights={"vehicle": {"truck": 1.0}})})
    with pytest.raises(ValueError, match=r"unknown model 'nope' \(demo models: "):
        ServingSimulator(["churn", "nope"])


def test_batches_are_valid_and_hold_the_same_predictions() -> None:
    batched = ServingSimulator(seed=5, drift_after_events=100)
    single = ServingSimulator(seed=5, drift_after_events=100)
    batches = batched.prediction_batches(1_000, start_ms=0, step_ms=3, max_rows=150)
    documents = single.predictions(1_000, start_ms=0, step_ms=3)
    assert all(len(b["event_ids"]) <= 150 for b in batches)
    for document in batches:
        batch = PredictionBatch.model_validate_json(json.dumps(document, allow_nan=False))
        assert batch.model_version == DEMO_MODELS[batch.model].version
    rows = [
        {
            "event_id": b["event_ids"][i],
            "timestamp": b["timestamps"][i],
            "features": {name: column[i] for name, column in b["features"].items()},
            "prediction": b["predictions"][i],
        }
        for b in batches
        for i in range(len(b["event_ids"]))
    ]
    fields = ("event_id", "timestamp", "features", "prediction")
    assert sorted(rows, key=lambda r: r["timestamp"]) == [
        {key: d[key] for key in fields} for d in documents
    ]
    assert batched.labels_due(10**9) == single.labels_due(10**9)


def test_to_batch_fills_missing_features_and_refuses_mixed_models() -> None:
    documents = ServingSimulator(["eta"], seed=0).predictions(2, start_ms=0, step_ms=1)
    del documents[1]["features"]["weather"]
    batch = to_batch(documents)
    assert batch["features"]["weather"][1] is None
    assert len(PredictionBatch.model_validate(batch)) == 2
    mixed = ServingSimulator(seed=0).predictions(2, start_ms=0, step_ms=1)
    with pytest.raises(ValueError, match="a batch holds predictions of one model version only"):
        to_batch(mixed)
    with pytest.raises(ValueError, match="a batch needs at least one prediction"):
        to_batch([])


@pytest.mark.parametrize("name", MODELS)
def test_reference_frame_matches_healthy_traffic(name: str) -> None:
    model = DEMO_MODELS[name]
    frame = reference_frame(name, n_rows=5_000, seed=0)
    assert frame.columns.tolist() == [*model.feature_names, PREDICTION_COLUMN, "label"]
    assert {column: infer_kind(frame[column]) for column in model.kinds} == model.kinds
    documents = ServingSimulator([name], seed=0).predictions(5_000, start_ms=0, step_ms=1)
    live = pd.DataFrame([window_row(d) for d in documents])
    assert live.dtypes.to_dict() == frame.drop(columns=["label"]).dtypes.to_dict()
    for column in model.feature_names:
        if model.kinds[column].value == "numeric":
            assert live[column].median() == pytest.approx(frame[column].median(), rel=0.05)
    if model.task == "classification":
        positive = model.classes[0]
        shares = frame[PREDICTION_COLUMN].value_counts(normalize=True)
        live_shares = live[PREDICTION_COLUMN].value_counts(normalize=True)
        assert live_shares[positive] == pytest.approx(shares[positive], abs=0.02)
        # Labels are drawn from the predicted probability: calibrated on average.
        probability = np.mean([d["prediction"][positive] for d in documents])
        labels = ServingSimulator([name], seed=0, unlabelled_share=0.0)
        labels.predictions(5_000, start_ms=0, step_ms=1)
        rate = np.mean([x["label"] == positive for x in labels.labels_due(10**9)])
        assert rate == pytest.approx(probability, abs=0.02)
    else:
        errors = frame["label"] - frame[PREDICTION_COLUMN]
        assert abs(errors.mean()) < 0.3
        assert errors.std() == pytest.approx(model.label_noise, rel=0.1)


def test_window_rows_give_the_same_state_one_by_one_or_as_a_frame(
    comparators: dict[str, Comparator],
) -> None:
    for name, comparator in comparators.items():
        documents = ServingSimulator([name], seed=0).predictions(300, start_ms=0, step_ms=1)
        one_by_one = WindowState.for_profile(comparator.profile)
        for document in documents:
            one_by_one.update(window_row(document))
        framed = window_of(comparator.profile, documents)
        for feature, state in framed.features.items():
            assert state.counts.tolist() == one_by_one.features[feature].counts.tolist()
            assert state.n_null == 0
    assert predicted_value({"no": 0.5, "yes": 0.5}) == "no"


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("name", MODELS)
def test_comparator_flags_exactly_the_drifted_features(
    comparators: dict[str, Comparator], name: str, seed: int
) -> None:
    simulator = ServingSimulator([name], seed=seed, drift_after_events=WINDOW)
    assert not simulator.is_drifting(name)
    simulator.predictions(WINDOW, start_ms=0, step_ms=1)  # the healthy first window
    assert simulator.is_drifting(name)
    drifted = simulator.predictions(WINDOW, start_ms=WINDOW, step_ms=1)
    comparator = comparators[name]
    # Healthy windows: test_healthy_windows_of_every_model_and_seed_rarely_alarm.
    alarm = comparator.compare(window_of(comparator.profile, drifted))
    expected = simulator.drifted_features(name, include_prediction=True)
    assert len(expected) == 4
    assert set(alarm.drifted_features) == expected
    assert alarm.severity.value == "critical"


def test_healthy_windows_of_every_model_and_seed_rarely_alarm(
    comparators: dict[str, Comparator],
) -> None:
    """15 healthy 1,000-row windows (3 models x 5 seeds): at most 1 is flagged (alpha 1 %)."""
    flagged = 0
    for name in MODELS:
        for seed in range(5):
            simulator = ServingSimulator([name], seed=seed, drift_after_events=WINDOW)
            healthy = simulator.predictions(WINDOW, start_ms=0, step_ms=1)
            comparator = comparators[name]
            flagged += bool(
                comparator.compare(window_of(comparator.profile, healthy)).drifted_features
            )
    assert flagged <= 1


def test_healthy_traffic_from_a_mix_of_models_never_alarms(
    comparators: dict[str, Comparator],
) -> None:
    # Many consecutive healthy windows of every model: no false alarm in any.
    simulator = ServingSimulator(seed=99)
    for _ in range(5):
        documents = simulator.predictions(3 * WINDOW, start_ms=0, step_ms=1)
        for name, comparator in comparators.items():
            mine = [d for d in documents if d["model"] == name]
            assert comparator.compare(window_of(comparator.profile, mine)).drifted_features == []
