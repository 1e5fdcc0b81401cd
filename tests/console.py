"""Running the installed ``driftstream`` console script in tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

DRIFTSTREAM = str(Path(sys.executable).parent / "driftstream")
#: A fixed, minimal environment: wide tables, no proxies, no DRIFTSTREAM_* leaks.
ENVIRONMENT = {"COLUMNS": "120", "PATH": "/usr/bin:/bin"}


def run(
    *args: str | Path, environment: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the console script, capturing output (bounded by a timeout).

    ``environment`` adds variables (such as ``DRIFTSTREAM_*`` overrides) to
    the fixed minimal one.
    """
    return subprocess.run(
        [DRIFTSTREAM, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**ENVIRONMENT, **(environment or {})},
    )
