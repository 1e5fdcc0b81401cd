"""Null distributions of binned distance statistics, by seeded resampling."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
#: ``statistic(reference_shares, counts_matrix) -> one value per row``; the
#: shares are one vector for all rows or one row per row of counts.
BinnedStatistic = Callable[[FloatArray, npt.NDArray[np.int64]], FloatArray]


class NullDistribution:
    """Distribution of a binned statistic when the window follows the reference.

    Parameters
    ----------
    reference_proportions
        Reference share of each bin.
    n_reference
        Number of reference values behind the shares, or ``None`` to treat
        the shares as exact (a reference much larger than any window).
    statistic
        Vectorised statistic, e.g. :func:`monitor.stats.psi.psi_values`.
    n_resamples
        Simulated windows per window size ``n``. The smallest p-value it can
        give is ``1 / (n_resamples + 1)``.
    seed
        Seed (an int or a tuple of ints); the draws for a given ``n`` depend
        only on ``(seed, n)``.
    cache_size
        Window sizes whose sorted draws are kept (least recently used go).

    Notes
    -----
    Drawing ``n`` values with replacement from the reference and binning
    them gives bin counts ``~ Multinomial(n, r)``, so each simulated window
    is one multinomial draw: exact resampling of the reference, at the cost
    of ``n_resamples x bins`` numbers whatever ``n`` is. The reference itself
    is a sample of ``N = n_reference`` values, whose shares differ from the
    population's by chance too; each simulation therefore also redraws the
    reference shares as ``Multinomial(N, r) / N`` and compares the two
    simulated samples, so the null accounts for both sides' noise (expected
    PSI ~ ``(bins - 1)(1/n + 1/N)``, not ``(bins - 1)/n``). The threshold at
    level ``alpha`` is ``numpy.quantile(draws, 1 - alpha)``; the p-value of
    an observed statistic ``s`` is ``(1 + #{draws >= s}) / (n_resamples + 1)``
    (never 0, as a Monte Carlo p-value must not be). The reference shares
    are taken as exact; that is accurate when the reference is much larger
    than the window.

    Why: at small windows a distance such as PSI is large by chance alone
    (``E[PSI] ~ (bins - 1) / n``: about 0.09 for 10 bins at ``n = 100``), so
    a fixed threshold of 0.1 would fire on most healthy windows.

    Examples
    --------
    >>> from monitor.stats.psi import psi_values
    >>> null = NullDistribution(np.full(10, 0.1), 100_000, psi_values, n_resamples=2000)
    >>> bool(null.threshold(100, alpha=0.05) > 0.1)
    True
    >>> bool(null.threshold(10_000, alpha=0.05) < 0.01)
    True
    >>> null.p_value(1.0, 100)
    0.0004997501249375312
    """

    def __init__(
        self,
        reference_proportions: npt.ArrayLike,
        n_reference: int | None,
        statistic: BinnedStatistic,
        n_resamples: int = 10_000,
        seed: int | tuple[int, ...] = 0,
        cache_size: int = 8,
    ) -> None:
        if n_resamples < 1:
            raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
        self.reference_proportions = np.asarray(reference_proportions, dtype=np.float64)
        self.n_reference = n_reference
        self.statistic = statistic
        self.n_resamples = n_resamples
        self.seed = seed
        self.cache_size = cache_size
        self._draws: OrderedDict[int, FloatArray] = OrderedDict()

    def draws(self, n: int) -> FloatArray:
        """Sorted simulated statistics for windows of ``n`` values."""
        cached = self._draws.get(n)
        if cached is not None:
            self._draws.move_to_end(n)
            return cached
        seed = self.seed if isinstance(self.seed, tuple) else (self.seed,)
        rng = np.random.default_rng([*seed, n])
        shares = self.reference_proportions
        counts = rng.multinomial(n, shares, size=self.n_resamples)
        if self.n_reference is not None:
            reference_counts = rng.multinomial(self.n_reference, shares, size=self.n_resamples)
            shares = reference_counts / self.n_reference
        draws = np.sort(self.statistic(shares, counts))
        self._draws[n] = draws
        if len(self._draws) > self.cache_size:
            self._draws.popitem(last=False)
        return draws

    def threshold(self, n: int, alpha: float) -> float:
        """The ``(1 - alpha)`` quantile of the statistic at window size ``n``."""
        return float(np.quantile(self.draws(n), 1.0 - alpha))

    def p_value(self, observed: float, n: int) -> float:
        """Monte Carlo p-value of ``observed`` at window size ``n``."""
        draws = self.draws(n)
        exceed = draws.size - np.searchsorted(draws, observed, side="left")
        return float((1 + exceed) / (draws.size + 1))
