"""The ``driftstream`` command line.

Commands that talk to Kafka import their client modules (kafka-python,
Faust, aiokafka, the alert sinks' HTTP clients) inside the command, so
``--help`` and the offline commands (``compare``, ``report``, ``reference
build``, ``check-config``, ``init``) start without loading them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

import orjson
import pandas as pd
import typer
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor.broker import (
    MEMORY_STORAGE,
    PREFERRED_PORT,
    EmbeddedBroker,
    broker_for,
    check_storage,
    port_is_free,
)
from monitor.catalog import profile_id
from monitor.comparison import Comparator, Comparison, FeatureComparison
from monitor.config import (
    DriftstreamConfig,
    ModelDefaults,
    TailTopic,
    load_config,
    model_profile,
)
from monitor.errors import DriftstreamError
from monitor.evidently_report import frame_from_profile, write_evidently_report
from monitor.reference import (
    DEFAULT_MAX_CATEGORIES,
    DEFAULT_N_BINS,
    DEFAULT_PREDICTION_COLUMN,
    DEFAULT_SAMPLE_CAP,
    ReferenceProfile,
    is_profile_file,
)
from monitor.stats.decision import Correction, DriftPolicy, Severity
from monitor.stats.performance import Task
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
reference_app = typer.Typer(help="Build and publish reference profiles.", no_args_is_help=True)
app.add_typer(reference_app, name="reference")
topics_app = typer.Typer(help="Manage driftstream's Kafka topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")

EXIT_BAD_INPUT = 2
TASKS: dict[str, Task] = {"classification": "classification", "regression": "regression"}
EXIT_DRIFT = 1
SEVERITY_STYLE = {
    Severity.OK: "green",
    Severity.WARNING: "yellow",
    Severity.CRITICAL: "bold red",
    Severity.INSUFFICIENT_DATA: "dim",
}


PredictionColumnOption = Annotated[
    str | None,
    typer.Option(
        help="Column of the model's output, compared apart from the features "
        "(default: the one the reference was built with; prediction for a data file)."
    ),
]


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
    label_column: Annotated[
        str | None,
        typer.Option(help="Column of true labels: records the model's reference performance."),
    ] = None,
    prediction_column: Annotated[
        str,
        typer.Option(
            help="Column of the model's predictions (profiled for output drift, "
            "kept apart from the features)."
        ),
    ] = DEFAULT_PREDICTION_COLUMN,
    task: Annotated[
        str | None, typer.Option(help="classification or regression (default: inferred).")
    ] = None,
) -> None:
    """Build a reference profile from a data file."""
    if task is not None and task not in TASKS:
        raise DriftstreamError("--task must be classification or regression")
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
        label_column=label_column,
        prediction_column=prediction_column,
        task=TASKS[task] if task else None,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    profile.save(out)
    output = profile.features.get(profile.prediction_column)
    kinds = [f.kind.value for f in profile.features.values() if f is not output]
    typer.echo(
        f"wrote {out}: {profile.model} {profile.model_version}, {profile.n_rows} rows, "
        f"{kinds.count('numeric')} numeric and {kinds.count('categorical')} categorical features"
        + (f" and the model output {output.name} ({output.kind.value})" if output else "")
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
        typer.Option(help="Exit 1 when any feature (not the model output) reaches this severity."),
    ] = None,
    prediction_column: PredictionColumnOption = None,
) -> None:
    """Compare a data file with a reference and print per-feature and model-output drift."""
    policy = DriftPolicy(alpha=alpha, correction=correction, min_samples=min_samples)
    comparison = run_comparison(
        reference, current, split_names(features), policy, prediction_column
    )
    if as_json:
        typer.echo(json.dumps(comparison.to_dict(), indent=2, allow_nan=False))
    else:
        console = Console()
        console.print(comparison_table(comparison, console.width))
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
    prediction_column: PredictionColumnOption = None,
) -> None:
    """Write an Evidently HTML report of reference vs current (the model output last)."""
    profile, reference_frame = read_reference(reference, prediction_column)
    if reference_frame is None:
        reference_frame = frame_from_profile(profile)
    current_frame = read_table(current)
    names = checked_features(profile, current_frame, split_names(features))
    output = compared_output(profile, current_frame)
    write_evidently_report(
        reference_frame, current_frame, profile, out, names + ([output] if output else [])
    )
    typer.echo(f"wrote {out}")


@app.command("check-config")
@clear_errors
def check_config(
    file: Annotated[Path, typer.Argument(help="The driftstream.yaml to check.")],
) -> None:
    """Validate a configuration file (sink secrets and reference files included).

    Prints the effective configuration.
    """
    config = load_config(file)
    config.check_secrets()
    config.load_references()
    typer.echo(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), nl=False)


INIT_TEMPLATE = """\
# driftstream configuration, written by `driftstream init`. Fields left out keep
# their defaults (driftstream.example.yaml lists every field); DRIFTSTREAM_*
# environment variables override any field. The effective configuration:
#   driftstream check-config {out}
broker:
  url: ""    # empty: start the embedded development broker; or kafka://HOST:9092
models:
  # A model, by the name its events carry, and its reference profile (read at
  # start-up; a relative path is relative to the working directory).
  {model}:
    reference: {reference}
    window:
      size_events: {size_events}  # compare every {size_events} events of a version; or duration: 5m
      min_samples: {min_samples}   # a feature with fewer values in a window: insufficient_data
"""


@app.command()
@clear_errors
def init(
    model: Annotated[str, typer.Option(help="The model's name, as its events carry it.")],
    reference: Annotated[
        Path, typer.Option(help="Its reference profile (from `driftstream reference build`).")
    ],
    out: Annotated[Path, typer.Option(help="The file to write.")] = Path("driftstream.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a minimal, commented driftstream.yaml that monitors one model."""
    try:
        model_profile(reference, model)
    except DriftstreamError as error:
        raise DriftstreamError(f"--reference {error}") from None
    window = ModelDefaults().window
    text = INIT_TEMPLATE.format(
        out=out,
        model=yaml_scalar(model),
        reference=yaml_scalar(str(reference)),
        size_events=window.size_events,
        min_samples=window.min_samples,
    )
    try:
        # Mode "x" refuses an existing file without a check-then-write race.
        with out.open("w" if force else "x") as file:
            file.write(text)
    except FileExistsError:
        raise DriftstreamError(f"{out} already exists; --force overwrites it") from None
    except OSError as error:
        raise DriftstreamError(f"{out}: {error.strerror}") from None
    typer.echo(f"wrote {out}: model {model}, reference {reference}")


def yaml_scalar(text: str) -> str:
    """``text`` for a YAML document: as it is when it reads back as itself, else quoted.

    Examples
    --------
    >>> yaml_scalar("churn"), yaml_scalar("a: b"), yaml_scalar("yes")
    ('churn', '"a: b"', '"yes"')
    """
    try:
        plain = yaml.safe_load(f"{text}: {text}") == {text: text}
    except yaml.YAMLError:
        plain = False
    return text if plain else json.dumps(text)


@app.command()
@clear_errors
def run(
    config: Annotated[
        Path | None, typer.Option(help="driftstream.yaml (default: defaults + environment).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run a worker; with no broker configured, start the embedded one first."""
    from monitor.topics import ensure_topics
    from monitor.worker import run_worker

    settings = load_config(config)
    settings.check_secrets()
    # read before anything starts, so a bad file fails before a broker or a client
    references = settings.load_references()
    with broker_for(settings.broker, announce) as bootstrap:
        ensure_topics(bootstrap, settings.topics, settings.broker.client_options())
        run_worker(settings, bootstrap, references, log_level)


@app.command()
@clear_errors
def demo(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    rate: Annotated[int, typer.Option(help="Predictions per second, all models.")] = 600,
    drift_after: Annotated[
        float, typer.Option(help="Seconds of healthy traffic before the drift.")
    ] = 20.0,
    window_events: Annotated[int, typer.Option(help="Events per window.")] = 500,
    live: Annotated[bool, typer.Option(help="Live table (--no-live: one line per window).")] = True,
) -> None:
    """Broker, worker and a simulated serving service that drifts: watch it live."""
    from monitor.demo import DemoSettings, run_demo

    console = Console()
    board = run_demo(
        DemoSettings(
            events_per_second=rate,
            drift_after_seconds=drift_after,
            window_events=window_events,
            duration=duration,
            live=live,
        ),
        console,
        Console(stderr=True),
    )
    console.print(
        f"{board.windows} windows evaluated, {board.drifted_windows} with drift.", style="bold"
    )


def announce(message: str) -> None:
    """A notice on stderr (stdout may be piped)."""
    typer.echo(message, err=True)


ConfigOption = Annotated[
    Path | None, typer.Option(help="driftstream.yaml (default: defaults + environment).")
]
BootstrapOption = Annotated[
    str | None,
    typer.Option(help="Kafka host:port[,host:port] (default: broker.url of the configuration)."),
]
#: Invalid lines printed before "... and N more".
MAX_REPORTED_LINES = 20
#: How long ``tail`` waits to catch up, unless --timeout or --follow.
TAIL_TIMEOUT = 10.0


def broker_address(settings: DriftstreamConfig, bootstrap: str | None) -> str:
    """``--bootstrap`` when given, else the configured broker; never a new broker."""
    if bootstrap:
        servers = settings.broker.with_url(bootstrap).bootstrap_servers
    else:
        servers = "" if settings.broker.embedded else settings.broker.bootstrap_servers
    if not servers:
        raise DriftstreamError(
            "no broker: pass --bootstrap HOST:PORT (such as the address `driftstream run` or "
            "`driftstream broker` printed) or set broker.url in the configuration; this "
            "command does not start a broker"
        )
    return servers


@app.command()
@clear_errors
def simulate(
    config: ConfigOption = None,
    bootstrap: BootstrapOption = None,
    rate: Annotated[int, typer.Option(help="Predictions per second, all models.")] = 600,
    drift_after: Annotated[
        float, typer.Option(help="Seconds of healthy traffic before the drift.")
    ] = 120.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    publish_references: Annotated[
        bool, typer.Option(help="First publish the simulated models' reference profiles.")
    ] = False,
) -> None:
    """Only the demo's simulated serving service, against a running Kafka, until stopped."""
    from monitor.demo import DemoSettings
    from monitor.demo import simulate as simulate_traffic

    settings = load_config(config)
    servers = broker_address(settings, bootstrap)
    simulate_traffic(
        DemoSettings(
            events_per_second=rate, drift_after_seconds=drift_after, duration=duration, live=False
        ),
        settings,
        servers,
        announce,
        publish_profiles=publish_references,
    )


@topics_app.command("create")
@clear_errors
def topics_create(config: ConfigOption = None, bootstrap: BootstrapOption = None) -> None:
    """Create the configured topics that do not exist yet (as `run` does), then exit."""
    from monitor.topics import ensure_topics, topic_specs

    settings = load_config(config)
    servers = broker_address(settings, bootstrap)
    ensure_topics(servers, settings.topics, settings.broker.client_options())
    names = [spec.name for spec in topic_specs(settings.topics)]
    typer.echo(f"topics: {', '.join(names)}")


@app.command("broker")
@clear_errors
def broker_command(
    port: Annotated[
        int, typer.Option(help="Port to listen on (0: any free port).")
    ] = PREFERRED_PORT,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    config: Annotated[
        Path | None, typer.Option(help="Create the topics of this driftstream.yaml.")
    ] = None,
    log: Annotated[Path | None, typer.Option(help="Append the broker's own log here.")] = None,
    storage: Annotated[
        str,
        typer.Option(
            metavar="URL",
            help=(
                "Storage engine: memory://tansu/ (lost when the broker stops) or "
                "s3://BUCKET/ (durable; the bucket must exist) on the S3-compatible "
                "server named by AWS_ENDPOINT, AWS_ALLOW_HTTP=true (for http://), "
                "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_DEFAULT_REGION."
            ),
        ),
    ] = MEMORY_STORAGE,
) -> None:
    """Run the embedded development broker (Tansu; memory storage by default) until Ctrl-C."""
    from monitor.topics import ensure_topics, topic_specs

    storage = check_storage(storage, "--storage")
    settings = load_config(config) if config is not None else None
    if port and not port_is_free(port, host):
        raise DriftstreamError(f"{host}:{port} is already in use")
    embedded = EmbeddedBroker(port=port or None, host=host, log_path=log, storage=storage)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        embedded.start()
        kept = (
            "memory storage: all data is lost when it stops"
            if storage.startswith("memory://")
            else f"storage {storage}"
        )
        typer.echo(
            f"broker listening on kafka://{embedded.bootstrap_servers} (Tansu, {kept}); "
            "Ctrl-C stops it"
        )
        if settings is not None:
            ensure_topics(embedded.bootstrap_servers, settings.topics, {})
            names = [spec.name for spec in topic_specs(settings.topics)]
            typer.echo(f"topics: {', '.join(names)}")
        while not stop.wait(1.0):
            if port_is_free(embedded.port, host):
                raise DriftstreamError("the broker process exited unexpectedly")
    finally:
        embedded.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    typer.echo("broker stopped")


@app.command()
@clear_errors
def publish(
    file: Annotated[
        Path, typer.Argument(help="JSONL (one event per line) or CSV (one prediction per row).")
    ],
    config: ConfigOption = None,
    bootstrap: BootstrapOption = None,
    topic: Annotated[
        str | None, typer.Option(help="Predictions topic (default: topics.predictions).")
    ] = None,
    labels_topic: Annotated[
        str | None, typer.Option(help="Labels topic (default: topics.labels).")
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Send the valid events; report and count the invalid lines.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to reach the broker and deliver.")] = 30.0,
) -> None:
    """Validate every event of a file, then send them to the predictions and labels topics."""
    from monitor.publishing import Destination, read_events, send_messages

    settings = load_config(config)
    servers = broker_address(settings, bootstrap)
    plan = read_events(file, settings.limits.event_limits())
    prefix = "skipped" if skip_invalid else "error"
    for invalid in plan.invalid[:MAX_REPORTED_LINES]:
        typer.echo(f"{prefix}: {plan.describe(invalid)}", err=True)
    if len(plan.invalid) > MAX_REPORTED_LINES:
        hidden = len(plan.invalid) - MAX_REPORTED_LINES
        typer.echo(f"{prefix}: ... and {hidden} more invalid line(s)", err=True)
    if plan.invalid and not skip_invalid:
        typer.echo(
            f"error: {len(plan.invalid)} invalid line(s), nothing sent "
            "(--skip-invalid sends the valid ones)",
            err=True,
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    topics = {
        Destination.PREDICTIONS: topic or settings.topics.predictions,
        Destination.LABELS: labels_topic or settings.topics.labels,
    }
    sent = send_messages(servers, settings.broker.client_options(), plan.messages, topics, timeout)
    summary = (
        f"sent {sent.predictions} predictions in {sent.messages - sent.labels} messages to "
        f"{topics[Destination.PREDICTIONS]} and {sent.labels} labels to "
        f"{topics[Destination.LABELS]}"
    )
    if plan.invalid:
        summary += f"; skipped {len(plan.invalid)} invalid line(s)"
    typer.echo(summary)


@app.command()
@clear_errors
def tail(
    which: Annotated[TailTopic, typer.Argument(metavar="TOPIC", help="The topic to print.")],
    config: ConfigOption = None,
    bootstrap: BootstrapOption = None,
    from_beginning: Annotated[
        bool,
        typer.Option(
            "--from-beginning/--latest",
            help="Start at the oldest record, or only show records written from now on.",
        ),
    ] = True,
    max_records: Annotated[
        int | None, typer.Option("--max", min=1, help="Stop after this many records.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            help=f"Give up after this many seconds (default {TAIL_TIMEOUT:g}; "
            "with --follow: no limit)."
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep printing new records until Ctrl-C.")
    ] = False,
    envelope: Annotated[
        bool,
        typer.Option("--envelope", help="Print partition, offset and key around each value."),
    ] = False,
    model: Annotated[
        str | None, typer.Option(help="Only records whose value names this model.")
    ] = None,
) -> None:
    """Print the records of an output topic, one JSON document per line.

    Records come partition by partition as fetched: a model's results sit
    in one partition, in window order; models interleave. Without --follow
    it stops once caught up with every partition; exit status 1 if that
    does not happen within the timeout.
    """
    from monitor.tailing import of_model, printed_form, tail_topic

    settings = load_config(config)
    servers = broker_address(settings, bootstrap)
    topic: str = getattr(settings.topics, which.value)
    limit = timeout if timeout is not None else (None if follow else TAIL_TIMEOUT)

    def emit(document: dict[str, Any]) -> bool:
        return of_model(document, model) and print_json_line(printed_form(document, envelope))

    try:
        outcome = tail_topic(
            servers,
            settings.broker.client_options(),
            topic,
            which,
            emit,
            from_beginning=from_beginning,
            max_records=max_records,
            timeout=limit,
            follow=follow,
        )
    except KeyboardInterrupt:
        return
    except BrokenPipeError:  # the reader left, e.g. `| head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    if outcome.timed_out and not follow:
        typer.echo(
            f"timeout: not caught up with {topic} after {limit:g} s "
            f"({outcome.records} records printed)",
            err=True,
        )
        raise typer.Exit(1)


def print_json_line(document: Any) -> bool:
    """One JSON document on one stdout line; True (it was printed)."""
    typer.echo(orjson.dumps(document).decode())
    return True


@reference_app.command("publish")
@clear_errors
def reference_publish(
    profile: Annotated[Path, typer.Argument(help="A profile from `driftstream reference build`.")],
    config: ConfigOption = None,
    bootstrap: BootstrapOption = None,
    model: Annotated[str | None, typer.Option(help="Publish under this model name.")] = None,
    version: Annotated[str | None, typer.Option(help="Publish under this model version.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to reach the broker and deliver.")] = 30.0,
) -> None:
    """Publish a reference profile to the references topic, where workers pick it up."""
    from monitor.publishing import publish_reference

    settings = load_config(config)
    servers = broker_address(settings, bootstrap)
    if profile.is_file() and not is_profile_file(profile):
        raise DriftstreamError(
            f"{profile}: not a reference profile; make one with `driftstream reference build`"
        )
    loaded = ReferenceProfile.load(profile)
    if model or version:
        loaded = dataclasses.replace(
            loaded, model=model or loaded.model, model_version=version or loaded.model_version
        )
    delivery = publish_reference(
        servers, settings.broker.client_options(), settings.topics, loaded, timeout
    )
    typer.echo(
        f"published {loaded.model} {loaded.model_version} ({loaded.n_rows} rows, "
        f"{len(loaded.features)} features, {delivery.size} bytes) to {delivery.topic} "
        f"partition {delivery.partition} offset {delivery.offset}, key {delivery.key.decode()}, "
        f"id {profile_id(loaded.to_bytes())}"
    )


def kind_overrides(categorical: str | None, numeric: str | None) -> dict[str, FeatureKind]:
    """Kind overrides from the two comma lists; a column in both is an error."""
    as_categorical = split_names(categorical) or []
    as_numeric = split_names(numeric) or []
    both = sorted(set(as_categorical) & set(as_numeric))
    if both:
        raise DriftstreamError(f"column(s) both categorical and numeric: {', '.join(both)}")
    kinds = dict.fromkeys(as_categorical, FeatureKind.CATEGORICAL)
    return kinds | dict.fromkeys(as_numeric, FeatureKind.NUMERIC)


def read_reference(
    path: Path, prediction_column: str | None = None
) -> tuple[ReferenceProfile, pd.DataFrame | None]:
    """The reference profile, and the reference data when ``path`` is a data file.

    From a data file the profile keeps every value (exact KS); a saved
    profile comes with no data (see :func:`frame_from_profile`).
    ``prediction_column`` replaces the model-output column the profile was
    built with (a data file's is ``prediction`` otherwise).
    """
    if is_profile_file(path):
        profile = ReferenceProfile.load(path)
        if prediction_column is not None:
            profile = dataclasses.replace(profile, prediction_column=prediction_column)
        return profile, None
    frame = read_table(path)
    profile = ReferenceProfile.from_frame(
        frame,
        model=path.stem,
        model_version="adhoc",
        sample_cap=max(len(frame), 1),
        prediction_column=prediction_column or DEFAULT_PREDICTION_COLUMN,
    )
    return profile, frame


def checked_features(
    profile: ReferenceProfile, current: pd.DataFrame, wanted: list[str] | None
) -> list[str]:
    """The features to compare; every one must be in the reference and the data.

    The model output is never one of them (see :func:`compared_output`).
    """
    names = [name for name in wanted or profile.features if name != profile.prediction_column]
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


def compared_output(profile: ReferenceProfile, current: pd.DataFrame) -> str | None:
    """The model-output column, when both the reference and the current data have it."""
    column = profile.prediction_column
    return column if column in profile.features and column in current.columns else None


def run_comparison(
    reference: Path,
    current: Path,
    features: list[str] | None,
    policy: DriftPolicy,
    prediction_column: str | None = None,
) -> Comparison:
    """Profile (or load) the reference, window the current file, compare.

    The model output is compared apart from the features, as the worker
    compares it (:meth:`Comparator.compare` with ``output``).
    """
    profile, _ = read_reference(reference, prediction_column)
    frame = read_table(current)
    names = checked_features(profile, frame, features)
    window = WindowState.for_profile(profile, sample_cap=max(len(frame), 1))
    window.update_frame(frame)
    return Comparator(profile, policy).compare(window, names, compared_output(profile, frame))


#: Columns of :func:`comparison_table`: header, justification, and whether a
#: narrow terminal may leave it out (optional ones are added, in this order,
#: while the table still fits).
COMPARISON_COLUMNS: tuple[tuple[str, Literal["left", "right"], bool], ...] = (
    ("feature", "left", False),
    ("kind", "left", False),
    ("test", "right", False),
    ("effect", "right", False),
    ("p adj.", "right", False),
    ("psi", "right", False),
    ("psi thr.", "right", True),
    ("n cur", "right", True),
    ("nulls", "right", True),
    ("severity", "left", False),
)
#: Optional columns are left out before the feature column gets narrower
#: than this (longer names wrap).
FEATURE_WIDTH = 20


def comparison_table(comparison: Comparison, width: int | None = None) -> Table:
    """A rich table: one row per feature, its main statistics and severity.

    ``test`` shows KS D (numeric) or chi-square w (categorical) with its
    adjusted p-value; ``psi`` shows the PSI and its calibrated threshold.
    The model output, when compared, has the last row, in a section of its
    own: it is not one of the features counted in the title.

    Numbers have three significant digits and are never cut: the table
    fits ``width`` (the terminal's; ``None``: no limit) by leaving out the
    optional columns (``psi thr.``, ``n cur``, ``nulls``) that do not fit
    and by wrapping long feature names.
    """
    output = comparison.prediction
    rows = [table_row(feature, feature.name) for feature in comparison.features.values()]
    if output is not None:
        rows.append(table_row(output, f"{output.name} (output)"))
    shown = fitting_columns(rows, width)
    table = Table(
        title=(
            f"{comparison.model} {comparison.model_version}: {comparison.n_rows} rows, "
            f"{len(comparison.drifted_features)} of {len(comparison.features)} features drifted"
            + (f"; model output {output.name}: {output.severity.value}" if output else "")
        ),
        caption=f"alpha {comparison.policy.alpha}, correction {comparison.policy.correction}",
    )
    for index in shown:
        header, justify, _ = COMPARISON_COLUMNS[index]
        if header == "feature":
            table.add_column(header, overflow="fold")
        else:
            table.add_column(header, justify=justify, no_wrap=True)
    for number_of_row, cells in enumerate(rows):
        if output is not None and number_of_row == len(rows) - 1:
            table.add_section()
        table.add_row(*(cells[index] for index in shown))
    return table


def fitting_columns(rows: list[list[str]], width: int | None) -> list[int]:
    """Indexes of the columns of :data:`COMPARISON_COLUMNS` that fit in ``width``.

    Each column takes its widest cell (or header) plus 3 (padding and
    border), the feature column at most :data:`FEATURE_WIDTH` of it.

    Examples
    --------
    >>> row = ["age", "num", "ks", "0.1", "0.01", "0.2", "0.01", "100", "0.0%", "ok"]
    >>> len(fitting_columns([row], None)), len(fitting_columns([row], 60))
    (10, 7)
    """

    def needed(index: int) -> int:
        header = COMPARISON_COLUMNS[index][0]
        cells = [Text.from_markup(row[index]).cell_len for row in rows]
        widest = max([len(header), *cells])
        return 3 + (min(widest, FEATURE_WIDTH) if index == 0 else widest)

    if width is None:
        return list(range(len(COMPARISON_COLUMNS)))
    shown = [i for i, (_, _, optional) in enumerate(COMPARISON_COLUMNS) if not optional]
    used = 1 + sum(needed(i) for i in shown)
    for index, (_, _, optional) in enumerate(COMPARISON_COLUMNS):
        if optional and used + needed(index) <= width:
            used += needed(index)
            shown.append(index)
    return sorted(shown)


def table_row(feature: FeatureComparison, label: str) -> list[str]:
    """The cells of one row of :func:`comparison_table`, in :data:`COMPARISON_COLUMNS` order."""
    main = "ks" if feature.kind is FeatureKind.NUMERIC else "chi2"
    result = feature.tests.get(main)
    psi_result = feature.tests.get("psi")
    return [
        label,
        feature.kind.value[:3],
        main if result else "-",
        number(result.effect_size if result else None),
        number(feature.adjusted_p_values.get(main)),
        number(psi_result.statistic if psi_result else None),
        number(psi_result.threshold if psi_result else None),
        str(feature.n_current),
        f"{feature.quality['null_rate'].rate:.1%}" if feature.n_current else "-",
        f"[{SEVERITY_STYLE[feature.severity]}]{feature.severity.value}[/]",
    ]


def number(value: float | None) -> str:
    """Three significant digits (``0.216``, ``1.2e-05``); ``-`` for missing or non-finite.

    Examples
    --------
    >>> number(0.21634), number(1.2e-05), number(7.8249e-77), number(None), number(0.0)
    ('0.216', '1.2e-05', '7.82e-77', '-', '0')
    """
    finite = finite_or_none(value)
    return "-" if finite is None else f"{finite:.3g}"
