"""Wasserstein-1 distance in units of the reference standard deviation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

from monitor.stats.result import TestResult


def wasserstein(
    reference_sample: npt.ArrayLike, current: npt.ArrayLike, reference_std: float
) -> TestResult:
    """Earth mover's distance between the samples, divided by the reference std.

    Parameters
    ----------
    reference_sample
        Reference values (the profile's retained sample).
    current
        Window values (the window's retained sample).
    reference_std
        Standard deviation of all finite reference values.

    Returns
    -------
    TestResult
        ``statistic`` is the raw distance, ``effect_size`` the normalised one;
        no p-value (the test is descriptive).

    Notes
    -----
    ``W = scipy.stats.wasserstein_distance(reference, current)`` over the
    finite values of each side (NaN and ``±inf`` are left out: one infinite
    value would make ``W`` infinite). The effect size is ``W / std`` so that
    0.1 means "the mass moved a tenth of a standard deviation on average";
    for a constant reference (``std == 0``) it is 0 when ``W`` is 0 and
    ``inf`` otherwise. Capped samples make ``W`` an estimate.

    Examples
    --------
    >>> result = wasserstein([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], reference_std=1.0)
    >>> result.statistic, result.effect_size
    (1.0, 1.0)
    """
    ref = np.asarray(reference_sample, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    ref = ref[np.isfinite(ref)]
    cur = cur[np.isfinite(cur)]
    if ref.size == 0 or cur.size == 0:
        return TestResult.empty("wasserstein", ref.size, cur.size, has_p_value=False)
    distance = float(stats.wasserstein_distance(ref, cur))
    if reference_std > 0:
        effect = distance / reference_std
    else:
        effect = 0.0 if distance == 0 else float("inf")
    return TestResult("wasserstein", distance, None, effect, int(ref.size), int(cur.size))
