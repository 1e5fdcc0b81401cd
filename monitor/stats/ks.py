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
    The ECDF gap ``F_a - F_b`` only changes at data values, so its extremes
    are at each distinct value of either sample. At the last copy ``i`` of a
    value of ``a``, ``F_a = (i + 1)/n_a`` exactly and ``F_b`` is one sorted
    ``searchsorted``; symmetrically for ``b``. That is two searches of one
    sample in the other instead of scipy's two searches of the pooled values,
    with the same counts divided the same way, so ``D`` is bit-identical to
    ``scipy.stats.ks_2samp``'s.

    Examples
    --------
    >>> max_ecdf_gap(np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    0.33333333333333337
    """
    n_a, n_b = a_sorted.size, b_sorted.size
    in_a, in_b = last_of_ties(a_sorted), last_of_ties(b_sorted)
    at_a = (in_a + 1) / n_a - np.searchsorted(b_sorted, a_sorted[in_a], side="right") / n_b
    at_b = np.searchsorted(a_sorted, b_sorted[in_b], side="right") / n_a - (in_b + 1) / n_b
    lowest = min(at_a.min(), at_b.min())
    highest = max(at_a.max(), at_b.max())
    return float(max(np.clip(-lowest, 0, 1), highest))
