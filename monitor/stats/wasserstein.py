"""Wasserstein-1 distance in units of the reference standard deviation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from monitor.stats.result import TestResult


class WassersteinReference:
    """A reference sample prepared once for Wasserstein-1 distances to many windows.

    Parameters
    ----------
    reference_sample
        Reference values (the profile's retained sample), in any order;
        NaN and ``±inf`` are left out.
    reference_std
        Standard deviation of all finite reference values.

    Notes
    -----
    With ``F`` the reference ECDF (``n`` sorted values ``u``) and ``G`` the
    window's (``m`` sorted values ``v``), ``W = ∫ |F(x) - G(x)| dx``. Only
    the window is sorted per call; the reference's work, sorting and the
    prefix sums ``P_k = Σ_{i<=k} (u_i - c)`` (``c`` the sample mean, so the
    sums stay small), is done here once. Then

    * ``H(x) = ∫_{-∞}^x F = (k (x - c) - P_k) / n`` with ``k = #{u <= x}``,
      one binary search per point;
    * left of ``v_1`` ``G = 0``, contributing ``H(v_1)``; right of ``v_m``
      ``G = 1``, contributing ``P_n / n - (v_m - c) + H(v_m)``;
    * on ``[v_j, v_{j+1})`` ``G = g = j/m`` is constant and ``F`` grows, so
      ``F < g`` exactly left of ``q = u_k`` with ``k = ceil(g n)``. With
      ``p = clip(q, v_j, v_{j+1})`` the piece is
      ``H(v_{j+1}) - H(v_j) - g (v_{j+1} - v_j) + 2 (g (p - v_j) - H(p) + H(v_j))``;
      ``H(p)`` is ``H`` at a window value or at ``u_k``, kept for every
      reference value.

    That is one search of the window in the reference, ``O(m log n)``, per
    window, instead of sorting and searching all ``n + m`` pooled values as
    ``scipy.stats.wasserstein_distance`` does, and the same number: the
    prefix sums and ``H`` are accumulated in ``numpy.longdouble`` (80-bit
    on x86-64 Linux), which keeps the result within about ``1e-14``
    (relative) of SciPy's; where ``longdouble`` is plain double (Windows,
    macOS on ARM) the sums cancel more and the gap grows to about ``1e-11``.

    Examples
    --------
    >>> reference = WassersteinReference([2.0, 0.0, 1.0], reference_std=1.0)
    >>> result = reference.distance([1.0, 2.0, 3.0])
    >>> result.statistic, result.effect_size
    (1.0, 1.0)
    """

    def __init__(self, reference_sample: npt.ArrayLike, reference_std: float) -> None:
        values = np.asarray(reference_sample, dtype=np.float64)
        self.sorted = np.sort(values[np.isfinite(values)])
        self.std = reference_std
        self._center = float(self.sorted.mean()) if self.sorted.size else 0.0
        centred = (self.sorted - self._center).astype(np.longdouble)
        self._prefix = np.concatenate([np.zeros(1, dtype=np.longdouble), np.cumsum(centred)])
        # H at each reference value: the crossings ``q`` below are reference
        # values, so a window needs no search for them.
        self._at_reference = self._integral(self.sorted)

    def distance(self, current: npt.ArrayLike) -> TestResult:
        """Distance of the window's finite values from the reference (see :func:`wasserstein`)."""
        values = np.asarray(current, dtype=np.float64)
        window = np.sort(values[np.isfinite(values)])
        n, m = self.sorted.size, window.size
        if n == 0 or m == 0:
            return TestResult.empty("wasserstein", n, m, has_p_value=False)
        at_window = self._integral(window)
        start, end = window[:-1], window[1:]
        steps = np.arange(1, m)
        level = steps / m
        at_crossing = -(-steps * n // m) - 1
        crossing = self.sorted[at_crossing]
        split = np.clip(crossing, start, end)
        at_split = np.where(
            crossing <= start,
            at_window[:-1],
            np.where(crossing >= end, at_window[1:], self._at_reference[at_crossing]),
        )
        below = level * (split - start) - (at_split - at_window[:-1])
        pieces = at_window[1:] - at_window[:-1] - level * (end - start) + 2 * below
        right = self._prefix[n] / n - (window[-1] - self._center) + at_window[-1]
        distance = float(at_window[0] + pieces.sum() + right)
        # A constant reference (std 0): any movement is infinitely many stds.
        moved = 0.0 if distance == 0 else float("inf")
        effect = distance / self.std if self.std > 0 else moved
        return TestResult("wasserstein", distance, None, effect, int(n), int(m))

    def _integral(self, points: npt.NDArray[np.float64]) -> npt.NDArray[np.longdouble]:
        """``H(x)``, the integral of the reference ECDF up to each point."""
        below = np.searchsorted(self.sorted, points, side="right")
        shifted = points.astype(np.longdouble) - self._center
        integral: npt.NDArray[np.longdouble] = below * shifted - self._prefix[below]
        return integral / self.sorted.size


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
    value would make ``W`` infinite), computed as
    :class:`WassersteinReference` does (to about ``1e-14``); comparing many
    windows with one reference, prepare it once with that class. The effect
    size is ``W / std`` so that 0.1 means "the mass moved a tenth of a
    standard deviation on average"; for a constant reference (``std == 0``)
    it is 0 when ``W`` is 0 and ``inf`` otherwise. Capped samples make ``W``
    an estimate.

    Examples
    --------
    >>> result = wasserstein([0.0, 1.0, 2.0], [1.0, 2.0, 3.0], reference_std=1.0)
    >>> result.statistic, result.effect_size
    (1.0, 1.0)
    """
    return WassersteinReference(reference_sample, reference_std).distance(current)
