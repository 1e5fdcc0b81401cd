"""Tests of monitor.windows: per-feature window state, merging and serialisation."""

from __future__ import annotations

from collections import Counter

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.reference import ReferenceProfile
from monitor.reservoir import Reservoir
from monitor.values import FeatureKind
from monitor.windows import CategoricalWindow, NumericWindow, WindowState

FloatArray = npt.NDArray[np.float64]
Row = tuple[float | None, str | None, int | None]
COLUMNS = ["x", "c", "k"]


def reference_frame(seed: int = 0, rows: int = 200) -> pd.DataFrame:
    """A reference with a numeric, a string categorical and an integer categorical column."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "c": rng.choice(np.array(["a", "b", "c"], dtype=object), size=rows),
            "k": rng.integers(1, 4, size=rows),
        }
    )


PROFILE = ReferenceProfile.from_frame(reference_frame(), model="m", model_version="1")


def frame_of(rows: list[Row]) -> pd.DataFrame:
    """Events as a DataFrame, the way a consumer would build one from records."""
    return pd.DataFrame.from_records(rows, columns=COLUMNS)


def numeric(state: WindowState, name: str = "x") -> NumericWindow:
    """The numeric window of ``name``."""
    window = state.features[name]
    assert isinstance(window, NumericWindow)
    return window


def categorical(state: WindowState, name: str) -> CategoricalWindow:
    """The categorical window of ``name``."""
    window = state.features[name]
    assert isinstance(window, CategoricalWindow)
    return window


def multiset(values: FloatArray) -> Counter[float]:
    """Values as a multiset."""
    return Counter(values.tolist())


def assert_same_counts(left: WindowState, right: WindowState) -> None:
    """Rows, per-feature counts, nulls and out-of-range counts are equal."""
    assert left.n_rows == right.n_rows
    assert left.features.keys() == right.features.keys()
    for name, window in left.features.items():
        other = right.features[name]
        assert type(window) is type(other), name
        assert window.counts.tolist() == other.counts.tolist(), name
        assert window.n_null == other.n_null, name
        if isinstance(window, NumericWindow):
            assert isinstance(other, NumericWindow)
            assert window.n_out_of_range == other.n_out_of_range, name
            assert np.array_equal(window.edges, other.edges), name
            assert window.reservoir.seen == other.reservoir.seen, name
            assert window.reservoir.values.size == other.reservoir.values.size, name


def assert_identical(left: WindowState, right: WindowState) -> None:
    """Everything, reservoir samples and generator states included, is equal."""
    assert_same_counts(left, right)
    for name, window in left.features.items():
        other = right.features[name]
        assert window.counts.dtype == other.counts.dtype
        if isinstance(window, NumericWindow):
            assert isinstance(other, NumericWindow)
            assert window.minimum == other.minimum
            assert window.maximum == other.maximum
            assert window.edges.dtype == other.edges.dtype
            assert np.array_equal(window.reservoir.values, other.reservoir.values)
            assert window.reservoir.state() == other.reservoir.state()
        else:
            assert isinstance(other, CategoricalWindow)
            assert window.categories == other.categories


finite_or_special = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), 0.0, -0.0]),
)
rows_strategy = st.lists(
    st.tuples(
        finite_or_special,
        st.sampled_from(["a", "b", "c", "z", "unseen", None]),
        st.sampled_from([1, 2, 3, 7, None]),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(rows=rows_strategy, sample_cap=st.sampled_from([3, 10, 1000]))
def test_batch_and_single_updates_agree(rows: list[Row], sample_cap: int) -> None:
    """update_frame and one-event update() give the same counts, nulls, range and sample."""
    batch = WindowState.for_profile(PROFILE, sample_cap=sample_cap, seed=5)
    batch.update_frame(frame_of(rows))
    single = WindowState.for_profile(PROFILE, sample_cap=sample_cap, seed=5)
    for x, c, k in rows:
        single.update({"x": x, "c": c, "k": k})
    assert_same_counts(batch, single)
    present = [x for x, _, _ in rows if x is not None and not np.isnan(x)]
    if len(present) <= sample_cap:
        # Below the cap both keep every present value, in stream order.
        assert numeric(batch).reservoir.values.tolist() == present
    assert_identical(batch, single)


@settings(max_examples=60, deadline=None)
@given(
    rows=rows_strategy,
    data=st.data(),
    sample_cap=st.sampled_from([4, 15, 1000]),
)
def test_merge_equals_state_of_concatenation(
    rows: list[Row], data: st.DataObject, sample_cap: int
) -> None:
    """merge(state(A), state(B)) matches state(A+B) in every count and the sample."""
    split = data.draw(st.integers(0, len(rows)), label="split")
    first = WindowState.for_profile(PROFILE, sample_cap=sample_cap, seed=1)
    first.update_frame(frame_of(rows[:split]))
    second = WindowState.for_profile(PROFILE, sample_cap=sample_cap, seed=2)
    second.update_frame(frame_of(rows[split:]))
    whole = WindowState.for_profile(PROFILE, sample_cap=sample_cap, seed=3)
    whole.update_frame(frame_of(rows))
    first_bytes, second_bytes = first.to_bytes(), second.to_bytes()

    merged = first.merge(second)

    assert_same_counts(merged, whole)
    assert merged.n_rows == len(rows)
    merged_sample = numeric(merged).reservoir.values
    present = np.array(
        [x for x, _, _ in rows if x is not None and not np.isnan(x)], dtype=np.float64
    )
    assert numeric(merged).reservoir.seen == present.size
    assert merged_sample.size == min(present.size, sample_cap)
    if present.size <= sample_cap:
        assert multiset(merged_sample) == multiset(present)
        assert multiset(merged_sample) == multiset(numeric(whole).reservoir.values)
    else:
        have = multiset(present)
        assert all(have[v] >= n for v, n in multiset(merged_sample).items())
    # Inputs are left unchanged.
    assert first.to_bytes() == first_bytes
    assert second.to_bytes() == second_bytes


def test_merge_with_single_updated_state() -> None:
    """A state fed by update_frame merges with one fed by single updates."""
    rows: list[Row] = [(0.5, "a", 1), (None, "z", None), (np.inf, None, 3), (-3.0, "b", 7)]
    first = WindowState.for_profile(PROFILE)
    first.update_frame(frame_of(rows[:2]))
    second = WindowState.for_profile(PROFILE)
    for x, c, k in rows[2:]:
        second.update({"x": x, "c": c, "k": k})
    whole = WindowState.for_profile(PROFILE)
    whole.update_frame(frame_of(rows))
    merged = first.merge(second)
    assert_same_counts(merged, whole)
    assert multiset(numeric(merged).reservoir.values) == multiset(np.array([0.5, np.inf, -3.0]))


def test_to_bytes_round_trip_is_exact_and_continues_identically() -> None:
    """from_bytes(to_bytes()) restores every field, and future updates match the original."""
    rng = np.random.default_rng(11)
    events = pd.DataFrame(
        {
            "x": np.append(rng.normal(size=500), [np.nan, np.inf, -np.inf]),
            "c": list(rng.choice(np.array(["a", "b", "q"], dtype=object), size=501)) + [None] * 2,
            "k": np.append(rng.integers(0, 6, size=502).astype(np.float64), np.nan),
        }
    )
    original = WindowState.for_profile(PROFILE, sample_cap=100, seed=9)
    original.update_frame(events)
    restored = WindowState.from_bytes(original.to_bytes())
    assert_identical(original, restored)
    assert restored.to_bytes() == original.to_bytes()
    # Restored arrays are independent, writable copies.
    assert numeric(restored).counts.flags.writeable
    assert numeric(restored).reservoir.values.flags.writeable

    future = pd.DataFrame({"x": rng.normal(size=300), "c": ["b"] * 300, "k": [2] * 300})
    for state in (original, restored):
        state.update_frame(future.iloc[:150])
        state.update({"x": 0.25, "c": "a", "k": 1})
        state.update_frame(future.iloc[150:])
    assert_identical(original, restored)
    assert restored.to_bytes() == original.to_bytes()


def test_round_trip_on_profile_without_finite_values() -> None:
    """A window on an all-NaN numeric reference (NaN range) survives to_bytes/from_bytes."""
    frame = pd.DataFrame({"e": [np.nan] * 10})
    profile = ReferenceProfile.from_frame(
        frame, model="m", model_version="1", kinds={"e": FeatureKind.NUMERIC}
    )
    state = WindowState.for_profile(profile)
    state.update_frame(pd.DataFrame({"e": [1.0, np.nan, -2.0]}))
    window = numeric(state, "e")
    assert window.counts.tolist() == [2]
    assert window.n_null == 1
    assert window.n_out_of_range == 0
    restored = numeric(WindowState.from_bytes(state.to_bytes()), "e")
    assert np.isnan(restored.minimum)
    assert np.isnan(restored.maximum)
    assert restored.counts.tolist() == [2]
    assert restored.reservoir.values.tolist() == [1.0, -2.0]


def test_serialised_size_does_not_grow_with_window_length() -> None:
    """With sample_cap=1000, the state of 200k values is as large as that of 10k."""
    rng = np.random.default_rng(3)
    sizes = []
    for length in (10_000, 200_000):
        state = WindowState.for_profile(PROFILE, sample_cap=1000)
        state.update_frame(
            pd.DataFrame(
                {
                    "x": rng.normal(size=length),
                    "c": rng.choice(np.array(["a", "b", "d"], dtype=object), size=length),
                    "k": rng.integers(1, 5, size=length),
                }
            )
        )
        assert numeric(state).reservoir.values.size == 1000
        sizes.append(len(state.to_bytes()))
    # Only the digits of the counts (and of the generator state) may differ.
    assert abs(sizes[1] - sizes[0]) < 200
    # And the state is far smaller than the raw window (8 bytes a value).
    assert sizes[1] < 20_000


def test_absent_column_counts_as_nulls() -> None:
    """A feature missing from the frame, or from an event, counts as a null."""
    state = WindowState.for_profile(PROFILE)
    state.update_frame(pd.DataFrame({"x": [0.1, 0.2, 0.3]}))
    state.update({"x": 0.4})
    assert state.n_rows == 4
    assert categorical(state, "c").n_null == 4
    assert categorical(state, "c").n == 0
    assert categorical(state, "k").n_null == 4
    assert numeric(state).n_null == 0
    assert numeric(state).n == 4


def test_merge_different_features_raises() -> None:
    """States of profiles with different feature sets cannot be merged."""
    other_profile = ReferenceProfile.from_frame(
        reference_frame()[["x", "c"]], model="m", model_version="1"
    )
    with pytest.raises(ValueError, match="cannot merge window states of different features"):
        WindowState.for_profile(PROFILE).merge(WindowState.for_profile(other_profile))


def test_merge_different_edges_raises() -> None:
    """States built on different numeric bins cannot be merged."""
    shifted = reference_frame()
    shifted["x"] = shifted["x"] + 10.0
    other_profile = ReferenceProfile.from_frame(shifted, model="m", model_version="1")
    with pytest.raises(ValueError, match="cannot merge windows built on different reference bins"):
        WindowState.for_profile(PROFILE).merge(WindowState.for_profile(other_profile))


def test_merge_different_categories_raises() -> None:
    """States built on different category lists cannot be merged."""
    other = reference_frame()
    other["c"] = other["c"].replace({"a": "w"})
    other_profile = ReferenceProfile.from_frame(other, model="m", model_version="1")
    with pytest.raises(
        ValueError, match="cannot merge windows built on different reference categories"
    ):
        WindowState.for_profile(PROFILE).merge(WindowState.for_profile(other_profile))


def test_merge_different_sample_caps_raises() -> None:
    """States with different reservoir capacities cannot be merged."""
    with pytest.raises(ValueError, match="cannot merge reservoirs of different capacities"):
        WindowState.for_profile(PROFILE, sample_cap=10).merge(
            WindowState.for_profile(PROFILE, sample_cap=11)
        )


@pytest.mark.parametrize(
    "empty",
    [
        pd.DataFrame(columns=COLUMNS),
        pd.DataFrame({"x": np.empty(0), "c": np.empty(0, dtype=object), "k": np.empty(0)}),
    ],
    ids=["object-dtypes", "typed"],
)
def test_empty_update_frame_changes_nothing(empty: pd.DataFrame) -> None:
    """An empty batch leaves every count at zero."""
    state = WindowState.for_profile(PROFILE)
    state.update_frame(empty)
    assert state.n_rows == 0
    for window in state.features.values():
        assert window.n == 0
        assert window.n_null == 0
        assert window.counts.sum() == 0
    assert numeric(state).n_out_of_range == 0
    assert numeric(state).reservoir.seen == 0


def test_one_row_window() -> None:
    """A window of a single event has one count per feature in the right bin."""
    state = WindowState.for_profile(PROFILE)
    x_value = float(np.median(reference_frame()["x"]))
    state.update({"x": x_value, "c": "b", "k": 3})
    assert state.n_rows == 1
    x_window = numeric(state)
    expected_bin = int(np.searchsorted(x_window.edges, x_value, side="right"))
    assert x_window.counts.tolist() == [int(i == expected_bin) for i in range(x_window.counts.size)]
    assert x_window.reservoir.values.tolist() == [x_value]
    assert x_window.n_out_of_range == 0
    c_window = categorical(state, "c")
    assert c_window.counts[c_window.categories.index("b")] == 1
    assert c_window.n == 1
    k_window = categorical(state, "k")
    assert k_window.counts[k_window.categories.index("3")] == 1
    assert k_window.n_unseen == 0
    # And it survives a round trip.
    assert WindowState.from_bytes(state.to_bytes()).features["c"].counts.tolist() == (
        c_window.counts.tolist()
    )


def test_all_nan_column() -> None:
    """A column of only NaN counts every row as null and samples nothing."""
    state = WindowState.for_profile(PROFILE)
    state.update_frame(pd.DataFrame({"x": [np.nan] * 7, "c": [None] * 7, "k": [np.nan] * 7}))
    assert state.n_rows == 7
    for window in state.features.values():
        assert window.n_null == 7
        assert window.n == 0
    assert numeric(state).n_out_of_range == 0
    assert numeric(state).reservoir.seen == 0
    assert numeric(state).reservoir.values.size == 0


def test_infinities_go_to_outer_bins_and_are_out_of_range() -> None:
    """+inf lands in the last bin, -inf in the first, both out of the reference range."""
    state = WindowState.for_profile(PROFILE)
    state.update_frame(pd.DataFrame({"x": [np.inf, -np.inf, np.inf, 0.0]}))
    window = numeric(state)
    assert window.counts[0] == 1
    assert window.counts[-1] == 2
    assert window.n == 4
    assert window.n_null == 0
    assert window.n_out_of_range == 3
    assert multiset(window.reservoir.values) == multiset(np.array([np.inf, -np.inf, np.inf, 0.0]))


def test_out_of_range_counts_values_outside_reference_min_max() -> None:
    """Values strictly outside [minimum, maximum] count as out of range; the bounds do not."""
    state = WindowState.for_profile(PROFILE)
    window = numeric(state)
    low, high = window.minimum, window.maximum
    state.update_frame(
        pd.DataFrame({"x": [low, high, np.nextafter(low, -np.inf), np.nextafter(high, np.inf)]})
    )
    assert window.n_out_of_range == 2


def test_unseen_categories_go_to_other_bin() -> None:
    """Categories absent from the reference are counted in the last bin."""
    state = WindowState.for_profile(PROFILE)
    state.update_frame(pd.DataFrame({"c": ["a", "zz", "yy", None], "k": [1, 9, 2, 2]}))
    c_window, k_window = categorical(state, "c"), categorical(state, "k")
    assert c_window.n_unseen == 2
    assert c_window.n_null == 1
    assert k_window.n_unseen == 1
    assert k_window.counts[k_window.categories.index("2")] == 2


def test_integral_floats_match_integer_categories() -> None:
    """2.0 in a float column and 2 as a single event hit the reference category "2"."""
    batch = WindowState.for_profile(PROFILE)
    batch.update_frame(pd.DataFrame({"k": [2.0, np.nan, 3.0]}))
    single = WindowState.for_profile(PROFILE)
    for value in (2, None, 3.0):
        single.update({"k": value})
    assert categorical(batch, "k").counts.tolist() == categorical(single, "k").counts.tolist()
    assert categorical(batch, "k").n_unseen == 0


def test_large_integral_float_categories_batch_equals_single() -> None:
    """Integral floats beyond int64 get the same category key in batches and single events."""
    categories = ("100000000000000000000", "200000000000000000000", "5")
    values = [1e20, 2e20, 1e20, 5.0]
    batch = WindowState({"id": CategoricalWindow(categories)})
    batch.update_frame(pd.DataFrame({"id": values}))
    single = WindowState({"id": CategoricalWindow(categories)})
    for value in values:
        single.update({"id": value})
    assert categorical(single, "id").counts.tolist() == [2, 1, 1, 0]
    assert categorical(batch, "id").counts.tolist() == [2, 1, 1, 0]


def test_numeric_window_without_reservoir_room_still_counts() -> None:
    """A window with a 1-value sample still counts every value in the bins."""
    window = NumericWindow(np.array([0.0, 1.0]), -1.0, 2.0, Reservoir(1, np.random.default_rng(0)))
    window.update_batch(np.array([-5.0, 0.5, 0.5, 1.5, 3.0, np.nan]))
    assert window.counts.tolist() == [1, 2, 2]
    assert window.n_null == 1
    assert window.n_out_of_range == 2
    assert window.reservoir.seen == 5
    assert window.reservoir.values.size == 1


def test_from_bytes_rejects_other_data() -> None:
    """Bytes without the window-state magic are refused."""
    with pytest.raises(ValueError, match="not a driftstream window state"):
        WindowState.from_bytes(b"PK\x03\x04 not a window")
