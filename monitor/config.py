"""driftstream.yaml: the whole configuration of a worker, validated at start-up.

One YAML file; any field can be overridden from the environment with the
``DRIFTSTREAM_`` prefix and ``__`` between nested names, e.g.
``DRIFTSTREAM_BROKER__URL=kafka://kafka:9092`` or
``DRIFTSTREAM_MODELS__CHURN__WINDOW__SIZE_EVENTS=5000``. Environment values
win over the file; a window kind set from the environment (``size_events``
/ ``slide_events``, or ``duration`` / ``slide``) replaces the file's other
kind. Unknown fields are errors (a typo must not silently fall back to a
default), and errors name where the bad value came from: the file or the
environment variable.
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    Field,
    PositiveInt,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from alerting.config import AlertingConfig
from alerting.secrets import SecretSource
from monitor.config_types import Duration, Section
from monitor.errors import DriftstreamError
from monitor.reference import ReferenceProfile
from monitor.stats.decision import (
    CATEGORICAL_TESTS,
    DEFAULT_THRESHOLDS,
    NUMERIC_TESTS,
    Correction,
    DriftPolicy,
    EffectThresholds,
)
from schemas.decoding import MAX_MESSAGE_BYTES, EventLimits
from schemas.events import MAX_BATCH_ROWS, MAX_FEATURES
from schemas.validation import Location, validation_summary

ENV_PREFIX = "DRIFTSTREAM_"
ENV_NESTED_DELIMITER = "__"
#: The window fields of count windows and of event-time windows.
COUNT_WINDOW_FIELDS = frozenset({"size_events", "slide_events"})
TIME_WINDOW_FIELDS = frozenset({"duration", "slide"})


class SecurityProtocol(StrEnum):
    """Kafka ``security.protocol``."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class BrokerConfig(Section):
    """Where Kafka is and how to talk to it.

    An empty ``url`` means "start the embedded development broker".
    """

    url: str = ""
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None

    @model_validator(mode="after")
    def sasl_needs_credentials(self) -> Self:
        """SASL protocols need a mechanism, a user name and a password."""
        if self.security_protocol.value.startswith("SASL"):
            missing = [
                name
                for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f"security_protocol {self.security_protocol.value} needs " + ", ".join(missing)
                )
        return self

    @property
    def embedded(self) -> bool:
        """Whether to start the embedded broker instead of connecting."""
        return not self.url

    @property
    def bootstrap_servers(self) -> str:
        """``host:port[,host:port]`` for Kafka clients (the URL without ``kafka://``).

        Examples
        --------
        >>> BrokerConfig(url="kafka://a:9092;kafka://b:9092").bootstrap_servers
        'a:9092,b:9092'
        """
        servers = [part.strip() for part in self.url.replace(";", ",").split(",")]
        return ",".join(s.removeprefix("kafka://") for s in servers if s)

    def client_options(self) -> dict[str, Any]:
        """Security settings as kafka-python / aiokafka keyword arguments.

        Examples
        --------
        >>> BrokerConfig(url="kafka://k:9092").client_options()
        {'security_protocol': 'PLAINTEXT'}
        """
        options: dict[str, Any] = {"security_protocol": self.security_protocol.value}
        if self.sasl_mechanism is not None:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            if self.sasl_password is not None:
                options["sasl_plain_password"] = self.sasl_password.get_secret_value()
        if self.ssl_cafile is not None:
            options["ssl_cafile"] = str(self.ssl_cafile)
        return options

    def with_url(self, url: str) -> BrokerConfig:
        """A copy pointing at ``url`` (used when the embedded broker is started)."""
        return self.model_copy(update={"url": url})


class TopicsConfig(Section):
    """Topic names."""

    predictions: str = "driftstream.predictions"
    labels: str = "driftstream.labels"
    results: str = "driftstream.results"
    deadletter: str = "driftstream.deadletter"
    references: str = "driftstream.references"
    state: str = "driftstream.state"
    alerts: str = Field(
        default="driftstream.alerts", description="Every alert transition (the audit log)."
    )
    alert_deadletter: str = Field(
        default="driftstream.alerts.deadletter",
        description="Alert deliveries that failed after their last attempt.",
    )
    partitions: PositiveInt = Field(
        default=4, description="Partitions of the prediction and label topics when created."
    )


class LimitsConfig(Section):
    """Input limits (see :class:`schemas.decoding.EventLimits`)."""

    max_message_bytes: PositiveInt = MAX_MESSAGE_BYTES
    max_features: Annotated[int, Field(ge=1, le=MAX_FEATURES)] = MAX_FEATURES
    max_batch_rows: Annotated[int, Field(ge=1, le=MAX_BATCH_ROWS)] = MAX_BATCH_ROWS

    def event_limits(self) -> EventLimits:
        """The decoder's limits."""
        return EventLimits(self.max_message_bytes, self.max_features, self.max_batch_rows)


class WorkerConfig(Section):
    """How a worker runs: consumer group, batching, snapshots, web server."""

    group_id: str = Field(
        default="driftstream", description="Consumer group (and Faust app id) of the workers."
    )
    web_host: str = "127.0.0.1"
    web_port: Annotated[int, Field(ge=1, le=65535)] = 6066
    web_token: SecretSource | None = Field(
        default=None,
        description="Bearer token every web endpoint but /health and /ready requires "
        "({env: VAR} or {file: PATH}, read at start-up); unset: no authentication.",
    )
    batch_max_events: PositiveInt = Field(
        default=2000, description="Messages taken from the stream per processing step."
    )
    batch_max_delay: Duration = Field(
        default=timedelta(milliseconds=200),
        description="Longest wait to fill a processing step.",
    )
    snapshot_interval: Duration = Field(
        default=timedelta(seconds=2),
        description="Snapshot each partition's state at least this often while it changes.",
    )
    snapshot_max_events: PositiveInt = Field(
        default=50_000,
        description="Snapshot sooner once this many messages are not yet covered by one.",
    )
    max_pending_labels: PositiveInt = Field(
        default=100_000,
        description="Predictions of one model in one partition waiting for a label.",
    )
    session_timeout: Duration = Field(
        default=timedelta(seconds=10),
        description="Consumer-group session timeout (a dead worker's partitions move after it).",
    )


class MetricsConfig(Section):
    """The Prometheus endpoint (``/metrics``) every worker serves."""

    enabled: bool = True
    host: str = Field(default="127.0.0.1", description="Address to listen on (0.0.0.0: all).")
    port: Annotated[int, Field(ge=1, le=65535)] = 9464
    token: SecretSource | None = Field(
        default=None,
        description="Bearer token /metrics requires ({env: VAR} or {file: PATH}, read at "
        "start-up); unset: no authentication.",
    )
    max_features_per_model: PositiveInt = Field(
        default=100,
        description='Features per model with their own series; the rest share feature="other".',
    )
    version_ttl: Duration = Field(
        default=timedelta(hours=1),
        description="Series of a model version without events this long are removed.",
    )


class WindowConfig(Section):
    """How events are grouped into windows that are compared with the reference.

    Exactly one of ``size_events`` (count windows) or ``duration``
    (event-time windows) is set. Tumbling windows do not overlap; sliding
    windows of ``size`` advance by ``slide`` (``slide_events`` or
    ``slide``), which must divide the size. Event-time windows close when
    the watermark (latest event time seen minus ``allowed_lateness``)
    passes their end.
    """

    type: Literal["tumbling", "sliding"] = "tumbling"
    size_events: PositiveInt | None = None
    slide_events: PositiveInt | None = None
    duration: Duration | None = None
    slide: Duration | None = None
    allowed_lateness: Duration = timedelta(0)
    min_samples: PositiveInt = 100

    @model_validator(mode="after")
    def one_kind_of_window(self) -> Self:
        """Count or time, consistent slides."""
        if (self.size_events is None) == (self.duration is None):
            raise ValueError("set exactly one of size_events (count windows) or duration")
        if self.size_events is not None:
            if self.duration is None and (self.slide is not None):
                raise ValueError("count windows slide by slide_events, not slide")
            if self.type == "sliding":
                if self.slide_events is None:
                    raise ValueError("a sliding count window needs slide_events")
                if self.size_events % self.slide_events:
                    raise ValueError(
                        f"slide_events ({self.slide_events}) must divide "
                        f"size_events ({self.size_events})"
                    )
            elif self.slide_events is not None:
                raise ValueError("slide_events is only for sliding windows")
        if self.duration is not None:
            if self.duration <= timedelta(0):
                raise ValueError("duration must be positive")
            if self.slide_events is not None:
                raise ValueError("time windows slide by slide, not slide_events")
            if self.type == "sliding":
                if self.slide is None or self.slide <= timedelta(0):
                    raise ValueError("a sliding time window needs a positive slide")
                if self.duration % self.slide:
                    raise ValueError("slide must divide duration")
            elif self.slide is not None:
                raise ValueError("slide is only for sliding windows")
        return self


class ThresholdConfig(Section):
    """Effect-size thresholds of one test (``null`` = that level is never raised)."""

    warning: float | None = None
    critical: float | None = None

    @model_validator(mode="after")
    def ordered(self) -> Self:
        """critical >= warning."""
        EffectThresholds(self.warning, self.critical)
        return self


def default_thresholds() -> dict[str, ThresholdConfig]:
    """The statistics core's defaults, as configuration."""
    return {
        name: ThresholdConfig(warning=limits.warning, critical=limits.critical)
        for name, limits in DEFAULT_THRESHOLDS.items()
    }


class DriftConfig(Section):
    """Tests, significance and thresholds (see the README's Verdicts section)."""

    alpha: Annotated[float, Field(gt=0, lt=1)] = DriftPolicy.alpha
    correction: Correction = DriftPolicy.correction
    numeric_tests: tuple[str, ...] = NUMERIC_TESTS
    categorical_tests: tuple[str, ...] = CATEGORICAL_TESTS
    thresholds: dict[str, ThresholdConfig] = Field(default_factory=default_thresholds)
    null_resamples: Annotated[int, Field(ge=100)] = DriftPolicy.null_resamples

    @field_validator("numeric_tests", "categorical_tests", "thresholds")
    @classmethod
    def known_tests(cls, tests: Any, info: ValidationInfo) -> Any:
        """Only tests driftstream has, for the right kind of feature."""
        known = {
            "numeric_tests": NUMERIC_TESTS,
            "categorical_tests": CATEGORICAL_TESTS,
            "thresholds": tuple(DEFAULT_THRESHOLDS),
        }[str(info.field_name)]
        unknown = sorted(set(tests) - set(known))
        if unknown:
            raise ValueError(f"unknown test(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return tests

    def policy(self, min_samples: int) -> DriftPolicy:
        """The statistics core's policy for these settings."""
        thresholds = {
            name: EffectThresholds(limits.warning, limits.critical)
            for name, limits in (default_thresholds() | self.thresholds).items()
        }
        return DriftPolicy(
            alpha=self.alpha,
            correction=self.correction,
            min_samples=min_samples,
            thresholds=thresholds,
            numeric_tests=tuple(self.numeric_tests),
            categorical_tests=tuple(self.categorical_tests),
            null_resamples=self.null_resamples,
        )


class ModelDefaults(Section):
    """Settings every model starts from."""

    window: WindowConfig = WindowConfig(size_events=1000)
    drift: DriftConfig = DriftConfig()
    label_join_ttl: Duration = timedelta(hours=1)
    prediction_column: str = Field(
        default="prediction",
        description="The reference column holding the model's output (prediction drift).",
    )
    bootstrap_reference_events: Annotated[int, Field(ge=0)] = Field(
        default=0,
        description=(
            "Events of a model version without a reference that build one; "
            "0 sends them to the dead-letter topic with reason no_reference."
        ),
    )


class ModelConfig(Section):
    """One monitored model. Unset fields come from ``defaults``."""

    reference: Path | None = Field(
        default=None, description="A reference profile file; else the references topic."
    )
    task: Literal["classification", "regression"] | None = None
    features: list[str] | None = None
    window: WindowConfig | None = None
    drift: DriftConfig | None = None
    label_join_ttl: Duration | None = None
    prediction_column: str | None = None
    bootstrap_reference_events: Annotated[int, Field(ge=0)] | None = None


class TailTopic(StrEnum):
    """The output topics ``driftstream tail`` reads, named as in ``topics``."""

    RESULTS = "results"
    DEADLETTER = "deadletter"
    REFERENCES = "references"
    ALERTS = "alerts"
    ALERT_DEADLETTER = "alert_deadletter"


class DriftstreamConfig(BaseSettings):
    """The whole configuration (``driftstream.yaml`` plus ``DRIFTSTREAM_*``)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    broker: BrokerConfig = BrokerConfig()
    topics: TopicsConfig = TopicsConfig()
    limits: LimitsConfig = LimitsConfig()
    worker: WorkerConfig = WorkerConfig()
    metrics: MetricsConfig = MetricsConfig()
    alerting: AlertingConfig = AlertingConfig()
    defaults: ModelDefaults = ModelDefaults()
    models: dict[str, ModelConfig] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment first, then the file's values (passed at init)."""
        return (env_settings, FileSettingsSource(settings_cls, init_settings, env_settings))

    def window_for(self, model: str) -> WindowConfig:
        """The model's window settings (its own or the defaults)."""
        return self._model(model).window or self.defaults.window

    def policy_for(self, model: str) -> DriftPolicy:
        """The model's drift policy, with its window's ``min_samples``."""
        drift = self._model(model).drift or self.defaults.drift
        return drift.policy(self.window_for(model).min_samples)

    def check_secrets(self) -> None:
        """Read every configured secret now, so a missing one fails at start-up.

        Raises
        ------
        DriftstreamError
            Naming the field (``metrics.token: ...``, ``alerting.slack.0.token:
            ...``) and where the secret was looked for, never its value.
        """
        endpoint_token("worker.web_token", self.worker.web_token)
        endpoint_token("metrics.token", self.metrics.token)
        try:
            self.alerting.check_secrets()
        except ValueError as error:
            raise DriftstreamError(str(error)) from None

    def load_references(self) -> dict[str, ReferenceProfile]:
        """Read every ``models.NAME.reference`` file, by model.

        Relative paths are relative to the working directory.

        Raises
        ------
        DriftstreamError
            Naming the field, the file and the problem (see :func:`model_profile`).

        Examples
        --------
        >>> DriftstreamConfig(models={"churn": {"reference": "nope.dsprofile"}}).load_references()
        Traceback (most recent call last):
        ...
        monitor.errors.DriftstreamError: models.churn.reference: nope.dsprofile: no such file
        """
        profiles: dict[str, ReferenceProfile] = {}
        for model, settings in self.models.items():
            path = settings.reference
            if path is None:
                continue
            try:
                profiles[model] = model_profile(path, model)
            except DriftstreamError as error:
                raise DriftstreamError(f"models.{model}.reference: {error}") from None
        return profiles

    def _model(self, model: str) -> ModelConfig:
        return self.models.get(model) or ModelConfig()


def endpoint_token(field: str, source: SecretSource | None) -> str | None:
    """The bearer token an endpoint requires (``None``: none configured), read now.

    Raises
    ------
    DriftstreamError
        ``"{field}: ..."``, naming where the token was looked for, never its value.

    Examples
    --------
    >>> endpoint_token("metrics.token", SecretSource(env="DOC_UNSET"))
    Traceback (most recent call last):
    ...
    monitor.errors.DriftstreamError: metrics.token: environment variable DOC_UNSET is unset or empty
    """
    if source is None:
        return None
    try:
        return source.read().get_secret_value()
    except ValueError as error:
        raise DriftstreamError(f"{field}: {error}") from None


def model_profile(path: Path, model: str) -> ReferenceProfile:
    """The reference profile at ``path``, which must be one of ``model``.

    Raises
    ------
    DriftstreamError
        Naming the file and why it is not a usable profile: missing,
        unreadable, not a profile, or a profile of another model.

    Examples
    --------
    >>> model_profile(Path("nope.dsprofile"), "churn")
    Traceback (most recent call last):
    ...
    monitor.errors.DriftstreamError: nope.dsprofile: no such file
    """
    try:
        profile = ReferenceProfile.load(path)
    except OSError as error:
        raise DriftstreamError(f"{path}: {error.strerror}") from None
    if profile.model != model:
        raise DriftstreamError(f"{path} is a profile of model {profile.model!r}, not {model!r}")
    return profile


class FileSettingsSource(PydanticBaseSettingsSource):
    """The file's values (the init arguments) minus the window kinds the environment replaces.

    pydantic-settings merges the environment into the file key by key, so
    ``DRIFTSTREAM_MODELS__CHURN__WINDOW__SIZE_EVENTS`` over a file's
    ``duration`` would give a window with both kinds, which is invalid.
    """

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        file: PydanticBaseSettingsSource,
        environment: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self.file = file
        self.environment = environment

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Not used: :meth:`__call__` returns the whole document at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return without_replaced_windows(self.file(), self.environment())


def without_replaced_windows(file: dict[str, Any], environment: dict[str, Any]) -> dict[str, Any]:
    """The file's settings without the window kind whose other kind the environment sets.

    Setting ``size_events`` or ``slide_events`` drops the file's ``duration``
    and ``slide`` of that window, and the other way round.

    Examples
    --------
    >>> file = {"models": {"churn": {"window": {"duration": "5m", "min_samples": 200}}}}
    >>> without_replaced_windows(file, {"models": {"churn": {"window": {"size_events": "50"}}}})
    {'models': {'churn': {'window': {'min_samples': 200}}}}
    """
    result = copy.deepcopy(file)
    models = environment.get("models")
    owners: list[Location] = [("defaults",)]
    owners += [("models", name) for name in models] if isinstance(models, dict) else []
    for owner in owners:
        window = _find(result, (*owner, "window"))
        replacing = _find(environment, (*owner, "window"))
        if not (isinstance(window, dict) and isinstance(replacing, dict)):
            continue
        for kind, other in (
            (COUNT_WINDOW_FIELDS, TIME_WINDOW_FIELDS),
            (TIME_WINDOW_FIELDS, COUNT_WINDOW_FIELDS),
        ):
            if kind & replacing.keys():
                for name in other:
                    window.pop(name, None)
    return result


#: What :func:`_find` returns for a location that is not there.
_MISSING = object()


def _find(document: Any, location: Location) -> Any:
    """The value at ``location`` in nested mappings and lists, or ``_MISSING``."""
    for part in location:
        if isinstance(document, list):
            document = dict(enumerate(document))
        if not (isinstance(document, dict) and part in document):
            return _MISSING
        document = document[part]
    return document


def environment_variables() -> dict[tuple[str, ...], str]:
    """The ``DRIFTSTREAM_*`` variables that configure a section, by the location they set.

    Names are matched without regard to case, like pydantic-settings does;
    a variable whose first part is no section (such as a secret named
    ``DRIFTSTREAM_SLACK_TOKEN``) is not configuration.
    """
    found: dict[tuple[str, ...], str] = {}
    for name in os.environ:
        if name.upper().startswith(ENV_PREFIX):
            location = tuple(name[len(ENV_PREFIX) :].lower().split(ENV_NESTED_DELIMITER))
            if location[0] in DriftstreamConfig.model_fields:
                found[location] = name
    return found


def _variables(names: list[str]) -> str:
    """``environment variable A`` or ``environment variables A, B``."""
    return f"environment variable{'s' if len(names) > 1 else ''} {', '.join(names)}"


@dataclass(frozen=True)
class Origins:
    """Where each validated value came from, so that an error names it.

    Parameters
    ----------
    file
        The file's name (``environment`` when there is none).
    file_values
        The file's settings as merged (see :func:`without_replaced_windows`).
    environment
        The settings pydantic-settings read from the environment.
    variables
        The environment variables, by the location each sets.
    """

    file: str
    file_values: dict[str, Any]
    environment: dict[str, Any]
    variables: dict[tuple[str, ...], str]

    def __call__(self, location: Location) -> str:
        """The file, the variable(s), or both, that gave the value at ``location``.

        The deepest part of ``location`` that either gave decides: the
        environment's value there replaced the file's, unless both are
        mappings (then they were merged, and both are named).

        Examples
        --------
        >>> origins = Origins(
        ...     "min.yaml", {"worker": {"web_port": 1}}, {"worker": {"web_prot": "1"}},
        ...     {("worker", "web_prot"): "DRIFTSTREAM_WORKER__WEB_PROT"},
        ... )
        >>> origins(("worker", "web_prot")), origins(("worker", "web_port"))
        ('environment variable DRIFTSTREAM_WORKER__WEB_PROT', 'min.yaml')
        >>> origins(("worker",))
        'min.yaml and environment variable DRIFTSTREAM_WORKER__WEB_PROT'
        """
        for depth in range(len(location), 0, -1):
            where = location[:depth]
            in_file = _find(self.file_values, where)
            in_environment = _find(self.environment, where)
            if in_environment is _MISSING:
                if in_file is _MISSING:
                    continue
                return self.file
            text = tuple(str(part) for part in where)
            names = [
                name
                for path, name in sorted(self.variables.items())
                if path[: len(text)] == text[: len(path)]
            ]
            if isinstance(in_file, dict) and isinstance(in_environment, dict):
                return f"{self.file} and {_variables(names)}"
            return _variables(names)
        return self.file


def load_config(path: str | Path | None = None) -> DriftstreamConfig:
    """Read and validate the configuration, or fail with the field and why.

    Parameters
    ----------
    path
        The YAML file; ``None`` for defaults and environment only.

    Raises
    ------
    DriftstreamError
        One line naming, for each invalid field, where its value came from
        (the file or the environment variable), the field and the reason.
    """
    document: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise DriftstreamError(f"{file}: no such file")
        try:
            loaded = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as error:
            where = getattr(error, "problem_mark", None)
            line = f" (line {where.line + 1})" if where is not None else ""
            raise DriftstreamError(f"{file}: not valid YAML{line}") from None
        if not isinstance(loaded, dict):
            raise DriftstreamError(f"{file}: the top level must be a mapping of settings")
        document = loaded
    try:
        return DriftstreamConfig(**document)
    except SettingsError as error:
        raise DriftstreamError(unparsable_environment(error)) from None
    except ValidationError as error:
        environment = EnvSettingsSource(DriftstreamConfig)()
        origins = Origins(
            "environment" if path is None else str(path),
            without_replaced_windows(document, environment),
            environment,
            environment_variables(),
        )
        summary = validation_summary(error, limit=10, origin=origins)
        raise DriftstreamError(summary) from None


def unparsable_environment(error: SettingsError) -> str:
    """Name the variable(s) whose list or mapping value is not JSON.

    pydantic-settings names only the section; of its variables, those
    whose value does not parse as JSON are the ones it could not read.
    """
    match = re.search(r'field "(\w+)"', str(error))
    section = match.group(1) if match else None
    names = [
        name
        for location, name in sorted(environment_variables().items())
        if location[0] == section and not _is_json(os.environ[name])
    ]
    if not names:
        return str(error)
    return (
        f"{_variables(names)}: not valid JSON (lists and mappings are JSON in the environment, "
        """e.g. '["ks", "psi"]')"""
    )


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
