"""Our performance metrics equal scikit-learn's on the same data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.metrics import (  # type: ignore[import-untyped]  # no stubs
    accuracy_score,
    f1_score,
    mean_absolute_error,
    roc_auc_score,
    root_mean_squared_error,
)

from monitor.stats.performance import (
    accuracy,
    accuracy_from_counts,
    confusion_counts,
    f1_macro,
    f1_macro_from_counts,
    infer_task,
    mae,
    performance_metrics,
    predicted_class,
    rmse,
    roc_auc,
    roc_auc_ovr,
)

FloatArray = npt.NDArray[np.float64]


def class_pairs(seed: int) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Labels and predictions of random size, class count, imbalance and class sets.

    Some seeds predict classes that never occur as labels and the other way round.
    """
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    k = int(rng.integers(2, 12))
    label_shares = rng.dirichlet(np.full(k, 0.3))  # often very imbalanced
    labels = rng.choice(k, size=n, p=label_shares)
    correct = rng.random(n) < rng.random()
    offset = int(rng.integers(0, 3))  # predictions may use classes labels never do
    predicted = np.where(correct, labels, rng.integers(offset, k + offset, n))
    if seed % 2:
        names = np.array([f"class-{i}" for i in range(k + 3)], dtype=object)
        return names[labels], names[predicted]
    return labels, predicted


def probability_rows(rng: np.random.Generator, n: int, k: int, distinct: int) -> FloatArray:
    """``n`` probability vectors over ``k`` classes drawn from ``distinct`` ones (ties)."""
    pool = rng.dirichlet(np.ones(k), size=distinct)
    return pool[rng.integers(0, distinct, n)]


def as_maps(classes: list[str], matrix: FloatArray) -> list[dict[str, float]]:
    """Rows of a probability matrix as class -> probability maps."""
    return [dict(zip(classes, row.tolist(), strict=True)) for row in matrix]


@pytest.mark.parametrize("seed", range(40))
def test_accuracy_and_f1_macro_equal_sklearn(seed: int) -> None:
    """accuracy and macro F1 equal sklearn, including classes only one side has."""
    labels, predicted = class_pairs(seed)
    assert accuracy(labels, predicted) == pytest.approx(accuracy_score(labels, predicted))
    expected = f1_score(labels, predicted, average="macro", zero_division=0)
    assert f1_macro(labels, predicted) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_f1_macro_counts_a_class_that_is_only_predicted() -> None:
    """A class that never is a label still counts, with F1 0, as in sklearn."""
    labels = ["a", "a", "b", "b"]
    predicted = ["a", "a", "b", "c"]
    # a: 1.0, b: 2/3, c: 0 -> mean 5/9
    assert f1_macro(labels, predicted) == pytest.approx(5 / 9)
    assert f1_macro(labels, predicted) == pytest.approx(
        f1_score(labels, predicted, average="macro", zero_division=0)
    )


def test_metrics_from_counts_equal_metrics_from_rows() -> None:
    """The counts functions give the row functions' results; zero counts change nothing."""
    labels, predicted = class_pairs(3)
    counts = dict(confusion_counts(labels, predicted))
    assert sum(counts.values()) == len(labels)
    assert accuracy_from_counts(counts) == accuracy(labels, predicted)
    assert f1_macro_from_counts(counts) == f1_macro(labels, predicted)
    counts[("unseen", "never")] = 0
    assert f1_macro_from_counts(counts) == f1_macro(labels, predicted)


def test_object_arrays_and_lists_agree() -> None:
    """Object arrays, lists and numpy int arrays of the same keys give the same numbers."""
    labels = np.array([1, 2, 2, 3, 3, 3])
    predicted = np.array([1, 2, 3, 3, 3, 1])
    as_objects = (labels.astype(object), predicted.astype(object))
    assert (
        accuracy(labels, predicted)
        == accuracy(*as_objects)
        == accuracy([1, 2, 2, 3, 3, 3], [1, 2, 3, 3, 3, 1])
    )
    assert f1_macro(labels, predicted) == f1_macro(*as_objects)


def test_empty_and_mismatched_inputs() -> None:
    """No rows gives nan; different lengths are an error."""
    assert math.isnan(accuracy([], []))
    assert math.isnan(f1_macro([], []))
    assert math.isnan(mae([], []))
    assert math.isnan(rmse([], []))
    assert roc_auc([], []) is None
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        accuracy(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="2 labels but 1 scores"):
        roc_auc([0, 1], [0.5])


@pytest.mark.parametrize("seed", range(30))
def test_roc_auc_equals_sklearn(seed: int) -> None:
    """Binary AUC equals sklearn on continuous, heavily tied and imbalanced data."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5000))
    positive = rng.random(n) < [0.5, 0.02, 0.97][seed % 3]
    positive[rng.integers(0, n)] = True
    positive[rng.integers(0, n)] = False
    if positive.all() or not positive.any():
        positive[0], positive[-1] = True, False
    scores = rng.normal(size=n) + positive * rng.random()
    if seed % 2:
        scores = np.round(scores, 1)  # many ties
    assert roc_auc(positive, scores) == pytest.approx(roc_auc_score(positive, scores), rel=1e-12)


def test_roc_auc_is_none_with_one_class_and_rejects_nan() -> None:
    """AUC is undefined for one class; NaN scores are an error."""
    assert roc_auc([1, 1, 1], [0.1, 0.2, 0.3]) is None
    assert roc_auc([False, False], [0.1, 0.2]) is None
    assert roc_auc([0, 1], [0.0, 0.0]) == 0.5
    with pytest.raises(ValueError, match="scores must not be NaN"):
        roc_auc([0, 1], [0.1, float("nan")])


@pytest.mark.parametrize("seed", range(30))
def test_roc_auc_ovr_equals_sklearn_macro_ovr(seed: int) -> None:
    """With every class among the labels, macro OvR AUC equals sklearn's, ties included."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 9))
    n = int(rng.integers(k, 3000))
    classes = [f"c{i}" for i in range(k)]
    matrix = probability_rows(rng, n, k, distinct=[5, 50, n][seed % 3])
    shares = rng.dirichlet(np.full(k, 0.5))
    labels = rng.choice(np.array(classes, dtype=object), size=n, p=shares)
    labels[:k] = classes  # every class occurs
    expected = roc_auc_score(labels, matrix, multi_class="ovr", average="macro")
    assert roc_auc_ovr(list(labels), as_maps(classes, matrix)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_roc_auc_ovr_with_two_classes_is_the_binary_auc(seed: int) -> None:
    """Two classes: sklearn's binary AUC of the greater class's probability."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 2000))
    yes = np.round(rng.random(n), 2)
    labels = np.where(rng.random(n) < yes, "yes", "no")
    labels[:2] = ["yes", "no"]
    maps = [{"no": 1.0 - p, "yes": p} for p in yes.tolist()]
    expected = roc_auc_score(labels == "yes", yes)
    assert roc_auc_ovr(list(labels), maps) == pytest.approx(expected, rel=1e-12)
    # Maps naming only one class: the other gets the complement.
    partial: list[dict[str, float]] = [
        {"yes": p} if i % 2 else {"no": 1.0 - p} for i, p in enumerate(yes.tolist())
    ]
    complement = np.array([m["yes"] if "yes" in m else 1.0 - m["no"] for m in partial])
    assert roc_auc_ovr(list(labels), partial) == pytest.approx(
        roc_auc_score(labels == "yes", complement), rel=1e-12
    )


@pytest.mark.parametrize("seed", range(10))
def test_roc_auc_ovr_skips_classes_missing_from_the_labels(seed: int) -> None:
    """Classes that are never a label are left out; the rest average their binary AUCs."""
    rng = np.random.default_rng(seed)
    k = 6
    n = 800
    classes = [f"c{i}" for i in range(k)]
    matrix = probability_rows(rng, n, k, distinct=40)
    present = classes[: int(rng.integers(2, k))]
    labels = np.array(rng.choice(present, size=n), dtype=object)
    labels[: len(present)] = present
    per_class = [roc_auc_score(labels == c, matrix[:, classes.index(c)]) for c in present]
    assert roc_auc_ovr(list(labels), as_maps(classes, matrix)) == pytest.approx(
        float(np.mean(per_class)), rel=1e-12
    )


def test_roc_auc_ovr_missing_map_entries_score_zero() -> None:
    """With three or more classes a class a map does not name has probability 0."""
    rng = np.random.default_rng(7)
    classes = ["a", "b", "c"]
    matrix = probability_rows(rng, 300, 3, distinct=30)
    matrix[rng.random(300) < 0.3, 2] = 0.0
    labels = np.array(rng.choice(classes, size=300), dtype=object)
    maps = [{c: p for c, p in zip(classes, row.tolist(), strict=True) if p > 0} for row in matrix]
    per_class = [roc_auc_score(labels == c, matrix[:, i]) for i, c in enumerate(classes)]
    assert roc_auc_ovr(list(labels), maps) == pytest.approx(float(np.mean(per_class)), rel=1e-12)


def test_roc_auc_ovr_is_none_when_no_class_has_both_sides() -> None:
    """One label class (or no rows) leaves AUC undefined."""
    maps = [{"a": 0.5, "b": 0.3, "c": 0.2}, {"a": 0.1, "b": 0.1, "c": 0.8}]
    assert roc_auc_ovr(["a", "a"], maps) is None
    assert roc_auc_ovr(["a", "a"], [{"a": 0.9, "b": 0.1}, {"a": 0.2, "b": 0.8}]) is None
    assert roc_auc_ovr([], []) is None
    with pytest.raises(ValueError, match="1 labels but 2"):
        roc_auc_ovr(["a"], maps)


@pytest.mark.parametrize("seed", range(10))
def test_mae_and_rmse_equal_sklearn(seed: int) -> None:
    """MAE and RMSE equal sklearn's."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5000))
    actual = rng.normal(scale=10.0, size=n)
    estimate = actual + rng.standard_t(3, size=n)
    assert mae(actual, estimate) == pytest.approx(mean_absolute_error(actual, estimate), rel=1e-12)
    assert rmse(actual, estimate) == pytest.approx(
        root_mean_squared_error(actual, estimate), rel=1e-12
    )


def test_predicted_class_and_task_inference() -> None:
    """Argmax with ties to the smallest key; scalars become category keys."""
    assert predicted_class({"b": 0.5, "a": 0.5, "c": 0.0}) == "a"
    assert predicted_class({"b": 0.6, "a": 0.4}) == "b"
    assert predicted_class(False) == "false"
    assert predicted_class(3.0) == "3"
    assert predicted_class({}) is None
    assert infer_task({"x": 1.0}, 2.5) == "classification"
    assert infer_task(1, True) == "classification"
    assert infer_task(1, "1") == "classification"
    assert infer_task(1, 1) == "regression"
    assert infer_task("x", 0.5) == "regression"


@pytest.mark.parametrize("seed", range(8))
def test_performance_metrics_classification_equals_sklearn(seed: int) -> None:
    """Reference performance: argmax accuracy/F1 and OvR AUC equal sklearn."""
    rng = np.random.default_rng(seed)
    k = 4
    classes = [f"c{i}" for i in range(k)]
    matrix = probability_rows(rng, 1000, k, distinct=200)
    labels = np.array(rng.choice(classes, size=1000), dtype=object)
    labels[:k] = classes
    maps = as_maps(classes, matrix)
    argmax = np.array(classes, dtype=object)[matrix.argmax(axis=1)]
    result = performance_metrics("classification", labels, maps)
    assert result["accuracy"] == pytest.approx(accuracy_score(labels, argmax))
    assert result["f1_macro"] == pytest.approx(
        f1_score(labels, argmax, average="macro", zero_division=0), rel=1e-12
    )
    assert result["roc_auc"] == pytest.approx(
        roc_auc_score(labels, matrix, multi_class="ovr", average="macro"), rel=1e-12
    )


def test_performance_metrics_normalises_and_drops_nulls() -> None:
    """Labels and scalar predictions compare as category keys; null rows are left out."""
    labels = [True, False, 1.0, None, float("nan"), "x"]
    predictions: list[Any] = [True, True, 1, "a", "b", None]
    result = performance_metrics("classification", labels, predictions)
    # kept rows: (true, true), (false, true), (1, 1)
    assert result == {
        "accuracy": pytest.approx(2 / 3),
        "f1_macro": pytest.approx(5 / 9),
        "roc_auc": None,
    }
    assert performance_metrics("classification", [None], ["a"]) == {
        "accuracy": None,
        "f1_macro": None,
        "roc_auc": None,
    }


def test_performance_metrics_regression() -> None:
    """Regression metrics skip rows with a null on either side and reject text."""
    result = performance_metrics("regression", [1.0, None, 3.0, 4], [2.0, 5.0, float("nan"), 6])
    assert result == {"mae": 1.5, "rmse": pytest.approx(math.sqrt(2.5))}
    assert performance_metrics("regression", [], []) == {"mae": None, "rmse": None}
    with pytest.raises(ValueError, match="regression prediction must be a number"):
        performance_metrics("regression", [1.0], [{"a": 1.0}])
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        performance_metrics("regression", [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="unknown task"):
        performance_metrics("ranking", [1.0], [1.0])  # type: ignore[arg-type]
