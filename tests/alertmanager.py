"""A real Alertmanager for tests.

:func:`running_alertmanager` starts Debian's ``prometheus-alertmanager``
binary (``.ci/run`` installs it) on a free loopback port with a given
configuration file, clustering off, and yields an :class:`Alertmanager`
client for its v2 HTTP API.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from monitor.broker import free_port
from monitor.child_process import stop_process

BINARIES = ("prometheus-alertmanager", "alertmanager")


class Alertmanager:
    """Client for a running Alertmanager's v2 API.

    Parameters
    ----------
    address
        ``host:port`` it listens on (what Prometheus' ``alerting`` section takes).
    client
        HTTP client whose ``base_url`` is the server; the caller closes it.
    """

    def __init__(self, address: str, client: httpx.Client) -> None:
        self.address = address
        self._client = client

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts it holds: ``{"labels", "annotations", "status", ...}`` each."""
        response = self._client.get("/api/v2/alerts")
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()
        return alerts


@contextmanager
def running_alertmanager(config_file: Path, tmp_path: Path) -> Iterator[Alertmanager]:
    """Run an Alertmanager with ``config_file`` for the duration of the block.

    Parameters
    ----------
    config_file
        Its configuration (``amtool check-config`` must accept it).
    tmp_path
        Directory for its storage (``alertmanager-data/``) and output
        (``alertmanager.log``).

    Raises
    ------
    RuntimeError
        If no binary is on ``PATH``, or the server exits or is not ready in
        30 s (the message has its log).
    """
    binary = next((found for name in BINARIES if (found := shutil.which(name))), None)
    if binary is None:
        raise RuntimeError(
            "no alertmanager binary on PATH; install it with "
            "`apt-get install -y prometheus-alertmanager` (.ci/run does this on CI)"
        )
    address = f"127.0.0.1:{free_port()}"
    log = tmp_path / "alertmanager.log"
    command = [
        binary,
        f"--config.file={config_file}",
        f"--storage.path={tmp_path / 'alertmanager-data'}",
        f"--web.listen-address={address}",
        # A single node: no gossip port, no peers.
        "--cluster.listen-address=",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://{address}", trust_env=False, timeout=10.0) as client:
            deadline = time.monotonic() + 30.0
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"alertmanager exited with code {process.returncode}:\n"
                        + log.read_text(errors="replace")[-3000:]
                    )
                try:
                    if client.get("/-/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        "alertmanager was not ready in 30 s:\n"
                        + log.read_text(errors="replace")[-3000:]
                    )
                time.sleep(0.05)
            yield Alertmanager(address, client)
    finally:
        stop_process(process, timeout=10.0)
