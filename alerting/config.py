"""The ``alerting`` configuration section: rules, links, sinks, drift log, reports."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Self

from pydantic import Field, field_validator, model_validator

from alerting.book import check_link_template
from alerting.rules import AnyRule, default_rules
from alerting.secrets import SecretSource
from alerting.sink_config import SlackSinkConfig, WebhookSinkConfig
from monitor.config_types import Duration, Section

#: Sink names the worker uses itself.
BUILT_IN_SINKS = ("audit", "drift_log")


class AlertingConfig(Section):
    """Alert rules and where their transitions go.

    Every transition is published to the alerts topic (``topics.alerts``);
    ``drift_log`` also appends it to a JSONL file; ``slack`` and
    ``webhooks`` list the external sinks.
    """

    rules: list[AnyRule] = Field(
        default_factory=default_rules,
        description="Alert rules; default: feature drift (2 of 3 windows) and dataset drift.",
    )
    links: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Link templates by name (Grafana dashboard, runbook) added to every alert; "
            "placeholders {model} {model_version} {feature} {rule} {fingerprint} {window_id}."
        ),
    )
    slack: list[SlackSinkConfig] = Field(default_factory=list, description="Slack sinks.")
    webhooks: list[WebhookSinkConfig] = Field(
        default_factory=list, description="Retraining webhooks (generic, Airflow, GitHub)."
    )
    drift_log: Path | None = Field(
        default=None, description="Append every transition to this JSONL file."
    )
    reports_dir: Path | None = Field(
        default=None,
        description="Write an Evidently HTML report (reference vs window) for each firing "
        "drift alert into this directory and link it as 'report'.",
    )
    report_url: str = Field(
        default="file://{path}",
        description="How the report link is built: {path} is the file's absolute path, "
        "{name} its file name (e.g. https://reports.example.com/{name}).",
    )
    version_ttl: Duration = Field(
        default=timedelta(hours=24),
        description="A model version without events this long is forgotten; its alerts resolve.",
    )

    def check_secrets(self) -> None:
        """Read every sink secret once, so a missing one fails at start-up.

        Raises
        ------
        ValueError
            Naming the field (``alerting.slack.0.webhook_url: ...``) and
            where the secret was looked for, never its value.
        """
        for section, sinks in (("slack", self.slack), ("webhooks", self.webhooks)):
            for index, sink in enumerate(sinks):
                for field, value in sink:
                    if isinstance(value, SecretSource):
                        try:
                            value.read()
                        except ValueError as error:
                            raise ValueError(
                                f"alerting.{section}.{index}.{field}: {error}"
                            ) from None

    @field_validator("links")
    @classmethod
    def known_placeholders(cls, links: dict[str, str]) -> dict[str, str]:
        """Templates only use placeholders the engine fills."""
        for name, template in links.items():
            try:
                check_link_template(template)
            except ValueError as error:
                raise ValueError(f"link {name!r}: {error}") from None
        return links

    @field_validator("report_url")
    @classmethod
    def report_placeholders(cls, template: str) -> str:
        """Only {path} and {name}."""
        try:
            template.format(path="/p", name="n")
        except (KeyError, IndexError, ValueError) as error:
            raise ValueError(f"use only the placeholders {{path}} and {{name}} ({error})") from None
        return template

    @model_validator(mode="after")
    def unique_names(self) -> Self:
        """Rule names and sink names are unique; sink names avoid built-in ones."""
        rules = [rule.name for rule in self.rules]
        repeated = sorted({name for name in rules if rules.count(name) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique: {', '.join(repeated)}")
        sinks = [sink.name for sink in self.slack] + [sink.name for sink in self.webhooks]
        clashes = sorted({n for n in sinks if sinks.count(n) > 1 or n in BUILT_IN_SINKS})
        if clashes:
            raise ValueError(
                f"sink names must be unique and not {' or '.join(BUILT_IN_SINKS)}: "
                + ", ".join(clashes)
            )
        return self
