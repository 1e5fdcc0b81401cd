"""Drift verdicts: multiple-testing correction, effect sizes and severities."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from scipy import stats


class Severity(StrEnum):
    """Verdict for one feature (or one window) of one comparison."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    INSUFFICIENT_DATA = "insufficient_data"


class Correction(StrEnum):
    """How p-values are adjusted across the features of one window."""

    BONFERRONI = "bonferroni"
    BENJAMINI_HOCHBERG = "bh"
    NONE = "none"


def adjust_p_values(p_values: Sequence[float], correction: Correction) -> npt.NDArray[np.float64]:
    """Adjust a family of p-values; ``nan`` entries are left out of the family.

    Notes
    -----
    Bonferroni: ``min(1, p * m)`` with ``m`` the number of non-nan p-values;
    it bounds the chance of any false alarm in the window by ``alpha``.
    Benjamini-Hochberg: ``scipy.stats.false_discovery_control(p, method="bh")``;
    it bounds the expected share of false alarms among flagged features by
    ``alpha``, and, when no feature drifted, the chance of any false alarm
    too, while losing less power than Bonferroni when some did.

    Examples
    --------
    >>> adjust_p_values([0.01, 0.04, float("nan")], Correction.BONFERRONI)
    array([0.02, 0.08,  nan])
    >>> adjust_p_values([0.01, 0.04], Correction.BENJAMINI_HOCHBERG)
    array([0.02, 0.04])
    """
    values = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full_like(values, np.nan)
    present = ~np.isnan(values)
    family = values[present]
    if family.size == 0:
        return adjusted
    if correction is Correction.BONFERRONI:
        adjusted[present] = np.minimum(1.0, family * family.size)
    elif correction is Correction.BENJAMINI_HOCHBERG:
        adjusted[present] = stats.false_discovery_control(family, method="bh")
    else:
        adjusted[present] = family
    return adjusted


@dataclass(frozen=True, slots=True)
class EffectThresholds:
    """Minimum effect size for a warning and for a critical verdict.

    ``None`` means the test never raises that level (the test is then only
    reported). A verdict also needs the test's adjusted p-value below alpha.
    """

    warning: float | None = None
    critical: float | None = None

    def __post_init__(self) -> None:
        if self.warning is not None and self.critical is not None and self.critical < self.warning:
            raise ValueError(
                f"critical threshold {self.critical} is below warning threshold {self.warning}"
            )


#: Defaults, on each test's ``effect_size`` scale. For a normal mean shift
#: of ``d`` standard deviations, PSI ~ d**2 and KS D ~ 0.4 d. The warning
#: floors are the practical floor: the effect of a shift of about 1/16 sd
#: (KS 0.025, PSI 0.004), below which a difference is trivia however
#: significant. A window only reaches them once it is large enough to
#: resolve them at ``alpha``; below that the p-value is what binds, so the
#: smallest effect flagged follows the window size (the README's Verdicts
#: section; ``benchmarks/bench_detection.py`` measures it). Critical is
#: for big shifts (KS 0.2, PSI 0.25: about half a standard deviation).
#: Chi-square keeps w 0.3/0.5: its p-value takes the reference's shares
#: as exact, so with a window much larger than the reference a lower floor
#: would flag the reference's own sampling noise; categorical shifts are
#: caught by PSI, whose null includes that noise.
DEFAULT_THRESHOLDS: Mapping[str, EffectThresholds] = {
    "ks": EffectThresholds(warning=0.025, critical=0.2),
    "psi": EffectThresholds(warning=0.004, critical=0.25),
    "chi2": EffectThresholds(warning=0.3, critical=0.5),
    "js": EffectThresholds(),
    "linf": EffectThresholds(),
    "wasserstein": EffectThresholds(),
}


def verdict_alpha(alpha: float, thresholds: Iterable[EffectThresholds]) -> float:
    """Significance level of each test of one feature: ``alpha`` split among its verdict tests.

    A feature's verdict tests are those with a warning or a critical
    threshold; the others are only reported and take no share.

    Notes
    -----
    Each test's p-values form their own corrected family across features,
    which bounds by ``alpha`` the chance that *that test* flags a healthy
    window. A window is flagged when any test flags it, so with ``k``
    verdict tests per feature (KS and PSI on numeric features, chi-square
    and PSI on categorical ones by default) the union could reach
    ``k * alpha``; comparing each test with ``alpha / k`` (Bonferroni across
    the tests) bounds the whole window's false-alarm chance by ``alpha``.

    Examples
    --------
    >>> verdict_alpha(0.01, [EffectThresholds(0.1, 0.2), EffectThresholds(0.1), EffectThresholds()])
    0.005
    """
    k = sum(1 for t in thresholds if t.warning is not None or t.critical is not None)
    return alpha / max(k, 1)


NUMERIC_TESTS = ("ks", "psi", "wasserstein")
CATEGORICAL_TESTS = ("chi2", "psi", "js", "linf")


@dataclass(frozen=True)
class DriftPolicy:
    """Everything that turns test results into verdicts.

    Parameters
    ----------
    alpha
        Significance level after correction (default 0.01: with the default
        Benjamini-Hochberg correction, at most 1 window in 100 raises a false
        alarm when nothing drifted, however many features the model has).
    correction
        Multiple-testing correction across the features of one window,
        applied separately to each test's p-values.
    min_samples
        Windows with fewer non-null values in a feature get
        ``insufficient_data`` for it instead of a noisy verdict.
    thresholds
        Effect-size thresholds per test name (missing names: never raise).
    numeric_tests, categorical_tests
        Tests run on each kind of feature.
    epsilon
        Share used for empty bins (PSI) and unseen categories (chi-square).
    null_resamples
        Simulated windows per window size for the calibrated p-values and
        thresholds of PSI and Jensen-Shannon.
    seed
        Seed of those simulations.
    """

    alpha: float = 0.01
    correction: Correction = Correction.BENJAMINI_HOCHBERG
    min_samples: int = 100
    thresholds: Mapping[str, EffectThresholds] = field(
        default_factory=lambda: dict(DEFAULT_THRESHOLDS)
    )
    numeric_tests: tuple[str, ...] = NUMERIC_TESTS
    categorical_tests: tuple[str, ...] = CATEGORICAL_TESTS
    epsilon: float = 1e-4
    null_resamples: int = 20_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be at least 1, got {self.min_samples}")
        unknown = (set(self.numeric_tests) - set(NUMERIC_TESTS)) | (
            set(self.categorical_tests) - set(CATEGORICAL_TESTS)
        )
        if unknown:
            raise ValueError(f"unknown tests: {', '.join(sorted(unknown))}")

    def test_severity(
        self,
        test: str,
        adjusted_p: float | None,
        effect_size: float,
        level: float | None = None,
    ) -> Severity:
        """Severity raised by one test: significant and a large enough effect.

        ``level`` is the significance level the adjusted p-value must beat
        (default ``alpha``; the comparator passes :func:`verdict_alpha`).

        Examples
        --------
        >>> policy = DriftPolicy()
        >>> policy.test_severity("psi", 1e-4, 0.3).value
        'critical'
        >>> policy.test_severity("psi", 1e-4, 0.002).value  # significant but tiny
        'ok'
        >>> policy.test_severity("psi", 0.2, 0.3).value  # large but noise
        'ok'
        """
        if adjusted_p is None or not adjusted_p < (self.alpha if level is None else level):
            return Severity.OK
        limits = self.thresholds.get(test, EffectThresholds())
        if limits.critical is not None and effect_size >= limits.critical:
            return Severity.CRITICAL
        if limits.warning is not None and effect_size >= limits.warning:
            return Severity.WARNING
        return Severity.OK


_RANK = {Severity.OK: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


def worst(severities: Sequence[Severity]) -> Severity:
    """The most severe of drift severities (``ok`` for none).

    Examples
    --------
    >>> worst([Severity.OK, Severity.CRITICAL, Severity.WARNING]).value
    'critical'
    """
    ranked = [s for s in severities if s in _RANK]
    return max(ranked, key=_RANK.__getitem__, default=Severity.OK)
