"""PredictionProducer against a real broker: validation, keys, batching, flushing."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from schemas.decoding import decode_label, decode_prediction
from schemas.events import PredictionBatch, PredictionEvent
from schemas.producer import PredictionProducer
from tests.conftest import create_topic, read_topic


def test_single_predictions_and_labels_arrive_valid_and_keyed_by_model(broker: str) -> None:
    """Every prediction and label arrives, decodes, and is keyed by its model."""
    predictions, labels = create_topic(broker, 3), create_topic(broker)
    sent: dict[str, str] = {}
    with PredictionProducer(broker, prediction_topic=predictions, label_topic=labels) as producer:
        for i in range(60):
            model = "churn" if i % 2 else "fraud"
            features = {"age": 30 + i, "score": math.nan if i == 7 else i / 10, "plan": "pro"}
            event_id = producer.predict(model, "3", features, {"yes": 0.6, "no": 0.4})
            sent[event_id] = model
            if i % 3 == 0:
                producer.label(event_id, model, i % 2)
    records = read_topic(broker, predictions, 60)
    events = [decode_prediction(record.value) for record in records]
    decoded = [event for event in events if isinstance(event, PredictionEvent)]
    assert len(decoded) == len(records) == 60
    by_id = {event.event_id: event for event in decoded}
    assert set(by_id) == set(sent)
    for record, event in zip(records, decoded, strict=True):
        assert record.key == sent[event.event_id].encode()
    nan_event = next(e for e in by_id.values() if e.features["age"] == 37)
    assert nan_event.features["score"] is None
    label_events = [decode_label(record.value) for record in read_topic(broker, labels, 20)]
    assert {label.event_id for label in label_events} <= set(sent)
    assert len(label_events) == 20


def test_batches_are_columnar_full_then_flushed_on_close(broker: str) -> None:
    """batch_size=64: 150 predictions leave as batches of 64, 64 and 22, in order."""
    topic = create_topic(broker)
    with PredictionProducer(broker, prediction_topic=topic, batch_size=64) as producer:
        ids = [producer.predict("churn", "3", {"x": float(i), "c": "a"}, i % 2) for i in range(150)]
    batches = [decode_prediction(record.value) for record in read_topic(broker, topic, 3)]
    assert all(isinstance(batch, PredictionBatch) for batch in batches)
    assert [len(b) for b in batches if isinstance(b, PredictionBatch)] == [64, 64, 22]
    rows = [event_id for b in batches if isinstance(b, PredictionBatch) for event_id in b.event_ids]
    assert rows == ids
    first = batches[0]
    assert isinstance(first, PredictionBatch)
    assert first.features["x"][:3] == [0.0, 1.0, 2.0]


def test_partial_batch_is_sent_after_the_delay_without_flush(broker: str) -> None:
    """A partial batch leaves on its own after max_batch_delay."""
    topic = create_topic(broker)
    producer = PredictionProducer(
        broker, prediction_topic=topic, batch_size=1000, max_batch_delay=0.2
    )
    try:
        for i in range(5):
            producer.predict("churn", "3", {"x": float(i)}, 0)
        [record] = read_topic(broker, topic, 1, timeout=20)
        batch = decode_prediction(record.value)
        assert isinstance(batch, PredictionBatch)
        assert len(batch) == 5
    finally:
        producer.close()


def test_bad_events_are_refused_before_sending(broker: str) -> None:
    """Infinite features and contract violations raise in the serving process."""
    topic = create_topic(broker)
    with PredictionProducer(broker, prediction_topic=topic) as producer:
        with pytest.raises(ValueError, match="feature 'x' is infinite"):
            producer.predict("churn", "3", {"x": math.inf}, 0)
        with pytest.raises(
            ValidationError, match=r"\nmodel\n +String should have at least 1 character"
        ):
            producer.predict("", "3", {"x": 1.0}, 0)
        with pytest.raises(
            ValidationError, match=r"class probabilities must be numbers in \[0, 1\]: 'yes' is 2\.0"
        ):
            producer.predict("churn", "3", {"x": 1.0}, {"yes": 2.0})
        producer.predict("churn", "3", {"x": 1.0}, 0)
    [record] = read_topic(broker, topic, 1)
    assert decode_prediction(record.value).model == "churn"
