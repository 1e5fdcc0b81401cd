"""driftstream.yaml: the whole configuration of a worker, validated at start-up.

One YAML file; any field can be overridden from the environment with the
``DRIFTSTREAM_`` prefix and ``__`` between nested names, e.g.
``DRIFTSTREAM_BROKER__URL=kafka://kafka:9092`` or
``DRIFTSTREAM_MODELS__CHURN__WINDOW__SIZE_EVENTS=5000``. Environment values
win over the file. Unknown fields are errors (a typo must not silently fall
back to a default).
"""

from __future__ import annotations

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
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from alerting.config import AlertingConfig
from monitor.config_types import Duration, Section
from monitor.errors import DriftstreamError
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
from schemas.validation import validation_summary


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


class DriftstreamConfig(BaseSettings):
    """The whole configuration (``driftstream.yaml`` plus ``DRIFTSTREAM_*``)."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTSTREAM_", env_nested_delimiter="__", extra="forbid", frozen=True
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
        return (env_settings, init_settings)

    def window_for(self, model: str) -> WindowConfig:
        """The model's window settings (its own or the defaults)."""
        return self._model(model).window or self.defaults.window

    def policy_for(self, model: str) -> DriftPolicy:
        """The model's drift policy, with its window's ``min_samples``."""
        drift = self._model(model).drift or self.defaults.drift
        return drift.policy(self.window_for(model).min_samples)

    def _model(self, model: str) -> ModelConfig:
        return self.models.get(model) or ModelConfig()


def load_config(path: str | Path | None = None) -> DriftstreamConfig:
    """Read and validate the configuration, or fail with the field and why.

    Parameters
    ----------
    path
        The YAML file; ``None`` for defaults and environment only.

    Raises
    ------
    DriftstreamError
        One line naming the file, each invalid field and the reason.
    """
    document: dict[str, Any] = {}
    source = "environment" if path is None else str(path)
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
    except ValidationError as error:
        raise DriftstreamError(f"{source}: {validation_summary(error, limit=10)}") from None
