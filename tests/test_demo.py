"""`driftstream demo` end to end: broker, worker and simulated service in one command."""

from __future__ import annotations

import re
import subprocess

from tests.console import DRIFTSTREAM


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
