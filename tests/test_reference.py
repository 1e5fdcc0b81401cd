"""Tests of monitor.reference: building, reading and writing reference profiles."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from monitor.errors import DriftstreamError, ProfileFormatError
from monitor.reference import (
    PROFILE_SCHEMA_VERSION,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    is_profile_file,
)
from monitor.values import MAX_INTEGER_CATEGORIES, FeatureKind


def build(frame: pd.DataFrame, **options: Any) -> ReferenceProfile:
    """A profile of ``frame`` for a fixed model name and version."""
    return ReferenceProfile.from_frame(frame, "model", "1", **options)


def numeric_feature(profile: ReferenceProfile, name: str) -> NumericProfile:
    """The numeric profile of ``name``."""
    feature = profile.features[name]
    assert isinstance(feature, NumericProfile)
    return feature


def categorical_feature(profile: ReferenceProfile, name: str) -> CategoricalProfile:
    """The categorical profile of ``name``."""
    feature = profile.features[name]
    assert isinstance(feature, CategoricalProfile)
    return feature


def mixed_frame(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """A reference with numeric, categorical, null, infinite and all-NaN columns."""
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0, 3.0, size=rows)
    x[::17] = np.nan
    x[5] = np.inf
    x[6] = -np.inf
    plan = rng.choice(np.array(["basic", "pro", "team", "free"], dtype=object), size=rows)
    plan[::23] = None
    return pd.DataFrame(
        {
            "x": x,
            "plan": plan,
            "n_items": rng.integers(0, 5, size=rows),
            "flag": rng.random(rows) < 0.3,
            "empty": np.full(rows, np.nan),
            "constant": np.full(rows, 2.5),
        }
    )


# --- kind inference and overrides -------------------------------------------------


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        (pd.Series([0.1, 0.25, 3.5, 0.1]), FeatureKind.NUMERIC),
        (pd.Series(np.arange(MAX_INTEGER_CATEGORIES) % 20), FeatureKind.CATEGORICAL),
        (pd.Series(np.arange(MAX_INTEGER_CATEGORIES + 1)), FeatureKind.NUMERIC),
        (pd.Series(np.arange(1000)), FeatureKind.NUMERIC),
        (pd.Series([1, 2, 2, 3]), FeatureKind.CATEGORICAL),
        (pd.Series(["a", "b", "a"]), FeatureKind.CATEGORICAL),
        (pd.Series(["a", None, "b"], dtype="string"), FeatureKind.CATEGORICAL),
        (pd.Series([True, False, True]), FeatureKind.CATEGORICAL),
        (pd.Series([1.0, np.nan, 2.0, 1.0]), FeatureKind.CATEGORICAL),
        (pd.Series([1.0, np.nan, 2.5]), FeatureKind.NUMERIC),
        (pd.Series(np.arange(25, dtype=np.float64)), FeatureKind.NUMERIC),
    ],
    ids=[
        "floats",
        "ints-20-distinct",
        "ints-21-distinct",
        "ints-many",
        "ints-few",
        "strings",
        "string-dtype",
        "bools",
        "integral-floats-with-nan",
        "fractional-floats-with-nan",
        "integral-floats-25-distinct",
    ],
)
def test_kind_inference(column: pd.Series, kind: FeatureKind) -> None:
    """Each column type is profiled with the inferred kind."""
    profile = build(pd.DataFrame({"f": column}))
    assert profile.features["f"].kind is kind


def test_kind_overrides() -> None:
    """kinds= forces a kind in either direction."""
    frame = pd.DataFrame({"small_ints": [1, 2, 3, 1] * 5, "floats": [0.5, 1.5, 0.5, 2.0] * 5})
    profile = build(
        frame, kinds={"small_ints": FeatureKind.NUMERIC, "floats": FeatureKind.CATEGORICAL}
    )
    ints = numeric_feature(profile, "small_ints")
    assert ints.n == 20
    assert ints.minimum == 1.0
    assert ints.maximum == 3.0
    floats = categorical_feature(profile, "floats")
    assert floats.categories == ("0.5", "1.5", "2")
    assert floats.counts.tolist() == [10, 5, 5, 0]


def test_numeric_override_on_text_errors() -> None:
    """Forcing a text column to be numeric is a user error naming the column."""
    with pytest.raises(
        DriftstreamError, match="feature 'name' is numeric but has a non-numeric value: 'a'"
    ):
        build(pd.DataFrame({"name": ["a", "b"]}), kinds={"name": FeatureKind.NUMERIC})


def test_unknown_feature_column_errors() -> None:
    """features= naming a missing column is a DriftstreamError naming it."""
    with pytest.raises(DriftstreamError, match=r"unknown column.*missing"):
        build(pd.DataFrame({"x": [1.0]}), features=["x", "missing"])


def test_unknown_kind_column_errors() -> None:
    """kinds= naming a column that is not profiled is a DriftstreamError naming it."""
    with pytest.raises(DriftstreamError, match=r"unknown column.*ghost"):
        build(pd.DataFrame({"x": [1.0]}), kinds={"ghost": FeatureKind.NUMERIC})


def test_kind_for_column_excluded_by_features_errors() -> None:
    """A kind given for a column outside features= is refused too."""
    frame = pd.DataFrame({"x": [1.5], "y": [2.5]})
    with pytest.raises(DriftstreamError, match=r"^kind given for unknown column\(s\): y$"):
        build(frame, features=["x"], kinds={"y": FeatureKind.NUMERIC})


@pytest.mark.parametrize("option", ["n_bins", "sample_cap", "max_categories"])
def test_non_positive_options_error(option: str) -> None:
    """n_bins, sample_cap and max_categories below 1 are refused."""
    with pytest.raises(
        DriftstreamError, match="n_bins, sample_cap and max_categories must be at least 1"
    ):
        build(pd.DataFrame({"x": [1.5]}), **{option: 0})


def test_features_selects_columns_in_order() -> None:
    """features= profiles only the named columns, in the given order."""
    profile = build(mixed_frame(), features=["plan", "x"])
    assert list(profile.features) == ["plan", "x"]
    assert profile.n_rows == 600


# --- numeric profiles -------------------------------------------------------------


@pytest.mark.parametrize("n_bins", [1, 2, 4, 10, 13])
def test_edges_are_numpy_quantiles_with_duplicates_collapsed(n_bins: int) -> None:
    """Edges equal numpy.quantile's defaults at k/n_bins, unique and increasing."""
    rng = np.random.default_rng(4)
    # Heavy ties (half the values are 0) force duplicate quantiles.
    values = np.concatenate([np.zeros(500), rng.exponential(size=500)])
    rng.shuffle(values)
    profile = build(pd.DataFrame({"v": values}), n_bins=n_bins)
    feature = numeric_feature(profile, "v")
    if n_bins == 1:
        expected = np.empty(0)
    else:
        expected = np.unique(np.quantile(values, np.arange(1, n_bins) / n_bins))
    assert np.array_equal(feature.edges, expected)
    assert np.all(np.diff(feature.edges) > 0)
    assert feature.counts.size == feature.edges.size + 1
    if n_bins >= 10:
        # The ties really collapsed some edges.
        assert feature.edges.size < n_bins - 1


def test_edges_on_continuous_data_give_equal_bins() -> None:
    """On distinct values the n_bins bins hold about n/n_bins values each."""
    values = np.random.default_rng(8).uniform(size=1000)
    feature = numeric_feature(build(pd.DataFrame({"v": values}), n_bins=10), "v")
    assert np.array_equal(feature.edges, np.quantile(values, np.arange(1, 10) / 10))
    assert feature.counts.size == 10
    assert np.all(np.abs(feature.counts - 100) <= 1)


def test_bin_counts_sum_to_n_and_match_searchsorted() -> None:
    """Bin counts hold every non-NaN value, infinities included, in its bin."""
    frame = mixed_frame()
    feature = numeric_feature(build(frame), "x")
    x = frame["x"].to_numpy()
    present = x[~np.isnan(x)]
    assert feature.n == present.size
    assert int(feature.counts.sum()) == feature.n
    expected = np.bincount(
        np.searchsorted(feature.edges, present, side="right"), minlength=feature.edges.size + 1
    )
    assert feature.counts.tolist() == expected.tolist()


def test_sample_is_exact_and_sorted_below_cap() -> None:
    """Up to the cap, the sample is every non-NaN value, sorted."""
    frame = mixed_frame()
    feature = numeric_feature(build(frame, sample_cap=10_000), "x")
    x = frame["x"].to_numpy()
    assert np.array_equal(feature.sample, np.sort(x[~np.isnan(x)]))
    assert feature.sample.dtype == np.float64


def test_sample_at_exactly_cap_is_exact() -> None:
    """A column with exactly sample_cap values keeps all of them."""
    values = np.random.default_rng(1).normal(size=50)
    feature = numeric_feature(build(pd.DataFrame({"v": values}), sample_cap=50), "v")
    assert np.array_equal(feature.sample, np.sort(values))


def test_sample_above_cap_is_seeded_uniform_subset() -> None:
    """Above the cap: cap values, sorted, distinct rows of the data, reproducible per seed."""
    values = np.random.default_rng(2).permutation(20_000).astype(np.float64) + 0.5
    frame = pd.DataFrame({"v": values})
    sample = numeric_feature(build(frame, sample_cap=2000, seed=7), "v").sample
    again = numeric_feature(build(frame, sample_cap=2000, seed=7), "v").sample
    other = numeric_feature(build(frame, sample_cap=2000, seed=8), "v").sample
    assert sample.size == 2000
    assert np.all(np.diff(sample) > 0)  # sorted, and no row drawn twice
    assert np.all(np.isin(sample, values))
    assert np.array_equal(sample, again)
    assert not np.array_equal(sample, other)
    # Uniform over the data: deciles of 0..20000 each get ~200 of the draws.
    deciles = np.bincount((sample // 2000).astype(np.int64), minlength=10)
    assert stats.chisquare(deciles).pvalue > 1e-4
    # Counts and edges still describe the whole column, not the sample.
    feature = numeric_feature(build(frame, sample_cap=2000, seed=7), "v")
    assert feature.n == 20_000
    assert int(feature.counts.sum()) == 20_000


def test_sample_seed_depends_on_column_position() -> None:
    """Two identical columns are sampled with different generators."""
    values = np.arange(5000, dtype=np.float64) + 0.5
    profile = build(pd.DataFrame({"a": values, "b": values}), sample_cap=100)
    assert not np.array_equal(
        numeric_feature(profile, "a").sample, numeric_feature(profile, "b").sample
    )


def test_null_counts() -> None:
    """NaN and None count as nulls in numeric and categorical features."""
    frame = pd.DataFrame(
        {
            "x": [1.5, None, np.nan, 2.5, 3.5],
            "c": ["a", None, "b", np.nan, "a"],
        }
    )
    profile = build(frame)
    x, c = numeric_feature(profile, "x"), categorical_feature(profile, "c")
    assert (x.n, x.n_null) == (3, 2)
    assert (c.n, c.n_null) == (3, 2)
    assert x.null_rate == pytest.approx(0.4)
    assert c.null_rate == pytest.approx(0.4)
    assert c.categories == ("a", "b")
    assert c.counts.tolist() == [2, 1, 0]


def test_moments_over_finite_values() -> None:
    """minimum, maximum, mean and std (ddof=0) are over finite values."""
    frame = mixed_frame()
    feature = numeric_feature(build(frame), "x")
    x = frame["x"].to_numpy()
    finite = x[np.isfinite(x)]
    assert feature.minimum == finite.min()
    assert feature.maximum == finite.max()
    assert feature.mean == pytest.approx(finite.mean(), rel=1e-12)
    assert feature.std == pytest.approx(finite.std(ddof=0), rel=1e-12)


def test_constant_column_has_one_edge_and_two_bins() -> None:
    """A constant column has a single edge at its value; all values in the upper bin."""
    feature = numeric_feature(build(mixed_frame()), "constant")
    assert feature.edges.tolist() == [2.5]
    assert feature.counts.tolist() == [0, 600]
    assert (feature.minimum, feature.maximum, feature.mean, feature.std) == (2.5, 2.5, 2.5, 0.0)


def test_all_nan_numeric_column() -> None:
    """An all-NaN numeric column: n == 0, every row null, no edges, NaN moments."""
    profile = build(mixed_frame(), kinds={"empty": FeatureKind.NUMERIC})
    feature = numeric_feature(profile, "empty")
    assert feature.n == 0
    assert feature.n_null == 600
    assert feature.edges.size == 0
    assert feature.counts.tolist() == [0]
    assert feature.sample.size == 0
    assert all(np.isnan([feature.minimum, feature.maximum, feature.mean, feature.std]))
    assert feature.null_rate == 1.0


def test_infinities_in_outer_bins_and_out_of_moments() -> None:
    """±inf count in the outer bins and the sample, but not in min/max/mean/std."""
    finite = np.random.default_rng(6).normal(size=1000)
    values = np.concatenate([finite, [np.inf, -np.inf, np.inf]])
    feature = numeric_feature(build(pd.DataFrame({"v": values})), "v")
    reference = numeric_feature(build(pd.DataFrame({"v": finite})), "v")
    assert np.array_equal(feature.edges, reference.edges)
    assert feature.n == 1003
    assert feature.counts[0] == reference.counts[0] + 1
    assert feature.counts[-1] == reference.counts[-1] + 2
    assert feature.counts[1:-1].tolist() == reference.counts[1:-1].tolist()
    assert (feature.minimum, feature.maximum) == (finite.min(), finite.max())
    assert np.isfinite(feature.mean)
    assert feature.mean == reference.mean
    assert feature.std == reference.std
    assert feature.sample[0] == -np.inf
    assert feature.sample[-2:].tolist() == [np.inf, np.inf]


# --- categorical profiles ---------------------------------------------------------


def test_categorical_counts_most_frequent_first() -> None:
    """Categories are ordered by count, ties by key, with an empty other bin."""
    frame = pd.DataFrame({"c": ["b", "a", "c", "a", "b", "a", "d"]})
    feature = categorical_feature(build(frame), "c")
    assert feature.categories == ("a", "b", "c", "d")
    assert feature.counts.tolist() == [3, 2, 1, 1, 0]
    assert feature.n == 7
    assert feature.unseen_rate == 0.0


def test_rarest_categories_go_to_other_bin() -> None:
    """Beyond max_categories, the rarest categories share the last (other) count."""
    frame = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2 + ["e"] + [None]})
    feature = categorical_feature(build(frame, max_categories=2), "c")
    assert feature.categories == ("a", "b")
    assert feature.counts.tolist() == [5, 4, 6]
    assert feature.n == 15
    assert feature.n_null == 1
    assert feature.unseen_rate == pytest.approx(6 / 15)


def test_integer_and_bool_category_keys() -> None:
    """Integer categories are keyed "3" (also as floats with NaN); booleans "true"/"false"."""
    frame = pd.DataFrame({"i": [3, 3, 1], "f": [3.0, np.nan, 1.0], "b": [True, False, True]})
    profile = build(frame)
    assert categorical_feature(profile, "i").categories == ("3", "1")
    assert categorical_feature(profile, "f").categories == ("1", "3")
    assert categorical_feature(profile, "b").categories == ("true", "false")


def test_large_integral_floats_stay_distinct_categories() -> None:
    """Integral floats beyond the int64 range keep distinct, exact category keys.

    Such values are not inferred as integer codes (numeric by default), so the
    kind is given.
    """
    frame = pd.DataFrame({"id": [1e20, 2e20, 2e20, 5.0]})
    assert build(frame).features["id"].kind is FeatureKind.NUMERIC
    feature = categorical_feature(build(frame, kinds={"id": FeatureKind.CATEGORICAL}), "id")
    assert feature.categories == ("200000000000000000000", "100000000000000000000", "5")
    assert feature.counts.tolist() == [2, 1, 1, 0]


# --- serialisation ----------------------------------------------------------------


def assert_profiles_identical(left: ReferenceProfile, right: ReferenceProfile) -> None:
    """Every field of two profiles, arrays included, is equal (NaN equal to NaN)."""
    for attribute in (
        "model",
        "model_version",
        "n_rows",
        "n_bins",
        "sample_cap",
        "seed",
        "built_at",
        "prediction_column",
    ):
        assert getattr(left, attribute) == getattr(right, attribute), attribute
    assert list(left.features) == list(right.features)
    for name, feature in left.features.items():
        other = right.features[name]
        assert type(feature) is type(other), name
        assert (feature.name, feature.n, feature.n_null) == (other.name, other.n, other.n_null)
        assert feature.counts.dtype == other.counts.dtype == np.int64
        assert np.array_equal(feature.counts, other.counts), name
        if isinstance(feature, NumericProfile):
            assert isinstance(other, NumericProfile)
            assert feature.edges.dtype == other.edges.dtype == np.float64
            assert np.array_equal(feature.edges, other.edges), name
            assert feature.sample.dtype == other.sample.dtype == np.float64
            assert np.array_equal(feature.sample, other.sample), name
            for moment in ("minimum", "maximum", "mean", "std"):
                mine, theirs = getattr(feature, moment), getattr(other, moment)
                assert mine == theirs or (np.isnan(mine) and np.isnan(theirs)), (name, moment)
        else:
            assert isinstance(other, CategoricalProfile)
            assert feature.categories == other.categories, name
            assert dict(feature.index) == dict(other.index), name


def header_of(data: bytes) -> object:
    """The parsed profile.json of a serialised profile."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(archive.read("profile.json"))


def rich_profile() -> ReferenceProfile:
    """A profile with every kind of feature and non-default options."""
    return build(
        mixed_frame(),
        kinds={"empty": FeatureKind.NUMERIC},
        n_bins=7,
        sample_cap=100,
        seed=3,
        built_at="2024-05-01T12:00:00+00:00",
    )


def test_to_bytes_round_trip_is_exact() -> None:
    """from_bytes(to_bytes()) gives back every field and array exactly."""
    profile = rich_profile()
    restored = ReferenceProfile.from_bytes(profile.to_bytes())
    assert_profiles_identical(profile, restored)
    # Writing the restored profile again gives the same header.
    assert header_of(restored.to_bytes()) == header_of(profile.to_bytes())
    assert numeric_feature(restored, "x").sample.size == 100


def test_save_load_round_trip_is_exact(tmp_path: Path) -> None:
    """load(save()) gives back every field and array exactly."""
    profile = rich_profile()
    path = tmp_path / "reference.dsprof"
    profile.save(path)
    assert is_profile_file(path)
    assert_profiles_identical(profile, ReferenceProfile.load(path))


def test_round_trip_with_unusual_names_and_keys() -> None:
    """Feature names and category keys with unicode, quotes and digits survive."""
    frame = pd.DataFrame(
        {"prix €": [1.25, 2.5, 3.75], 'say "hi"': ["ünï", "a/b", "ünï"], "7": ["1", "2", "1"]}
    )
    profile = build(frame)
    assert_profiles_identical(profile, ReferenceProfile.from_bytes(profile.to_bytes()))


def rewrite_header(data: bytes, drop: tuple[str, ...] = (), **changes: object) -> bytes:
    """The same profile zip with fields of profile.json replaced, and ``drop`` removed."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with source, zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "profile.json":
                header = json.loads(content)
                header.update(changes)
                for name in drop:
                    del header[name]
                content = json.dumps(header).encode()
            target.writestr(item.filename, content)
    return buffer.getvalue()


def test_the_output_column_is_recorded_and_defaults_for_older_profiles() -> None:
    """The prediction column round-trips; a profile written before it was recorded reads
    as the default ``prediction``."""
    frame = pd.DataFrame({"x": [0.5, 1.5, 2.5], "score": ["a", "b", "a"]})
    profile = build(frame, prediction_column="score")
    header = header_of(profile.to_bytes())
    assert isinstance(header, dict)
    assert header["prediction_column"] == "score"
    assert ReferenceProfile.from_bytes(profile.to_bytes()).prediction_column == "score"
    older = rewrite_header(profile.to_bytes(), drop=("prediction_column",))
    assert ReferenceProfile.from_bytes(older).prediction_column == "prediction"


def test_newer_schema_version_is_refused(tmp_path: Path) -> None:
    """A profile with schema_version 2 fails with ProfileFormatError naming the version."""
    assert PROFILE_SCHEMA_VERSION == 1
    data = rewrite_header(rich_profile().to_bytes(), schema_version=2)
    # The rewritten file is otherwise readable: only the version is wrong.
    assert ReferenceProfile.from_bytes(rewrite_header(data, schema_version=1)).n_rows == 600
    with pytest.raises(ProfileFormatError, match="version 2"):
        ReferenceProfile.from_bytes(data)
    path = tmp_path / "future.dsprof"
    path.write_bytes(data)
    with pytest.raises(ProfileFormatError, match=r"future\.dsprof.*version 2"):
        ReferenceProfile.load(path)


@pytest.mark.parametrize("version", [0, "1", None])
def test_invalid_schema_version_is_refused(version: object) -> None:
    """A zero, textual or missing schema_version is refused."""
    data = rewrite_header(rich_profile().to_bytes(), schema_version=version)
    with pytest.raises(ProfileFormatError, match="schema version"):
        ReferenceProfile.from_bytes(data)


def test_wrong_format_marker_is_refused() -> None:
    """A zip whose profile.json is not a driftstream profile is refused."""
    data = rewrite_header(rich_profile().to_bytes(), format="something.else")
    with pytest.raises(ProfileFormatError, match="not a driftstream reference profile"):
        ReferenceProfile.from_bytes(data)


def test_non_zip_file_is_refused(tmp_path: Path) -> None:
    """A CSV (not a zip) fails with ProfileFormatError, from bytes or from a file."""
    with pytest.raises(ProfileFormatError, match="not a driftstream reference profile"):
        ReferenceProfile.from_bytes(b"x,y\n1,2\n")
    path = tmp_path / "data.csv"
    path.write_text("x,y\n1,2\n")
    assert not is_profile_file(path)
    with pytest.raises(ProfileFormatError, match=r"data\.csv"):
        ReferenceProfile.load(path)


def test_zip_without_profile_json_is_refused() -> None:
    """A zip lacking profile.json fails with ProfileFormatError."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("other.txt", "hello")
    with pytest.raises(ProfileFormatError, match=r"^not a driftstream reference profile$"):
        ReferenceProfile.from_bytes(buffer.getvalue())


def test_load_missing_file_errors(tmp_path: Path) -> None:
    """Loading a path that does not exist is a DriftstreamError naming it."""
    path = tmp_path / "absent.dsprof"
    with pytest.raises(DriftstreamError, match=f"^{re.escape(str(path))}: no such file$"):
        ReferenceProfile.load(path)


# --- scale ------------------------------------------------------------------------


def test_one_million_rows_by_25_columns() -> None:
    """A 1M x 25 reference (20 float, 5 string columns) is profiled completely."""
    rows = 1_000_000
    rng = np.random.default_rng(2024)
    columns: dict[str, object] = {f"f{i}": rng.normal(i, 1.0 + i, size=rows) for i in range(20)}
    labels = np.array([f"cat_{j:02d}" for j in range(40)], dtype=object)
    for i in range(5):
        columns[f"s{i}"] = labels[rng.integers(0, 10 + 6 * i, size=rows)]
    frame = pd.DataFrame(columns)
    profile = build(frame)
    assert profile.n_rows == rows
    assert len(profile.features) == 25
    kinds = [feature.kind for feature in profile.features.values()]
    assert kinds.count(FeatureKind.NUMERIC) == 20
    assert kinds.count(FeatureKind.CATEGORICAL) == 5
    f0 = numeric_feature(profile, "f0")
    assert f0.n == rows
    assert f0.sample.size == profile.sample_cap
    assert f0.counts.size == 10
    s4 = categorical_feature(profile, "s4")
    assert len(s4.categories) == 34
    assert int(s4.counts.sum()) == rows


def test_all_nan_float_column_is_inferred_numeric() -> None:
    """A float column with no values yet is numeric (it has no integer codes)."""
    profile = build(pd.DataFrame({"x": [np.nan, np.nan, np.nan]}))
    assert profile.features["x"].kind is FeatureKind.NUMERIC
    assert profile.features["x"].n_null == 3


def test_all_empty_nullable_integer_column_is_inferred_numeric() -> None:
    """An all-empty CSV column reads as nullable integers; with no values it is numeric too."""
    profile = build(pd.DataFrame({"x": pd.array([None, None, None], dtype="Int64")}))
    assert profile.features["x"].kind is FeatureKind.NUMERIC
    assert profile.features["x"].n_null == 3


def test_integer_column_labels_are_named_by_strings() -> None:
    """Non-string column labels become string feature names, overrides included."""
    frame = pd.DataFrame({0: [0.5, 1.5, 2.5], 1: ["a", "b", "a"]})
    profile = build(frame, kinds={0: FeatureKind.CATEGORICAL})
    assert list(profile.features) == ["0", "1"]
    assert profile.features["0"].kind is FeatureKind.CATEGORICAL


def test_profile_bytes_do_not_depend_on_when_they_are_written() -> None:
    """Zip entries carry a fixed date, so a profile's id is stable (no wall-clock in the bytes)."""
    frame = pd.DataFrame({"x": np.arange(50, dtype=float), "c": ["a", "b"] * 25})
    data = ReferenceProfile.from_frame(frame, "m", "1").to_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        dates = {entry.date_time for entry in archive.infolist()}
    assert dates == {(1980, 1, 1, 0, 0, 0)}
    assert ReferenceProfile.from_bytes(data).to_bytes() == data
