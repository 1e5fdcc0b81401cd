"""Joining ground-truth labels to their predictions, with bounded state.

:class:`LabelJoin` holds, keyed by ``event_id``, the predictions still
waiting for a label and the labels that arrived before their prediction,
and lets them go (unlabeled, or as unmatched labels) when they are too old
in event time or too many are waiting. :class:`PerformanceWindow`
accumulates one window's joined ``(prediction, label)`` pairs into
performance metrics. Neither reads a clock: "now" is the newest prediction
timestamp seen.
"""

from __future__ import annotations

import base64
import heapq
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitor.stats.performance import (
    LabelValue,
    PredictionValue,
    Task,
    accuracy_from_counts,
    f1_macro_from_counts,
    infer_task,
    predicted_class,
    roc_auc_ovr,
)
from monitor.values import category_key

#: Joined pairs kept per window for ROC AUC and the median label delay.
DEFAULT_PERFORMANCE_SAMPLE_CAP = 20_000

#: The heap of :class:`LabelJoin` is rebuilt once it holds this many more
#: entries than twice the number pending (entries of matched predictions).
_HEAP_SLACK = 1024


@dataclass(frozen=True, slots=True)
class PendingPrediction:
    """A prediction waiting for its label.

    Parameters
    ----------
    model, model_version
        The model that made it.
    timestamp_ms
        Event time of the prediction, in milliseconds since the epoch.
    prediction
        The prediction: a scalar or a class -> probability map.
    """

    model: str
    model_version: str
    timestamp_ms: int
    prediction: PredictionValue


@dataclass(frozen=True, slots=True)
class ArrivedLabel:
    """A label event handed to the join, with the message it came in.

    Parameters
    ----------
    event_id
        The prediction it labels.
    timestamp_ms
        Event time of the label, in milliseconds since the epoch.
    label
        The ground truth.
    topic, partition, offset, raw
        Where the label came from and its bytes: a label that never finds
        its prediction is dead-lettered with them, possibly long after it
        arrived (so they are kept, and snapshotted, while it waits).
    """

    event_id: str
    timestamp_ms: int
    label: LabelValue
    topic: str
    partition: int
    offset: int
    raw: bytes


@dataclass(slots=True)
class JoinOutcome:
    """What one :class:`LabelJoin` call handed back.

    Attributes
    ----------
    joined
        Predictions paired with their labels, in the order they joined.
    unlabeled
        Predictions that left without a label.
    expired_labels
        Waiting labels whose prediction can no longer come in time: the
        newest prediction is more than the TTL past the label's event time.
    evicted_labels
        Waiting labels pushed out because too many were waiting.
    """

    joined: list[tuple[PendingPrediction, ArrivedLabel]] = field(default_factory=list)
    unlabeled: list[PendingPrediction] = field(default_factory=list)
    expired_labels: list[ArrivedLabel] = field(default_factory=list)
    evicted_labels: list[ArrivedLabel] = field(default_factory=list)


class LabelJoin:
    """Predictions waiting for a label and labels waiting for a prediction, by ``event_id``.

    One join serves one model in one partition. Memory is bounded: at most
    ``max_pending`` predictions and ``max_pending`` labels wait.

    Parameters
    ----------
    ttl_ms
        How long, in event time, a prediction waits for its label, and a
        label for its prediction.
    max_pending
        Most predictions kept waiting, and most labels kept waiting.

    Notes
    -----
    Let :math:`T` be the newest prediction timestamp added so far
    (:attr:`newest_ms`). Label timestamps never move :math:`T`: it measures
    how far the prediction stream has got.

    *Predictions* (:meth:`add`). A prediction whose ``event_id`` has a
    waiting label joins that label at once (the earliest-arrived one if
    several wait) and is not held, even if it is older than
    :math:`T - \\mathrm{ttl}`. Otherwise it is held; one already pending
    under the same ``event_id`` is replaced and leaves unlabeled (it will
    never get its label). Then every pending prediction with
    ``timestamp_ms + ttl_ms < T`` leaves, and, while more than
    ``max_pending`` are pending, the oldest leaves; all of these are
    unlabeled. "Oldest" is the smallest ``timestamp_ms``, ties broken by
    arrival order, for both rules.

    *Labels* (:meth:`add_label`). A label whose prediction is pending joins
    it. Otherwise the label *waits*: its prediction may still come, when the
    label topic runs ahead of the prediction topic (a backlog after a
    restart, consumer lag, a replay). A prediction precedes its label
    (:math:`p \\le L`), and a prediction arriving with
    :math:`p + \\mathrm{ttl} < T` would leave at once; so once
    :math:`T > L + \\mathrm{ttl}` the prediction cannot usefully come any
    more, and the waiting label *expires* (kept while
    :math:`L + \\mathrm{ttl} \\ge T`, the same boundary as a prediction's).
    Expiry is checked whenever :math:`T` moves (in :meth:`add`) and when a
    label arrives, so a label already past it leaves in the same call.
    Before any prediction of the model has been seen, :math:`T` is
    undefined and labels only wait. While more than ``max_pending`` labels
    wait, the oldest (same order as for predictions) is *evicted*.

    Consequences: a label that never gets a prediction (never sent, late or
    rejected, already labelled, or whose prediction left the join before the
    label came) is handed back as expired only once the predictions' event
    time has passed ``L + ttl_ms``, not when it arrives. A second label of
    an ``event_id`` waits like any other; it joins a second prediction of
    that ``event_id`` if one comes, else it expires. A label timestamped
    before its prediction (clock skew) may expire before the prediction
    comes, if the prediction is more than the TTL ahead of it.

    Conservation: every prediction added is handed back exactly once,
    joined or unlabeled; every label added exactly once, joined, expired or
    evicted; unless it is still waiting. Nothing reads a clock, so a
    restored join (:meth:`state`, :meth:`restore`) continues exactly like
    the original.

    Predictions and labels each sit in a dict and a heap of
    ``(timestamp_ms, arrival, event_id)``. Each call costs
    :math:`O(\\log n)` plus :math:`O(\\log n)` per item that leaves. A join
    leaves its heap entry behind; a heap is rebuilt in :math:`O(n)` when it
    holds more than ``2 n + 1024`` entries, so it stays :math:`O(n)` in size
    and the rebuild is :math:`O(1)` amortised.

    Examples
    --------
    >>> def prediction(timestamp_ms):
    ...     return PendingPrediction("churn", "1", timestamp_ms, 0.5)
    >>> def label(event_id, timestamp_ms, offset):
    ...     return ArrivedLabel(event_id, timestamp_ms, 1.0, "labels", 0, offset, b"{...}")
    >>> join = LabelJoin(ttl_ms=1000, max_pending=2)
    >>> join.add("a", prediction(0)).unlabeled, join.add("b", prediction(500)).unlabeled
    ([], [])
    >>> [p.timestamp_ms for p in join.add("c", prediction(1200)).unlabeled]
    [0]

    A label ahead of its prediction waits, then joins it:

    >>> join.add_label(label("d", 1300, offset=7)).joined, join.waiting
    ([], 1)
    >>> [(p.timestamp_ms, l.offset) for p, l in join.add("d", prediction(1250)).joined]
    [(1250, 7)]

    One whose prediction never comes expires once the predictions are more
    than the TTL past it:

    >>> join.add_label(label("never", 1300, offset=8)).expired_labels
    []
    >>> join.add("e", prediction(2300)).expired_labels
    []
    >>> [l.offset for l in join.add("f", prediction(2301)).expired_labels]
    [8]
    """

    def __init__(self, ttl_ms: int, max_pending: int) -> None:
        if ttl_ms < 0:
            raise ValueError(f"ttl_ms must not be negative, got {ttl_ms}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self.ttl_ms = ttl_ms
        self.max_pending = max_pending
        self._newest_ms: int | None = None
        self._next_arrival = 0
        self._pending: dict[str, tuple[int, PendingPrediction]] = {}
        self._heap: list[tuple[int, int, str]] = []
        #: Waiting labels by arrival number, and their arrival numbers by
        #: ``event_id`` (in arrival order: several labels may wait for one id).
        self._waiting: dict[int, ArrivedLabel] = {}
        self._waiting_ids: dict[str, list[int]] = {}
        self._label_heap: list[tuple[int, int, str]] = []

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def waiting(self) -> int:
        """Labels waiting for their prediction."""
        return len(self._waiting)

    @property
    def newest_ms(self) -> int | None:
        """Newest prediction timestamp added so far (``None`` before any)."""
        return self._newest_ms

    def add(self, event_id: str, pending: PendingPrediction) -> JoinOutcome:
        """Join a prediction to its waiting label, or hold it for its label.

        Returns what left or joined; see the class notes.
        """
        outcome = JoinOutcome()
        label = self._take_waiting(event_id)
        if label is not None:
            outcome.joined.append((pending, label))
        else:
            replaced = self._pending.pop(event_id, None)
            if replaced is not None:
                outcome.unlabeled.append(replaced[1])
            arrival = self._arrival()
            self._pending[event_id] = (arrival, pending)
            heapq.heappush(self._heap, (pending.timestamp_ms, arrival, event_id))
        if self._newest_ms is None or pending.timestamp_ms > self._newest_ms:
            self._newest_ms = pending.timestamp_ms
        self._release_predictions(outcome)
        if self._label_heap:  # usually empty: labels rarely run ahead
            self._release_labels(outcome)
        return outcome

    def add_label(self, label: ArrivedLabel) -> JoinOutcome:
        """Join a label to its pending prediction, or let it wait for it.

        Examples
        --------
        >>> join = LabelJoin(ttl_ms=10, max_pending=5)
        >>> _ = join.add("e1", PendingPrediction("m", "1", 0, "yes"))
        >>> label = ArrivedLabel("e1", 3, "no", "labels", 0, 0, b"{...}")
        >>> [(p.prediction, l.label) for p, l in join.add_label(label).joined]
        [('yes', 'no')]
        >>> join.add_label(label).joined, join.waiting
        ([], 1)
        """
        outcome = JoinOutcome()
        entry = self._pending.pop(label.event_id, None)
        if entry is not None:
            outcome.joined.append((entry[1], label))
            return outcome
        arrival = self._arrival()
        self._waiting[arrival] = label
        self._waiting_ids.setdefault(label.event_id, []).append(arrival)
        heapq.heappush(self._label_heap, (label.timestamp_ms, arrival, label.event_id))
        self._release_labels(outcome)
        return outcome

    def _arrival(self) -> int:
        arrival = self._next_arrival
        self._next_arrival += 1
        return arrival

    def _take_waiting(self, event_id: str) -> ArrivedLabel | None:
        """Remove and return the earliest-arrived label waiting for ``event_id``."""
        arrivals = self._waiting_ids.get(event_id)
        if arrivals is None:
            return None
        arrival = arrivals.pop(0)
        if not arrivals:
            del self._waiting_ids[event_id]
        return self._waiting.pop(arrival)

    def _release_predictions(self, outcome: JoinOutcome) -> None:
        """Let expired and surplus predictions go, oldest first."""
        assert self._newest_ms is not None  # set by every add
        oldest_kept = self._newest_ms - self.ttl_ms
        heap = self._heap
        while heap:
            timestamp_ms, arrival, event = heap[0]
            entry = self._pending.get(event)
            if entry is None or entry[0] != arrival:
                heapq.heappop(heap)  # matched or replaced earlier
                continue
            if timestamp_ms >= oldest_kept and len(self._pending) <= self.max_pending:
                break
            heapq.heappop(heap)
            del self._pending[event]
            outcome.unlabeled.append(entry[1])
        if len(heap) > 2 * len(self._pending) + _HEAP_SLACK:
            self._rebuild_heap()

    def _release_labels(self, outcome: JoinOutcome) -> None:
        """Let expired and surplus waiting labels go, oldest first."""
        oldest_kept = None if self._newest_ms is None else self._newest_ms - self.ttl_ms
        heap = self._label_heap
        while heap:
            timestamp_ms, arrival, event = heap[0]
            if arrival not in self._waiting:
                heapq.heappop(heap)  # joined earlier
                continue
            expired = oldest_kept is not None and timestamp_ms < oldest_kept
            if not expired and len(self._waiting) <= self.max_pending:
                break
            heapq.heappop(heap)
            arrivals = self._waiting_ids[event]
            arrivals.remove(arrival)
            if not arrivals:
                del self._waiting_ids[event]
            label = self._waiting.pop(arrival)
            (outcome.expired_labels if expired else outcome.evicted_labels).append(label)
        if len(heap) > 2 * len(self._waiting) + _HEAP_SLACK:
            self._rebuild_label_heap()

    def state(self) -> dict[str, Any]:
        """JSON-ready state; :meth:`restore` rebuilds an identical join.

        Examples
        --------
        >>> join = LabelJoin(ttl_ms=10, max_pending=5)
        >>> _ = join.add("e1", PendingPrediction("m", "1", 7, {"a": 1.0}))
        >>> _ = join.add_label(ArrivedLabel("e2", 9, True, "labels", 0, 3, b"{}"))
        >>> join.state()["pending"], join.state()["waiting"]
        ([['e1', 0, 'm', '1', 7, {'a': 1.0}]], [[1, 'e2', 9, True, 'labels', 0, 3, 'e30=']])
        """
        return {
            "ttl_ms": self.ttl_ms,
            "max_pending": self.max_pending,
            "newest_ms": self._newest_ms,
            "next_arrival": self._next_arrival,
            "pending": [
                [
                    event_id,
                    arrival,
                    pending.model,
                    pending.model_version,
                    pending.timestamp_ms,
                    pending.prediction,
                ]
                for event_id, (arrival, pending) in self._pending.items()
            ],
            "waiting": [
                [
                    arrival,
                    label.event_id,
                    label.timestamp_ms,
                    label.label,
                    label.topic,
                    label.partition,
                    label.offset,
                    base64.b64encode(label.raw).decode(),
                ]
                for arrival, label in self._waiting.items()
            ],
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> LabelJoin:
        """Rebuild a join from :meth:`state`.

        A state without ``waiting`` (written before labels could wait)
        restores with no waiting labels.

        Examples
        --------
        >>> join = LabelJoin(ttl_ms=10, max_pending=5)
        >>> _ = join.add("e1", PendingPrediction("m", "1", 7, 0.5))
        >>> [p for p, _ in LabelJoin.restore(join.state()).add_label(
        ...     ArrivedLabel("e1", 8, 1.0, "labels", 0, 0, b"{}")).joined]
        [PendingPrediction(model='m', model_version='1', timestamp_ms=7, prediction=0.5)]
        """
        join = cls(int(state["ttl_ms"]), int(state["max_pending"]))
        newest = state["newest_ms"]
        join._newest_ms = None if newest is None else int(newest)
        join._next_arrival = int(state["next_arrival"])
        for event_id, arrival, model, version, timestamp_ms, prediction in state["pending"]:
            join._pending[str(event_id)] = (
                int(arrival),
                PendingPrediction(str(model), str(version), int(timestamp_ms), prediction),
            )
        # Sorted by arrival, so several labels of one event_id keep their order.
        for arrival, event_id, timestamp_ms, label, topic, partition, offset, raw in sorted(
            state.get("waiting", [])
        ):
            join._waiting[int(arrival)] = ArrivedLabel(
                str(event_id),
                int(timestamp_ms),
                label,
                str(topic),
                int(partition),
                int(offset),
                base64.b64decode(raw),
            )
            join._waiting_ids.setdefault(str(event_id), []).append(int(arrival))
        join._rebuild_heap()
        join._rebuild_label_heap()
        return join

    def _rebuild_heap(self) -> None:
        self._heap = [
            (pending.timestamp_ms, arrival, event_id)
            for event_id, (arrival, pending) in self._pending.items()
        ]
        heapq.heapify(self._heap)

    def _rebuild_label_heap(self) -> None:
        self._label_heap = [
            (label.timestamp_ms, arrival, label.event_id)
            for arrival, label in self._waiting.items()
        ]
        heapq.heapify(self._label_heap)


class _Sample:
    """Uniform sample (Algorithm R) of at most ``capacity`` items of a stream."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.seen = 0
        self.items: list[Any] = []

    def offer(self, item: Any, rng: np.random.Generator) -> None:
        if self.seen < self.capacity:
            self.items.append(item)
        else:
            slot = math.floor(rng.random() * (self.seen + 1))
            if slot < self.capacity:
                self.items[slot] = item
        self.seen += 1


class PerformanceWindow:
    """One window's joined ``(prediction, label)`` pairs, as performance metrics.

    Parameters
    ----------
    task
        ``"classification"``, ``"regression"``, or ``None`` to decide from
        the first joined pair (see :func:`monitor.stats.performance.infer_task`)
        and keep that.
    sample_cap
        Most pairs kept for ROC AUC, and most delays kept for their median.
    seed
        Seed of the generator that picks the samples.

    Notes
    -----
    Classification: the predicted class is the argmax of a probability map
    (ties to the smallest class key) or the scalar prediction's
    :func:`~monitor.values.category_key`, compared with the label's. The
    confusion counts are exact, so ``accuracy`` and ``f1_macro`` are too
    (memory grows with the number of classes squared). ``roc_auc`` is
    :func:`~monitor.stats.performance.roc_auc_ovr` over the pairs whose
    prediction is a map (``None`` if there are none): exact up to
    ``sample_cap`` such pairs, beyond that computed on a uniform sample
    (Algorithm R) of ``sample_cap`` of them: a consistent estimate whose
    standard error is of order
    :math:`\\sqrt{\\mathrm{AUC}(1-\\mathrm{AUC}) / \\min(n_+, n_-)}`, with
    :math:`n_\\pm` the positives and negatives of a class in the sample.

    Regression: ``mae`` and ``rmse`` come from running sums of
    :math:`|e|` and :math:`e^2`, :math:`e = y - \\hat y`, so are exact.

    Label delay: mean and max are exact; p50 is the median of a uniform
    sample of ``sample_cap`` delays (exact up to that many). Label coverage
    is ``n_labeled / (n_labeled + n_unlabeled)``.

    Examples
    --------
    >>> window = PerformanceWindow()
    >>> window.add_joined({"yes": 0.8, "no": 0.2}, "yes", delay_seconds=30.0)
    >>> window.add_joined({"yes": 0.3, "no": 0.7}, "yes", delay_seconds=90.0)
    >>> window.add_unlabeled(2)
    >>> result = window.result()
    >>> result["task"], result["label_coverage"], result["label_delay_seconds"]["mean"]
    ('classification', 0.5, 60.0)
    >>> result["metrics"]["accuracy"], result["metrics"]["roc_auc"]
    (0.5, None)
    """

    def __init__(
        self,
        task: Task | None = None,
        sample_cap: int = DEFAULT_PERFORMANCE_SAMPLE_CAP,
        seed: int = 0,
    ) -> None:
        if task not in (None, "classification", "regression"):
            raise ValueError(f"unknown task {task!r}")
        if sample_cap < 1:
            raise ValueError(f"sample_cap must be at least 1, got {sample_cap}")
        self.task: Task | None = task
        self.sample_cap = sample_cap
        self.rng = np.random.default_rng(seed)
        self.n_labeled = 0
        self.n_unlabeled = 0
        self.confusion: dict[tuple[str, str], int] = {}
        self._scored = _Sample(sample_cap)
        self.abs_error_sum = 0.0
        self.squared_error_sum = 0.0
        self.delay_sum = 0.0
        self.delay_max = -math.inf
        self._delays = _Sample(sample_cap)

    def add_joined(
        self, prediction: PredictionValue, label: LabelValue, delay_seconds: float
    ) -> None:
        """Add a prediction and its label, which came ``delay_seconds`` later."""
        delay = float(delay_seconds)
        if not math.isfinite(delay):
            raise ValueError(f"label delay must be finite, got {delay_seconds!r}")
        task = self.task if self.task is not None else infer_task(prediction, label)
        if task == "classification":
            label_key = category_key(label)
            guess_key = predicted_class(prediction)
            if label_key is None or guess_key is None:
                raise ValueError(f"cannot compare prediction {prediction!r} with label {label!r}")
            pair = (label_key, guess_key)
            self.confusion[pair] = self.confusion.get(pair, 0) + 1
            if isinstance(prediction, dict):
                self._scored.offer([label_key, dict(prediction)], self.rng)
        else:
            if isinstance(prediction, dict | str) or isinstance(label, str):
                raise ValueError(
                    f"regression needs numbers, got prediction {prediction!r} and label {label!r}"
                )
            error = float(label) - float(prediction)
            self.abs_error_sum += abs(error)
            self.squared_error_sum += error * error
        self.task = task
        self.n_labeled += 1
        self.delay_sum += delay
        self.delay_max = max(self.delay_max, delay)
        self._delays.offer(delay, self.rng)

    def add_unlabeled(self, count: int = 1) -> None:
        """Count predictions that left without a label."""
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        self.n_unlabeled += count

    def result(self) -> dict[str, Any] | None:
        """The window's performance, or ``None`` if it saw nothing.

        ``label_delay_seconds`` is ``None`` and ``metrics`` is ``None``
        while nothing has been joined.
        """
        total = self.n_labeled + self.n_unlabeled
        if total == 0:
            return None
        delays = None
        metrics: dict[str, float | None] | None = None
        n = self.n_labeled
        if n:
            delays = {
                "mean": self.delay_sum / n,
                "p50": float(np.median(self._delays.items)),
                "max": self.delay_max,
            }
            if self.task == "classification":
                auc = None
                if self._scored.items:
                    labels = [item[0] for item in self._scored.items]
                    maps = [item[1] for item in self._scored.items]
                    auc = roc_auc_ovr(labels, maps)
                metrics = {
                    "accuracy": accuracy_from_counts(self.confusion),
                    "f1_macro": f1_macro_from_counts(self.confusion),
                    "roc_auc": auc,
                }
            else:
                metrics = {
                    "mae": self.abs_error_sum / n,
                    "rmse": math.sqrt(self.squared_error_sum / n),
                }
        return {
            "task": self.task,
            "n_labeled": self.n_labeled,
            "n_unlabeled": self.n_unlabeled,
            "label_coverage": self.n_labeled / total,
            "label_delay_seconds": delays,
            "metrics": metrics,
        }

    def state(self) -> dict[str, Any]:
        """JSON-ready state, generator included; see :meth:`restore`.

        Examples
        --------
        >>> import json
        >>> window = PerformanceWindow(sample_cap=2)
        >>> for delay in (1.0, 2.0, 3.0):
        ...     window.add_joined(1.0, 1.5, delay)
        >>> copy = PerformanceWindow.restore(json.loads(json.dumps(window.state())))
        >>> copy.result() == window.result()
        True
        """
        return {
            "task": self.task,
            "sample_cap": self.sample_cap,
            "rng": self.rng.bit_generator.state,
            "n_labeled": self.n_labeled,
            "n_unlabeled": self.n_unlabeled,
            "confusion": [
                [label, guess, count] for (label, guess), count in self.confusion.items()
            ],
            "scored_seen": self._scored.seen,
            "scored": [[label, dict(maps)] for label, maps in self._scored.items],
            "abs_error_sum": self.abs_error_sum,
            "squared_error_sum": self.squared_error_sum,
            "delay_sum": self.delay_sum,
            "delay_max": self.delay_max if self.n_labeled else None,
            "delays_seen": self._delays.seen,
            "delays": list(self._delays.items),
        }

    @classmethod
    def restore(cls, state: dict[str, Any]) -> PerformanceWindow:
        """Rebuild a window from :meth:`state`; it continues exactly as the original."""
        window = cls(state["task"], int(state["sample_cap"]))
        window.rng.bit_generator.state = state["rng"]
        window.n_labeled = int(state["n_labeled"])
        window.n_unlabeled = int(state["n_unlabeled"])
        window.confusion = {
            (str(label), str(guess)): int(count) for label, guess, count in state["confusion"]
        }
        window._scored.seen = int(state["scored_seen"])
        window._scored.items = [
            [str(label), {str(k): float(v) for k, v in probabilities.items()}]
            for label, probabilities in state["scored"]
        ]
        window.abs_error_sum = float(state["abs_error_sum"])
        window.squared_error_sum = float(state["squared_error_sum"])
        window.delay_sum = float(state["delay_sum"])
        delay_max = state["delay_max"]
        window.delay_max = -math.inf if delay_max is None else float(delay_max)
        window._delays.seen = int(state["delays_seen"])
        window._delays.items = [float(delay) for delay in state["delays"]]
        return window
