"""Tests of monitor.labels: joining labels to predictions, and window performance."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (  # type: ignore[import-untyped]  # no stubs
    accuracy_score,
    f1_score,
    mean_absolute_error,
    roc_auc_score,
    root_mean_squared_error,
)

from monitor.labels import (
    ArrivedLabel,
    JoinOutcome,
    LabelJoin,
    PendingPrediction,
    PerformanceWindow,
)
from monitor.stats.performance import LabelValue, PredictionValue


def pending(timestamp_ms: int, prediction: PredictionValue = 0.5) -> PendingPrediction:
    """A pending prediction of a fixed model at ``timestamp_ms``."""
    return PendingPrediction("churn", "7", timestamp_ms, prediction)


def arrived(
    event_id: str, timestamp_ms: int, offset: int = 0, value: LabelValue = 1.0
) -> ArrivedLabel:
    """A label of ``event_id`` at ``timestamp_ms``, as message ``offset`` of the label topic."""
    return ArrivedLabel(event_id, timestamp_ms, value, "labels", 3, offset, b'{"o": %d}' % offset)


def json_round_trip(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` after a trip through JSON text."""
    loaded: dict[str, Any] = json.loads(json.dumps(state))
    return loaded


@dataclass
class NaiveJoin:
    """A slow, obviously correct LabelJoin to compare against (see its class notes)."""

    ttl_ms: int
    max_pending: int
    newest_ms: int | None = None
    arrivals: int = 0
    #: (timestamp_ms, arrival, event_id, prediction)
    predictions: list[tuple[int, int, str, PendingPrediction]] = field(default_factory=list)
    #: (timestamp_ms, arrival, label)
    labels: list[tuple[int, int, ArrivedLabel]] = field(default_factory=list)

    def add(self, event_id: str, prediction: PendingPrediction) -> JoinOutcome:
        outcome = JoinOutcome()
        waiting = sorted(
            (item for item in self.labels if item[2].event_id == event_id), key=lambda i: i[1]
        )
        if waiting:
            self.labels.remove(waiting[0])
            outcome.joined.append((prediction, waiting[0][2]))
        else:
            outcome.unlabeled += [item[3] for item in self.predictions if item[2] == event_id]
            self.predictions = [item for item in self.predictions if item[2] != event_id]
            self.predictions.append((prediction.timestamp_ms, self.arrivals, event_id, prediction))
            self.arrivals += 1
        newest = prediction.timestamp_ms
        self.newest_ms = newest if self.newest_ms is None else max(self.newest_ms, newest)
        ordered = sorted(self.predictions, key=lambda item: (item[0], item[1]))
        expired = [item for item in ordered if item[0] + self.ttl_ms < self.newest_ms]
        kept = [item for item in ordered if item[0] + self.ttl_ms >= self.newest_ms]
        over = max(0, len(kept) - self.max_pending)
        outcome.unlabeled += [item[3] for item in expired + kept[:over]]
        self.predictions = kept[over:]
        self._release_labels(outcome)
        return outcome

    def add_label(self, label: ArrivedLabel) -> JoinOutcome:
        outcome = JoinOutcome()
        for item in self.predictions:
            if item[2] == label.event_id:
                self.predictions.remove(item)
                outcome.joined.append((item[3], label))
                return outcome
        self.labels.append((label.timestamp_ms, self.arrivals, label))
        self.arrivals += 1
        self._release_labels(outcome)
        return outcome

    def _release_labels(self, outcome: JoinOutcome) -> None:
        ordered = sorted(self.labels, key=lambda item: (item[0], item[1]))
        newest = self.newest_ms
        expired = [i for i in ordered if newest is not None and i[0] + self.ttl_ms < newest]
        kept = [i for i in ordered if newest is None or i[0] + self.ttl_ms >= newest]
        over = max(0, len(kept) - self.max_pending)
        outcome.expired_labels += [item[2] for item in expired]
        outcome.evicted_labels += [item[2] for item in kept[:over]]
        self.labels = kept[over:]


# -- LabelJoin ---------------------------------------------------------------


def test_ttl_expiry_is_strict_and_in_event_time() -> None:
    """A prediction leaves once newest - timestamp exceeds the TTL, not at equality."""
    join = LabelJoin(ttl_ms=100, max_pending=10)
    assert join.add("a", pending(0)) == JoinOutcome()
    assert join.add("b", pending(50)) == JoinOutcome()
    assert join.add("c", pending(100)) == JoinOutcome()  # a: 0 + 100 == 100, kept
    assert join.add("d", pending(101)).unlabeled == [pending(0)]
    assert len(join) == 3
    assert join.newest_ms == 101
    # An older prediction does not move "now" back, and one already expired leaves at once.
    assert join.add("late", pending(0)) == JoinOutcome(unlabeled=[pending(0)])
    assert join.newest_ms == 101
    # Its label comes too late to wait: the predictions are already more than the TTL past it.
    assert join.add_label(arrived("late", 0)) == JoinOutcome(expired_labels=[arrived("late", 0)])
    assert [p.timestamp_ms for p in join.add("e", pending(220)).unlabeled] == [50, 100, 101]
    assert len(join) == 1


def test_capacity_evicts_oldest_timestamp_then_earliest_arrival() -> None:
    """Over capacity, the smallest timestamps leave first; ties by arrival order."""
    join = LabelJoin(ttl_ms=10_000, max_pending=3)
    join.add("x", pending(50, "x"))
    join.add("y", pending(10, "y"))
    join.add("z", pending(10, "z"))
    assert join.add("w", pending(30, "w")).unlabeled == [pending(10, "y")]
    assert join.add("v", pending(5, "v")).unlabeled == [pending(5, "v")]
    assert join.add("u", pending(60, "u")).unlabeled == [pending(10, "z")]
    joined = [join.add_label(arrived(e, 100)).joined for e in ("w", "x", "u")]
    assert [pair[0][0] for pair in joined] == [pending(30, "w"), pending(50, "x"), pending(60, "u")]
    assert len(join) == 0


def test_duplicate_event_id_returns_the_replaced_prediction() -> None:
    """A repeated event_id replaces the earlier prediction, which is returned as unlabeled."""
    join = LabelJoin(ttl_ms=1000, max_pending=2)
    join.add("a", pending(0, "first"))
    join.add("b", pending(1, "b"))
    assert join.add("a", pending(2, "second")).unlabeled == [pending(0, "first")]
    assert len(join) == 2
    # The replacement carries its own timestamp (2), so "b" (1) is now the oldest.
    assert join.add("c", pending(3, "c")).unlabeled == [pending(1, "b")]
    assert join.add_label(arrived("a", 4)).joined == [(pending(2, "second"), arrived("a", 4))]


def test_a_label_joins_its_pending_prediction_once() -> None:
    """A label takes its pending prediction; a second label of that id finds none and waits."""
    join = LabelJoin(ttl_ms=10, max_pending=5)
    join.add("a", pending(1, {"yes": 0.9, "no": 0.1}))
    first, second = arrived("a", 2, offset=0), arrived("a", 3, offset=1)
    assert join.add_label(first) == JoinOutcome(
        joined=[(pending(1, {"yes": 0.9, "no": 0.1}), first)]
    )
    assert join.add_label(second) == JoinOutcome()
    assert (len(join), join.waiting) == (0, 1)


def test_a_label_ahead_of_its_prediction_waits_and_joins_when_it_comes() -> None:
    """The label waits (even before any prediction); its prediction joins it and is not held."""
    join = LabelJoin(ttl_ms=100, max_pending=5)
    label = arrived("a", 2_000)
    assert join.add_label(label) == JoinOutcome()
    assert (join.newest_ms, join.waiting) == (None, 1)
    assert join.add("other", pending(1_950)) == JoinOutcome()
    assert join.add("a", pending(1_998, "p")) == JoinOutcome(joined=[(pending(1_998, "p"), label)])
    assert (len(join), join.waiting) == (1, 0)
    # A second label of "a" does not find the prediction again: it waits.
    assert join.add_label(arrived("a", 2_001)) == JoinOutcome()
    assert join.waiting == 1


def test_a_waiting_label_joins_even_a_prediction_older_than_the_ttl() -> None:
    """The pair is known, so it joins; held without a label, that prediction would leave at once."""
    join = LabelJoin(ttl_ms=100, max_pending=5)
    join.add("now", pending(1_000))
    label = arrived("a", 950)  # 950 + 100 >= 1000: may still get its prediction
    assert join.add_label(label) == JoinOutcome()
    assert join.add("a", pending(850, "old")) == JoinOutcome(joined=[(pending(850, "old"), label)])
    assert join.add("b", pending(850, "old")) == JoinOutcome(unlabeled=[pending(850, "old")])


def test_a_waiting_label_expires_exactly_when_the_predictions_pass_its_time_plus_ttl() -> None:
    """Kept while L + ttl >= T, handed back as expired once T > L + ttl; on arrival too."""
    join = LabelJoin(ttl_ms=100, max_pending=5)
    join.add("p0", pending(0))
    label = arrived("orphan", 50, offset=9)
    assert join.add_label(label) == JoinOutcome()
    assert join.add("p1", pending(150)) == JoinOutcome(unlabeled=[pending(0)])  # T = L + ttl
    assert join.waiting == 1
    assert join.add("p2", pending(151)).expired_labels == [label]  # T = L + ttl + 1
    assert join.waiting == 0
    # A label arriving already past it leaves in the same call; one exactly at it waits.
    assert join.add_label(arrived("x", 50)) == JoinOutcome(expired_labels=[arrived("x", 50)])
    assert join.add_label(arrived("y", 51)) == JoinOutcome()
    assert join.waiting == 1


def test_waiting_labels_are_bounded_by_count_oldest_out_first() -> None:
    """Over ``max_pending`` waiting labels the smallest timestamp (then arrival) is evicted."""
    join = LabelJoin(ttl_ms=10, max_pending=3)
    # No prediction yet: T is undefined, so however old, labels only wait.
    labels = [arrived(f"l{i}", ts, offset=i) for i, ts in enumerate([500, 7, 7, 900])]
    assert [join.add_label(label) for label in labels[:3]] == [JoinOutcome()] * 3
    assert join.add_label(labels[3]) == JoinOutcome(evicted_labels=[labels[1]])
    assert join.add_label(arrived("l4", 1, offset=4)).evicted_labels == [arrived("l4", 1, offset=4)]
    assert join.waiting == 3
    # The first prediction defines T and expires the labels more than the TTL behind it.
    assert join.add("l3", pending(895)) == JoinOutcome(
        joined=[(pending(895), labels[3])], expired_labels=[labels[2], labels[0]]
    )
    assert join.waiting == 0


def test_invalid_parameters() -> None:
    """A negative TTL or a capacity below 1 is an error."""
    with pytest.raises(ValueError, match="ttl_ms must not be negative, got -1"):
        LabelJoin(ttl_ms=-1, max_pending=1)
    with pytest.raises(ValueError, match="max_pending must be at least 1, got 0"):
        LabelJoin(ttl_ms=0, max_pending=0)


def test_restore_round_trip_keeps_eviction_order_and_waiting_labels() -> None:
    """A restored join has the same state and hands back the same, ties included."""
    join = LabelJoin(ttl_ms=500, max_pending=4)
    for i, (event_id, ts) in enumerate([("a", 10), ("b", 10), ("c", 5), ("d", 10), ("a", 7)]):
        join.add(event_id, pending(ts, {"k": i / 10}))
    join.add_label(arrived("d", 11))
    for offset, (event_id, ts) in enumerate([("w", 300), ("w", 300), ("v", 200), ("u", 12)]):
        join.add_label(arrived(event_id, ts, offset=offset, value="yes"))
    state = json_round_trip(join.state())
    copy = LabelJoin.restore(state)
    assert copy.state() == join.state()
    assert (len(copy), copy.waiting) == (len(join), join.waiting) == (3, 4)
    steps = [("w", 10), ("n1", 10), ("w", 510), ("n2", 705), ("v", 700), ("n3", 900)]
    for event_id, ts in steps:
        assert copy.add(event_id, pending(ts)) == join.add(event_id, pending(ts))
        assert copy.state() == join.state()
    assert copy.add_label(arrived("z", 400)) == join.add_label(arrived("z", 400))
    assert copy.state() == join.state()


def test_a_state_from_before_waiting_labels_restores_with_none() -> None:
    """Snapshots written before labels could wait have no "waiting": none wait after restore."""
    join = LabelJoin(ttl_ms=5, max_pending=2)
    join.add("a", pending(3))
    state = json_round_trip(join.state())
    del state["waiting"]
    copy = LabelJoin.restore(state)
    assert (len(copy), copy.waiting, copy.newest_ms) == (1, 0, 3)
    assert copy.add_label(arrived("a", 4)).joined == [(pending(3), arrived("a", 4))]


def test_empty_join_restores() -> None:
    """A join that never saw a prediction round-trips too."""
    join = LabelJoin(ttl_ms=5, max_pending=2)
    copy = LabelJoin.restore(json_round_trip(join.state()))
    assert copy.newest_ms is None
    assert copy.state() == join.state()


def test_heaps_stay_bounded_under_many_joins() -> None:
    """Entries of joined predictions and labels are dropped, so memory follows what waits."""
    join = LabelJoin(ttl_ms=10**9, max_pending=10**6)
    for i in range(20_000):
        assert join.add(str(i), pending(i)) == JoinOutcome()
        assert len(join.add_label(arrived(str(i), i)).joined) == 1
        assert join.add_label(arrived(f"ahead-{i}", i)) == JoinOutcome()
        assert len(join.add(f"ahead-{i}", pending(i)).joined) == 1
    assert (len(join), join.waiting) == (0, 0)
    assert len(join._heap) <= 2 * len(join) + 1024
    assert len(join._label_heap) <= 2 * join.waiting + 1024
    assert join.add("last", pending(0)) == JoinOutcome()
    assert len(join) == 1


operations = st.lists(
    st.one_of(
        st.tuples(st.just("prediction"), st.integers(0, 12), st.integers(0, 60)),
        st.tuples(st.just("label"), st.integers(0, 12), st.integers(0, 60)),
    ),
    max_size=80,
)


@given(
    ops=operations,
    # Small times and TTLs make ties and exact TTL boundaries common.
    ttl_ms=st.integers(0, 30),
    max_pending=st.integers(1, 6),
    split=st.integers(0, 80),
)
@settings(max_examples=400, deadline=None)
def test_join_equals_naive_model_conserves_and_restores_midway(
    ops: list[tuple[str, int, int]], ttl_ms: int, max_pending: int, split: int
) -> None:
    """Any interleaving of predictions and labels: the same outcomes as a naive join;
    restoring midway changes nothing; every prediction comes back exactly once (joined
    xor unlabeled) and every label exactly once (joined xor unmatched), unless still held."""
    join = LabelJoin(ttl_ms, max_pending)
    naive = NaiveJoin(ttl_ms, max_pending)
    added_predictions: list[PendingPrediction] = []
    added_labels: list[ArrivedLabel] = []
    back_predictions: list[PendingPrediction] = []
    back_labels: list[ArrivedLabel] = []
    for step, (kind, key, ts) in enumerate(ops):
        if step == split:
            join = LabelJoin.restore(json_round_trip(join.state()))
        event_id = f"e{key}"
        if kind == "prediction":
            prediction = pending(ts, float(step))  # the step number tells them apart
            outcome = join.add(event_id, prediction)
            assert outcome == naive.add(event_id, prediction)
            added_predictions.append(prediction)
        else:
            label = arrived(event_id, ts, offset=step)
            outcome = join.add_label(label)
            assert outcome == naive.add_label(label)
            added_labels.append(label)
        back_predictions += [p for p, _ in outcome.joined] + outcome.unlabeled
        back_labels += [label for _, label in outcome.joined]
        back_labels += outcome.expired_labels + outcome.evicted_labels
        assert len(join) == len(naive.predictions) <= max_pending
        assert join.waiting == len(naive.labels) <= max_pending
        state = join.state()
        held_ids = {entry[0] for entry in state["pending"]}
        assert held_ids.isdisjoint(entry[1] for entry in state["waiting"])
        if join.newest_ms is not None:
            assert all(entry[2] + ttl_ms >= join.newest_ms for entry in state["waiting"])
    held_predictions = [item[3] for item in naive.predictions]
    held_labels = [item[2] for item in naive.labels]
    assert sorted(back_predictions + held_predictions, key=repr) == sorted(
        added_predictions, key=repr
    )
    assert sorted(back_labels + held_labels, key=repr) == sorted(added_labels, key=repr)


# -- PerformanceWindow -------------------------------------------------------


def test_empty_and_unlabeled_only_windows() -> None:
    """No data gives None; only unlabeled predictions give coverage 0 and no metrics."""
    window = PerformanceWindow()
    assert window.result() is None
    window.add_unlabeled(3)
    window.add_unlabeled()
    assert window.result() == {
        "task": None,
        "n_labeled": 0,
        "n_unlabeled": 4,
        "label_coverage": 0.0,
        "label_delay_seconds": None,
        "metrics": None,
    }
    assert PerformanceWindow(task="regression").result() is None


def test_coverage_and_delay_arithmetic() -> None:
    """Coverage is labeled / all; delay mean, median and max are exact below the cap."""
    window = PerformanceWindow(task="regression")
    delays = [4.0, 1.0, 10.0, 3.0]
    for delay in delays:
        window.add_joined(2.0, 1.0, delay)
    window.add_unlabeled(4)
    result = window.result()
    assert result is not None
    assert result["n_labeled"] == 4
    assert result["n_unlabeled"] == 4
    assert result["label_coverage"] == 0.5
    assert result["label_delay_seconds"] == {"mean": 4.5, "p50": 3.5, "max": 10.0}
    assert result["metrics"] == {"mae": 1.0, "rmse": 1.0}


#: Chance, for one fixed seed, that a correct sampled estimate falls outside
#: the bounds the two tests below assert (so a failure means a bug, not bad luck).
SAMPLING_FAILURE_CHANCE = 1e-6


def test_delay_median_above_the_cap_comes_from_a_sample() -> None:
    """Past the cap p50 is the median of a uniform 20 000-delay sample; mean and max stay exact.

    The delays grow along the stream (a backlog building up), so a sample
    that favoured early or late pairs would show.
    """
    rng = np.random.default_rng(1)
    n, cap = 100_000, 20_000  # cap: the documented default
    delays = np.sort(rng.exponential(60.0, size=n))
    window = PerformanceWindow(task="regression", seed=3)
    assert window.sample_cap == cap
    for delay in delays.tolist():
        window.add_joined(0.0, 0.0, delay)
    result = window.result()
    assert result is not None
    summary = result["label_delay_seconds"]
    assert summary["mean"] == pytest.approx(float(delays.mean()), rel=1e-12)
    assert summary["max"] == float(delays.max())
    assert len(window.state()["delays"]) == cap
    # The share of a uniform sample (without replacement) of `cap` values
    # that lie at or below any fixed x is within t of the whole stream's
    # share except with chance 2 exp(-2 cap t^2) (Hoeffding 1963, sections
    # 2 and 6). If the sample median were above the stream's value of rank
    # j = ceil(n (1/2 + t)), at most half the sample would lie at or below
    # that value, against a share >= 1/2 + t in the stream; symmetrically
    # below rank n + 1 - j. So, except with chance SAMPLING_FAILURE_CHANCE,
    # p50 lies between those two values (the exact median passes too).
    t = math.sqrt(math.log(2 / SAMPLING_FAILURE_CHANCE) / (2 * cap))  # about 0.019
    j = math.ceil(n * (0.5 + t))
    assert delays[n - j] <= summary["p50"] <= delays[j - 1]


def test_non_finite_delay_and_negative_count_are_errors() -> None:
    """Delays must be finite; unlabeled counts must not be negative."""
    window = PerformanceWindow()
    with pytest.raises(ValueError, match="label delay must be finite, got nan"):
        window.add_joined(1.0, 1.0, float("nan"))
    with pytest.raises(ValueError, match="count must not be negative, got -1"):
        window.add_unlabeled(-1)
    with pytest.raises(ValueError, match="sample_cap must be at least 1, got 0"):
        PerformanceWindow(sample_cap=0)
    assert window.result() is None


@pytest.mark.parametrize(
    ("prediction", "label", "task"),
    [
        ({"a": 0.6, "b": 0.4}, 1.5, "classification"),
        (1, "1", "classification"),
        (0.7, True, "classification"),
        (1, 2, "regression"),
        (0.5, 1.25, "regression"),
    ],
)
def test_task_inferred_from_first_pair(
    prediction: PredictionValue, label: LabelValue, task: str
) -> None:
    """A map or a text/boolean label means classification, else regression."""
    window = PerformanceWindow()
    window.add_joined(prediction, label, 1.0)
    result = window.result()
    assert result is not None
    assert result["task"] == task


def test_task_stays_fixed_after_the_first_pair() -> None:
    """Once regression, a text label is an error; once classification, numbers are classes."""
    regression = PerformanceWindow()
    regression.add_joined(1.0, 2.0, 0.0)
    with pytest.raises(ValueError, match="regression needs numbers"):
        regression.add_joined(1.0, "yes", 0.0)
    assert regression.n_labeled == 1
    classification = PerformanceWindow()
    classification.add_joined("1", "1", 0.0)
    classification.add_joined(2, 2.0, 0.0)
    classification.add_joined(3, 1, 0.0)
    result = classification.result()
    assert result is not None
    assert result["task"] == "classification"
    assert result["metrics"]["accuracy"] == pytest.approx(2 / 3)
    assert result["metrics"]["roc_auc"] is None


def test_explicit_task_overrides_inference() -> None:
    """task="classification" treats integer predictions and labels as classes."""
    window = PerformanceWindow(task="classification")
    for prediction, label in [(0, 0), (1, 1), (1, 0), (0, 0)]:
        window.add_joined(prediction, label, 0.0)
    result = window.result()
    assert result is not None
    assert result["metrics"]["accuracy"] == 0.75
    assert result["metrics"]["f1_macro"] == pytest.approx(
        f1_score([0, 1, 0, 0], [0, 1, 1, 0], average="macro")
    )


@pytest.mark.parametrize("seed", range(6))
def test_classification_metrics_equal_sklearn(seed: int) -> None:
    """Accuracy, macro F1 (argmax, exact) and OvR AUC (below the cap) equal sklearn."""
    rng = np.random.default_rng(seed)
    k = [2, 3, 5][seed % 3]
    classes = [f"c{i}" for i in range(k)]
    n = 1500
    matrix = rng.dirichlet(np.ones(k), size=40)[rng.integers(0, 40, n)]  # ties
    labels = np.array(rng.choice(classes, size=n), dtype=object)
    labels[:k] = classes
    window = PerformanceWindow(sample_cap=n)
    for label, row in zip(labels.tolist(), matrix, strict=True):
        window.add_joined(dict(zip(classes, row.tolist(), strict=True)), label, 1.0)
    result = window.result()
    assert result is not None
    metrics = result["metrics"]
    argmax = np.array(classes, dtype=object)[matrix.argmax(axis=1)]
    assert metrics["accuracy"] == pytest.approx(accuracy_score(labels, argmax))
    assert metrics["f1_macro"] == pytest.approx(
        f1_score(labels, argmax, average="macro", zero_division=0), rel=1e-12
    )
    expected_auc = (
        roc_auc_score(labels == "c1", matrix[:, 1])
        if k == 2
        else roc_auc_score(labels, matrix, multi_class="ovr", average="macro")
    )
    assert metrics["roc_auc"] == pytest.approx(expected_auc, rel=1e-12)


def test_auc_above_the_cap_is_estimated_from_the_sample() -> None:
    """Past the cap, counts stay exact and AUC comes from a uniform 20 000-pair sample.

    The model is informative in the first half of the stream (AUC about
    0.83) and guesses in the second (0.5), so a sample that favoured early
    or late pairs would be far from the whole stream's AUC (about 0.67).
    """
    rng = np.random.default_rng(11)
    n, cap = 40_000, 20_000  # cap: the documented default
    yes = rng.random(n)
    chance_of_yes = np.where(np.arange(n) < n // 2, yes, 0.5)
    labels = np.where(rng.random(n) < chance_of_yes, "yes", "no")
    window = PerformanceWindow(seed=5)
    assert window.sample_cap == cap
    for label, p in zip(labels.tolist(), yes.tolist(), strict=True):
        window.add_joined({"yes": p, "no": 1.0 - p}, label, 0.0)
    result = window.result()
    assert result is not None
    sampled = [label for label, _ in window.state()["scored"]]
    assert len(sampled) == cap
    exact = roc_auc_score(labels == "yes", yes)
    # The sample is a uniform subset of the stream; given its k+ positives
    # and k- negatives, those are independent uniform subsets (without
    # replacement) of the stream's positives and negatives. The sampled AUC
    # is the mean, over sampled positives, of g(x) = share of sampled
    # negatives scored below x (ties 1/2). Given the sampled negatives, g is
    # a fixed [0, 1] function, so (Hoeffding 1963, sections 2 and 6) that
    # mean is within t+ of g's mean over all the stream's positives except
    # with chance 2 exp(-2 k+ t+^2). That mean is the mean, over sampled
    # negatives, of h(y) = share of the stream's positives scored above y,
    # whose mean over all the stream's negatives is the exact AUC: within
    # t- except with chance 2 exp(-2 k- t-^2). Each chance is set to half
    # of SAMPLING_FAILURE_CHANCE (the exact AUC passes too).
    bound = sum(
        math.sqrt(math.log(4 / SAMPLING_FAILURE_CHANCE) / (2 * k))
        for k in (sampled.count("yes"), sampled.count("no"))
    )  # about 0.055
    assert abs(result["metrics"]["roc_auc"] - exact) <= bound
    assert result["metrics"]["accuracy"] == pytest.approx(
        accuracy_score(labels, np.where(yes > 0.5, "yes", "no")), rel=1e-12
    )


@pytest.mark.parametrize("seed", range(4))
def test_regression_metrics_equal_sklearn(seed: int) -> None:
    """MAE and RMSE from running sums equal sklearn's."""
    rng = np.random.default_rng(seed)
    actual = rng.normal(100.0, 20.0, size=3000)
    estimate = actual + rng.normal(0.0, 5.0, size=3000)
    window = PerformanceWindow()
    for y, y_hat in zip(actual.tolist(), estimate.tolist(), strict=True):
        window.add_joined(y_hat, y, 2.0)
    result = window.result()
    assert result is not None
    assert result["task"] == "regression"
    assert result["metrics"]["mae"] == pytest.approx(
        mean_absolute_error(actual, estimate), rel=1e-9
    )
    assert result["metrics"]["rmse"] == pytest.approx(
        root_mean_squared_error(actual, estimate), rel=1e-9
    )


def test_window_state_is_json_and_restores_exactly() -> None:
    """state() survives JSON; the copy continues exactly like the original."""
    window = PerformanceWindow(sample_cap=5, seed=9)
    for i in range(12):
        window.add_joined({"a": i / 12, "b": 1 - i / 12}, "a" if i % 3 else "b", float(i))
    window.add_unlabeled(2)
    copy = PerformanceWindow.restore(json_round_trip(window.state()))
    assert copy.state() == window.state()
    for i in range(30):
        for target in (window, copy):
            target.add_joined({"a": 0.5, "b": 0.5 - i / 100}, "b", 100.0 + i)
    assert copy.result() == window.result()
    assert copy.state() == window.state()


event = st.one_of(
    st.tuples(
        st.just("joined"),
        st.one_of(
            st.sampled_from(["a", "b", "c"]),
            st.dictionaries(
                st.sampled_from(["a", "b", "c"]),
                st.floats(0.0, 1.0),
                min_size=1,
            ),
        ),
        st.sampled_from(["a", "b", "c"]),
        st.floats(0.0, 1e5),
    ),
    st.tuples(st.just("unlabeled"), st.just("a"), st.just("a"), st.integers(0, 3)),
)
numeric_event = st.one_of(
    st.tuples(
        st.just("joined"),
        st.floats(-1e6, 1e6),
        st.floats(-1e6, 1e6),
        st.floats(0.0, 1e5),
    ),
    st.tuples(st.just("unlabeled"), st.just(0.0), st.just(0.0), st.integers(0, 3)),
)


def apply(window: PerformanceWindow, step: tuple[str, Any, Any, float]) -> None:
    """Feed one generated event to a window."""
    kind, prediction, label, amount = step
    if kind == "joined":
        window.add_joined(prediction, label, amount)
    else:
        window.add_unlabeled(int(amount))


@given(
    steps=st.one_of(st.lists(event, max_size=40), st.lists(numeric_event, max_size=40)),
    split=st.integers(0, 40),
    sample_cap=st.integers(1, 6),
    seed=st.integers(0, 2**32),
)
@settings(max_examples=200, deadline=None)
def test_restore_midway_equals_uninterrupted(
    steps: list[tuple[str, Any, Any, float]], split: int, sample_cap: int, seed: int
) -> None:
    """Checkpointing through JSON at any point gives the uninterrupted result and state."""
    straight = PerformanceWindow(sample_cap=sample_cap, seed=seed)
    resumed = PerformanceWindow(sample_cap=sample_cap, seed=seed)
    for step in steps[:split]:
        apply(straight, step)
        apply(resumed, step)
    resumed = PerformanceWindow.restore(json_round_trip(resumed.state()))
    for step in steps[split:]:
        apply(straight, step)
        apply(resumed, step)
    assert resumed.result() == straight.result()
    assert resumed.state() == straight.state()
    result = straight.result()
    if result is not None:
        total = result["n_labeled"] + result["n_unlabeled"]
        assert result["label_coverage"] == pytest.approx(result["n_labeled"] / total)
        assert math.isfinite(result["label_coverage"])
