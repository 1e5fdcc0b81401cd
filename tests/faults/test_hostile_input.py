"""Drill: 10,000 hostile messages mixed into good traffic on both input topics.

Random bytes, truncated JSON, 10,000-deep nesting, numbers that overflow a
double (``1e400``, 5,000-digit integers, epoch timestamps of ``1e300``),
1 MB strings, lone surrogates, NUL and right-to-left marks, a wrong type in
every field, batches with columns of unequal length, a non-number in a
numeric feature (of a single event and of one batch row), labels of event
ids never predicted and of predictions long gone, and messages above
``limits.max_message_bytes``, all between the churn simulator's predictions
and labels. Afterwards the worker is still up and every message is
accounted for exactly: predictions produced = processed + dead-lettered
(batch rows counted one by one), labels produced = joined + dead-lettered
(no label is left waiting: later predictions push the label join past its
TTL), and every dead letter has a documented reason and an error.

A fast pure test beside it feeds hypothesis-generated JSON to the decoders:
they only ever raise :class:`~schemas.decoding.RejectedMessageError`.
"""

from __future__ import annotations

import json
import random
import string
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from monitor.catalog import ReferenceCatalog
from monitor.config import DriftstreamConfig
from monitor.partition import InputMessage, PartitionState
from monitor.publishing import publish_reference
from monitor.simulation import CHURN, ServingSimulator, to_batch
from schemas.decoding import (
    EventLimits,
    RejectedMessageError,
    decode_label,
    decode_prediction,
)
from schemas.events import PredictionBatch
from tests.conftest import read_all
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
WINDOW = 500
TTL_MS = 3_600_000  # the default label_join_ttl
MAX_BYTES = 2 * 1024 * 1024  # limits.max_message_bytes of the drill
BAD_PREDICTIONS = 5_000
BAD_LABELS = 4_700
EXPIRED_LABELS = 300  # hostile too: sent once their predictions left the join
REASONS = {
    "too_large",
    "invalid_json",
    "schema",
    "no_reference",
    "late",
    "unmatched_label",
    "mismatched_label",
}
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
WRONG_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2.5,
    "",
    "x",
    [],
    [1, 2],
    {},
    {"a": 1},
    [[[[]]]],
    2**64 - 1,
]
ODD_STRINGS = [
    "\\ud800",  # a lone high surrogate (escaped: it is not valid in UTF-8)
    "\\udfff",
    "a\\u0000b",
    "\\u202e\\u200fchurn",  # right-to-left marks: valid, an unknown model
    "\\u0007bell",
    "\\ufeff",
    "\\u0000",
]


def dumps(document: Any) -> bytes:
    return orjson.dumps(document)


class Hostile:
    """Bad messages from a seeded ``random.Random``, each tagged with its category."""

    def __init__(self, seed: int, good: list[dict[str, Any]], labels: list[dict[str, Any]]):
        self.rng = random.Random(seed)
        self.good = good
        self.labels = labels
        self.fresh = 0

    def _good(self) -> dict[str, Any]:
        return dict(self.rng.choice(self.good))

    def _label(self) -> dict[str, Any]:
        return dict(self.rng.choice(self.labels))

    # -- shared by both topics ------------------------------------------

    def random_bytes(self, _: dict[str, Any]) -> bytes:
        return self.rng.randbytes(self.rng.randrange(0, 300))

    def truncated(self, document: dict[str, Any]) -> bytes:
        raw = dumps(document)
        return raw[: self.rng.randrange(0, len(raw) - 1)]

    def deep(self, document: dict[str, Any]) -> bytes:
        depth = self.rng.choice([1_025, 10_000, 100_000])
        if self.rng.random() < 0.5:
            return b"[" * depth + b"]" * depth
        # inside a field, unterminated half the time
        field = self.rng.choice(sorted(document))
        closing = b"]" * depth if self.rng.random() < 0.5 else b""
        head = dumps({**document, field: None})[:-1]
        return head + b',"' + field.encode() + b'":' + b"[" * depth + closing + b"}"

    def huge_number(self, document: dict[str, Any]) -> bytes:
        field = self.rng.choice([*sorted(document), "features"])
        number = self.rng.choice(
            [b"1e400", b"-1e400", b"9" * 5_000, b"-" + b"1" * 400, b"1e300", b"NaN", b"Infinity"]
        )
        if field == "features" and "features" in document:
            name = self.rng.choice(sorted(document["features"]))
            raw = dumps({**document, "features": {**document["features"], name: 0}})
            return raw.replace(f'"{name}":0'.encode(), f'"{name}":'.encode() + number, 1)
        raw = dumps({**document, field: 0})
        return raw.replace(f'"{field}":0'.encode(), f'"{field}":'.encode() + number, 1)

    def huge_timestamp(self, document: dict[str, Any]) -> bytes:
        moment = self.rng.choice(
            [
                1e300,
                -1e300,
                2**63 - 1,
                -(2**63),
                1e16,
                "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
                "0001-01-01T00:00:00+14:00",  # year 0 in UTC
                "2026-11-23T10:00:00",  # no offset
            ]
        )
        return dumps({**document, "timestamp": moment})

    def huge_string(self, document: dict[str, Any]) -> bytes:
        field = self.rng.choice(["event_id", "model", "features", "padding"])
        text = "x" * (1024 * 1024)
        if field == "features" and "features" in document:
            return dumps({**document, "features": {text: 1}})
        return dumps({**document, field: text})

    def odd_unicode(self, document: dict[str, Any]) -> bytes:
        odd = self.rng.choice(ODD_STRINGS)
        fields = ["event_id", "model", "model_version", "features", "label"]
        if "label" in document:  # a label of an unknown model would wait for ever
            fields.remove("model")
        field = self.rng.choice(fields)
        if field == "features" and "features" in document:
            raw = dumps({**document, "features": {"ODD": 1}})
        elif field in document:
            raw = dumps({**document, field: "ODD"})
        else:
            raw = dumps({**document, "event_id": "ODD"})
        raw = raw.replace(b"ODD", odd.encode(), 1)
        if self.rng.random() < 0.2:  # not UTF-8 at all
            raw = raw.replace(b"\\", b"\xff\xfe", 1)
        return raw

    def wrong_type(self, document: dict[str, Any]) -> bytes:
        field = self.rng.choice(sorted(document))
        value = self.rng.choice(WRONG_VALUES)
        if field == "type":
            value = self.rng.choice(["prediction_batch", "label", "prediction", 7, None])
        if field == "model" and "label" in document and isinstance(value, str):
            value = 7  # a label of another (valid) model name would wait for ever
        return dumps({**document, field: value})

    def not_an_object(self, _: dict[str, Any]) -> bytes:
        return self.rng.choice([b"[]", b"null", b"1", b'"churn"', b"true", b"", b" ", b"[{}]"])

    def oversized(self, document: dict[str, Any]) -> bytes:
        return dumps({**document, "padding": "y" * (MAX_BYTES + self.rng.randrange(1, 1000))})

    # -- predictions only -----------------------------------------------

    def wrong_feature_type(self, document: dict[str, Any]) -> bytes:
        features = dict(document["features"])
        name = self.rng.choice(sorted(features))
        value = self.rng.choice([[1], {"a": 1}, [], {}, [None]])
        features[name] = value
        return dumps({**document, "features": features})

    def _fresh(self) -> dict[str, Any]:
        """A good prediction under an event id of its own."""
        self.fresh += 1
        return {**self._good(), "event_id": f"hostile-{self.fresh}"}

    def not_a_number(self, document: dict[str, Any]) -> bytes:
        """A string in a numeric feature of the churn reference (one row of a batch, or alone)."""
        numeric = ["tenure_months", "monthly_spend", "data_usage_gb"]
        text = self.rng.choice(["x", "", "\u202e", "1,5", "ten", "\x00"])
        if self.rng.random() < 0.5:
            name = self.rng.choice(numeric)
            return dumps({**document, "features": {**document["features"], name: text}})
        rows = [self._fresh() for _ in range(self.rng.randrange(2, 6))]
        bad = self.rng.randrange(len(rows))
        name = self.rng.choice(numeric)
        rows[bad] = {**rows[bad], "features": {**rows[bad]["features"], name: text}}
        return dumps(to_batch(rows))

    def unequal_batch(self, _: dict[str, Any]) -> bytes:
        rows = [self._fresh() for _ in range(self.rng.randrange(2, 8))]
        batch = to_batch(rows)
        column = self.rng.choice(["event_ids", "timestamps", "predictions", "features"])
        if column == "features":
            name = self.rng.choice(sorted(batch["features"]))
            batch["features"][name] = batch["features"][name][:-1]
        elif column == "event_ids":
            batch[column] = [*batch[column], "one-more"]
        else:
            batch[column] = batch[column][1:]
        if self.rng.random() < 0.3:
            batch["segments"] = ["s"] * (len(rows) + 1)
        return dumps(batch)

    def unknown_version(self, _: dict[str, Any]) -> bytes:
        """Valid, but of a version without a reference (no_reference, per row in batches)."""
        version = self.rng.choice(["0", "999", "\u202e3"])
        if self.rng.random() < 0.5:
            return dumps({**self._good(), "model_version": version})
        rows = [
            {**self._fresh(), "model_version": version} for _ in range(self.rng.randrange(1, 6))
        ]
        return dumps(to_batch(rows))

    # -- labels only ----------------------------------------------------

    def never_predicted(self, label: dict[str, Any]) -> bytes:
        return dumps({**label, "event_id": f"never-{self.rng.randrange(10**9)}"})

    def expired(self, label: dict[str, Any]) -> bytes:
        """The label of a prediction that has left the join (sent after the flush)."""
        return dumps(label)

    def predictions(self, n: int) -> list[tuple[str, bytes]]:
        makers = [
            self.random_bytes,
            self.truncated,
            self.deep,
            self.huge_number,
            self.huge_timestamp,
            self.odd_unicode,
            self.wrong_type,
            self.not_an_object,
            self.wrong_feature_type,
            self.not_a_number,
            self.unequal_batch,
            self.unknown_version,
        ]
        out = []
        for position in range(n):
            maker: Callable[[dict[str, Any]], bytes]
            if position % 1000 == 0:  # a few large ones: they cost time, not coverage
                maker = self.huge_string
            elif position % 1000 == 500:
                maker = self.oversized
            else:
                maker = self.rng.choice(makers)
            document = self._good()
            if maker is self.unequal_batch and self.rng.random() < 0.5:
                document = to_batch([document])
            out.append((maker.__name__, maker(document)))
        return out

    def labels_(self, n: int) -> list[tuple[str, bytes]]:
        makers = [
            self.random_bytes,
            self.truncated,
            self.deep,
            self.huge_number,
            self.huge_timestamp,
            self.odd_unicode,
            self.wrong_type,
            self.not_an_object,
            self.never_predicted,
        ]
        out = []
        for position in range(n):
            maker: Callable[[dict[str, Any]], bytes]
            if position % 1000 == 0:
                maker = self.huge_string
            elif position % 1000 == 500:
                maker = self.oversized
            else:
                maker = self.rng.choice(makers)
            out.append((maker.__name__, maker(self._label())))
        return out


def mix(rng: random.Random, good: list[bytes], bad: list[bytes]) -> list[bytes]:
    """Both lists interleaved at random, each in its own order."""
    slots = [True] * len(good) + [False] * len(bad)
    rng.shuffle(slots)
    goods, bads = iter(good), iter(bad)
    return [next(goods) if slot else next(bads) for slot in slots]


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Values as they are, keyed like the simulator's (one partition anyway)."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_request_size=4 * MAX_BYTES
    )
    try:
        for value in values:
            producer.send(topic, key=CHURN.name.encode(), value=value)
        producer.flush(60)
    finally:
        producer.close()


def counters(worker: WorkerProcess) -> dict[str, Counter[str]]:
    """driftstream_events_total and driftstream_labels_total by outcome, all models."""
    with DIRECT.open(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found: dict[str, Counter[str]] = {"events": Counter(), "labels": Counter()}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for name in found:
                if sample.name == f"driftstream_{name}_total":
                    found[name][sample.labels["outcome"]] += int(sample.value)
    return found


def units(raw: bytes, limits: EventLimits) -> int:
    """Prediction events a message holds, as the worker counts them (rows of a batch)."""
    try:
        event = decode_prediction(raw, limits)
    except RejectedMessageError:
        return 1
    return len(event) if isinstance(event, PredictionBatch) else 1


def offline_processed(config: DriftstreamConfig, values: list[bytes]) -> int:
    """Predictions one uninterrupted worker processes from these messages, computed offline."""
    catalog = ReferenceCatalog()
    catalog.put(churn_reference())
    state = PartitionState(0, config, catalog)
    processed = 0
    for start in range(0, len(values), 500):
        messages = [
            InputMessage(config.topics.predictions, 0, offset, value)
            for offset, value in enumerate(values[start : start + 500], start)
        ]
        processed += state.on_predictions(messages).events[CHURN.name, CHURN.version, "processed"]
    return processed


def test_hostile_input_is_dead_lettered_and_every_message_is_accounted_for(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    started = time.monotonic()
    path, config = write_config(
        tmp_path, broker, partitions=1, limits={"max_message_bytes": MAX_BYTES}
    )
    limits = config.limits.event_limits()
    publish_reference(broker, {}, config.topics, churn_reference())
    worker = start_worker(path, workers)
    worker.wait_ready()
    topics = config.topics

    simulator = ServingSimulator([CHURN], seed=5)
    good = simulator.predictions(8 * WINDOW, START_MS, STEP_MS)
    last_ms = START_MS + (len(good) - 1) * STEP_MS
    good_labels = simulator.labels_due(last_ms + 60_000)
    hostile = Hostile(20261203, good, good_labels)
    bad_predictions = hostile.predictions(BAD_PREDICTIONS)
    bad_labels = hostile.labels_(BAD_LABELS)
    # Every hostile label that decodes names the churn model with a time the
    # flush below passes by more than the TTL, so none can wait for ever.
    rejected_labels = 0
    for _, raw in bad_labels:
        try:
            label = decode_label(raw, limits)
        except RejectedMessageError:
            rejected_labels += 1
            continue
        assert label.model == CHURN.name
        assert label.timestamp.timestamp() * 1000 <= last_ms + 60_000

    rng = random.Random(7)
    predictions = mix(rng, [dumps(d) for d in good], [raw for _, raw in bad_predictions])
    labels = mix(rng, [dumps(d) for d in good_labels], [raw for _, raw in bad_labels])
    first_units = sum(units(raw, limits) for raw in predictions)
    produce(broker, topics.predictions, predictions)
    produce(broker, topics.labels, labels)

    def read_to_the_end(events: int, labels_at_least: int) -> bool:
        seen = counters(worker)
        return (
            sum(seen["events"].values()) == events
            and sum(seen["labels"].values()) >= labels_at_least
            and worker_lag(worker) == 0
        )

    wait_for(
        lambda: read_to_the_end(first_units, rejected_labels),
        90,
        "the worker to read both topics to their ends",
    )
    # The flush: a window of predictions more than the TTL later decides every
    # waiting label (joined or unmatched) and ends every prediction's wait; then
    # labels of predictions that have left the join ("expired").
    flush = simulator.predictions(WINDOW, last_ms + TTL_MS + 3_600_000, STEP_MS)
    produce(broker, topics.predictions, [dumps(d) for d in flush])
    produced_predictions = first_units + len(flush)
    wait_for(lambda: read_to_the_end(produced_predictions, 0), 60, "the flush to be read")
    expired = [
        ("expired", hostile.expired(label))
        for label in hostile.rng.sample(good_labels, EXPIRED_LABELS)
    ]
    produce(broker, topics.labels, [raw for _, raw in expired])
    bad_labels += expired
    produced_labels = len(labels) + len(expired)

    def settled() -> dict[str, Counter[str]] | None:
        seen = counters(worker)
        events, joined = sum(seen["events"].values()), sum(seen["labels"].values())
        return seen if (events, joined) == (produced_predictions, produced_labels) else None

    seen = wait_for(settled, 60, "every prediction and label to be counted")

    letters = [orjson.loads(r.value) for r in read_all(broker, topics.deadletter, timeout=60)]
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for letter in letters:
        source = letter["source"]
        key = (source["topic"], source["partition"], source["offset"], letter.get("row"))
        assert by_key.setdefault(key, letter) == letter, f"two dead letters differ at {key}"
        assert letter["reason"] in REASONS, letter["reason"]
        assert letter["error"], letter
    reasons = {
        topic: Counter(v["reason"] for k, v in by_key.items() if k[0] == topic)
        for topic in (topics.predictions, topics.labels)
    }
    dead_predictions = sum(reasons[topics.predictions].values())
    dead_labels = sum(reasons[topics.labels].values())
    rows = sum(1 for k in by_key if k[0] == topics.predictions and k[3] is not None)
    processed = seen["events"]["processed"]
    joined = seen["labels"]["joined"]

    # the worker is up and still closes windows
    assert worker.process is not None
    assert worker.process.poll() is None
    assert worker.get("/health") == (200, {"status": "alive"})
    results = latest_results(broker, topics.results, (processed // WINDOW))
    windowed = sum(r["n_events"] for r in results.values())
    view = worker.get("/models")[1][CHURN.name][CHURN.version]["events"]
    expected = offline_processed(config, predictions + [dumps(d) for d in flush])

    print(
        f"\npredictions: produced {len(predictions) + len(flush)} messages "
        f"({len(bad_predictions)} hostile) = {produced_predictions} events; "
        f"processed {processed} (offline {expected}), dead-lettered {dead_predictions} "
        f"({rows} of them batch rows) {dict(sorted(reasons[topics.predictions].items()))}; "
        f"{len(results)} windows hold {windowed} events"
    )
    print(
        f"labels: produced {produced_labels} ({len(bad_labels)} hostile); joined {joined}, "
        f"dead-lettered {dead_labels} {dict(sorted(reasons[topics.labels].items()))}"
    )
    print(
        "hostile predictions by kind: "
        f"{dict(sorted(Counter(c for c, _ in bad_predictions).items()))}; labels: "
        f"{dict(sorted(Counter(c for c, _ in bad_labels).items()))}; "
        f"{time.monotonic() - started:.1f} s"
    )

    assert processed + dead_predictions == produced_predictions
    assert joined + dead_labels == produced_labels
    # the metrics and the dead-letter topic agree outcome by outcome
    outcomes = Counter({k: v for k, v in seen["events"].items() if k != "processed"})
    assert +outcomes == +reasons[topics.predictions]
    outcomes = Counter({k: v for k, v in seen["labels"].items() if k != "joined"})
    assert +outcomes == +reasons[topics.labels]
    assert processed == expected
    assert view["processed"] == processed  # only churn's version has a reference
    assert processed - WINDOW < windowed <= processed
    assert reasons[topics.predictions]["too_large"] == BAD_PREDICTIONS // 1000
    assert reasons[topics.labels]["too_large"] == BAD_LABELS // 1000 + 1
    assert reasons[topics.labels]["unmatched_label"] >= EXPIRED_LABELS
    assert rows > 0
    assert all(r["reference"]["id"] for r in results.values())


def worker_lag(worker: WorkerProcess) -> int | None:
    """Total consumer lag over the input partitions (None until reported)."""
    with DIRECT.open(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    lags = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "driftstream_consumer_lag_messages"
    ]
    return int(sum(lags)) if lags else None


# -- the decoders alone, on generated JSON ---------------------------------

EDGES = st.sampled_from(
    [
        1e300,
        -1e300,
        1.7e308,
        5e-324,
        2**63,
        -(2**63) - 1,
        2**64 - 1,
        10**30,
        0,
        -0.0,
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "2026-11-23T10:00:00",
        "",
        "\u202e",
        "\x00",
        "\ufeff",
        "prediction_batch",
        "label",
        "prediction",
    ]
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | EDGES
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(string.printable + "\u202e\u200f\x00\ud7ff", max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    [
        "type",
        "event_id",
        "model",
        "model_version",
        "timestamp",
        "features",
        "prediction",
        "label",
        "event_ids",
        "timestamps",
        "predictions",
        "segments",
        "segment",
        "tags",
    ]
)
BASES: list[dict[str, Any]] = [
    {},
    {
        "event_id": "e1",
        "model": "m",
        "model_version": "1",
        "timestamp": 1_700_000_000_000,
        "features": {"x": 1.5, "plan": "a"},
        "prediction": {"yes": 0.5, "no": 0.5},
    },
    {
        "type": "prediction_batch",
        "model": "m",
        "model_version": "1",
        "event_ids": ["a", "b"],
        "timestamps": [1_700_000_000_000, "2026-11-23T10:00:00Z"],
        "features": {"x": [1, None]},
        "predictions": [0.1, 0.9],
    },
    {"event_id": "e1", "model": "m", "label": 1, "timestamp": 1_700_000_000_000},
]
# a valid-looking message with some fields replaced, else anything at all
DOCUMENTS = (
    st.builds(
        lambda base, changes: {**base, **changes},
        st.sampled_from(BASES),
        st.dictionaries(FIELDS, JSON, max_size=4),
    )
    | JSON
)


def json_bytes(document: Any) -> bytes:
    """JSON text; integers beyond 64 bits as digits, as a producer in another language might."""
    return json.dumps(document).encode("utf-8", "surrogatepass")


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# found by the drill: an epoch timestamp beyond time_t raised OverflowError
@example(json_bytes({**BASES[1], "timestamp": 1e300}))
@example(json_bytes({**BASES[3], "timestamp": -1e300}))
@given(
    st.one_of(
        st.binary(max_size=200),
        DOCUMENTS.map(json_bytes),
        st.tuples(DOCUMENTS.map(json_bytes), st.integers(min_value=0)).map(
            lambda pair: pair[0][: pair[1] % (len(pair[0]) + 1)]
        ),
    )
)
def test_decoders_only_ever_reject(raw: bytes) -> None:
    limits = EventLimits(max_message_bytes=1024)
    for decode in (decode_prediction, decode_label):
        reason = None
        try:
            decode(raw, limits)
        except RejectedMessageError as rejected:  # anything else fails the test
            reason, detail = rejected.reason.value, rejected.detail
        if reason is not None:
            assert reason in REASONS
            assert detail


def test_a_non_number_in_a_numeric_feature_dead_letters_only_its_row() -> None:
    """Regression: it used to fail the whole batch of messages (and stop the worker's agent)."""
    config = DriftstreamConfig(defaults={"window": {"size_events": WINDOW}})
    catalog = ReferenceCatalog()
    catalog.put(churn_reference())
    state = PartitionState(0, config, catalog)
    documents = ServingSimulator([CHURN], seed=2).predictions(6, START_MS, STEP_MS)
    single = {**documents[0], "features": {**documents[0]["features"], "tenure_months": "ten"}}
    rows = [*documents[1:5]]
    rows[2] = {**rows[2], "features": {**rows[2]["features"], "monthly_spend": ""}}
    values = [dumps(single), dumps(to_batch(rows)), dumps(documents[5])]
    messages = [InputMessage("p", 0, offset, value) for offset, value in enumerate(values)]
    outputs = state.on_predictions(messages)
    letters = [(d.reason, d.source.offset, d.row) for d in outputs.dead_letters]
    assert letters == [("schema", 0, None), ("schema", 1, 2)]
    assert "features.tenure_months" in outputs.dead_letters[0].error
    assert outputs.events[CHURN.name, CHURN.version, "processed"] == 4
    assert outputs.events[CHURN.name, CHURN.version, "schema"] == 2
