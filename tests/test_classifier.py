"""Document-type classifiers: labels, class balance, TTA views, losses, freezing, end-to-end member training."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
import yaml
from conftest import draw_document, kill_after_first_checkpoint, layout_boxes, write_image
from huggingface_hub import constants as hub_constants

from doclab.classification.data import (
    ClassificationDataset,
    apply_view,
    build_eval_transform,
    build_train_transform,
    class_weights,
    fold_indices,
    load_labelled_splits,
)
from doclab.classification.logits import VIEWS, load_logits
from doclab.classification.losses import cross_entropy_loss, focal_loss, mix_batch, soft_targets
from doclab.classification.model import (
    FineTuneSchedule,
    build_classifier,
    freeze_backbone,
    load_classifier,
    unfreeze,
)
from doclab.config import ClassifierAugmentParams, ConfigError, Params, build, to_dict
from doclab.data.records import DataError
from doclab.engine.checkpoint import load_checkpoint
from doclab.engine.loading import reseed
from doclab.engine.optim import build_optimizer
from doclab.engine.timm_models import hub_reachable
from doclab.pipeline.train_classifier import train_classifier

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("form", "letter", "receipt")
TINY = "mobilenetv3_small_050"


def write_processed(root: Path, per_class: int = 6, classes: tuple[str, ...] = CLASSES) -> Path:
    """A processed folder: `per_class` images per class (each class its own page shape and word count),
    split 4:1:1 per class, plus one unlabelled image in train."""
    rng = np.random.default_rng(0)
    shapes = [(48, 64, 3), (64, 48, 6), (32, 72, 10)]
    rows, splits = [], {"train": [], "val": [], "test": []}
    for c, name in enumerate(classes):
        width, height, words = shapes[c % len(shapes)]
        for i in range(per_class):
            key = f"docs/{name}_{i}.jpg"
            write_image(root / "images" / key,
                        draw_document(width, height, layout_boxes(width, height, words, rng), seed=100 * c + i))
            rows.append(f"{key},{name}")
            split = "val" if i % 6 == 4 else "test" if i % 6 == 5 else "train"
            splits[split].append(key)
    write_image(root / "images" / "docs/unlabelled.jpg", draw_document(48, 64, [], seed=1))
    splits["train"].append("docs/unlabelled.jpg")
    (root / "labels.csv").write_text("ID,target\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (root / "classes.json").write_text(json.dumps(sorted(classes)), encoding="utf-8")
    (root / "splits.json").write_text(json.dumps(splits), encoding="utf-8")
    return root


@pytest.fixture
def processed(tmp_path) -> Path:
    return write_processed(tmp_path / "processed")


def tiny_params(**changes) -> Params:
    """CPU params for a 2-epoch member at 32 px; `changes` are classifier fields (`train` a dict of its fields)."""
    train = {"epochs": 2, "effective_batch": 4, "workers": 0, "lr": 3.0e-3, **changes.pop("train", {})}
    classifier = {"members": [TINY, "resnet18"], "image_size": 32, "batch_size": 4, "snapshots": 1, "train": train,
                  **changes}
    return build(Params, {"seed": 3, "device": "cpu", "classifier": classifier})


def run_member(params: Params, data: Path, out: Path, member: str = TINY) -> dict:
    return train_classifier(params, member, data, out / "model.pt", out / "logits.npz", out / "metrics.json",
                            out / "ckpt", out / "live")


def test_labels_skip_unlabelled_images(processed):
    table = load_labelled_splits(processed)
    assert table.classes == CLASSES
    assert "docs/unlabelled.jpg" not in table.ids["train"] and len(table.ids["train"]) == 12
    dataset = ClassificationDataset(processed, "val", 40, build_eval_transform(40))
    image, label = dataset[0]
    assert image.shape == (3, 40, 40) and image.dtype == torch.float32
    assert CLASSES[label] == dataset.ids[0].split("/")[1].split("_")[0]


def test_unknown_label_is_a_data_error_naming_file_and_class(processed):
    with open(processed / "labels.csv", "a", encoding="utf-8") as f:
        f.write("docs/unlabelled.jpg,postcard\n")
    with pytest.raises(DataError, match=r"labels\.csv: class 'postcard' is not in classes\.json") as err:
        load_labelled_splits(processed)
    assert "\n" not in str(err.value)


def test_class_without_training_images_is_a_data_error(processed):
    (processed / "classes.json").write_text(json.dumps([*CLASSES, "table_report"]), encoding="utf-8")
    with pytest.raises(DataError, match="class 'table_report' has no training image"):
        load_labelled_splits(processed)


def test_class_weights_auto_none_and_explicit():
    labels = np.array([0, 0, 0, 1, 2, 2])
    auto = class_weights("auto", labels, 3)
    inverse = np.array([1 / 3, 1.0, 1 / 2])
    np.testing.assert_allclose(auto.numpy(), inverse / inverse.mean(), rtol=1e-6)
    assert auto.mean().item() == pytest.approx(1.0)
    assert class_weights("none", labels, 3) is None
    assert class_weights((1.0, 2.0, 3.0), labels, 3).tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ConfigError, match=r"classifier\.class_weights: got 2 weights, expected one per class \(3\)"):
        class_weights((1.0, 2.0), labels, 3)


def test_folds_are_stratified_disjoint_and_cover_train():
    labels = np.repeat([0, 1, 2], 6)
    folds = fold_indices(labels, 3, seed=0)
    held = np.concatenate([h for _, h in folds])
    assert sorted(held.tolist()) == list(range(18))
    for fit, out in folds:
        assert not set(fit) & set(out) and np.bincount(labels[out]).tolist() == [2, 2, 2]
    with pytest.raises(ConfigError, match="classifier.folds: got 7"):
        fold_indices(labels, 7, seed=0)


def test_tta_views_invert_and_differ():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    inverse = {"identity": "identity", "hflip": "hflip", "vflip": "vflip", "rot90": "rot270", "rot180": "rot180",
               "rot270": "rot90"}
    for view in VIEWS:
        assert torch.equal(apply_view(apply_view(images, view), inverse[view]), images), view
    assert torch.equal(apply_view(images, "hflip")[..., 0], images[..., 3])
    assert torch.equal(apply_view(images, "vflip")[..., 0, :], images[..., 3, :])
    turned = [apply_view(images, v) for v in ("identity", "rot90", "rot180", "rot270")]
    assert all(not torch.equal(a, b) for i, a in enumerate(turned) for b in turned[i + 1:])
    assert torch.equal(apply_view(apply_view(images, "rot90"), "rot90"), apply_view(images, "rot180"))
    with pytest.raises(ValueError, match="unknown TTA view 'rot45'"):
        apply_view(images, "rot45")


def _strip_side(image: np.ndarray) -> str:
    """Where the grey strip of `_marked_page` ended up in a transformed 40x40 image."""
    ys, xs = np.nonzero(np.abs(image[..., 0].astype(int) - 128) < 30)
    cy, cx = ys.mean(), xs.mean()
    if abs(cy - 20) > abs(cx - 20):
        return "top" if cy < 20 else "bottom"
    return "left" if cx < 20 else "right"


def _marked_page() -> np.ndarray:
    """A black portrait page (60x30) whose top 10 rows are grey."""
    page = np.zeros((60, 30, 3), np.uint8)
    page[:10] = 128
    return page


def test_train_transform_turns_pages_and_eval_pads_white():
    eval_out = build_eval_transform(40)(image=_marked_page())["image"]
    assert eval_out.shape == (40, 40, 3) and _strip_side(eval_out) == "top"
    assert (eval_out[:, :9] == 255).all() and (eval_out[:, 31:] == 255).all()  # centred on white paper
    turn_only = ClassifierAugmentParams(rot90_p=1.0, hflip_p=0.0, vflip_p=0.0, rotate_p=0.0, perspective_p=0.0,
                                        brightness_contrast_p=0.0, blur_p=0.0, noise_p=0.0, jpeg_p=0.0)
    transform = build_train_transform(turn_only, 40)
    sides = set()
    for seed in range(24):
        reseed(transform, seed)
        out = transform(image=_marked_page())["image"]
        assert out.shape == (40, 40, 3)
        sides.add(_strip_side(out))
    assert sides == {"left", "bottom", "right"}  # 90, 180 and 270 degrees, never the upright page


def test_focal_with_gamma_zero_is_cross_entropy_and_ce_matches_torch():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 4, generator=generator)
    labels = torch.tensor([0, 3, 1, 1, 2])
    weights = torch.tensor([1.0, 2.0, 0.5, 1.5])
    targets = soft_targets(labels, 4, smoothing=0.1)
    assert torch.allclose(targets.sum(1), torch.ones(5))
    assert cross_entropy_loss(logits, targets) == pytest.approx(
        F.cross_entropy(logits, labels, label_smoothing=0.1).item(), rel=1e-6)
    hard = soft_targets(labels, 4)
    assert focal_loss(logits, hard, 0.0, weights).item() == pytest.approx(
        cross_entropy_loss(logits, hard, weights).item(), rel=1e-6)
    per_sample = F.cross_entropy(logits, labels, reduction="none") * weights[labels]
    assert cross_entropy_loss(logits, hard, weights).item() == pytest.approx(per_sample.mean().item(), rel=1e-6)
    # Focusing shrinks the loss of a confidently right sample far more than that of a wrong one.
    confident = torch.tensor([[4.0, 0.0], [0.0, 4.0]])
    right, wrong = soft_targets(torch.tensor([0]), 2), soft_targets(torch.tensor([0]), 2)
    ratio_right = focal_loss(confident[:1], right, 2.0) / cross_entropy_loss(confident[:1], right)
    ratio_wrong = focal_loss(confident[1:], wrong, 2.0) / cross_entropy_loss(confident[1:], wrong)
    assert ratio_right < 0.01 < 0.9 < ratio_wrong


def test_mixup_and_cutmix_mix_images_and_targets_alike():
    images = torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)])
    targets = soft_targets(torch.tensor([0, 1]), 2)
    assert mix_batch(images, targets, 0.0, 0.0, 1.0)[0] is images
    torch.manual_seed(0)
    mixed, mixed_targets = mix_batch(images, targets, 1.0, 0.0, 1.0)
    lam = 1.0 - mixed[0, 0, 0, 0].item()  # image 0 (zeros) mixed with image 1 (ones)
    assert torch.allclose(mixed[0], torch.full((3, 8, 8), 1.0 - lam))
    assert mixed_targets[0].tolist() == pytest.approx([lam, 1.0 - lam])
    for seed in range(5):
        torch.manual_seed(seed)
        cut, cut_targets = mix_batch(images, targets, 0.0, 1.0, 1.0)
        pasted = cut[0].mean().item()  # share of image 0's pixels that came from image 1
        assert cut_targets[0, 1].item() == pytest.approx(pasted, abs=1e-6)
        assert torch.allclose(cut_targets.sum(1), torch.ones(2))


def test_freeze_and_unfreeze_toggle_requires_grad():
    model = build_classifier("resnet18", 3)
    model.train()
    freeze_backbone(model)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    assert not model.layer1[0].bn1.training and model.fc.training  # frozen BN keeps its statistics
    unfreeze(model, last_stages=1)
    trainable = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"layer4", "fc"}
    unfreeze(model, last_stages=0)
    assert all(p.requires_grad for p in model.parameters())
    unfreeze(model, last_stages=99)
    assert all(p.requires_grad for p in model.parameters())


def test_fine_tune_schedule_holds_head_lr_then_warms_up():
    model = torch.nn.Linear(2, 2)
    optimizer = build_optimizer(model, "adamw", lr=1.0e-3)
    schedule = FineTuneSchedule(optimizer, "warmup_cosine", head_steps=3, head_lr=5.0e-3, tuned_steps=6,
                                steps_per_epoch=3, warmup_steps=2)
    lrs = []
    for _ in range(9):
        lrs.append(schedule.lr())
        optimizer.step()
        schedule.after_step()
    assert lrs[:3] == pytest.approx([5.0e-3] * 3)
    assert lrs[3] < lrs[4] < lrs[5] == pytest.approx(1.0e-3) and lrs[5] > lrs[6] > lrs[7] > lrs[8]


@pytest.mark.skipif(hub_reachable(), reason="the Hugging Face hub is reachable here")
def test_pretrained_offline_fails_fast_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(ConfigError) as err:
        build_classifier("resnet18", 3, pretrained=True)
    assert time.monotonic() - start < 30
    message = str(err.value)
    assert "\n" not in message and "'resnet18'" in message and "classifier.pretrained: false" in message


def test_member_not_listed_is_a_config_error(processed, tmp_path):
    with pytest.raises(ConfigError, match=r"--member 'resnet50': not in classifier.members"):
        run_member(tiny_params(), processed, tmp_path / "out", member="resnet50")
    assert not (tmp_path / "out").exists()


def test_member_training_writes_loadable_outputs_deterministically_and_resumes(processed, tmp_path, capsys):
    metrics = run_member(tiny_params(), processed, tmp_path / "a")
    out = tmp_path / "a"
    assert set(metrics) == {"val", "test"} and 0.0 <= metrics["val"]["macro_f1"] <= 1.0
    logits = load_logits(out / "logits.npz")
    assert logits.classes == CLASSES and logits.names == (TINY,) and logits.views == VIEWS
    assert logits.splits["val"].logits.shape == (1, len(VIEWS), 3, 3) and "oof" not in logits.splits
    table = load_labelled_splits(processed)
    assert list(logits.splits["test"].ids) == table.ids["test"]
    assert logits.splits["test"].labels.tolist() == [table.labels[i] for i in table.ids["test"]]
    model, info = load_classifier(out / "model.pt")
    assert info["name"] == TINY and info["classes"] == list(CLASSES) and info["params"]["seed"] == 3
    assert {k: load_checkpoint(out / "model.pt")[k] for k in ("format", "kind")} == {"format": "doclab.model/1", "kind": "classifier"}
    dataset = ClassificationDataset(processed, "val", 32, build_eval_transform(32))
    with torch.no_grad():
        again = model(torch.stack([dataset[i][0] for i in range(3)]))
    np.testing.assert_allclose(again.numpy(), logits.splits["val"].logits[0, 0], rtol=1e-4, atol=1e-4)
    assert (out / "live" / "metrics.json").is_file()

    run_member(tiny_params(), processed, tmp_path / "b")
    assert (tmp_path / "b" / "metrics.json").read_bytes() == (out / "metrics.json").read_bytes()
    capsys.readouterr()
    run_member(tiny_params(), processed, out)
    printed = capsys.readouterr().out
    assert "resuming from" in printed and "after epoch 2" in printed and "epoch 1/2" not in printed


def test_folds_snapshots_and_head_only_epochs(processed, tmp_path):
    params = tiny_params(folds=2, snapshots=2, freeze_epochs=1, lr_head=1.0e-2)
    metrics = run_member(params, processed, tmp_path / "out")
    assert set(metrics) == {"val", "test", "oof"}
    logits = load_logits(tmp_path / "out" / "logits.npz")
    assert logits.names == (f"{TINY}@epoch1", f"{TINY}@epoch2")
    assert logits.splits["oof"].logits.shape == (2, len(VIEWS), 12, 3)
    assert np.abs(logits.splits["oof"].logits).min() > 0  # every train image predicted by its held-out fold
    saved = load_checkpoint(tmp_path / "out" / "model.pt")
    assert [(s["name"], s["fold"]) for s in saved["sub_members"]] == [
        (f"{TINY}@epoch1", 0), (f"{TINY}@epoch2", 0), (f"{TINY}@epoch1", 1), (f"{TINY}@epoch2", 1)]
    # Epoch 1 trained the head only: the fold-1 backbone is still its seeded initialisation.
    torch.manual_seed(3)
    initial = timm.create_model(TINY, num_classes=3).state_dict()
    after_head, after_all = saved["sub_members"][0]["state_dict"], saved["sub_members"][1]["state_dict"]
    assert torch.equal(after_head["blocks.0.0.conv_dw.weight"], initial["blocks.0.0.conv_dw.weight"])
    assert torch.equal(after_head["bn1.running_mean"], initial["bn1.running_mean"])
    assert not torch.equal(after_head["classifier.weight"], initial["classifier.weight"])
    assert not torch.equal(after_all["blocks.0.0.conv_dw.weight"], initial["blocks.0.0.conv_dw.weight"])
    assert (tmp_path / "out" / "ckpt" / "fold2" / "last.pt").is_file()


def test_impossible_settings_are_config_errors(processed, tmp_path):
    with pytest.raises(ConfigError, match="classifier.snapshots: got 3"):
        run_member(tiny_params(snapshots=3), processed, tmp_path / "out")
    with pytest.raises(ConfigError, match="classifier.freeze_epochs"):
        run_member(tiny_params(freeze_epochs=1, train={"scheduler": "plateau"}), processed, tmp_path / "out")
    with pytest.raises(ConfigError, match="classifier.class_weights"):
        run_member(tiny_params(class_weights=[1.0, 2.0]), processed, tmp_path / "out")



def stage_command(root: Path, data: Path, member: str) -> list[str]:
    return [sys.executable, str(REPO / "stages/train_classifier.py"), "--params", str(root / "params.yaml"),
            "--member", member, "--data", str(data), "--model", str(root / "model.pt"),
            "--logits", str(root / "logits.npz"), "--metrics", str(root / "metrics.json"),
            "--checkpoints", str(root / "ckpt"), "--live", str(root / "live")]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_ends_like_an_uninterrupted_run(tmp_path):
    data = write_processed(tmp_path / "processed", per_class=12)
    params = tiny_params(image_size=64, train={"epochs": 3})  # 9 steps of 4 images per epoch
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in ("killed", "whole"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "params.yaml").write_text(yaml.safe_dump(to_dict(params), sort_keys=False))
    whole = subprocess.run(stage_command(tmp_path / "whole", data, TINY), capture_output=True, text=True,
                           env=env, timeout=600)
    assert whole.returncode == 0, whole.stderr

    killed = tmp_path / "killed"
    returncode = kill_after_first_checkpoint(stage_command(killed, data, TINY), killed / "ckpt/last.pt", 0.1, env=env)
    assert returncode == -signal.SIGKILL
    assert torch.load(killed / "ckpt/last.pt", weights_only=True)["state"]["epoch"] == 1, "killed too late"
    assert not (killed / "model.pt").exists() and not (killed / "metrics.json").exists()

    rerun = subprocess.run(stage_command(killed, data, TINY), capture_output=True, text=True, env=env,
                           timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "after epoch 1" in rerun.stdout
    for name in ("metrics.json", "live/metrics.json"):
        assert (killed / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    resumed, uninterrupted = load_logits(killed / "logits.npz"), load_logits(tmp_path / "whole/logits.npz")
    for split in ("val", "test"):
        np.testing.assert_array_equal(resumed.splits[split].logits, uninterrupted.splits[split].logits)
