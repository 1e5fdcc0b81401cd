"""Multiple-testing correction, calibrated null thresholds and severities."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.stats.decision import (
    Correction,
    DriftPolicy,
    EffectThresholds,
    Severity,
    adjust_p_values,
    verdict_alpha,
    worst,
)
from monitor.stats.jensen_shannon import jensen_shannon_values
from monitor.stats.null import NullDistribution
from monitor.stats.psi import psi_values

p_value_lists = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=40)


def benjamini_hochberg_by_hand(p: np.ndarray) -> np.ndarray:
    """Textbook BH step-up adjusted p-values, written independently of scipy."""
    m = p.size
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted


@given(p_value_lists)
@settings(max_examples=200, deadline=None)
def test_bh_equals_the_textbook_procedure(p_values: list[float]) -> None:
    """Benjamini-Hochberg adjusted p-values equal a hand-written step-up."""
    p = np.array(p_values)
    np.testing.assert_allclose(
        adjust_p_values(p_values, Correction.BENJAMINI_HOCHBERG),
        benjamini_hochberg_by_hand(p),
        rtol=1e-12,
        atol=1e-15,
    )


@given(p_value_lists)
@settings(max_examples=200, deadline=None)
def test_bonferroni_and_ordering(p_values: list[float]) -> None:
    """Bonferroni is min(1, p m); every adjustment is >= the raw p and <= 1."""
    p = np.array(p_values)
    bonferroni = adjust_p_values(p_values, Correction.BONFERRONI)
    np.testing.assert_allclose(bonferroni, np.minimum(1.0, p * p.size))
    bh = adjust_p_values(p_values, Correction.BENJAMINI_HOCHBERG)
    assert np.all(bh >= p - 1e-15)
    assert np.all(bh <= bonferroni + 1e-15)
    np.testing.assert_array_equal(adjust_p_values(p_values, Correction.NONE), p)


def test_nan_p_values_stay_out_of_the_family() -> None:
    """A test without a p-value neither gets one nor enlarges the family."""
    adjusted = adjust_p_values([0.01, float("nan"), 0.02], Correction.BONFERRONI)
    assert np.isnan(adjusted[1])
    np.testing.assert_allclose(adjusted[[0, 2]], [0.02, 0.04])


def test_null_threshold_is_the_resampled_quantile_and_cached() -> None:
    """The threshold is the (1 - alpha) quantile of independent resamples, cached per n."""
    shares = np.array([0.1, 0.2, 0.3, 0.4])
    null = NullDistribution(shares, 50_000, {"psi": psi_values}, n_resamples=4000, seed=7)
    first = null.draws("psi", 200)
    assert null.draws("psi", 200) is first
    rng = np.random.default_rng(123)
    ref = rng.multinomial(50_000, shares, size=4000) / 50_000
    independent = psi_values(ref, rng.multinomial(200, shares, size=4000))
    expected = np.quantile(independent, 0.95)
    assert null.threshold("psi", 200, 0.05) == pytest.approx(expected, rel=0.1)
    assert null.threshold("psi", 2000, 0.05) < null.threshold("psi", 200, 0.05) / 5


def test_null_p_value_is_uniform_under_the_null() -> None:
    """Under no drift the calibrated p-value falls below alpha about alpha of the time."""
    shares = np.full(10, 0.1)
    null = NullDistribution(shares, None, {"psi": psi_values}, n_resamples=2000, seed=1)
    rng = np.random.default_rng(99)
    observed = psi_values(shares, rng.multinomial(150, shares, size=2000))
    p = np.array([null.p_value("psi", float(v), 150) for v in observed])
    assert 0.03 < np.mean(p < 0.05) < 0.07
    assert p.min() >= 1 / 2001


def test_null_draws_depend_only_on_seed_and_n() -> None:
    """Asking for sizes in another order gives the same draws."""
    shares = np.array([0.5, 0.3, 0.2])
    statistics = {"js": jensen_shannon_values, "psi": psi_values}
    a = NullDistribution(shares, 1000, statistics, n_resamples=500, seed=3)
    b = NullDistribution(shares, 1000, statistics, n_resamples=500, seed=3)
    a.draws("js", 10)
    np.testing.assert_array_equal(a.draws("js", 99), b.draws("js", 99))
    c = NullDistribution(shares, 1000, statistics, n_resamples=500, seed=4)
    assert not np.array_equal(c.draws("js", 99), b.draws("js", 99))


def test_severity_needs_significance_and_effect() -> None:
    """Warning/critical only when adjusted p < alpha and the effect reaches the threshold."""
    policy = DriftPolicy(alpha=0.01)
    assert policy.test_severity("ks", 0.001, 0.15) is Severity.WARNING
    assert policy.test_severity("ks", 0.001, 0.25) is Severity.CRITICAL
    assert policy.test_severity("ks", 0.02, 0.9) is Severity.OK
    assert policy.test_severity("ks", None, 0.9) is Severity.OK
    assert policy.test_severity("psi", 0.001, 0.003) is Severity.OK
    assert policy.test_severity("js", 0.0, 1.0) is Severity.OK  # reported only
    custom = DriftPolicy(thresholds={"js": EffectThresholds(warning=0.1)})
    assert custom.test_severity("js", 0.0, 0.2) is Severity.WARNING


def test_policy_rejects_bad_settings() -> None:
    """Bad policies fail when built, naming the problem."""
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\), got 1\.5"):
        DriftPolicy(alpha=1.5)
    with pytest.raises(ValueError, match="unknown tests: nope"):
        DriftPolicy(numeric_tests=("ks", "nope"))
    with pytest.raises(
        ValueError, match=r"critical threshold 0\.1 is below warning threshold 0\.3"
    ):
        EffectThresholds(warning=0.3, critical=0.1)


def test_worst_ignores_insufficient_data() -> None:
    """The window severity is the worst drift severity; no data is not drift."""
    assert worst([Severity.INSUFFICIENT_DATA, Severity.WARNING]) is Severity.WARNING
    assert worst([Severity.INSUFFICIENT_DATA]) is Severity.OK


def test_verdict_alpha_splits_alpha_among_tests_with_thresholds() -> None:
    """Only tests that can raise a verdict take a share of alpha; none at all keeps alpha."""
    assert (
        verdict_alpha(0.01, [EffectThresholds(0.1, 0.2), EffectThresholds(critical=0.3)]) == 0.005
    )
    assert verdict_alpha(0.01, [EffectThresholds(0.1), EffectThresholds()]) == 0.01
    assert verdict_alpha(0.01, []) == 0.01
    policy = DriftPolicy()
    assert policy.test_severity("ks", 0.007, 0.5) is Severity.CRITICAL
    assert policy.test_severity("ks", 0.007, 0.5, level=0.005) is Severity.OK
