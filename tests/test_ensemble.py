"""The ensemble stage on hand-made logits files: every method, auto selection, TTA views, input checks,
re-applying the saved model, and byte-identical reruns."""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from doclab.classification.ensemble import apply as ea
from doclab.classification.ensemble import methods as em
from doclab.classification.ensemble.combine import apply_ensemble, choose_method, load_member_probs
from doclab.classification.logits import MemberLogits, SplitLogits, load_logits, save_logits
from doclab.config import Params, build
from doclab.data.records import DataError
from doclab.pipeline.ensemble import run_ensemble

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("invoice", "receipt", "letter")


def as_logits(probs: np.ndarray) -> np.ndarray:
    """Probabilities -> logits whose softmax gives them back; (N, C) becomes (1, 1, N, C)."""
    probs = np.asarray(probs, dtype=np.float64)
    probs = probs if probs.ndim == 4 else probs[None, None]
    return np.log(np.maximum(probs, 1e-9))


def split(probs: np.ndarray, labels, prefix: str = "img") -> SplitLogits:
    labels = np.asarray(labels, dtype=np.int64)
    return SplitLogits(np.array([f"{prefix}{i:03d}" for i in range(len(labels))]), labels, as_logits(probs))


def write_member(folder: Path, name: str, splits: dict[str, SplitLogits], names=None, views=("identity",),
                 classes=CLASSES) -> Path:
    path = folder / f"{name}.npz"
    save_logits(path, MemberLogits(tuple(classes), tuple(names or (name,)), tuple(views), splits))
    return path


def confident(predicted, num_classes: int = 3, p: float = 0.9) -> np.ndarray:
    """(N, C) probabilities putting `p` on each predicted class, the rest spread evenly."""
    probs = np.full((len(predicted), num_classes), (1 - p) / (num_classes - 1))
    probs[np.arange(len(predicted)), predicted] = p
    return probs


def noisy_probs(labels: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    logits = 2.0 * np.eye(3)[labels] + rng.normal(0, noise, (len(labels), 3))
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def noisy_members(folder: Path, noises=(1.0, 1.5, 2.0), oof: bool = False) -> list[str]:
    """Members of increasing noise on 30 val / 24 test (/ 36 oof) images of 3 balanced classes."""
    rng = np.random.default_rng(0)
    sets = {"val": np.arange(30) % 3, "test": np.arange(24) % 3} | ({"oof": np.arange(36) % 3} if oof else {})
    names = [f"m{i}" for i in range(len(noises))]
    for name, noise in zip(names, noises):
        write_member(folder, name, {s: split(noisy_probs(y, noise, rng), y, s) for s, y in sets.items()})
    return names


def params_for(members: list[str], **ensemble) -> Params:
    return build(Params, {"seed": 3, "classifier": {"members": members}, "ensemble": ensemble})


def run(tmp_path: Path, members: list[str], out: str = "out", **ensemble) -> tuple[dict, dict]:
    """run_ensemble on `tmp_path/logits`; returns (model, metrics) as read back from the JSON files."""
    target = tmp_path / out
    run_ensemble(params_for(members, **ensemble), tmp_path / "logits", target / "ensemble.json",
                 target / "metrics.json", target / "plots")
    return (json.loads((target / "ensemble.json").read_text()), json.loads((target / "metrics.json").read_text()))


def test_vote_differs_from_mean_and_ties_go_to_the_summed_probability():
    unsure, sure = [0.45, 0.55], [0.99, 0.01]
    probs = np.array([[unsure], [unsure], [sure]])  # (K=3, N=1, C=2)
    assert ea.mean_probs(probs).argmax(axis=1).tolist() == [0]
    assert ea.vote_probs(probs).argmax(axis=1).tolist() == [1]
    tied = np.array([[[0.6, 0.4], [0.9, 0.1]], [[0.1, 0.9], [0.4, 0.6]]])  # one vote each for both images
    assert ea.vote_probs(tied).argmax(axis=1).tolist() == [1, 0]
    np.testing.assert_allclose(ea.vote_probs(probs).sum(axis=1), 1.0)


def test_weighted_puts_the_weight_on_the_only_good_member():
    rng = np.random.default_rng(1)
    labels = np.arange(60) % 3
    good = confident(labels, p=0.8)
    bad = confident(rng.integers(0, 3, 60), p=0.8)
    weights = em.fit_weights(np.stack([bad, good, bad[::-1]]), labels)
    assert weights.min() >= 0 and weights.sum() == pytest.approx(1.0)
    assert weights[1] > 0.95
    assert np.array_equal(weights, em.fit_weights(np.stack([bad, good, bad[::-1]]), labels))  # deterministic


@pytest.mark.parametrize("num_classes", [2, 3])
def test_stacking_model_reproduces_scikit_learn(num_classes):
    rng = np.random.default_rng(num_classes)
    labels = np.arange(40) % num_classes
    probs = rng.dirichlet(np.ones(num_classes), size=(2, 40))
    model = em.fit_stacking(probs, labels, c=1.0, seed=0)
    reference = LogisticRegression(C=1.0, max_iter=em.STACKING_MAX_ITER).fit(ea.stacking_features(probs), labels)
    np.testing.assert_allclose(ea.stacking_probs(model, probs),
                               reference.predict_proba(ea.stacking_features(probs)), atol=1e-8)


def test_stacking_learns_what_averaging_cannot(tmp_path):
    """A member that always names the next class: stacking undoes the shift, mean/vote cannot."""
    folder = tmp_path / "logits"
    val_y, test_y, oof_y = np.arange(30) % 3, np.arange(24) % 3, np.arange(45) % 3
    shifted = {s: split(confident((y + 1) % 3), y, s) for s, y in (("val", val_y), ("test", test_y))}
    write_member(folder, "shifted", shifted)
    model, metrics = run(tmp_path, ["shifted"])
    assert metrics["val"]["mean"]["accuracy"] == 0.0 and metrics["val"]["vote"]["accuracy"] == 0.0
    assert metrics["val"]["stacking"]["accuracy"] == 1.0  # cross-validated on val
    assert metrics["chosen"] == "stacking" and model["stacking"]["trained_on"] == "val"
    assert metrics["test"]["stacking"]["accuracy"] == 1.0
    write_member(folder, "shifted", shifted | {"oof": split(confident((oof_y + 1) % 3), oof_y, "oof")})
    model, metrics = run(tmp_path, ["shifted"])
    assert model["stacking"]["trained_on"] == "oof"
    assert metrics["val"]["stacking"]["accuracy"] == 1.0 and metrics["test"]["stacking"]["accuracy"] == 1.0


def test_stacking_on_a_tiny_validation_set_is_skipped_or_refused(tmp_path):
    val_y = np.array([0, 0, 1, 1, 2])  # "letter" has a single validation image: no stratified folds
    write_member(tmp_path / "logits", "m", {"val": split(confident(val_y), val_y),
                                            "test": split(confident(val_y), val_y)})
    model, metrics = run(tmp_path, ["m"])
    assert "stacking" not in metrics["val"] and set(metrics["val"]) == {"mean", "weighted", "vote", "member/m"}
    assert "classifier.folds > 1" in model["skipped"]["stacking"]
    with pytest.raises(DataError, match="validation too small"):
        run(tmp_path, ["m"], out="forced", method="stacking")
    assert not (tmp_path / "forced").exists()


def test_auto_prefers_the_best_then_the_simplest():
    def scores(*f1s):
        return {m: {"macro_f1": f, "accuracy": f} for m, f in zip(("mean", "weighted", "vote", "stacking"), f1s)}
    assert choose_method(scores(0.8, 0.8, 0.9, 0.9), "auto") == "vote"
    assert choose_method(scores(0.7, 0.7, 0.7, 0.7), "auto") == "mean"
    assert choose_method(scores(0.7, 0.9, 0.7, 0.8), "auto") == "weighted"
    assert choose_method(scores(0.9, 0.7, 0.7, 0.7), "stacking") == "stacking"


def test_auto_and_forced_methods_end_to_end(tmp_path):
    members = noisy_members(tmp_path / "logits")
    _, auto = run(tmp_path, members)
    best = max(auto["val"][m]["macro_f1"] for m in ("mean", "weighted", "vote", "stacking"))
    assert auto["val"][auto["chosen"]]["macro_f1"] == best
    model, forced = run(tmp_path, members, out="forced", method="vote")
    assert forced["chosen"] == model["method"] == "vote"
    assert set(forced["test"]) == {"vote", "member/m0", "member/m1", "member/m2"}
    assert forced["val"] == auto["val"]  # every method is still scored next to the forced one


def test_identical_members_tie_and_auto_takes_mean(tmp_path):
    labels = np.arange(12) % 3
    for name in ("a", "b"):
        write_member(tmp_path / "logits", name, {"val": split(confident(labels), labels),
                                                 "test": split(confident(labels), labels)})
    model, metrics = run(tmp_path, ["a", "b"])
    assert metrics["val"]["mean"]["macro_f1"] == metrics["val"]["weighted"]["macro_f1"] == 1.0
    assert metrics["chosen"] == model["method"] == "mean" and "weights" not in model


def test_tta_averages_exactly_the_selected_views(tmp_path):
    rng = np.random.default_rng(5)
    views = ("identity", "hflip", "vflip", "rot90")
    logits = rng.normal(0, 2, (1, 4, 6, 3))
    labels = np.arange(6) % 3
    parts = {s: SplitLogits(np.array([f"{s}{i}" for i in range(6)]), labels, logits) for s in ("val", "test")}
    path = tmp_path / "m.npz"
    save_logits(path, MemberLogits(CLASSES, ("m",), views, parts))
    exp = np.exp(logits.astype(np.float32).astype(np.float64))
    per_view = exp / exp.sum(axis=-1, keepdims=True)  # (1, 4, 6, 3)
    for tta, selected in (("none", [0]), ("flips", [0, 1, 2])):
        probs = load_member_probs({"m": path}, tta).splits["val"].probs
        np.testing.assert_allclose(probs, per_view[:, selected].mean(axis=1), rtol=1e-10)
    with pytest.raises(ValueError, match=rf"{path}: no TTA view 'rot180'"):
        load_member_probs({"m": path}, "rot90")


def test_logits_file_round_trips_and_equal_logits_give_equal_bytes(tmp_path):
    labels = np.arange(6) % 3
    parts = {s: split(confident(labels), labels) for s in ("val", "test")}
    member = MemberLogits(CLASSES, ("m",), ("identity",), parts)
    save_logits(tmp_path / "a.npz", member)
    time.sleep(2.1)  # zip timestamps have 2 s resolution: a stamped clock would now differ
    save_logits(tmp_path / "b.npz", member)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    loaded = load_logits(tmp_path / "a.npz")
    assert loaded.classes == CLASSES and loaded.names == ("m",) and loaded.views == ("identity",)
    for name in ("val", "test"):
        np.testing.assert_array_equal(loaded.splits[name].ids, parts[name].ids)
        np.testing.assert_array_equal(loaded.splits[name].labels, parts[name].labels)
        np.testing.assert_array_equal(loaded.splits[name].logits, parts[name].logits.astype(np.float32))


def test_snapshots_count_as_separate_members(tmp_path):
    labels = np.arange(9) % 3
    two = np.stack([confident(labels), confident((labels + 1) % 3)])[:, None]  # (M=2, V=1, N, C)
    parts = {s: split(two, labels) for s in ("val", "test")}
    write_member(tmp_path / "logits", "r18", parts, names=("r18@epoch8", "r18@epoch9"))
    write_member(tmp_path / "logits", "eff", {s: split(confident(labels), labels) for s in ("val", "test")})
    model, metrics = run(tmp_path, ["r18", "eff"], method="weighted")
    assert model["members"] == ["r18", "eff"]
    assert model["sub_members"] == ["r18@epoch8", "r18@epoch9", "eff"] and len(model["weights"]) == 3
    assert metrics["val"]["member/r18@epoch9"]["accuracy"] == 0.0
    assert metrics["val"]["member/r18@epoch8"]["accuracy"] == 1.0


@pytest.mark.parametrize("change, message", [
    ({"classes": ("invoice", "receipt", "form")}, "classes"),
    ({"val_ids": "other"}, "val image ids differ"),
    ({"test_labels": True}, "test labels differ"),
])
def test_files_that_disagree_are_named(tmp_path, change, message):
    labels = np.arange(6) % 3
    folder = tmp_path / "logits"
    write_member(folder, "a", {s: split(confident(labels), labels, s) for s in ("val", "test")})
    test_labels = (labels + 1) % 3 if change.get("test_labels") else labels
    write_member(folder, "b", {"val": split(confident(labels), labels, change.get("val_ids", "val")),
                               "test": split(confident(labels), test_labels, "test")},
                 classes=change.get("classes", CLASSES))
    with pytest.raises(DataError, match=rf"^{folder / 'b.npz'}: {message}"):
        run(tmp_path, ["a", "b"])


def test_missing_logits_file_is_named(tmp_path):
    noisy_members(tmp_path / "logits", noises=(1.0,))
    with pytest.raises(FileNotFoundError, match=r"m9\.npz: logits file of classifier member 'm9' not found"):
        run(tmp_path, ["m0", "m9"])


@pytest.mark.parametrize("method", ["mean", "weighted", "vote", "stacking"])
def test_saved_model_reproduces_the_test_predictions(tmp_path, method):
    """Re-apply models/ensemble.json with `apply_ensemble` and check it against an independent computation."""
    members = noisy_members(tmp_path / "logits", oof=method == "stacking")
    model, metrics = run(tmp_path, members, method=method, tta="none")
    inputs = load_member_probs({m: tmp_path / "logits" / f"{m}.npz" for m in members}, model["tta"])
    test, train = inputs.splits["test"], inputs.splits.get("oof")
    predicted = apply_ensemble(model, test.probs).argmax(axis=1)
    if method == "mean":
        expected = test.probs.sum(axis=0).argmax(axis=1)
    elif method == "weighted":
        expected = np.average(test.probs, axis=0, weights=model["weights"]).argmax(axis=1)
    elif method == "vote":
        votes = np.eye(3)[test.probs.argmax(axis=2)].sum(axis=0)
        expected = np.array([max(range(3), key=lambda c: (votes[n, c], test.probs[:, n, c].sum()))
                             for n in range(len(votes))])
    else:
        reference = LogisticRegression(C=1.0, max_iter=em.STACKING_MAX_ITER)
        reference.fit(ea.stacking_features(train.probs), train.labels)
        expected = reference.predict(ea.stacking_features(test.probs))
    assert predicted.tolist() == expected.tolist()
    assert metrics["test"][method]["accuracy"] == pytest.approx(np.mean(predicted == test.labels))


def test_outputs_are_byte_identical_on_rerun(tmp_path):
    members = noisy_members(tmp_path / "logits")
    run(tmp_path, members, out="first")
    run(tmp_path, members, out="second")
    for name in ("ensemble.json", "metrics.json", "plots/scores.json"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name
    rows = json.loads((tmp_path / "first" / "plots" / "scores.json").read_text())
    assert [row["name"] for row in rows] == ["mean", "weighted", "vote", "stacking",
                                             "member/m0", "member/m1", "member/m2"]
    assert (tmp_path / "first" / "plots" / "scores.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_stage_script_summary_and_one_line_error(tmp_path):
    noisy_members(tmp_path / "logits", noises=(1.0, 1.5))
    params = tmp_path / "params.yaml"

    def stage(members: list[str]) -> subprocess.CompletedProcess:
        params.write_text("classifier:\n  members:\n" + "".join(f"  - {m}\n" for m in members), encoding="utf-8")
        return subprocess.run(
            [sys.executable, str(REPO / "stages" / "ensemble.py"), "--params", str(params), "--logits",
             str(tmp_path / "logits"), "--model", str(tmp_path / "ensemble.json"), "--metrics",
             str(tmp_path / "metrics.json"), "--plots", str(tmp_path / "plots")], capture_output=True, text=True)

    result = stage(["m0", "m1"])
    assert result.returncode == 0, result.stderr
    chosen = json.loads((tmp_path / "metrics.json").read_text())["chosen"]
    assert result.stdout.startswith(f"ensemble: {chosen}: val macro-F1 ") and len(result.stdout.splitlines()) == 1
    before = (tmp_path / "metrics.json").read_bytes()
    result = stage(["m0", "m1"])
    assert (tmp_path / "metrics.json").read_bytes() == before  # a fresh process gives the same bytes
    result = stage(["m0", "m1", "m2"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'logits' / 'm2.npz'}: logits file of classifier member 'm2' not found"]
    assert (tmp_path / "metrics.json").read_bytes() == before  # the failed run left the outputs alone


def test_a_data_set_without_test_split_is_scored_on_val_only(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.arange(30) % 3
    empty = np.zeros(0, np.int64)
    for name, noise in (("m0", 1.0), ("m1", 2.0)):
        write_member(tmp_path / "logits", name, {"val": split(noisy_probs(labels, noise, rng), labels, "val"),
                                                 "test": split(np.zeros((0, 3)), empty, "test")})
    model, metrics = run(tmp_path, ["m0", "m1"])
    assert metrics["test"] == {}
    assert metrics["chosen"] == model["method"] and 0.0 < metrics["val"][metrics["chosen"]]["macro_f1"] <= 1.0
    assert {"member/m0", "member/m1"} <= set(metrics["val"])
