"""Tests of monitor.reservoir.Reservoir: Algorithm R sampling, merging, state."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from monitor.reservoir import Reservoir

FloatArray = npt.NDArray[np.float64]

#: Deliberately generous, but a biased sampler fails it by a wide margin.
MAX_Z = 5.0
MIN_P_VALUE = 1e-4


def make(capacity: int, seed: int) -> Reservoir:
    """A reservoir with a seeded generator."""
    return Reservoir(capacity, np.random.default_rng(seed))


def fed(capacity: int, seed: int, values: FloatArray) -> Reservoir:
    """A reservoir that has been offered ``values`` as one batch."""
    reservoir = make(capacity, seed)
    reservoir.update_batch(values)
    return reservoir


def is_sub_multiset(part: FloatArray, whole: FloatArray) -> bool:
    """Whether every value of ``part`` occurs in ``whole`` at least as often."""
    have = Counter(whole.tolist())
    return all(have[value] >= count for value, count in Counter(part.tolist()).items())


def assert_uniform_inclusion(counts: FloatArray, runs: int, probability: float) -> None:
    """Inclusion counts per item look like Binomial(runs, probability) draws."""
    expected = runs * probability
    sd = np.sqrt(runs * probability * (1 - probability))
    z = np.abs(counts - expected) / sd
    assert z.max() < MAX_Z, f"max |z| = {z.max():.2f}; counts = {counts.tolist()}"
    p_value = stats.chisquare(counts, np.full(counts.size, counts.sum() / counts.size)).pvalue
    assert p_value > MIN_P_VALUE, f"chi-square p = {p_value:.2e}; counts = {counts.tolist()}"


def test_below_capacity_keeps_every_value_in_order() -> None:
    """Until the reservoir is full, it holds every offered value in stream order."""
    reservoir = make(10, 0)
    reservoir.update_batch(np.array([3.0, -1.0, np.inf]))
    reservoir.update(7.5)
    reservoir.update_batch(np.array([2.0, 2.0]))
    assert reservoir.values.tolist() == [3.0, -1.0, np.inf, 7.5, 2.0, 2.0]
    assert reservoir.seen == 6


def test_exactly_at_capacity_keeps_every_value() -> None:
    """A stream exactly as long as the capacity is kept whole, in order."""
    reservoir = fed(5, 1, np.arange(5.0))
    assert reservoir.values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_single_value_update() -> None:
    """update() of one value counts it as seen and keeps it."""
    reservoir = make(3, 0)
    reservoir.update(4.25)
    assert reservoir.seen == 1
    assert reservoir.values.tolist() == [4.25]


def test_empty_batch_changes_nothing() -> None:
    """An empty batch neither counts as seen nor draws from the generator."""
    reservoir = fed(3, 0, np.arange(10.0))
    before = (reservoir.seen, reservoir.values.copy(), reservoir.state()["rng"])
    reservoir.update_batch(np.empty(0, dtype=np.float64))
    assert reservoir.seen == before[0]
    assert np.array_equal(reservoir.values, before[1])
    assert reservoir.state()["rng"] == before[2]


@settings(max_examples=60, deadline=None)
@given(
    capacity=st.integers(1, 12),
    chunks=st.lists(st.integers(0, 15), max_size=8),
    seed=st.integers(0, 2**32 - 1),
)
def test_size_is_min_of_seen_and_capacity(capacity: int, chunks: list[int], seed: int) -> None:
    """After every batch, seen counts all values and size is min(seen, capacity)."""
    reservoir = make(capacity, seed)
    stream: list[float] = []
    for length in chunks:
        batch = np.arange(len(stream), len(stream) + length, dtype=np.float64)
        stream.extend(batch.tolist())
        reservoir.update_batch(batch)
        assert reservoir.seen == len(stream)
        assert reservoir.values.size == min(len(stream), capacity)
        assert is_sub_multiset(reservoir.values, np.array(stream))
        # Values are distinct in this stream, so the sample is too.
        assert np.unique(reservoir.values).size == reservoir.values.size


@settings(max_examples=40, deadline=None)
@given(
    capacity=st.integers(1, 10),
    chunks=st.lists(st.integers(0, 12), max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
def test_batch_equals_one_by_one_with_same_seed(
    capacity: int, chunks: list[int], seed: int
) -> None:
    """Batches apply replacements in stream order: same seed, same sample as one-by-one."""
    stream = np.arange(float(sum(chunks)))
    batched = make(capacity, seed)
    start = 0
    for length in chunks:
        batched.update_batch(stream[start : start + length])
        start += length
    single = make(capacity, seed)
    for value in stream:
        single.update(float(value))
    assert batched.seen == single.seen
    assert np.array_equal(batched.values, single.values)


def test_batch_inclusion_is_uniform() -> None:
    """Batch updates: each of 20 stream values is kept in ~5/20 of seeded runs."""
    runs, capacity, length = 4000, 5, 20
    counts = np.zeros(length)
    stream = np.arange(float(length))
    for seed in range(runs):
        counts[fed(capacity, seed, stream).values.astype(np.int64)] += 1
    assert counts.sum() == runs * capacity
    assert_uniform_inclusion(counts, runs, capacity / length)


def test_one_by_one_inclusion_is_uniform() -> None:
    """Single-value updates: each of 20 stream values is kept in ~5/20 of seeded runs."""
    runs, capacity, length = 1500, 5, 20
    counts = np.zeros(length)
    for seed in range(runs):
        reservoir = make(capacity, 10_000 + seed)
        for value in range(length):
            reservoir.update(float(value))
        counts[reservoir.values.astype(np.int64)] += 1
    assert counts.sum() == runs * capacity
    assert_uniform_inclusion(counts, runs, capacity / length)


def test_chunked_batch_inclusion_is_uniform() -> None:
    """Uneven batches (crossing the fill point): inclusion stays uniform."""
    runs, capacity = 3000, 5
    chunks = [3, 4, 1, 7, 5]
    length = sum(chunks)
    counts = np.zeros(length)
    stream = np.arange(float(length))
    for seed in range(runs):
        reservoir = make(capacity, 50_000 + seed)
        start = 0
        for size in chunks:
            reservoir.update_batch(stream[start : start + size])
            start += size
        counts[reservoir.values.astype(np.int64)] += 1
    assert_uniform_inclusion(counts, runs, capacity / length)


values_strategy = st.lists(st.integers(-5, 5).map(float), max_size=40)


@settings(max_examples=120, deadline=None)
@given(
    capacity=st.integers(1, 15),
    first=values_strategy,
    second=values_strategy,
    seeds=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
)
def test_merge_properties(
    capacity: int, first: list[float], second: list[float], seeds: tuple[int, int]
) -> None:
    """Merging counts both streams, keeps min(cap, n1+n2) values, all from the union."""
    left = fed(capacity, seeds[0], np.array(first, dtype=np.float64))
    right = fed(capacity, seeds[1], np.array(second, dtype=np.float64))
    right_before = (right.seen, right.values.copy())
    merged = left.merge(right)
    total = len(first) + len(second)
    union = np.array(first + second, dtype=np.float64)
    assert merged.seen == total
    assert merged.capacity == capacity
    assert merged.values.size == min(capacity, total)
    assert is_sub_multiset(merged.values, union)
    if total <= capacity:
        assert Counter(merged.values.tolist()) == Counter(union.tolist())
    # The other reservoir is left as it was.
    assert right.seen == right_before[0]
    assert np.array_equal(right.values, right_before[1])
    # A merged reservoir keeps sampling: size stays min(seen, capacity).
    merged.update_batch(np.array([99.0] * 3))
    assert merged.seen == total + 3
    assert merged.values.size == min(capacity, total + 3)


@pytest.mark.parametrize(("n1", "n2", "capacity"), [(30, 10, 8), (5, 30, 8), (3, 9, 4)])
def test_merge_inclusion_is_uniform(n1: int, n2: int, capacity: int) -> None:
    """Each item of either sub-stream is in the merged sample with probability cap/(n1+n2)."""
    runs = 3000
    total = n1 + n2
    counts = np.zeros(total)
    first = np.arange(float(n1))
    second = np.arange(float(n1), float(total))
    for seed in range(runs):
        left = fed(capacity, 2 * seed, first)
        right = fed(capacity, 2 * seed + 1, second)
        merged = left.merge(right)
        counts[merged.values.astype(np.int64)] += 1
    assert counts.sum() == runs * capacity
    probability = capacity / total
    assert_uniform_inclusion(counts, runs, probability)
    # The two sub-streams' mean inclusion rates agree (a naive merge would not).
    rate_first = counts[:n1].mean() / runs
    rate_second = counts[n1:].mean() / runs
    assert abs(rate_first - probability) < 0.02
    assert abs(rate_second - probability) < 0.02


def test_merge_with_empty_reservoir() -> None:
    """Merging with an empty reservoir (either side) keeps the other's sample."""
    full = fed(4, 0, np.arange(10.0))
    empty = make(4, 1)
    for merged in (full.merge(empty), empty.merge(full)):
        assert merged.seen == 10
        assert sorted(merged.values.tolist()) == sorted(full.values.tolist())


def test_merge_capacity_mismatch_raises() -> None:
    """Reservoirs of different capacities cannot be merged."""
    with pytest.raises(ValueError, match="cannot merge reservoirs of different capacities"):
        make(3, 0).merge(make(4, 0))


def test_capacity_below_one_raises() -> None:
    """A capacity below 1 is refused."""
    with pytest.raises(ValueError, match="reservoir capacity must be at least 1, got 0"):
        make(0, 0)


@pytest.mark.parametrize("already_seen", [0, 3, 8, 50])
def test_state_restore_continues_identically(already_seen: int) -> None:
    """A reservoir restored from (JSON-encoded) state() draws exactly as the original would."""
    original = fed(8, 123, np.arange(float(already_seen)))
    state = json.loads(json.dumps(original.state()))
    restored = Reservoir.restore(state, original.values.copy())
    assert restored.capacity == original.capacity
    assert restored.seen == original.seen
    assert np.array_equal(restored.values, original.values)
    future = np.arange(1000.0, 1100.0)
    for reservoir in (original, restored):
        reservoir.update_batch(future[:40])
        for value in future[40:60]:
            reservoir.update(float(value))
        reservoir.update_batch(future[60:])
    assert restored.seen == original.seen == already_seen + 100
    assert np.array_equal(restored.values, original.values)
    # And the generators are still in step.
    assert restored.state() == original.state()


def test_restore_does_not_alias_values() -> None:
    """Restoring copies the values: later updates leave the source array alone."""
    source = np.arange(3.0)
    restored = Reservoir.restore(make(3, 0).state() | {"seen": 3}, source)
    restored.update_batch(np.arange(100.0, 200.0))
    assert source.tolist() == [0.0, 1.0, 2.0]
