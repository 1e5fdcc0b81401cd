"""The small frozen objects that every statistical test returns."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def finite_or_none(value: float | None) -> float | None:
    """Return ``value`` as a float, or ``None`` when it is missing or not finite.

    JSON has no NaN or infinity, so serialisers map them to ``null``.

    Examples
    --------
    >>> finite_or_none(0.5), finite_or_none(float("nan")), finite_or_none(None)
    (0.5, None, None)
    """
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class TestResult:
    """Outcome of one two-sample drift test on one feature.

    Parameters
    ----------
    test
        Short name of the test (``"ks"``, ``"psi"``, ``"chi2"``, ...).
    statistic
        The test statistic (KS ``D``, PSI value, chi-square statistic, ...).
        ``nan`` when a sample is empty.
    p_value
        Probability of a statistic at least this large under "no drift", or
        ``None`` when the test defines none (see ``monitor.stats.null``).
    effect_size
        Size of the difference on a scale that does not grow with the sample
        size; drift verdicts compare it with the policy's thresholds.
    n_reference, n_current
        Number of values each side of the comparison actually used.
    threshold
        The calibrated ``(1 - alpha)`` null quantile of ``statistic`` at
        ``n_current``, for distance tests, else ``None``.
    bins
        Number of bins the test compared, for binned tests, else ``None``.
    """

    __test__ = False  # not a pytest test class, despite the name

    test: str
    statistic: float
    p_value: float | None
    effect_size: float
    n_reference: int
    n_current: int
    threshold: float | None = None
    bins: int | None = None

    @classmethod
    def empty(
        cls,
        test: str,
        n_reference: int,
        n_current: int = 0,
        *,
        has_p_value: bool,
        bins: int | None = None,
    ) -> TestResult:
        """The result when a side has no values: every number is ``nan``.

        Examples
        --------
        >>> TestResult.empty("psi", 100, has_p_value=False).statistic
        nan
        """
        nan = float("nan")
        p_value = nan if has_p_value else None
        return cls(test, nan, p_value, nan, n_reference, n_current, bins=bins)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; non-finite numbers become ``None``."""
        out: dict[str, Any] = {
            "statistic": finite_or_none(self.statistic),
            "p_value": finite_or_none(self.p_value),
            "effect_size": finite_or_none(self.effect_size),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
        }
        if self.threshold is not None:
            out["threshold"] = finite_or_none(self.threshold)
        if self.bins is not None:
            out["bins"] = self.bins
        return out
