"""L-infinity (largest absolute share difference) between two distributions."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from monitor.stats.binning import proportions
from monitor.stats.result import TestResult


def l_infinity(
    reference_proportions: npt.ArrayLike, current_counts: npt.ArrayLike, n_reference: int
) -> TestResult:
    """Largest absolute difference between reference and window shares.

    Notes
    -----
    :math:`L_\\infty = \\max_i |r_i - c_i|`, in ``[0, 1]``. Easy to explain
    on call: "the share of category X moved by this much". No p-value.

    Examples
    --------
    >>> round(l_infinity([0.5, 0.3, 0.2], [30, 30, 40], n_reference=100).statistic, 10)
    0.2
    """
    counts = np.asarray(current_counts, dtype=np.float64)
    n_current = int(counts.sum())
    bins = int(counts.size)
    if n_current == 0:
        return TestResult.empty("linf", n_reference, has_p_value=False, bins=bins)
    ref = np.asarray(reference_proportions, dtype=np.float64)
    value = float(np.max(np.abs(ref - proportions(counts))))
    return TestResult("linf", value, None, value, n_reference, n_current, bins=bins)
