"""The README's "Monitor your own model" commands, run as written.

Every command of that block runs through the installed console script in a
folder holding the files it names. The deviations are for the shared test
broker: the session's broker stands in for ``driftstream broker &`` (its
address for the README's), and ``DRIFTSTREAM_*`` variables give this test
its own topics, consumer group and ports, and a short session timeout.
"""

from __future__ import annotations

import functools
import json
import shlex
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from monitor.topics import TOPIC_ROLES
from tests.console import run
from tests.worker_process import WorkerProcess, start_worker, wait_for

README = Path(__file__).parent.parent / "README.md"
TRAINING_ROWS = 3000
PREDICTIONS = 2500
#: The window size ``driftstream init`` writes.
WINDOW_EVENTS = 1000


def readme_block(after: str, language: str) -> str:
    """The first fenced ``language`` block of the README after the text ``after``."""
    text = README.read_text()
    assert after in text, f"the README no longer has {after!r}"
    return text.split(after, 1)[1].split(f"```{language}\n", 1)[1].split("```", 1)[0]


def quickstart_commands() -> list[list[str]]:
    """The block's commands, split as sh does (continuations joined, comments dropped)."""
    block = readme_block("Monitor your own model:", "sh").replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def write_inputs(folder: Path) -> None:
    """The README's train.parquet and predictions.jsonl, for a churn model."""
    rng = np.random.default_rng(7)
    pd.DataFrame(
        {
            "tenure_months": rng.integers(0, 72, TRAINING_ROWS),
            "plan": rng.choice(["basic", "plus", "pro"], TRAINING_ROWS),
            "prediction": rng.choice(["yes", "no"], TRAINING_ROWS),
            "label": rng.choice(["yes", "no"], TRAINING_ROWS),
        }
    ).to_parquet(folder / "train.parquet")
    events: list[dict[str, Any]] = [
        {
            "event_id": f"e{i}",
            "model": "churn",
            "model_version": "7",
            "timestamp": 1_790_000_000_000 + i,
            "features": {"tenure_months": int(rng.integers(0, 72)), "plan": "pro"},
            "prediction": "yes",
        }
        for i in range(PREDICTIONS)
    ]
    events += [
        {
            "type": "label",
            "event_id": f"e{i}",
            "model": "churn",
            "label": "no",
            "timestamp": 1_790_000_060_000 + i,
        }
        for i in range(100)
    ]
    (folder / "predictions.jsonl").write_bytes(b"\n".join(map(orjson.dumps, events)) + b"\n")


def test_the_readme_monitor_your_own_model_sequence_works_as_written(
    tmp_path: Path,
    broker: str,
    workers: list[WorkerProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Build, init, check-config, run, publish the reference and events: results arrive."""
    monkeypatch.chdir(tmp_path)
    write_inputs(tmp_path)
    tag = uuid.uuid4().hex[:10]
    environment = {
        f"DRIFTSTREAM_TOPICS__{role.upper()}": f"{role}-{tag}" for role in TOPIC_ROLES
    } | {
        "DRIFTSTREAM_WORKER__GROUP_ID": f"group-{tag}",
        "DRIFTSTREAM_WORKER__SESSION_TIMEOUT": "6s",
    }
    done: list[str] = []
    results: list[dict[str, Any]] = []
    for command in quickstart_commands():
        if command[0] == "export":
            name, _ = command[1].split("=", 1)
            assert name == "DRIFTSTREAM_BROKER__URL"
            environment[name] = f"kafka://{broker}"
            continue
        assert command[:3] == ["uv", "run", "driftstream"], command
        args = command[3:]
        done.append(args[0])
        if args[0] == "broker":
            continue  # the session's broker is already running
        if args[-1] == "&":
            assert args[:-1] == ["run", "--config", "driftstream.yaml"]
            for name, value in environment.items():
                monkeypatch.setenv(name, value)
            ready = start_worker(Path(args[2]), workers).wait_ready()
            assert ready["references"] == 1  # the profile named in driftstream.yaml
            continue
        if args[:2] == ["tail", "results"]:
            results = wait_for(
                functools.partial(window_results, args, environment), 120, "two window results"
            )
            continue
        result = run(*args, environment=environment)
        assert result.returncode == 0, f"{shlex.join(command)}: {result.stderr}"
        if args[0] == "init":
            # The README shows the file init writes; it must be that file.
            shown = readme_block("`init` writes this `driftstream.yaml`", "yaml")
            assert Path("driftstream.yaml").read_text() == shown
        if args[0] == "check-config":
            assert "reference: churn-7.dsprofile" in result.stdout
    assert done == [
        "reference",
        "init",
        "check-config",
        "broker",
        "run",
        "reference",
        "publish",
        "tail",
    ]
    assert [window["window"]["id"] for window in results] == [0, 1]
    for window in results:
        assert window["type"] == "window_result"
        assert (window["model"], window["model_version"]) == ("churn", "7")
        assert window["n_events"] == WINDOW_EVENTS
        assert window["reference"]["n_rows"] == TRAINING_ROWS
        assert set(window["features"]) == {"tenure_months", "plan"}


def window_results(args: list[str], environment: dict[str, str]) -> list[dict[str, Any]] | None:
    """The window results the README's ``tail results`` prints now (one per line), once two."""
    tail = run(*args, environment=environment)
    assert tail.returncode == 0, tail.stderr
    records = [json.loads(line) for line in tail.stdout.splitlines()]
    return records if len(records) >= PREDICTIONS // WINDOW_EVENTS else None
