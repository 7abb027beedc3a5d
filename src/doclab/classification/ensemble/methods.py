"""Ensemble combiners: small pure functions from per-member class probabilities to ensemble probabilities.

Shapes: K ensemble members (every sub-member of every file, e.g. each snapshot), N images, C classes.
Every combiner returns (N, C) rows that sum to 1, so `argmax` is the ensemble's prediction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from doclab.classification.ensemble.apply import (
    PROBABILITY_FLOOR,
    StackingModel,
    stacking_features,
    weighted_probs,
)
from doclab.data.records import DataError

STACKING_MAX_ITER = 5000


class StackingUnavailable(DataError):
    """Too few validation images to cross-validate stacking (and no out-of-fold logits)."""


def view_probabilities(logits: np.ndarray, views: list[int]) -> np.ndarray:
    """Softmax over classes, then the mean over the selected TTA views.

    Args:
        logits: (M, V, N, C) sub-member x view x image x class.
        views: indices into the V axis.
    Returns:
        (M, N, C) float64 probabilities.
    """
    return softmax(np.asarray(logits, dtype=np.float64)[:, views], axis=-1).mean(axis=1)


def fit_weights(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Member weights minimising the log-loss of `weighted_probs` on labelled images.

    The weights are softmax(theta), so they stay non-negative and sum to 1 without constraints;
    L-BFGS starts from equal weights (theta = 0), which makes the fit deterministic.

    Args:
        probs: (K, N, C) member probabilities.
        labels: (N,) true class indices.
    Returns:
        (K,) float64 weights.
    """
    true_probs = np.maximum(probs[:, np.arange(len(labels)), labels], PROBABILITY_FLOOR)  # (K, N)

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        weights = softmax(theta)
        mixed = weights @ true_probs  # (N,)
        grad_weights = -(true_probs / mixed).mean(axis=1)  # d loss / d weight_k
        # Chain rule through the softmax: d w_j / d theta_k = w_j (delta_jk - w_k).
        return float(-np.log(mixed).mean()), weights * (grad_weights - weights @ grad_weights)

    result = minimize(loss_and_grad, np.zeros(len(probs)), jac=True, method="L-BFGS-B")
    return softmax(result.x)


def _logistic_regression(c: float, seed: int) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=STACKING_MAX_ITER, random_state=seed)


def fit_stacking(probs: np.ndarray, labels: np.ndarray, c: float, seed: int) -> StackingModel:
    """Fit the stacking regression on all given images.

    Args:
        probs: (K, N, C) member probabilities.
        labels: (N,) true class indices (at least two classes).
        c: inverse regularisation strength.
        seed: random_state of the estimator (lbfgs is deterministic anyway).
    Returns:
        The fitted `StackingModel`; a binary fit becomes two rows (first row zero), which
        gives the same probabilities as scikit-learn's sigmoid.
    """
    if len(np.unique(labels)) < 2:
        raise StackingUnavailable("stacking: the training labels hold a single class, need at least two")
    model = _logistic_regression(c, seed).fit(stacking_features(probs), labels)
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
    return StackingModel(coef.astype(np.float64), intercept.astype(np.float64), model.classes_.astype(np.int64))


def stacking_folds(labels: np.ndarray, cv_folds: int) -> int:
    """Cross-validation folds for stacking on validation: `cv_folds`, reduced to the smallest class count.

    Raises:
        StackingUnavailable: fewer than two classes, or a class with a single image (no
            fold split can then train on every class).
    """
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2 or counts.min() < 2:
        raise StackingUnavailable(
            f"stacking: validation too small to cross-validate ({len(labels)} images, smallest class "
            f"{int(counts.min()) if len(counts) else 0} image(s), {len(classes)} class(es)); train members with "
            "classifier.folds > 1 for out-of-fold logits, or choose another ensemble.method")
    return int(min(cv_folds, counts.min()))


def stacking_cv_probs(probs: np.ndarray, labels: np.ndarray, c: float, folds: int, seed: int) -> np.ndarray:
    """Out-of-fold stacking probabilities on the images themselves (seeded stratified folds).

    Args:
        probs: (K, N, C) member probabilities.
        labels: (N,) true class indices.
        c: inverse regularisation strength.
        folds: from `stacking_folds`.
        seed: shuffles the folds.
    Returns:
        (N, C) probabilities, each image scored by a model that never saw it.
    """
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(_logistic_regression(c, seed), stacking_features(probs), labels,
                                  cv=splitter, method="predict_proba")
    out = np.zeros((probs.shape[1], probs.shape[2]))
    out[:, np.unique(labels)] = predicted  # predict_proba columns are the sorted classes seen
    return out
