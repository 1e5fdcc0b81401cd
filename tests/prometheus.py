"""A real Prometheus server for tests.

:func:`running_prometheus` starts the ``prometheus`` binary (Debian's package;
``.ci/run`` installs it) on a free loopback port, scraping the given targets
under the job ``driftstream``, and yields a :class:`Prometheus` client for its
HTTP API. Nothing is mocked: samples reach the server through real scrapes.

A static target is first scraped about 5-10 s after start-up (Prometheus
throttles target discovery to 5 s), then every ``scrape_interval``; use
:meth:`Prometheus.wait_for` rather than a single :meth:`Prometheus.query`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from monitor.broker import free_port
from monitor.child_process import stop_process

#: Prometheus duration units, in seconds.
_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    "y": 31536000.0,
}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


def duration_seconds(duration: str) -> float:
    """Seconds in a Prometheus duration such as ``"1s"``, ``"500ms"`` or ``"1m30s"``.

    Parameters
    ----------
    duration
        A Prometheus duration string.

    Returns
    -------
    float
        The duration in seconds.

    Raises
    ------
    ValueError
        If ``duration`` is not a well-formed Prometheus duration.

    Examples
    --------
    >>> duration_seconds("1m30s")
    90.0
    >>> duration_seconds("250ms")
    0.25
    """
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(number) * _UNITS[unit] for number, unit in parts)


class Prometheus:
    """Client for a running Prometheus server's HTTP API.

    Parameters
    ----------
    url
        Base URL of the server, ``http://127.0.0.1:PORT``.
    client
        HTTP client whose ``base_url`` is ``url``; the caller closes it.
    """

    def __init__(self, url: str, client: httpx.Client) -> None:
        self.url = url
        self._client = client

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Evaluate an instant PromQL query now.

        Parameters
        ----------
        expr
            The PromQL expression.

        Returns
        -------
        list of dict
            The ``result`` of the response: for a vector, one
            ``{"metric": {...}, "value": [timestamp, "text"]}`` per series.

        Raises
        ------
        RuntimeError
            If Prometheus does not answer ``success`` (the message holds its
            ``errorType`` and ``error``).
        """
        body = self._client.get("/api/v1/query", params={"query": expr}).json()
        if body.get("status") != "success":
            raise RuntimeError(
                f"query {expr!r} failed: {body.get('errorType')}: {body.get('error')}"
            )
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(
        self,
        expr: str,
        predicate: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Poll ``expr`` until ``predicate`` holds for its result.

        Parameters
        ----------
        expr
            The PromQL expression, evaluated as an instant query.
        predicate
            Called with each :meth:`query` result; ``True`` ends the wait.
        timeout
            Seconds to keep polling.

        Returns
        -------
        list of dict
            The first result ``predicate`` accepted.

        Raises
        ------
        AssertionError
            If ``predicate`` never held within ``timeout``; the message has the
            last result and the health of every scrape target.
        """
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if predicate(result):
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{expr!r} did not satisfy the predicate in {timeout} s; "
                    f"last result: {result}; targets: {self.targets()}"
                )
            time.sleep(0.1)

    def targets(self) -> list[dict[str, str]]:
        """Health of the active scrape targets.

        Returns
        -------
        list of dict
            One ``{"instance", "health", "lastError"}`` per target; ``health``
            is ``"up"``, ``"down"`` or ``"unknown"`` (not scraped yet).
        """
        body = self._client.get("/api/v1/targets", params={"state": "active"}).json()
        return [
            {
                "instance": target["labels"].get("instance", ""),
                "health": target["health"],
                "lastError": target["lastError"],
            }
            for target in body["data"]["activeTargets"]
        ]

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts of the loaded rules now pending or firing (``/api/v1/alerts``).

        Returns
        -------
        list of dict
            One ``{"labels", "annotations", "state", "activeAt", "value"}`` per alert.
        """
        body = self._client.get("/api/v1/alerts").json()
        alerts: list[dict[str, Any]] = body["data"]["alerts"]
        return alerts

    @staticmethod
    def value(sample: dict[str, Any]) -> float:
        """The number in one instant-vector sample of a :meth:`query` result.

        Examples
        --------
        >>> Prometheus.value({"metric": {}, "value": [1700000000.0, "2.5"]})
        2.5
        """
        return float(sample["value"][1])


def _log_tail(log: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of the server's log."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _wait_ready(
    process: subprocess.Popen[bytes], client: httpx.Client, log: Path, timeout: float
) -> None:
    """Block until ``/-/ready`` answers 200; fail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"prometheus exited with code {process.returncode}; log tail:\n{_log_tail(log)}"
            )
        try:
            if client.get("/-/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.05)
    raise RuntimeError(f"prometheus was not ready in {timeout} s; log tail:\n{_log_tail(log)}")


@contextmanager
def running_prometheus(
    targets: Sequence[str],
    tmp_path: Path,
    scrape_interval: str = "1s",
    rule_files: Sequence[Path] = (),
    alertmanager: str | None = None,
) -> Iterator[Prometheus]:
    """Run a Prometheus server scraping ``targets`` for the duration of the block.

    Parameters
    ----------
    targets
        ``host:port`` addresses serving ``/metrics``, scraped as job ``driftstream``.
    tmp_path
        Directory for the configuration, the TSDB (``data/``) and the server's
        output (``prometheus.log``).
    scrape_interval
        Prometheus duration between scrapes (also the rule evaluation
        interval); the scrape timeout is 80 % of it.
    rule_files
        Recording and alerting rule files to load.
    alertmanager
        ``host:port`` of an Alertmanager to send firing alerts to.

    Yields
    ------
    Prometheus
        Client for the server, ready to answer queries.

    Raises
    ------
    RuntimeError
        If the ``prometheus`` binary is not on ``PATH``, or the server exits
        or is not ready within 30 s (the message has the log's tail).
    """
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError(
            "the prometheus binary is not on PATH; install it with "
            "`apt-get install -y prometheus` (.ci/run does this on CI)"
        )
    timeout_ms = int(duration_seconds(scrape_interval) * 800)
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": scrape_interval,
            "scrape_timeout": f"{timeout_ms}ms",
        },
        "scrape_configs": [
            {"job_name": "driftstream", "static_configs": [{"targets": list(targets)}]}
        ],
        "rule_files": [str(path) for path in rule_files],
    }
    if alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    log = tmp_path / "prometheus.log"
    listen = f"127.0.0.1:{free_port()}"
    command = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address={listen}",
        "--storage.tsdb.retention.time=1h",
        "--query.max-concurrency=4",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://{listen}"
    try:
        # trust_env=False: the environment's proxy variables must not catch loopback traffic.
        with httpx.Client(base_url=url, trust_env=False, timeout=10.0) as client:
            _wait_ready(process, client, log, timeout=30.0)
            yield Prometheus(url, client)
    finally:
        stop_process(process, timeout=10.0)
