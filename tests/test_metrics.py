"""The Prometheus exporter: pure tests of DriftMetrics, then a worker scraped by real Prometheus."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.comparison import Comparator
from monitor.metrics import DriftMetrics
from monitor.publishing import publish_reference
from monitor.reference import ReferenceProfile
from monitor.simulation import CHURN, ServingSimulator
from monitor.stats.decision import DriftPolicy, EffectThresholds
from monitor.windows import WindowState
from schemas.outputs import ReferenceInfo, WindowBounds, WindowResult
from tests.prometheus import Prometheus, running_prometheus
from tests.worker_process import (
    WorkerProcess,
    churn_reference,
    latest_results,
    send,
    start_worker,
    write_config,
)

START_MS = 1_700_000_000_000


def samples(metrics: DriftMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every exported sample, by name and sorted labels."""
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def value(metrics: DriftMetrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, tuple(sorted(labels.items()))))


def feature(psi: float, severity: str, null_rate: float = 0.0) -> dict[str, Any]:
    return {
        "kind": "numeric",
        "tests": {
            "psi": {
                "statistic": psi,
                "effect_size": psi,
                "adjusted_p_value": 0.001,
                "severity": severity,
            },
        },
        "quality": {"null_rate": {"rate": null_rate}},
        "severity": severity,
    }


def result(features: dict[str, dict[str, Any]], version: str = "7") -> WindowResult:
    return WindowResult(
        model="churn",
        model_version=version,
        window=WindowBounds(kind="count", id=0),
        n_events=1000,
        severity="critical",
        drifted_features=["a"],
        features=features,
        performance={
            "label_coverage": 0.8,
            "label_delay_seconds": {"mean": 2.5},
            "metrics": {"accuracy": 0.9, "roc_auc": None},
        },
        reference=ReferenceInfo(model_version=version, n_rows=10, built_at="2026-11-23T00:00:00Z"),
        alpha=0.01,
        correction="bh",
        min_samples=100,
    )


def test_window_gauges_and_their_values() -> None:
    metrics = DriftMetrics()
    built = datetime(2026, 11, 23, tzinfo=UTC).timestamp()  # the result's reference built_at
    metrics.window(result({"a": feature(0.4, "critical", null_rate=0.1)}), now=built + 3600)
    labels = {"model": "churn", "model_version": "7"}
    assert value(metrics, "driftstream_drift_statistic", **labels, feature="a", test="psi") == 0.4
    assert value(metrics, "driftstream_drift_severity", **labels, feature="a", test="psi") == 2
    assert value(metrics, "driftstream_drift_p_value", **labels, feature="a", test="psi") == 0.001
    assert value(metrics, "driftstream_null_ratio", **labels, feature="a") == 0.1
    assert value(metrics, "driftstream_window_events", **labels) == 1000
    assert value(metrics, "driftstream_window_severity", **labels) == 2
    assert value(metrics, "driftstream_performance", **labels, metric="accuracy") == 0.9
    assert value(metrics, "driftstream_performance", **labels, metric="roc_auc") is None
    assert value(metrics, "driftstream_label_coverage_ratio", **labels) == 0.8
    assert value(metrics, "driftstream_label_delay_seconds", **labels) == 2.5
    assert value(metrics, "driftstream_reference_age_seconds", **labels) == 3600
    metrics.tick(now=built + 5400)  # within the version TTL (1 h after the last event)
    assert value(metrics, "driftstream_reference_age_seconds", **labels) == 5400
    assert value(metrics, "driftstream_windows_total", **labels, severity="critical") == 1


def test_features_over_the_cap_fold_into_other_with_the_worst_values() -> None:
    metrics = DriftMetrics(max_features_per_model=2)
    features = {
        "a": feature(0.01, "ok"),
        "b": feature(0.02, "ok"),
        "c": feature(0.05, "ok"),
        "d": feature(0.30, "critical", null_rate=0.2),
    }
    metrics.window(result(features), now=0.0)
    exported = {
        dict(labels)["feature"]
        for (name, labels), _ in samples(metrics).items()
        if name == "driftstream_drift_statistic"
    }
    assert exported == {"a", "b", "other"}
    other = {"model": "churn", "model_version": "7", "feature": "other"}
    assert value(metrics, "driftstream_drift_statistic", **other, test="psi") == 0.30
    assert value(metrics, "driftstream_feature_severity", **other) == 2
    assert value(metrics, "driftstream_null_ratio", **other) == 0.2
    assert value(metrics, "driftstream_features_folded", model="churn", model_version="7") == 2


def test_each_test_exports_the_thresholds_its_verdicts_need() -> None:
    rng = np.random.default_rng(0)
    profile = ReferenceProfile.from_frame(
        pd.DataFrame({"x": rng.normal(size=4000)}), model="churn", model_version="7"
    )
    policy = DriftPolicy(
        thresholds={"ks": EffectThresholds(0.07, 0.3), "psi": EffectThresholds(warning=0.15)}
    )
    window = WindowState.for_profile(profile)
    window.update_frame(pd.DataFrame({"x": rng.normal(loc=0.5, size=1000)}))
    compared = Comparator(profile, policy).compare(window).to_dict()
    metrics = DriftMetrics()
    metrics.window(result(compared["features"]), now=0.0)
    exported = {
        (test, level): value(
            metrics,
            "driftstream_drift_threshold",
            model="churn",
            model_version="7",
            feature="x",
            test=test,
            level=level,
        )
        for test in ("ks", "psi")
        for level in ("warning", "critical")
    }
    # psi never raises critical under this policy: no series, not a stale number.
    assert exported == {
        ("ks", "warning"): 0.07,
        ("ks", "critical"): 0.3,
        ("psi", "warning"): 0.15,
        ("psi", "critical"): None,
    }


def test_versions_without_events_lose_their_series_after_the_ttl() -> None:
    metrics = DriftMetrics(version_ttl=600.0)
    metrics.processed(Counter({("churn", "6", "processed"): 5}), Counter(), 0, [], now=0.0)
    metrics.window(result({"a": feature(0.4, "critical")}, "6"), now=0.0)
    metrics.processed(Counter({("churn", "7", "processed"): 5}), Counter(), 0, [], now=500.0)
    metrics.window(result({"a": feature(0.1, "ok")}, "7"), now=500.0)
    metrics.tick(now=700.0)
    versions = {
        dict(labels).get("model_version")
        for (name, labels), _ in samples(metrics).items()
        if name.startswith("driftstream_") and "model_version" in dict(labels)
    }
    assert versions == {"7"}
    assert metrics.versions() == {("churn", "7")}


def test_lag_firing_and_delivery_series() -> None:
    metrics = DriftMetrics()
    metrics.consumer_lag({("predictions", 0): 12, ("predictions", 1): 0})
    metrics.consumer_lag({("predictions", 1): 3})  # partition 0 revoked
    assert (
        value(metrics, "driftstream_consumer_lag_messages", topic="predictions", partition="0")
        is None
    )
    assert (
        value(metrics, "driftstream_consumer_lag_messages", topic="predictions", partition="1") == 3
    )
    metrics.firing_alerts({("drift", "churn"): 2})
    metrics.firing_alerts({})
    assert value(metrics, "driftstream_alerts_firing", rule="drift", model="churn") is None
    metrics.delivery("slack", "delivered", 3)
    assert (
        value(metrics, "driftstream_sink_deliveries_total", sink="slack", outcome="delivered") == 1
    )
    assert value(metrics, "driftstream_sink_attempts_total", sink="slack") == 3


def test_configured_sinks_have_series_from_the_start() -> None:
    metrics = DriftMetrics()
    metrics.sinks(["slack", "retrain"])
    for sink in ("slack", "retrain"):
        for outcome in ("delivered", "dead_lettered"):
            assert (
                value(metrics, "driftstream_sink_deliveries_total", sink=sink, outcome=outcome) == 0
            )
        assert value(metrics, "driftstream_sink_attempts_total", sink=sink) == 0
        assert value(metrics, "driftstream_sink_queue", sink=sink) == 0


def single(prometheus: Prometheus, expression: str, expected: float) -> None:
    """Wait until ``expression`` has exactly one sample equal to ``expected``."""
    prometheus.wait_for(
        expression,
        lambda found: len(found) == 1 and Prometheus.value(found[0]) == pytest.approx(expected),
        timeout=60,
    )


def test_prometheus_scrapes_drift_gauges_and_counters_from_a_worker(
    tmp_path: Path, broker: str, workers: list[WorkerProcess]
) -> None:
    path, config = write_config(
        tmp_path,
        broker,
        alerting={
            "rules": [
                {"kind": "feature_drift", "name": "drift", "fire_after": 1, "resolve_after": 1}
            ]
        },
    )
    built_at = datetime.now(UTC).isoformat(timespec="seconds")
    publish_reference(broker, {}, config.topics, churn_reference(built_at))
    worker = start_worker(path, workers)
    worker.wait_ready()
    simulator = ServingSimulator([CHURN], seed=3, drift_after_events=1000)
    drifted = simulator.drifted_features(CHURN.name)
    send(broker, config.topics.predictions, [*simulator.predictions(2000, START_MS, 100), b"{"])
    results = latest_results(broker, config.topics.results, 4)
    last = next(r for r in results.values() if r["window"]["id"] == 3)

    with running_prometheus([f"127.0.0.1:{worker.metrics_port}"], tmp_path) as prometheus:
        version = f'model="{CHURN.name}",model_version="{CHURN.version}"'
        single(prometheus, f'driftstream_events_total{{{version},outcome="processed"}}', 2000)
        single(prometheus, 'driftstream_dead_letters_total{reason="invalid_json"}', 1)
        single(prometheus, f"sum(driftstream_windows_total{{{version}}})", 4)
        single(prometheus, f"driftstream_window_events{{{version}}}", 500)
        for name, entry in last["features"].items():
            for test, values in entry["tests"].items():
                labels = f'{version},feature="{name}",test="{test}"'
                single(prometheus, f"driftstream_drift_statistic{{{labels}}}", values["statistic"])
                severity = {"ok": 0, "warning": 1, "critical": 2}[values["severity"]]
                single(prometheus, f"driftstream_drift_severity{{{labels}}}", severity)
        drifted_now = prometheus.query(f"driftstream_feature_severity{{{version}}} > 0")
        assert {sample["metric"]["feature"] for sample in drifted_now} == drifted
        single(prometheus, f"driftstream_drifted_features{{{version}}}", len(drifted))
        single(prometheus, 'driftstream_alert_transitions_total{rule="drift",status="firing"}', 3)
        single(prometheus, 'sum(driftstream_alerts_firing{rule="drift"})', 3)
        single(prometheus, 'driftstream_sink_deliveries_total{sink="audit",outcome="delivered"}', 3)
        single(
            prometheus,
            f'sum(driftstream_consumer_lag_messages{{topic="{config.topics.predictions}"}})',
            0,
        )
        # every owned input partition, also those that never carried a message
        for topic in (config.topics.predictions, config.topics.labels):
            single(
                prometheus,
                f'count(driftstream_consumer_lag_messages{{topic="{topic}"}} == 0)',
                config.topics.partitions,
            )
        assert prometheus.query('{__name__=~".+_created"}') == []
        single(prometheus, "driftstream_window_evaluation_seconds_count", 4)
        ages = prometheus.query(f"driftstream_reference_age_seconds{{{version}}}")
        assert len(ages) == 1
        assert 0 <= Prometheus.value(ages[0]) < 3600
