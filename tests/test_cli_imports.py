"""Offline commands start without the network clients: checked in ``sys.modules``.

Each case runs one command in a fresh interpreter and reads which top-level
packages it loaded; no timer is involved. A control case loads the worker
module the same way and must see them all, so a probe that sees nothing
cannot pass for a light command line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

#: What a command that never touches Kafka or an alert sink should not load.
NETWORK_CLIENTS = frozenset({"faust", "aiokafka", "kafka", "slack_sdk", "httpx", "aiohttp"})

PROBE = """
import json, sys
from monitor.cli import app
out, sys.argv = sys.argv[1], ["driftstream", *sys.argv[2:]]
try:
    app(prog_name="driftstream")
except SystemExit as stop:
    code = stop.code
else:
    code = 0
loaded = sorted({name.partition(".")[0] for name in sys.modules})
with open(out, "w") as file:
    json.dump({"code": code, "loaded": loaded}, file)
"""

CONFIG = """
alerting:
  slack:
    - webhook_url: {env: PROBE_SLACK_WEBHOOK}
  webhooks:
    - name: retrain
      url: http://127.0.0.1:9/retrain
      secret: {env: PROBE_WEBHOOK_SECRET}
"""


def loaded_by(tmp_path: Path, *args: str) -> tuple[object, set[str]]:
    """Exit code of ``driftstream ARGS`` and the top-level packages it imported."""
    out = tmp_path / "loaded.json"
    subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "PROBE_SLACK_WEBHOOK": "http://127.0.0.1:9/hook",
            "PROBE_WEBHOOK_SECRET": "probe-secret",
        },
    )
    report = json.loads(out.read_text())
    return report["code"], set(report["loaded"])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reference and a current CSV with a numeric and a categorical column."""
    folder = tmp_path_factory.mktemp("cli-imports")
    rng = np.random.default_rng(7)
    for name in ("reference", "current"):
        pd.DataFrame(
            {"x": rng.normal(size=400), "plan": rng.choice(["a", "b", "c"], size=400)}
        ).to_csv(folder / f"{name}.csv", index=False)
    (folder / "driftstream.yaml").write_text(CONFIG)
    return folder


def test_the_probe_sees_the_clients_a_worker_loads(tmp_path: Path) -> None:
    out = tmp_path / "loaded.json"
    code = "import json, sys, monitor.worker; json.dump(list(sys.modules), open(sys.argv[1], 'w'))"
    subprocess.run([sys.executable, "-c", code, str(out)], cwd=tmp_path, timeout=120, check=True)
    loaded = {name.partition(".")[0] for name in json.loads(out.read_text())}
    assert loaded >= NETWORK_CLIENTS


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("compare", "--reference", "{data}/reference.csv", "--current", "{data}/current.csv"),
        (
            "reference",
            "build",
            "{data}/reference.csv",
            "--model",
            "m",
            "--version",
            "1",
            "--out",
            "{tmp}/m.dsprofile",
        ),
        ("check-config", "{data}/driftstream.yaml"),
    ],
    ids=["help", "compare", "reference-build", "check-config"],
)
def test_offline_commands_load_no_network_client(
    args: tuple[str, ...], data: Path, tmp_path: Path
) -> None:
    argv = [arg.format(data=data, tmp=tmp_path) for arg in args]
    code, loaded = loaded_by(tmp_path, *argv)
    assert code == 0
    assert loaded & NETWORK_CLIENTS == set()
    assert "evidently" not in loaded


def test_report_loads_evidently_and_compare_does_not(data: Path, tmp_path: Path) -> None:
    files = ["--reference", f"{data}/reference.csv", "--current", f"{data}/current.csv"]
    code, loaded = loaded_by(tmp_path, "report", *files, "--out", str(tmp_path / "r.html"))
    assert code == 0
    assert (tmp_path / "r.html").stat().st_size > 0
    assert "evidently" in loaded
    assert loaded & NETWORK_CLIENTS == set()
