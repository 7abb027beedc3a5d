"""Per-sample seeds drawn in the main process: batches do not depend on the worker count or on persistent
workers, a resumed run with another worker count ends like an uninterrupted one, and `workers: auto`."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import draw_document, layout_boxes, quad, write_image
from torch import nn
from torch.utils.data import WeightedRandomSampler

from doclab.classification.data import ClassificationDataset, build_eval_transform
from doclab.classification.data import build_train_transform as classifier_transform
from doclab.config import AugmentParams, ClassifierAugmentParams, ConfigError, Params, build
from doclab.detection.augment import build_train_transform as detector_transform
from doclab.detection.dataset import DetectionDataset, collate_detection
from doclab.engine.device import Runtime
from doclab.engine.distributed import DistInfo
from doclab.engine.loading import SeededSampler, SeededSubset, resolve_workers
from doclab.engine.loop import LoopConfig, fit
from doclab.engine.optim import Schedule, build_optimizer
from doclab.engine.recipe import seeded_loader
from doclab.pipeline import train_classifier, train_detector

CPU = Runtime(torch.device("cpu"))
TARGETS = {"shrink_ratio": 0.4, "thresh_min": 0.3, "thresh_max": 0.7, "min_text_size": 3.0}
HEAVY = AugmentParams(rotate_p=1.0, affine_p=1.0, perspective_p=1.0, noise_p=1.0, crop_p=0.5)
KINDS = ("form", "receipt")  # 6 forms, 2 receipts: the class-balanced sampler has something to balance


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> Path:
    """A processed folder both tasks read: 8 annotated, labelled pages in train, 2 of them in val too."""
    root = tmp_path_factory.mktemp("processed")
    rng = np.random.default_rng(0)
    entries, rows = {}, []
    for i in range(8):
        key, (width, height) = f"p{i}.jpg", (96, 72) if i % 2 else (72, 96)
        boxes = layout_boxes(width, height, 3, rng)
        write_image(root / "images" / key, draw_document(width, height, boxes, seed=i))
        words = {f"{j:04d}": {"points": quad(box), "transcription": "w"} for j, box in enumerate(boxes)}
        entries[key] = {"img_w": width, "img_h": height, "words": words, "source": "test"}
        rows.append(f"{key},{KINDS[i >= 6]}")
    (root / "annotations.json").write_text(json.dumps({"images": entries}))
    (root / "labels.csv").write_text("ID,target\n" + "\n".join(rows) + "\n")
    (root / "classes.json").write_text(json.dumps(list(KINDS)))
    (root / "splits.json").write_text(json.dumps({"train": sorted(entries), "val": ["p0.jpg", "p7.jpg"],
                                                  "test": []}))
    return root


def detection_epochs(root: Path, workers: int, seed: int = 7, epochs: int = 2) -> list[list[dict]]:
    """The batches of `epochs` epochs of one seeded training loader, set_epoch called as `fit` does."""
    dataset = DetectionDataset(root, "train", 64, detector_transform(HEAVY, 64), TARGETS)
    loader = seeded_loader(dataset, 2, workers, seed, CPU, train=True, collate=collate_detection)
    batches = []
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        batches.append(list(loader))
    return batches


def assert_same_batches(first: list[list[dict]], second: list[list[dict]]) -> None:
    assert len(first) == len(second)
    for epoch_a, epoch_b in zip(first, second):
        assert [b["key"] for b in epoch_a] == [b["key"] for b in epoch_b]
        for a, b in zip(epoch_a, epoch_b):
            assert torch.equal(a["image"], b["image"]) and torch.equal(a["prob_map"], b["prob_map"])


def test_detector_batches_are_identical_for_0_1_and_2_workers(processed):
    by_workers = {workers: detection_epochs(processed, workers) for workers in (0, 1, 2)}
    assert [len(epoch) for epoch in by_workers[0]] == [4, 4]
    assert_same_batches(by_workers[0], by_workers[1])
    assert_same_batches(by_workers[0], by_workers[2])
    # The seeds really drive the augmentation: a page looks different in the next epoch and under another seed.
    first, second = ({k: img for b in epoch for k, img in zip(b["key"], b["image"])} for epoch in by_workers[0])
    assert all(not torch.equal(first[key], second[key]) for key in first)
    other = detection_epochs(processed, 0, seed=8, epochs=1)[0]
    assert any(not torch.equal(first[k], img) for b in other for k, img in zip(b["key"], b["image"]))


def test_persistent_workers_give_the_batches_of_fresh_workers(processed):
    dataset = DetectionDataset(processed, "train", 64, detector_transform(HEAVY, 64), TARGETS)
    loader = seeded_loader(dataset, 2, 2, 7, CPU, train=True, collate=collate_detection)
    assert loader.persistent_workers
    persistent, pids = [], []
    for epoch in range(3):
        loader.sampler.set_epoch(epoch)
        persistent.append(list(loader))
        pids.append([worker.pid for worker in loader._iterator._workers])
    assert pids[0] == pids[1] == pids[2]  # the same two processes served every epoch
    fresh = []
    for epoch in range(3):  # a new loader per epoch: new worker processes, as a resumed run starts them
        restarted = seeded_loader(dataset, 2, 2, 7, CPU, train=True, collate=collate_detection)
        restarted.sampler.set_epoch(epoch)
        fresh.append(list(restarted))
    assert_same_batches(persistent, fresh)


def classifier_job(root: Path, workers: int, **classifier) -> train_classifier._Job:
    """The pipeline's per-member job on `root` (32 px, class-balanced sampling unless told otherwise)."""
    settings = {"image_size": 32, "weighted_sampler": True, "train": {"workers": workers}, **classifier}
    params = build(Params, {"seed": 5, "device": "cpu", "classifier": settings})
    augment = ClassifierAugmentParams(noise_p=1.0, rotate_p=1.0, perspective_p=1.0)
    train_set = ClassificationDataset(root, "train", 32, classifier_transform(augment, 32))
    val_set = ClassificationDataset(root, "val", 32, build_eval_transform(32))
    return train_classifier._Job(params, "tiny", root, CPU, DistInfo(), train_set, val_set)


def classifier_loader(job: train_classifier._Job):
    """The member's training loader over a fold of all but one training image, as `_fit_fold` builds it."""
    indices = np.arange(1, len(job.train_set))
    return train_classifier._loader(job, SeededSubset(job.train_set, indices.tolist()), 2,
                                    job.train_set.labels[indices])


def test_class_balanced_batches_do_not_depend_on_workers(processed):
    runs = {}
    for workers in (0, 2):
        loader = classifier_loader(classifier_job(processed, workers))
        assert isinstance(loader.sampler, SeededSampler)
        assert isinstance(loader.sampler.sampler, WeightedRandomSampler)
        epochs = []
        for epoch in range(2):
            loader.sampler.set_epoch(epoch)
            epochs.append([(images, labels.tolist()) for images, labels in loader])
        runs[workers] = epochs
    for epoch_a, epoch_b in zip(runs[0], runs[2]):
        assert [labels for _, labels in epoch_a] == [labels for _, labels in epoch_b]
        assert all(torch.equal(a, b) for (a, _), (b, _) in zip(epoch_a, epoch_b))
    assert not all(torch.equal(a, b) for (a, _), (b, _) in zip(*runs[0]))  # each epoch draws anew


class Validator:
    """Accuracy on fixed images; raises at call `crash_at` to simulate a killed run."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, crash_at: int | None = None):
        self.images, self.labels, self.crash_at, self.calls = images, labels, crash_at, 0

    def __call__(self, module: nn.Module) -> dict[str, float]:
        self.calls += 1
        if self.calls == self.crash_at:
            raise KeyboardInterrupt("simulated crash")
        return {"accuracy": float((module(self.images).argmax(1) == self.labels).float().mean())}


def train_tiny_classifier(root: Path, job: train_classifier._Job, crash_at: int | None = None) -> nn.Module:
    """Three epochs of a tiny CNN with the member's step (soft targets, mixup/cutmix) and loader."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Dropout(0.3), nn.Linear(4, len(KINDS)))
    loader = classifier_loader(job)
    step = train_classifier._step_fn(job.params.classifier, len(KINDS), None, CPU)
    optimizer = build_optimizer(model, "adamw", lr=0.05, weight_decay=0.01)
    schedule = Schedule(optimizer, "warmup_cosine", 3 * len(loader), len(loader), warmup_steps=2, mode="max")
    config = LoopConfig(epochs=3, checkpoint_dir=root / "ckpt", fingerprint="same", monitor="accuracy", mode="max")
    images = torch.stack([job.val_set[i][0] for i in range(len(job.val_set))])
    validator = Validator(images, torch.tensor(job.val_set.labels), crash_at)
    fit(model, loader, step, validator, optimizer, schedule, config, CPU, root / "live")
    return model


def test_resume_with_other_workers_and_mixing_ends_like_an_uninterrupted_run(processed, tmp_path, capsys):
    mixing = {"mixup_alpha": 0.4, "cutmix_alpha": 1.0, "mix_p": 0.8}
    straight = train_tiny_classifier(tmp_path / "straight", classifier_job(processed, 0, **mixing))
    with pytest.raises(KeyboardInterrupt):  # killed in epoch 2's validation: last.pt holds epoch 1
        train_tiny_classifier(tmp_path / "resumed", classifier_job(processed, 2, **mixing), crash_at=2)
    capsys.readouterr()
    resumed = train_tiny_classifier(tmp_path / "resumed", classifier_job(processed, 1, **mixing))
    assert "after epoch 1" in capsys.readouterr().out
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    assert (tmp_path / "straight/live/metrics.json").read_text() == (tmp_path / "resumed/live/metrics.json").read_text()


def test_workers_stay_out_of_the_resume_fingerprints(tmp_path):
    for name in ("splits.json", "annotations.json", "labels.csv", "classes.json"):
        (tmp_path / name).write_text("{}")

    def prints(section: str, **train) -> tuple[str, str]:
        params = build(Params, {section: {"train": train}})
        return (train_detector._fingerprint(params, tmp_path, None, 1, 2, 4),
                train_classifier._fingerprint(params, "resnet18", 0, tmp_path, 1, 2, 4))

    for section, index in (("detector", 0), ("classifier", 1)):
        same = {prints(section, workers=workers)[index] for workers in (0, 3, "auto")}
        assert len(same) == 1, section
        assert prints(section, workers=0, lr=0.5)[index] not in same, section  # a setting that matters still counts


def test_workers_auto_resolves_from_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    for cores, expected in ((1, 1), (2, 1), (4, 3), (9, 8), (64, 8)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, n=cores: set(range(n)), raising=False)
        assert resolve_workers("auto") == expected, cores
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun: 4 processes share the 64 cores
    assert resolve_workers("auto") == 8 and resolve_workers(0) == 0 and resolve_workers(12) == 12
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(16)), raising=False)
    assert resolve_workers("auto") == 3


def test_workers_setting_is_validated_with_one_line_naming_the_key():
    assert build(Params, {}).detector.train.workers == "auto" == build(Params, {}).classifier.train.workers
    assert build(Params, {"classifier": {"train": {"workers": 0}}}).classifier.train.workers == 0
    for section in ("detector", "classifier"):
        for bad, expected in ((-1, "expected a value in \\[0, 64\\]"),
                              ("many", "expected an integer or one of 'auto'")):
            with pytest.raises(ConfigError, match=f"^{section}.train.workers: got .*{expected}") as error:
                build(Params, {section: {"train": {"workers": bad}}})
            assert "\n" not in str(error.value)


def test_loaders_keep_workers_and_queue_deeper_on_cuda(processed):
    dataset = DetectionDataset(processed, "val", 64, detector_transform(HEAVY, 64), TARGETS)
    cuda = Runtime(torch.device("cuda"))
    for train in (True, False):
        on_cuda = seeded_loader(dataset, 2, 2, 7, cuda, train=train)
        assert on_cuda.persistent_workers and on_cuda.prefetch_factor == 4 and on_cuda.pin_memory
        on_cpu = seeded_loader(dataset, 2, 2, 7, CPU, train=train)
        assert on_cpu.persistent_workers and on_cpu.prefetch_factor == 2
        in_process = seeded_loader(dataset, 2, 0, 7, cuda, train=train)
        assert not in_process.persistent_workers and in_process.prefetch_factor is None
    assert seeded_loader(dataset, 2, "auto", 7, CPU, train=False).num_workers == resolve_workers("auto")
