"""The worker: a Faust app whose agents feed :class:`~monitor.partition.PartitionState`.

This module is the I/O shell. It reads prediction and label messages with
Faust agents (keyed by model, so each model's state lives with its
partition and more workers share the partitions), hands them in batches to
the pure per-partition state, publishes what comes out (window results,
dead letters, bootstrapped references), and keeps each partition's state
crash-safe:

1. after processing, messages stay *unacknowledged*;
2. at most every ``worker.snapshot_interval`` (or after
   ``worker.snapshot_max_events`` messages), the partition's state is
   written to the state topic together with the input offsets it covers,
   and only then are the covered messages acknowledged, so the committed
   offset Faust writes never passes a snapshot;
3. when a worker gets a partition, it restores the latest snapshot before
   processing its first message; Faust resumes from the committed offset
   (at or before the snapshot) and the state skips every message the
   snapshot already covers.

So a worker killed at any point loses nothing and counts nothing twice.
We do not seek the consumer to the snapshot's offset ourselves because
Faust seeks to the committed offsets after every rebalance; skipping by
offset gives the same result without racing it. Faust's own windowed
tables are not used: they are unreliable upstream and their changelog
recovery depends on end-offset requests that the embedded broker answers
wrongly (see the README).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
import time
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import faust
from aiohttp import web as aiohttp_web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import RecordTooLargeError
from faust.streams import Stream
from faust.types import TP, EventT, StreamT
from faust.web import Request, Response, View

from alerting.audit import AuditLogSink, DriftLogSink
from alerting.dispatch import Delivery, Dispatcher
from alerting.sink import Sink
from alerting.slack import SlackSink
from alerting.webhooks import WebhookSink
from monitor.catalog import ReferenceCatalog
from monitor.config import DriftstreamConfig, endpoint_token
from monitor.errors import DriftstreamError, ProfileFormatError
from monitor.evidently_report import frame_from_profile, frame_from_window, write_evidently_report
from monitor.metrics import UNAUTHORIZED_BODY, DriftMetrics, bearer_authorized, challenge
from monitor.partition import InputMessage, Outputs, PartitionState
from monitor.reference import ReferenceProfile
from monitor.snapshots import latest_snapshot, snapshot_records
from monitor.topics import REFERENCE_MESSAGE_BYTES
from schemas.alerts import AlertDeadLetter, AlertEvent
from schemas.outputs import parse_reference_key, reference_key

logger = logging.getLogger("driftstream.worker")

#: Window results kept per model version for the web endpoints.
RECENT_RESULTS = 20
#: Largest reference profile a worker reads (what the references topic takes).
MAX_REFERENCE_BYTES = REFERENCE_MESSAGE_BYTES
#: Fetch size of the references consumer: one record above the limit, with its overhead.
REFERENCE_FETCH_BYTES = MAX_REFERENCE_BYTES + 1024 * 1024
#: Longest wait for a partition's snapshot or the references topic to be read.
CATCH_UP_TIMEOUT = 60.0
#: How often time-based alert rules, lag and reference ages are refreshed (seconds).
TICK_SECONDS = 1.0
#: Alert kinds whose firing transitions get an Evidently report.
REPORTED_KINDS = ("feature_drift", "dataset_drift")
#: Web paths answered without ``worker.web_token``: the probes, which tell
#: nothing about models or features.
OPEN_PATHS = frozenset({"/health", "/ready"})


class Pipeline:
    """Kafka in, :class:`PartitionState` in the middle, Kafka out.

    Parameters
    ----------
    config
        The worker's configuration.
    bootstrap_servers
        ``host:port`` of the brokers (the embedded broker's, when started).
    references
        The profiles of ``models.NAME.reference``, already read
        (:meth:`DriftstreamConfig.load_references`, which fails at start-up
        on a bad file).
    """

    def __init__(
        self,
        config: DriftstreamConfig,
        bootstrap_servers: str,
        references: Mapping[str, ReferenceProfile],
    ) -> None:
        self.config = config
        self.bootstrap_servers = bootstrap_servers
        self.client_options = config.broker.client_options()
        self.catalog = ReferenceCatalog()
        for profile in references.values():
            self.catalog.put(profile)
        self.partitions: dict[int, PartitionState] = {}
        self.generations: dict[int, int] = {}
        self.locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.unacked: defaultdict[int, list[EventT[bytes]]] = defaultdict(list)
        self.unsnapshotted_since: dict[int, float] = {}
        self.assigned: set[int] | None = None
        self.references_loaded = asyncio.Event()
        self.started = asyncio.Event()
        self.producer: AIOKafkaProducer | None = None
        self.recent: defaultdict[tuple[str, str], deque[dict[str, Any]]] = defaultdict(
            lambda: deque(maxlen=RECENT_RESULTS)
        )
        self.events: Counter[tuple[str, str, str]] = Counter()
        self.labels: Counter[tuple[str, str, str]] = Counter()
        self.dead_letters: Counter[str] = Counter()
        self.skipped_windows = 0
        self.metrics = DriftMetrics(
            config.metrics.max_features_per_model, config.metrics.version_ttl.total_seconds()
        )
        self.metrics_server: Any = None
        self.metrics_token = endpoint_token("metrics.token", config.metrics.token)
        self.external_sinks = external_sinks(config)
        self.dispatcher: Dispatcher | None = None
        #: Outbox entries handed to the dispatcher, by partition.
        self.submitted: defaultdict[int, set[str]] = defaultdict(set)

    # -- start and stop -------------------------------------------------

    async def start(self) -> None:
        """Start the producer, the sinks and the metrics server."""
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            max_request_size=self.config.limits.max_message_bytes * 2 + 1024 * 1024,
            acks="all",
            **self._aiokafka_options(),
        )
        await self.producer.start()
        sinks: list[Sink] = [AuditLogSink(self._publish_alert), *self.external_sinks]
        if self.config.alerting.drift_log is not None:
            sinks.append(DriftLogSink(self.config.alerting.drift_log))
        self.dispatcher = Dispatcher(sinks, self._delivered, self._publish_alert_dead_letter)
        self.dispatcher.start()
        self.metrics.sinks([sink.name for sink in sinks])
        if self.config.metrics.enabled:
            self.metrics_server = self.metrics.serve(
                self.config.metrics.host, self.config.metrics.port, self.metrics_token
            )
        self.started.set()

    async def stop(self) -> None:
        """Stop the sinks, the metrics server and the producer."""
        if self.dispatcher is not None:
            await self.dispatcher.close()
        if self.metrics_server is not None:
            server, thread = self.metrics_server
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
        if self.producer is not None:
            await self.producer.stop()

    def _aiokafka_options(self) -> dict[str, Any]:
        options = dict(self.client_options)
        cafile = options.pop("ssl_cafile", None)
        if options["security_protocol"] in ("SSL", "SASL_SSL"):
            options["ssl_context"] = ssl.create_default_context(cafile=cafile)
        return options

    @property
    def ready(self) -> bool:
        """References loaded and the worker has an assignment (possibly empty)."""
        return self.references_loaded.is_set() and self.assigned is not None

    # -- references -----------------------------------------------------

    async def follow_references(self) -> None:
        """Read the whole references topic, then keep applying updates."""
        topic = self.config.topics.references
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # a whole profile of the largest size the topic takes, and one more
            # byte (so one too large is read, and rejected, rather than stuck on)
            fetch_max_bytes=REFERENCE_FETCH_BYTES,
            max_partition_fetch_bytes=REFERENCE_FETCH_BYTES,
            **self._aiokafka_options(),
        )
        await consumer.start()
        try:
            partitions = await _partitions_of(consumer, topic)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while True:
                try:
                    batches = await consumer.getmany(timeout_ms=500)
                except RecordTooLargeError as error:  # skipped by the consumer
                    self._reject_reference("too_large", str(error))
                    continue
                for records in batches.values():
                    for record in records:
                        self._apply_reference(record.key, record.value, record.offset)
                if not self.references_loaded.is_set() and await _caught_up(consumer, partitions):
                    logger.info("references loaded: %d model versions", len(self.catalog))
                    self.references_loaded.set()
        finally:
            await consumer.stop()

    def _apply_reference(
        self, key: bytes | None, value: bytes | None, offset: int | None = None
    ) -> None:
        """Apply one record of the references topic; reject (log, count) a bad one.

        A rejected record changes nothing: the version keeps the reference
        it had (from an earlier record or its profile file), if any.
        """
        reason = "invalid_key"
        try:
            if key is None:
                raise ValueError("record without a key")
            model, model_version = parse_reference_key(key)
            if value is None:
                self.catalog.remove(model, model_version)
                return
            if len(value) > MAX_REFERENCE_BYTES:
                reason = "too_large"
                raise ValueError(
                    f"the profile is {len(value)} bytes, the limit is {MAX_REFERENCE_BYTES}"
                )
            reason = "invalid_profile"
            try:
                profile = ReferenceProfile.from_bytes(value)
            except ProfileFormatError as error:
                if "schema version" in str(error):
                    reason = "unsupported_version"
                raise
            if (profile.model, profile.model_version) != (model, model_version):
                reason = "invalid_key"
                raise ValueError(
                    f"key names {model}/{model_version}, the profile "
                    f"{profile.model}/{profile.model_version}"
                )
        except Exception as error:  # a bad record must not stop the worker
            where = "" if offset is None else f" at offset {offset}"
            keeping = ""
            if reason != "invalid_key":
                current = self.catalog.latest(model, model_version)
                keeping = f"; {model}/{model_version} keeps " + (
                    f"reference {current[0]}" if current else "no reference"
                )
            self._reject_reference(reason, f"record{where} {key!r}: {error}{keeping}")
            return
        ident, changed = self.catalog.put(profile, value)
        if changed:
            logger.info("reference %s/%s is now %s", model, model_version, ident)

    def _reject_reference(self, reason: str, detail: str) -> None:
        logger.error("rejected a record on the references topic (%s): %s", reason, detail)
        self.metrics.reference_rejected(reason)

    # -- partition state ------------------------------------------------

    async def _state(self, partition: int) -> PartitionState:
        state = self.partitions.get(partition)
        if state is not None:
            return state
        found = await self._read_snapshot(partition)
        if found is None:
            state = PartitionState(
                partition, self.config, self.catalog, self.config.worker.max_pending_labels
            )
            self.generations[partition] = 0
        else:
            generation, data = found
            state = PartitionState.restore(
                data, self.config, self.catalog, self.config.worker.max_pending_labels
            )
            self.generations[partition] = generation
            logger.info(
                "partition %d: restored snapshot %d covering offsets %s",
                partition,
                generation,
                state.offsets,
            )
            state.alerts.resume(time.time())
        self.partitions[partition] = state
        self._submit_outbox(partition, state)
        return state

    async def _read_snapshot(self, partition: int) -> tuple[int, bytes] | None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            enable_auto_commit=False,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=64 * 1024 * 1024,
            **self._aiokafka_options(),
        )
        await consumer.start()
        try:
            tp = TopicPartition(self.config.topics.state, partition)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            records: list[tuple[bytes | None, bytes | None]] = []
            deadline = time.monotonic() + CATCH_UP_TIMEOUT
            while True:
                batch = await consumer.getmany(tp, timeout_ms=300)
                records.extend((r.key, r.value) for r in batch.get(tp, []))
                if await _caught_up(consumer, [tp]):
                    break
                if time.monotonic() > deadline:
                    raise DriftstreamError(
                        f"could not read the snapshot of partition {partition} "
                        f"from {self.config.topics.state} in {CATCH_UP_TIMEOUT:.0f} s"
                    )
            return latest_snapshot(records, partition)
        finally:
            await consumer.stop()

    async def _snapshot(self, partition: int) -> None:
        """Write the partition's state, then acknowledge what it covers."""
        state = self.partitions.get(partition)
        if state is None:
            return
        assert self.producer is not None
        generation = self.generations.get(partition, 0) + 1
        records = snapshot_records(partition, generation, state.snapshot())
        futures = [
            await self.producer.send(
                self.config.topics.state, value=value, key=key, partition=partition
            )
            for key, value in records
        ]
        await asyncio.gather(*futures)
        self.generations[partition] = generation
        for event in self.unacked.pop(partition, []):
            event.ack()
        self.unsnapshotted_since.pop(partition, None)
        # Only now are the outbox's transitions safe from a replay: deliver them.
        self._submit_outbox(partition, state)

    async def snapshot_due(self) -> None:
        """Snapshot every partition whose oldest unsnapshotted message is old enough."""
        interval = self.config.worker.snapshot_interval.total_seconds()
        now = time.monotonic()
        for partition, since in list(self.unsnapshotted_since.items()):
            if now - since >= interval:
                async with self.locks[partition]:
                    await self._snapshot(partition)

    # -- processing -----------------------------------------------------

    async def process(self, events: Sequence[EventT[bytes]], labels: bool = False) -> None:
        """Process a batch of prediction (or label) events of any partitions."""
        await self.started.wait()
        await self.references_loaded.wait()
        by_partition: defaultdict[int, list[EventT[bytes]]] = defaultdict(list)
        for event in events:
            by_partition[event.message.partition].append(event)
        for partition, group in by_partition.items():
            if self.assigned is not None and partition not in self.assigned:
                continue  # revoked while buffered: its new owner processes it
            async with self.locks[partition]:
                state = await self._state(partition)
                messages = [
                    InputMessage(
                        event.message.topic,
                        partition,
                        event.message.offset,
                        event.message.value,
                    )
                    for event in group
                ]
                outputs = state.on_labels(messages) if labels else state.on_predictions(messages)
                now = time.time()
                active = {(model, version) for model, version, _ in outputs.events if model}
                transitions = state.alerts.observe(outputs.results, active, now)
                await self._write_reports(state, outputs, transitions)
                await self._publish(outputs, partition)
                self._count(outputs, transitions, now)
                self.unacked[partition].extend(group)
                self.unsnapshotted_since.setdefault(partition, time.monotonic())
                if len(self.unacked[partition]) >= self.config.worker.snapshot_max_events:
                    await self._snapshot(partition)

    async def _publish(self, outputs: Outputs, partition: int) -> None:
        """Send what processing ``partition`` produced.

        Results go to the results partition of the same number (modulo the
        topic's size), not where their key hashes: all windows of a model
        then sit in one partition, in the order they closed, and a key
        still always lands in the same partition, as compaction needs.
        """
        assert self.producer is not None
        topics = self.config.topics
        sends: list[tuple[str, bytes, bytes, int | None]] = [
            (topics.deadletter, letter.key(), letter.to_json(), None)
            for letter in outputs.dead_letters
        ]
        sends += [
            (topics.references, reference_key(p.model, p.model_version), p.to_bytes(), None)
            for p in outputs.references
        ]
        if outputs.results:
            results_partitions = await self.producer.partitions_for(topics.results)
            to = partition % len(results_partitions)
            sends += [(topics.results, r.key(), r.to_json(), to) for r in outputs.results]
        futures = [
            await self.producer.send(topic, value=value, key=key, partition=number)
            for topic, key, value, number in sends
        ]
        await asyncio.gather(*futures)
        for result in outputs.results:
            self.recent[result.model, result.model_version].append(
                result.model_dump(mode="json", exclude_none=True)
            )
            logger.info(
                "window %s/%s #%d: %s%s",
                result.model,
                result.model_version,
                result.window.id,
                result.severity,
                f" (drifted: {', '.join(result.drifted_features)})"
                if result.drifted_features
                else "",
            )

    def _count(self, outputs: Outputs, transitions: Sequence[AlertEvent], now: float) -> None:
        self.events.update(outputs.events)
        self.labels.update(outputs.labels)
        self.dead_letters.update(letter.reason for letter in outputs.dead_letters)
        self.skipped_windows += outputs.skipped_windows
        metrics = self.metrics
        metrics.processed(
            outputs.events,
            outputs.labels,
            outputs.skipped_windows,
            outputs.evaluation_seconds,
            now,
        )
        for letter in outputs.dead_letters:
            metrics.dead_letter(letter.reason)
        for result in outputs.results:
            metrics.window(result, now)
        for event in transitions:
            metrics.alert(event)
            logger.warning("alert %s", event.summary)

    # -- alerts -----------------------------------------------------------

    def _submit_outbox(self, partition: int, state: PartitionState) -> None:
        """Hand the partition's persisted, undelivered transitions to the sinks."""
        if self.dispatcher is None:
            return
        submitted = self.submitted[partition]
        for key, entry in state.alerts.outbox.items():
            if key not in submitted:
                submitted.add(key)
                self.dispatcher.submit(partition, entry.event, entry.done)

    def _delivered(self, delivery: Delivery) -> None:
        """Record a finished delivery in the owning partition's book."""
        self.metrics.delivery(delivery.sink, delivery.outcome, delivery.attempts)
        state = self.partitions.get(delivery.owner)
        if state is None or self.dispatcher is None:
            return  # revoked: the new owner delivers what its snapshot still lists
        key = delivery.event.idempotency_key
        state.alerts.delivered(key, delivery.sink, self.dispatcher.required(delivery.event))
        if key not in state.alerts.outbox:
            self.submitted[delivery.owner].discard(key)
        self._snapshot_soon(delivery.owner)

    def _snapshot_soon(self, partition: int) -> None:
        """Have the snapshot timer write this partition's state at its next run."""
        interval = self.config.worker.snapshot_interval.total_seconds()
        self.unsnapshotted_since.setdefault(partition, time.monotonic() - interval)

    async def _publish_alert(self, key: bytes, value: bytes) -> None:
        assert self.producer is not None
        await self.producer.send_and_wait(self.config.topics.alerts, value=value, key=key)

    async def _publish_alert_dead_letter(self, letter: AlertDeadLetter) -> None:
        assert self.producer is not None
        await self.producer.send_and_wait(
            self.config.topics.alert_deadletter, value=letter.to_json(), key=letter.key()
        )

    async def _write_reports(
        self, state: PartitionState, outputs: Outputs, transitions: Sequence[AlertEvent]
    ) -> None:
        """Write an Evidently report for each firing drift alert whose window is at hand."""
        folder = self.config.alerting.reports_dir
        if folder is None:
            return
        for event in transitions:
            if event.status != "firing" or event.kind not in REPORTED_KINDS:
                continue
            if event.window is None:
                continue
            version = (event.model, event.model_version or "")
            window = outputs.windows.get((*version, event.window.id))
            profile = self.catalog.get(window.profile_id) if window is not None else None
            monitor = state.versions.get(version)
            if window is None or profile is None:
                continue
            path = (
                folder / f"{event.model}-{event.model_version}-window{window.window_id}"
                f"-{event.fingerprint}.html"
            ).absolute()
            features = [f.feature for f in event.features] or None
            try:
                folder.mkdir(parents=True, exist_ok=True)
                await asyncio.to_thread(
                    write_evidently_report,
                    frame_from_profile(profile),
                    frame_from_window(window.state),
                    profile,
                    path,
                    features,
                    monitor.settings.policy if monitor is not None else None,
                )
            except Exception as error:  # a report is a convenience: never stop processing
                logger.error("could not write the report %s: %s", path, error)
                continue
            url = self.config.alerting.report_url.format(path=path, name=path.name)
            state.alerts.attach_link(event.idempotency_key, "report", url)

    async def tick(self) -> None:
        """Judge time-based rules; refresh lag, firing alerts, reference ages, queues."""
        now = time.time()
        firing: Counter[tuple[str, str]] = Counter()
        for partition, state in list(self.partitions.items()):
            async with self.locks[partition]:
                transitions = state.alerts.tick(now)
            for event in transitions:
                self.metrics.alert(event)
                logger.warning("alert %s", event.summary)
            if transitions:
                self._snapshot_soon(partition)
            for alert in state.alerts.alerts.values():
                if alert.status == "firing":
                    firing[alert.rule, alert.model] += 1
        self.metrics.firing_alerts(firing)
        self.metrics.tick(now)
        if self.dispatcher is not None:
            ages = self.dispatcher.oldest_ages()
            for sink, depth in self.dispatcher.depths().items():
                self.metrics.queued(sink, depth, ages[sink])

    def consumer_lag(self, highwater: Any) -> None:
        """Set lag gauges of every owned input partition, once a fetch reported its mark.

        Lag is the high-water mark (from fetch responses) minus the next
        offset the partition's state will process.
        """
        lags: dict[tuple[str, int], int] = {}
        inputs = (self.config.topics.predictions, self.config.topics.labels)
        for partition in self.assigned or ():
            state = self.partitions.get(partition)
            for topic in inputs:
                # nothing processed from it yet: it is read from its start
                offset = state.offsets.get(topic, 0) if state is not None else 0
                mark = highwater(TP(topic, partition))
                if mark is not None:
                    lags[topic, partition] = max(0, mark - offset)
        self.metrics.consumer_lag(lags)

    def alerts_summary(self) -> dict[str, Any]:
        """Alerts that are pending or firing, and transitions not yet delivered everywhere."""
        active = []
        undelivered = 0
        for state in self.partitions.values():
            undelivered += len(state.alerts.outbox)
            for fingerprint, alert in state.alerts.alerts.items():
                if alert.status != "inactive":
                    active.append(
                        {
                            "fingerprint": fingerprint,
                            "rule": alert.rule,
                            "model": alert.model,
                            "model_version": alert.model_version,
                            "feature": alert.feature,
                            "status": alert.status,
                            "severity": alert.severity,
                        }
                    )
        return {
            "active": active,
            "undelivered": undelivered,
            # Partitions whose latest state (delivery records included) is not
            # yet in a snapshot: a crash now would deliver those again.
            "unsnapshotted_partitions": len(self.unsnapshotted_since),
        }

    def on_assigned(self, assigned: set[TP]) -> None:
        """Remember which partitions this worker owns."""
        topics = {self.config.topics.predictions, self.config.topics.labels}
        self.assigned = {tp.partition for tp in assigned if tp.topic in topics}
        logger.info("assigned partitions %s", sorted(self.assigned))

    def on_revoked(self, revoked: set[TP]) -> None:
        """Forget revoked partitions: their next owner restores them from snapshots."""
        topics = {self.config.topics.predictions, self.config.topics.labels}
        for partition in {tp.partition for tp in revoked if tp.topic in topics}:
            state = self.partitions.get(partition)
            for model, model_version in state.versions if state is not None else ():
                self.metrics.forget(model, model_version)
            self.submitted.pop(partition, None)
            self.partitions.pop(partition, None)
            self.unacked.pop(partition, None)
            self.unsnapshotted_since.pop(partition, None)

    # -- views ----------------------------------------------------------

    def models_summary(self) -> dict[str, Any]:
        """Per model version: events by outcome, latest window, reference."""
        summary: dict[str, Any] = {}
        versions = set(self.recent) | {(m, v) for m, v, _ in self.events if m}
        versions |= set(self.catalog.models())
        for model, model_version in sorted(versions):
            recent = self.recent.get((model, model_version))
            latest = recent[-1] if recent else None
            summary.setdefault(model, {})[model_version] = {
                "events": {
                    outcome: count
                    for (m, v, outcome), count in self.events.items()
                    if (m, v) == (model, model_version)
                },
                "labels": {
                    outcome: count
                    for (m, v, outcome), count in self.labels.items()
                    if (m, v) == (model, model_version)
                },
                "reference": self.catalog.latest(model, model_version) is not None,
                "windows_seen": len(recent) if recent else 0,
                "latest_window": None
                if latest is None
                else {
                    "id": latest["window"]["id"],
                    "severity": latest["severity"],
                    "drifted_features": latest["drifted_features"],
                },
            }
        return summary

    def drift(self, model: str) -> dict[str, list[dict[str, Any]]] | None:
        """Recent window results of every version of ``model``, newest last."""
        found = {v: list(r) for (m, v), r in self.recent.items() if m == model}
        return found or None


async def _partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    deadline = time.monotonic() + CATCH_UP_TIMEOUT
    while True:
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return [TopicPartition(topic, p) for p in sorted(partitions)]
        if time.monotonic() > deadline:
            raise DriftstreamError(f"topic {topic} does not exist")
        await consumer.topics()  # refreshes the cluster metadata
        await asyncio.sleep(0.2)


async def _caught_up(consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]) -> bool:
    """Whether every partition's position reached its high-water mark.

    The high-water mark comes from fetch responses: the embedded broker
    answers end-offset requests wrongly.
    """
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True


def create_app(
    config: DriftstreamConfig,
    bootstrap_servers: str,
    references: Mapping[str, ReferenceProfile],
    datadir: Path,
) -> tuple[faust.App, Pipeline]:
    """The Faust app of a worker and the pipeline it drives.

    ``datadir`` is Faust's own folder; with in-memory tables it holds only
    empty directories, so a temporary one will do.
    """
    worker = config.worker
    web_token = endpoint_token("worker.web_token", worker.web_token)
    pipeline = Pipeline(config, bootstrap_servers, references)
    app = faust.App(
        worker.group_id,
        datadir=datadir,
        broker=f"kafka://{bootstrap_servers}",
        broker_credentials=_credentials(config),
        store="memory://",
        autodiscover=False,
        web_enabled=True,
        web_bind=worker.web_host,
        web_host=worker.web_host,
        web_port=worker.web_port,
        web_application_options=(
            None if web_token is None else {"middlewares": [bearer_middleware(web_token)]}
        ),
        broker_session_timeout=worker.session_timeout.total_seconds(),
        consumer_auto_offset_reset="earliest",
        topic_partitions=config.topics.partitions,
        topic_disable_leader=True,
        # Messages stay unacknowledged until a snapshot covers them; at
        # shutdown they are simply read again, so do not wait for acks.
        stream_wait_empty=False,
    )
    predictions, labels = (
        app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
        )
        for name in (config.topics.predictions, config.topics.labels)
    )
    within = worker.batch_max_delay.total_seconds()

    async def take(stream: StreamT[bytes], as_labels: bool) -> AsyncIterator[None]:
        async for events in cast(Stream[bytes], stream).noack_take(
            worker.batch_max_events, within=within
        ):
            await pipeline.process(cast(Sequence[EventT[bytes]], events), labels=as_labels)
            yield None

    @app.agent(predictions)
    async def process_predictions(stream: StreamT[bytes]) -> AsyncIterator[None]:
        async for done in take(stream, as_labels=False):
            yield done

    @app.agent(labels)
    async def process_labels(stream: StreamT[bytes]) -> AsyncIterator[None]:
        async for done in take(stream, as_labels=True):
            yield done

    async def start_pipeline() -> None:
        await pipeline.start()
        try:
            await pipeline.follow_references()
        finally:
            await pipeline.stop()

    async def snapshot_due() -> None:
        if pipeline.started.is_set():
            await pipeline.snapshot_due()

    def on_assigned(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        pipeline.on_assigned(set(args[0]))

    def on_revoked(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        pipeline.on_revoked(set(args[0]))

    async def tick() -> None:
        if pipeline.started.is_set():
            await pipeline.tick()
            pipeline.consumer_lag(app.consumer.highwater)

    app.task(start_pipeline)
    app.timer(TICK_SECONDS)(tick)
    app.timer(max(0.1, worker.snapshot_interval.total_seconds() / 4))(snapshot_due)
    # mode's signal annotations accept no plain function (a typing bug upstream).
    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]
    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]

    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        return web.json({"status": "alive"})

    @app.page("/ready")
    async def ready(web: View, request: Request) -> Response:
        body = {
            "ready": pipeline.ready,
            "references_loaded": pipeline.references_loaded.is_set(),
            "partitions": None if pipeline.assigned is None else sorted(pipeline.assigned),
            "references": len(pipeline.catalog),
        }
        return web.json(body, status=200 if pipeline.ready else 503)

    @app.page("/alerts")
    async def alerts(web: View, request: Request) -> Response:
        return web.json(pipeline.alerts_summary())

    @app.page("/models")
    async def models(web: View, request: Request) -> Response:
        return web.json(pipeline.models_summary())

    @app.page("/models/{model}/drift")
    async def model_drift(web: View, request: Request, model: str) -> Response:
        found = pipeline.drift(model)
        if found is None:
            return web.json({"error": f"no window results for model {model!r} yet"}, status=404)
        return web.json({"model": model, "versions": found})

    return app, pipeline


Handler = Callable[[aiohttp_web.Request], Awaitable[aiohttp_web.StreamResponse]]


def bearer_middleware(token: str) -> Any:
    """aiohttp middleware: every path but :data:`OPEN_PATHS` needs ``Bearer <token>``.

    It sees every request, Faust's own pages and unknown paths included, so
    nothing is answered (not even ``404``) without the token. A refusal is
    ``401`` with ``WWW-Authenticate: Bearer`` and a body naming nothing.
    """

    @aiohttp_web.middleware
    async def require_token(
        request: aiohttp_web.Request, handler: Handler
    ) -> aiohttp_web.StreamResponse:
        header = request.headers.get("Authorization")
        if request.path in OPEN_PATHS or bearer_authorized(header, token):
            return await handler(request)
        return aiohttp_web.Response(
            status=401,
            body=UNAUTHORIZED_BODY,
            content_type="application/json",
            headers={"WWW-Authenticate": challenge(header is not None)},
        )

    return require_token


def external_sinks(config: DriftstreamConfig) -> list[Sink]:
    """The configured Slack and webhook sinks, secrets read now (fail at start-up)."""
    sinks: list[Sink] = []
    alerting = config.alerting
    try:
        for index, slack in enumerate(alerting.slack):
            where = f"alerting.slack.{index}"
            sinks.append(SlackSink(slack))
        for index, webhook in enumerate(alerting.webhooks):
            where = f"alerting.webhooks.{index}"
            sinks.append(WebhookSink(webhook))
    except ValueError as error:
        raise DriftstreamError(f"{where}: {error}") from None
    return sinks


def _credentials(config: DriftstreamConfig) -> Any:
    broker = config.broker
    protocol = broker.security_protocol.value
    context = (
        ssl.create_default_context(cafile=str(broker.ssl_cafile) if broker.ssl_cafile else None)
        if protocol in ("SSL", "SASL_SSL")
        else None
    )
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=broker.sasl_username,
            password=broker.sasl_password.get_secret_value() if broker.sasl_password else None,
            mechanism=broker.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def run_worker(
    config: DriftstreamConfig,
    bootstrap_servers: str,
    references: Mapping[str, ReferenceProfile],
    log_level: str = "info",
) -> None:
    """Run a worker in the foreground until SIGINT/SIGTERM, with the configured profiles.

    Faust's data folder goes to a temporary directory rather than the working
    directory (its default), which may be read-only or someone's checkout.
    """
    with tempfile.TemporaryDirectory(prefix="driftstream-faust-") as datadir:
        app, _ = create_app(config, bootstrap_servers, references, Path(datadir))
        worker = faust.Worker(app, loglevel=log_level, quiet=True, redirect_stdouts=False)
        worker.execute_from_commandline()
