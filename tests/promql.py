"""Metric names in PromQL, and the names a worker exports, for operator-file tests.

Rules and dashboard panels are checked against what exists: every metric
an expression reads must be a series the worker exports, ``up``, or a
recording rule of ``prometheus/rules/``. Prometheus 2.42 (Debian's) has no
parse endpoint, so names are found lexically: string literals, label
matchers, range selectors and grouping clauses are removed, then every
identifier not followed by ``(`` that is not a PromQL keyword is a metric.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client.metrics_core import Metric

from monitor.metrics import DriftMetrics

ROOT = Path(__file__).resolve().parent.parent
RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))

_KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
# A name not followed by another name character or by a call's parenthesis
# (without the lookahead, `sum (` would match as the metric `su`).
_NAME = re.compile(r"(?<![\w:$.])[a-zA-Z_:][a-zA-Z0-9_:]*(?![\w:]|\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` reads.

    Examples
    --------
    >>> sorted(metric_names('sum by (model) (rate(a_total{x="y"}[5m])) / on (model) b > 0'))
    ['a_total', 'b']
    """
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub(" ", text)
    return {name for name in _NAME.findall(text) if name.lower() not in _KEYWORDS}


def _sample_names(family: Metric) -> set[str]:
    suffixes = {
        "counter": ["_total"],
        "histogram": ["_bucket", "_sum", "_count"],
        "summary": ["", "_sum", "_count"],
        "info": ["_info"],
    }.get(family.type, [""])
    return {family.name + suffix for suffix in suffixes}


def exported_names() -> set[str]:
    """Every sample name a worker's registry can export."""
    names: set[str] = set()
    for family in DriftMetrics().registry.collect():
        names |= _sample_names(family)
    return names


def recorded_names() -> set[str]:
    """The ``record:`` names of the shipped recording rules."""
    return {
        rule["record"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def known_names() -> set[str]:
    """What an expression may read: exported series, ``up`` and recorded series."""
    return exported_names() | recorded_names() | {"up"}
