"""WindowState: bounded, mergeable per-feature state of one window of events.

A window never keeps its events. Per feature it keeps counts on the
reference's bins or categories, null and out-of-range counts, and, for
numeric features, a :class:`~monitor.reservoir.Reservoir` sample for KS and
Wasserstein. Memory is fixed by the reference's bins and the sample cap,
whatever the window's length.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from monitor.framing import frame, unframe
from monitor.reference import NumericProfile, ReferenceProfile
from monitor.reservoir import Reservoir
from monitor.stats.binning import bin_counts
from monitor.values import FeatureKind, category_column, category_key, numeric_column

#: Values of each numeric feature kept for KS per window; windows up to this
#: size are tested exactly, larger ones through a uniform sample.
DEFAULT_WINDOW_SAMPLE_CAP = 20_000
WINDOW_STATE_MAGIC = b"DSWS"
WINDOW_STATE_VERSION = 1

FloatArray = npt.NDArray[np.float64]
CountArray = npt.NDArray[np.int64]


class NumericWindow:
    """Window state of one numeric feature: bin counts, nulls, range, sample.

    Examples
    --------
    >>> window = NumericWindow(np.array([0.0]), 0.0, 1.0, Reservoir(100, np.random.default_rng(0)))
    >>> window.update_batch(np.array([-1.0, 0.5, np.nan, 2.0]))
    >>> window.counts.tolist(), window.n_null, window.n_out_of_range
    ([1, 2], 1, 2)
    """

    kind = FeatureKind.NUMERIC

    def __init__(
        self, edges: FloatArray, minimum: float, maximum: float, reservoir: Reservoir
    ) -> None:
        self.edges = edges
        self.minimum = minimum
        self.maximum = maximum
        self.reservoir = reservoir
        self.counts: CountArray = np.zeros(edges.size + 1, dtype=np.int64)
        self.n_null = 0
        self.n_out_of_range = 0

    @property
    def n(self) -> int:
        """Non-null values seen."""
        return int(self.counts.sum())

    def update_batch(self, values: FloatArray) -> None:
        """Add a column of values (NaN = null)."""
        nulls = np.isnan(values)
        present = values[~nulls] if nulls.any() else values
        self.n_null += int(values.size - present.size)
        self.counts += bin_counts(present, self.edges)
        self.n_out_of_range += int(
            np.count_nonzero((present < self.minimum) | (present > self.maximum))
        )
        self.reservoir.update_batch(present)

    def update(self, value: Any) -> None:
        """Add one raw value (``None`` or NaN = null)."""
        number = np.nan if value is None else float(value)
        self.update_batch(np.array([number], dtype=np.float64))

    def absorb(self, other: FeatureWindow) -> None:
        """Add another window's state of the same feature to this one."""
        if not isinstance(other, NumericWindow) or not np.array_equal(self.edges, other.edges):
            raise ValueError("cannot merge windows built on different reference bins")
        self.counts = self.counts + other.counts
        self.n_null += other.n_null
        self.n_out_of_range += other.n_out_of_range
        self.reservoir = self.reservoir.merge(other.reservoir)


class CategoricalWindow:
    """Window state of one categorical feature: category counts and nulls.

    The last count is the "other/unseen" bin: values not among the
    reference's kept categories.

    Examples
    --------
    >>> window = CategoricalWindow(("a", "b"))
    >>> window.update_batch(np.array(["a", "z", None, "a"], dtype=object))
    >>> window.counts.tolist(), window.n_null
    ([2, 0, 1], 1)
    """

    kind = FeatureKind.CATEGORICAL

    def __init__(self, categories: tuple[str, ...]) -> None:
        self.categories = categories
        self._index = pd.Index(categories, dtype=object)
        self.counts: CountArray = np.zeros(len(categories) + 1, dtype=np.int64)
        self.n_null = 0

    @property
    def n(self) -> int:
        """Non-null values seen."""
        return int(self.counts.sum())

    @property
    def n_unseen(self) -> int:
        """Values in the "other/unseen" bin."""
        return int(self.counts[-1])

    def update_batch(self, keys: npt.NDArray[np.object_]) -> None:
        """Add a column of category keys (``None`` = null)."""
        positions = self._index.get_indexer(pd.Index(keys, dtype=object))
        # Nulls and unseen categories both come back as -1; telling them
        # apart only there keeps the null check off the common path.
        missing = np.flatnonzero(positions < 0)
        nulls = missing[pd.isna(keys[missing])]
        self.n_null += int(nulls.size)
        positions[missing] = len(self.categories)
        self.counts += np.bincount(
            np.delete(positions, nulls) if nulls.size else positions,
            minlength=self.counts.size,
        )

    def update(self, value: Any) -> None:
        """Add one raw value."""
        self.update_batch(np.array([category_key(value)], dtype=object))

    def absorb(self, other: FeatureWindow) -> None:
        """Add another window's state of the same feature to this one."""
        if not isinstance(other, CategoricalWindow) or self.categories != other.categories:
            raise ValueError("cannot merge windows built on different reference categories")
        self.counts = self.counts + other.counts
        self.n_null += other.n_null


FeatureWindow = NumericWindow | CategoricalWindow


class WindowState:
    """State of one window of events for every feature of a reference profile.

    Parameters
    ----------
    features
        Per-feature window state, usually from :meth:`for_profile`.
    n_rows
        Events seen.

    Examples
    --------
    >>> frame = pd.DataFrame({"x": np.arange(100.0), "c": ["a", "b"] * 50})
    >>> profile = ReferenceProfile.from_frame(frame, model="m", model_version="1")
    >>> left, right = WindowState.for_profile(profile), WindowState.for_profile(profile)
    >>> left.update_frame(frame.iloc[:60])
    >>> right.update({"x": 5.0, "c": "b"})
    >>> merged = left.merge(right)
    >>> merged.n_rows, merged.features["c"].counts.tolist()
    (61, [30, 31, 0])
    >>> WindowState.from_bytes(merged.to_bytes()).features["x"].n
    61
    """

    def __init__(self, features: Mapping[str, FeatureWindow], n_rows: int = 0) -> None:
        self.features = dict(features)
        self.n_rows = n_rows

    @classmethod
    def for_profile(
        cls,
        profile: ReferenceProfile,
        sample_cap: int = DEFAULT_WINDOW_SAMPLE_CAP,
        seed: int = 0,
    ) -> WindowState:
        """An empty window on the profile's bins, categories and range."""
        features: dict[str, FeatureWindow] = {}
        for position, (name, feature) in enumerate(profile.features.items()):
            if isinstance(feature, NumericProfile):
                reservoir = Reservoir(sample_cap, np.random.default_rng([seed, position]))
                features[name] = NumericWindow(
                    feature.edges, feature.minimum, feature.maximum, reservoir
                )
            else:
                features[name] = CategoricalWindow(feature.categories)
        return cls(features)

    def update_frame(self, frame: pd.DataFrame) -> None:
        """Add a batch of events, one column per feature (absent column = nulls)."""
        for name, window in self.features.items():
            if name not in frame.columns:
                window.n_null += len(frame)
            elif isinstance(window, NumericWindow):
                window.update_batch(numeric_column(frame[name], name))
            else:
                window.update_batch(category_column(frame[name]))
        self.n_rows += len(frame)

    def update(self, features: Mapping[str, Any]) -> None:
        """Add one event's features (absent feature = null)."""
        for name, window in self.features.items():
            window.update(features.get(name))
        self.n_rows += 1

    def merge(self, other: WindowState) -> WindowState:
        """The state of both windows' events together (inputs unchanged)."""
        if self.features.keys() != other.features.keys():
            raise ValueError("cannot merge window states of different features")
        merged = WindowState.from_bytes(self.to_bytes())  # a deep copy
        for name, window in merged.features.items():
            window.absorb(other.features[name])
        merged.n_rows += other.n_rows
        return merged

    def to_bytes(self) -> bytes:
        """Compact binary form, for changelogs and snapshots."""
        header: dict[str, Any] = {"n_rows": self.n_rows, "features": []}
        arrays: list[np.ndarray[Any, Any]] = []
        for name, window in self.features.items():
            entry: dict[str, Any] = {
                "name": name,
                "kind": window.kind.value,
                "n_null": window.n_null,
            }
            arrays.append(window.counts)
            if isinstance(window, NumericWindow):
                entry |= {
                    "minimum": window.minimum,
                    "maximum": window.maximum,
                    "n_out_of_range": window.n_out_of_range,
                    "reservoir": window.reservoir.state(),
                }
                arrays.extend([window.edges, window.reservoir.values])
            else:
                entry["categories"] = list(window.categories)
            header["features"].append(entry)
        header["arrays"] = [[str(a.dtype), int(a.size)] for a in arrays]
        body = b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)
        return frame(WINDOW_STATE_MAGIC, WINDOW_STATE_VERSION, header, body)

    @classmethod
    def from_bytes(cls, data: bytes) -> WindowState:
        """Inverse of :meth:`to_bytes`."""
        header, body = unframe(data, WINDOW_STATE_MAGIC, WINDOW_STATE_VERSION, "window state")
        offset = 0
        arrays = []
        for dtype, size in header["arrays"]:
            array = np.frombuffer(body, dtype=np.dtype(dtype), count=size, offset=offset)
            arrays.append(array.copy())
            offset += array.nbytes
        pending = iter(arrays)
        features: dict[str, FeatureWindow] = {}
        for entry in header["features"]:
            counts = next(pending)
            window: FeatureWindow
            if entry["kind"] == FeatureKind.NUMERIC.value:
                edges, values = next(pending), next(pending)
                window = NumericWindow(
                    edges,
                    entry["minimum"],
                    entry["maximum"],
                    Reservoir.restore(entry["reservoir"], values),
                )
                window.n_out_of_range = entry["n_out_of_range"]
            else:
                window = CategoricalWindow(tuple(entry["categories"]))
            window.counts = counts
            window.n_null = entry["n_null"]
            features[entry["name"]] = window
        return cls(features, header["n_rows"])
