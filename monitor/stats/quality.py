"""Data-quality rates (nulls, out-of-range, unseen categories) against the reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scipy import stats

from monitor.stats.psi import DEFAULT_EPSILON
from monitor.stats.result import finite_or_none


@dataclass(frozen=True, slots=True)
class RateResult:
    """A window's rate of some defect compared with the reference's rate.

    Parameters
    ----------
    name
        ``"null_rate"``, ``"out_of_range"`` or ``"unseen_categories"``.
    count, n
        Defective values and all values in the window.
    rate
        ``count / n`` (``nan`` for an empty window).
    reference_rate
        The same rate in the reference.
    increase
        ``rate - reference_rate``.
    p_value
        One-sided exact binomial p-value of seeing ``count`` or more defects
        if the window had the reference's rate.
    """

    name: str
    count: int
    n: int
    rate: float
    reference_rate: float
    increase: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; non-finite numbers become ``None``."""
        return {
            "count": self.count,
            "n": self.n,
            "rate": finite_or_none(self.rate),
            "reference_rate": finite_or_none(self.reference_rate),
            "increase": finite_or_none(self.increase),
            "p_value": finite_or_none(self.p_value),
        }


def rate_increase(
    name: str,
    count: int,
    n: int,
    reference_rate: float,
    epsilon: float = DEFAULT_EPSILON,
) -> RateResult:
    """Compare a window's defect rate with the reference's.

    Notes
    -----
    ``p_value = scipy.stats.binomtest(count, n, p, alternative="greater")``
    with ``p = max(reference_rate, epsilon)``: a reference rate of 0 (no
    nulls, nothing out of its own range) would make any defect infinitely
    surprising, so it is floored at ``epsilon`` (default 1e-4).

    Examples
    --------
    >>> result = rate_increase("null_rate", count=30, n=100, reference_rate=0.01)
    >>> result.rate, result.increase, result.p_value < 1e-10
    (0.3, 0.29, True)
    """
    if n == 0:
        nan = float("nan")
        return RateResult(name, 0, 0, nan, reference_rate, nan, nan)
    rate = count / n
    baseline = min(max(reference_rate, epsilon), 1.0)
    # P(X >= 0) is 1, which is what binomtest returns; most windows have no defect.
    p_value = 1.0
    if count:
        p_value = float(stats.binomtest(count, n, baseline, alternative="greater").pvalue)
    return RateResult(name, count, n, rate, reference_rate, rate - reference_rate, p_value)
