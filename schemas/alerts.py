"""What the alert engine publishes: one :class:`AlertEvent` per lifecycle transition.

The same document is the record on the alerts topic (the audit log), a line
of the JSONL drift log, the body of retraining webhooks (inside the
preset's envelope for Airflow and GitHub) and the source of Slack messages.
An :class:`AlertDeadLetter` records a delivery that failed after its last
attempt.

An alert is identified by its ``fingerprint`` (a digest of rule, model,
version and feature); ``sequence`` numbers its transitions, so
``idempotency_key`` (``fingerprint:sequence``) names one transition and a
receiver can drop repeats.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

import orjson
from pydantic import Field, computed_field

from schemas.outputs import Output, WindowBounds

AlertStatus = Literal["pending", "firing", "resolved", "cleared"]
AlertKind = Literal[
    "feature_drift",
    "dataset_drift",
    "performance",
    "data_quality",
    "no_events",
    "stalled_windows",
]
AlertSeverity = Literal["warning", "critical"]


def alert_fingerprint(rule: str, model: str, model_version: str | None, feature: str | None) -> str:
    """16 hex digits identifying one alert: SHA-256 of its rule, model, version and feature.

    Examples
    --------
    >>> alert_fingerprint("drift", "churn", "7", "plan")
    '8e66e561bc00273e'
    """
    identity = orjson.dumps([rule, model, model_version, feature])
    return hashlib.sha256(identity).hexdigest()[:16]


class TestScore(Output):
    """One drift test of one feature, as an alert rule judged it."""

    __test__ = False  # not a pytest test class, despite the name

    score: float | None = Field(
        description="The value compared with the thresholds (the test's effect size)."
    )
    warning: float | None = Field(description="Warning threshold of the score (null: none).")
    critical: float | None = Field(description="Critical threshold of the score (null: none).")
    p_value: float | None = Field(
        default=None, description="Multiplicity-adjusted p-value (null for tests without one)."
    )
    severity: Literal["ok", "warning", "critical"]


class FeatureBreach(Output):
    """A feature that breached a rule in the window that triggered the transition."""

    feature: str
    severity: AlertSeverity
    tests: dict[str, TestScore]


class AlertEvent(Output):
    """One transition of one alert: pending, firing, resolved or cleared (pending, never fired).

    ``window`` is the window that caused the transition (absent for
    ``no_events`` and ``stalled_windows`` rules, which are judged on the
    worker's clock). ``value`` and ``threshold`` are the rule's measured
    quantity and limit (share of drifted features, metric, defect rate or
    seconds without events/windows); ``features`` lists breaching features
    with their test scores.

    Examples
    --------
    >>> event = AlertEvent(
    ...     fingerprint="d1d4b1bd8e1b5d3a", sequence=2, status="firing",
    ...     previous_status="pending", rule="drift", kind="feature_drift",
    ...     severity="critical", model="churn", model_version="7", feature="plan",
    ...     summary="churn 7: plan drifted (psi 0.41 >= 0.25)",
    ...     at="2026-11-23T10:00:00Z",
    ... )
    >>> event.idempotency_key, event.key()
    ('d1d4b1bd8e1b5d3a:2', b'["d1d4b1bd8e1b5d3a",2]')
    """

    type: Literal["alert"] = "alert"
    fingerprint: str
    sequence: int = Field(description="Transition number of this fingerprint, from 1.")
    status: AlertStatus
    previous_status: Literal["inactive", "pending", "firing"]
    rule: str
    kind: AlertKind
    severity: AlertSeverity
    model: str
    model_version: str | None = None
    feature: str | None = None
    summary: str = Field(description="One line for humans.")
    at: datetime = Field(description="When the transition happened (worker clock, UTC).")
    incident_started_at: datetime | None = Field(
        default=None, description="When this incident first became pending or firing."
    )
    window: WindowBounds | None = None
    value: float | None = None
    threshold: float | None = None
    features: list[FeatureBreach] = Field(default_factory=list)
    links: dict[str, str] = Field(
        default_factory=dict, description="Dashboard, report and runbook links by name."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def idempotency_key(self) -> str:
        """``fingerprint:sequence``: the same for every delivery of this transition."""
        return f"{self.fingerprint}:{self.sequence}"

    def key(self) -> bytes:
        """Topic key of the audit-log record."""
        return orjson.dumps([self.fingerprint, self.sequence])

    def to_json(self) -> bytes:
        """The topic value, log line and webhook body."""
        return self.model_dump_json(exclude_none=True).encode()


class AlertDeadLetter(Output):
    """A delivery that failed after its last attempt; the alert is kept whole.

    Examples
    --------
    >>> AlertDeadLetter(sink="retrain", attempts=5, error="HTTP 503", alert={}).key()
    b'["retrain",""]'
    """

    type: Literal["alert_dead_letter"] = "alert_dead_letter"
    sink: str = Field(description="Name of the sink that gave up.")
    attempts: int
    error: str = Field(description="The last failure (never contains secrets).")
    alert: dict[str, object] = Field(description="The AlertEvent that was not delivered.")

    def key(self) -> bytes:
        """One record per sink and transition."""
        return orjson.dumps([self.sink, str(self.alert.get("idempotency_key", ""))])

    def to_json(self) -> bytes:
        """The topic value."""
        return self.model_dump_json().encode()
