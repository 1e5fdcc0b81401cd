"""PredictionProducer: how a Python serving service sends events to driftstream.

Validates every event against the contract before it leaves the process,
keys messages by model (so one model's events stay in order on one
partition), batches, and flushes on exit.
"""

from __future__ import annotations

import atexit
import math
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson
from kafka import KafkaProducer

from schemas.events import Event, LabelEvent, PredictionBatch, PredictionEvent

DEFAULT_PREDICTION_TOPIC = "driftstream.predictions"
DEFAULT_LABEL_TOPIC = "driftstream.labels"


def clean_features(features: Mapping[str, Any]) -> dict[str, Any]:
    """Features ready for JSON: NaN becomes ``None``, infinities are refused.

    numpy scalars are turned into plain Python values first.

    Examples
    --------
    >>> clean_features({"a": float("nan"), "b": 2})
    {'a': None, 'b': 2}
    >>> clean_features({"a": float("inf")})
    Traceback (most recent call last):
    ...
    ValueError: feature 'a' is infinite; JSON cannot carry it (send None if it is missing)
    """
    cleaned: dict[str, Any] = {}
    for name, value in features.items():
        plain = value.item() if hasattr(value, "item") else value
        if isinstance(plain, float) and math.isnan(plain):
            plain = None
        elif isinstance(plain, float) and math.isinf(plain):
            raise ValueError(
                f"feature {name!r} is infinite; JSON cannot carry it (send None if it is missing)"
            )
        cleaned[name] = plain
    return cleaned


class PredictionProducer:
    """Send predictions and labels to driftstream's topics.

    Parameters
    ----------
    bootstrap_servers
        Kafka ``host:port`` list.
    prediction_topic, label_topic
        Topic names (driftstream's defaults).
    batch_size
        1 sends one message per prediction. Above 1, predictions of each
        model version are gathered into columnar ``prediction_batch``
        messages of up to ``batch_size`` rows, sent when full, every
        ``max_batch_delay`` seconds, on :meth:`flush` and on exit.
    max_batch_delay
        Longest a prediction waits in a partial batch, in seconds.
    **kafka_options
        Passed to ``kafka.KafkaProducer`` (security settings, ``linger_ms``...).

    Examples
    --------
    >>> from monitor.broker import EmbeddedBroker
    >>> with EmbeddedBroker() as broker, PredictionProducer(broker.bootstrap_servers) as producer:
    ...     event_id = producer.predict("churn", "7", {"age": 41, "plan": "pro"}, 0.83)
    ...     producer.label(event_id, "churn", 1)
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        prediction_topic: str = DEFAULT_PREDICTION_TOPIC,
        label_topic: str = DEFAULT_LABEL_TOPIC,
        batch_size: int = 1,
        max_batch_delay: float = 1.0,
        **kafka_options: Any,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.prediction_topic = prediction_topic
        self.label_topic = label_topic
        self.batch_size = batch_size
        self._kafka = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            linger_ms=kafka_options.pop("linger_ms", 20),
            **kafka_options,
        )
        # Keyed by everything a batch shares: model, version and tags.
        self._pending: dict[
            tuple[str, str, tuple[tuple[str, str], ...]], list[PredictionEvent]
        ] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._flusher: threading.Thread | None = None
        if batch_size > 1:
            self._flusher = threading.Thread(
                target=self._flush_periodically, args=(max_batch_delay,), daemon=True
            )
            self._flusher.start()
        atexit.register(self.close)

    def predict(
        self,
        model: str,
        model_version: str,
        features: Mapping[str, Any],
        prediction: Any,
        *,
        event_id: str | None = None,
        timestamp: datetime | None = None,
        segment: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Validate and send (or batch) one prediction; returns its event id.

        Raises ``pydantic.ValidationError`` (a ``ValueError``) for an event
        that breaks the contract, before anything is sent.
        """
        event = PredictionEvent(
            event_id=event_id or uuid.uuid4().hex,
            model=model,
            model_version=model_version,
            timestamp=timestamp or datetime.now(UTC),
            features=clean_features(features),
            prediction=prediction,
            segment=segment,
            tags=dict(tags or {}),
        )
        if self.batch_size == 1:
            self._send(self.prediction_topic, event.model, event)
            return event.event_id
        key = (model, model_version, tuple(sorted(event.tags.items())))
        with self._lock:
            pending = self._pending.setdefault(key, [])
            pending.append(event)
            if len(pending) >= self.batch_size:
                self._send_batch(self._pending.pop(key))
        return event.event_id

    def label(
        self, event_id: str, model: str, label: Any, *, timestamp: datetime | None = None
    ) -> None:
        """Validate and send the ground truth of an earlier prediction."""
        event = LabelEvent(
            event_id=event_id, model=model, label=label, timestamp=timestamp or datetime.now(UTC)
        )
        self._send(self.label_topic, model, event)

    def flush(self, timeout: float | None = None) -> None:
        """Send partial batches and wait until every message is delivered."""
        self._send_pending()
        self._kafka.flush(timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Flush, stop the batch timer and close the connection (idempotent)."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._flusher is not None:
            self._flusher.join()
        self.flush(timeout)
        self._kafka.close(timeout)
        atexit.unregister(self.close)

    def _send(self, topic: str, key: str, event: Event) -> None:
        self._kafka.send(topic, key=key.encode(), value=orjson.dumps(event.model_dump(mode="json")))

    def _send_batch(self, events: list[PredictionEvent]) -> None:
        first = events[0]
        names = sorted({name for event in events for name in event.features})
        segments = [event.segment for event in events]
        batch = PredictionBatch(
            type="prediction_batch",
            model=first.model,
            model_version=first.model_version,
            event_ids=[event.event_id for event in events],
            timestamps=[event.timestamp for event in events],
            features={name: [event.features.get(name) for event in events] for name in names},
            predictions=[event.prediction for event in events],
            segments=segments if any(s is not None for s in segments) else None,
            tags=first.tags,
        )
        self._send(self.prediction_topic, first.model, batch)

    def _send_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            for events in pending.values():
                self._send_batch(events)

    def _flush_periodically(self, interval: float) -> None:
        while not self._closed.wait(interval):
            self._send_pending()

    def __enter__(self) -> PredictionProducer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
