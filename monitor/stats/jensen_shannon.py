"""Jensen-Shannon distance between reference and window shares."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.spatial import distance

from monitor.stats.result import TestResult


def jensen_shannon_values(
    reference_proportions: npt.ArrayLike, current_counts: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Base-2 Jensen-Shannon distance of each row of counts to the reference.

    Examples
    --------
    >>> jensen_shannon_values([0.5, 0.5], [[5, 5], [10, 0]]).round(4)
    array([0.    , 0.5579])
    """
    ref = np.asarray(reference_proportions, dtype=np.float64)
    counts = np.atleast_2d(np.asarray(current_counts, dtype=np.float64))
    return np.atleast_1d(
        distance.jensenshannon(np.broadcast_to(ref, counts.shape), counts, base=2.0, axis=1)
    )


def jensen_shannon(
    reference_proportions: npt.ArrayLike, current_counts: npt.ArrayLike, n_reference: int
) -> TestResult:
    """Jensen-Shannon distance (base 2, in ``[0, 1]``) of window to reference.

    Notes
    -----
    With :math:`m = (r + c) / 2`,
    :math:`\\mathrm{JS} = \\sqrt{(\\mathrm{KL}(r \\| m) + \\mathrm{KL}(c \\| m)) / 2}`
    with base-2 logarithms: ``scipy.spatial.distance.jensenshannon(r, c,
    base=2)``. No epsilon is needed: ``m`` is never 0 where ``r`` or ``c``
    is not. ``statistic`` and ``effect_size`` are the distance; the p-value
    is calibrated by ``monitor.stats.null``.

    Examples
    --------
    >>> jensen_shannon([0.5, 0.5, 0.0], [50, 50, 0], n_reference=100).statistic
    0.0
    """
    counts = np.asarray(current_counts, dtype=np.float64)
    n_current = int(counts.sum())
    bins = int(counts.size)
    if n_current == 0:
        return TestResult.empty("js", n_reference, has_p_value=False, bins=bins)
    value = float(jensen_shannon_values(reference_proportions, counts)[0])
    return TestResult("js", value, None, value, n_reference, n_current, bins=bins)
