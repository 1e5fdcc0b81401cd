"""Whole-process command-line speed: start-up and ``driftstream compare`` against Evidently.

(i)  ``driftstream --help``, ``check-config`` and ``compare --help`` in a
     fresh process with ``PYTHONDONTWRITEBYTECODE=1`` (as servers and images
     set it), against the bare interpreter (``python -c pass``) and against
     importing the worker module (Faust, aiokafka and the sinks' clients),
     what every command paid before the command line imported lazily.
(j)  ``driftstream compare`` of two 25-feature x 100,000-row Parquet files
     (20 numeric: KS + PSI + Wasserstein, the defaults; 5 categorical:
     chi-square + PSI + JS + L-inf), whole process, against a fresh Python
     process that reads the same files and runs an Evidently ``Report`` with
     KS + PSI on the numeric and chi-square + PSI on the categorical columns.

Each time is the best of a few runs; ratios are against a baseline measured
in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.bench_stats import SEED, make_frame, print_table

ROWS = 100_000
REPEATS = 3
DRIFTSTREAM = str(Path(sys.executable).parent / "driftstream")
ENVIRONMENT = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "120"}

EVIDENTLY_SCRIPT = """
import sys, warnings
warnings.simplefilter("ignore")
import pandas as pd
from evidently import Report
from evidently.metrics import ValueDrift
reference, current = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
metrics = [
    ValueDrift(column=name, method=method)
    for name in reference.columns
    for method in (("ks", "psi") if name.startswith("num") else ("chisquare", "psi"))
]
Report(metrics).run(current, reference)
"""


def best_wall_time(command: Sequence[str], repeats: int = REPEATS) -> float:
    """Shortest wall time of ``command`` (which must succeed or exit 1, "drift found")."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(
            command, env=ENVIRONMENT, capture_output=True, timeout=600, check=False
        )
        elapsed = time.perf_counter() - start
        if done.returncode not in (0, 1):
            raise RuntimeError(f"{command[:3]} failed: {done.stderr.decode()[-500:]}")
        best = min(best, elapsed)
    return best


def bench_start_up(folder: Path, repeats: int) -> None:
    """(i) Fresh-process start-up of light commands against the interpreter and the worker."""
    config = folder / "driftstream.yaml"
    config.write_text("{}\n")
    bare = best_wall_time([sys.executable, "-c", "pass"], repeats)
    worker = best_wall_time([sys.executable, "-c", "import monitor.worker"], repeats)
    rows = [
        ["python -c pass (baseline)", f"{bare:.3f}", "1.0x"],
        ["python -c 'import monitor.worker'", f"{worker:.3f}", f"{worker / bare:.1f}x"],
    ]
    for label, args in [
        ("driftstream --help", ["--help"]),
        ("driftstream compare --help", ["compare", "--help"]),
        ("driftstream check-config", ["check-config", str(config)]),
    ]:
        seconds = best_wall_time([DRIFTSTREAM, *args], repeats)
        rows.append([label, f"{seconds:.3f}", f"{seconds / bare:.1f}x"])
    print_table(
        f"\n(i) start-up, fresh process, PYTHONDONTWRITEBYTECODE=1, best of {repeats}",
        ["command", "seconds", "vs python"],
        rows,
    )


def bench_compare(folder: Path, repeats: int) -> None:
    """(j) Whole-process ``driftstream compare`` against a whole-process Evidently Report."""
    rng = np.random.default_rng(SEED)
    reference, current = folder / "reference.parquet", folder / "current.parquet"
    make_frame(rng, ROWS, shifted=False).to_parquet(reference)
    make_frame(rng, ROWS, shifted=True).to_parquet(current)
    ours = best_wall_time(
        [DRIFTSTREAM, "compare", "--reference", str(reference), "--current", str(current)],
        repeats,
    )
    theirs = best_wall_time(
        [sys.executable, "-c", EVIDENTLY_SCRIPT, str(reference), str(current)], repeats
    )
    print_table(
        f"\n(j) compare two 25-feature x {ROWS:,}-row Parquet files, whole process, "
        f"best of {repeats}, target >= 8x",
        ["command", "seconds", "Evidently / this"],
        [
            ["driftstream compare (defaults)", f"{ours:.3f}", f"{theirs / ours:.1f}x"],
            ["python + Evidently Report (KS, PSI, chi-square)", f"{theirs:.3f}", "1.0x"],
        ],
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run (i) and (j) and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run per command")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else REPEATS
    print(
        f"\ndriftstream command-line benchmarks: {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="driftstream-startup-") as folder:
        bench_start_up(Path(folder), repeats)
        bench_compare(Path(folder), repeats)


if __name__ == "__main__":
    main()
