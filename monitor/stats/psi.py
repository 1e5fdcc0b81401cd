"""Population Stability Index over reference bins."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from monitor.stats.result import TestResult

#: Share that replaces an empty bin's share, on either side (as evidently does).
DEFAULT_EPSILON = 1e-4


def psi_values(
    reference_proportions: npt.ArrayLike,
    current_counts: npt.ArrayLike,
    epsilon: float = DEFAULT_EPSILON,
) -> npt.NDArray[np.float64]:
    """PSI of one or many count vectors (rows) against reference shares.

    Vectorised core of :func:`psi`, also used to simulate its null
    distribution. Rows with a zero total give ``nan``.

    Examples
    --------
    >>> psi_values([0.5, 0.5], [[50, 50], [90, 10]]).round(4)
    array([0.    , 0.8789])
    """
    ref = np.asarray(reference_proportions, dtype=np.float64)
    counts = np.atleast_2d(np.asarray(current_counts, dtype=np.float64))
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        cur = counts / totals
    ref = np.where(ref == 0, epsilon, ref)
    cur = np.where(cur == 0, epsilon, cur)
    result: npt.NDArray[np.float64] = np.sum((cur - ref) * np.log(cur / ref), axis=1)
    return result


def psi(
    reference_proportions: npt.ArrayLike,
    current_counts: npt.ArrayLike,
    n_reference: int,
    epsilon: float = DEFAULT_EPSILON,
) -> TestResult:
    """Population Stability Index of window counts against reference shares.

    Parameters
    ----------
    reference_proportions
        Share of the reference in each bin (sums to 1).
    current_counts
        Window count in each of the same bins.
    n_reference
        Number of reference values behind ``reference_proportions``.
    epsilon
        Share used in place of an empty bin's share, on either side.

    Returns
    -------
    TestResult
        ``statistic`` and ``effect_size`` are the PSI; ``p_value`` is
        ``None`` (a calibrated one is added by ``monitor.stats.null``);
        ``nan`` for an empty window.

    Notes
    -----
    With reference shares :math:`r_i` and window shares :math:`c_i`,

    .. math:: \\mathrm{PSI} = \\sum_i (c_i - r_i) \\ln(c_i / r_i)

    where any share equal to 0 is replaced by ``epsilon`` (default
    :data:`DEFAULT_EPSILON` = 1e-4) before the sum, without renormalising.
    PSI is 0 for identical shares and positive otherwise. Numeric bins come
    from :func:`monitor.stats.binning.quantile_edges`; categorical bins are
    the reference's categories plus one bin for values it never saw.

    Examples
    --------
    >>> psi([0.25, 0.25, 0.5], [25, 25, 50], n_reference=1000).statistic
    0.0
    >>> round(psi([0.5, 0.5], [90, 10], n_reference=1000).statistic, 4)
    0.8789
    """
    counts = np.asarray(current_counts, dtype=np.float64)
    n_current = int(counts.sum())
    bins = int(counts.size)
    if n_current == 0:
        return TestResult.empty("psi", n_reference, has_p_value=False, bins=bins)
    value = float(psi_values(reference_proportions, counts, epsilon)[0])
    return TestResult("psi", value, None, value, n_reference, n_current, bins=bins)
