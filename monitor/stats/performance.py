"""Model performance metrics: accuracy, macro F1, ROC AUC, MAE and RMSE.

Classification metrics are computed from confusion counts, a mapping
``(label, predicted) -> count``, so a stream can keep the counts (memory
grows with the number of classes squared, not with the stream) and get the
same numbers as a full pass. ROC AUC needs the scores themselves and is
computed from ranks.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
from scipy import stats

from monitor.stats.result import finite_or_none
from monitor.values import category_key

#: What a model is asked to do; decides which metrics apply.
Task = Literal["classification", "regression"]
#: A prediction: a scalar or a class -> probability map.
PredictionValue = bool | int | float | str | dict[str, float]
#: A ground-truth label.
LabelValue = bool | int | float | str

#: Metric names per task, in the order results list them.
CLASSIFICATION_METRICS = ("accuracy", "f1_macro", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse")

K = TypeVar("K", bound=Hashable)
FloatArray = npt.NDArray[np.float64]


def confusion_counts(labels: npt.ArrayLike, predicted: npt.ArrayLike) -> Counter[tuple[Any, Any]]:
    """Count each ``(label, predicted)`` pair.

    Examples
    --------
    >>> sorted(confusion_counts(["a", "a", "b"], ["a", "b", "b"]).items())
    [(('a', 'a'), 1), (('a', 'b'), 1), (('b', 'b'), 1)]
    """
    truth = _key_list(labels)
    guess = _key_list(predicted)
    if len(truth) != len(guess):
        raise ValueError(f"{len(truth)} labels but {len(guess)} predictions")
    return Counter(zip(truth, guess, strict=True))


def accuracy_from_counts(counts: Mapping[tuple[K, K], int]) -> float:
    """Share of correct predictions, from confusion counts (``nan`` if empty).

    Examples
    --------
    >>> accuracy_from_counts({("a", "a"): 3, ("a", "b"): 1})
    0.75
    """
    total = sum(counts.values())
    if total == 0:
        return float("nan")
    correct = sum(count for (label, guess), count in counts.items() if label == guess)
    return correct / total


def f1_macro_from_counts(counts: Mapping[tuple[K, K], int]) -> float:
    """Unweighted mean of per-class F1, from confusion counts (``nan`` if empty).

    Notes
    -----
    The classes :math:`C` are every key that occurs as a label or as a
    prediction (with a count above 0). For class :math:`c`,

    .. math:: F_1(c) = \\frac{2\\,TP_c}{2\\,TP_c + FP_c + FN_c},
              \\qquad F_1^{\\mathrm{macro}} = \\frac{1}{|C|} \\sum_{c \\in C} F_1(c)

    which is scikit-learn's ``f1_score(average="macro")`` with
    ``zero_division=0``. A class in :math:`C` always has a positive
    denominator, so a class that was never predicted just scores 0.

    Examples
    --------
    >>> round(f1_macro_from_counts({("a", "a"): 2, ("a", "b"): 1, ("b", "b"): 1}), 4)
    0.7333
    """
    true_positive: Counter[K] = Counter()
    label_total: Counter[K] = Counter()
    predicted_total: Counter[K] = Counter()
    for (label, guess), count in counts.items():
        if count <= 0:
            continue
        label_total[label] += count
        predicted_total[guess] += count
        if label == guess:
            true_positive[label] += count
    classes = set(label_total) | set(predicted_total)
    if not classes:
        return float("nan")
    scores = []
    for cls in classes:
        denominator = label_total[cls] + predicted_total[cls]
        scores.append(2 * true_positive[cls] / denominator if denominator else 0.0)
    return math.fsum(scores) / len(scores)


def accuracy(labels: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
    """Share of predictions equal to their label (``nan`` for no rows).

    Parameters
    ----------
    labels, predicted
        Class keys of equal length, compared with ``==`` (object arrays and
        lists are fine).

    Examples
    --------
    >>> accuracy(["a", "b", "b", "a"], ["a", "b", "a", "a"])
    0.75
    """
    return accuracy_from_counts(confusion_counts(labels, predicted))


def f1_macro(labels: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
    """Macro-averaged F1 over every class seen in labels or predictions.

    See :func:`f1_macro_from_counts` for the definition; ``nan`` for no rows.

    Examples
    --------
    >>> round(f1_macro(["a", "a", "a", "b"], ["a", "a", "b", "b"]), 4)
    0.7333
    >>> f1_macro(["a", "a"], ["b", "b"])
    0.0
    """
    return f1_macro_from_counts(confusion_counts(labels, predicted))


def roc_auc(labels_binary: npt.ArrayLike, scores: npt.ArrayLike) -> float | None:
    """Area under the ROC curve of ``scores`` for a binary target.

    Parameters
    ----------
    labels_binary
        Truthy for the positive class.
    scores
        Higher means more likely positive; must not be NaN.

    Returns
    -------
    float or None
        ``None`` when the rows are all positive or all negative (or there
        are none): the AUC is undefined.

    Notes
    -----
    With :math:`n_+` positives, :math:`n_-` negatives and :math:`R_+` the
    sum of the positives' ranks among all scores (ties get their average
    rank), the Mann-Whitney statistic and the AUC are

    .. math:: U = R_+ - \\frac{n_+ (n_+ + 1)}{2}, \\qquad
              \\mathrm{AUC} = \\frac{U}{n_+ n_-}

    i.e. the probability that a random positive scores above a random
    negative, ties counting one half. Ranks are multiples of 1/2, so
    :math:`U` is exact in float64 for fewer than about :math:`10^7` rows.

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> roc_auc([1, 1], [0.2, 0.9]) is None
    True
    """
    positive = np.asarray(labels_binary).astype(bool).ravel()
    values = np.asarray(scores, dtype=np.float64).ravel()
    if positive.size != values.size:
        raise ValueError(f"{positive.size} labels but {values.size} scores")
    if np.isnan(values).any():
        raise ValueError("scores must not be NaN")
    n_positive = int(np.count_nonzero(positive))
    n_negative = int(positive.size - n_positive)
    if n_positive == 0 or n_negative == 0:
        return None
    ranks = stats.rankdata(values)
    u = float(ranks[positive].sum()) - n_positive * (n_positive + 1) / 2
    return u / (n_positive * n_negative)


def roc_auc_ovr(
    labels: Sequence[str | None], probabilities: Sequence[Mapping[str, float]]
) -> float | None:
    """Macro one-vs-rest ROC AUC of class-probability maps.

    Parameters
    ----------
    labels
        True class key of each row.
    probabilities
        Class -> probability map of each row.

    Returns
    -------
    float or None
        ``None`` when no class has both positive and negative rows.

    Notes
    -----
    The classes are every true label plus every key of any map. A map
    without a class gives it probability 0.

    - Two classes: the binary AUC (:func:`roc_auc`) with the greater class
      key (in string order, like scikit-learn) as positive and its
      probability as score; a map that lacks it scores ``1 - p(other)``.
      ``None`` unless both classes occur among the labels.
    - Three or more: for each class :math:`c` that is the label of at least
      one row and not of every row, the binary AUC of "label is :math:`c`"
      scored by :math:`p(c)`; the result is the unweighted mean of those.
      Classes that never occur as a label (only in maps) are left out.

    When every class occurs as a label this equals scikit-learn's
    ``roc_auc_score(y, P, multi_class="ovr", average="macro")``, and for
    two classes ``roc_auc_score(y == c, P[:, c])``.

    Examples
    --------
    >>> maps = [{"a": 0.7, "b": 0.2, "c": 0.1}, {"a": 0.2, "b": 0.5, "c": 0.3},
    ...         {"a": 0.1, "b": 0.3, "c": 0.6}, {"a": 0.4, "b": 0.4, "c": 0.2}]
    >>> roc_auc_ovr(["a", "b", "c", "b"], maps)
    1.0
    >>> two_class = [{"yes": 0.2}, {"yes": 0.9}, {"no": 0.6}, {"no": 0.5}]
    >>> roc_auc_ovr(["no", "yes", "yes", "no"], two_class)
    0.75
    """
    if len(labels) != len(probabilities):
        raise ValueError(f"{len(labels)} labels but {len(probabilities)} probability maps")
    classes: set[str] = {label for label in labels if label is not None}
    for row in probabilities:
        classes.update(row)
    ordered = sorted(classes)
    truth = np.array(labels, dtype=object)
    if len(ordered) == 2:
        negative, positive = ordered
        scores = [
            row[positive] if positive in row else 1.0 - row.get(negative, 0.0)
            for row in probabilities
        ]
        return roc_auc(truth == positive, scores)
    index = {cls: column for column, cls in enumerate(ordered)}
    matrix = np.zeros((len(labels), len(ordered)), dtype=np.float64)
    for row_number, row in enumerate(probabilities):
        for cls, probability in row.items():
            matrix[row_number, index[cls]] = probability
    if np.isnan(matrix).any():
        raise ValueError("probabilities must not be NaN")
    is_class = truth[:, None] == np.array(ordered, dtype=object)[None, :]
    n_positive = is_class.sum(axis=0)
    n_negative = len(labels) - n_positive
    counted = (n_positive > 0) & (n_negative > 0)
    if not counted.any():
        return None
    ranks = stats.rankdata(matrix[:, counted], axis=0)
    positives = is_class[:, counted]
    n_pos = n_positive[counted].astype(np.float64)
    n_neg = n_negative[counted].astype(np.float64)
    u = np.where(positives, ranks, 0.0).sum(axis=0) - n_pos * (n_pos + 1) / 2
    return math.fsum((u / (n_pos * n_neg)).tolist()) / int(counted.sum())


def mae(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> float:
    """Mean absolute error (``nan`` for no rows).

    Notes
    -----
    .. math:: \\mathrm{MAE} = \\frac{1}{n} \\sum_i |y_i - \\hat y_i|

    Examples
    --------
    >>> mae([1.0, 2.0, 3.0], [1.5, 2.0, 1.0])
    0.8333333333333334
    """
    errors = _errors(labels, predictions)
    return float(np.mean(np.abs(errors))) if errors.size else float("nan")


def rmse(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> float:
    """Root mean squared error (``nan`` for no rows).

    Notes
    -----
    .. math:: \\mathrm{RMSE} = \\sqrt{\\frac{1}{n} \\sum_i (y_i - \\hat y_i)^2}

    Examples
    --------
    >>> rmse([1.0, 2.0, 3.0], [1.0, 2.0, 6.0])
    1.7320508075688772
    """
    errors = _errors(labels, predictions)
    return math.sqrt(float(np.mean(errors * errors))) if errors.size else float("nan")


def predicted_class(prediction: PredictionValue) -> str | None:
    """The class a prediction names: the argmax of a map, else its category key.

    Ties in a map go to the smallest class key (string order).

    Examples
    --------
    >>> predicted_class({"yes": 0.4, "no": 0.4, "maybe": 0.2}), predicted_class(True)
    ('no', 'true')
    >>> predicted_class(2.0)
    '2'
    """
    if isinstance(prediction, dict):
        if not prediction:
            return None
        return min(prediction.items(), key=lambda item: (-item[1], item[0]))[0]
    return category_key(prediction)


def infer_task(prediction: PredictionValue, label: LabelValue) -> Task:
    """Classification if the prediction is a probability map or the label is
    a string or boolean; regression otherwise.

    Examples
    --------
    >>> infer_task({"a": 1.0}, 3), infer_task(1, "yes"), infer_task(0.3, 1.0)
    ('classification', 'classification', 'regression')
    """
    if isinstance(prediction, dict) or isinstance(label, str | bool | np.bool_):
        return "classification"
    return "regression"


def performance_metrics(
    task: Task, labels: Iterable[Any], predictions: Iterable[Any]
) -> dict[str, float | None]:
    """Performance of full columns of labels and predictions (e.g. a reference).

    Parameters
    ----------
    task
        ``"classification"`` or ``"regression"``.
    labels
        Raw labels; a null (``None`` or NaN) leaves its row out.
    predictions
        Raw predictions (scalars or class -> probability maps); a null
        leaves its row out.

    Returns
    -------
    dict
        Classification: ``accuracy``, ``f1_macro`` and ``roc_auc``;
        regression: ``mae`` and ``rmse``. ``None`` for a metric that is
        undefined (no rows; AUC without probability maps or with one class).

    Notes
    -----
    Classification compares :func:`monitor.values.category_key` of the
    label with :func:`predicted_class` of the prediction (the argmax of a
    map, ties to the smallest key), then applies :func:`accuracy` and
    :func:`f1_macro`. ``roc_auc`` is :func:`roc_auc_ovr` over the rows whose
    prediction is a map. Regression applies :func:`mae` and :func:`rmse` to
    the values as floats.

    Examples
    --------
    >>> performance_metrics("classification", ["yes", "no", "yes"],
    ...                     [{"yes": 0.9, "no": 0.1}, {"yes": 0.3, "no": 0.7}, "no"])
    {'accuracy': 0.6666666666666666, 'f1_macro': 0.6666666666666666, 'roc_auc': 1.0}
    >>> performance_metrics("regression", [1.0, 2.0, None], [1.5, 2.5, 9.0])
    {'mae': 0.5, 'rmse': 0.5}
    """
    label_list = list(labels)
    prediction_list = list(predictions)
    if len(label_list) != len(prediction_list):
        raise ValueError(f"{len(label_list)} labels but {len(prediction_list)} predictions")
    if task == "classification":
        truth: list[str] = []
        guess: list[str] = []
        scored_truth: list[str | None] = []
        scored_maps: list[Mapping[str, float]] = []
        for label, prediction in zip(label_list, prediction_list, strict=True):
            label_key = category_key(label)
            guess_key = None if _is_null(prediction) else predicted_class(prediction)
            if label_key is None or guess_key is None:
                continue
            truth.append(label_key)
            guess.append(guess_key)
            if isinstance(prediction, dict):
                scored_truth.append(label_key)
                scored_maps.append(prediction)
        counts = confusion_counts(np.array(truth, dtype=object), np.array(guess, dtype=object))
        return {
            "accuracy": finite_or_none(accuracy_from_counts(counts)),
            "f1_macro": finite_or_none(f1_macro_from_counts(counts)),
            "roc_auc": roc_auc_ovr(scored_truth, scored_maps) if scored_maps else None,
        }
    if task == "regression":
        actual = np.array([_number(v, "label") for v in label_list], dtype=np.float64)
        estimate = np.array([_number(v, "prediction") for v in prediction_list], dtype=np.float64)
        keep = ~(np.isnan(actual) | np.isnan(estimate))
        return {
            "mae": finite_or_none(mae(actual[keep], estimate[keep])),
            "rmse": finite_or_none(rmse(actual[keep], estimate[keep])),
        }
    raise ValueError(f"unknown task {task!r}")


def _key_list(values: npt.ArrayLike) -> list[Any]:
    if isinstance(values, list):
        return values
    array = np.asarray(values, dtype=object)
    return list(array.ravel().tolist())


def _errors(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> FloatArray:
    actual = np.asarray(labels, dtype=np.float64).ravel()
    estimate = np.asarray(predictions, dtype=np.float64).ravel()
    if actual.size != estimate.size:
        raise ValueError(f"{actual.size} labels but {estimate.size} predictions")
    return actual - estimate


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def _number(value: Any, what: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, dict | str):
        raise ValueError(f"a regression {what} must be a number, got {value!r}")
    return float(value)
