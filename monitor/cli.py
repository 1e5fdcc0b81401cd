"""The ``driftstream`` command line."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import pandas as pd
import typer
import yaml
from rich.console import Console
from rich.table import Table

from monitor.comparison import Comparator, Comparison
from monitor.config import load_config
from monitor.errors import DriftstreamError
from monitor.evidently_report import frame_from_profile, write_evidently_report
from monitor.reference import (
    DEFAULT_MAX_CATEGORIES,
    DEFAULT_N_BINS,
    DEFAULT_SAMPLE_CAP,
    ReferenceProfile,
    is_profile_file,
)
from monitor.stats.decision import Correction, DriftPolicy, Severity
from monitor.stats.result import finite_or_none
from monitor.tables import read_table
from monitor.values import FeatureKind
from monitor.windows import WindowState

app = typer.Typer(
    help="driftstream: drift monitoring for machine-learning models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
reference_app = typer.Typer(help="Build reference profiles.", no_args_is_help=True)
app.add_typer(reference_app, name="reference")

EXIT_BAD_INPUT = 2
EXIT_DRIFT = 1
SEVERITY_STYLE = {
    Severity.OK: "green",
    Severity.WARNING: "yellow",
    Severity.CRITICAL: "bold red",
    Severity.INSUFFICIENT_DATA: "dim",
}


class FailOn(StrEnum):
    """Lowest severity that makes ``compare`` exit with status 1."""

    WARNING = "warning"
    CRITICAL = "critical"


P = ParamSpec("P")
R = TypeVar("R")


def clear_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn user-facing errors into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (DriftstreamError, ValueError) as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


def split_names(value: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; ``None`` or empty -> ``None``."""
    if not value:
        return None
    return [name.strip() for name in value.split(",") if name.strip()]


@reference_app.command("build")
@clear_errors
def reference_build(
    data: Annotated[Path, typer.Argument(help="Reference data: CSV or Parquet.")],
    model: Annotated[str, typer.Option(help="Model name.")],
    version: Annotated[str, typer.Option(help="Model version.")],
    out: Annotated[Path, typer.Option(help="Where to write the profile.")],
    features: Annotated[str | None, typer.Option(help="Columns to profile, a,b,c.")] = None,
    categorical: Annotated[
        str | None, typer.Option(help="Columns to treat as categorical.")
    ] = None,
    numeric: Annotated[str | None, typer.Option(help="Columns to treat as numeric.")] = None,
    bins: Annotated[int, typer.Option(help="Quantile bins for PSI.")] = DEFAULT_N_BINS,
    sample_cap: Annotated[
        int, typer.Option(help="Values kept per numeric feature for KS.")
    ] = DEFAULT_SAMPLE_CAP,
    max_categories: Annotated[
        int, typer.Option(help="Categories kept per feature.")
    ] = DEFAULT_MAX_CATEGORIES,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
) -> None:
    """Build a reference profile from a data file."""
    frame = read_table(data)
    profile = ReferenceProfile.from_frame(
        frame,
        model,
        version,
        kinds=kind_overrides(categorical, numeric),
        features=split_names(features),
        n_bins=bins,
        sample_cap=sample_cap,
        max_categories=max_categories,
        seed=seed,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    profile.save(out)
    kinds = [f.kind.value for f in profile.features.values()]
    typer.echo(
        f"wrote {out}: {profile.model} {profile.model_version}, {profile.n_rows} rows, "
        f"{kinds.count('numeric')} numeric and {kinds.count('categorical')} categorical features"
    )


@app.command()
@clear_errors
def compare(
    reference: Annotated[Path, typer.Option(help="Reference: a profile or a data file.")],
    current: Annotated[Path, typer.Option(help="Current window: a data file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    features: Annotated[str | None, typer.Option(help="Features to compare, a,b.")] = None,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = DriftPolicy.alpha,
    correction: Annotated[
        Correction, typer.Option(help="Multiple-testing correction.")
    ] = DriftPolicy.correction,
    min_samples: Annotated[
        int, typer.Option(help="Fewer values give insufficient_data.")
    ] = DriftPolicy.min_samples,
    fail_on: Annotated[
        FailOn | None,
        typer.Option(help="Exit 1 when any feature reaches this severity."),
    ] = None,
) -> None:
    """Compare a data file with a reference and print per-feature drift."""
    policy = DriftPolicy(alpha=alpha, correction=correction, min_samples=min_samples)
    comparison = run_comparison(reference, current, split_names(features), policy)
    if as_json:
        typer.echo(json.dumps(comparison.to_dict(), indent=2, allow_nan=False))
    else:
        Console().print(comparison_table(comparison))
    if fail_on is not None:
        failing = {Severity.CRITICAL} | ({Severity.WARNING} if fail_on is FailOn.WARNING else set())
        if any(f.severity in failing for f in comparison.features.values()):
            raise typer.Exit(EXIT_DRIFT)


@app.command()
@clear_errors
def report(
    reference: Annotated[Path, typer.Option(help="Reference: a profile or a data file.")],
    current: Annotated[Path, typer.Option(help="Current window: a data file.")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")],
    features: Annotated[str | None, typer.Option(help="Features to include, a,b.")] = None,
) -> None:
    """Write an Evidently HTML report of reference vs current."""
    profile, reference_frame = read_reference(reference)
    if reference_frame is None:
        reference_frame = frame_from_profile(profile)
    current_frame = read_table(current)
    names = checked_features(profile, current_frame, split_names(features))
    write_evidently_report(reference_frame, current_frame, profile, out, names)
    typer.echo(f"wrote {out}")


@app.command("check-config")
@clear_errors
def check_config(
    file: Annotated[Path, typer.Argument(help="The driftstream.yaml to check.")],
) -> None:
    """Validate a configuration file and print the effective configuration."""
    config = load_config(file)
    typer.echo(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), nl=False)


def kind_overrides(categorical: str | None, numeric: str | None) -> dict[str, FeatureKind]:
    """Kind overrides from the two comma lists; a column in both is an error."""
    as_categorical = split_names(categorical) or []
    as_numeric = split_names(numeric) or []
    both = sorted(set(as_categorical) & set(as_numeric))
    if both:
        raise DriftstreamError(f"column(s) both categorical and numeric: {', '.join(both)}")
    kinds = dict.fromkeys(as_categorical, FeatureKind.CATEGORICAL)
    return kinds | dict.fromkeys(as_numeric, FeatureKind.NUMERIC)


def read_reference(path: Path) -> tuple[ReferenceProfile, pd.DataFrame | None]:
    """The reference profile, and the reference data when ``path`` is a data file.

    From a data file the profile keeps every value (exact KS); a saved
    profile comes with no data (see :func:`frame_from_profile`).
    """
    if is_profile_file(path):
        return ReferenceProfile.load(path), None
    frame = read_table(path)
    profile = ReferenceProfile.from_frame(
        frame, model=path.stem, model_version="adhoc", sample_cap=max(len(frame), 1)
    )
    return profile, frame


def checked_features(
    profile: ReferenceProfile, current: pd.DataFrame, wanted: list[str] | None
) -> list[str]:
    """The features to compare; every one must be in the reference and the data."""
    names = wanted or list(profile.features)
    not_in_reference = [n for n in names if n not in profile.features]
    if not_in_reference:
        raise DriftstreamError(
            f"unknown feature(s) not in the reference: {', '.join(not_in_reference)}"
        )
    not_in_current = [n for n in names if n not in current.columns]
    if not_in_current:
        raise DriftstreamError(
            f"column(s) missing from the current data: {', '.join(not_in_current)}"
        )
    return names


def run_comparison(
    reference: Path, current: Path, features: list[str] | None, policy: DriftPolicy
) -> Comparison:
    """Profile (or load) the reference, window the current file, compare."""
    profile, _ = read_reference(reference)
    frame = read_table(current)
    names = checked_features(profile, frame, features)
    window = WindowState.for_profile(profile, sample_cap=max(len(frame), 1))
    window.update_frame(frame)
    return Comparator(profile, policy).compare(window, names)


def comparison_table(comparison: Comparison) -> Table:
    """A rich table: one row per feature, its main statistics and severity.

    ``test`` shows KS D (numeric) or chi-square w (categorical) with its
    adjusted p-value; ``psi`` shows the PSI and its calibrated threshold.
    """
    table = Table(
        title=(
            f"{comparison.model} {comparison.model_version}: {comparison.n_rows} rows, "
            f"{len(comparison.drifted_features)} of {len(comparison.features)} features drifted"
        ),
        caption=f"alpha {comparison.policy.alpha}, correction {comparison.policy.correction}",
    )
    table.add_column("feature")
    table.add_column("kind")
    for header in ("n cur", "test", "effect", "p adj.", "psi", "psi thr.", "nulls"):
        table.add_column(header, justify="right")
    table.add_column("severity")
    for feature in comparison.features.values():
        main = "ks" if feature.kind is FeatureKind.NUMERIC else "chi2"
        result = feature.tests.get(main)
        psi_result = feature.tests.get("psi")
        table.add_row(
            feature.name,
            feature.kind.value[:3],
            str(feature.n_current),
            main if result else "-",
            number(result.effect_size if result else None),
            number(feature.adjusted_p_values.get(main)),
            number(psi_result.statistic if psi_result else None),
            number(psi_result.threshold if psi_result else None),
            f"{feature.quality['null_rate'].rate:.1%}" if feature.n_current else "-",
            f"[{SEVERITY_STYLE[feature.severity]}]{feature.severity.value}[/]",
        )
    return table


def number(value: float | None) -> str:
    """Four significant digits; ``-`` for missing or non-finite."""
    finite = finite_or_none(value)
    return "-" if finite is None else f"{finite:.4g}"
