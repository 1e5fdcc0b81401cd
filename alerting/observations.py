"""What each rule sees in a window result: one :class:`Observation` per alert it judges.

Pure functions from a :class:`~schemas.outputs.WindowResult` (or the
worker's activity clock) to breached / clean observations. The lifecycle
(:mod:`alerting.book`) turns sequences of observations into transitions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from alerting.rules import (
    DataQualityRule,
    DatasetDriftRule,
    FeatureDriftRule,
    PerformanceRule,
    RuleThresholds,
    WindowRule,
)
from monitor.stats.decision import DriftPolicy, EffectThresholds, verdict_alpha
from schemas.alerts import AlertSeverity, FeatureBreach, TestScore
from schemas.outputs import WindowBounds, WindowResult

_RANK = {"ok": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Observation:
    """One rule's verdict on one alert identity at one moment."""

    rule: str
    model: str
    model_version: str | None
    feature: str | None
    breached: bool
    severity: AlertSeverity
    #: What was seen, e.g. ``psi 0.41 >= 0.25``, for summaries.
    detail: str
    window: WindowBounds | None = None
    value: float | None = None
    threshold: float | None = None
    features: tuple[FeatureBreach, ...] = ()


def window_observations(
    rule: WindowRule, result: WindowResult, policy: DriftPolicy
) -> Iterator[Observation]:
    """Observations of ``rule`` on one closed window (none if it does not apply).

    ``policy`` is the model's drift policy: its thresholds are the defaults
    a feature-drift rule overrides.

    Examples
    --------
    >>> from alerting.rules import PerformanceRule
    >>> from schemas.outputs import ReferenceInfo
    >>> rule = PerformanceRule(kind="performance", name="acc", metric="accuracy", below=0.8)
    >>> result = WindowResult(
    ...     model="churn", model_version="7", window=WindowBounds(kind="count", id=3),
    ...     n_events=1000, severity="ok", drifted_features=[], features={},
    ...     reference=ReferenceInfo(model_version="7", n_rows=5000),
    ...     alpha=0.01, correction="bh", min_samples=100,
    ...     performance={"label_coverage": 0.9, "metrics": {"accuracy": 0.72}},
    ... )
    >>> [(o.breached, o.value, o.detail) for o in window_observations(rule, result, DriftPolicy())]
    [(True, 0.72, 'accuracy 0.72 < 0.8')]
    """
    if not rule.applies_to(result.model) or result.n_events < rule.min_window_events:
        return
    if isinstance(rule, FeatureDriftRule):
        yield from _feature_drift(rule, result, policy)
    elif isinstance(rule, DatasetDriftRule):
        yield from _dataset_drift(rule, result, policy)
    elif isinstance(rule, PerformanceRule):
        yield from _performance(rule, result)
    elif isinstance(rule, DataQualityRule):
        yield from _data_quality(rule, result)


def feature_breach(
    name: str,
    entry: Mapping[str, Any],
    alpha: float,
    thresholds_of: Callable[[str], EffectThresholds],
) -> FeatureBreach | None:
    """Score every test of a feature entry; ``None`` if no test raised a severity.

    A test's severity needs its adjusted p-value below ``alpha`` split
    among the feature's verdict tests (:func:`verdict_alpha`; tests without
    a p-value never raise) and its effect size at or above a threshold,
    exactly as the comparator decides with :meth:`DriftPolicy.test_severity`.
    """
    tests: dict[str, TestScore] = {}
    entries = entry.get("tests") or {}
    level = verdict_alpha(alpha, [thresholds_of(test) for test in entries])
    for test, values in entries.items():
        limits = thresholds_of(test)
        p_value = values.get("adjusted_p_value")
        score = values.get("effect_size")
        severity: Literal["ok", "warning", "critical"] = "ok"
        if p_value is not None and p_value < level and score is not None:
            if limits.critical is not None and score >= limits.critical:
                severity = "critical"
            elif limits.warning is not None and score >= limits.warning:
                severity = "warning"
        tests[test] = TestScore(
            score=score,
            warning=limits.warning,
            critical=limits.critical,
            p_value=p_value,
            severity=severity,
        )
    worst = max((score.severity for score in tests.values()), key=_RANK.__getitem__, default="ok")
    if worst == "ok":
        return None
    return FeatureBreach(feature=name, severity=worst, tests=tests)


def _evaluated(result: WindowResult) -> dict[str, dict[str, Any]]:
    return {
        name: entry
        for name, entry in result.features.items()
        if entry.get("severity") != "insufficient_data"
    }


def _feature_drift(
    rule: FeatureDriftRule, result: WindowResult, policy: DriftPolicy
) -> Iterator[Observation]:
    for name, entry in _evaluated(result).items():

        def thresholds_of(test: str, name: str = name) -> EffectThresholds:
            limits = policy.thresholds.get(test, EffectThresholds())
            for override in (rule.thresholds.get(test), rule.features.get(name, {}).get(test)):
                limits = _merged(limits, override)
            return limits

        breach = feature_breach(name, entry, result.alpha, thresholds_of)
        breached = breach is not None and _RANK[breach.severity] >= _RANK[rule.min_severity]
        yield Observation(
            rule=rule.name,
            model=result.model,
            model_version=result.model_version,
            feature=name,
            breached=breached,
            severity=breach.severity if breach is not None else rule.min_severity,
            detail=_test_detail(breach) if breach is not None else "no drift",
            window=result.window,
            features=(breach,) if breach is not None and breached else (),
        )


def _dataset_drift(
    rule: DatasetDriftRule, result: WindowResult, policy: DriftPolicy
) -> Iterator[Observation]:
    evaluated = _evaluated(result)
    if not evaluated:
        return

    def thresholds_of(test: str) -> EffectThresholds:
        return policy.thresholds.get(test, EffectThresholds())

    breaches = [
        breach
        for name, entry in evaluated.items()
        if (breach := feature_breach(name, entry, result.alpha, thresholds_of)) is not None
    ]
    share = len(breaches) / len(evaluated)
    yield Observation(
        rule=rule.name,
        model=result.model,
        model_version=result.model_version,
        feature=None,
        breached=share >= rule.share,
        severity=rule.severity,
        detail=f"{len(breaches)} of {len(evaluated)} features drifted ({share:.0%})",
        window=result.window,
        value=share,
        threshold=rule.share,
        features=tuple(breaches),
    )


def _performance(rule: PerformanceRule, result: WindowResult) -> Iterator[Observation]:
    performance = result.performance or {}
    coverage = performance.get("label_coverage")
    value = (performance.get("metrics") or {}).get(rule.metric)
    if value is None or coverage is None or coverage < rule.min_label_coverage:
        return
    if rule.below is not None:
        breached, limit, sign = value < rule.below, rule.below, "<" if value < rule.below else ">="
    else:
        assert rule.above is not None  # one limit is set (validated)
        breached, limit, sign = value > rule.above, rule.above, ">" if value > rule.above else "<="
    yield Observation(
        rule=rule.name,
        model=result.model,
        model_version=result.model_version,
        feature=None,
        breached=breached,
        severity=rule.severity,
        detail=f"{rule.metric} {value:.4g} {sign} {limit:.4g}",
        window=result.window,
        value=float(value),
        threshold=limit,
    )


def _data_quality(rule: DataQualityRule, result: WindowResult) -> Iterator[Observation]:
    for name, entry in result.features.items():
        if rule.features is not None and name not in rule.features:
            continue
        rate = ((entry.get("quality") or {}).get(rule.check) or {}).get("rate")
        if rate is None:
            continue
        breached = rate > rule.above
        yield Observation(
            rule=rule.name,
            model=result.model,
            model_version=result.model_version,
            feature=name,
            breached=breached,
            severity=rule.severity,
            detail=f"{rule.check} {rate:.2%} {'>' if breached else '<='} {rule.above:.2%}",
            window=result.window,
            value=float(rate),
            threshold=rule.above,
        )


def _merged(limits: EffectThresholds, override: RuleThresholds | None) -> EffectThresholds:
    if override is None:
        return limits
    return EffectThresholds(
        warning=limits.warning if override.warning is None else override.warning,
        critical=limits.critical if override.critical is None else override.critical,
    )


def _test_detail(breach: FeatureBreach) -> str:
    parts = []
    for test, score in breach.tests.items():
        if score.severity == "ok" or score.score is None:
            continue
        limit = score.critical if score.severity == "critical" else score.warning
        parts.append(f"{test} {score.score:.3g} >= {limit:.3g}")
    return ", ".join(parts)
