"""Two-sample Kolmogorov-Smirnov test against a pre-sorted reference sample."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

from monitor.stats.result import TestResult

#: scipy's ``ks_2samp(method="auto")`` switches from the exact to the
#: asymptotic p-value above this sample size; we follow it.
EXACT_MAX_N = 10_000


def ks(reference_sorted: npt.NDArray[np.float64], current: npt.ArrayLike) -> TestResult:
    """Two-sided two-sample KS test, identical to ``scipy.stats.ks_2samp``.

    Parameters
    ----------
    reference_sorted
        Reference values, sorted ascending, without NaN (a
        ``ReferenceProfile`` keeps them that way).
    current
        Window values; NaN is dropped, ``±inf`` are kept as values.

    Returns
    -------
    TestResult
        ``statistic`` and ``effect_size`` are ``D``; ``statistic`` and
        ``p_value`` are ``nan`` when either side is empty.

    Notes
    -----
    ``D = max_x |F_ref(x) - F_cur(x)|`` over the pooled values (see
    :func:`max_ecdf_gap`); only the window is sorted, the reference already
    is. The p-value follows ``ks_2samp(method="auto")``: when both sizes
    are at most 10 000 we call scipy itself (exact distribution); above that
    we use the same asymptotic formula scipy uses,
    ``kstwo.sf(D, round(n*m / (n + m)))``. With both samples whole the result
    equals ``ks_2samp(reference, current)``.

    When a side is a capped sample (the reference keeps at most
    ``sample_cap`` values, a window a reservoir of ``sample_cap`` values),
    ``D`` is that of the sample, an unbiased estimate of the whole side's
    ECDF, and the p-value uses the sample's size, not the full count. That
    p-value is conservative: a larger sample could only make it smaller.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> reference = np.sort(rng.normal(size=2000))
    >>> result = ks(reference, rng.normal(loc=1.0, size=500))
    >>> result.statistic > 0.3, result.p_value < 1e-10
    (True, True)
    """
    ref = np.asarray(reference_sorted, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    cur = np.sort(cur[~np.isnan(cur)])
    n_ref, n_cur = ref.size, cur.size
    if n_ref == 0 or n_cur == 0:
        return TestResult.empty("ks", n_ref, n_cur, has_p_value=True)
    if max(n_ref, n_cur) <= EXACT_MAX_N:
        scipy_result = stats.ks_2samp(ref, cur)
        d = float(scipy_result.statistic)
        return TestResult("ks", d, float(scipy_result.pvalue), d, n_ref, n_cur)
    d = max_ecdf_gap(ref, cur)
    larger, smaller = max(n_ref, n_cur), min(n_ref, n_cur)
    effective_n = np.round(larger * smaller / (larger + smaller))
    p_value = float(np.clip(stats.kstwo.sf(d, effective_n), 0, 1))
    return TestResult("ks", d, p_value, d, n_ref, n_cur)


def last_of_ties(values_sorted: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    """Positions of the last copy of each distinct value in a sorted array.

    Examples
    --------
    >>> last_of_ties(np.array([1.0, 1.0, 2.0, 3.0, 3.0])).tolist()
    [1, 2, 4]
    """
    last = np.empty(values_sorted.size, dtype=bool)
    last[:-1] = values_sorted[1:] != values_sorted[:-1]
    last[-1:] = True
    return np.flatnonzero(last)


def max_ecdf_gap(a_sorted: npt.NDArray[np.float64], b_sorted: npt.NDArray[np.float64]) -> float:
    """Two-sided KS statistic of two sorted, non-empty samples.

    Notes
    -----
    Call the smaller sample ``b``. Between two consecutive distinct values
    ``v_{j-1} < v_j`` of ``b``, ``F_b`` is constant and ``F_a`` only grows,
    so the gap ``F_a - F_b`` is lowest at ``v_j`` itself and highest just
    before ``v_{j+1}``, at the last value of ``a`` below it. Hence
    ``D = max(max_j(before_j), -min_j(at_j))`` with
    ``at_j = #{a <= v_j}/n_a - #{b <= v_j}/n_b`` and
    ``before_j = #{a < v_j}/n_a - #{b < v_j}/n_b``: one search of ``b``'s
    distinct values in ``a`` (a second one only for the values ``a`` also
    holds) instead of scipy's two searches of all pooled values. Every
    candidate is a gap scipy also evaluates, from the same two counts
    divided the same way, so ``D`` is bit-identical to
    ``scipy.stats.ks_2samp``'s (asymptotic mode; its exact mode rounds ``D``
    to a multiple of ``1/lcm(n_a, n_b)``). Swapping the samples negates every
    gap exactly, which leaves ``D`` unchanged.

    Examples
    --------
    >>> max_ecdf_gap(np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    0.33333333333333337
    """
    if b_sorted.size > a_sorted.size:
        a_sorted, b_sorted = b_sorted, a_sorted
    n_a, n_b = a_sorted.size, b_sorted.size
    last = last_of_ties(b_sorted)
    distinct = b_sorted[last]
    b_through = (last + 1) / n_b
    b_before = np.concatenate([[0.0], b_through[:-1]])
    through = np.searchsorted(a_sorted, distinct, side="right")
    # #{a < v} = #{a <= v} unless v itself is in a: search again only for those.
    below = through.copy()
    tied = np.flatnonzero(a_sorted[np.maximum(through - 1, 0)] == distinct)
    tied = tied[through[tied] > 0]
    below[tied] = np.searchsorted(a_sorted, distinct[tied], side="left")
    at = through / n_a - b_through
    before = below / n_a - b_before
    highest = max(at.max(), before.max())
    return float(max(np.clip(-at.min(), 0, 1), highest))
