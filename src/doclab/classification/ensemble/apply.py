"""Applying a fitted ensemble: member class probabilities -> ensemble probabilities, numpy only.

Shapes: K ensemble members (every sub-member of every file, e.g. each snapshot), N images, C classes.
Every combiner returns (N, C) rows that sum to 1, so `argmax` is the ensemble's prediction. Fitting
lives in `methods` (scipy, scikit-learn); this module is what the torch-free deployment runtime needs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("mean", "weighted", "vote", "stacking")  # simplest first: auto's tie-break order
# Probabilities are floored before taking logs: a member that is certain (p = 0 after float32
# rounding) must not give -inf features or an infinite log-loss.
PROBABILITY_FLOOR = 1.0e-7


def mean_probs(probs: np.ndarray) -> np.ndarray:
    """(K, N, C) -> (N, C): the plain average of the members' probabilities."""
    return probs.mean(axis=0)


def weighted_probs(probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(K, N, C), (K,) non-negative weights summing to 1 -> (N, C) weighted average."""
    return np.tensordot(np.asarray(weights, dtype=np.float64), probs, axes=1)


def vote_probs(probs: np.ndarray) -> np.ndarray:
    """Majority vote of the members' argmaxes, ties broken by the summed probability.

    Returns (votes + mean probability) / (K + 1): one vote more always outweighs any
    difference in mean probability (< 1), and the rows still sum to 1.

    Args:
        probs: (K, N, C) member probabilities.
    Returns:
        (N, C) vote scores.
    """
    num_members, _, num_classes = probs.shape
    votes = np.eye(num_classes)[probs.argmax(axis=2)].sum(axis=0)  # (N, C)
    return (votes + mean_probs(probs)) / (num_members + 1)


@dataclass(frozen=True)
class StackingModel:
    """A multinomial logistic regression on member log-probabilities, as plain arrays.

    Attributes:
        coef: (R, K*C) one row per class in `labels`.
        intercept: (R,).
        labels: (R,) the class indices the rows score (the classes present when fitting).
    """

    coef: np.ndarray
    intercept: np.ndarray
    labels: np.ndarray


def stacking_features(probs: np.ndarray) -> np.ndarray:
    """(K, N, C) probabilities -> (N, K*C) log-probabilities, member-major."""
    logs = np.log(np.maximum(probs, PROBABILITY_FLOOR))
    return logs.transpose(1, 0, 2).reshape(probs.shape[1], -1)


def _log_softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of (N, R) scores, shifted by the row maximum (scipy.special.log_softmax's formula)."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def stacking_probs(model: StackingModel, probs: np.ndarray) -> np.ndarray:
    """Apply a `StackingModel`.

    Args:
        model: from `fit_stacking` (or rebuilt from its JSON lists).
        probs: (K, N, C) member probabilities.
    Returns:
        (N, C) probabilities; classes absent when fitting get 0.
    """
    scores = stacking_features(probs) @ model.coef.T + model.intercept
    out = np.zeros((probs.shape[1], probs.shape[2]))
    out[:, model.labels] = np.exp(_log_softmax(scores))
    return out


def apply_ensemble(model: dict, member_probs: np.ndarray) -> np.ndarray:
    """Combine member probabilities with a model saved by the `ensemble` stage.

    Args:
        model: the dict in models/ensemble.json.
        member_probs: (K, N, C) probabilities of `model["sub_members"]` in that order, already
            averaged over the `model["tta"]` views (see `view_probabilities`).
    Returns:
        (N, C) ensemble probabilities.
    Raises:
        ValueError: a member or class count that does not match the model.
    """
    member_probs = np.asarray(member_probs, dtype=np.float64)
    expected = (len(model["sub_members"]), len(model["classes"]))
    if member_probs.ndim != 3 or (member_probs.shape[0], member_probs.shape[2]) != expected:
        raise ValueError(f"apply_ensemble: member probabilities {member_probs.shape} do not match the model's "
                         f"(sub-members, images, classes) = ({expected[0]}, N, {expected[1]})")
    method = model["method"]
    if method == "mean":
        return mean_probs(member_probs)
    if method == "weighted":
        return weighted_probs(member_probs, np.asarray(model["weights"]))
    if method == "vote":
        return vote_probs(member_probs)
    if method == "stacking":
        stacking = model["stacking"]
        return stacking_probs(StackingModel(np.asarray(stacking["coef"]), np.asarray(stacking["intercept"]),
                                                  np.asarray(stacking["labels"], dtype=np.int64)), member_probs)
    raise ValueError(f"apply_ensemble: unknown method {method!r}, expected one of {METHODS}")
