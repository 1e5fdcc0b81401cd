"""The ``driftstream`` command, run through its installed console script."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from subprocess import CompletedProcess

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from tests.console import run
from tests.evidently_html import Column, check_entries, drift_entries, verdicts


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


def build_profile(data: Path, model: str, version: str) -> tuple[Path, CompletedProcess[str]]:
    """``reference build`` of the module's reference data; the test fails if it fails."""
    profile = data / f"{model}-{version}.dsprofile"
    built = run(
        "reference",
        "build",
        data / "reference.csv",
        "--model",
        model,
        "--version",
        version,
        "--out",
        profile,
    )
    assert built.returncode == 0, built.stderr
    return profile, built


def test_build_then_compare_json_has_the_documented_shape(data: Path) -> None:
    """reference build writes a profile; compare --json prints the documented keys."""
    profile, built = build_profile(data, "churn", "7")
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


LONG_NAMES = (
    "customer_lifetime_value_in_euros_over_the_last_twelve_months",
    "average_session_duration_seconds_in_the_mobile_app",
    "preferred_subscription_plan_category_at_signup",
)


@pytest.fixture(scope="module")
def long_named(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Reference and current CSVs with long feature names and small but nonzero p-values."""
    folder = tmp_path_factory.mktemp("long_named")
    rng = np.random.default_rng(7)
    value, duration, plan = LONG_NAMES
    n, m = 6000, 4000
    pd.DataFrame(
        {
            value: rng.normal(0, 1, n),
            duration: rng.lognormal(3, 0.5, n),
            plan: rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
        }
    ).to_csv(folder / "reference.csv", index=False)
    pd.DataFrame(
        {
            value: rng.normal(0.12, 1, m),
            duration: rng.lognormal(3.02, 0.5, m),
            plan: rng.choice(["basic", "plus", "pro"], m, p=[0.47, 0.3, 0.23]),
        }
    ).to_csv(folder / "current.csv", index=False)
    return folder


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The rows of a printed comparison table by feature, wrapped names joined again."""
    rows: list[list[str]] = []
    for line in stdout.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if rows and not any(cells[1:]):  # the feature name goes on
            rows[-1][0] += cells[0]
        else:
            rows.append(cells)
    return {cells[0]: cells for cells in rows}


def headers(stdout: str) -> list[str]:
    line = next(line for line in stdout.splitlines() if line.startswith("┃"))
    return [cell.strip() for cell in line.strip("┃").split("┃")]


def test_compare_table_fits_80_columns_with_three_significant_digits(long_named: Path) -> None:
    """Long names wrap, nothing is cut, and the numbers are scipy's to the digits shown."""
    args: list[str | Path] = ["compare", "--reference", long_named / "reference.csv"]
    args += ["--current", long_named / "current.csv"]
    narrow = run(*args, environment={"COLUMNS": "80"})
    assert narrow.returncode == 0, narrow.stderr
    lines = narrow.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, narrow.stdout
    assert "…" not in narrow.stdout, narrow.stdout
    shown = headers(narrow.stdout)
    assert {"feature", "test", "effect", "p adj.", "psi", "severity"} <= set(shown)
    rows = table_rows(narrow.stdout)
    assert set(rows) == set(LONG_NAMES)
    column = {header: index for index, header in enumerate(shown)}

    reference = pd.read_csv(long_named / "reference.csv")
    current = pd.read_csv(long_named / "current.csv")
    numeric = LONG_NAMES[:2]
    ks = {name: stats.ks_2samp(reference[name], current[name]) for name in numeric}
    adjusted = stats.false_discovery_control([ks[name].pvalue for name in numeric])
    for name, p_adjusted in zip(numeric, adjusted, strict=True):
        cells = rows[name]
        assert cells[column["test"]] == "ks"
        assert cells[column["effect"]] == f"{ks[name].statistic:.3g}"
        assert cells[column["p adj."]] == f"{p_adjusted:.3g}"
    # a tiny p-value is shown in scientific notation, not as 0.000
    assert "e-" in rows[LONG_NAMES[0]][column["p adj."]]
    # the other numbers are those of --json, to three significant digits
    report = json.loads(run(*args, "--json").stdout)["features"]
    for name in LONG_NAMES:
        tests = report[name]["tests"]
        main = "ks" if name in numeric else "chi2"
        assert rows[name][column["psi"]] == f"{tests['psi']['value']:.3g}"
        assert rows[name][column["effect"]] == f"{tests[main]['effect_size']:.3g}"
        assert rows[name][column["p adj."]] == f"{tests[main]['adjusted_p_value']:.3g}"
        assert rows[name][column["severity"]] == report[name]["severity"]

    wide = run(*args, environment={"COLUMNS": "160"})
    assert wide.returncode == 0, wide.stderr
    assert max(len(line) for line in wide.stdout.splitlines()) <= 160
    assert "…" not in wide.stdout
    assert set(headers(wide.stdout)) >= set(shown)
    assert len(headers(wide.stdout)) > len(shown)
    assert headers(wide.stdout) == [
        "feature", "kind", "test", "effect", "p adj.", "psi", "psi thr.", "n cur", "nulls",
        "severity",
    ]  # fmt: skip
    assert set(table_rows(wide.stdout)) == set(LONG_NAMES)
    for name in LONG_NAMES:  # one line per feature
        assert sum(name in line for line in wide.stdout.splitlines()) == 1


def test_report_writes_an_evidently_html_page(data: Path) -> None:
    """The page compares every feature, only them, and says what scipy says about each."""
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
    assert result.stdout == f"wrote {out}\n"
    html = out.read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    entries = drift_entries(html)
    reference = pd.read_csv(data / "reference.csv")
    current = pd.read_parquet(data / "current.parquet")
    check_entries(
        entries,
        {
            "age": Column(reference["age"].tolist(), current["age"].tolist(), False),
            "income": Column(reference["income"].tolist(), current["income"].tolist(), False),
            "plan": Column(reference["plan"].tolist(), current["plan"].tolist(), True),
            "clicks": Column(
                reference["clicks"].astype(str).tolist(),
                current["clicks"].astype(str).tolist(),
                True,
            ),
        },
    )
    # Every test of a feature agrees: age and plan drift, the rest do not.
    assert verdicts(entries) == {
        "age": {True},
        "income": {False},
        "plan": {True},
        "clicks": {False},
    }


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Reference data with the model's output in ``prediction``, and two current files.

    ``output_shift.csv``: only the output's class shares moved (0.3 -> 0.6
    "yes"); ``both_shift.csv``: the output and ``age`` (+1 sd) moved.
    """
    folder = tmp_path_factory.mktemp("scored")
    rng = np.random.default_rng(5)

    def table(n: int, age_mean: float, yes_share: float) -> pd.DataFrame:
        # The output is the first column, so only keeping it apart puts it last.
        return pd.DataFrame(
            {
                "prediction": rng.choice(["yes", "no"], n, p=[yes_share, 1 - yes_share]),
                "age": rng.normal(age_mean, 10, n),
                "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3, 0.2]),
            }
        )

    table(4000, 40, 0.3).to_csv(folder / "reference.csv", index=False)
    table(1000, 40, 0.6).to_csv(folder / "output_shift.csv", index=False)
    table(1000, 50, 0.6).to_csv(folder / "both_shift.csv", index=False)
    return folder


def scored_profile(scored: Path, column: str = "prediction") -> Path:
    """``reference build`` of the scored reference, the output in ``column``."""
    profile = scored / f"churn-{column}.dsprofile"
    reference = scored / "reference.csv"
    if column != "prediction":
        reference = scored / f"reference-{column}.csv"
        pd.read_csv(scored / "reference.csv").rename(columns={"prediction": column}).to_csv(
            reference, index=False
        )
    built = run(
        "reference", "build", reference, "--model", "churn", "--version", "7", "--out", profile,
        "--prediction-column", column,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert built.stdout.rstrip().endswith(
        f"1 numeric and 1 categorical features and the model output {column} (categorical)"
    )
    return profile


def test_an_output_only_shift_is_reported_apart_and_does_not_fail_compare(scored: Path) -> None:
    """The output is the separate ``prediction`` entry, outside drifted_features and --fail-on."""
    profile = scored_profile(scored)
    current = scored / "output_shift.csv"
    result = run(
        "compare", "--reference", profile, "--current", current, "--json", "--fail-on", "critical"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert list(report["features"]) == ["age", "plan"]
    assert {f["severity"] for f in report["features"].values()} == {"ok"}
    assert report["severity"] == "ok"
    assert report["drifted_features"] == []
    output = report["prediction"]
    assert output["severity"] == "critical"
    reference_shares = pd.read_csv(scored / "reference.csv")["prediction"].value_counts(
        normalize=True
    )
    observed = pd.read_csv(current)["prediction"].value_counts()
    expected = stats.chisquare(
        observed.to_numpy(), observed.sum() * reference_shares[observed.index].to_numpy()
    )
    chi2 = output["tests"]["chi2"]
    assert chi2["statistic"] == pytest.approx(expected.statistic, rel=1e-9)
    # A family of its own: one p-value, nothing to correct.
    assert chi2["adjusted_p_value"] == chi2["p_value"]
    # The features' family is the features alone: BH over their two p-values.
    for test in ("ks", "chi2"):
        tested = [f["tests"][test] for f in report["features"].values() if test in f["tests"]]
        assert len(tested) == 1
        assert tested[0]["adjusted_p_value"] == pytest.approx(tested[0]["p_value"], rel=1e-12)
    psi = [f["tests"]["psi"] for f in report["features"].values()]
    bh = stats.false_discovery_control([t["p_value"] for t in psi])
    assert [t["adjusted_p_value"] for t in psi] == pytest.approx(bh.tolist(), rel=1e-12)

    table = run("compare", "--reference", profile, "--current", current)
    assert table.returncode == 0, table.stderr
    assert "0 of 2 features drifted; model output prediction: critical" in table.stdout
    rows = [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in table.stdout.splitlines()
        if line.startswith("│")
    ]
    assert [(row[0], row[-1]) for row in rows] == [
        ("age", "ok"),
        ("plan", "ok"),
        ("prediction (output)", "critical"),
    ]


def test_a_feature_shift_still_fails_compare_with_the_output_apart(scored: Path) -> None:
    """A drifted feature fails --fail-on critical; the output is never among the features."""
    result = run(
        "compare", "--reference", scored_profile(scored), "--current", scored / "both_shift.csv",
        "--json", "--fail-on", "critical",
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["drifted_features"] == ["age"]
    assert report["severity"] == "critical"
    assert report["prediction"]["severity"] == "critical"
    assert "prediction" not in report["features"]


def test_report_puts_the_output_after_the_features(scored: Path) -> None:
    """report: the features' drift widgets, then the output's (first in the data)."""
    out = scored / "report.html"
    result = run(
        "report", "--reference", scored_profile(scored), "--current", scored / "output_shift.csv",
        "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    entries = drift_entries(out.read_text())
    # The profile keeps all 4000 reference values: its sample is the reference column.
    reference = pd.read_csv(scored / "reference.csv")
    current = pd.read_csv(scored / "output_shift.csv")
    check_entries(
        entries,
        {
            "age": Column(reference["age"].tolist(), current["age"].tolist(), False),
            "plan": Column(reference["plan"].tolist(), current["plan"].tolist(), True),
            "prediction": Column(
                reference["prediction"].tolist(), current["prediction"].tolist(), True
            ),
        },
    )
    assert verdicts(entries) == {"age": {False}, "plan": {False}, "prediction": {True}}


def test_the_output_column_is_the_one_the_reference_was_built_with(scored: Path) -> None:
    """A profile built with --prediction-column score knows its output; a data file is told."""
    current = scored / "output_shift-score.csv"
    pd.read_csv(scored / "output_shift.csv").rename(columns={"prediction": "score"}).to_csv(
        current, index=False
    )
    from_profile = run(
        "compare", "--reference", scored_profile(scored, "score"), "--current", current, "--json",
        "--fail-on", "critical",
    )  # fmt: skip
    assert from_profile.returncode == 0, from_profile.stdout + from_profile.stderr
    report = json.loads(from_profile.stdout)
    assert list(report["features"]) == ["age", "plan"]
    assert report["prediction"]["severity"] == "critical"
    reference = scored / "reference-score.csv"
    untold = run("compare", "--reference", reference, "--current", current, "--json")
    assert json.loads(untold.stdout)["drifted_features"] == ["score"]
    assert json.loads(untold.stdout)["prediction"] is None
    told = run(
        "compare", "--reference", reference, "--current", current, "--json",
        "--prediction-column", "score", "--fail-on", "critical",
    )  # fmt: skip
    assert told.returncode == 0, told.stdout + told.stderr
    assert json.loads(told.stdout)["prediction"]["severity"] == "critical"


def newer_profile(data: Path) -> Path:
    """A copy of a real profile claiming schema version 99."""
    source, _ = build_profile(data, "m", "1")
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


EXAMPLE = Path(__file__).parent.parent / "driftstream.example.yaml"
README = Path(__file__).parent.parent / "README.md"


@pytest.fixture(scope="module")
def churn_profile(data: Path) -> Path:
    """A reference profile of model churn, version 7."""
    return build_profile(data, "churn", "7")[0]


def test_check_config_names_a_missing_or_unusable_reference_file(
    tmp_path: Path, data: Path
) -> None:
    """check-config reads every configured profile: no such file, or why it is none."""
    config = tmp_path / "driftstream.yaml"
    for reference, problem in [
        ("references/churn-7.dsprofile", "references/churn-7.dsprofile: no such file"),
        (str(data / "reference.csv"), f"{data / 'reference.csv'}: not a driftstream reference"),
    ]:
        config.write_text(f"models: {{churn: {{reference: {reference}}}}}\n")
        result = run("check-config", config)
        assert result.returncode == 2
        assert result.stderr.startswith(f"error: models.churn.reference: {problem}")
        assert len(result.stderr.strip().splitlines()) == 1


def test_run_names_a_missing_reference_before_starting_a_broker(tmp_path: Path) -> None:
    """run checks references first: no embedded broker is announced, one error line."""
    config = tmp_path / "driftstream.yaml"
    config.write_text("models: {churn: {reference: churn-7.dsprofile}}\n")
    result = run("run", "--config", config)
    assert result.returncode == 2
    assert result.stderr == "error: models.churn.reference: churn-7.dsprofile: no such file\n"


def test_the_readme_environment_override_example_passes(tmp_path: Path) -> None:
    """The README's size_events override turns the example's time window into a count one."""
    assert (
        "DRIFTSTREAM_MODELS__CHURN__WINDOW__SIZE_EVENTS=5000 driftstream check-config "
        "driftstream.example.yaml" in README.read_text()
    )
    result = run(
        "check-config",
        EXAMPLE,
        environment={"DRIFTSTREAM_MODELS__CHURN__WINDOW__SIZE_EVENTS": "5000"},
    )
    assert result.returncode == 0, result.stderr
    window = yaml.safe_load(result.stdout)["models"]["churn"]["window"]
    assert (window["size_events"], window["duration"]) == (5000, None)
    assert (window["allowed_lateness"], window["min_samples"]) == ("30s", 200)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DRIFTSTREAM_WORKER__WEB_PROT", "1", "worker.web_prot: Extra inputs are not permitted"),
        (
            "DRIFTSTREAM_WORKER__WEB_PORT",
            "abc",
            "worker.web_port: Input should be a valid integer, "
            "unable to parse string as an integer",
        ),
    ],
)
def test_check_config_blames_a_bad_environment_variable_not_the_file(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    """An unknown or invalid DRIFTSTREAM_* value is reported with the variable's name."""
    config = tmp_path / "min.yaml"
    config.write_text("worker: {group_id: g}\n")
    result = run("check-config", config, environment={variable: value})
    assert result.returncode == 2
    assert result.stderr == f"error: environment variable {variable}: {message}\n"


def test_init_writes_a_config_that_passes_check_config(tmp_path: Path, churn_profile: Path) -> None:
    """init writes a commented config for the model and its reference; check-config takes it."""
    out = tmp_path / "driftstream.yaml"
    result = run("init", "--model", "churn", "--reference", churn_profile, "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {out}: model churn, reference {churn_profile}\n"
    text = out.read_text()
    assert text.startswith("# driftstream configuration, written by `driftstream init`")
    assert yaml.safe_load(text) == {
        "broker": {"url": ""},
        "models": {
            "churn": {
                "reference": str(churn_profile),
                "window": {"size_events": 1000, "min_samples": 100},
            }
        },
    }
    checked = run("check-config", out)
    assert checked.returncode == 0, checked.stderr
    assert f"reference: {churn_profile}" in checked.stdout


def test_init_keeps_an_existing_file_unless_forced(tmp_path: Path, churn_profile: Path) -> None:
    """An existing file stays as it is (exit 2); --force replaces it."""
    out = tmp_path / "driftstream.yaml"
    out.write_text("mine\n")
    arguments = ("init", "--model", "churn", "--reference", churn_profile, "--out", out)
    refused = run(*arguments)
    assert refused.returncode == 2
    assert refused.stderr == f"error: {out} already exists; --force overwrites it\n"
    assert out.read_text() == "mine\n"
    forced = run(*arguments, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "models" in yaml.safe_load(out.read_text())


@pytest.mark.parametrize(
    ("model", "reference", "problem"),
    [
        ("churn", "missing.dsprofile", "missing.dsprofile: no such file"),
        ("fraud", "PROFILE", "PROFILE is a profile of model 'churn', not 'fraud'"),
    ],
)
def test_init_refuses_a_reference_that_is_not_the_models_profile(
    tmp_path: Path, churn_profile: Path, model: str, reference: str, problem: str
) -> None:
    """init checks the profile like check-config would, and writes nothing."""
    out = tmp_path / "driftstream.yaml"
    path = str(churn_profile) if reference == "PROFILE" else reference
    result = run("init", "--model", model, "--reference", path, "--out", out)
    assert result.returncode == 2
    assert result.stderr == f"error: --reference {problem.replace('PROFILE', path)}\n"
    assert not out.exists()


def test_init_quotes_names_that_yaml_would_misread(tmp_path: Path, data: Path) -> None:
    """A model named "yes" stays the string "yes" in the written file."""
    profile, _ = build_profile(data, "yes", "1")
    out = tmp_path / "driftstream.yaml"
    assert run("init", "--model", "yes", "--reference", profile, "--out", out).returncode == 0
    assert list(yaml.safe_load(out.read_text())["models"]) == ["yes"]
    assert run("check-config", out).returncode == 0
