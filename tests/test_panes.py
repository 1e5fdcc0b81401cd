"""Window assembly from panes: count and time, tumbling and sliding, lateness, restore."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.panes import WindowAssembler
from monitor.reference import ReferenceProfile
from monitor.windows import NumericWindow, WindowState

PROFILE = ReferenceProfile.from_frame(
    pd.DataFrame({"x": np.arange(1000.0)}), model="m", model_version="1"
)


def assembler(kind: str, size: int, slide: int, lateness: int = 0) -> WindowAssembler:
    return WindowAssembler(
        kind,  # type: ignore[arg-type]
        size,
        slide,
        new_state=lambda _: WindowState.for_profile(PROFILE),
        profile_id="p1",
        allowed_lateness_ms=lateness,
    )


def feed(
    target: WindowAssembler, values: list[float], times: list[int], batch: int
) -> tuple[list[tuple[int, int, int, list[float]]], list[int]]:
    """Windows closed as (id, start, end, sorted values) and late row positions."""
    closed = []
    late: list[int] = []
    for start in range(0, len(values), batch):
        frame = pd.DataFrame({"x": values[start : start + batch]})
        outcome = target.update(frame, np.array(times[start : start + batch], dtype=np.int64))
        late.extend((outcome.late_rows + start).tolist())
        for window in outcome.closed:
            feature = window.state.features["x"]
            assert isinstance(feature, NumericWindow)
            sample = sorted(feature.reservoir.values.tolist())
            closed.append((window.window_id, window.start, window.end, sample))
    return [(i, s, e, v) for i, s, e, v in closed], late


def test_count_tumbling_windows_hold_consecutive_events() -> None:
    values = [float(v) for v in range(25)]
    closed, late = feed(assembler("count", 10, 10), values, list(range(25)), batch=7)
    assert [(i, s, e) for i, s, e, _ in closed] == [(0, 0, 10), (1, 10, 20)]
    assert closed[1][3] == [float(v) for v in range(10, 20)]
    assert late == []


def test_count_sliding_windows_overlap_by_panes() -> None:
    values = [float(v) for v in range(12)]
    closed, _ = feed(assembler("count", 6, 3), values, list(range(12)), batch=5)
    assert [(s, e) for _, s, e, _ in closed] == [(0, 6), (3, 9), (6, 12)]
    assert closed[1][3] == [float(v) for v in range(3, 9)]


def test_time_tumbling_windows_close_when_the_watermark_passes_their_end() -> None:
    times = [0, 10, 99, 100, 150, 199, 200]
    closed, late = feed(assembler("time", 100, 100), [float(t) for t in times], times, batch=3)
    assert [(s, e, v) for _, s, e, v in closed] == [
        (0, 100, [0.0, 10.0, 99.0]),
        (100, 200, [100.0, 150.0, 199.0]),
    ]
    assert late == []


def test_late_events_are_returned_not_counted() -> None:
    times = [0, 50, 120, 40, 130, 260, 110]
    target = assembler("time", 100, 100, lateness=30)
    closed, late = feed(target, [float(t) for t in times], times, batch=10)
    # 40 arrives while the watermark (120 - 30 = 90) has not passed 100: on time.
    # 110 arrives after 260 moved the watermark to 230: window [100, 200) closed.
    assert late == [6]
    assert [(s, v) for _, s, _, v in closed] == [(0, [0.0, 40.0, 50.0]), (100, [120.0, 130.0])]


def test_time_sliding_windows_reuse_panes() -> None:
    times = list(range(0, 400, 25))
    closed, _ = feed(assembler("time", 200, 100), [float(t) for t in times], times, batch=4)
    assert [(s, e) for _, s, e, _ in closed] == [(-100, 100), (0, 200), (100, 300)]
    assert closed[1][3] == [float(t) for t in range(0, 200, 25)]


def test_windows_of_mixed_references_are_skipped_and_new_panes_use_the_new_one() -> None:
    target = assembler("count", 4, 2)
    target.update(pd.DataFrame({"x": [1.0, 2.0]}), np.arange(2, dtype=np.int64))
    target.profile_id = "p2"
    outcome = target.update(pd.DataFrame({"x": [3.0, 4.0]}), np.arange(2, dtype=np.int64))
    assert outcome.closed == []
    assert outcome.skipped_windows == 1
    outcome = target.update(pd.DataFrame({"x": [5.0, 6.0]}), np.arange(2, dtype=np.int64))
    assert [(w.profile_id, w.state.n_rows) for w in outcome.closed] == [("p2", 4)]


@pytest.mark.parametrize(
    ("kind", "times"), [("count", [0, 1, 2, 3, 4, 5, 6]), ("time", [0, 5, 7, 12, 15, 18, 25])]
)
def test_a_window_open_when_the_reference_changes_keeps_the_one_it_was_opened_on(
    kind: str, times: list[int]
) -> None:
    """Tumbling windows of 3 events or 10 ms; "p2" arrives after the first window's second event.

    The first window is still built on, and closes with, "p1" (its bins and range); the next
    window is opened on "p2".
    """
    profiles = {
        "p1": PROFILE,
        "p2": ReferenceProfile.from_frame(
            pd.DataFrame({"x": np.arange(1000.0, 2000.0)}), model="m", model_version="1"
        ),
    }
    target = WindowAssembler(
        kind,  # type: ignore[arg-type]
        3 if kind == "count" else 10,
        3 if kind == "count" else 10,
        new_state=lambda ident: WindowState.for_profile(profiles[ident]),
        profile_id="p1",
    )
    frame = pd.DataFrame({"x": [float(t) for t in times]})
    stamps = np.array(times, dtype=np.int64)
    assert target.update(frame.iloc[:2], stamps[:2]).closed == []
    target.profile_id = "p2"
    outcome = target.update(frame.iloc[2:].reset_index(drop=True), stamps[2:])
    closed = []
    for window in outcome.closed:
        feature = window.state.features["x"]
        assert isinstance(feature, NumericWindow)
        closed.append((window.profile_id, window.state.n_rows, feature.minimum))
    assert closed == [("p1", 3, 0.0), ("p2", 3, 1000.0)]
    assert outcome.skipped_windows == 0


def test_mismatched_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="one timestamp per row"):
        assembler("count", 2, 2).update(pd.DataFrame({"x": [1.0]}), np.arange(2, dtype=np.int64))


@settings(max_examples=40, deadline=None)
@given(
    times=st.lists(st.integers(0, 2000), min_size=1, max_size=120),
    batch=st.integers(1, 40),
    lateness=st.sampled_from([0, 50, 300]),
    sliding=st.booleans(),
    cut=st.integers(0, 120),
)
def test_results_do_not_depend_on_batching_or_restores(
    times: list[int], batch: int, lateness: int, sliding: bool, cut: int
) -> None:
    """Event-by-event, any batching, and a snapshot/restore midway agree exactly."""
    slide = 100 if sliding else 200
    values = [float(i) for i in range(len(times))]
    one_by_one = feed(assembler("time", 200, slide, lateness), values, times, batch=1)
    batched = feed(assembler("time", 200, slide, lateness), values, times, batch=batch)
    assert batched == one_by_one

    cut = min(cut, len(times))
    first = assembler("time", 200, slide, lateness)
    head = feed(first, values[:cut], times[:cut], batch=batch)
    header, blobs = first.state()
    second = assembler("time", 200, slide, lateness)
    second.restore(header, iter(blobs))
    tail = feed(second, values[cut:], times[cut:], batch=batch)
    assert head[0] + tail[0] == one_by_one[0]
    assert head[1] + [row + cut for row in tail[1]] == one_by_one[1]
    if not sliding:  # each event is in one closed window, late, or still pending
        counted = sum(len(v) for *_, v in one_by_one[0])
        assert counted + len(one_by_one[1]) + second.pending_events() == len(times)


@pytest.mark.parametrize(("kind", "size", "slide"), [("count", 4, 2), ("time", 10, 10)])
def test_each_closed_window_says_after_how_many_rows_of_its_batch_it_closed(
    kind: str, size: int, slide: int
) -> None:
    """The closing row counts: a count window's last event, a time window's watermark crossing."""
    times = [0, 5, 12, 25, 31, 33, 47]
    target = assembler(kind, size, slide)
    frame = pd.DataFrame({"x": [float(t) for t in times]})
    head = target.update(frame.iloc[:3], np.array(times[:3], dtype=np.int64))
    tail = target.update(frame.iloc[3:].reset_index(drop=True), np.array(times[3:], dtype=np.int64))
    if kind == "count":  # windows [0, 4), [2, 6) close with events 3 and 5
        assert (head.closed_after_rows, tail.closed_after_rows) == ([], [1, 3])
    else:  # [0, 10) closes on 12, [10, 20) on 25, [20, 30) on 31, [30, 40) on 47
        assert (head.closed_after_rows, tail.closed_after_rows) == ([3], [1, 2, 4])
    for outcome in (head, tail):
        assert len(outcome.closed) == len(outcome.closed_after_rows)
