"""Our statistics equal scipy's and evidently's on the same data."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats
from scipy.spatial import distance

from monitor.stats.binning import bin_counts, proportions, quantile_edges
from monitor.stats.chi_square import chi_square, chi_square_values, expected_shares
from monitor.stats.jensen_shannon import jensen_shannon
from monitor.stats.ks import ks, max_ecdf_gap
from monitor.stats.l_infinity import l_infinity
from monitor.stats.psi import psi
from monitor.stats.quality import rate_increase
from monitor.stats.wasserstein import WassersteinReference, wasserstein

TIE_VALUES = [-np.inf, -1.0, 0.0, 0.5, 1.0, 2.0, np.inf]
SIZES = [(30, 40), (500, 200), (5000, 2000), (10_000, 10_000), (20_000, 3000), (50_000, 50_000)]


def seeded_pairs() -> Iterator[tuple[int, int, int]]:
    """Seeds and sizes covering scipy's exact (<= 10k) and asymptotic paths."""
    for seed in range(4):
        for n_ref, n_cur in SIZES:
            yield seed, n_ref, n_cur


@pytest.mark.parametrize(("seed", "n_ref", "n_cur"), list(seeded_pairs()))
def test_ks_equals_scipy_ks_2samp(seed: int, n_ref: int, n_cur: int) -> None:
    """KS D and p-value equal ks_2samp to rtol 1e-9, continuous and tied data."""
    rng = np.random.default_rng(seed)
    shift = [0.0, 0.05, 0.2, 1.0][seed]
    for reference, current in (
        (rng.normal(size=n_ref), rng.normal(loc=shift, size=n_cur)),
        (rng.integers(0, 7, n_ref).astype(float), rng.integers(0, 8, n_cur).astype(float)),
    ):
        ours = ks(np.sort(reference), current)
        theirs = stats.ks_2samp(reference, current)
        assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-9, abs=0)
        assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)
        assert (ours.n_reference, ours.n_current) == (n_ref, n_cur)


def test_ks_keeps_infinities_and_drops_nan_like_scipy_on_the_rest() -> None:
    """±inf are values; NaN is left out of the window before testing."""
    reference = np.sort(np.array([-np.inf, 0.0, 1.0, 2.0, np.inf] * 20))
    current = np.array([0.5, np.nan, np.inf, -np.inf, 3.0] * 20)
    ours = ks(reference, current)
    theirs = stats.ks_2samp(reference, current[~np.isnan(current)])
    assert ours.n_current == 80
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9)


def documented_chi_square_counts(
    reference_shares: Sequence[float], counts: Sequence[int], epsilon: float = 1e-4
) -> tuple[list[float], list[float]]:
    """Observed and expected counts by the README's definition, bin by bin.

    Written from the documentation, not from ``expected_shares``: a bin empty
    on both sides is dropped; a bin the reference never saw but the window
    did gets share ``epsilon``; the kept shares are renormalised to sum to 1
    and the expected count is ``n`` times the share.
    """
    kept = [
        (float(count), share if share > 0 else epsilon)
        for share, count in zip(reference_shares, counts, strict=True)
        if share > 0 or count > 0
    ]
    n = math.fsum(count for count, _ in kept)
    total = math.fsum(share for _, share in kept)
    return [count for count, _ in kept], [n * share / total for _, share in kept]


def test_chi_square_drops_empty_bins_and_gives_unseen_categories_epsilon() -> None:
    """A hand-checked case: a category the reference never saw, one empty on both sides.

    Bins: a (0.5), b (reference never saw it, 3 in the window), c (0.3),
    d (0.2, none in the window: kept), e (empty on both sides: dropped) and
    the unseen bin (7 in the window). Expected shares: 0.5, 1e-4, 0.3, 0.2,
    1e-4 over their sum 1.0002, so 5 bins and 4 degrees of freedom.
    """
    reference_shares = [0.5, 0.0, 0.3, 0.2, 0.0, 0.0]
    counts = [40, 3, 30, 0, 0, 7]
    observed = [40, 3, 30, 0, 7]
    expected = [80 * share / 1.0002 for share in (0.5, 1e-4, 0.3, 0.2, 1e-4)]
    documented_observed, documented_expected = documented_chi_square_counts(
        reference_shares, counts
    )
    assert documented_observed == observed
    assert documented_expected == pytest.approx(expected, rel=1e-15)
    theirs = stats.chisquare(observed, expected)
    pearson = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    assert theirs.statistic == pytest.approx(pearson, rel=1e-12)
    assert theirs.pvalue == pytest.approx(stats.chi2.sf(pearson, df=4), rel=1e-12)
    ours = chi_square(reference_shares, counts, n_reference=1000)
    assert (ours.bins, ours.n_current) == (5, 80)
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)
    assert ours.effect_size == pytest.approx(math.sqrt(theirs.statistic / 80), rel=1e-12)
    # The unseen categories dominate: 3 and 7 values where 0.008 were expected.
    assert ours.statistic > 7000


@pytest.mark.parametrize("seed", range(30))
def test_chi_square_equals_scipy_chisquare(seed: int) -> None:
    """Chi-square statistic and p-value equal scipy.stats.chisquare on the documented counts.

    Random shares with some categories the reference never saw (in the
    middle and the unseen bin last) and random window counts with some
    categories left empty, so bins empty on both sides, bins empty in the
    window only and categories only the window saw all occur.
    """
    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 12))
    reference_shares = np.append(rng.dirichlet(np.ones(k)), 0.0)  # the unseen bin last
    reference_shares[rng.choice(k, size=int(rng.integers(0, 3)), replace=False)] = 0.0
    reference_shares /= reference_shares.sum()
    counts = rng.multinomial(int(rng.integers(20, 5000)), rng.dirichlet(np.ones(k + 1)))
    counts[rng.choice(k + 1, size=int(rng.integers(0, 3)), replace=False)] = 0
    observed, expected = documented_chi_square_counts(reference_shares.tolist(), counts.tolist())
    ours = chi_square(reference_shares, counts, n_reference=10_000)
    assert ours.bins == len(observed)
    if len(observed) < 2:
        assert (ours.statistic, ours.p_value) == (0.0, 1.0)
        return
    theirs = stats.chisquare(observed, expected)
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)
    assert ours.effect_size == pytest.approx(np.sqrt(theirs.statistic / counts.sum()))
    # The vectorised statistic the calibrated null simulates is the same number.
    vectorised = chi_square_values(reference_shares, [counts, counts])
    assert vectorised == pytest.approx([theirs.statistic] * 2, rel=1e-12)


def test_chi_square_without_unseen_values_uses_reference_shares_exactly() -> None:
    """With no unseen value, expected counts are n times the reference shares."""
    counts = np.array([30, 50, 20, 0])
    ours = chi_square([0.25, 0.5, 0.25, 0.0], counts, n_reference=100)
    theirs = stats.chisquare([30, 50, 20], [25.0, 50.0, 25.0])
    assert ours.bins == 3
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_js_linf_wasserstein_equal_their_definitions(seed: int) -> None:
    """JS equals scipy's base-2 jensenshannon, L-inf the max share gap, W scipy's over std."""
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.ones(6))
    counts = rng.multinomial(400, rng.dirichlet(np.ones(6)))
    assert jensen_shannon(shares, counts, 1000).statistic == pytest.approx(
        distance.jensenshannon(shares, counts / counts.sum(), base=2), rel=1e-12
    )
    assert l_infinity(shares, counts, 1000).statistic == pytest.approx(
        np.max(np.abs(shares - counts / counts.sum())), rel=1e-12
    )
    reference, current = rng.normal(size=800), rng.normal(0.3, 1.5, size=300)
    result = wasserstein(reference, current, float(reference.std()))
    expected = stats.wasserstein_distance(reference, current)
    assert result.statistic == pytest.approx(expected, rel=1e-12)
    assert result.effect_size == pytest.approx(expected / reference.std(), rel=1e-12)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(
    ("n_ref", "n_cur"), [(1, 1), (1, 50), (50, 1), (800, 300), (100_000, 1000), (3000, 20_000)]
)
def test_prepared_wasserstein_equals_scipy(seed: int, n_ref: int, n_cur: int) -> None:
    """One prepared reference, many windows: each equals scipy's, ties, offsets and all."""
    rng = np.random.default_rng(seed)
    loc = [0.0, 1e3, -5e4][seed % 3]
    reference = rng.normal(loc, 2.0, size=n_ref)
    if seed % 2:  # few distinct values: long runs of ties on both sides
        reference = np.round(reference)
    reference[rng.random(n_ref) < 0.01] = np.nan
    prepared = WassersteinReference(reference, float(np.nanstd(reference)))
    finite = reference[np.isfinite(reference)]
    for shift, scale in [(0.0, 1.0), (0.05, 1.0), (3.0, 0.5), (-1.0, 3.0)]:
        current = rng.normal(loc + shift, 2.0 * scale, size=n_cur)
        if seed % 2:
            current = np.round(current)
        current = np.append(current, [np.inf, -np.inf, np.nan])
        expected = stats.wasserstein_distance(finite, current[np.isfinite(current)])
        result = prepared.distance(current)
        assert result.statistic == pytest.approx(expected, rel=1e-12, abs=1e-300)
        assert (result.n_reference, result.n_current) == (finite.size, n_cur)


@pytest.mark.parametrize("seed", range(10))
def test_chi_square_is_bit_identical_to_scipy_chisquare(seed: int) -> None:
    """Statistic and p-value are scipy.stats.chisquare's own, to the last bit."""
    rng = np.random.default_rng(seed)
    for _ in range(50):
        k = int(rng.integers(2, 30))
        shares = rng.dirichlet(np.ones(k))
        shares[rng.random(k) < 0.1] = 0.0
        counts = rng.multinomial(int(rng.integers(1, 5000)), rng.dirichlet(np.ones(k)))
        observed, expected = expected_shares(shares / shares.sum(), counts)
        if observed.size < 2:
            continue
        theirs = stats.chisquare(observed, expected * observed.sum())
        ours = chi_square(shares / shares.sum(), counts, 1000)
        assert (ours.statistic, ours.p_value) == (theirs.statistic, theirs.pvalue)


def test_psi_matches_its_documented_formula() -> None:
    """PSI = sum (c - r) ln(c / r) with empty shares replaced by epsilon."""
    reference = np.array([0.5, 0.3, 0.2, 0.0])
    counts = np.array([60, 0, 35, 5])
    current = counts / counts.sum()
    r = np.where(reference == 0, 1e-4, reference)
    c = np.where(current == 0, 1e-4, current)
    assert psi(reference, counts, 100).statistic == pytest.approx(
        float(np.sum((c - r) * np.log(c / r))), rel=1e-14
    )
    assert (
        psi(reference, counts, 100, epsilon=1e-3).statistic != psi(reference, counts, 100).statistic
    )


@pytest.mark.parametrize("seed", range(10))
def test_rate_increase_equals_binomtest(seed: int) -> None:
    """Data-quality p-values are scipy's one-sided exact binomial test."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 5000))
    count = int(rng.integers(0, n))
    reference_rate = float(rng.uniform(0, 0.2))
    result = rate_increase("null_rate", count, n, reference_rate)
    expected = stats.binomtest(count, n, max(reference_rate, 1e-4), alternative="greater")
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert result.rate == count / n
    assert result.increase == pytest.approx(count / n - reference_rate)


def evidently_values(
    reference: pd.DataFrame, current: pd.DataFrame, column: str, kind: str, methods: list[str]
) -> list[float]:
    """Evidently 0.7's ValueDrift values for one column (current first, as it wants)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently import DataDefinition, Dataset, Report
        from evidently.metrics import ValueDrift

        definition = (
            DataDefinition(numerical_columns=[column])
            if kind == "numeric"
            else DataDefinition(categorical_columns=[column])
        )
        snapshot = Report([ValueDrift(column=column, method=m) for m in methods]).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
    return [float(metric["value"]) for metric in snapshot.dict()["metrics"]]


@pytest.mark.parametrize("seed", range(8))
def test_psi_equals_evidently_on_the_same_bins(seed: int) -> None:
    """Evidently's PSI of our bin labels as a categorical column equals our PSI."""
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=int(rng.integers(2000, 20_000)))
    current = rng.normal(loc=[0.0, 0.1, 0.5, 1.0][seed % 4], size=int(rng.integers(300, 5000)))
    edges = quantile_edges(reference, 10)

    def labels(values: np.ndarray) -> pd.DataFrame:
        index = np.searchsorted(edges, values, side="right")
        return pd.DataFrame({"bin": [f"b{i:02d}" for i in index]})

    [theirs] = evidently_values(labels(reference), labels(current), "bin", "categorical", ["psi"])
    ours = psi(proportions(bin_counts(reference, edges)), bin_counts(current, edges), 1).statistic
    assert ours == pytest.approx(theirs, rel=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_categorical_psi_and_chi2_equal_evidently(seed: int) -> None:
    """On string categories (one unseen in the window) PSI and chi-square p match evidently.

    Evidently's chi-square has no unseen bin, so the chi-square check uses a
    window without unseen values.
    """
    rng = np.random.default_rng(seed)
    categories = np.array(["a", "b", "c", "d"])
    reference = rng.choice(categories, 3000, p=[0.4, 0.3, 0.2, 0.1])
    current = rng.choice(categories, 600, p=[0.3, 0.3, 0.25, 0.15])
    with_unseen = np.concatenate([current, ["zz"] * 7])
    ref_shares = np.append([np.mean(reference == c) for c in categories], 0.0)
    counts = np.append([np.sum(with_unseen == c) for c in categories], 7)
    [their_psi] = evidently_values(
        pd.DataFrame({"c": reference}), pd.DataFrame({"c": with_unseen}), "c", "cat", ["psi"]
    )
    assert psi(ref_shares, counts, 3000).statistic == pytest.approx(their_psi, rel=1e-9)
    [their_p] = evidently_values(
        pd.DataFrame({"c": reference}), pd.DataFrame({"c": current}), "c", "cat", ["chisquare"]
    )
    counts_seen = np.append([np.sum(current == c) for c in categories], 0)
    assert chi_square(ref_shares, counts_seen, 3000).p_value == pytest.approx(their_p, rel=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_ks_p_value_equals_evidently(seed: int) -> None:
    """Evidently's numeric 'ks' value is ks_2samp's p-value, and ours equals it."""
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=4000)
    current = rng.normal(loc=0.1 * seed, size=1500)
    [theirs] = evidently_values(
        pd.DataFrame({"x": reference}), pd.DataFrame({"x": current}), "x", "numeric", ["ks"]
    )
    assert ks(np.sort(reference), current).p_value == pytest.approx(theirs, rel=1e-9)


@given(
    hnp.arrays(np.float64, st.integers(1, 200), elements=st.sampled_from(TIE_VALUES)),
    hnp.arrays(np.float64, st.integers(1, 200), elements=st.sampled_from(TIE_VALUES)),
)
@settings(max_examples=400, deadline=None)
def test_ecdf_gap_is_bit_identical_to_scipy_with_ties_and_infinities(
    a: np.ndarray, b: np.ndarray
) -> None:
    """The fast D equals ks_2samp's D exactly, on heavily tied data with ±inf.

    scipy's exact mode rounds D to a multiple of 1/lcm(n, m); its asymptotic
    mode, which ``ks`` uses this function for, returns the raw gap.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy's p-value on tiny samples
        expected = stats.ks_2samp(a, b, method="asymp").statistic
    assert max_ecdf_gap(np.sort(a), np.sort(b)) == expected
