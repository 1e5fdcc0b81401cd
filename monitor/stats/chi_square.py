"""Chi-square goodness-of-fit of window category counts to reference shares."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import special

from monitor.stats.psi import DEFAULT_EPSILON
from monitor.stats.result import TestResult


def expected_shares(
    reference_proportions: npt.ArrayLike,
    current_counts: npt.ArrayLike,
    epsilon: float = DEFAULT_EPSILON,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Observed counts and expected shares that :func:`chi_square` tests.

    Bins empty on both sides are dropped (they carry no information); a bin
    the reference never filled but the window did gets share ``epsilon``,
    then the shares are renormalised to sum to 1.

    Examples
    --------
    >>> observed, expected = expected_shares([0.5, 0.5, 0.0], [5, 5, 0])
    >>> observed, expected
    (array([5., 5.]), array([0.5, 0.5]))
    """
    ref = np.asarray(reference_proportions, dtype=np.float64)
    counts = np.asarray(current_counts, dtype=np.float64)
    keep = (ref > 0) | (counts > 0)
    shares = np.where(ref[keep] == 0, epsilon, ref[keep])
    return counts[keep], shares / shares.sum()


def chi_square_values(
    reference_proportions: npt.ArrayLike,
    current_counts: npt.ArrayLike,
    epsilon: float = DEFAULT_EPSILON,
) -> npt.NDArray[np.float64]:
    """Chi-square statistics of one or many count vectors (rows) against reference shares.

    Vectorised form of :func:`chi_square`'s statistic (the same bins
    dropped, the same ``epsilon`` and renormalisation), used to simulate its
    null distribution. The shares are one vector for all rows or one row
    per row of counts. Rows with a zero total give ``nan``.

    Examples
    --------
    >>> chi_square_values([0.5, 0.5, 0.0], [[50, 50, 0], [60, 40, 0], [50, 49, 1]]).round(2)
    array([ 0.  ,  4.  , 98.04])
    """
    counts = np.atleast_2d(np.asarray(current_counts, dtype=np.float64))
    ref = np.broadcast_to(np.asarray(reference_proportions, dtype=np.float64), counts.shape)
    keep = (ref > 0) | (counts > 0)
    shares = np.where(keep, np.where(ref == 0, epsilon, ref), 0.0)
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = shares / shares.sum(axis=1, keepdims=True) * totals
        terms = np.where(keep, (counts - expected) ** 2 / expected, 0.0)
    result: npt.NDArray[np.float64] = np.where(totals[:, 0] > 0, terms.sum(axis=1), np.nan)
    return result


def chi_square(
    reference_proportions: npt.ArrayLike,
    current_counts: npt.ArrayLike,
    n_reference: int,
    epsilon: float = DEFAULT_EPSILON,
) -> TestResult:
    """Pearson's chi-square goodness-of-fit test of window counts.

    Parameters
    ----------
    reference_proportions
        Reference share of each category (the last bin is "unseen", share 0).
    current_counts
        Window count of each category, same order.
    n_reference
        Number of reference values behind the shares.
    epsilon
        Expected share given to a category the reference never saw.

    Returns
    -------
    TestResult
        ``statistic`` and ``p_value`` equal
        ``scipy.stats.chisquare(observed, n * expected)`` on the arrays from
        :func:`expected_shares`; ``effect_size`` is Cohen's
        ``w = sqrt(statistic / n)``; ``nan`` for an empty window.

    Notes
    -----
    :math:`\\chi^2 = \\sum_i (o_i - n p_i)^2 / (n p_i)` with ``k - 1`` degrees
    of freedom over the ``k`` bins kept by :func:`expected_shares`; the
    p-value is ``scipy.special.chdtrc(k - 1, chi2)``, as in
    ``scipy.stats.chisquare``. The reference shares are treated as exact,
    which is accurate when the reference is much larger than the window.
    The ``epsilon`` share of an unseen category keeps the statistic finite;
    any unseen value then makes it large, which is intended.

    Examples
    --------
    >>> result = chi_square([0.5, 0.5, 0.0], [50, 50, 0], n_reference=1000)
    >>> result.statistic, result.p_value
    (0.0, 1.0)
    """
    observed, expected = expected_shares(reference_proportions, current_counts, epsilon)
    n_current = int(observed.sum())
    bins = int(observed.size)
    if n_current == 0:
        return TestResult.empty("chi2", n_reference, has_p_value=True, bins=bins)
    if bins < 2:
        return TestResult("chi2", 0.0, 1.0, 0.0, n_reference, n_current, bins=bins)
    # scipy.stats.chisquare's own arithmetic, without its array-API checks,
    # which cost more than the test on a few bins.
    expected_counts = expected * n_current
    statistic = float(np.sum((observed - expected_counts) ** 2 / expected_counts))
    return TestResult(
        "chi2",
        statistic,
        float(special.chdtrc(bins - 1, statistic)),
        math.sqrt(statistic / n_current),
        n_reference,
        n_current,
        bins=bins,
    )
