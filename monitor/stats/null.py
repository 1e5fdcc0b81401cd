"""Null distributions of binned distance statistics, by seeded resampling."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
#: ``statistic(reference_shares, counts_matrix) -> one value per row``; the
#: shares are one vector for all rows or one row per row of counts.
BinnedStatistic = Callable[[FloatArray, npt.NDArray[np.int64]], FloatArray]


class NullDistribution:
    """Distribution of binned statistics when the window follows the reference.

    Parameters
    ----------
    reference_proportions
        Reference share of each bin.
    n_reference
        Number of reference values behind the shares, or ``None`` to treat
        the shares as exact (a reference much larger than any window).
    statistics
        Vectorised statistics by name, e.g. ``{"psi": psi_values}``; all are
        computed on the same simulated windows.
    n_resamples
        Simulated windows per window size ``n``. The smallest p-value it can
        give is ``1 / (n_resamples + 1)``.
    seed
        Seed; the draws for a given ``n`` depend only on ``(seed, n)``.
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
    (never 0, as a Monte Carlo p-value must not be).

    The draws depend only on the shares, ``N``, ``n`` and the seed, so
    features with identical reference shares (numeric features binned at
    their own deciles usually have exactly equal shares) can share one
    instance.

    Why: at small windows a distance such as PSI is large by chance alone
    (``E[PSI] ~ (bins - 1) / n``: about 0.09 for 10 bins at ``n = 100``), so
    a fixed threshold of 0.1 would fire on most healthy windows.

    Examples
    --------
    >>> from monitor.stats.psi import psi_values
    >>> null = NullDistribution(np.full(10, 0.1), 100_000, {"psi": psi_values}, n_resamples=2000)
    >>> bool(null.threshold("psi", 100, alpha=0.05) > 0.1)
    True
    >>> bool(null.threshold("psi", 10_000, alpha=0.05) < 0.01)
    True
    >>> null.p_value("psi", 1.0, 100)
    0.0004997501249375312
    """

    def __init__(
        self,
        reference_proportions: npt.ArrayLike,
        n_reference: int | None,
        statistics: Mapping[str, BinnedStatistic],
        n_resamples: int = 10_000,
        seed: int = 0,
        cache_size: int = 8,
    ) -> None:
        if n_resamples < 1:
            raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
        self.reference_proportions = np.asarray(reference_proportions, dtype=np.float64)
        self.n_reference = n_reference
        self.statistics = dict(statistics)
        self.n_resamples = n_resamples
        self.seed = seed
        self.cache_size = cache_size
        self._draws: OrderedDict[int, dict[str, FloatArray]] = OrderedDict()
        # Every window of one size asks for the same quantile: computed once.
        self._thresholds: dict[tuple[str, int, float], float] = {}

    def draws(self, statistic: str, n: int) -> FloatArray:
        """Sorted simulated values of ``statistic`` for windows of ``n`` values."""
        cached = self._draws.get(n)
        if cached is None:
            cached = self._simulate(n)
            self._draws[n] = cached
            if len(self._draws) > self.cache_size:
                evicted, _ = self._draws.popitem(last=False)
                self._thresholds = {k: v for k, v in self._thresholds.items() if k[1] != evicted}
        else:
            self._draws.move_to_end(n)
        return cached[statistic]

    def threshold(self, statistic: str, n: int, alpha: float) -> float:
        """The ``(1 - alpha)`` quantile of ``statistic`` at window size ``n``."""
        key = (statistic, n, alpha)
        threshold = self._thresholds.get(key)
        if threshold is None:
            threshold = float(np.quantile(self.draws(statistic, n), 1.0 - alpha))
            self._thresholds[key] = threshold
        return threshold

    def p_value(self, statistic: str, observed: float, n: int) -> float:
        """Monte Carlo p-value of an ``observed`` value at window size ``n``."""
        draws = self.draws(statistic, n)
        exceed = draws.size - np.searchsorted(draws, observed, side="left")
        return float((1 + exceed) / (draws.size + 1))

    def _simulate(self, n: int) -> dict[str, FloatArray]:
        rng = np.random.default_rng([self.seed, n])
        shares = self.reference_proportions
        counts = rng.multinomial(n, shares, size=self.n_resamples)
        if self.n_reference is not None:
            reference_counts = rng.multinomial(self.n_reference, shares, size=self.n_resamples)
            shares = reference_counts / self.n_reference
        return {name: np.sort(f(shares, counts)) for name, f in self.statistics.items()}
