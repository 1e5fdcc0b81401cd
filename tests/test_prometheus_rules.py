"""The shipped Prometheus rules against the worker, the README and their unit tests.

``make check-operator`` runs promtool and amtool on these files; these tests
check what those tools cannot: that the rules read series the worker really
exports, that every alert has a runbook entry (and every entry an alert),
and that every alert's promtool tests cover both firing and staying quiet.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.promql import ROOT, RULE_FILES, known_names, metric_names

README = ROOT / "README.md"
RULE_TESTS = sorted((ROOT / "prometheus" / "tests").glob("*.yml"))
RUNBOOK = "https://github.com/driftstream/driftstream/blob/main/README.md#"


def _rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def _alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in _rules() if "alert" in rule}


def _github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_rule_files_ship_every_promised_alert() -> None:
    assert set(_alerts()) == {
        "DriftstreamWorkerDown",
        "DriftstreamMetricsAbsent",
        "DriftstreamNoEvents",
        "DriftstreamConsumerLagGrowing",
        "DriftstreamDeadLetterRatioHigh",
        "DriftstreamSinkDeliveriesFailing",
        "DriftstreamSinkQueueGrowing",
        "DriftstreamSinkDeliveryDelayed",
        "DriftstreamWindowEvaluationSlow",
        "DriftstreamCriticalDrift",
    }


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r.get("alert") or r["record"])
def test_every_rule_reads_series_that_exist(rule: dict[str, Any]) -> None:
    names = metric_names(rule["expr"])
    assert names, "no metric found: the name parser is broken"
    assert names <= known_names(), f"unknown series: {sorted(names - known_names())}"


def test_the_name_parser_sees_through_functions_matchers_and_grouping() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (job, le) "
        '(rate(driftstream_window_evaluation_seconds_bucket{le!="+Inf"}[5m]))) > 1e-3'
        " and on (job) up == 0"
    )
    assert metric_names(expr) == {"driftstream_window_evaluation_seconds_bucket", "up"}
    assert not metric_names('sum(rate(x_total{job="y"}[1m]))') <= known_names()


@pytest.mark.parametrize("name", sorted(_alerts()))
def test_every_alert_is_labelled_and_points_at_its_runbook_entry(name: str) -> None:
    alert = _alerts()[name]
    assert alert["labels"]["severity"] in {"warning", "critical"}
    annotations = alert["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    assert annotations["runbook_url"] == RUNBOOK + _github_anchor(f"Runbook: {name}")


def test_the_readme_runbook_has_one_entry_per_alert_and_no_other() -> None:
    text = README.read_text()
    runbook = text.split("\n## Runbook\n", 1)[1].split("\n## ", 1)[0]
    entries = re.findall(r"^### Runbook: (\S+)$", runbook, flags=re.MULTILINE)
    assert sorted(entries) == sorted(_alerts())
    for body in re.split(r"^### Runbook: \S+$", runbook, flags=re.MULTILINE)[1:]:
        # meaning, first checks, fixes
        for part in ("**Meaning.**", "**First checks.**", "**Fixes.**"):
            assert part in body


def _rule_test_cases() -> list[dict[str, Any]]:
    return [
        case
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    ]


@pytest.mark.parametrize("name", sorted(_alerts()))
def test_every_alert_has_unit_tests_that_fire_and_stay_quiet(name: str) -> None:
    cases = [case for case in _rule_test_cases() if case["alertname"] == name]
    assert any(case["exp_alerts"] for case in cases), "no case where it fires"
    assert any(not case["exp_alerts"] for case in cases), "no case where it stays quiet"


def test_every_rule_file_is_loaded_and_tested() -> None:
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    loaded = {(ROOT / "prometheus" / path).resolve() for path in config["rule_files"]}
    assert loaded == {path.resolve() for path in RULE_FILES}
    tested = {
        (path.parent / rule_file).resolve()
        for path in RULE_TESTS
        for rule_file in yaml.safe_load(path.read_text())["rule_files"]
    }
    assert tested == loaded


def _kubernetes_example() -> dict[str, Any]:
    """The commented-out Kubernetes scrape job of prometheus.yml, parsed."""
    text = (ROOT / "prometheus" / "prometheus.yml").read_text()
    block = text.split("  # - job_name: driftstream\n", 1)[1]
    lines = ["- job_name: driftstream"]
    for line in block.splitlines():
        if not line.startswith("  # "):
            break
        lines.append(line[4:])
    job: dict[str, Any] = yaml.safe_load("\n".join(lines))[0]
    return job


def test_the_kubernetes_scrape_example_keeps_annotated_driftstream_pods() -> None:
    # promtool 2.42 from Debian is built without Kubernetes discovery, so the
    # example is checked here: the keep rules select the labels and
    # annotations the manifests in deploy/k8s/ put on the worker pods.
    job = _kubernetes_example()
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    keeps = {
        tuple(rule["source_labels"]): rule["regex"]
        for rule in job["relabel_configs"]
        if rule.get("action") == "keep"
    }
    assert keeps == {
        ("__meta_kubernetes_pod_label_app_kubernetes_io_name",): "driftstream",
        ("__meta_kubernetes_pod_annotation_prometheus_io_scrape",): "true",
        ("__meta_kubernetes_pod_container_port_name",): "metrics",
    }
    address = next(r for r in job["relabel_configs"] if r.get("target_label") == "__address__")
    pattern = re.compile(address["regex"])
    joined = "10.1.2.3:6066;9464"
    assert pattern.fullmatch(joined)
    assert pattern.sub(address["replacement"].replace("$", "\\"), joined) == "10.1.2.3:9464"


def test_promtool_accepts_the_kubernetes_example_relabelling(tmp_path: Path) -> None:
    # promtool checks the relabel rules (actions, regexes, target labels) once
    # the discovery it lacks is swapped for a static target.
    job = _kubernetes_example()
    del job["kubernetes_sd_configs"]
    job["static_configs"] = [{"targets": ["127.0.0.1:9464"]}]
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({"scrape_configs": [job]}))
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing (.ci/run installs Debian's prometheus package)"
    checked = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
