"""Alert rules: what counts as a breach, and how many breaches make an alert.

Rules are configured under ``alerting.rules``; each has a ``kind``:

``feature_drift``
    A feature whose drift tests reach ``min_severity`` (one alert per
    feature). Thresholds default to the model's drift settings (themselves
    defaulting to the statistics core's) and can be overridden per test and
    per feature.
``dataset_drift``
    The share of a window's features that drifted reaches ``share``.
``performance``
    A performance metric falls below ``below`` (or rises above ``above``)
    once the window's label coverage reaches ``min_label_coverage``.
``data_quality``
    A feature's null, out-of-range or unseen-category rate exceeds
    ``above`` (one alert per feature).
``no_events``
    A model that sent events has sent none for ``after`` (worker clock).
``stalled_windows``
    A model version keeps receiving events but no window has closed for
    ``after`` (e.g. event time stopped advancing).

Window rules fire once ``fire_after`` of the last ``of_last`` evaluated
windows breached (``of_last`` defaults to ``fire_after``: consecutive
windows) and resolve after ``resolve_after`` clean windows in a row.
Windows smaller than ``min_window_events`` are not evaluated. ``cooldown``
is the shortest time between an alert resolving and the same alert firing
again; a breach during it keeps the alert pending.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, Self

from pydantic import Field, PositiveInt, model_validator

from monitor.config_types import Duration, Section

QUALITY_CHECKS = ("null_rate", "out_of_range", "unseen_categories")
HIGHER_IS_WORSE = frozenset({"mae", "rmse"})
PERFORMANCE_METRICS = ("accuracy", "f1_macro", "roc_auc", "mae", "rmse")


class RuleThresholds(Section):
    """Effect-size thresholds of one test for alerting (``null``: keep the model's)."""

    warning: float | None = None
    critical: float | None = None

    @model_validator(mode="after")
    def ordered(self) -> Self:
        """critical >= warning."""
        if self.warning is not None and self.critical is not None and self.critical < self.warning:
            raise ValueError(f"critical threshold {self.critical} is below warning {self.warning}")
        return self


class Rule(Section):
    """Settings every rule has."""

    name: str = Field(min_length=1, description="Unique rule name (in alerts and metrics).")
    models: tuple[str, ...] | None = Field(
        default=None, description="Models the rule applies to; null: every model."
    )
    cooldown: Duration = Field(
        default=timedelta(0),
        description="Shortest time from an alert resolving to the same alert firing again.",
    )

    def applies_to(self, model: str) -> bool:
        """Whether the rule watches ``model``."""
        return self.models is None or model in self.models


class WindowRule(Rule):
    """A rule judged on each closed window."""

    min_window_events: PositiveInt = Field(
        default=1, description="Windows with fewer events are not evaluated."
    )
    fire_after: PositiveInt = Field(
        default=1, description="Breaching windows (among the last of_last) before firing."
    )
    of_last: PositiveInt | None = Field(
        default=None, description="Window span of fire_after; null: fire_after (consecutive)."
    )
    resolve_after: PositiveInt = Field(
        default=1, description="Clean windows in a row that resolve a firing alert."
    )

    @model_validator(mode="after")
    def k_of_n(self) -> Self:
        """fire_after <= of_last."""
        if self.of_last is not None and self.of_last < self.fire_after:
            raise ValueError(f"of_last ({self.of_last}) must be >= fire_after ({self.fire_after})")
        return self

    @property
    def span(self) -> int:
        """``n`` of k-of-n."""
        return self.of_last or self.fire_after


class FeatureDriftRule(WindowRule):
    """A feature's drift tests reach ``min_severity``."""

    kind: Literal["feature_drift"]
    min_severity: Literal["warning", "critical"] = Field(
        default="warning", description="Lowest test severity that counts as a breach."
    )
    thresholds: dict[str, RuleThresholds] = Field(
        default_factory=dict, description="Per test: thresholds replacing the model's."
    )
    features: dict[str, dict[str, RuleThresholds]] = Field(
        default_factory=dict, description="Per feature, per test: thresholds for that feature."
    )


class DatasetDriftRule(WindowRule):
    """The share of drifted features reaches ``share``."""

    kind: Literal["dataset_drift"]
    share: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.5, description="Share of the window's evaluated features that drifted."
    )
    severity: Literal["warning", "critical"] = "critical"


class PerformanceRule(WindowRule):
    """A performance metric crosses a limit once enough labels arrived."""

    kind: Literal["performance"]
    metric: Literal["accuracy", "f1_macro", "roc_auc", "mae", "rmse"]
    below: float | None = Field(default=None, description="Breach when the metric is below.")
    above: float | None = Field(default=None, description="Breach when the metric is above.")
    min_label_coverage: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.5, description="Share of the window's predictions that must have labels."
    )
    severity: Literal["warning", "critical"] = "critical"

    @model_validator(mode="after")
    def one_limit(self) -> Self:
        """Exactly one of below/above."""
        if (self.below is None) == (self.above is None):
            raise ValueError("set exactly one of below or above")
        return self


class DataQualityRule(WindowRule):
    """A feature's defect rate exceeds ``above``."""

    kind: Literal["data_quality"]
    check: Literal["null_rate", "out_of_range", "unseen_categories"]
    above: Annotated[float, Field(ge=0, le=1)] = Field(
        description="Breach when the window's rate is above this."
    )
    features: tuple[str, ...] | None = Field(
        default=None, description="Features watched; null: every feature."
    )
    severity: Literal["warning", "critical"] = "warning"


class NoEventsRule(Rule):
    """A model sent no events for ``after``."""

    kind: Literal["no_events"]
    after: Duration = Field(description="Silence (worker clock) before firing.")
    severity: Literal["warning", "critical"] = "critical"


class StalledWindowsRule(Rule):
    """Events arrive but no window closed for ``after``."""

    kind: Literal["stalled_windows"]
    after: Duration = Field(description="Time without a closed window before firing.")
    severity: Literal["warning", "critical"] = "warning"


AnyRule = Annotated[
    FeatureDriftRule
    | DatasetDriftRule
    | PerformanceRule
    | DataQualityRule
    | NoEventsRule
    | StalledWindowsRule,
    Field(discriminator="kind"),
]


def default_rules() -> list[AnyRule]:
    """What runs when ``alerting.rules`` is not set.

    Feature drift fires after 2 of the last 3 windows and resolves after 2
    clean ones: a single window's false alarm (at most ``alpha`` per window,
    see the README) never pages anybody. Dataset drift fires on one window
    in which half the features drifted.

    Examples
    --------
    >>> [rule.name for rule in default_rules()]
    ['feature_drift', 'dataset_drift']
    """
    return [
        FeatureDriftRule(
            kind="feature_drift", name="feature_drift", fire_after=2, of_last=3, resolve_after=2
        ),
        DatasetDriftRule(kind="dataset_drift", name="dataset_drift", share=0.5, resolve_after=2),
    ]
