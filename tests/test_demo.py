"""`driftstream demo` end to end: broker, worker and simulated service in one command."""

from __future__ import annotations

import io
import json
import re
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import pytest
from rich.console import Console

from monitor.demo import Board, local_time
from tests.console import DRIFTSTREAM
from tests.test_demo_stop import STOP_TIMEOUT, Terminal, demo_environment, three_models_shown

T = TypeVar("T")


def test_demo_shows_healthy_windows_then_the_injected_drift_and_exits_cleanly() -> None:
    completed = subprocess.run(
        [
            DRIFTSTREAM,
            "demo",
            "--no-live",
            "--duration",
            "30",
            "--drift-after",
            "8",
            "--rate",
            "900",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = " ".join(completed.stdout.split())
    assert completed.returncode == 0, completed.stderr[-2000:]
    # notices go to stderr, so stdout carries only the results
    assert "started the embedded development broker" in completed.stderr
    assert "worker log:" in completed.stderr
    assert "broker" not in completed.stdout
    windows = re.findall(r"(\w+) v\d+ window (\d+): (\w+) \(drifted: ([^)]*)\)", output)
    first = {model: (severity, drifted) for model, w, severity, drifted in windows if w == "0"}
    assert set(first) == {"churn", "fraud", "eta"}
    assert all(severity == "ok" for severity, _ in first.values())
    expected = {
        "churn": {"tenure_months", "monthly_spend", "plan"},
        "fraud": {"amount", "distance_from_home_km", "merchant_category"},
        "eta": {"distance_km", "traffic_index", "vehicle"},
    }
    flagged = [(model, set(d.split(", "))) for model, _, _, d in windows if d != "-"]
    for model, features in flagged:  # no healthy feature is ever flagged
        assert features <= expected[model]
    # once a window is fully past the drift, it names every drifted feature
    # (the window straddling the drift start may flag only some)
    assert {model for model, features in flagged if features == expected[model]} == set(expected)
    assert re.search(r"\d+ windows evaluated, [1-9]\d* with drift", output)
    # alert transitions from the alerts topic, one line each
    fired = re.findall(r"alert FIRING (\w+) (\w+) v\d+: (.+)$", completed.stdout, re.M)
    assert fired, output
    for rule, model, detail in fired:
        assert rule in {"feature_drift", "dataset_drift"}
        assert set(detail.split(", ")) <= expected[model]
    # where to look, once the worker is up
    assert re.search(r"http://127\.0\.0\.1:\d+/alerts", completed.stderr)
    assert "driftstream tail results --bootstrap" in completed.stderr


#: How long the live demo may take to show an alert; it normally needs under a minute.
ALERT_TIMEOUT = 150.0
FIRING = re.compile(r"^\d\d:\d\d:\d\d FIRING +(\w+) (\w+) v(\w+) (\S.*)$", re.M)


def poll(check: Callable[[], T | None], what: str, timeout: float) -> T:
    """``check()`` every 0.2 s until it returns something; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found is not None:
            return found
        time.sleep(0.2)
    pytest.fail(f"{what} within {timeout} s")


def http_get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=2.0, trust_env=False)


def test_live_demo_shows_firing_alerts_the_worker_reports_and_where_to_look() -> None:
    """On an 80 x 24 terminal: the table, the URLs and a FIRING line, all on screen."""
    command = [DRIFTSTREAM, "demo", "--drift-after", "8", "--rate", "900", "--duration", "240"]
    with Terminal(command, demo_environment()) as terminal:
        screen = terminal.wait_for(
            lambda screen: bool(FIRING.search(screen)) and three_models_shown(screen),
            "a FIRING alert transition below the table",
            ALERT_TIMEOUT,
        )
        assert not re.search(r"^\s*\.\.\.\s*$", screen, re.M), screen  # nothing cropped
        assert "Ctrl-C to stop" in screen
        assert re.search(r"^model +win +severity +features +output +labels", screen, re.M)

        # the URLs it names answer while it runs
        urls = {}
        for path in ("alerts", "models", "metrics"):
            found = re.search(rf"http://127\.0\.0\.1:\d+/{path}\b", screen)
            assert found, f"no /{path} URL on screen:\n{screen}"
            urls[path] = found[0]
            assert http_get(urls[path]).status_code == 200, urls[path]
        assert "driftstream_" in http_get(urls["metrics"]).text

        # what the screen calls firing, the worker's /alerts reports as firing
        shown = {(rule, model, version) for rule, model, version, _ in FIRING.findall(screen)}

        def reported() -> set[tuple[str, str, str]] | None:
            active = http_get(urls["alerts"]).json()["active"]
            firing = {
                (alert["rule"], alert["model"], alert["model_version"])
                for alert in active
                if alert["status"] == "firing"
            }
            return (shown & firing) or None

        assert poll(reported, "the worker's /alerts reporting a firing alert shown", 30)

        # the printed tail command reads the results topic
        tail = re.search(r"driftstream tail results --bootstrap (\S+) --follow", screen)
        assert tail, screen
        records = subprocess.run(
            [DRIFTSTREAM, "tail", "results", "--bootstrap", tail[1], "--from-beginning", "--max=3"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert records.returncode == 0, records.stderr
        results = [json.loads(line) for line in records.stdout.splitlines()]
        assert len(results) == 3
        assert {result["model"] for result in results} <= {"churn", "fraud", "eta"}

        terminal.type(b"\x03")
        assert terminal.process.wait(STOP_TIMEOUT) == 0


def test_the_alert_list_shows_the_latest_firing_and_resolved_transitions_that_fit() -> None:
    """Pending and cleared transitions are left out; the list keeps to its lines and width."""
    board = Board()
    statuses = ["pending", "firing", "resolved", "cleared", "firing", "resolved"]
    for second, status in enumerate(statuses):
        event = {
            "status": status,
            "rule": "dataset_drift",
            "model": "fraud",
            "model_version": "7",
            "features": [
                {"feature": "amount"},
                {"feature": "distance_from_home_km"},
                {"feature": "merchant_category"},
            ],
            "at": f"2026-11-23T10:00:0{second}Z",
        }
        assert board.add_alert(event) == (status in {"firing", "resolved"})
    console = Console(width=60, height=24, file=io.StringIO(), color_system=None)
    console.print(board.alerts(lines=4))
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert lines[0] == "alert transitions, latest 3 of 4:"
    assert [line.split()[:5] for line in lines[1:]] == [
        [local_time(f"2026-11-23T10:00:0{second}Z"), status, "dataset_drift", "fraud", "v7"]
        for second, status in ((2, "RESOLVED"), (4, "FIRING"), (5, "RESOLVED"))
    ]
    assert all(len(line) <= 60 for line in lines)
    assert lines[-1].endswith("…")  # cut to the width, not wrapped
