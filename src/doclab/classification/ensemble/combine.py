"""Stage `ensemble`: the classifier members' logits files -> an ensemble model, its metrics and a score plot.

Each member file (`models/classifier/<member>.npz`, see `doclab.classification.logits`) gives per
sub-member logits; softmax and the mean over the `ensemble.tta` views turn them into probabilities,
and every sub-member (e.g. each snapshot) is one ensemble member. The combiners in
`ensemble_methods` are scored on validation macro-F1; `ensemble.method: auto` keeps the best
(ties go to the simpler method, in `METHODS` order).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from doclab.classification.ensemble import methods as em
from doclab.classification.ensemble.apply import METHODS, apply_ensemble, stacking_probs
from doclab.classification.logits import TTA_VIEWS, MemberLogits, load_logits
from doclab.classification.no_data import refuse_marker
from doclab.config import EnsembleParams
from doclab.data.records import DataError
from doclab.io import read_json
from doclab.metrics.classification import ClassificationMetric



@dataclass(frozen=True)
class SplitProbs:
    """One split's member probabilities.

    Attributes:
        ids: (N,) image ids.
        labels: (N,) int64 true class indices.
        probs: (K, N, C) float64, ensemble member x image x class.
    """

    ids: np.ndarray
    labels: np.ndarray
    probs: np.ndarray


@dataclass(frozen=True)
class EnsembleInputs:
    """All members' probabilities, checked to agree on classes and images.

    Attributes:
        classes: (C,) class names.
        members: the files' member names.
        sub_members: (K,) ensemble member names, file by file.
        splits: "val", "test" and, when every file has it, "oof".
    """

    classes: tuple[str, ...]
    members: tuple[str, ...]
    sub_members: tuple[str, ...]
    splits: dict[str, SplitProbs]


def _file_probs(path: Path, member: MemberLogits, tta: str) -> dict[str, np.ndarray]:
    """{split: (M, N, C) probabilities averaged over the `tta` views} of one file."""
    missing = [view for view in TTA_VIEWS[tta] if view not in member.views]
    if missing:
        raise DataError(f"{path}: no TTA view {missing[0]!r} (ensemble.tta {tta!r} needs "
                        f"{', '.join(TTA_VIEWS[tta])}; the file has {', '.join(member.views)})")
    for split in ("val", "test"):
        if split not in member.splits:
            raise DataError(f"{path}: no {split!r} split in the logits file")
    views = [member.views.index(view) for view in TTA_VIEWS[tta]]
    return {split: em.view_probabilities(part.logits, views) for split, part in member.splits.items()}


def _check_agrees(path: Path, member: MemberLogits, first_path: Path, first: MemberLogits, splits: list[str]) -> None:
    """One-line DataError naming `path` when its classes or images differ from the first file's."""
    if member.classes != first.classes:
        raise DataError(f"{path}: classes {list(member.classes)} differ from {first_path}'s {list(first.classes)}")
    for split in splits:
        mine, theirs = member.splits[split], first.splits[split]
        if not np.array_equal(mine.ids, theirs.ids):
            raise DataError(f"{path}: {split} image ids differ from {first_path}'s (same images, same order expected)")
        if not np.array_equal(mine.labels, theirs.labels):
            raise DataError(f"{path}: {split} labels differ from {first_path}'s")


def load_member_probs(paths: dict[str, Path], tta: str) -> EnsembleInputs:
    """Read every member's logits file and turn it into probabilities.

    Args:
        paths: {member name: logits file}, in ensemble order.
        tta: a key of `TTA_VIEWS`.
    Returns:
        The `EnsembleInputs`; "oof" is kept only when every file has it.
    Raises:
        FileNotFoundError: a missing file (named).
        DataError: an invalid file, a missing view or split, files that disagree, duplicate sub-member names.
    """
    loaded = {}
    for name, path in paths.items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: logits file of classifier member {name!r} not found")
        try:
            loaded[name] = (Path(path), load_logits(path))
        except ValueError as exc:
            raise DataError(str(exc)) from None
    first_path, first = next(iter(loaded.values()))
    splits = ["val", "test"] + (["oof"] if all("oof" in m.splits for _, m in loaded.values()) else [])
    probs: dict[str, list[np.ndarray]] = {split: [] for split in splits}
    sub_members: list[str] = []
    for path, member in loaded.values():
        file_probs = _file_probs(path, member, tta)
        _check_agrees(path, member, first_path, first, splits)
        for name in member.names:
            if name in sub_members:
                raise DataError(f"{path}: sub-member name {name!r} already used by another file")
            sub_members.append(name)
        for split in splits:
            probs[split].append(file_probs[split])
    return EnsembleInputs(
        classes=first.classes, members=tuple(paths), sub_members=tuple(sub_members),
        splits={split: SplitProbs(first.splits[split].ids, first.splits[split].labels,
                                  np.concatenate(probs[split])) for split in splits})


# Keys every models/ensemble.json has (the method's own keys, weights or stacking, are checked on use).
ENSEMBLE_KEYS = ("method", "tta", "members", "sub_members", "classes")


def read_ensemble_file(path: Path) -> dict:
    """The one reader of models/ensemble.json: a mapping with `ENSEMBLE_KEYS` and a known TTA, else one DataError line.

    Raises:
        FileNotFoundError: no such file (run the ensemble stage).
        DataError: malformed JSON, not a mapping, a missing key, an unknown TTA, the "no classification
            data" marker (see `no_data`).
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no ensemble model (run the ensemble stage first)")
    model = read_json(path)
    refuse_marker(model, path)
    if not isinstance(model, dict):
        raise DataError(f"{path}: expected a JSON object (models/ensemble.json), got {type(model).__name__}")
    missing = [key for key in ENSEMBLE_KEYS if key not in model]
    if missing:
        raise DataError(f"{path}: missing key {missing[0]!r} (rerun the ensemble stage)")
    if model["tta"] not in TTA_VIEWS:
        raise DataError(f"{path}: tta {model['tta']!r} is not one of {', '.join(TTA_VIEWS)}")
    return model




def _fit_method(method: str, inputs: EnsembleInputs, params: EnsembleParams, seed: int) -> tuple[dict, np.ndarray]:
    """Fit one method. Returns (its model fields, (N_val, C) validation probabilities).

    Validation probabilities are in-sample for `weighted` (K weights fitted on validation) and
    out-of-sample for `stacking` (see `_fit_stacking`).
    """
    if method == "stacking":
        return _fit_stacking(inputs, params, seed)
    val = inputs.splits["val"]
    fields: dict = {"method": method}
    if method == "weighted":
        fields["weights"] = em.fit_weights(val.probs, val.labels).tolist()
    return fields, apply_ensemble({**fields, "sub_members": inputs.sub_members, "classes": inputs.classes},
                                  val.probs)


def _fit_stacking(inputs: EnsembleInputs, params: EnsembleParams, seed: int) -> tuple[dict, np.ndarray]:
    """Stacking trained on out-of-fold train logits and scored on validation when every file has them;
    otherwise scored by stratified cross-validation on validation and then fitted on all of it."""
    val, oof = inputs.splits["val"], inputs.splits.get("oof")
    if oof is None:
        folds = em.stacking_folds(val.labels, params.cv_folds)
        val_probs = em.stacking_cv_probs(val.probs, val.labels, params.stacking_c, folds, seed)
        stacking = em.fit_stacking(val.probs, val.labels, params.stacking_c, seed)
    else:
        stacking = em.fit_stacking(oof.probs, oof.labels, params.stacking_c, seed)
        val_probs = stacking_probs(stacking, val.probs)
    fields = {"method": "stacking", "stacking": {
        "coef": stacking.coef.tolist(), "intercept": stacking.intercept.tolist(),
        "labels": stacking.labels.tolist(), "trained_on": "val" if oof is None else "oof"}}
    return fields, val_probs


def _scores(classes: tuple[str, ...], probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """{"accuracy", "macro_f1"} of (N, C) probabilities against (N,) labels."""
    metric = ClassificationMetric(classes)
    metric.update(probs, labels)
    scores = metric.compute()
    return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}


def choose_method(val_scores: dict[str, dict[str, float]], forced: str) -> str:
    """`forced` unless it is "auto"; else the best validation macro-F1, ties to the earliest in `METHODS`."""
    if forced != "auto":
        return forced
    candidates = [m for m in METHODS if m in val_scores]
    return max(candidates, key=lambda m: (val_scores[m]["macro_f1"], -candidates.index(m)))


def fit_ensemble(inputs: EnsembleInputs, params: EnsembleParams, seed: int) -> tuple[dict, dict]:
    """Score every method on validation, choose one, score it and the members on test (when there is one).

    Args:
        inputs: from `load_member_probs`.
        params: `params.ensemble`.
        seed: `params.seed` (stacking folds).
    Returns:
        (model dict for models/ensemble.json, metrics dict for metrics/ensemble.json).
    Raises:
        StackingUnavailable: `method: stacking` forced on a validation set too small to cross-validate.
    """
    val, test = inputs.splits["val"], inputs.splits["test"]
    fitted, skipped = {}, {}
    for method in METHODS:
        try:
            fitted[method] = _fit_method(method, inputs, params, seed)
        except em.StackingUnavailable as exc:
            if params.method == method:
                raise
            skipped[method] = str(exc)
    val_scores = {m: _scores(inputs.classes, probs, val.labels) for m, (_, probs) in fitted.items()}
    chosen = choose_method(val_scores, params.method)
    model = {**fitted[chosen][0], "tta": params.tta, "members": list(inputs.members),
             "sub_members": list(inputs.sub_members), "classes": list(inputs.classes),
             "val_macro_f1": val_scores[chosen]["macro_f1"], "skipped": skipped}
    has_test = len(test.labels) > 0  # a data set without a test split (train + val only) scores val alone
    test_scores = {chosen: _scores(inputs.classes, apply_ensemble(model, test.probs), test.labels)} if has_test else {}
    for index, name in enumerate(inputs.sub_members):
        val_scores[f"member/{name}"] = _scores(inputs.classes, val.probs[index], val.labels)
        if has_test:
            test_scores[f"member/{name}"] = _scores(inputs.classes, test.probs[index], test.labels)
    return model, {"chosen": chosen, "val": val_scores, "test": test_scores}
