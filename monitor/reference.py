"""ReferenceProfile: what "normal" looks like for one model version.

A profile keeps, per feature, exactly what the drift tests need and nothing
that grows with the reference's length beyond a capped sample: histogram
bins and counts, category counts, null count, range, moments, and a sorted
sample for KS and Wasserstein.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from monitor.errors import DriftstreamError, ProfileFormatError
from monitor.stats.binning import proportions, quantile_edges
from monitor.stats.performance import Task, infer_task, performance_metrics
from monitor.stats.result import finite_or_none
from monitor.tables import read_table
from monitor.values import FeatureKind, category_column, infer_kind, numeric_column

PROFILE_FORMAT = "driftstream.reference_profile"
#: Bumped whenever the file layout changes; older readers refuse newer files.
PROFILE_SCHEMA_VERSION = 1
DEFAULT_N_BINS = 10
DEFAULT_SAMPLE_CAP = 100_000
#: Categories kept per feature; rarer ones share the "other/unseen" bin.
DEFAULT_MAX_CATEGORIES = 200
#: Column of the model's output, unless the reference was built with another.
DEFAULT_PREDICTION_COLUMN = "prediction"

FloatArray = npt.NDArray[np.float64]
CountArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """Reference summary of a numeric feature.

    ``edges`` are the inner quantile edges (see
    :mod:`monitor.stats.binning`), ``counts`` the number of reference values
    in each of the ``len(edges) + 1`` bins, ``minimum``/``maximum``/``mean``/
    ``std`` are over finite values (``std`` with ``ddof=0``), and ``sample``
    holds the non-NaN values sorted: all of them up to the sample cap, a
    seeded uniform sample without replacement above it.
    """

    kind: ClassVar[FeatureKind] = FeatureKind.NUMERIC
    name: str
    n: int
    n_null: int
    edges: FloatArray
    counts: CountArray
    minimum: float
    maximum: float
    mean: float
    std: float
    sample: FloatArray

    @property
    def proportions(self) -> FloatArray:
        """Share of the non-null reference in each bin."""
        return proportions(self.counts)

    @property
    def null_rate(self) -> float:
        """Share of nulls among all reference values."""
        return null_rate(self.n, self.n_null)


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    """Reference summary of a categorical feature.

    ``categories`` are the kept category keys (most frequent first, at most
    ``max_categories``), ``counts`` their reference counts plus a last entry
    for all other values (the "other/unseen" bin; 0 unless categories were
    dropped).
    """

    kind: ClassVar[FeatureKind] = FeatureKind.CATEGORICAL
    name: str
    n: int
    n_null: int
    categories: tuple[str, ...]
    counts: CountArray
    index: Mapping[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {c: i for i, c in enumerate(self.categories)})

    @property
    def proportions(self) -> FloatArray:
        """Share of the non-null reference in each category, then "other"."""
        return proportions(self.counts)

    @property
    def null_rate(self) -> float:
        """Share of nulls among all reference values."""
        return null_rate(self.n, self.n_null)

    @property
    def unseen_rate(self) -> float:
        """Share of the reference in the "other/unseen" bin."""
        return float(self.counts[-1] / self.n) if self.n else 0.0


FeatureProfile = NumericProfile | CategoricalProfile


def null_rate(n: int, n_null: int) -> float:
    """``n_null / (n + n_null)``, 0 when there are no values at all.

    Examples
    --------
    >>> null_rate(3, 1), null_rate(0, 0)
    (0.25, 0.0)
    """
    total = n + n_null
    return n_null / total if total else 0.0


@dataclass(frozen=True, eq=False)
class ReferenceProfile:
    """Per-feature reference summaries for one model version.

    Examples
    --------
    >>> frame = pd.DataFrame({"age": [20.5, 30.5, 40.5, 50.5], "plan": ["a", "b", "a", "a"]})
    >>> profile = ReferenceProfile.from_frame(frame, model="churn", model_version="3")
    >>> profile.features["age"].kind.value, profile.features["plan"].categories
    ('numeric', ('a', 'b'))
    >>> ReferenceProfile.from_bytes(profile.to_bytes()).features["age"].sample.tolist()
    [20.5, 30.5, 40.5, 50.5]
    """

    model: str
    model_version: str
    n_rows: int
    features: Mapping[str, FeatureProfile]
    n_bins: int = DEFAULT_N_BINS
    sample_cap: int = DEFAULT_SAMPLE_CAP
    seed: int = 0
    built_at: str | None = None
    #: Model performance on the reference data (when it had labels), by metric.
    performance: Mapping[str, float | None] | None = None
    #: Column of the model's output: profiled like a feature, compared apart from them.
    prediction_column: str = DEFAULT_PREDICTION_COLUMN

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        model: str,
        model_version: str,
        *,
        kinds: Mapping[str, FeatureKind] | None = None,
        features: Sequence[str] | None = None,
        n_bins: int = DEFAULT_N_BINS,
        sample_cap: int = DEFAULT_SAMPLE_CAP,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
        seed: int = 0,
        built_at: str | None = None,
        label_column: str | None = None,
        prediction_column: str = DEFAULT_PREDICTION_COLUMN,
        task: Task | None = None,
    ) -> ReferenceProfile:
        """Build a profile from a DataFrame, one column per feature.

        Parameters
        ----------
        kinds
            Overrides of the inferred kind (see :func:`monitor.values.infer_kind`).
        features
            Columns to profile (default: all).
        n_bins, sample_cap, max_categories, seed
            Histogram bins, retained-sample cap, categories kept, sampling seed.
        prediction_column
            The model's output column, recorded in the profile so that
            comparisons keep it apart from the features (it is profiled
            like one when it is among the profiled columns).
        label_column, task
            With a label column, the profile also records the model's
            performance on the reference (``prediction_column`` against the
            labels; ``task`` inferred from the first row when not given);
            the label column is not profiled as a feature.
        """
        performance = None
        if label_column is not None:
            for needed in (label_column, prediction_column):
                if needed not in frame.columns:
                    raise DriftstreamError(f"unknown column: {needed}")
            pairs = frame[[label_column, prediction_column]].dropna()
            if pairs.empty:
                raise DriftstreamError(f"no row has both {label_column} and {prediction_column}")
            first_label, first_prediction = pairs.iloc[0]
            chosen = task or infer_task(first_prediction, first_label)
            performance = performance_metrics(
                chosen, pairs[label_column].tolist(), pairs[prediction_column].tolist()
            )
            frame = frame.drop(columns=[label_column])
        if n_bins < 1 or sample_cap < 1 or max_categories < 1:
            raise DriftstreamError("n_bins, sample_cap and max_categories must be at least 1")
        # Column labels may be ints in a DataFrame; features are named by strings.
        frame = frame.rename(columns=str)
        names = [str(n) for n in (frame.columns if features is None else features)]
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise DriftstreamError(f"unknown column(s): {', '.join(missing)}")
        overrides = {str(name): kind for name, kind in (kinds or {}).items()}
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise DriftstreamError(f"kind given for unknown column(s): {', '.join(unknown)}")
        profiles: dict[str, FeatureProfile] = {}
        for position, name in enumerate(names):
            column = frame[name]
            kind = overrides.get(name) or infer_kind(column)
            rng = np.random.default_rng([seed, position])
            if kind is FeatureKind.NUMERIC:
                values = numeric_column(column, name)
                profiles[name] = _numeric_profile(name, values, n_bins, sample_cap, rng)
            else:
                keys = category_column(column)
                profiles[name] = _categorical_profile(name, keys, max_categories)
        return cls(
            model=model,
            model_version=model_version,
            n_rows=len(frame),
            features=profiles,
            n_bins=n_bins,
            sample_cap=sample_cap,
            seed=seed,
            built_at=built_at,
            performance=performance,
            prediction_column=prediction_column,
        )

    @classmethod
    def from_data_file(
        cls, path: str | Path, model: str, model_version: str, **options: Any
    ) -> ReferenceProfile:
        """Build a profile from a CSV or Parquet file (options as :meth:`from_frame`)."""
        return cls.from_frame(read_table(path), model, model_version, **options)

    def to_bytes(self) -> bytes:
        """Serialise to the versioned profile format (a zip: JSON + ``.npy``).

        The bytes depend on the profile only (zip entries carry a fixed
        date), so a profile's id (:func:`monitor.catalog.profile_id`) is the
        same whenever and wherever it is serialised.
        """
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            described = []
            for position, feature in enumerate(self.features.values()):
                entry: dict[str, Any] = {
                    "name": feature.name,
                    "kind": feature.kind.value,
                    "n": feature.n,
                    "n_null": feature.n_null,
                    "counts": feature.counts.tolist(),
                }
                if isinstance(feature, NumericProfile):
                    sample_path = f"samples/{position}.npy"
                    array_buffer = io.BytesIO()
                    np.save(array_buffer, feature.sample, allow_pickle=False)
                    archive.writestr(_zip_entry(sample_path), array_buffer.getvalue())
                    entry |= {
                        "edges": feature.edges.tolist(),
                        "minimum": finite_or_none(feature.minimum),
                        "maximum": finite_or_none(feature.maximum),
                        "mean": finite_or_none(feature.mean),
                        "std": finite_or_none(feature.std),
                        "sample": sample_path,
                    }
                else:
                    entry["categories"] = list(feature.categories)
                described.append(entry)
            header = {
                "format": PROFILE_FORMAT,
                "schema_version": PROFILE_SCHEMA_VERSION,
                "model": self.model,
                "model_version": self.model_version,
                "n_rows": self.n_rows,
                "n_bins": self.n_bins,
                "sample_cap": self.sample_cap,
                "seed": self.seed,
                "built_at": self.built_at,
                "performance": None if self.performance is None else dict(self.performance),
                "prediction_column": self.prediction_column,
                "features": described,
            }
            archive.writestr(_zip_entry("profile.json"), json.dumps(header, indent=1))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        """Read the profile format; refuse unknown or newer schema versions."""
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            header = json.loads(archive.read("profile.json"))
        except (zipfile.BadZipFile, KeyError, ValueError):
            raise ProfileFormatError("not a driftstream reference profile") from None
        if not isinstance(header, dict) or header.get("format") != PROFILE_FORMAT:
            raise ProfileFormatError("not a driftstream reference profile")
        version = header.get("schema_version")
        if not isinstance(version, int) or version > PROFILE_SCHEMA_VERSION or version < 1:
            raise ProfileFormatError(
                f"profile schema version {version} is not supported by this driftstream "
                f"(it reads versions 1 to {PROFILE_SCHEMA_VERSION}); upgrade driftstream"
            )
        features: dict[str, FeatureProfile] = {}
        with archive:
            for entry in header["features"]:
                counts = np.asarray(entry["counts"], dtype=np.int64)
                if entry["kind"] == FeatureKind.NUMERIC.value:
                    sample = np.load(io.BytesIO(archive.read(entry["sample"])), allow_pickle=False)
                    features[entry["name"]] = NumericProfile(
                        name=entry["name"],
                        n=entry["n"],
                        n_null=entry["n_null"],
                        edges=np.asarray(entry["edges"], dtype=np.float64),
                        counts=counts,
                        minimum=_float_or_nan(entry["minimum"]),
                        maximum=_float_or_nan(entry["maximum"]),
                        mean=_float_or_nan(entry["mean"]),
                        std=_float_or_nan(entry["std"]),
                        sample=sample.astype(np.float64, copy=False),
                    )
                else:
                    features[entry["name"]] = CategoricalProfile(
                        name=entry["name"],
                        n=entry["n"],
                        n_null=entry["n_null"],
                        categories=tuple(entry["categories"]),
                        counts=counts,
                    )
        return cls(
            model=header["model"],
            model_version=header["model_version"],
            n_rows=header["n_rows"],
            features=features,
            n_bins=header["n_bins"],
            sample_cap=header["sample_cap"],
            seed=header["seed"],
            built_at=header.get("built_at"),
            performance=header.get("performance"),
            # Profiles written before the key existed used the default column.
            prediction_column=header.get("prediction_column", DEFAULT_PREDICTION_COLUMN),
        )

    def save(self, path: str | Path) -> None:
        """Write the profile to ``path``."""
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        """Read a profile written by :meth:`save`."""
        file = Path(path)
        if not file.is_file():
            raise DriftstreamError(f"{file}: no such file")
        try:
            return cls.from_bytes(file.read_bytes())
        except ProfileFormatError as error:
            raise ProfileFormatError(f"{file}: {error}") from None


def is_profile_file(path: str | Path) -> bool:
    """Whether ``path`` is a zip holding a ``profile.json`` (not a data file)."""
    file = Path(path)
    if not file.is_file() or not zipfile.is_zipfile(file):
        return False
    with zipfile.ZipFile(file) as archive:
        return "profile.json" in archive.namelist()


def _numeric_profile(
    name: str, values: FloatArray, n_bins: int, sample_cap: int, rng: np.random.Generator
) -> NumericProfile:
    # One sort serves the quantiles, the bin counts, the range and the sample.
    ordered = np.sort(values[~np.isnan(values)])
    lowest = np.searchsorted(ordered, -np.inf, side="right")
    highest = np.searchsorted(ordered, np.inf, side="left")
    finite = ordered[lowest:highest]
    edges = quantile_edges(finite, n_bins)
    below = np.searchsorted(ordered, edges, side="left")
    counts = np.diff(below, prepend=0, append=ordered.size).astype(np.int64)
    if ordered.size > sample_cap:
        sample = np.sort(rng.choice(ordered, size=sample_cap, replace=False))
    else:
        sample = ordered
    has_finite = finite.size > 0
    return NumericProfile(
        name=name,
        n=int(ordered.size),
        n_null=int(values.size - ordered.size),
        edges=edges,
        counts=counts,
        minimum=float(finite[0]) if has_finite else float("nan"),
        maximum=float(finite[-1]) if has_finite else float("nan"),
        mean=float(finite.mean()) if has_finite else float("nan"),
        std=float(finite.std()) if has_finite else float("nan"),
        sample=sample,
    )


def _categorical_profile(
    name: str, keys: npt.NDArray[np.object_], max_categories: int
) -> CategoricalProfile:
    present = pd.Series(keys[pd.notna(keys)], dtype=object)
    # Most frequent first; ties by key so the order never depends on hashing.
    frequencies = present.value_counts().sort_index().sort_values(ascending=False, kind="stable")
    kept = frequencies.iloc[:max_categories]
    other = int(frequencies.iloc[max_categories:].sum())
    counts = np.append(kept.to_numpy(dtype=np.int64), other)
    return CategoricalProfile(
        name=name,
        n=int(present.size),
        n_null=int(keys.size - present.size),
        categories=tuple(str(c) for c in kept.index),
        counts=counts,
    )


def _float_or_nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _zip_entry(name: str) -> zipfile.ZipInfo:
    """A compressed zip entry dated 1980-01-01 (zip's epoch) instead of now."""
    entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    entry.compress_type = zipfile.ZIP_DEFLATED
    return entry
