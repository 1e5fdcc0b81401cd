"""PartitionState: everything a worker computes for one input partition, without I/O.

Events are keyed by model, so one partition of the prediction topic (and
the same partition of the label topic) holds every event of its models.
:class:`PartitionState` turns that partition's messages into window
results, dead letters and bootstrapped references, and serialises itself
into a snapshot together with the input offsets it covers:

    message -> decode/validate -> window panes -> closed window
            -> comparison with the reference -> WindowResult

Crash safety rests on two rules the I/O shell follows: a snapshot is
written before the messages it covers are acknowledged (so the committed
offset never passes the snapshot), and :meth:`PartitionState.on_predictions`
skips messages below the snapshot's offset (so replayed input is never
counted twice).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd

from alerting.book import AlertBook
from monitor.catalog import ReferenceCatalog
from monitor.comparison import Comparator
from monitor.config import DriftstreamConfig
from monitor.framing import frame, unframe
from monitor.labels import (
    ArrivedLabel,
    JoinOutcome,
    LabelJoin,
    PendingPrediction,
    PerformanceWindow,
)
from monitor.panes import ClosedWindow, WindowAssembler
from monitor.reference import ReferenceProfile
from monitor.stats.decision import DriftPolicy
from monitor.values import FeatureKind
from monitor.windows import WindowState
from schemas.decoding import (
    EventLimits,
    RejectedMessageError,
    RejectReason,
    decode_label,
    decode_prediction,
)
from schemas.events import PredictionBatch, PredictionEvent
from schemas.outputs import (
    LATE,
    MISMATCHED_LABEL,
    UNMATCHED_LABEL,
    DeadLetter,
    MessageSource,
    ReferenceInfo,
    WindowBounds,
    WindowResult,
)

SNAPSHOT_MAGIC = b"DSPS"
SNAPSHOT_VERSION = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Pending predictions kept per model and partition for the label join.
DEFAULT_MAX_PENDING_LABELS = 100_000

PredictionValue = bool | int | float | str | dict[str, float]
REJECT_TEXT = {
    RejectReason.NO_REFERENCE.value: (
        "no reference profile for model {model!r} version {version!r} "
        "(publish one with `driftstream reference publish`, or set bootstrap_reference_events)"
    ),
    LATE: (
        "event time is behind the watermark: every window of model {model!r} version "
        "{version!r} containing it has closed (raise window.allowed_lateness to keep such events)"
    ),
}


@dataclass(frozen=True)
class InputMessage:
    """One consumed record: where it came from and its bytes."""

    topic: str
    partition: int
    offset: int
    value: bytes | None

    @property
    def source(self) -> MessageSource:
        """Its position, as dead letters record it."""
        return MessageSource(topic=self.topic, partition=self.partition, offset=self.offset)


@dataclass
class Outputs:
    """What processing produced, for the shell to publish and count."""

    results: list[WindowResult] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    references: list[ReferenceProfile] = field(default_factory=list)
    #: Events by (model, model_version, outcome); outcome is ``processed``,
    #: ``bootstrap`` (became the reference) or a dead-letter reason.
    events: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    labels: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    skipped_windows: int = 0
    duplicates: int = 0
    #: Seconds each window's comparison took (a stopwatch reading, never
    #: used in a decision, so replays still give identical results).
    evaluation_seconds: list[float] = field(default_factory=list)
    #: The windows that closed, by (model, version, window id), for alert reports.
    windows: dict[tuple[str, str, int], ClosedWindow] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSettings:
    """The configuration one model version is monitored with."""

    kind: Literal["count", "time"]
    size: int
    slide: int
    allowed_lateness_ms: int
    policy: DriftPolicy
    features: tuple[str, ...] | None
    prediction_column: str
    task: Literal["classification", "regression"] | None
    label_join_ttl_ms: int
    bootstrap_events: int

    @classmethod
    def from_config(cls, config: DriftstreamConfig, model: str) -> ModelSettings:
        """Settings of ``model``: its own section, else the defaults."""
        window = config.window_for(model)
        own = config.models.get(model)
        defaults = config.defaults
        if window.size_events is not None:
            kind: Literal["count", "time"] = "count"
            size = window.size_events
            slide = window.slide_events or size
        else:
            assert window.duration is not None  # one kind is set (validated)
            kind = "time"
            size = _milliseconds(window.duration)
            slide = _milliseconds(window.slide or window.duration)
        ttl = (own.label_join_ttl if own else None) or defaults.label_join_ttl
        bootstrap = own.bootstrap_reference_events if own else None
        return cls(
            kind=kind,
            size=size,
            slide=slide,
            allowed_lateness_ms=_milliseconds(window.allowed_lateness),
            policy=config.policy_for(model),
            features=tuple(own.features) if own and own.features else None,
            prediction_column=(own.prediction_column if own else None)
            or defaults.prediction_column,
            task=own.task if own else None,
            label_join_ttl_ms=_milliseconds(ttl),
            bootstrap_events=defaults.bootstrap_reference_events
            if bootstrap is None
            else bootstrap,
        )


@dataclass
class Rows:
    """Predictions of one model version from a batch of messages, in order."""

    model: str
    model_version: str
    features: list[dict[str, Any]] = field(default_factory=list)
    timestamps_ms: list[int] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    predictions: list[PredictionValue] = field(default_factory=list)
    messages: list[InputMessage] = field(default_factory=list)
    rows_in_message: list[int | None] = field(default_factory=list)

    def append(self, event: PredictionEvent | PredictionBatch, message: InputMessage) -> None:
        """Add a single prediction or every row of a batch."""
        if isinstance(event, PredictionEvent):
            self.features.append(event.features)
            self.timestamps_ms.append(epoch_ms(event.timestamp))
            self.event_ids.append(event.event_id)
            self.predictions.append(event.prediction)
            self.messages.append(message)
            self.rows_in_message.append(None)
            return
        names = list(event.features)
        columns = [event.features[name] for name in names]
        self.features.extend(
            {name: column[row] for name, column in zip(names, columns, strict=True)}
            for row in range(len(event))
        )
        self.timestamps_ms.extend(epoch_ms(moment) for moment in event.timestamps)
        self.event_ids.extend(event.event_ids)
        self.predictions.extend(event.predictions)
        self.messages.extend([message] * len(event))
        self.rows_in_message.extend(range(len(event)))

    def subset(self, positions: Sequence[int]) -> Rows:
        """These rows at ``positions`` only, in that order."""
        return Rows(
            self.model,
            self.model_version,
            [self.features[p] for p in positions],
            [self.timestamps_ms[p] for p in positions],
            [self.event_ids[p] for p in positions],
            [self.predictions[p] for p in positions],
            [self.messages[p] for p in positions],
            [self.rows_in_message[p] for p in positions],
        )

    def frame(self, prediction_column: str) -> pd.DataFrame:
        """One column per feature plus the prediction's column."""
        frame = pd.DataFrame.from_records(self.features, index=range(len(self.features)))
        frame[prediction_column] = [predicted_value(p) for p in self.predictions]
        return frame

    def event_document(self, position: int) -> dict[str, Any]:
        """Row ``position`` as a prediction event document."""
        return {
            "event_id": self.event_ids[position],
            "model": self.model,
            "model_version": self.model_version,
            "timestamp": self.timestamps_ms[position],
            "features": self.features[position],
            "prediction": self.predictions[position],
        }


def predicted_value(prediction: PredictionValue) -> bool | int | float | str:
    """The value profiled as the prediction: the most probable class of a map.

    Examples
    --------
    >>> predicted_value({"no": 0.3, "yes": 0.7}), predicted_value(0.25)
    ('yes', 0.25)
    """
    if isinstance(prediction, dict):
        return min(prediction, key=lambda name: (-prediction[name], name))
    return prediction


def performance_change(
    current: Mapping[str, float | None], reference: Mapping[str, float | None]
) -> dict[str, float | None]:
    """Window metric minus reference metric, for metrics both have.

    Examples
    --------
    >>> performance_change({"accuracy": 0.8, "roc_auc": None}, {"accuracy": 0.9, "roc_auc": 0.7})
    {'accuracy': -0.1, 'roc_auc': None}
    """
    change: dict[str, float | None] = {}
    for name, value in current.items():
        if name in reference:
            base = reference[name]
            change[name] = None if value is None or base is None else round(value - base, 12)
    return change


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, exactly."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


class VersionMonitor:
    """Windows, bootstrap rows and label performance of one model version."""

    def __init__(self, model: str, model_version: str, settings: ModelSettings) -> None:
        self.model = model
        self.model_version = model_version
        self.settings = settings
        self.assembler: WindowAssembler | None = None
        self.bootstrap: list[pd.DataFrame] = []
        self.performance = PerformanceWindow(settings.task)
        self.comparators: dict[str, Comparator] = {}

    @property
    def bootstrap_rows(self) -> int:
        """Rows collected towards a bootstrapped reference."""
        return sum(len(frame) for frame in self.bootstrap)

    def start_windows(self, ident: str, catalog: ReferenceCatalog) -> WindowAssembler:
        """Create the window assembler on reference ``ident``."""

        def new_state(profile_ident: str) -> WindowState:
            profile = catalog.get(profile_ident)
            if profile is None:
                raise KeyError(profile_ident)
            return WindowState.for_profile(profile)

        self.assembler = WindowAssembler(
            self.settings.kind,
            self.settings.size,
            self.settings.slide,
            new_state,
            ident,
            self.settings.allowed_lateness_ms,
        )
        return self.assembler

    def comparator(self, ident: str, profile: ReferenceProfile) -> Comparator:
        """The comparator of a reference (kept: it caches calibrations)."""
        comparator = self.comparators.get(ident)
        if comparator is None:
            comparator = Comparator(profile, self.settings.policy)
            self.comparators = {ident: comparator}
        return comparator


class PartitionState:
    """Processing state of one input partition.

    Parameters
    ----------
    partition
        The partition number (of the prediction and label topics).
    config
        The worker's configuration.
    catalog
        Reference profiles, shared by every partition of the worker.

    Examples
    --------
    >>> config = DriftstreamConfig()
    >>> state = PartitionState(0, config, ReferenceCatalog())
    >>> message = InputMessage("driftstream.predictions", 0, 5, b"{not json")
    >>> outputs = state.on_predictions([message])
    >>> outputs.dead_letters[0].reason, state.offsets
    ('invalid_json', {'driftstream.predictions': 6})
    >>> PartitionState.restore(state.snapshot(), config, ReferenceCatalog()).offsets
    {'driftstream.predictions': 6}
    """

    def __init__(
        self,
        partition: int,
        config: DriftstreamConfig,
        catalog: ReferenceCatalog,
        max_pending_labels: int = DEFAULT_MAX_PENDING_LABELS,
    ) -> None:
        self.partition = partition
        self.config = config
        self.catalog = catalog
        self.limits: EventLimits = config.limits.event_limits()
        self.offsets: dict[str, int] = {}
        self.versions: dict[tuple[str, str], VersionMonitor] = {}
        self.max_pending_labels = max_pending_labels
        self.joins: dict[str, LabelJoin] = {}
        self._settings: dict[str, ModelSettings] = {}
        alerting = config.alerting
        self.alerts = AlertBook(
            alerting.rules,
            config.policy_for,
            alerting.links,
            alerting.version_ttl.total_seconds(),
        )

    def settings(self, model: str) -> ModelSettings:
        """A model's settings (computed once)."""
        found = self._settings.get(model)
        if found is None:
            found = self._settings[model] = ModelSettings.from_config(self.config, model)
        return found

    def version(self, model: str, model_version: str) -> VersionMonitor:
        """The monitor of a model version (created on first use)."""
        key = (model, model_version)
        monitor = self.versions.get(key)
        if monitor is None:
            monitor = self.versions[key] = VersionMonitor(
                model, model_version, self.settings(model)
            )
        return monitor

    def join(self, model: str) -> LabelJoin:
        """The label join of a model (its TTL is the model's)."""
        found = self.joins.get(model)
        if found is None:
            found = self.joins[model] = LabelJoin(
                self.settings(model).label_join_ttl_ms, self.max_pending_labels
            )
        return found

    def _fresh(self, messages: Sequence[InputMessage], outputs: Outputs) -> list[InputMessage]:
        """Messages not yet covered by this state; advances the offsets."""
        fresh = []
        for message in messages:
            if message.offset < self.offsets.get(message.topic, 0):
                outputs.duplicates += 1
                continue
            fresh.append(message)
            self.offsets[message.topic] = message.offset + 1
        return fresh

    def on_predictions(self, messages: Sequence[InputMessage]) -> Outputs:
        """Process prediction messages (in offset order) of this partition."""
        outputs = Outputs()
        groups: dict[tuple[str, str], Rows] = {}
        for message in self._fresh(messages, outputs):
            try:
                event = decode_prediction(message.value or b"", self.limits)
            except RejectedMessageError as rejected:
                self._reject_undecodable(message, rejected, outputs.dead_letters, outputs.events)
                continue
            key = (event.model, event.model_version)
            rows = groups.get(key)
            if rows is None:
                rows = groups[key] = Rows(event.model, event.model_version)
            rows.append(event, message)
        for (model, model_version), rows in groups.items():
            self._ingest(self.version(model, model_version), rows, outputs)
        return outputs

    def _ingest(self, monitor: VersionMonitor, rows: Rows, outputs: Outputs) -> None:
        settings = monitor.settings
        frame = rows.frame(settings.prediction_column)
        timestamps = np.asarray(rows.timestamps_ms, dtype=np.int64)
        key = (monitor.model, monitor.model_version)
        latest = self.catalog.latest(*key)
        start = 0
        if latest is None and monitor.assembler is None:
            if settings.bootstrap_events == 0:
                self._reject_all(rows, range(len(frame)), RejectReason.NO_REFERENCE.value, outputs)
                return
            start = min(len(frame), settings.bootstrap_events - monitor.bootstrap_rows)
            monitor.bootstrap.append(frame.iloc[:start])
            outputs.events[(*key, "bootstrap")] += start
            if monitor.bootstrap_rows < settings.bootstrap_events:
                return
            latest = self._bootstrap_reference(monitor, outputs)
        assembler = monitor.assembler
        if assembler is None:
            assert latest is not None
            assembler = monitor.start_windows(latest[0], self.catalog)
        elif latest is not None:
            # A new reference applies to panes opened from now on.
            assembler.profile_id = latest[0]
        if start >= len(frame):
            return
        wrong = self._non_numeric(assembler, frame, start)
        if wrong:
            # Dead-lettered before the windows see them (the panes would refuse
            # the whole batch); the other rows go on as if these never came.
            self._reject_all(rows, sorted(wrong), RejectReason.SCHEMA.value, outputs, wrong)
            keep = [position for position in range(len(frame)) if position not in wrong]
            rows = rows.subset(keep)
            frame = frame.iloc[keep].reset_index(drop=True)
            timestamps = timestamps[keep]
            if start >= len(frame):
                return
        outcome = assembler.update(frame.iloc[start:].reset_index(drop=True), timestamps[start:])
        late = set((outcome.late_rows + start).tolist())
        if late:
            self._reject_all(rows, sorted(late), LATE, outputs)
        processed = len(frame) - start - len(late)
        outputs.events[(*key, "processed")] += processed
        outputs.skipped_windows += outcome.skipped_windows
        # Predictions enter the label join in arrival order, between the
        # evaluations of the windows they close: what a prediction brings
        # (its waiting label joined, older predictions leaving unlabelled)
        # counts in the window open when it arrived, the one it closes
        # included, however the predictions were batched.
        row = start
        for rows_added, window in zip(outcome.closed_after_rows, outcome.closed, strict=True):
            self._join_predictions(monitor, rows, range(row, start + rows_added), late, outputs)
            row = start + rows_added
            started = time.perf_counter()
            result = self._evaluate(monitor, window)
            outputs.evaluation_seconds.append(time.perf_counter() - started)
            outputs.windows[monitor.model, monitor.model_version, window.window_id] = window
            if result is None:
                outputs.skipped_windows += 1
            else:
                outputs.results.append(result)
        self._join_predictions(monitor, rows, range(row, len(frame)), late, outputs)

    def _non_numeric(
        self, assembler: WindowAssembler, frame: pd.DataFrame, start: int
    ) -> dict[int, str]:
        """Rows (from ``start``) whose value of a numeric reference feature is not a number.

        Checked: the features numeric in the profile new panes open on, or in
        the profile of an open pane. Returns position -> error.
        """
        idents = {assembler.profile_id} | {pane.profile_id for pane in assembler.panes.values()}
        numeric = {
            name
            for ident in idents
            if (profile := self.catalog.get(ident)) is not None
            for name, feature in profile.features.items()
            if feature.kind is FeatureKind.NUMERIC
        }
        wrong: dict[int, str] = {}
        for name in sorted(numeric & set(frame.columns)):
            column = frame[name].iloc[start:]
            if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(
                column.dtype
            ):
                continue
            bad = pd.to_numeric(column, errors="coerce").isna() & column.notna()
            positions = np.flatnonzero(bad.to_numpy()) + start
            for position, value in zip(positions, column[bad], strict=True):
                wrong.setdefault(
                    int(position),
                    f"features.{name}: the reference profiles {name!r} as numeric, "
                    f"so a value must be a number, boolean or null, not {value!r}"[:1000],
                )
        return wrong

    def _join_predictions(
        self,
        monitor: VersionMonitor,
        rows: Rows,
        positions: range,
        late: set[int],
        outputs: Outputs,
    ) -> None:
        """Hand on-time predictions to the model's label join; settle what it hands back."""
        join = self.join(monitor.model)
        for row in positions:
            if row in late:
                continue
            pending = PendingPrediction(
                monitor.model,
                monitor.model_version,
                rows.timestamps_ms[row],
                rows.predictions[row],
            )
            self._settle(monitor.model, join.add(rows.event_ids[row], pending), outputs)

    def _settle(self, model: str, settled: JoinOutcome, outputs: Outputs) -> None:
        """Count joins and unlabelled predictions; dead-letter labels that left unjoined."""
        for pending, label in settled.joined:
            delay = (label.timestamp_ms - pending.timestamp_ms) / 1000
            monitor = self.version(pending.model, pending.model_version)
            try:
                monitor.performance.add_joined(pending.prediction, label.label, delay)
            except ValueError as error:  # e.g. a text label of a regression model
                monitor.performance.add_unlabeled()
                source = MessageSource(
                    topic=label.topic, partition=label.partition, offset=label.offset
                )
                outputs.dead_letters.append(
                    DeadLetter.for_message(
                        label.raw,
                        source,
                        MISMATCHED_LABEL,
                        f"label of prediction {label.event_id!r} cannot be scored: {error}",
                        model=pending.model,
                        model_version=pending.model_version,
                    )
                )
                outputs.labels[pending.model, pending.model_version, MISMATCHED_LABEL] += 1
                continue
            outputs.labels[pending.model, pending.model_version, "joined"] += 1
        for gone in settled.unlabeled:
            self.version(gone.model, gone.model_version).performance.add_unlabeled()
        if not (settled.expired_labels or settled.evicted_labels):
            return
        join = self.joins[model]
        for label in settled.expired_labels:
            self._unmatched(
                model,
                label,
                f"no prediction {label.event_id!r} of model {model!r} arrived within the "
                f"label join TTL ({join.ttl_ms / 1000:g} s) of the label's event time "
                "(never sent, rejected or late, already labelled, or it left the join "
                "before its label came)",
                outputs,
            )
        for label in settled.evicted_labels:
            self._unmatched(
                model,
                label,
                f"more than {join.max_pending} labels of model {model!r} were waiting for "
                "their predictions in this partition; the oldest left unmatched "
                "(raise worker.max_pending_labels if the label topic runs far ahead)",
                outputs,
            )

    def _unmatched(self, model: str, label: ArrivedLabel, error: str, outputs: Outputs) -> None:
        """Dead-letter a label that will not join, as the message it came in."""
        source = MessageSource(topic=label.topic, partition=label.partition, offset=label.offset)
        outputs.dead_letters.append(
            DeadLetter.for_message(label.raw, source, UNMATCHED_LABEL, error, model=model)
        )
        outputs.labels[model, "", UNMATCHED_LABEL] += 1

    def _bootstrap_reference(
        self, monitor: VersionMonitor, outputs: Outputs
    ) -> tuple[str, ReferenceProfile]:
        frame = pd.concat(monitor.bootstrap, ignore_index=True)
        monitor.bootstrap = []
        profile = ReferenceProfile.from_frame(
            frame,
            model=monitor.model,
            model_version=monitor.model_version,
            built_at=f"bootstrap from the first {len(frame)} events",
            prediction_column=monitor.settings.prediction_column,
        )
        ident, _ = self.catalog.put(profile)
        outputs.references.append(profile)
        return ident, profile

    def _reject_all(
        self,
        rows: Rows,
        positions: Sequence[int],
        reason: str,
        outputs: Outputs,
        errors: Mapping[int, str] | None = None,
    ) -> None:
        """Dead-letter rows: a single-event message whole, batch rows one by one.

        A rejected row of a batch carries that row as a prediction event
        document (and its position), so it can be replayed on its own.
        ``errors`` gives a row's own error (else the reason's text).
        """
        for position in positions:
            message = rows.messages[position]
            row = rows.rows_in_message[position]
            raw = message.value or b""
            if row is not None:
                raw = orjson.dumps(rows.event_document(position))
            outputs.dead_letters.append(
                DeadLetter.for_message(
                    raw,
                    message.source,
                    reason,
                    errors[position]
                    if errors and position in errors
                    else REJECT_TEXT[reason].format(model=rows.model, version=rows.model_version),
                    row=row,
                    model=rows.model,
                    model_version=rows.model_version,
                )
            )
        outputs.events[(rows.model, rows.model_version, reason)] += len(positions)

    def _evaluate(self, monitor: VersionMonitor, window: ClosedWindow) -> WindowResult | None:
        profile = self.catalog.get(window.profile_id)
        if profile is None:
            return None
        settings = monitor.settings
        comparator = monitor.comparator(window.profile_id, profile)
        names = [
            name for name in (settings.features or profile.features) if name in profile.features
        ]
        comparison = comparator.compare(window.state, names, output=settings.prediction_column)
        performance = monitor.performance.result()
        monitor.performance = PerformanceWindow(settings.task)
        if performance is not None and profile.performance:
            performance["reference"] = dict(profile.performance)
            performance["change"] = performance_change(
                performance.get("metrics") or {}, profile.performance
            )
        return WindowResult(
            model=monitor.model,
            model_version=monitor.model_version,
            window=_bounds(window),
            n_events=window.state.n_rows,
            severity=comparison.severity.value,
            drifted_features=comparison.drifted_features,
            features={name: f.to_dict() for name, f in comparison.features.items()},
            prediction=comparison.prediction.to_dict() if comparison.prediction else None,
            performance=performance,
            reference=ReferenceInfo(
                id=window.profile_id,
                model_version=profile.model_version,
                n_rows=profile.n_rows,
                built_at=profile.built_at,
            ),
            alpha=settings.policy.alpha,
            correction=settings.policy.correction.value,
            min_samples=settings.policy.min_samples,
        )

    def _reject_undecodable(
        self,
        message: InputMessage,
        rejected: RejectedMessageError,
        dead_letters: list[DeadLetter],
        counts: Counter[tuple[str, str, str]],
    ) -> None:
        """Dead-letter a message that did not decode.

        It counts against the model (and version) it claims only when that is
        one the worker knows (configured, with a reference, or seen in a valid
        event here), so malformed traffic cannot create metric series
        without bound.
        """
        model, version = rejected.claimed
        known = set(self.catalog.models()) | set(self.versions)
        if model is None or not (
            model in self.config.models or any(model == name for name, _ in known)
        ):
            model = version = None
        elif (model, version) not in known:
            version = None
        raw = message.value or b""
        reason = rejected.reason.value
        dead_letters.append(
            DeadLetter.for_message(
                raw, message.source, reason, rejected.detail, model=model, model_version=version
            )
        )
        counts[model or "", version or "", reason] += 1

    def on_labels(self, messages: Sequence[InputMessage]) -> Outputs:
        """Join label messages to pending predictions of this partition.

        A label whose prediction has not come yet waits in the label join
        (see :class:`~monitor.labels.LabelJoin`); it is dead-lettered as
        ``unmatched_label`` only once its prediction can no longer come, by
        this call or by a later :meth:`on_predictions`.
        """
        outputs = Outputs()
        for message in self._fresh(messages, outputs):
            try:
                label = decode_label(message.value or b"", self.limits)
            except RejectedMessageError as rejected:
                self._reject_undecodable(message, rejected, outputs.dead_letters, outputs.labels)
                continue
            arrived = ArrivedLabel(
                label.event_id,
                epoch_ms(label.timestamp),
                label.label,
                message.topic,
                message.partition,
                message.offset,
                message.value or b"",
            )
            self._settle(label.model, self.join(label.model).add_label(arrived), outputs)
        return outputs

    def pending_events(self) -> int:
        """Events in windows that have not closed yet, over all versions."""
        return sum(
            m.assembler.pending_events() if m.assembler else m.bootstrap_rows
            for m in self.versions.values()
        )

    def snapshot(self) -> bytes:
        """Bytes of the whole state, including the input offsets it covers."""
        blobs: list[bytes] = []
        versions = []
        for (model, model_version), monitor in self.versions.items():
            entry: dict[str, Any] = {
                "model": model,
                "model_version": model_version,
                "performance": monitor.performance.state(),
                "bootstrap": pd.concat(monitor.bootstrap, ignore_index=True).to_dict("list")
                if monitor.bootstrap
                else None,
            }
            if monitor.assembler is not None:
                header, pane_blobs = monitor.assembler.state()
                entry["windows"] = header
                blobs.extend(pane_blobs)
            versions.append(entry)
        header_document = {
            "partition": self.partition,
            "offsets": self.offsets,
            "versions": versions,
            "joins": {model: join.state() for model, join in self.joins.items()},
            "alerts": self.alerts.state(),
            "blob_sizes": [len(blob) for blob in blobs],
        }
        # frame() encodes with json, not orjson: generator states hold 128-bit integers.
        return frame(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, header_document, b"".join(blobs))

    @classmethod
    def restore(
        cls,
        data: bytes,
        config: DriftstreamConfig,
        catalog: ReferenceCatalog,
        max_pending_labels: int = DEFAULT_MAX_PENDING_LABELS,
    ) -> PartitionState:
        """A state from :meth:`snapshot` bytes."""
        header, body = unframe(data, SNAPSHOT_MAGIC, SNAPSHOT_VERSION, "partition snapshot")
        state = cls(header["partition"], config, catalog, max_pending_labels)
        state.offsets = dict(header["offsets"])
        blobs = _split_blobs(body, header["blob_sizes"])
        for entry in header["versions"]:
            monitor = state.version(entry["model"], entry["model_version"])
            monitor.performance = PerformanceWindow.restore(entry["performance"])
            if entry["bootstrap"] is not None:
                monitor.bootstrap = [pd.DataFrame(entry["bootstrap"])]
            windows = entry.get("windows")
            if windows is not None:
                monitor.start_windows(windows["profile_id"], catalog).restore(windows, blobs)
        state.joins = {
            model: LabelJoin.restore(join_state) for model, join_state in header["joins"].items()
        }
        state.alerts.restore(header["alerts"])
        return state


def _split_blobs(data: bytes, sizes: Sequence[int]) -> Iterator[bytes]:
    offset = 0
    for size in sizes:
        yield data[offset : offset + size]
        offset += size


def _bounds(window: ClosedWindow) -> WindowBounds:
    def moment(ms: int | None) -> datetime | None:
        return None if ms is None else EPOCH + timedelta(milliseconds=ms)

    common: Mapping[str, Any] = {
        "kind": window.kind,
        "id": window.window_id,
        "first_event_time": moment(window.first_ms),
        "last_event_time": moment(window.last_ms),
    }
    if window.kind == "count":
        return WindowBounds(**common, start_event=window.start, end_event=window.end)
    return WindowBounds(**common, start=moment(window.start), end=moment(window.end))


def _milliseconds(duration: timedelta) -> int:
    return duration // timedelta(milliseconds=1)
