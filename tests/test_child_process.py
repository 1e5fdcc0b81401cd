"""Child processes and stop requests: nothing left behind, however the parent ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from monitor.child_process import spawn, stop_process
from monitor.stop_requests import StopRequested, StopRequests

PARENT = """
import sys, time
from monitor.child_process import spawn
child = spawn(["sleep", "60"])
print(child.pid, flush=True)
time.sleep(60)
"""


def gone(pid: int, timeout: float = 10.0) -> bool:
    """Poll until ``pid`` has exited (or is a zombie awaiting its reaper)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_a_child_dies_with_its_parent_even_when_the_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert psutil.Process(child).ppid() == parent.pid
        assert os.getpgid(child) == child  # its own group: a terminal's Ctrl-C misses it
        parent.kill()
        parent.wait(10)
        assert gone(child)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()


STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
time.sleep(60)
"""


def test_stop_process_kills_a_child_that_ignores_sigterm_after_the_timeout(
    tmp_path: Path,
) -> None:
    log = tmp_path / "child.log"
    stubborn = spawn([sys.executable, "-c", STUBBORN], log)
    deadline = time.monotonic() + 20
    while "ignoring SIGTERM" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    stop_process(stubborn, timeout=1.0)
    assert stubborn.returncode == -signal.SIGKILL


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_repeats_within_the_window_are_one_request_and_a_later_signal_hurries() -> None:
    clock = Clock()
    with StopRequests(repeat_window=1.0, clock=clock) as stop:
        with pytest.raises(StopRequested):
            stop.handle(signal.SIGINT)
        clock.now = 0.9
        stop.handle(signal.SIGTERM)  # e.g. forwarded by uv: the same request
        assert stop.requested
        assert not stop.hurry.is_set()
        clock.now = 1.0
        stop.handle(signal.SIGINT)
        assert stop.hurry.is_set()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
