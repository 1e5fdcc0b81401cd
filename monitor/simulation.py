"""A simulated serving service: seeded prediction, label and batch documents.

``driftstream demo`` and the streaming tests need traffic that looks like a
real serving service's: several models, realistic features, predictions
that follow from the features, ground truth that arrives late (or never),
and drift that starts at a known point and touches known features. This
module makes that traffic, purely: no clock, no I/O, no Kafka. Timestamps are
event time passed in by the caller, and everything is a function of the
seed and the sequence of calls.

Three demo models are defined (:data:`DEMO_MODELS`):

``churn`` (version ``"3"``, classification, ``{"yes": p, "no": 1 - p}``)
    ``tenure_months`` (integer), ``monthly_spend``, ``data_usage_gb``,
    ``support_calls`` (a small count, so profiled as categorical), ``plan``,
    ``region``, ``autopay`` (boolean). Drift: ``tenure_months`` -1.5 sd,
    ``monthly_spend`` +1.5 sd, and a new ``plan`` ``"promo"`` takes 60 %.
``fraud`` (version ``"7"``, classification, ``{"fraud": p, "legit": 1 - p}``)
    ``amount``, ``account_age_days`` (integer), ``distance_from_home_km``,
    ``transactions_last_hour`` (count), ``merchant_category``,
    ``card_present`` (boolean). Drift: ``amount`` and
    ``distance_from_home_km`` +1.5 sd, ``merchant_category`` ``"online"``
    rises from 10 % to 50 %.
``eta`` (version ``"2"``, regression, minutes)
    ``distance_km``, ``traffic_index``, ``prep_time_min``,
    ``courier_rating``, ``weather``, ``vehicle``. Drift: ``distance_km`` and
    ``traffic_index`` +1.5 sd, ``vehicle`` ``"car"`` rises from 25 % to 70 %.

An sd is the standard deviation of a feature's latent normal: of the value
itself for :class:`NumericFeature` with ``log=False``, of its logarithm for
log-normal ones (a +1.5 sd shift multiplies those by ``exp(1.5 * std)``).

The prediction column
---------------------
Profiles built from :func:`reference_frame` have a feature named
``"prediction"``: the predicted class (the most probable one, see
:func:`predicted_value`) for classifiers, the number for regressors;
:func:`window_row` gives the same view of a prediction event. Every drift
spec above moves the prediction too (the shifted features drive each
model), so a comparison of a drifted window flags
``drifted_features(model) | {"prediction"}``;
:meth:`ServingSimulator.drifted_features` lists only the input features the
simulator changes directly, and adds ``"prediction"`` when asked with
``include_prediction=True``.

Determinism
-----------
Every feature of every model draws from its own generator, seeded by
``(seed, model name, feature position)``, and each event consumes the same
draws whatever the call it comes from. So the same seed gives the same
events, and ``predictions(10, t, s)`` followed by ``predictions(10, t + 10 *
s, s)`` gives exactly the events of ``predictions(20, t, s)``.
"""

from __future__ import annotations

import heapq
import math
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from monitor.values import FeatureKind
from schemas.events import MAX_BATCH_ROWS

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
#: Feature columns as the scoring functions see them: floats or ints for
#: numeric and count features, category positions for categorical ones,
#: booleans for flags.
Columns = Mapping[str, npt.NDArray[Any]]
Task = Literal["classification", "regression"]

#: Name of the profiled prediction column (see the module documentation).
PREDICTION_COLUMN = "prediction"
#: Decimal places of the class probabilities in prediction documents.
PROBABILITY_DECIMALS = 6
DEFAULT_LABEL_DELAY_MS = 2_000
DEFAULT_UNLABELLED_SHARE = 0.1
DEFAULT_MAX_PENDING_LABELS = 100_000
DEFAULT_REFERENCE_ROWS = 20_000

# Purposes mixed into the seeds, so live traffic and reference frames of the
# same seed are independent draws.
_LIVE, _REFERENCE = 0, 1


@dataclass(frozen=True)
class NumericFeature:
    """A real-valued feature: ``mean + std * z`` (or ``exp`` of it), clipped, rounded.

    Parameters
    ----------
    name
        Feature name.
    mean, std
        Mean and standard deviation of the latent normal.
    log
        Log-normal: the value is ``exp(mean + std * z)``.
    low, high
        Values are clipped to ``[low, high]``.
    decimals
        Decimal places kept.
    integer
        Round to whole numbers and emit ``int`` values.

    Examples
    --------
    >>> NumericFeature("x", mean=10.0, std=2.0).values(np.array([0.0, 1.0])).tolist()
    [10.0, 12.0]
    >>> NumericFeature("n", 0.0, 1.0, low=0.0, integer=True).values(np.array([-1.0, 2.4])).tolist()
    [0, 2]
    """

    name: str
    mean: float
    std: float
    log: bool = False
    low: float = -math.inf
    high: float = math.inf
    decimals: int = 2
    integer: bool = False

    def values(self, z: FloatArray) -> FloatArray | IntArray:
        """The feature's values for latent standard normal draws ``z``."""
        latent = self.mean + self.std * z
        values: FloatArray = np.clip(np.exp(latent) if self.log else latent, self.low, self.high)
        if self.integer:
            return np.rint(values).astype(np.int64)
        rounded: FloatArray = np.round(values, self.decimals)
        return rounded


@dataclass(frozen=True)
class CountFeature:
    """A Poisson count capped at ``maximum``, emitted as ``int``.

    With few distinct values, :func:`monitor.values.infer_kind` profiles it
    as categorical.

    Examples
    --------
    >>> feature = CountFeature("calls", rate=1.0, maximum=3)
    >>> int(feature.values(np.random.default_rng(0), 1000).max())
    3
    """

    name: str
    rate: float
    maximum: int

    def values(self, rng: np.random.Generator, n: int) -> IntArray:
        """``n`` counts."""
        return np.minimum(rng.poisson(self.rate, n), self.maximum).astype(np.int64)


@dataclass(frozen=True)
class CategoricalFeature:
    """A string category with fixed shares (a zero share: only ever seen under drift).

    Examples
    --------
    >>> feature = CategoricalFeature("plan", ("a", "b", "c"), (0.5, 0.5, 0.0))
    >>> feature.codes(np.array([0.1, 0.6, 0.99])).tolist()
    [0, 1, 1]
    >>> feature.codes(np.array([0.1, 0.99]), {"c": 1.0}).tolist()
    [2, 2]
    """

    name: str
    categories: tuple[str, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.categories) != len(self.weights) or not self.categories:
            raise ValueError(f"{self.name}: one weight per category, at least one category")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"{self.name}: categories must be distinct")
        _cumulative(self.weights, self.name)

    def codes(self, uniform: FloatArray, weights: Mapping[str, float] | None = None) -> IntArray:
        """Category positions for uniform draws, under the base or the given shares."""
        if weights is None:
            shares = self.weights
        else:
            shares = tuple(float(weights.get(c, 0.0)) for c in self.categories)
        bounds = _cumulative(shares, self.name)
        return np.searchsorted(bounds, uniform, side="right").astype(np.int64)


@dataclass(frozen=True)
class FlagFeature:
    """A boolean feature, ``True`` with ``probability``.

    Examples
    --------
    >>> FlagFeature("autopay", 0.5).values(np.array([0.2, 0.7])).tolist()
    [True, False]
    """

    name: str
    probability: float

    def values(self, uniform: FloatArray) -> BoolArray:
        """Flags for uniform draws."""
        return uniform < self.probability


FeatureSpec = NumericFeature | CountFeature | CategoricalFeature | FlagFeature


@dataclass(frozen=True)
class DriftSpec:
    """How a model's traffic changes once drift starts.

    Parameters
    ----------
    shifts
        Numeric feature -> shift of its latent normal, in standard deviations.
    weights
        Categorical feature -> new category shares (missing categories: 0;
        categories must be the feature's own, possibly ones with base share 0).

    Examples
    --------
    >>> spec = DriftSpec(shifts={"x": 1.5}, weights={"plan": {"b": 1.0}})
    >>> sorted(spec.features)
    ['plan', 'x']
    """

    shifts: Mapping[str, float] = field(default_factory=dict)
    weights: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @property
    def features(self) -> frozenset[str]:
        """The features this drift changes."""
        return frozenset(self.shifts) | frozenset(self.weights)


@dataclass(frozen=True)
class SimulatedModel:
    """One simulated model: its features, scoring function, labels and default drift.

    Parameters
    ----------
    name, version
        Model name and version in the events.
    task
        ``"classification"`` (binary) or ``"regression"``.
    features
        Feature specs, in event order; drawn independently of each other.
    score
        Columns -> the logit of ``classes[0]`` (classification) or the
        prediction (regression).
    drift
        The drift applied by default once drift starts.
    classes
        Classification only: the two class names, the scored one first.
    label_noise
        Regression only: standard deviation of ``label - prediction``.
    label_floor
        Regression only: labels are at least this.
    decimals
        Regression only: decimal places of predictions and labels.

    Examples
    --------
    >>> CHURN.name, CHURN.version, CHURN.task, CHURN.classes
    ('churn', '3', 'classification', ('yes', 'no'))
    >>> CHURN.kinds["support_calls"].value, CHURN.kinds["prediction"].value
    ('categorical', 'categorical')
    """

    name: str
    version: str
    task: Task
    features: tuple[FeatureSpec, ...]
    score: Callable[[Columns], FloatArray]
    drift: DriftSpec
    classes: tuple[str, ...] = ()
    label_noise: float = 0.0
    label_floor: float = -math.inf
    decimals: int = 2

    def __post_init__(self) -> None:
        names = self.feature_names
        if len(set(names)) != len(names) or PREDICTION_COLUMN in names or "label" in names:
            raise ValueError(f"{self.name}: feature names must be distinct, not prediction/label")
        if self.task == "classification" and len(self.classes) != 2:
            raise ValueError(f"{self.name}: a classifier needs exactly two classes")
        self.check_drift(self.drift)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names, in event order."""
        return tuple(f.name for f in self.features)

    @property
    def kinds(self) -> dict[str, FeatureKind]:
        """How each profiled column (features, then ``prediction``) is compared.

        The same kinds :func:`monitor.values.infer_kind` gives on a
        :func:`reference_frame` of a few hundred rows or more; pass them as
        ``kinds=`` to :meth:`ReferenceProfile.from_frame` to not depend on that.
        """
        numeric, categorical = FeatureKind.NUMERIC, FeatureKind.CATEGORICAL
        kinds = {
            f.name: numeric if isinstance(f, NumericFeature) else categorical for f in self.features
        }
        kinds[PREDICTION_COLUMN] = (
            FeatureKind.CATEGORICAL if self.task == "classification" else FeatureKind.NUMERIC
        )
        return kinds

    def check_drift(self, drift: DriftSpec) -> None:
        """Raise ``ValueError`` unless ``drift`` fits this model's features."""
        specs = {f.name: f for f in self.features}
        for name in drift.shifts:
            if not isinstance(specs.get(name), NumericFeature):
                raise ValueError(f"{self.name}: cannot shift {name!r}, not a numeric feature")
        for name, weights in drift.weights.items():
            spec = specs.get(name)
            if not isinstance(spec, CategoricalFeature):
                raise ValueError(f"{self.name}: cannot reweight {name!r}, not categorical")
            unknown = sorted(set(weights) - set(spec.categories))
            if unknown:
                raise ValueError(f"{self.name}: {name!r} has no category {', '.join(unknown)}")
            _cumulative(tuple(weights.get(c, 0.0) for c in spec.categories), name)


def _cumulative(weights: Sequence[float], name: str) -> FloatArray:
    """Upper bounds of each category in [0, 1); zero-weight categories never win."""
    shares = np.asarray(weights, dtype=np.float64)
    if np.any(shares < 0) or not shares.sum() > 0:
        raise ValueError(f"{name}: shares must be non-negative with a positive total")
    bounds: FloatArray = np.cumsum(shares) / shares.sum()
    # Rounding must never hand the top of [0, 1) to trailing zero-weight categories.
    bounds[int(np.flatnonzero(shares)[-1]) :] = 1.0
    return bounds


def _effect(codes: IntArray, effects: Sequence[float]) -> FloatArray:
    return np.asarray(effects, dtype=np.float64)[codes]


def _churn_logit(c: Columns) -> FloatArray:
    logit: FloatArray = (
        -1.2
        - 0.06 * (c["tenure_months"] - 30.0)
        + 0.025 * (c["monthly_spend"] - 60.0)
        + 0.02 * (c["data_usage_gb"] - 12.0)
        + 0.45 * (c["support_calls"] - 1.2)
        + _effect(c["plan"], (0.4, 0.0, -0.5, 0.8))
        + _effect(c["region"], (0.0, 0.1, -0.1, 0.2))
        - 0.4 * c["autopay"]
    )
    return logit


def _fraud_logit(c: Columns) -> FloatArray:
    logit: FloatArray = (
        -2.0
        + 0.9 * (np.log(c["amount"]) - math.log(45.0))
        + 0.7 * (np.log1p(c["distance_from_home_km"]) - math.log1p(8.0))
        - 0.35 * (np.log(c["account_age_days"]) - math.log(500.0))
        + 0.35 * c["transactions_last_hour"]
        + _effect(c["merchant_category"], (-0.4, -0.2, 0.0, 0.7, 0.4, 1.0))
        - 1.2 * c["card_present"]
    )
    return logit


def _eta_minutes(c: Columns) -> FloatArray:
    vehicle = _effect(c["vehicle"], (1.4, 1.0, 0.85))
    weather = _effect(c["weather"], (0.0, 3.0, 9.0))
    minutes: FloatArray = (
        4.0
        + 2.2 * c["distance_km"] * c["traffic_index"] * vehicle
        + 0.6 * c["prep_time_min"]
        + weather
        - 1.5 * (c["courier_rating"] - 4.6)
    )
    return minutes


CHURN = SimulatedModel(
    name="churn",
    version="3",
    task="classification",
    classes=("yes", "no"),
    features=(
        NumericFeature("tenure_months", 30.0, 18.0, low=1.0, high=72.0, integer=True),
        NumericFeature("monthly_spend", math.log(60.0), 0.35, log=True, low=10.0, high=400.0),
        NumericFeature("data_usage_gb", math.log(12.0), 0.5, log=True, decimals=1),
        CountFeature("support_calls", rate=1.2, maximum=6),
        CategoricalFeature(
            "plan", ("basic", "standard", "premium", "promo"), (0.5, 0.35, 0.15, 0.0)
        ),
        CategoricalFeature("region", ("north", "south", "east", "west"), (0.3, 0.25, 0.25, 0.2)),
        FlagFeature("autopay", 0.6),
    ),
    score=_churn_logit,
    drift=DriftSpec(
        shifts={"tenure_months": -1.5, "monthly_spend": 1.5},
        weights={"plan": {"basic": 0.2, "standard": 0.15, "premium": 0.05, "promo": 0.6}},
    ),
)

FRAUD = SimulatedModel(
    name="fraud",
    version="7",
    task="classification",
    classes=("fraud", "legit"),
    features=(
        NumericFeature("amount", math.log(45.0), 1.0, log=True, low=0.5, high=20_000.0),
        NumericFeature(
            "account_age_days", math.log(500.0), 0.9, log=True, low=1.0, high=5_000.0, integer=True
        ),
        NumericFeature(
            "distance_from_home_km", math.log(8.0), 1.0, log=True, high=5_000.0, decimals=1
        ),
        CountFeature("transactions_last_hour", rate=0.8, maximum=5),
        CategoricalFeature(
            "merchant_category",
            ("grocery", "restaurants", "fuel", "electronics", "travel", "online"),
            (0.35, 0.2, 0.15, 0.1, 0.1, 0.1),
        ),
        FlagFeature("card_present", 0.7),
    ),
    score=_fraud_logit,
    drift=DriftSpec(
        shifts={"amount": 1.5, "distance_from_home_km": 1.5},
        weights={
            "merchant_category": {
                "grocery": 0.1,
                "restaurants": 0.1,
                "fuel": 0.05,
                "electronics": 0.2,
                "travel": 0.05,
                "online": 0.5,
            }
        },
    ),
)

ETA = SimulatedModel(
    name="eta",
    version="2",
    task="regression",
    features=(
        NumericFeature("distance_km", math.log(5.0), 0.6, log=True, low=0.2, high=60.0),
        NumericFeature("traffic_index", 1.0, 0.25, low=0.3, high=2.5, decimals=3),
        NumericFeature("prep_time_min", 12.0, 4.0, low=2.0, high=40.0, decimals=1),
        NumericFeature("courier_rating", 4.6, 0.2, low=3.0, high=5.0),
        CategoricalFeature("weather", ("clear", "rain", "snow"), (0.7, 0.25, 0.05)),
        CategoricalFeature("vehicle", ("bike", "scooter", "car"), (0.3, 0.45, 0.25)),
    ),
    score=_eta_minutes,
    drift=DriftSpec(
        shifts={"distance_km": 1.5, "traffic_index": 1.5},
        weights={"vehicle": {"bike": 0.1, "scooter": 0.2, "car": 0.7}},
    ),
    label_noise=4.0,
    label_floor=1.0,
)

#: The demo models by name.
DEMO_MODELS: Mapping[str, SimulatedModel] = MappingProxyType(
    {model.name: model for model in (CHURN, FRAUD, ETA)}
)


def _streams(seed: int, purpose: int, model: SimulatedModel) -> list[np.random.Generator]:
    """One generator per feature, then one each for labels, the unlabelled draw, jitter."""
    key = zlib.crc32(model.name.encode())
    return [
        np.random.default_rng([seed, purpose, key, position])
        for position in range(len(model.features) + 3)
    ]


@dataclass
class _Draws:
    """One call's worth of one model's events, as columns."""

    columns: dict[str, npt.NDArray[Any]]
    predictions: FloatArray  # P(classes[0]) rounded, or the regression value
    labels: npt.NDArray[Any]


def _draw(
    model: SimulatedModel,
    streams: Sequence[np.random.Generator],
    drifted: BoolArray,
    drift: DriftSpec | None,
) -> _Draws:
    """Draw ``len(drifted)`` events; rows where ``drifted`` is true follow ``drift``."""
    n = drifted.size
    columns: dict[str, npt.NDArray[Any]] = {}
    for spec, rng in zip(model.features, streams, strict=False):
        if isinstance(spec, NumericFeature):
            z = rng.standard_normal(n)
            shift = drift.shifts.get(spec.name, 0.0) if drift is not None else 0.0
            columns[spec.name] = spec.values(z + shift * drifted if shift else z)
        elif isinstance(spec, CountFeature):
            columns[spec.name] = spec.values(rng, n)
        elif isinstance(spec, CategoricalFeature):
            uniform = rng.random(n)
            codes = spec.codes(uniform)
            weights = drift.weights.get(spec.name) if drift is not None else None
            if weights is not None and drifted.any():
                codes = np.where(drifted, spec.codes(uniform, weights), codes)
            columns[spec.name] = codes
        else:
            columns[spec.name] = spec.values(rng.random(n))
    label_rng = streams[len(model.features)]
    score = model.score(columns)
    labels: npt.NDArray[Any]
    if model.task == "classification":
        # 0.5 * (1 + tanh(x / 2)) is the logistic function, without overflow.
        probability = np.round(0.5 * (1.0 + np.tanh(score / 2.0)), PROBABILITY_DECIMALS)
        first, second = model.classes
        labels = np.where(label_rng.random(n) < probability, first, second).astype(object)
        return _Draws(columns, probability, labels)
    prediction = np.round(score, model.decimals)
    noisy = prediction + model.label_noise * label_rng.standard_normal(n)
    labels = np.round(np.maximum(noisy, model.label_floor), model.decimals)
    return _Draws(columns, prediction, labels)


def _emitted(spec: FeatureSpec, column: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A column as emitted: category names instead of positions."""
    if isinstance(spec, CategoricalFeature):
        names: npt.NDArray[Any] = np.asarray(spec.categories, dtype=object)[column]
        return names
    return column


def _predicted_classes(model: SimulatedModel, probability: FloatArray) -> npt.NDArray[Any]:
    """The argmax class of ``{first: p, second: 1 - p}`` as emitted (first wins ties)."""
    first, second = model.classes
    other = np.round(1.0 - probability, PROBABILITY_DECIMALS)
    return np.where(probability >= other, first, second).astype(object)


def predicted_value(prediction: Any) -> Any:
    """The profiled form of a prediction: the most probable class of a map, else itself.

    Ties go to the class listed first.

    Examples
    --------
    >>> predicted_value({"yes": 0.3, "no": 0.7}), predicted_value({"a": 0.5, "b": 0.5})
    ('no', 'a')
    >>> predicted_value(12.5)
    12.5
    """
    if isinstance(prediction, Mapping):
        return max(prediction, key=prediction.__getitem__)
    return prediction


def window_row(document: Mapping[str, Any]) -> dict[str, Any]:
    """A prediction document's features plus its profiled ``prediction`` value.

    The input :meth:`WindowState.update <monitor.windows.WindowState.update>`
    takes for a profile built from :func:`reference_frame`.

    Examples
    --------
    >>> window_row({"features": {"x": 1.0}, "prediction": {"yes": 0.9, "no": 0.1}})
    {'x': 1.0, 'prediction': 'yes'}
    """
    row = dict(document["features"])
    row[PREDICTION_COLUMN] = predicted_value(document["prediction"])
    return row


def _model(model: str | SimulatedModel) -> SimulatedModel:
    if isinstance(model, SimulatedModel):
        return model
    try:
        return DEMO_MODELS[model]
    except KeyError:
        known = ", ".join(DEMO_MODELS)
        raise ValueError(f"unknown model {model!r} (demo models: {known})") from None


def reference_frame(
    model: str | SimulatedModel, n_rows: int = DEFAULT_REFERENCE_ROWS, seed: int = 0
) -> pd.DataFrame:
    """The model's healthy (pre-drift) traffic as a training set.

    One column per feature (event order), then ``prediction`` (the
    predicted class of a classifier, the number of a regressor) and
    ``label`` (the ground truth, drawn as the simulator draws it). Drop
    ``label`` and pass it to :meth:`ReferenceProfile.from_frame
    <monitor.reference.ReferenceProfile.from_frame>` for a profile of the
    simulator's healthy traffic. Independent of the simulator's own draws
    for the same seed.

    Examples
    --------
    >>> frame = reference_frame("churn", n_rows=1000, seed=1)
    >>> frame.columns.tolist()[-3:], len(frame)
    (['autopay', 'prediction', 'label'], 1000)
    >>> sorted(frame["prediction"].unique())
    ['no', 'yes']
    >>> reference_frame("churn", n_rows=1000, seed=1).equals(frame)
    True
    """
    spec = _model(model)
    if n_rows < 0 or seed < 0:
        raise ValueError(f"n_rows and seed must be non-negative, got {n_rows} and {seed}")
    draws = _draw(
        spec, _streams(seed, _REFERENCE, spec), np.zeros(n_rows, dtype=np.bool_), drift=None
    )
    data: dict[str, Any] = {f.name: _emitted(f, draws.columns[f.name]) for f in spec.features}
    if spec.task == "classification":
        data[PREDICTION_COLUMN] = _predicted_classes(spec, draws.predictions)
    else:
        data[PREDICTION_COLUMN] = draws.predictions
    data["label"] = draws.labels
    return pd.DataFrame(data)


def to_batch(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One ``prediction_batch`` document (columnar) from prediction documents.

    All documents must be of one model version. A feature absent from some
    documents is ``None`` (null) there. Fields other than the event id,
    timestamp, features and prediction (segments, tags) are not carried.

    Examples
    --------
    >>> docs = ServingSimulator(["eta"], seed=0).predictions(2, start_ms=0, step_ms=10)
    >>> batch = to_batch(docs)
    >>> batch["type"], batch["model"], batch["event_ids"], batch["timestamps"]
    ('prediction_batch', 'eta', ['eta-0-0', 'eta-0-1'], [0, 10])
    >>> batch["features"]["vehicle"] == [d["features"]["vehicle"] for d in docs]
    True
    """
    if not documents:
        raise ValueError("a batch needs at least one prediction")
    if len(documents) > MAX_BATCH_ROWS:
        raise ValueError(f"a batch holds at most {MAX_BATCH_ROWS} predictions")
    model, version = documents[0]["model"], documents[0]["model_version"]
    if any(d["model"] != model or d["model_version"] != version for d in documents):
        raise ValueError("a batch holds predictions of one model version only")
    names: dict[str, None] = {}
    for document in documents:
        names.update(dict.fromkeys(document["features"]))
    return {
        "type": "prediction_batch",
        "model": model,
        "model_version": version,
        "event_ids": [d["event_id"] for d in documents],
        "timestamps": [d["timestamp"] for d in documents],
        "features": {name: [d["features"].get(name) for d in documents] for name in names},
        "predictions": [d["prediction"] for d in documents],
    }


class ServingSimulator:
    """A seeded serving service: predictions now, their labels later, drift on cue.

    Parameters
    ----------
    models
        Models served, by name (see :data:`DEMO_MODELS`) or spec; default all
        demo models.
    seed
        Seed of every draw (non-negative).
    drift_after_events
        Each model's events after its first ``drift_after_events`` follow
        its drift; ``None`` never drifts.
    drift
        Model name -> drift spec; default each model's own ``drift``. Models
        left out of a given mapping never drift.
    weights
        Model name -> share of the traffic, drawn per event; default
        round-robin in ``models`` order.
    label_delay_ms, label_jitter_ms
        A label is due ``label_delay_ms`` plus a uniform whole number of
        milliseconds in ``[0, label_jitter_ms]`` after its prediction.
    unlabelled_share
        Chance that a prediction never gets a label.
    max_pending_labels
        Most labels held until due; beyond it the labels due soonest are
        dropped (counted in :attr:`dropped_labels`), so memory is bounded.

    Examples
    --------
    >>> simulator = ServingSimulator(seed=0, drift_after_events=2, unlabelled_share=0.0)
    >>> events = simulator.predictions(6, start_ms=1_000, step_ms=100)
    >>> [(e["event_id"], e["timestamp"]) for e in events[:3]]
    [('churn-0-0', 1000), ('fraud-0-0', 1100), ('eta-0-0', 1200)]
    >>> sorted(events[0]["prediction"]), simulator.is_drifting("churn")
    (['no', 'yes'], True)
    >>> sorted(simulator.drifted_features("eta"))
    ['distance_km', 'traffic_index', 'vehicle']
    >>> [label["event_id"] for label in simulator.labels_due(3_100)]
    ['churn-0-0', 'fraud-0-0']
    """

    def __init__(
        self,
        models: Iterable[str | SimulatedModel] | None = None,
        *,
        seed: int = 0,
        drift_after_events: int | None = None,
        drift: Mapping[str, DriftSpec] | None = None,
        weights: Mapping[str, float] | None = None,
        label_delay_ms: int = DEFAULT_LABEL_DELAY_MS,
        label_jitter_ms: int = 0,
        unlabelled_share: float = DEFAULT_UNLABELLED_SHARE,
        max_pending_labels: int = DEFAULT_MAX_PENDING_LABELS,
    ) -> None:
        specs = [_model(m) for m in (DEMO_MODELS.values() if models is None else models)]
        if not specs:
            raise ValueError("a simulator serves at least one model")
        self.models: Mapping[str, SimulatedModel] = MappingProxyType({m.name: m for m in specs})
        if len(self.models) != len(specs):
            raise ValueError("model names must be distinct")
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        if drift_after_events is not None and drift_after_events < 0:
            raise ValueError("drift_after_events must be non-negative")
        if label_delay_ms < 0 or label_jitter_ms < 0:
            raise ValueError("label delay and jitter must be non-negative")
        if not 0.0 <= unlabelled_share <= 1.0:
            raise ValueError("unlabelled_share must be in [0, 1]")
        if max_pending_labels < 0:
            raise ValueError("max_pending_labels must be non-negative")
        drifts = {m.name: m.drift for m in specs} if drift is None else dict(drift)
        unknown = sorted(set(drifts) - set(self.models))
        if unknown:
            raise ValueError(f"drift given for unknown model(s): {', '.join(unknown)}")
        for name, spec in drifts.items():
            self.models[name].check_drift(spec)
        self._drifts = drifts
        self._bounds: FloatArray | None = None
        if weights is not None:
            unknown = sorted(set(weights) - set(self.models))
            if unknown:
                raise ValueError(f"weights given for unknown model(s): {', '.join(unknown)}")
            self._bounds = _cumulative([weights.get(m, 0.0) for m in self.models], "weights")
        self.seed = seed
        self.drift_after_events = drift_after_events
        self.label_delay_ms = label_delay_ms
        self.label_jitter_ms = label_jitter_ms
        self.unlabelled_share = unlabelled_share
        self.max_pending_labels = max_pending_labels
        self.dropped_labels = 0
        self._streams = {m.name: _streams(seed, _LIVE, m) for m in specs}
        self._choice = np.random.default_rng([seed, _LIVE, len(specs)])
        self._emitted = dict.fromkeys(self.models, 0)
        self._total = 0
        self._pending: list[tuple[int, int, str, str, Any]] = []
        self._label_sequence = 0
        self._latest_due: float = -math.inf  # latest due time ever scheduled

    def drifted_features(self, model: str, *, include_prediction: bool = False) -> set[str]:
        """The input features ``model``'s drift changes (empty if it never drifts).

        With ``include_prediction``, also ``"prediction"``, which every demo
        drift moves as well (see the module documentation).
        """
        if model not in self.models:
            raise ValueError(f"model {model!r} is not served by this simulator")
        spec = self._drifts.get(model)
        if spec is None or self.drift_after_events is None or not spec.features:
            return set()
        return set(spec.features) | ({PREDICTION_COLUMN} if include_prediction else set())

    def events_emitted(self, model: str) -> int:
        """Predictions of ``model`` made so far."""
        return self._emitted[model]

    def is_drifting(self, model: str) -> bool:
        """Whether ``model``'s next prediction follows its drift."""
        return (
            self.drift_after_events is not None
            and model in self._drifts
            and self._emitted[model] >= self.drift_after_events
        )

    @property
    def pending_labels(self) -> int:
        """Labels drawn but not yet due."""
        return len(self._pending)

    def predictions(self, n: int, start_ms: int, step_ms: int) -> list[dict[str, Any]]:
        """The next ``n`` prediction documents, at ``start_ms + i * step_ms``.

        Each is JSON-ready in the :class:`~schemas.events.PredictionEvent`
        shape, with event id ``"{model}-{seed}-{index}"`` (``index`` counts
        that model's predictions from 0). Their labels are scheduled for
        :meth:`labels_due`.
        """
        if n < 0 or step_ms < 0:
            raise ValueError("n and step_ms must be non-negative")
        names = list(self.models)
        if self._bounds is None:
            chosen = (self._total + np.arange(n)) % len(names)
        else:
            chosen = np.searchsorted(self._bounds, self._choice.random(n), side="right")
        self._total += n
        timestamps = start_ms + step_ms * np.arange(n, dtype=np.int64)
        if len(names) == 1:
            return self._model_predictions(self.models[names[0]], timestamps)
        documents: list[Any] = [None] * n
        for position, name in enumerate(names):
            rows = np.flatnonzero(chosen == position)
            if rows.size:
                made = self._model_predictions(self.models[name], timestamps[rows])
                for row, document in zip(rows.tolist(), made, strict=True):
                    documents[row] = document
        return documents

    def prediction_batches(
        self, n: int, start_ms: int, step_ms: int, max_rows: int = 1_000
    ) -> list[dict[str, Any]]:
        """The next ``n`` predictions as ``prediction_batch`` documents.

        The same events (and labels) as :meth:`predictions` would give,
        grouped by model in order of first appearance, at most ``max_rows``
        per batch.

        Examples
        --------
        >>> simulator = ServingSimulator(seed=0)
        >>> batches = simulator.prediction_batches(7, start_ms=0, step_ms=1, max_rows=2)
        >>> [(b["model"], len(b["event_ids"])) for b in batches]
        [('churn', 2), ('churn', 1), ('fraud', 2), ('eta', 2)]
        """
        if not 1 <= max_rows <= MAX_BATCH_ROWS:
            raise ValueError(f"max_rows must be in [1, {MAX_BATCH_ROWS}]")
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for document in self.predictions(n, start_ms, step_ms):
            groups.setdefault((document["model"], document["model_version"]), []).append(document)
        return [
            to_batch(group[start : start + max_rows])
            for group in groups.values()
            for start in range(0, len(group), max_rows)
        ]

    def labels_due(self, now_ms: int) -> list[dict[str, Any]]:
        """Label documents due at or before ``now_ms`` (event time), oldest first.

        Each is JSON-ready in the :class:`~schemas.events.LabelEvent` shape,
        timestamped when it became due; it is returned once.
        """
        due: list[dict[str, Any]] = []
        while self._pending and self._pending[0][0] <= now_ms:
            at, _, event_id, model, label = heapq.heappop(self._pending)
            due.append(
                {
                    "type": "label",
                    "event_id": event_id,
                    "model": model,
                    "label": label,
                    "timestamp": at,
                }
            )
        return due

    def _model_predictions(
        self, model: SimulatedModel, timestamps: IntArray
    ) -> list[dict[str, Any]]:
        n = timestamps.size
        first = self._emitted[model.name]
        self._emitted[model.name] += n
        streams = self._streams[model.name]
        drift = self._drifts.get(model.name)
        drifted = np.zeros(n, dtype=np.bool_)
        if drift is not None and self.drift_after_events is not None:
            drifted = first + np.arange(n) >= self.drift_after_events
        draws = _draw(model, streams, drifted, drift)
        names = model.feature_names
        values = [_emitted(f, draws.columns[f.name]).tolist() for f in model.features]
        rows = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
        predictions: list[Any]
        if model.task == "classification":
            first_class, second_class = model.classes
            probability = draws.predictions.tolist()
            other = np.round(1.0 - draws.predictions, PROBABILITY_DECIMALS).tolist()
            predictions = [
                {first_class: p, second_class: q} for p, q in zip(probability, other, strict=True)
            ]
        else:
            predictions = draws.predictions.tolist()
        times = timestamps.tolist()
        ids = [f"{model.name}-{self.seed}-{index}" for index in range(first, first + n)]
        self._schedule_labels(model, streams, times, ids, draws.labels.tolist())
        return [
            {
                "type": "prediction",
                "event_id": event_id,
                "model": model.name,
                "model_version": model.version,
                "timestamp": at,
                "features": features,
                "prediction": prediction,
            }
            for event_id, at, features, prediction in zip(
                ids, times, rows, predictions, strict=True
            )
        ]

    def _schedule_labels(
        self,
        model: SimulatedModel,
        streams: Sequence[np.random.Generator],
        times: list[int],
        ids: list[str],
        labels: list[Any],
    ) -> None:
        n = len(ids)
        k = len(model.features)
        labelled = (streams[k + 1].random(n) >= self.unlabelled_share).tolist()
        jitter = np.floor(streams[k + 2].random(n) * (self.label_jitter_ms + 1)).astype(np.int64)
        due = np.asarray(times, dtype=np.int64) + self.label_delay_ms + jitter
        # Entries in order and after every pending one keep the heap valid when
        # appended (the usual case: time moves forward and there is no jitter).
        ordered = bool(np.all(due[1:] >= due[:-1])) and (
            not self._pending or due.size == 0 or int(due[0]) >= self._latest_due
        )
        for keep, at, event_id, label in zip(labelled, due.tolist(), ids, labels, strict=True):
            if keep:
                entry = (at, self._label_sequence, event_id, model.name, label)
                if ordered:
                    self._pending.append(entry)
                else:
                    heapq.heappush(self._pending, entry)
                self._label_sequence += 1
        if due.size:
            self._latest_due = max(self._latest_due, int(due.max()))
        while len(self._pending) > self.max_pending_labels:
            heapq.heappop(self._pending)
            self.dropped_labels += 1
