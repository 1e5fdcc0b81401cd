"""Reservoir: a bounded, mergeable uniform sample of a stream of numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class Reservoir:
    """Uniform random sample of at most ``capacity`` values of a stream.

    Parameters
    ----------
    capacity
        Largest number of values kept.
    rng
        Random generator (its state is part of the reservoir's state).

    Notes
    -----
    Every value is kept until ``capacity`` values have been seen. Then the
    ``t``-th value (0-based) replaces slot ``j = floor(u (t + 1))`` when
    ``j < capacity`` (Vitter's Algorithm R), so each value seen so far is in
    the sample with probability ``capacity / seen``. A batch draws its ``u``
    all at once and applies the replacements in stream order.

    Merging two reservoirs of streams of ``n1`` and ``n2`` values keeps
    ``s = min(capacity, n1 + n2)`` values: ``k ~ Hypergeometric(n1, n2, s)``
    of them drawn without replacement from the first sample and ``s - k``
    from the second, which is a uniform sample of the union. When nothing
    was dropped (``n1 + n2 <= capacity``) the merge holds every value.

    Examples
    --------
    >>> reservoir = Reservoir(capacity=3, rng=np.random.default_rng(0))
    >>> reservoir.update_batch(np.arange(10.0))
    >>> reservoir.seen, reservoir.values.size
    (10, 3)
    """

    def __init__(self, capacity: int, rng: np.random.Generator) -> None:
        if capacity < 1:
            raise ValueError(f"reservoir capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.rng = rng
        self.seen = 0
        self._buffer: FloatArray = np.empty(0, dtype=np.float64)

    @property
    def values(self) -> FloatArray:
        """The sampled values (a view; order carries no meaning)."""
        return self._buffer[: min(self.seen, self.capacity)]

    def update(self, value: float) -> None:
        """Offer one value."""
        self.update_batch(np.array([value], dtype=np.float64))

    def update_batch(self, values: FloatArray) -> None:
        """Offer many values, in order."""
        size = min(self.seen, self.capacity)
        fill = min(self.capacity - size, values.size)
        if fill:
            self._reserve(size + fill)
            self._buffer[size : size + fill] = values[:fill]
            self.seen += fill
        rest = values[fill:]
        if rest.size == 0:
            return
        positions = self.seen + np.arange(rest.size, dtype=np.float64)
        slots = np.floor(self.rng.random(rest.size) * (positions + 1)).astype(np.int64)
        accepted = np.flatnonzero(slots < self.capacity)
        # Later values must win when two replace the same slot; ufunc.at
        # (unlike fancy assignment) is defined for repeated indices.
        latest = np.full(self.capacity, -1, dtype=np.int64)
        np.maximum.at(latest, slots[accepted], accepted)
        replaced = np.flatnonzero(latest >= 0)
        self._buffer[replaced] = rest[latest[replaced]]
        self.seen += rest.size

    def merge(self, other: Reservoir) -> Reservoir:
        """A reservoir of both streams (uses and advances ``self.rng``)."""
        if other.capacity != self.capacity:
            raise ValueError("cannot merge reservoirs of different capacities")
        total = self.seen + other.seen
        size = min(self.capacity, total)
        if total <= self.capacity:
            combined = np.concatenate([self.values, other.values])
        elif self.seen == 0 or other.seen == 0:
            combined = (self if other.seen == 0 else other).values.copy()
        else:
            from_self = int(self.rng.hypergeometric(self.seen, other.seen, size))
            combined = np.concatenate(
                [
                    self.rng.choice(self.values, from_self, replace=False),
                    self.rng.choice(other.values, size - from_self, replace=False),
                ]
            )
        return Reservoir.restore(
            {"capacity": self.capacity, "seen": total, "rng": self.rng.bit_generator.state},
            combined,
        )

    def state(self) -> dict[str, Any]:
        """JSON-ready state, without the values (see :meth:`restore`)."""
        return {"capacity": self.capacity, "seen": self.seen, "rng": self.rng.bit_generator.state}

    @classmethod
    def restore(cls, state: dict[str, Any], values: FloatArray) -> Reservoir:
        """Rebuild a reservoir from :meth:`state` and its values."""
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
        reservoir = cls(int(state["capacity"]), rng)
        reservoir.seen = int(state["seen"])
        reservoir._buffer = np.array(values, dtype=np.float64)
        return reservoir

    def _reserve(self, needed: int) -> None:
        if needed <= self._buffer.size:
            return
        grown = min(self.capacity, max(needed, 2 * self._buffer.size))
        buffer = np.empty(grown, dtype=np.float64)
        buffer[: self._buffer.size] = self._buffer
        self._buffer = buffer
