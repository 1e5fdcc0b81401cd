"""The ``driftstream`` command, run through its installed console script."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.console import run


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Reference CSV and current Parquet files: ``age`` and ``plan`` drift, the rest do not."""
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    n, m = 4000, 1500
    pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "income": rng.lognormal(10, 1, n),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
            "clicks": rng.integers(0, 5, n),
        }
    ).to_csv(folder / "reference.csv", index=False)
    pd.DataFrame(
        {
            "age": rng.normal(46, 10, m),
            "income": rng.lognormal(10, 1, m),
            "plan": rng.choice(["basic", "plus", "pro"], m, p=[0.2, 0.3, 0.5]),
            "clicks": rng.integers(0, 5, m),
        }
    ).to_parquet(folder / "current.parquet")
    return folder


def test_build_then_compare_json_has_the_documented_shape(data: Path) -> None:
    """reference build writes a profile; compare --json prints the documented keys."""
    profile = data / "churn.dsprofile"
    built = run(
        "reference",
        "build",
        data / "reference.csv",
        "--model",
        "churn",
        "--version",
        "7",
        "--out",
        profile,
    )
    assert built.returncode == 0, built.stderr
    assert "2 numeric and 2 categorical features" in built.stdout
    result = run("compare", "--reference", profile, "--current", data / "current.parquet", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["drifted_features"] == ["age", "plan"]
    age, plan = report["features"]["age"], report["features"]["plan"]
    assert age["kind"] == "numeric"
    assert plan["kind"] == "categorical"
    assert (age["n_reference"], age["n_current"]) == (4000, 1500)
    assert set(age["tests"]["ks"]) >= {"statistic", "p_value"}
    assert set(age["tests"]["psi"]) >= {"value", "bins"}
    assert age["tests"]["psi"]["bins"] == 10
    assert set(plan["tests"]["chi2"]) >= {"statistic", "p_value"}
    assert set(plan["tests"]["js"]) >= {"value"}
    assert report["features"]["income"]["severity"] == "ok"
    assert age["severity"] in {"warning", "critical"}
    assert report["features"]["clicks"]["kind"] == "categorical"  # 5 distinct integers


def test_compare_data_files_is_exact_against_scipy(data: Path) -> None:
    """With a data file as reference every value is kept, so KS equals ks_2samp."""
    result = run(
        "compare",
        "--reference",
        data / "reference.csv",
        "--current",
        data / "current.parquet",
        "--json",
        "--features",
        "income",
    )
    assert result.returncode == 0, result.stderr
    ks = json.loads(result.stdout)["features"]["income"]["tests"]["ks"]
    expected = stats.ks_2samp(
        pd.read_csv(data / "reference.csv")["income"],
        pd.read_parquet(data / "current.parquet")["income"],
    )
    assert ks["statistic"] == pytest.approx(expected.statistic, rel=1e-9)
    assert ks["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)


def test_compare_prints_a_table_and_fail_on_sets_the_exit_code(data: Path) -> None:
    """The human table names features and severities; --fail-on exits 1 on drift only."""
    result = run(
        "compare",
        "--reference",
        data / "reference.csv",
        "--current",
        data / "current.parquet",
        "--fail-on",
        "warning",
    )
    assert result.returncode == 1
    assert "2 of 4 features drifted" in result.stdout
    for word in ("age", "income", "plan", "clicks", "ok"):
        assert word in result.stdout
    calm = run(
        "compare",
        "--reference",
        data / "reference.csv",
        "--current",
        data / "current.parquet",
        "--features",
        "income,clicks",
        "--fail-on",
        "warning",
    )
    assert calm.returncode == 0, calm.stdout + calm.stderr


def test_report_writes_an_evidently_html_page(data: Path) -> None:
    """report writes an Evidently HTML file covering the features."""
    out = data / "report.html"
    result = run(
        "report",
        "--reference",
        data / "reference.csv",
        "--current",
        data / "current.parquet",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html[:500].lower()
    assert "age" in html
    assert "plan" in html
    assert out.stat().st_size > 10_000


def newer_profile(data: Path) -> Path:
    """A copy of a real profile claiming schema version 99."""
    source = data / "source.dsprofile"
    built = run(
        "reference",
        "build",
        data / "reference.csv",
        "--model",
        "m",
        "--version",
        "1",
        "--out",
        source,
    )
    assert built.returncode == 0, built.stderr
    buffer = io.BytesIO()
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(buffer, "w") as copy:
        for item in original.namelist():
            content = original.read(item)
            if item == "profile.json":
                header = json.loads(content)
                header["schema_version"] = 99
                content = json.dumps(header).encode()
            copy.writestr(item, content)
    target = data / "newer.dsprofile"
    target.write_bytes(buffer.getvalue())
    return target


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such file"),
        ("unknown_suffix", "unknown format '.xlsx'"),
        ("garbage_parquet", "cannot read as parquet"),
        ("empty", "file is empty"),
        ("unknown_column", "unknown feature(s) not in the reference: nope"),
        ("missing_column", "column(s) missing from the current data: plan"),
        ("newer_profile", "schema version 99 is not supported"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_code_2(data: Path, case: str, message: str) -> None:
    """Bad input gives one line on stderr, exit code 2 and no traceback."""
    reference, current = data / "reference.csv", data / "current.parquet"
    extra: list[str] = []
    if case == "missing":
        current = data / "nope.csv"
    elif case == "unknown_suffix":
        current = data / "table.xlsx"
        current.write_text("a,b\n1,2\n")
    elif case == "garbage_parquet":
        current = data / "garbage.parquet"
        current.write_text("this is not parquet")
    elif case == "empty":
        current = data / "empty.csv"
        current.write_text("")
    elif case == "unknown_column":
        extra = ["--features", "age,nope"]
    elif case == "missing_column":
        current = data / "no_plan.csv"
        pd.read_parquet(data / "current.parquet").drop(columns="plan").to_csv(current, index=False)
    elif case == "newer_profile":
        reference = newer_profile(data)
    result = run("compare", "--reference", reference, "--current", current, *extra)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]


def test_check_config_prints_the_effective_config_or_the_exact_error(tmp_path: Path) -> None:
    """check-config prints YAML for a good file, one error line and exit 2 for a bad one."""
    good = Path(__file__).parent.parent / "driftstream.example.yaml"
    result = run("check-config", good)
    assert result.returncode == 0, result.stderr
    assert "size_events: 1000" in result.stdout
    assert "allowed_lateness: 30s" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  churn:\n    window: {size_events: -5}\n")
    failed = run("check-config", bad)
    assert failed.returncode == 2
    assert failed.stderr.strip() == (
        f"error: {bad}: models.churn.window.size_events: Input should be greater than 0"
    )
