"""Self-test of the Prometheus harness against an in-process ``prometheus_client`` exporter."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from monitor.broker import free_port
from tests.prometheus import Prometheus, running_prometheus


@dataclass
class Scraped:
    """An exporter's metrics and the Prometheus server scraping them."""

    gauge: Gauge
    counter: Counter
    target: str
    prometheus: Prometheus


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    """An exporter on a free loopback port, scraped every second by a real Prometheus."""
    registry = CollectorRegistry()
    gauge = Gauge("selftest_level", "A gauge set by the test.", registry=registry)
    counter = Counter("selftest_events", "A counter bumped by the test.", registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    target = f"127.0.0.1:{port}"
    try:
        with running_prometheus([target], tmp_path_factory.mktemp("prometheus")) as prometheus:
            yield Scraped(gauge, counter, target, prometheus)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def single_value(result: list[dict[str, Any]], expected: float) -> bool:
    """Whether ``result`` is exactly one sample equal to ``expected``."""
    return len(result) == 1 and Prometheus.value(result[0]) == expected


def test_scraped_values_reach_the_query_api(scraped: Scraped) -> None:
    scraped.counter.inc(3)  # before the gauge: a scrape showing the gauge shows this too
    scraped.gauge.set(42.5)
    prometheus = scraped.prometheus

    up = prometheus.wait_for('up{job="driftstream"}', lambda r: single_value(r, 1.0))
    assert up[0]["metric"]["instance"] == scraped.target
    gauge = prometheus.wait_for("selftest_level", lambda r: single_value(r, 42.5))
    assert gauge[0]["metric"] == {
        "__name__": "selftest_level",
        "instance": scraped.target,
        "job": "driftstream",
    }
    assert single_value(prometheus.query("selftest_events_total"), 3.0)
    assert prometheus.targets() == [{"instance": scraped.target, "health": "up", "lastError": ""}]

    scraped.gauge.set(-7.25)
    prometheus.wait_for("selftest_level", lambda r: single_value(r, -7.25))


def test_query_errors_carry_the_prometheus_message(scraped: Scraped) -> None:
    with pytest.raises(RuntimeError, match=r"bad_data: .*parse error"):
        scraped.prometheus.query("sum(")


def test_wait_for_timeout_reports_result_and_targets(scraped: Scraped) -> None:
    with pytest.raises(AssertionError, match=r"last result: \[\]; targets: .*'health'"):
        scraped.prometheus.wait_for("no_such_metric", bool, timeout=0.3)


def test_missing_binary_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with (
        pytest.raises(RuntimeError, match="apt-get install -y prometheus"),
        running_prometheus(["127.0.0.1:1"], tmp_path),
    ):
        pass
