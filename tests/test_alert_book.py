"""The alert lifecycle and rule evaluation (alerting.book, alerting.observations)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from alerting.book import AlertBook
from alerting.rules import AnyRule, default_rules
from monitor.stats.decision import DriftPolicy
from schemas.alerts import AlertEvent
from schemas.outputs import ReferenceInfo, WindowBounds, WindowResult

RULE = TypeAdapter(AnyRule)


def rule(**fields: Any) -> AnyRule:
    return RULE.validate_python(fields)


def entry(
    psi: float = 0.01,
    p: float = 0.5,
    ks: float = 0.02,
    null_rate: float = 0.0,
    severity: str | None = None,
) -> dict[str, Any]:
    """A numeric feature entry as WindowResult.features holds it."""
    return {
        "kind": "numeric",
        "tests": {
            "psi": {"effect_size": psi, "statistic": psi, "adjusted_p_value": p},
            "ks": {"effect_size": ks, "statistic": ks, "adjusted_p_value": p},
        },
        "quality": {"null_rate": {"rate": null_rate}},
        "severity": severity or "ok",
    }


DRIFTED: dict[str, Any] = {"psi": 0.4, "p": 1e-6, "ks": 0.25}
MILD: dict[str, Any] = {"psi": 0.15, "p": 1e-6, "ks": 0.02}


def window(
    number: int,
    features: dict[str, dict[str, Any]] | None = None,
    n_events: int = 1000,
    performance: dict[str, Any] | None = None,
    version: str = "7",
) -> WindowResult:
    features = features if features is not None else {"a": entry(), "b": entry()}
    return WindowResult(
        model="churn",
        model_version=version,
        window=WindowBounds(kind="count", id=number),
        n_events=n_events,
        severity="ok",
        drifted_features=[],
        features=features,
        performance=performance,
        reference=ReferenceInfo(model_version=version, n_rows=5000),
        alpha=0.01,
        correction="bh",
        min_samples=100,
    )


def drifted(number: int, **kwargs: Any) -> WindowResult:
    return window(number, {"a": entry(**DRIFTED), "b": entry()}, **kwargs)


def book(*rules: AnyRule, **kwargs: Any) -> AlertBook:
    return AlertBook(list(rules), lambda model: DriftPolicy(), **kwargs)


def statuses(events: list[AlertEvent]) -> list[tuple[str, str | None]]:
    return [(e.status, e.feature) for e in events]


FEATURE = rule(kind="feature_drift", name="drift", fire_after=2, of_last=3, resolve_after=2)


def test_fires_after_k_of_n_and_resolves_after_m_clean_windows() -> None:
    alerts = book(FEATURE)
    timeline = [drifted(0), window(1), drifted(2), drifted(3), window(4), window(5), window(6)]
    seen = [statuses(alerts.observe([w], [], now=100.0 + i)) for i, w in enumerate(timeline)]
    assert seen == [
        [("pending", "a")],
        [],
        [("firing", "a")],  # 2 of the last 3
        [],  # already firing: announced once
        [],
        [("resolved", "a")],  # 2 clean windows in a row
        [],
    ]
    firing = next(e for e in alerts.outbox.values() if e.event.status == "firing").event
    assert firing.sequence == 2
    assert firing.previous_status == "pending"
    assert firing.severity == "critical"
    assert firing.window is not None
    assert firing.window.id == 2
    assert firing.features[0].tests["psi"].score == 0.4
    assert firing.features[0].tests["psi"].critical == 0.25
    assert "2 of the last 3 windows" in firing.summary


def test_a_pending_alert_clears_when_its_breaches_leave_the_span() -> None:
    alerts = book(FEATURE)
    events = [
        e for i in range(4) for e in alerts.observe([drifted(0) if i == 0 else window(i)], [], 1.0)
    ]
    assert statuses(events) == [("pending", "a"), ("cleared", "a")]


def test_cooldown_keeps_a_new_breach_pending_until_it_is_over() -> None:
    quick = rule(kind="feature_drift", name="drift", cooldown="10m")
    alerts = book(quick)
    assert statuses(alerts.observe([drifted(0)], [], now=0.0)) == [("firing", "a")]
    assert statuses(alerts.observe([window(1)], [], now=60.0)) == [("resolved", "a")]
    assert statuses(alerts.observe([drifted(2)], [], now=120.0)) == [("pending", "a")]
    assert alerts.observe([drifted(3)], [], now=300.0) == []  # still cooling down
    fired = alerts.observe([drifted(4)], [], now=60.0 + 600.0)
    assert statuses(fired) == [("firing", "a")]
    assert fired[0].sequence == 4


def test_min_severity_and_threshold_overrides_per_test_and_feature() -> None:
    critical_only = rule(kind="feature_drift", name="drift", min_severity="critical")
    assert book(critical_only).observe([window(0, {"a": entry(**MILD)})], [], 0.0) == []
    strict = rule(
        kind="feature_drift",
        name="drift",
        thresholds={"psi": {"warning": 0.12}},
        features={"b": {"psi": {"warning": 0.2}}},
    )
    events = book(strict).observe([window(0, {"a": entry(**MILD), "b": entry(**MILD)})], [], 0.0)
    assert statuses(events) == [("firing", "a")]  # b's own threshold 0.2 > 0.15
    assert events[0].features[0].tests["psi"].warning == 0.12


def test_insignificant_and_small_windows_never_breach() -> None:
    alerts = book(rule(kind="feature_drift", name="drift", min_window_events=500))
    noise: dict[str, Any] = {"psi": 0.4, "p": 0.2, "ks": 0.3}  # large but not significant
    assert alerts.observe([window(0, {"a": entry(**noise)})], [], 0.0) == []
    assert alerts.observe([drifted(1, n_events=499)], [], 0.0) == []
    insufficient = window(2, {"a": entry(**DRIFTED, severity="insufficient_data")})
    assert alerts.observe([insufficient], [], 0.0) == []
    assert statuses(alerts.observe([drifted(3)], [], 0.0)) == [("firing", "a")]


def test_dataset_drift_share() -> None:
    alerts = book(rule(kind="dataset_drift", name="dataset", share=0.5))
    features = {"a": entry(**DRIFTED), "b": entry(), "c": entry(), "d": entry()}
    assert alerts.observe([window(0, features)], [], 0.0) == []
    features["b"] = entry(**MILD)
    events = alerts.observe([window(1, features)], [], 0.0)
    assert statuses(events) == [("firing", None)]
    assert events[0].value == 0.5
    assert [f.feature for f in events[0].features] == ["a", "b"]


def test_performance_rule_waits_for_label_coverage() -> None:
    alerts = book(
        rule(kind="performance", name="acc", metric="accuracy", below=0.8, min_label_coverage=0.5)
    )
    low = {"label_coverage": 0.3, "metrics": {"accuracy": 0.6}}
    assert alerts.observe([window(0, performance=low)], [], 0.0) == []
    covered = {"label_coverage": 0.7, "metrics": {"accuracy": 0.6}}
    events = alerts.observe([window(1, performance=covered)], [], 0.0)
    assert [(e.status, e.value, e.threshold) for e in events] == [("firing", 0.6, 0.8)]
    fine = {"label_coverage": 0.9, "metrics": {"accuracy": 0.85}}
    assert statuses(alerts.observe([window(2, performance=fine)], [], 0.0)) == [("resolved", None)]


def test_regression_metric_above() -> None:
    alerts = book(rule(kind="performance", name="mae", metric="mae", above=2.0))
    worse = {"label_coverage": 1.0, "metrics": {"mae": 2.5}}
    assert alerts.observe([window(0, performance=worse)], [], 0.0)[0].summary.endswith(
        "mae 2.5 > 2"
    )


def test_data_quality_per_feature() -> None:
    alerts = book(rule(kind="data_quality", name="nulls", check="null_rate", above=0.05))
    events = alerts.observe([window(0, {"a": entry(null_rate=0.2), "b": entry()})], [], 0.0)
    assert [(e.status, e.feature, e.value) for e in events] == [("firing", "a", 0.2)]


def test_stalled_windows_and_no_events() -> None:
    alerts = book(
        rule(kind="stalled_windows", name="stalled", after=60),
        rule(kind="no_events", name="silent", after=120),
    )
    alerts.observe([window(0)], [("churn", "7")], now=0.0)
    for now in (10.0, 30.0, 50.0):
        alerts.observe([], [("churn", "7")], now=now)
    stalled = alerts.tick(now=65.0)
    assert [(e.rule, e.status, e.value) for e in stalled] == [("stalled", "firing", 65.0)]
    alerts.observe([window(1)], [("churn", "7")], now=70.0)
    assert [(e.rule, e.status) for e in alerts.tick(now=71.0)] == [("stalled", "resolved")]
    silent = alerts.tick(now=70.0 + 120.0)
    assert [(e.rule, e.status, e.model_version) for e in silent] == [("silent", "firing", None)]


def test_expired_versions_resolve_their_alerts() -> None:
    alerts = book(rule(kind="feature_drift", name="drift"), version_ttl=3600.0)
    alerts.observe([drifted(0)], [("churn", "7")], now=0.0)
    assert alerts.tick(now=1800.0) == []
    expired = alerts.tick(now=3601.0)
    assert [(e.status, e.feature) for e in expired] == [("resolved", "a")]
    assert "no longer seen" in expired[0].summary
    assert alerts.alerts == {}


def test_state_round_trip_mid_incident_creates_no_duplicate_transition() -> None:
    alerts = book(FEATURE, links={"grafana": "http://g/d?var-model={model}&w={window_id}"})
    alerts.observe([drifted(0)], [("churn", "7")], 0.0)
    fired = alerts.observe([drifted(1)], [("churn", "7")], 1.0)
    assert fired[0].links == {"grafana": "http://g/d?var-model=churn&w=1"}
    alerts.delivered(fired[0].idempotency_key, "slack", ["slack", "audit"])
    copy = book(FEATURE, links=alerts.links)
    copy.restore(json.loads(json.dumps(alerts.state())))
    assert copy.outbox.keys() == alerts.outbox.keys()
    assert copy.outbox[fired[0].idempotency_key].done == {"slack"}
    assert copy.outbox[fired[0].idempotency_key].event == fired[0]
    assert copy.observe([drifted(2)], [], 2.0) == []  # still firing after the restore
    copy.delivered(fired[0].idempotency_key, "audit", ["slack", "audit"])
    assert fired[0].idempotency_key not in copy.outbox


def test_default_rules_do_not_page_on_one_window() -> None:
    alerts = book(*default_rules())
    features = {"a": entry(**DRIFTED), "b": entry(), "c": entry()}
    assert statuses(alerts.observe([window(0, features)], [], 0.0)) == [("pending", "a")]


def test_rule_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match=r"of_last \(2\) must be >= fire_after \(3\)"):
        rule(kind="feature_drift", name="x", fire_after=3, of_last=2)
    with pytest.raises(ValidationError, match="exactly one of below or above"):
        rule(kind="performance", name="x", metric="accuracy")
    with pytest.raises(
        ValidationError, match="Input tag 'nonsense' found using 'kind' does not match"
    ):
        rule(kind="nonsense", name="x")


def test_alpha_is_split_among_a_features_verdict_tests() -> None:
    """KS and PSI both raise verdicts, so each must beat alpha / 2, as the comparator decides."""
    once = rule(kind="feature_drift", name="drift")
    between: dict[str, Any] = {"psi": 0.4, "p": 0.007, "ks": 0.25}  # < alpha, > alpha / 2
    assert book(once).observe([window(0, {"a": entry(**between)})], [], 0.0) == []
    below: dict[str, Any] = {"psi": 0.4, "p": 0.004, "ks": 0.25}
    events = book(once).observe([window(0, {"a": entry(**below)})], [], 0.0)
    assert statuses(events) == [("firing", "a")]
