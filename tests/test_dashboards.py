"""The Grafana dashboards: generated, current, and reading only series that exist.

Each check is a function returning its problems, run on the committed JSON
(no problems) and on a broken copy (the problem found), so none can pass
vacuously.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from grafana import generate
from tests.promql import known_names, metric_names

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "grafana"
UIDS = {"driftstream-overview", "driftstream-model", "driftstream-service"}
#: Where an expression may use each variable: inside a regex matcher only.
VARIABLE_USES = {
    "model": 'model=~"$model"',
    "version": 'model_version=~"$version"',
    "feature": 'feature=~"$feature"',
    "test": 'test=~"$test"',
}
DATASOURCE = "${datasource}"


def committed() -> dict[str, dict[str, Any]]:
    """The dashboard files of grafana/dashboards/, by file name."""
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel but rows, also those inside collapsed rows."""
    for panel in board.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels") or []
        else:
            yield panel


def variables(board: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in board.get("templating", {}).get("list", [])}


def exprs(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, expr)`` of every panel query and every query variable."""
    for panel in panels(board):
        for target in panel.get("targets") or []:
            yield panel.get("title", "?"), str(target.get("expr", ""))
    for name, variable in variables(board).items():
        if variable.get("type") == "query":
            label_values = re.fullmatch(r"label_values\((.*),\s*\w+\)", str(variable["query"]))
            yield f"variable {name}", label_values.group(1) if label_values else ""


def link_urls(board: dict[str, Any]) -> Iterator[str]:
    """Dashboard links and panel data links."""
    for board_link in board.get("links", []):
        yield str(board_link.get("url", ""))
    for panel in panels(board):
        for data_link in panel.get("fieldConfig", {}).get("defaults", {}).get("links", []):
            yield str(data_link.get("url", ""))


# -- checks ---------------------------------------------------------------


def target_problems(board: dict[str, Any]) -> list[str]:
    """Panels without description, queries, refIds, ``${datasource}`` or expr."""
    problems = []
    if variables(board).get("datasource", {}).get("type") != "datasource":
        problems.append("no datasource variable")
    elif variables(board)["datasource"].get("query") != "prometheus":
        problems.append("datasource variable not of Prometheus data sources")
    for panel in panels(board):
        title = panel.get("title", "?")
        if not panel.get("description"):
            problems.append(f"{title}: no description")
        if (panel.get("datasource") or {}).get("uid") != DATASOURCE:
            problems.append(f"{title}: panel data source is not {DATASOURCE}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{title}: no query")
        ref_ids = [target.get("refId") for target in targets]
        if len(set(ref_ids)) != len(ref_ids):
            problems.append(f"{title}: duplicate refIds {ref_ids}")
        for target in targets:
            if not target.get("refId"):
                problems.append(f"{title}: query without refId")
            if (target.get("datasource") or {}).get("uid") != DATASOURCE:
                problems.append(f"{title}: query data source is not {DATASOURCE}")
            if not str(target.get("expr", "")).strip():
                problems.append(f"{title}: query without expr")
    for name, variable in variables(board).items():
        if variable.get("type") == "query" and variable["datasource"].get("uid") != DATASOURCE:
            problems.append(f"variable {name}: data source is not {DATASOURCE}")
    return problems


def metric_problems(board: dict[str, Any], known: set[str]) -> list[str]:
    """Expressions reading names the worker, ``up`` and the rules do not provide."""
    problems = []
    for where, expr in exprs(board):
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: reads no metric: {expr!r}")
        for name in sorted(names - known):
            problems.append(f"{where}: unknown metric {name}")
    return problems


def variable_problems(board: dict[str, Any]) -> list[str]:
    """Undefined variables, variables outside regex matchers, ranges other than the rate's."""
    defined = set(variables(board))
    problems = []
    for where, expr in exprs(board):
        for name in sorted(set(re.findall(r"\$\{?(\w+)", expr)) - {"__rate_interval"}):
            if name not in defined:
                problems.append(f"{where}: undefined variable ${name}")
            if name not in VARIABLE_USES or expr.count(f"${name}") != expr.count(
                VARIABLE_USES[name]
            ):
                problems.append(f"{where}: ${name} outside {VARIABLE_USES.get(name, 'a matcher')}")
        for window in re.findall(r"\[([^\]]*)\]", expr):
            if window != "$__rate_interval":
                problems.append(f"{where}: range [{window}] instead of [$__rate_interval]")
    return problems


def link_problems(boards: dict[str, dict[str, Any]]) -> list[str]:
    """Links to missing dashboards, or passing variables the target does not have."""
    by_uid = {board["uid"]: board for board in boards.values()}
    problems = []
    for board in boards.values():
        targets = set()
        for url in link_urls(board):
            found = re.match(r"/d/([\w-]+)", url)
            if not found or found.group(1) not in by_uid:
                problems.append(f"{board['uid']}: link to an unknown dashboard: {url}")
                continue
            targets.add(found.group(1))
            target_vars = set(variables(by_uid[found.group(1)]))
            for name in re.findall(r"var-(\w+)=", url):
                if name not in target_vars:
                    problems.append(f"{board['uid']}: {url} sets var-{name}, not on the target")
        if missing := (set(by_uid) - {board["uid"]} - targets):
            problems.append(f"{board['uid']}: no link to {sorted(missing)}")
    return problems


# -- the committed dashboards ---------------------------------------------


def test_committed_json_is_what_the_generator_builds() -> None:
    assert generate.stale() == [], "stale dashboards: run `make dashboards`"
    assert {path.name for path in generate.outputs()} == set(committed())


def test_check_mode_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, str(GRAFANA / "generate.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, ""), done.stderr


def test_stale_names_changed_missing_and_extra_files(tmp_path: Path) -> None:
    for path, text in generate.outputs(tmp_path).items():
        path.write_text(text, encoding="utf-8")
    assert generate.stale(tmp_path) == []
    changed = tmp_path / "driftstream-model.json"
    changed.write_text(changed.read_text().replace("driftstream_drift_p_value", "x"))
    (tmp_path / "driftstream-service.json").unlink()
    (tmp_path / "hand-made.json").write_text("{}")
    assert [p.name for p in generate.stale(tmp_path)] == [
        "driftstream-model.json",
        "driftstream-service.json",
        "hand-made.json",
    ]


def test_uids_are_the_stable_ones_and_unique() -> None:
    boards = committed()
    uids = [board["uid"] for board in boards.values()]
    assert sorted(uids) == sorted(UIDS)
    assert len(set(uids)) == len(uids)
    for name, board in boards.items():
        assert name == f"{board['uid']}.json"
        assert "driftstream" in board["tags"]
        assert board.get("id") is None  # provisioned: Grafana assigns it


@pytest.mark.parametrize("name", sorted(f"{uid}.json" for uid in UIDS))
def test_every_panel_queries_the_datasource_variable(name: str) -> None:
    assert target_problems(committed()[name]) == []


@pytest.mark.parametrize("name", sorted(f"{uid}.json" for uid in UIDS))
def test_every_expression_reads_existing_series(name: str) -> None:
    assert metric_problems(committed()[name], known_names()) == []


@pytest.mark.parametrize("name", sorted(f"{uid}.json" for uid in UIDS))
def test_variables_are_defined_and_regex_matched(name: str) -> None:
    assert variable_problems(committed()[name]) == []


def test_model_dashboard_has_the_url_variables() -> None:
    model = variables(committed()["driftstream-model.json"])
    assert {"datasource", "model", "version", "feature"} <= set(model)
    for name in ("model", "version", "feature"):
        assert model[name]["type"] == "query"
        assert not model[name].get("skipUrlSync"), f"var-{name} would be ignored in URLs"
    overview = variables(committed()["driftstream-overview.json"])
    assert {"datasource", "model", "version"} <= set(overview)
    assert overview["model"]["multi"]
    assert overview["model"]["includeAll"]


def test_links_carry_variables_the_target_has() -> None:
    assert link_problems(committed()) == []


def test_alert_link_example_opens_the_model_dashboard() -> None:
    """The `alerting.links` example of driftstream.example.yaml sets variables that exist."""
    example = (ROOT / "driftstream.example.yaml").read_text(encoding="utf-8")
    urls = re.findall(r"/d/driftstream-model\?\S*?(?=\"|\s|$)", example)
    assert urls
    model = variables(committed()["driftstream-model.json"])
    for url in urls:
        for name in re.findall(r"var-(\w+)=", url):
            assert name in model


def test_panel_queries_lists_every_query() -> None:
    listed = list(generate.panel_queries())
    from_json = [
        (board["uid"], panel["title"], target["expr"])
        for board in committed().values()
        for panel in panels(board)
        for target in panel["targets"]
    ]
    assert sorted(listed) == sorted(from_json)
    assert {uid for uid, _, _ in listed} == UIDS


# -- the checks can fail ----------------------------------------------------


def broken(name: str, change: str) -> dict[str, Any]:
    """A copy of a committed dashboard with one thing wrong."""
    board = copy.deepcopy(committed()[name])
    needle = {"range": "$__rate_interval", "variable": "$model", "equality": "$model"}
    panel = next(
        p
        for p in panels(board)
        if p["type"] == "timeseries" and needle.get(change, "") in p["targets"][0]["expr"]
    )
    target = panel["targets"][0]
    if change == "metric":
        target["expr"] = target["expr"].replace("driftstream_", "driftstream_typo_", 1)
    elif change == "ref_id":
        target["refId"] = ""
    elif change == "datasource":
        target["datasource"] = {"type": "prometheus", "uid": "prometheus"}
    elif change == "expr":
        target["expr"] = " "
    elif change == "description":
        panel["description"] = ""
    elif change == "no metric":
        target["expr"] = "vector(1)"
    elif change == "range":
        target["expr"] = target["expr"].replace("$__rate_interval", "5m")
    elif change == "variable":
        target["expr"] = target["expr"].replace("$model", "$modle")
    elif change == "equality":
        target["expr"] = target["expr"].replace('=~"$model"', '="$model"')
    return board


@pytest.mark.parametrize(
    ("change", "check"),
    [
        ("metric", "metric"),
        ("no metric", "metric"),
        ("ref_id", "target"),
        ("datasource", "target"),
        ("expr", "target"),
        ("description", "target"),
        ("variable", "variable"),
        ("equality", "variable"),
    ],
)
def test_checks_catch_a_broken_model_dashboard(change: str, check: str) -> None:
    board = broken("driftstream-model.json", change)
    problems = {
        "metric": lambda: metric_problems(board, known_names()),
        "target": lambda: target_problems(board),
        "variable": lambda: variable_problems(board),
    }[check]()
    assert problems


def test_range_check_catches_a_fixed_window() -> None:
    assert variable_problems(broken("driftstream-service.json", "range"))


def test_link_check_catches_an_unknown_variable_and_dashboard() -> None:
    boards = copy.deepcopy(committed())
    overview = boards["driftstream-overview.json"]
    table = next(p for p in panels(overview) if p["type"] == "table")
    table["fieldConfig"]["defaults"]["links"][0]["url"] += "&var-nowhere=x"
    overview["links"][0]["url"] = "/d/driftstream-nowhere"
    problems = link_problems(boards)
    assert any("var-nowhere" in p for p in problems)
    assert any("unknown dashboard" in p for p in problems)


def test_metric_names_skip_labels_functions_and_keywords() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{job=~"$model"}[$__rate_interval])))'
        " / on (instance) group_left b and time() - c offset 5m"
    )
    assert metric_names(expr) == {"a_bucket", "b", "c"}
    assert "driftstream_typo_x" not in known_names()


# -- provisioning ------------------------------------------------------------


def grafana_mounts() -> dict[str, str]:
    """The grafana service's bind mounts: host path (relative to the repo) -> container path."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    mounts = {}
    for volume in compose["services"]["grafana"]["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[str(Path(source))] = target
    return mounts


def test_provisioning_points_at_the_compose_mounts() -> None:
    mounts = grafana_mounts()
    provisioning = Path(mounts["grafana/provisioning"])
    # Grafana reads provisioning from /etc/grafana/provisioning (GF_PATHS_PROVISIONING)
    assert provisioning == Path("/etc/grafana/provisioning")
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "driftstream.yaml").read_text()
    )["providers"]
    assert [p["options"]["path"] for p in providers] == [mounts["grafana/dashboards"]]
    assert all(p["type"] == "file" for p in providers)


def test_datasource_is_the_compose_prometheus() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    (source,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )["datasources"]
    assert (source["type"], source["uid"], source["isDefault"]) == (
        "prometheus",
        "prometheus",
        True,
    )
    found = re.fullmatch(r"http://([\w-]+):(\d+)", source["url"])
    assert found, source["url"]
    host, port = found.groups()
    assert host in compose["services"]
    # the container port the service publishes (and listens on)
    assert port in {mapping.rsplit(":", 1)[-1] for mapping in compose["services"][host]["ports"]}
