"""Prometheus metrics of a worker, served on ``metrics.host:metrics.port`` at ``/metrics``.

:class:`DriftMetrics` owns a registry and turns what the pipeline produces
(processing outputs, window results, alert transitions, deliveries,
consumer positions) into series. Every name has the ``driftstream_``
prefix, base units and ``_total`` for counters; the README's metrics
reference lists them all.

Cardinality is bounded twice:

- a model's first ``max_features_per_model`` features (in the order its
  windows report them) get their own ``feature`` label; the others share
  ``feature="other"``, which carries the *worst* of them (largest statistic
  and effect, smallest p-value, highest severity and rates), so drift in an
  unexported feature still shows; ``driftstream_features_folded`` counts
  them;
- every series of a model version is removed once the version has sent no
  event for ``version_ttl`` (and when the worker loses the partition that
  owns the model).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import math
import socket
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    make_wsgi_app,
    start_http_server,
)
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.metrics import MetricWrapperBase

from schemas.alerts import AlertEvent
from schemas.outputs import WindowResult

# No `*_created` series: they double the counters' output and nothing here
# reads them (rate() and increase() handle resets). A process-wide switch.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream

SEVERITY_VALUE = {"ok": 0.0, "warning": 1.0, "critical": 2.0}
#: Why a record of the references topic was rejected (``driftstream_references_rejected_total``).
REFERENCE_REJECT_REASONS = ("too_large", "invalid_profile", "unsupported_version", "invalid_key")
#: Window evaluation time buckets, seconds.
EVALUATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
OTHER = "other"
VERSION = ("model", "model_version")
FEATURE = (*VERSION, "feature")
TEST = (*FEATURE, "test")
QUALITY_GAUGES = {
    "null_rate": "driftstream_null_ratio",
    "out_of_range": "driftstream_out_of_range_ratio",
    "unseen_categories": "driftstream_unseen_category_ratio",
}


class DriftMetrics:
    """Every series a worker exports.

    Parameters
    ----------
    max_features_per_model
        Features with their own series per model; the rest fold into ``other``.
    version_ttl
        Seconds without events after which a model version's series go.
    registry
        Where the metrics live (a fresh registry by default, so several
        pipelines in one process do not collide).

    Examples
    --------
    >>> from prometheus_client import generate_latest
    >>> metrics = DriftMetrics()
    >>> metrics.dead_letter("schema")
    >>> b'driftstream_dead_letters_total{reason="schema"} 1.0' in generate_latest(metrics.registry)
    True
    """

    def __init__(
        self,
        max_features_per_model: int = 100,
        version_ttl: float = 3600.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.max_features = max_features_per_model
        self.version_ttl = version_ttl
        self._exported: defaultdict[str, list[str]] = defaultdict(list)
        self._last_seen: dict[tuple[str, str], float] = {}
        self._built_at: dict[tuple[str, str], float] = {}
        self._series: defaultdict[tuple[str, str], set[tuple[MetricWrapperBase, tuple[str, ...]]]]
        self._series = defaultdict(set)
        r = self.registry

        def counter(name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
            return Counter(name, doc, tuple(labels), registry=r)

        def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
            return Gauge(name, doc, tuple(labels), registry=r)

        self.events = counter(
            "driftstream_events_total",
            "Prediction events by outcome (processed, bootstrap or a dead-letter reason).",
            (*VERSION, "outcome"),
        )
        self.labels = counter(
            "driftstream_labels_total", "Label events by outcome.", (*VERSION, "outcome")
        )
        self.dead_letters = counter(
            "driftstream_dead_letters_total", "Messages sent to the dead-letter topic.", ("reason",)
        )
        self.references_rejected = counter(
            "driftstream_references_rejected_total",
            "Records of the references topic not applied (the previous reference stays).",
            ("reason",),
        )
        for reason in REFERENCE_REJECT_REASONS:  # from 0, so increase() sees the first
            self.references_rejected.labels(reason)
        self.windows = counter(
            "driftstream_windows_total", "Closed windows by severity.", (*VERSION, "severity")
        )
        self.skipped_windows = counter(
            "driftstream_windows_skipped_total",
            "Windows not compared (reference missing or changed inside a sliding window).",
        )
        self.evaluation = Histogram(
            "driftstream_window_evaluation_seconds",
            "Time to compare one closed window with its reference.",
            buckets=EVALUATION_BUCKETS,
            registry=r,
        )
        self.statistic = gauge(
            "driftstream_drift_statistic", "Latest window's test statistic.", TEST
        )
        self.effect = gauge(
            "driftstream_drift_effect_size",
            "Latest window's effect size (what thresholds are compared with).",
            TEST,
        )
        self.threshold = gauge(
            "driftstream_drift_threshold",
            "Effect size a test's warning or critical verdict needs (level label).",
            (*TEST, "level"),
        )
        self.p_value = gauge(
            "driftstream_drift_p_value", "Latest window's multiplicity-adjusted p-value.", TEST
        )
        self.test_severity = gauge(
            "driftstream_drift_severity",
            "Latest window's severity per test: 0 ok, 1 warning, 2 critical.",
            TEST,
        )
        self.feature_severity = gauge(
            "driftstream_feature_severity",
            "Latest window's severity per feature: 0 ok, 1 warning, 2 critical.",
            FEATURE,
        )
        self.quality = {
            check: gauge(name, f"Latest window's {check.replace('_', ' ')} share.", FEATURE)
            for check, name in QUALITY_GAUGES.items()
        }
        self.folded = gauge(
            "driftstream_features_folded",
            'Features reported under feature="other" (over max_features_per_model).',
            VERSION,
        )
        self.window_severity = gauge(
            "driftstream_window_severity",
            "Latest window's overall severity: 0 ok, 1 warning, 2 critical, -1 too little data.",
            VERSION,
        )
        self.drifted = gauge(
            "driftstream_drifted_features", "Features that drifted in the latest window.", VERSION
        )
        self.prediction_statistic = gauge(
            "driftstream_prediction_drift_statistic",
            "Latest window's test statistic on the model output.",
            (*VERSION, "test"),
        )
        self.prediction_severity = gauge(
            "driftstream_prediction_drift_severity",
            "Latest window's model-output drift severity: 0 ok, 1 warning, 2 critical.",
            VERSION,
        )
        self.performance = gauge(
            "driftstream_performance",
            "Latest window's performance metric on joined labels.",
            (*VERSION, "metric"),
        )
        self.reference_performance = gauge(
            "driftstream_reference_performance",
            "The reference's own performance metric.",
            (*VERSION, "metric"),
        )
        self.label_coverage = gauge(
            "driftstream_label_coverage_ratio",
            "Share of the latest window's predictions that got a label.",
            VERSION,
        )
        self.label_delay = gauge(
            "driftstream_label_delay_seconds",
            "Mean delay from prediction to label in the latest window.",
            VERSION,
        )
        self.window_events = gauge(
            "driftstream_window_events", "Events in the latest closed window.", VERSION
        )
        self.window_closed = gauge(
            "driftstream_window_last_close_timestamp_seconds",
            "When the latest window closed (worker clock, Unix time).",
            VERSION,
        )
        self.reference_age = gauge(
            "driftstream_reference_age_seconds",
            "Age of the reference profile the latest window was compared with.",
            VERSION,
        )
        self.lag = gauge(
            "driftstream_consumer_lag_messages",
            "Messages behind the partition's high-water mark (from fetch responses).",
            ("topic", "partition"),
        )
        self.alerts = counter(
            "driftstream_alert_transitions_total",
            "Alert transitions by rule and status.",
            ("rule", "status"),
        )
        self.firing = gauge(
            "driftstream_alerts_firing", "Alerts currently firing.", ("rule", "model")
        )
        self.deliveries = counter(
            "driftstream_sink_deliveries_total",
            "Alert deliveries by sink and outcome (delivered or dead_lettered).",
            ("sink", "outcome"),
        )
        self.attempts = counter(
            "driftstream_sink_attempts_total", "Delivery attempts (retries included).", ("sink",)
        )
        self.queue = gauge(
            "driftstream_sink_queue",
            "Alert transitions not yet delivered by a sink (queued or being retried).",
            ("sink",),
        )
        self.oldest_undelivered = gauge(
            "driftstream_sink_oldest_undelivered_seconds",
            "Age of the oldest alert transition a sink has not delivered yet (0: none).",
            ("sink",),
        )

    # -- inputs ---------------------------------------------------------

    def processed(
        self,
        events: Mapping[tuple[str, str, str], int],
        labels: Mapping[tuple[str, str, str], int],
        skipped_windows: int,
        evaluation_seconds: Iterable[float],
        now: float,
    ) -> None:
        """Count one processing step's outcomes."""
        for (model, version, outcome), count in events.items():
            self.events.labels(model, version, outcome).inc(count)
            if model:
                self._last_seen[model, version] = now
        for (model, version, outcome), count in labels.items():
            self.labels.labels(model, version, outcome).inc(count)
        if skipped_windows:
            self.skipped_windows.inc(skipped_windows)
        for seconds in evaluation_seconds:
            self.evaluation.observe(seconds)

    def dead_letter(self, reason: str) -> None:
        """Count one dead letter."""
        self.dead_letters.labels(reason).inc()

    def reference_rejected(self, reason: str) -> None:
        """Count one rejected record of the references topic."""
        self.references_rejected.labels(reason).inc()

    def window(self, result: WindowResult, now: float) -> None:
        """Export a closed window's result."""
        model, version = result.model, result.model_version
        key = (model, version)
        self._last_seen[key] = now
        self.windows.labels(model, version, result.severity).inc()
        self._set(key, self.window_severity, (), SEVERITY_VALUE.get(result.severity, -1.0))
        self._set(key, self.drifted, (), float(len(result.drifted_features)))
        self._set(key, self.window_events, (), float(result.n_events))
        self._set(key, self.window_closed, (), now)
        built = _timestamp(result.reference.built_at)
        if built is not None:
            self._built_at[key] = built
            self._set(key, self.reference_age, (), max(0.0, now - built))
        own, folded = self._split(model, list(result.features))
        self._set(key, self.folded, (), float(len(folded)))
        for name in own:
            self._feature(key, name, [result.features[name]])
        if folded:
            self._feature(key, OTHER, [result.features[name] for name in folded])
        if result.prediction is not None:
            for test, values in (result.prediction.get("tests") or {}).items():
                self._set(key, self.prediction_statistic, (test,), values.get("statistic"))
            severity = SEVERITY_VALUE.get(str(result.prediction.get("severity")))
            self._set(key, self.prediction_severity, (), severity)
        self._performance(key, result.performance)

    def alert(self, event: AlertEvent) -> None:
        """Count a transition."""
        self.alerts.labels(event.rule, event.status).inc()

    def firing_alerts(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Set the firing gauge to ``counts`` by (rule, model), dropping stale series."""
        for labels in _label_sets(self.firing) - set(counts):
            self.firing.remove(*labels)
        for (rule, model), count in counts.items():
            self.firing.labels(rule, model).set(count)

    def sinks(self, names: Sequence[str]) -> None:
        """Start every sink's series at zero.

        A counter series born at its first increment hides that increment
        from ``rate()`` and ``increase()``, so a sink's first failure would
        raise no alert; series that exist from start-up count it.
        """
        for sink in names:
            for outcome in ("delivered", "dead_lettered"):
                self.deliveries.labels(sink, outcome)
            self.attempts.labels(sink)
            self.queued(sink, 0, 0.0)

    def delivery(self, sink: str, outcome: str, attempts: int) -> None:
        """Count a finished delivery and the attempts it took."""
        self.deliveries.labels(sink, outcome).inc()
        self.attempts.labels(sink).inc(attempts)

    def queued(self, sink: str, depth: int, oldest_age: float) -> None:
        """Set a sink's undelivered count and the age of its oldest undelivered transition."""
        self.queue.labels(sink).set(depth)
        self.oldest_undelivered.labels(sink).set(oldest_age)

    def consumer_lag(self, lags: Mapping[tuple[str, int], int]) -> None:
        """Set per-partition lag, dropping partitions no longer owned."""
        for labels in _label_sets(self.lag) - {(topic, str(p)) for topic, p in lags}:
            self.lag.remove(*labels)
        for (topic, partition), lag in lags.items():
            self.lag.labels(topic, str(partition)).set(lag)

    def tick(self, now: float) -> None:
        """Refresh reference ages; remove versions silent for ``version_ttl``."""
        for key, built in self._built_at.items():
            if key in self._series:
                self.reference_age.labels(*key).set(max(0.0, now - built))
        for key, seen in list(self._last_seen.items()):
            if now - seen >= self.version_ttl:
                self.forget(*key)

    def forget(self, model: str, model_version: str) -> None:
        """Remove every series of a model version."""
        key = (model, model_version)
        for metric, labels in self._series.pop(key, set()):
            with contextlib.suppress(KeyError):  # already gone
                metric.remove(*labels)
        for counter in (self.events, self.labels, self.windows):
            for sample_labels in _label_sets(counter):
                if sample_labels[:2] == key:
                    counter.remove(*sample_labels)
        self._last_seen.pop(key, None)
        self._built_at.pop(key, None)

    def versions(self) -> set[tuple[str, str]]:
        """Model versions with exported series."""
        return set(self._last_seen)

    def serve(self, host: str, port: int, token: str | None = None) -> Any:
        """Start the ``/metrics`` HTTP server in a thread; returns ``(server, thread)``.

        With a ``token``, every request needs ``Authorization: Bearer <token>``
        (else ``401``). prometheus_client's server has no hook for that, so
        its WSGI app is wrapped and served the way ``start_http_server``
        serves it (its threading server, quiet request handler, daemon thread).
        """
        if token is None:
            return start_http_server(port, addr=host, registry=self.registry)
        app = bearer_wsgi(make_wsgi_app(self.registry), token)

        class Server(ThreadingWSGIServer):
            """Per server, as ``start_http_server`` does: the address family of ``host``."""

        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        Server.address_family = family
        server = make_server(str(address[0]), port, app, Server, handler_class=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return server, thread

    # -- helpers --------------------------------------------------------

    def _split(self, model: str, features: list[str]) -> tuple[list[str], list[str]]:
        exported = self._exported[model]
        for name in features:
            if name not in exported and len(exported) < self.max_features:
                exported.append(name)
        chosen = set(exported)
        return [f for f in features if f in chosen], [f for f in features if f not in chosen]

    def _feature(self, key: tuple[str, str], name: str, entries: list[dict[str, Any]]) -> None:
        """Export one feature, or the worst of several under ``other``."""
        severities = [SEVERITY_VALUE.get(str(e.get("severity")), -1.0) for e in entries]
        self._set(key, self.feature_severity, (name,), max(severities))
        tests: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        for entry in entries:
            for test, values in (entry.get("tests") or {}).items():
                tests[test].append(values)
        for test, results in tests.items():
            labels = (name, test)
            self._set(key, self.statistic, labels, _worst(results, "statistic", max))
            self._set(key, self.effect, labels, _worst(results, "effect_size", max))
            limits = [r.get("effect_thresholds") or {} for r in results]
            for level in ("warning", "critical"):
                self._set(key, self.threshold, (*labels, level), _worst(limits, level, max))
            self._set(key, self.p_value, labels, _worst(results, "adjusted_p_value", min))
            test_severity = max(SEVERITY_VALUE.get(str(r.get("severity")), -1.0) for r in results)
            self._set(key, self.test_severity, labels, test_severity)
        for check, gauge in self.quality.items():
            rates = [
                rate
                for entry in entries
                if (rate := ((entry.get("quality") or {}).get(check) or {}).get("rate")) is not None
            ]
            if rates:
                self._set(key, gauge, (name,), max(rates))

    def _performance(self, key: tuple[str, str], performance: dict[str, Any] | None) -> None:
        if not performance:
            return
        self._set(key, self.label_coverage, (), performance.get("label_coverage"))
        delay = performance.get("label_delay_seconds") or {}
        self._set(key, self.label_delay, (), delay.get("mean"))
        for metric, value in (performance.get("metrics") or {}).items():
            self._set(key, self.performance, (metric,), value)
        for metric, value in (performance.get("reference") or {}).items():
            if isinstance(value, int | float):
                self._set(key, self.reference_performance, (metric,), value)

    def _set(
        self,
        key: tuple[str, str],
        gauge: Gauge,
        extra: tuple[str, ...],
        value: float | None,
    ) -> None:
        """Set a version's gauge (``extra`` labels after model and version), tracked for removal.

        ``None`` or a non-finite value removes the series: a missing number
        must not leave the previous window's value behind.
        """
        labels = key + extra
        if value is None or not math.isfinite(value):
            if (gauge, labels) in self._series[key]:
                gauge.remove(*labels)
                self._series[key].discard((gauge, labels))
            return
        gauge.labels(*labels).set(value)
        self._series[key].add((gauge, labels))


def _worst(results: list[dict[str, Any]], field: str, pick: Any) -> float | None:
    values = [v for r in results if (v := r.get(field)) is not None]
    return float(pick(values)) if values else None


def _label_sets(metric: MetricWrapperBase) -> set[tuple[str, ...]]:
    return {
        tuple(sample.labels.values()) for family in metric.collect() for sample in family.samples
    }


def _timestamp(moment: str | None) -> float | None:
    if not moment:
        return None
    try:
        return datetime.fromisoformat(moment).timestamp()
    except ValueError:
        return None


#: The body of a ``401``: nothing about the worker, its models or the token.
UNAUTHORIZED_BODY = b'{"error": "unauthorized"}\n'


def bearer_authorized(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header value carries ``Bearer <token>``.

    The scheme is case-insensitive (RFC 7235). The credentials are compared
    in constant time, through SHA-256 digests so that not even the token's
    length shows in the timing.

    Examples
    --------
    >>> bearer_authorized("Bearer s3cret", "s3cret"), bearer_authorized("bearer s3cret", "s3cret")
    (True, True)
    >>> bearer_authorized("Bearer s3cre", "s3cret"), bearer_authorized("Basic s3cret", "s3cret")
    (False, False)
    >>> bearer_authorized(None, "s3cret"), bearer_authorized("s3cret", "s3cret")
    (False, False)
    """
    if header is None:
        return False
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # surrogatepass: any str encodes, one way only (header bytes that are not UTF-8
    # arrive as surrogate escapes)
    given = hashlib.sha256(credentials.strip().encode("utf-8", "surrogatepass")).digest()
    expected = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(given, expected)


def challenge(presented: bool) -> str:
    """The ``WWW-Authenticate`` value of a ``401`` (RFC 6750).

    Examples
    --------
    >>> challenge(False), challenge(True)
    ('Bearer realm="driftstream"', 'Bearer realm="driftstream", error="invalid_token"')
    """
    return 'Bearer realm="driftstream"' + (', error="invalid_token"' if presented else "")


def bearer_wsgi(app: WSGIApplication, token: str) -> WSGIApplication:
    """``app``, answering ``401`` to any request without ``Authorization: Bearer <token>``."""

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        header = environ.get("HTTP_AUTHORIZATION")
        if header is not None:
            # WSGI hands headers over as latin-1; get the bytes back, read them as UTF-8.
            header = header.encode("latin-1").decode("utf-8", "surrogateescape")
        if bearer_authorized(header, token):
            return app(environ, start_response)
        start_response(
            "401 Unauthorized",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(UNAUTHORIZED_BODY))),
                ("WWW-Authenticate", challenge(header is not None)),
            ],
        )
        return [UNAUTHORIZED_BODY]

    return guarded


class _QuietHandler(WSGIRequestHandler):
    """Logs no requests (like ``start_http_server``'s handler)."""

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing."""
