"""Comparator: one window against one reference profile, every feature, one verdict.

This is where the statistics core meets the data structures: it runs each
feature's tests on a :class:`~monitor.windows.WindowState`, calibrates the
distance tests, corrects p-values across features and assigns severities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np

from monitor.errors import DriftstreamError
from monitor.reference import CategoricalProfile, NumericProfile, ReferenceProfile
from monitor.stats.chi_square import chi_square, chi_square_values
from monitor.stats.decision import (
    DriftPolicy,
    EffectThresholds,
    Severity,
    adjust_p_values,
    verdict_alpha,
    worst,
)
from monitor.stats.jensen_shannon import jensen_shannon, jensen_shannon_values
from monitor.stats.ks import ks
from monitor.stats.l_infinity import l_infinity
from monitor.stats.null import BinnedStatistic, NullDistribution
from monitor.stats.psi import psi, psi_values
from monitor.stats.quality import RateResult, rate_increase
from monitor.stats.result import TestResult, finite_or_none
from monitor.stats.wasserstein import WassersteinReference
from monitor.values import FeatureKind
from monitor.windows import CategoricalWindow, NumericWindow, WindowState

#: Tests whose p-value and threshold come from a NullDistribution: the
#: distances, and chi-square, whose asymptotic p-value is too small when
#: categories are rare in small windows and ignores the reference's noise.
CALIBRATED_TESTS = ("psi", "js", "chi2")
#: Tests reported under ``"value"`` (as well as ``"statistic"``) in JSON.
DISTANCE_TESTS = frozenset({"psi", "js", "linf", "wasserstein"})


@dataclass(frozen=True)
class FeatureComparison:
    """All results for one feature of one window."""

    name: str
    kind: FeatureKind
    n_reference: int
    n_current: int
    tests: Mapping[str, TestResult]
    adjusted_p_values: Mapping[str, float | None]
    quality: Mapping[str, RateResult]
    test_severities: Mapping[str, Severity]
    severity: Severity
    #: Each test's warning and critical effect-size thresholds (the policy's).
    effect_thresholds: Mapping[str, EffectThresholds] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``driftstream compare --json`` feature entry)."""
        tests: dict[str, dict[str, Any]] = {}
        for name, result in self.tests.items():
            entry = result.to_dict()
            if name in DISTANCE_TESTS:
                entry["value"] = finite_or_none(
                    result.effect_size if name == "wasserstein" else result.statistic
                )
            entry["adjusted_p_value"] = finite_or_none(self.adjusted_p_values.get(name))
            entry["severity"] = self.test_severities.get(name, self.severity).value
            limits = self.effect_thresholds.get(name, EffectThresholds())
            entry["effect_thresholds"] = {"warning": limits.warning, "critical": limits.critical}
            tests[name] = entry
        return {
            "kind": self.kind.value,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "tests": tests,
            "quality": {name: rate.to_dict() for name, rate in self.quality.items()},
            "severity": self.severity.value,
        }


@dataclass(frozen=True)
class Comparison:
    """Results of one window against one reference profile.

    ``prediction`` is the model output's drift (``None`` when the output
    was not compared); it is kept apart from ``features`` and does not count
    towards ``drifted_features`` or ``severity``.
    """

    model: str
    model_version: str
    n_rows: int
    features: Mapping[str, FeatureComparison]
    policy: DriftPolicy
    prediction: FeatureComparison | None = None

    @property
    def drifted_features(self) -> list[str]:
        """Features whose severity is warning or critical, in profile order."""
        flagged = {Severity.WARNING, Severity.CRITICAL}
        return [name for name, f in self.features.items() if f.severity in flagged]

    @property
    def severity(self) -> Severity:
        """The worst feature severity (``ok`` when no feature had enough data)."""
        return worst([f.severity for f in self.features.values()])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the documented ``driftstream compare --json`` output."""
        return {
            "model": self.model,
            "model_version": self.model_version,
            "n_rows": self.n_rows,
            "alpha": self.policy.alpha,
            "correction": self.policy.correction.value,
            "severity": self.severity.value,
            "features": {name: f.to_dict() for name, f in self.features.items()},
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "drifted_features": self.drifted_features,
        }


class Comparator:
    """Compares windows with one reference profile under one policy.

    Keeps the calibrated null distributions of the distance tests, so
    comparing many windows of the same size pays for calibration once.

    Examples
    --------
    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> reference = pd.DataFrame({"x": rng.normal(size=5000)})
    >>> profile = ReferenceProfile.from_frame(reference, model="m", model_version="1")
    >>> comparator = Comparator(profile)
    >>> window = WindowState.for_profile(profile)
    >>> window.update_frame(pd.DataFrame({"x": rng.normal(loc=1.0, size=500)}))
    >>> comparison = comparator.compare(window)
    >>> comparison.drifted_features, comparison.severity.value
    (['x'], 'critical')

    The model output is compared on its own, not as a feature:

    >>> reference["prediction"] = reference["x"] > 0
    >>> profile = ReferenceProfile.from_frame(reference, model="m", model_version="1")
    >>> window = WindowState.for_profile(profile)
    >>> window.update_frame(pd.DataFrame({"x": rng.normal(size=500), "prediction": True}))
    >>> comparison = Comparator(profile).compare(window, output="prediction")
    >>> list(comparison.features), comparison.severity.value, comparison.prediction.severity.value
    (['x'], 'ok', 'critical')
    """

    def __init__(self, profile: ReferenceProfile, policy: DriftPolicy | None = None) -> None:
        self.profile = profile
        self.policy = policy or DriftPolicy()
        # Keyed by what the draws depend on, so features with equal shares share them.
        self._nulls: dict[tuple[tuple[str, ...], bytes, int], NullDistribution] = {}
        # The reference side of Wasserstein, sorted and summed once per feature.
        self._wasserstein: dict[str, WassersteinReference] = {}

    def compare(
        self,
        window: WindowState,
        features: Sequence[str] | None = None,
        output: str | None = None,
    ) -> Comparison:
        """Run every feature's tests on ``window`` and decide severities.

        Parameters
        ----------
        features
            Features to compare (default: every feature of the profile).
        output
            The column of the model's output (the reference's prediction
            column). When the profile has it, it is never one of the
            features: it is compared on its own, as its own family of
            p-values, and reported as the comparison's ``prediction``.
        """
        names = list(self.profile.features if features is None else features)
        unknown = [n for n in names if n not in self.profile.features]
        if unknown:
            raise DriftstreamError(f"unknown feature(s): {', '.join(unknown)}")
        prediction = None
        if output is not None and output in self.profile.features:
            names = [name for name in names if name != output]
            prediction = self._family(window, [output])[output]
        return Comparison(
            model=self.profile.model,
            model_version=self.profile.model_version,
            n_rows=window.n_rows,
            features=self._family(window, names),
            policy=self.policy,
            prediction=prediction,
        )

    def _family(self, window: WindowState, names: list[str]) -> dict[str, FeatureComparison]:
        """Compare ``names`` with their p-values corrected as one family."""
        raw = {name: self._feature_tests(name, window) for name in names}
        enough = {name: window.features[name].n >= self.policy.min_samples for name in names}
        adjusted: dict[str, dict[str, float | None]] = {name: {} for name in names}
        test_names = {test for tests, _ in raw.values() for test in tests}
        for test in sorted(test_names):
            family = [n for n in names if test in raw[n][0] and enough[n]]
            p_values = [_p_or_nan(raw[n][0][test].p_value) for n in family]
            corrected = adjust_p_values(p_values, self.policy.correction)
            for name, value in zip(family, corrected, strict=True):
                adjusted[name][test] = None if np.isnan(value) else float(value)
        results = {}
        for name in names:
            tests, quality = raw[name]
            feature = self.profile.features[name]
            limits = {t: self.policy.thresholds.get(t, EffectThresholds()) for t in tests}
            level = verdict_alpha(self.policy.alpha, limits.values())
            test_severities = (
                {
                    t: self.policy.test_severity(t, adjusted[name].get(t), r.effect_size, level)
                    for t, r in tests.items()
                }
                if enough[name]
                else {}
            )
            severity = (
                worst(list(test_severities.values()))
                if enough[name]
                else Severity.INSUFFICIENT_DATA
            )
            results[name] = FeatureComparison(
                name=name,
                kind=feature.kind,
                n_reference=feature.n,
                n_current=window.features[name].n,
                tests=tests,
                adjusted_p_values=adjusted[name],
                quality=quality,
                test_severities=test_severities,
                severity=severity,
                effect_thresholds=limits,
            )
        return results

    def _feature_tests(
        self, name: str, window: WindowState
    ) -> tuple[dict[str, TestResult], dict[str, RateResult]]:
        feature = self.profile.features[name]
        state = window.features.get(name)
        if state is None:
            raise DriftstreamError(f"window has no state for feature {name!r}")
        epsilon = self.policy.epsilon
        n = state.n
        quality = {
            "null_rate": rate_increase(
                "null_rate", state.n_null, n + state.n_null, feature.null_rate, epsilon
            )
        }
        tests: dict[str, TestResult] = {}
        if isinstance(feature, NumericProfile) and isinstance(state, NumericWindow):
            wanted = self.policy.numeric_tests
            if "ks" in wanted:
                tests["ks"] = ks(feature.sample, state.reservoir.values)
            if "psi" in wanted:
                tests["psi"] = psi(feature.proportions, state.counts, feature.n, epsilon)
            if "wasserstein" in wanted:
                tests["wasserstein"] = self._wasserstein_reference(name, feature).distance(
                    state.reservoir.values
                )
            quality["out_of_range"] = rate_increase(
                "out_of_range", state.n_out_of_range, n, 0.0, epsilon
            )
        elif isinstance(feature, CategoricalProfile) and isinstance(state, CategoricalWindow):
            wanted = self.policy.categorical_tests
            shares = feature.proportions
            if "chi2" in wanted:
                tests["chi2"] = chi_square(shares, state.counts, feature.n, epsilon)
            if "psi" in wanted:
                tests["psi"] = psi(shares, state.counts, feature.n, epsilon)
            if "js" in wanted:
                tests["js"] = jensen_shannon(shares, state.counts, feature.n)
            if "linf" in wanted:
                tests["linf"] = l_infinity(shares, state.counts, feature.n)
            quality["unseen_categories"] = rate_increase(
                "unseen_categories", state.n_unseen, n, feature.unseen_rate, epsilon
            )
        else:
            raise DriftstreamError(f"feature {name!r}: window kind does not match the reference")
        for test in CALIBRATED_TESTS:
            if test in tests and n > 0:
                tests[test] = self._calibrated(name, test, feature.proportions, tests[test], n)
        return tests, quality

    def _wasserstein_reference(self, name: str, feature: NumericProfile) -> WassersteinReference:
        prepared = self._wasserstein.get(name)
        if prepared is None:
            prepared = WassersteinReference(feature.sample, feature.std)
            self._wasserstein[name] = prepared
        return prepared

    def _calibrated(
        self, name: str, test: str, shares: np.ndarray[Any, Any], result: TestResult, n: int
    ) -> TestResult:
        feature = self.profile.features[name]
        tests = (
            self.policy.numeric_tests
            if feature.kind is FeatureKind.NUMERIC
            else self.policy.categorical_tests
        )
        calibrated = tuple(t for t in CALIBRATED_TESTS if t in tests)
        key = (calibrated, shares.tobytes(), feature.n)
        null = self._nulls.get(key)
        if null is None:
            statistics: dict[str, BinnedStatistic] = {
                "psi": partial(psi_values, epsilon=self.policy.epsilon),
                "js": jensen_shannon_values,
                "chi2": partial(chi_square_values, epsilon=self.policy.epsilon),
            }
            null = NullDistribution(
                shares,
                feature.n,
                {t: statistics[t] for t in calibrated},
                n_resamples=self.policy.null_resamples,
                seed=self.policy.seed,
            )
            self._nulls[key] = null
        return replace(
            result,
            p_value=null.p_value(test, result.statistic, n),
            threshold=null.threshold(test, n, self.policy.alpha),
        )


def _p_or_nan(value: float | None) -> float:
    return float("nan") if value is None else value
