"""WindowAssembler: tumbling and sliding windows, by event count or event time, from panes.

A window of ``size`` that advances by ``slide`` is the union of
``size / slide`` consecutive *panes*, tumbling sub-windows of ``slide``
(a tumbling window is a sliding window whose slide is its size). Events go
into exactly one pane; a window closes when its last pane is complete, and
its state is the merge of its panes' :class:`~monitor.windows.WindowState`.
So each event is binned once, whatever the overlap, and memory is bounded
by the panes that can still be part of an open window.

Count windows number events of a model version in arrival order: window
``i`` covers positions ``[i * slide, i * slide + size)`` and closes when the
event at position ``i * slide + size - 1`` arrives.

Time windows use event time. The watermark is the latest event time seen
minus ``allowed_lateness``; window ``[start, start + size)`` closes when the
watermark reaches its end. An event whose every window has already closed
is *late*: it is returned to the caller (which dead-letters it), never
silently dropped. Lateness is judged event by event in arrival order, also
inside a batch, so results do not depend on how events were batched.
Windows without events are not emitted.

Each pane is built on one reference profile (by id). A new reference takes
effect for panes opened after it arrives; a sliding window whose panes mix
references is skipped, because its bins cannot be merged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from monitor.windows import WindowState

IntArray = npt.NDArray[np.int64]
NewWindowState = Callable[[str], WindowState]


@dataclass
class Pane:
    """One slide's worth of events on one reference profile."""

    profile_id: str
    state: WindowState
    first_ms: int | None = None
    last_ms: int | None = None

    def add(self, frame: pd.DataFrame, timestamps_ms: IntArray) -> None:
        """Add rows and widen the event-time range."""
        self.state.update_frame(frame)
        if timestamps_ms.size:
            low, high = int(timestamps_ms.min()), int(timestamps_ms.max())
            self.first_ms = low if self.first_ms is None else min(self.first_ms, low)
            self.last_ms = high if self.last_ms is None else max(self.last_ms, high)


@dataclass(frozen=True)
class ClosedWindow:
    """A complete window: its bounds and the merged state of its panes.

    ``start`` and ``end`` are event positions for count windows and epoch
    milliseconds for time windows.
    """

    kind: Literal["count", "time"]
    window_id: int
    start: int
    end: int
    profile_id: str
    state: WindowState
    first_ms: int | None
    last_ms: int | None


@dataclass
class UpdateOutcome:
    """What one :meth:`WindowAssembler.update` produced."""

    closed: list[ClosedWindow] = field(default_factory=list)
    #: For each window of ``closed``: how many rows of the batch had been
    #: added when it closed (the row that closed it included).
    closed_after_rows: list[int] = field(default_factory=list)
    late_rows: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    skipped_windows: int = 0


class WindowAssembler:
    """Panes of one model version, and the windows they make.

    Parameters
    ----------
    kind
        ``"count"`` or ``"time"``.
    size, slide
        Window size and advance, in events (count) or milliseconds (time);
        ``slide`` divides ``size``; ``slide == size`` is tumbling.
    allowed_lateness_ms
        Time windows: how far behind the latest event time an event may be
        and still count.
    new_state
        Makes an empty :class:`WindowState` for a profile id.
    profile_id
        The reference new panes are built on.

    Examples
    --------
    >>> from monitor.reference import ReferenceProfile
    >>> profile = ReferenceProfile.from_frame(
    ...     pd.DataFrame({"x": np.arange(100.0)}), model="m", model_version="1"
    ... )
    >>> assembler = WindowAssembler(
    ...     "count", size=4, slide=2,
    ...     new_state=lambda _: WindowState.for_profile(profile), profile_id="p1",
    ... )
    >>> frame = pd.DataFrame({"x": np.arange(7.0)})
    >>> outcome = assembler.update(frame, np.arange(7, dtype=np.int64))
    >>> [(w.window_id, w.start, w.end, w.state.n_rows) for w in outcome.closed]
    [(0, 0, 4, 4), (1, 2, 6, 4)]
    >>> outcome.closed_after_rows
    [4, 6]
    >>> assembler.position
    7
    """

    def __init__(
        self,
        kind: Literal["count", "time"],
        size: int,
        slide: int,
        new_state: NewWindowState,
        profile_id: str,
        allowed_lateness_ms: int = 0,
    ) -> None:
        if size <= 0 or slide <= 0 or size % slide:
            raise ValueError(f"slide ({slide}) must be positive and divide size ({size})")
        self.kind = kind
        self.size = size
        self.slide = slide
        self.allowed_lateness_ms = allowed_lateness_ms
        self.new_state = new_state
        self.profile_id = profile_id
        self.panes: dict[int, Pane] = {}
        self.position = 0
        self.max_event_ms: int | None = None
        #: Windows ending at or before this point are closed (time windows).
        self.closed_through: int | None = None

    @property
    def panes_per_window(self) -> int:
        """``size / slide``."""
        return self.size // self.slide

    @property
    def watermark(self) -> int | None:
        """Latest event time minus the allowed lateness (time windows)."""
        if self.max_event_ms is None:
            return None
        return self.max_event_ms - self.allowed_lateness_ms

    def update(self, frame: pd.DataFrame, timestamps_ms: IntArray) -> UpdateOutcome:
        """Add a batch of events in arrival order; close the windows they complete."""
        if len(frame) != timestamps_ms.size:
            raise ValueError("one timestamp per row is needed")
        outcome = UpdateOutcome()
        if self.kind == "count":
            self._update_count(frame, timestamps_ms, outcome)
        else:
            self._update_time(frame, timestamps_ms, outcome)
        return outcome

    def _pane(self, index: int) -> Pane:
        pane = self.panes.get(index)
        if pane is None:
            pane = Pane(self.profile_id, self.new_state(self.profile_id))
            self.panes[index] = pane
        return pane

    def _update_count(
        self, frame: pd.DataFrame, timestamps_ms: IntArray, outcome: UpdateOutcome
    ) -> None:
        row = 0
        while row < len(frame):
            index = self.position // self.slide
            take = min(len(frame) - row, (index + 1) * self.slide - self.position)
            self._pane(index).add(frame.iloc[row : row + take], timestamps_ms[row : row + take])
            row += take
            self.position += take
            if self.position % self.slide == 0:
                first = index - self.panes_per_window + 1
                if first >= 0:
                    self._close(first * self.slide, outcome, row)
                self.panes.pop(first, None)

    def _update_time(
        self, frame: pd.DataFrame, timestamps_ms: IntArray, outcome: UpdateOutcome
    ) -> None:
        if not timestamps_ms.size:
            return
        start_max = self.max_event_ms if self.max_event_ms is not None else int(timestamps_ms[0])
        running = np.maximum.accumulate(np.maximum(timestamps_ms, start_max))
        watermark_after = running - self.allowed_lateness_ms
        panes = np.floor_divide(timestamps_ms, self.slide)
        # A row may only join windows that were still open when it arrived;
        # windows close exactly where the watermark crosses a slide boundary,
        # so the batch is processed in segments between those crossings.
        epochs = np.floor_divide(watermark_after, self.slide)
        previous = (
            np.floor_divide(self.watermark, self.slide)
            if self.watermark is not None
            else epochs[0] - 1
        )
        crossings = np.flatnonzero(np.diff(epochs, prepend=previous) > 0)
        late: list[IntArray] = []
        start = 0
        for end in [*crossings.tolist(), len(frame) - 1]:
            if end < start:
                continue
            rows = np.arange(start, end + 1)
            late.append(self._add_time_rows(frame, timestamps_ms, panes, rows))
            self.max_event_ms = int(running[end])
            self._close_time_windows(outcome, end + 1)
            start = end + 1
        outcome.late_rows = np.concatenate(late) if late else outcome.late_rows

    def _add_time_rows(
        self, frame: pd.DataFrame, timestamps_ms: IntArray, panes: IntArray, rows: IntArray
    ) -> IntArray:
        """Add rows to their panes; returns the late ones (all their windows closed)."""
        last_window_end = panes[rows] * self.slide + self.size
        is_late = (
            last_window_end <= self.closed_through
            if self.closed_through is not None
            else np.zeros(rows.size, dtype=bool)
        )
        on_time = rows[~is_late]
        for index in np.unique(panes[on_time]).tolist():
            chosen = on_time[panes[on_time] == index]
            self._pane(int(index)).add(frame.iloc[chosen], timestamps_ms[chosen])
        return rows[is_late]

    def _close_time_windows(self, outcome: UpdateOutcome, rows_added: int) -> None:
        watermark = self.watermark
        if watermark is None:
            return
        through = (watermark // self.slide) * self.slide
        if self.closed_through is not None and through <= self.closed_through:
            return
        starts = sorted(
            {
                (index - offset) * self.slide
                for index in self.panes
                for offset in range(self.panes_per_window)
            }
        )
        for start in starts:
            already = self.closed_through is not None and start + self.size <= self.closed_through
            if start + self.size <= through and not already:
                self._close(start, outcome, rows_added)
        self.closed_through = through
        for index in [i for i in self.panes if i * self.slide + self.size <= through]:
            del self.panes[index]

    def _close(self, start: int, outcome: UpdateOutcome, rows_added: int) -> None:
        first = start // self.slide
        members = [
            self.panes[i] for i in range(first, first + self.panes_per_window) if i in self.panes
        ]
        if not members:
            return
        if len({pane.profile_id for pane in members}) > 1:
            outcome.skipped_windows += 1
            return
        state = members[0].state
        for pane in members[1:]:
            state = state.merge(pane.state)
        if len(members) == 1 and self.panes_per_window > 1:
            # The lone pane still belongs to later windows: hand out a copy.
            # A tumbling window's pane is dropped right after, so it goes as is.
            state = WindowState.from_bytes(state.to_bytes())
        firsts = [p.first_ms for p in members if p.first_ms is not None]
        lasts = [p.last_ms for p in members if p.last_ms is not None]
        outcome.closed.append(
            ClosedWindow(
                kind=self.kind,
                window_id=first if self.kind == "count" else start,
                start=start,
                end=start + self.size,
                profile_id=members[0].profile_id,
                state=state,
                first_ms=min(firsts) if firsts else None,
                last_ms=max(lasts) if lasts else None,
            )
        )
        outcome.closed_after_rows.append(rows_added)

    def pending_events(self) -> int:
        """Events in panes of windows that have not closed yet."""
        return sum(pane.state.n_rows for pane in self.panes.values())

    def state(self) -> tuple[dict[str, Any], list[bytes]]:
        """JSON-ready header and the panes' window-state bytes, for snapshots."""
        header = {
            "position": self.position,
            "max_event_ms": self.max_event_ms,
            "closed_through": self.closed_through,
            "profile_id": self.profile_id,
            "panes": [
                {
                    "index": index,
                    "profile_id": pane.profile_id,
                    "first_ms": pane.first_ms,
                    "last_ms": pane.last_ms,
                }
                for index, pane in self.panes.items()
            ],
        }
        return header, [pane.state.to_bytes() for pane in self.panes.values()]

    def restore(self, header: dict[str, Any], blobs: Iterator[bytes]) -> None:
        """Inverse of :meth:`state` (on an assembler with the same settings)."""
        self.position = header["position"]
        self.max_event_ms = header["max_event_ms"]
        self.closed_through = header["closed_through"]
        self.profile_id = header["profile_id"]
        self.panes = {
            entry["index"]: Pane(
                entry["profile_id"],
                WindowState.from_bytes(next(blobs)),
                entry["first_ms"],
                entry["last_ms"],
            )
            for entry in header["panes"]
        }
