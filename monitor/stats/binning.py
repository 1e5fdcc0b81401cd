"""Reference bins for histogram tests (PSI, chi-square, Jensen-Shannon).

Notes
-----
Numeric bins are cut at the reference's quantiles. For ``n_bins`` bins the
candidate edges are ``numpy.quantile(finite_reference, [1/n_bins, ...,
(n_bins-1)/n_bins])`` with numpy's default (linear) method; equal edges are
collapsed into one, so a column with heavy ties or a constant column has
fewer bins. The outer bins are open: bin 0 is ``(-inf, e_1)``, bin ``i`` is
``[e_i, e_{i+1})`` and the last is ``[e_k, +inf)``, so every number, ``±inf``
included, falls in exactly one bin. NaN is not binned: it counts as a null.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
CountArray = npt.NDArray[np.int64]


def quantile_edges(reference: npt.ArrayLike, n_bins: int = 10) -> FloatArray:
    """Inner bin edges at the reference's quantiles, duplicates collapsed.

    Parameters
    ----------
    reference
        Reference values; NaN and ``±inf`` are ignored when placing edges.
    n_bins
        Number of bins wanted (the result gives at most ``n_bins`` bins).

    Returns
    -------
    numpy.ndarray
        Sorted, strictly increasing inner edges; ``len(edges) + 1`` bins.
        Empty when the reference has no finite value.

    Examples
    --------
    >>> quantile_edges([1.0, 2.0, 3.0, 4.0, 5.0], n_bins=4)
    array([2., 3., 4.])
    >>> quantile_edges([7.0, 7.0, 7.0], n_bins=10)
    array([7.])
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    values = np.asarray(reference, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size == 0 or n_bins == 1:
        return np.empty(0, dtype=np.float64)
    probabilities = np.arange(1, n_bins) / n_bins
    return np.unique(np.quantile(finite, probabilities))


def bin_counts(values: npt.ArrayLike, edges: FloatArray) -> CountArray:
    """Count non-NaN ``values`` in the bins defined by inner ``edges``.

    Examples
    --------
    >>> bin_counts([0.0, 2.0, 2.5, 9.0, float("nan"), float("inf")], np.array([2.0, 3.0]))
    array([1, 2, 2])
    """
    data = np.asarray(values, dtype=np.float64)
    data = data[~np.isnan(data)]
    index = np.searchsorted(edges, data, side="right")
    return np.bincount(index, minlength=edges.size + 1).astype(np.int64)


def proportions(counts: npt.ArrayLike) -> FloatArray:
    """Counts divided by their total (all zeros when the total is 0).

    Examples
    --------
    >>> proportions([1, 3])
    array([0.25, 0.75])
    """
    array = np.asarray(counts, dtype=np.float64)
    total = array.sum()
    shares: FloatArray = np.zeros_like(array) if total == 0 else array / total
    return shares
