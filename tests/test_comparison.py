"""Comparator: verdicts on realistic windows, default false-alarm rate, edge cases."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from monitor.comparison import Comparator
from monitor.errors import DriftstreamError
from monitor.reference import ReferenceProfile
from monitor.stats.decision import Correction, DriftPolicy, Severity
from monitor.stats.ks import ks
from monitor.stats.psi import psi
from monitor.windows import WindowState

N_NUMERIC, N_CATEGORICAL = 20, 5
CATEGORY_SHARES = np.array([0.4, 0.25, 0.15, 0.1, 0.06, 0.04])


def population(
    rng: np.random.Generator, n: int, shifted: frozenset[str] = frozenset()
) -> pd.DataFrame:
    """Rows from a fixed mix of shapes: normal, skewed, heavy ties, uniform, categorical."""
    columns: dict[str, np.ndarray] = {}
    for i in range(N_NUMERIC):
        name = f"num{i}"
        shift = 0.5 if name in shifted else 0.0
        match i % 4:
            case 0:
                columns[name] = rng.normal(shift, 1.0, n)
            case 1:
                columns[name] = rng.lognormal(shift, 0.8, n)
            case 2:
                columns[name] = np.round(rng.normal(shift * 3, 3.0, n))  # ties, >20 values
            case _:
                columns[name] = rng.uniform(shift, 1.0 + shift, n)
    for j in range(N_CATEGORICAL):
        name = f"cat{j}"
        shares = CATEGORY_SHARES
        if name in shifted:
            shares = np.array([0.2, 0.2, 0.2, 0.2, 0.1, 0.1])  # PSI ~ 0.31
        columns[name] = rng.choice(np.array(list("abcdef"), dtype=object), n, p=shares)
    return pd.DataFrame(columns)


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    """A 20k-row reference of the population."""
    return ReferenceProfile.from_frame(population(np.random.default_rng(0), 20_000), "m", "1")


def window_of(profile: ReferenceProfile, frame: pd.DataFrame) -> WindowState:
    """A window state holding ``frame``."""
    window = WindowState.for_profile(profile)
    window.update_frame(frame)
    return window


def test_defaults_keep_false_alarms_rare_with_many_features_and_small_windows(
    profile: ReferenceProfile,
) -> None:
    """Healthy windows of 100-1000 rows, 25 features: at most 1 window in 30 raises anything.

    A fixed PSI >= 0.1 rule, by contrast, fires on most 100-row windows; the
    calibrated null plus multiple-testing correction is what prevents that.
    """
    comparator = Comparator(profile)
    rng = np.random.default_rng(1)
    alarms, naive_alarms, windows = 0, 0, 0
    for size in (100, 300, 1000):
        for _ in range(100):
            comparison = comparator.compare(window_of(profile, population(rng, size)))
            windows += 1
            alarms += bool(comparison.drifted_features)
            naive_alarms += any(
                f.tests["psi"].statistic >= 0.1 for f in comparison.features.values()
            )
    # alpha = 0.01 per test family, two families per feature: about 2% expected.
    assert alarms <= windows / 30, f"{alarms} of {windows} healthy windows raised drift"
    assert naive_alarms >= windows // 4


def test_real_shifts_are_caught_and_only_there(profile: ReferenceProfile) -> None:
    """Half-sigma shifts (PSI ~ 0.25) in two numeric features and a categorical one are flagged."""
    comparator = Comparator(profile)
    rng = np.random.default_rng(2)
    shifted = frozenset({"num0", "num5", "cat1"})
    for _ in range(10):
        comparison = comparator.compare(window_of(profile, population(rng, 500, shifted)))
        assert set(comparison.drifted_features) == shifted


def test_window_below_min_samples_is_insufficient_data(profile: ReferenceProfile) -> None:
    """Tiny and empty windows give insufficient_data, never a verdict, and valid JSON."""
    comparator = Comparator(profile)
    for size in (0, 1, 99):
        comparison = comparator.compare(
            window_of(profile, population(np.random.default_rng(3), size))
        )
        severities = {f.severity for f in comparison.features.values()}
        assert severities == {Severity.INSUFFICIENT_DATA}
        assert comparison.drifted_features == []
        json.dumps(comparison.to_dict(), allow_nan=False)
    empty = comparator.compare(WindowState.for_profile(profile)).features["num0"]
    assert np.isnan(empty.tests["ks"].statistic)
    assert empty.to_dict()["tests"]["ks"]["statistic"] is None


def edge_profile() -> ReferenceProfile:
    """Reference with a constant column, heavy ties, infinities and categories."""
    rng = np.random.default_rng(4)
    n = 2000
    with_inf = rng.normal(size=n)
    with_inf[:20] = np.inf
    with_inf[20:30] = -np.inf
    frame = pd.DataFrame(
        {
            "constant": np.full(n, 5.5),
            "ties": rng.choice([0.5, 1.5, 2.5], n),
            "with_inf": with_inf,
            "mostly_null": np.where(rng.random(n) < 0.5, np.nan, rng.normal(size=n)),
            "color": rng.choice(["red", "green", "blue"], n),
        }
    )
    return ReferenceProfile.from_frame(frame, "edge", "1")


def test_constant_column_flags_only_a_real_change() -> None:
    """A constant reference: same constant is ok, another value is critical."""
    profile = edge_profile()
    comparator = Comparator(profile)
    same = comparator.compare(window_of(profile, pd.DataFrame({"constant": np.full(300, 5.5)})))
    assert same.features["constant"].severity is Severity.OK
    other = comparator.compare(window_of(profile, pd.DataFrame({"constant": np.full(300, 6.5)})))
    assert other.features["constant"].severity is Severity.CRITICAL
    assert other.features["constant"].quality["out_of_range"].rate == 1.0


def test_all_nan_window_column_is_a_quality_signal_not_a_drift_verdict() -> None:
    """An all-NaN column: insufficient data for drift, null rate 1 with a tiny p-value."""
    profile = edge_profile()
    comparison = Comparator(profile).compare(
        window_of(profile, pd.DataFrame({"ties": np.full(400, np.nan)}))
    )
    feature = comparison.features["ties"]
    assert feature.severity is Severity.INSUFFICIENT_DATA
    assert feature.quality["null_rate"].rate == 1.0
    assert feature.quality["null_rate"].p_value < 1e-100
    assert comparison.features["mostly_null"].quality["null_rate"].reference_rate == pytest.approx(
        0.5, abs=0.05
    )


def test_infinities_and_unseen_categories_are_counted() -> None:
    """±inf sit in the outer bins and out of range; unseen categories raise their rate."""
    profile = edge_profile()
    rng = np.random.default_rng(5)
    values = rng.normal(size=500)
    values[:100] = np.inf
    colors = rng.choice(["red", "green", "blue", "purple"], 500, p=[0.3, 0.3, 0.2, 0.2])
    window = window_of(profile, pd.DataFrame({"with_inf": values, "color": colors}))
    comparison = Comparator(profile).compare(window)
    with_inf = comparison.features["with_inf"]
    assert with_inf.quality["out_of_range"].count == 100
    assert "with_inf" in comparison.drifted_features
    color = comparison.features["color"]
    assert color.quality["unseen_categories"].count == int(np.sum(colors == "purple"))
    assert color.quality["unseen_categories"].p_value < 1e-10
    assert color.severity is Severity.CRITICAL
    assert color.tests["chi2"].bins == 4


def test_heavy_ties_same_distribution_is_ok() -> None:
    """Three-valued data from the same shares does not drift."""
    profile = edge_profile()
    rng = np.random.default_rng(6)
    window = window_of(profile, pd.DataFrame({"ties": rng.choice([0.5, 1.5, 2.5], 1000)}))
    assert Comparator(profile).compare(window).features["ties"].severity is Severity.OK


def test_feature_selection_and_unknown_feature(profile: ReferenceProfile) -> None:
    """Only the asked features are compared; an unknown one is a clear error."""
    comparator = Comparator(profile)
    window = window_of(profile, population(np.random.default_rng(7), 200))
    assert list(comparator.compare(window, ["num1", "cat0"]).features) == ["num1", "cat0"]
    with pytest.raises(DriftstreamError, match=r"^unknown feature\(s\): nope$"):
        comparator.compare(window, ["nope"])


def flagged_by_hand(
    p_values: dict[str, float], effects: dict[str, float], floor: float, correction: Correction
) -> set[str]:
    """Features one test flags at alpha 0.01, by the textbook corrections (not the project's).

    Bonferroni: ``p * m < alpha``. Benjamini-Hochberg: every feature up to
    the largest rank ``r`` (of ``m`` p-values, smallest first) with
    ``p_(r) * m / r < alpha``. Either way the effect size must reach ``floor``.
    """
    alpha, m = 0.01, len(p_values)
    ranked = sorted(p_values, key=p_values.__getitem__)
    if correction is Correction.BONFERRONI:
        significant = [name for name in ranked if p_values[name] * m < alpha]
    else:
        cut = max(
            (r for r, name in enumerate(ranked, 1) if p_values[name] * m / r < alpha), default=0
        )
        significant = ranked[:cut]
    return {name for name in significant if effects[name] >= floor}


def test_bh_flags_a_marginal_shift_that_bonferroni_misses(profile: ReferenceProfile) -> None:
    """Bonferroni flags a subset of BH's features, here a strict one, for a known reason.

    Only KS (numeric) and chi-square (categorical) decide, so the verdicts
    follow from scipy's p-values. num0, num1 and num3 are shifted by half a
    sigma and cat0's shares moved: tiny p-values, flagged under both. num4 is
    shifted by a quarter sigma: its KS p-value (about 1e-3, D about 0.11) is
    above Bonferroni's cut alpha / m = 0.01 / 20 but, as the 4th smallest of
    the 20 KS p-values, below BH's cut 4 * alpha / m = 0.002. Nothing else is
    anywhere near either cut.
    """
    rng = np.random.default_rng(38)
    frame = population(rng, 300, frozenset({"num0", "num1", "num3", "cat0"}))
    frame["num4"] = rng.normal(0.25, 1.0, 300)
    window = window_of(profile, frame)
    reference = population(np.random.default_rng(0), 20_000)  # the profile's rows
    numeric = [f"num{i}" for i in range(N_NUMERIC)]
    ks_results = {name: stats.ks_2samp(reference[name], frame[name]) for name in numeric}
    ks_p = {name: float(result.pvalue) for name, result in ks_results.items()}
    ks_d = {name: float(result.statistic) for name, result in ks_results.items()}
    chi2_p, chi2_w = {}, {}
    for name in (f"cat{j}" for j in range(N_CATEGORICAL)):
        categories = sorted(set(reference[name]))  # every category of the reference; no unseen
        shares = np.array([np.mean(reference[name] == c) for c in categories])
        observed = np.array([np.sum(frame[name] == c) for c in categories])
        result = stats.chisquare(observed, shares * len(frame))
        chi2_p[name] = float(result.pvalue)
        chi2_w[name] = float(np.sqrt(result.statistic / len(frame)))
    assert 0.01 / 20 < ks_p["num4"] < 4 * 0.01 / 20
    assert ks_d["num4"] >= 0.1
    assert sorted(ks_p, key=ks_p.__getitem__)[:4] == ["num3", "num1", "num0", "num4"]
    expected = {
        correction: flagged_by_hand(ks_p, ks_d, 0.025, correction)
        | flagged_by_hand(chi2_p, chi2_w, 0.3, correction)
        for correction in (Correction.BONFERRONI, Correction.BENJAMINI_HOCHBERG)
    }
    assert expected[Correction.BONFERRONI] == {"num0", "num1", "num3", "cat0"}
    assert expected[Correction.BENJAMINI_HOCHBERG] == {"num0", "num1", "num3", "num4", "cat0"}
    for correction, features in expected.items():
        policy = DriftPolicy(
            correction=correction, numeric_tests=("ks",), categorical_tests=("chi2",)
        )
        comparison = Comparator(profile, policy).compare(window)
        assert set(comparison.drifted_features) == features, correction
        for name in numeric:
            assert comparison.features[name].tests["ks"].p_value == pytest.approx(
                ks_p[name], rel=1e-9
            )


def test_bonferroni_is_never_more_permissive_than_bh(profile: ReferenceProfile) -> None:
    """Under the default tests, the same window flags a subset of features under Bonferroni.

    num2 is shifted by half a sigma (heavily tied values) and cat1's shares
    moved: both are flagged under either correction, and nothing else.
    """
    window = window_of(
        profile, population(np.random.default_rng(8), 300, frozenset({"num2", "cat1"}))
    )
    bh = Comparator(profile).compare(window)
    bonferroni = Comparator(profile, DriftPolicy(correction=Correction.BONFERRONI)).compare(window)
    assert set(bonferroni.drifted_features) <= set(bh.drifted_features)
    assert set(bonferroni.drifted_features) == set(bh.drifted_features) == {"num2", "cat1"}


shares_and_counts = st.integers(2, 12).flatmap(
    lambda k: st.tuples(
        hnp.arrays(np.float64, k, elements=st.one_of(st.just(0.0), st.floats(1e-9, 1.0))).filter(
            lambda a: a.sum() > 0
        ),
        hnp.arrays(np.int64, k, elements=st.integers(0, 1000)).filter(lambda a: a.sum() > 0),
        st.permutations(range(k)),
    )
)


@given(shares_and_counts)
@settings(max_examples=300, deadline=None)
def test_psi_is_non_negative_and_bin_order_invariant(
    data: tuple[np.ndarray, np.ndarray, list[int]],
) -> None:
    """PSI >= 0, and reordering bins on both sides together does not change it."""
    raw_shares, counts, order = data
    shares = raw_shares / raw_shares.sum()
    value = psi(shares, counts, 100).statistic
    assert value >= 0
    assert psi(shares[order], counts[order], 100).statistic == pytest.approx(
        value, rel=1e-12, abs=1e-15
    )


@given(hnp.arrays(np.int64, st.integers(2, 12), elements=st.integers(1, 50)), st.integers(1, 20))
@settings(max_examples=200, deadline=None)
def test_psi_is_zero_on_identical_distributions(base: np.ndarray, scale: int) -> None:
    """Window counts proportional to the reference shares give PSI 0."""
    assert psi(base / base.sum(), base * scale, 100).statistic == pytest.approx(0.0, abs=1e-12)


@given(
    hnp.arrays(np.float64, st.integers(1, 300), elements=st.floats(-1e6, 1e6)),
    st.randoms(use_true_random=False),
)
@settings(max_examples=100, deadline=None)
def test_ks_ignores_window_order(values: np.ndarray, shuffler: random.Random) -> None:
    """Shuffling the window (in an order hypothesis picks) does not change KS."""
    reference = np.sort(np.random.default_rng(0).normal(size=200) * 1e5)
    shuffled = values.tolist()
    shuffler.shuffle(shuffled)
    assert ks(reference, values) == ks(reference, np.array(shuffled))
