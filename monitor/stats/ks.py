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
    ``D = max_x |F_ref(x) - F_cur(x)|`` over the pooled values, computed with
    ``searchsorted`` on the already-sorted reference so only the window is
    sorted. The p-value follows ``ks_2samp(method="auto")``: when both sizes
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
    pooled = np.concatenate([ref, cur])
    cdf_ref = np.searchsorted(ref, pooled, side="right") / n_ref
    cdf_cur = np.searchsorted(cur, pooled, side="right") / n_cur
    differences = cdf_ref - cdf_cur
    d = float(max(np.clip(-differences.min(), 0, 1), differences.max()))
    larger, smaller = max(n_ref, n_cur), min(n_ref, n_cur)
    effective_n = np.round(larger * smaller / (larger + smaller))
    p_value = float(np.clip(stats.kstwo.sf(d, effective_n), 0, 1))
    return TestResult("ks", d, p_value, d, n_ref, n_cur)
