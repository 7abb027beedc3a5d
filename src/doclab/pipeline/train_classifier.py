"""Train one document-type classifier member on data/processed with the shared training loop.

    metrics = train_classifier(params, "resnet18", Path("data/processed"), Path("models/classifier/resnet18.pt"),
                               Path("models/classifier/resnet18.npz"), Path("metrics/classifier/resnet18.json"),
                               Path("checkpoints/classifier/resnet18"), Path("dvclive/train_classifier/resnet18"))

Two-stage fine-tuning runs inside one `fit`: an epoch hook freezes the backbone for the first
`freeze_epochs` and unfreezes it afterwards, and `FineTuneSchedule` holds `lr_head` meanwhile, so
resume, checkpoints and the dvclive history are those of one run. With `folds: k > 1` every fold
is such a run, with its own `fold<i>` checkpoint and dvclive subfolder.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from doclab.classification.data import (
    ClassificationDataset,
    balanced_sampler,
    build_eval_transform,
    build_train_transform,
    class_weights,
    fold_indices,
    has_classification_data,
)
from doclab.classification.losses import build_loss, mix_batch, soft_targets
from doclab.classification.model import FineTuneSchedule, build_classifier, init_from_classifier, set_trainable
from doclab.classification.no_data import no_classification_data_marker
from doclab.classification.outputs import (MONITOR, FoldResult, evaluate_classifier, member_logits,
                                           write_member_outputs, write_no_data_member_outputs)
from doclab.config import ClassifierParams, ConfigError, Params, to_dict
from doclab.data.records import DataError
from doclab.engine.checkpoint import LAST, CheckpointError, load_checkpoint, save_checkpoint
from doclab.engine.device import Runtime, choose_device, deterministic, make_runtime
from doclab.engine.distributed import DistInfo, init_distributed, shutdown, train_sampler, wrap_model
from doclab.engine.loading import SeededSubset
from doclab.engine.loop import EpochHook, StepFn, best_weights, fit
from doclab.engine.optim import build_optimizer, trainable
from doclab.engine.recipe import (
    batch_plan,
    loop_config,
    probe_fn,
    run_fingerprint,
    seed_everything,
    seeded_loader,
    warmup_steps,
)
from doclab.io import staged_outputs
from doclab.pipeline.no_data import main_process, write_no_data_training

# The fingerprint covers these data files and the stage's code besides the params.
DATA_FILES = ("splits.json", "labels.csv", "classes.json")


@dataclass(frozen=True)
class _Job:
    """What every fold of one member shares."""

    params: Params
    member: str
    data_dir: Path
    runtime: Runtime
    info: DistInfo
    train_set: ClassificationDataset
    val_set: ClassificationDataset


def _check_settings(params: Params, member: str, info: DistInfo) -> None:
    """Combinations the schema cannot reject on its own (one-line ConfigError naming the key)."""
    settings, train = params.classifier, params.classifier.train
    if member not in settings.members:
        raise ConfigError(f"--member {member!r}: not in classifier.members ({', '.join(settings.members)})")
    if settings.freeze_epochs and (train.scheduler == "plateau" or train.lr == 0):
        raise ConfigError("classifier.freeze_epochs: head-only epochs need a scheduler other than 'plateau' and "
                          "classifier.train.lr > 0")
    if settings.snapshots > train.epochs or (settings.snapshots > 1 and train.patience):
        raise ConfigError(f"classifier.snapshots: got {settings.snapshots}, expected at most classifier.train.epochs "
                          f"({train.epochs}) and classifier.train.patience 0 (all epochs must run)")
    if info.enabled and (settings.freeze_epochs or settings.weighted_sampler):
        raise ConfigError("classifier.freeze_epochs / classifier.weighted_sampler: not supported under torchrun "
                          "(DDP); set them to 0 / false")


def _fingerprint(params: Params, member: str, fold: int, data_dir: Path, world_size: int, batch: int,
                 accumulation: int) -> str:
    """Hash of the params that shape this run (not the member list), the data files, init weights and the code."""
    settings = to_dict(params.classifier)
    settings.pop("members")
    settings["train"].pop("workers")  # batches do not depend on it (seeds come from the main process)
    config = {"classifier": settings, "seed": params.seed, "device": params.device, "member": member, "fold": fold,
              "world_size": world_size, "batch": batch, "accumulation": accumulation}
    init = [Path(params.classifier.train.init_from)] if params.classifier.train.init_from else []
    return run_fingerprint(__name__, config, [data_dir / name for name in DATA_FILES] + init)


def _snapshot_path(checkpoint_dir: Path, epoch: int) -> Path:
    return checkpoint_dir / f"snapshot_epoch{epoch}.pt"


def _epoch_hook(settings: ClassifierParams, checkpoint_dir: Path, run_fingerprint: str, is_main: bool) -> EpochHook:
    """Freeze or unfreeze for the coming epoch; keep the weights of the last `snapshots` epochs but one (the
    final weights are last.pt's)."""
    epochs = settings.train.epochs
    snapshot_epochs = range(epochs - settings.snapshots + 1, epochs) if settings.snapshots > 1 else range(0)

    def hook(epoch: int, model: nn.Module) -> None:
        set_trainable(model, settings, epoch)
        if is_main and epoch in snapshot_epochs:
            save_checkpoint(_snapshot_path(checkpoint_dir, epoch),
                            {"fingerprint": run_fingerprint, "epoch": epoch, "model": model.state_dict()})
    return hook


def _sub_members(job: _Job, checkpoint_dir: Path, run_fingerprint: str) -> tuple[list[str], list[dict[str, Tensor]]]:
    """Names and weights of the models behind the logits: the best epoch, or the last `snapshots` epochs."""
    settings = job.params.classifier
    if settings.snapshots == 1:
        return [job.member], [best_weights(checkpoint_dir)["model"]]
    epochs = settings.train.epochs
    first = epochs - settings.snapshots + 1
    weights = []
    for epoch in range(first, epochs):
        saved = load_checkpoint(_snapshot_path(checkpoint_dir, epoch))
        if saved.get("fingerprint") != run_fingerprint:
            raise CheckpointError(f"{_snapshot_path(checkpoint_dir, epoch)}: written by another run; delete "
                                  f"{checkpoint_dir} and train again")
        weights.append(saved["model"])
    weights.append(load_checkpoint(checkpoint_dir / LAST)["model"])
    return [f"{job.member}@epoch{epoch}" for epoch in range(first, epochs + 1)], weights


def _step_fn(settings: ClassifierParams, num_classes: int, weights: Tensor | None, runtime: Runtime) -> StepFn:
    """`step(model, (images, labels)) -> ({'loss'}, images)`: soft targets, optional mixing, forward, loss in fp32."""
    loss_fn, smoothing = build_loss(settings, weights)

    def step(model: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[dict[str, Tensor], int]:
        images, labels = runtime.images(batch[0]), batch[1].to(runtime.device)
        targets = soft_targets(labels, num_classes, smoothing)
        images, targets = mix_batch(images, targets, settings.mixup_alpha, settings.cutmix_alpha, settings.mix_p)
        with runtime.autocast():
            logits = model(images)
        return {"loss": loss_fn(logits, targets)}, len(images)
    return step


def _probe_batch(dataset: Dataset, size: int) -> tuple[Tensor, Tensor]:
    image, label = dataset[0]
    return torch.stack([image] * size), torch.tensor([label] * size)


def _loader(job: _Job, dataset: Dataset, batch: int, train_labels: np.ndarray | None = None,
            persistent: bool = True) -> DataLoader:
    """A seeded loader; with `train_labels` a shuffled (or class-balanced) training loader dropping the last
    incomplete batch (equal micro-batches keep accumulation exact). `persistent`: see `seeded_loader`."""
    generator = torch.Generator()  # shared: the loader's SeededSampler reseeds it, the balanced sampler draws from it
    sampler = None
    if train_labels is not None:
        sampler = train_sampler(dataset, job.info, job.params.seed)
        if job.params.classifier.weighted_sampler:
            sampler = balanced_sampler(train_labels, len(job.train_set.classes), generator)
    return seeded_loader(dataset, batch, job.params.classifier.train.workers, job.params.seed, job.runtime,
                         train=train_labels is not None, sampler=sampler, generator=generator, stream=job.info.rank,
                         persistent=persistent)


def _optimization(model: nn.Module, settings: ClassifierParams, steps_per_epoch: int) -> tuple[
        torch.optim.Optimizer, FineTuneSchedule]:
    """Optimizer over every weight (built while all are trainable, so the hook may unfreeze them later), then
    the first epoch's trainable set, and the learning-rate schedule."""
    train = settings.train
    optimizer = build_optimizer(model, train.optimizer, train.lr, train.weight_decay, train.momentum)
    set_trainable(model, settings, 0)
    tuned_steps = (train.epochs - settings.freeze_epochs) * steps_per_epoch
    warmup = warmup_steps(train.warmup_epochs, steps_per_epoch, tuned_steps)
    schedule = FineTuneSchedule(optimizer, train.scheduler, settings.freeze_epochs * steps_per_epoch, settings.lr_head,
                                tuned_steps, steps_per_epoch, warmup)
    return optimizer, schedule


def _fit_fold(job: _Job, fold: int, indices: np.ndarray, checkpoint_dir: Path, live_dir: Path) -> FoldResult:
    """Train on the training images at `indices`, validate on val; returns the fold's sub-members."""
    settings, runtime, info = job.params.classifier, job.runtime, job.info
    train = settings.train
    num_classes = len(job.train_set.classes)
    seed_everything(job.params.seed + fold)
    model = build_classifier(job.member, num_classes, settings.pretrained)
    if train.init_from:
        init_from_classifier(model, train.init_from, verbose=info.is_main)
    runtime.prepare_model(model)
    labels = job.train_set.labels[indices]
    weights = class_weights(settings.class_weights, labels, num_classes)
    step = _step_fn(settings, num_classes, None if weights is None else weights.to(runtime.device), runtime)
    subset = SeededSubset(job.train_set, indices.tolist())
    probe = probe_fn(model, lambda size: _probe_batch(subset, size), step)
    batch, accumulation = batch_plan(settings.batch_size, train.effective_batch, runtime, info, probe)
    loader = _loader(job, subset, batch, labels)
    if len(loader) == 0:
        raise DataError(f"train split has {len(subset)} labelled image(s), fewer than one batch of {batch} per "
                        "process: lower classifier.batch_size")
    val_loader = _loader(job, job.val_set, batch)
    optimizer, schedule = _optimization(model, settings, math.ceil(len(loader) / accumulation))
    expected = _fingerprint(job.params, job.member, fold, job.data_dir, info.world_size, batch, accumulation)
    if info.is_main:
        print(f"train_classifier: {job.member} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params, "
              f"{trainable(model.parameters()) / 1e6:.1f} M trainable) on {runtime.device}, fold {fold + 1}/"
              f"{settings.folds}: {len(subset)} train / {len(job.val_set)} val images, batch {batch} x "
              f"{accumulation} accumulation x {info.world_size} process(es), {train.epochs} epochs "
              f"({settings.freeze_epochs} head-only)")
    config = loop_config(train, checkpoint_dir, expected, MONITOR, accumulation, job.member)
    fit(wrap_model(model, info, runtime.device), loader, step,
        lambda module: evaluate_classifier(module, val_loader, runtime), optimizer, schedule, config, runtime,
        live_dir, info, on_epoch_start=_epoch_hook(settings, checkpoint_dir, expected, info.is_main))
    if not info.is_main:
        return FoldResult(model, [], [], {}, {}, 0, batch)
    best = best_weights(checkpoint_dir)
    names, sub_weights = _sub_members(job, checkpoint_dir, expected)
    return FoldResult(model, names, sub_weights, best["model"], best["metrics"], best["epoch"], batch)


def _train(params: Params, member: str, data_dir: Path, outputs: dict[str, Path], runtime: Runtime,
           info: DistInfo) -> dict:
    settings = params.classifier
    size = settings.image_size
    train_set = ClassificationDataset(data_dir, "train", size, build_train_transform(settings.augment, size))
    eval_sets = {split: ClassificationDataset(data_dir, split, size, build_eval_transform(size))
                 for split in ("train", "val", "test")}
    if not len(eval_sets["val"]):
        raise DataError(f"{data_dir / 'splits.json'}: the val split has no labelled image to validate on")
    job = _Job(params, member, data_dir, runtime, info, train_set, eval_sets["val"])
    results, held_out = [], []
    for fold, (fit_indices, held) in enumerate(fold_indices(train_set.labels, settings.folds, params.seed)):
        sub = f"fold{fold + 1}" if settings.folds > 1 else ""
        results.append(_fit_fold(job, fold, fit_indices, outputs["checkpoints"] / sub, outputs["live"] / sub))
        held_out.append(held)
    if not info.is_main:
        return {}
    batch = results[0].batch
    # built together, read a few times each: workers that persisted would sit idle in every loader at once
    loaders = {split: _loader(job, dataset, batch, persistent=False) for split, dataset in eval_sets.items()}
    oof_loaders = [_loader(job, Subset(eval_sets["train"], held.tolist()), batch, persistent=False)
                   for held in held_out if settings.folds > 1]
    splits = member_logits(results, loaders, oof_loaders, held_out, runtime)
    with staged_outputs():  # logits, model and metrics land together, or none of them
        return write_member_outputs(params, member, train_set.classes, results, splits, outputs)


def _write_no_data(outputs: dict[str, Path]) -> dict:
    """Every output of a data set without labels: the "no classification data" marker, nothing trained."""
    if not main_process():
        return {}
    with staged_outputs():  # model, logits, metrics and dvclive land together, or none of them
        write_no_data_training(write_no_data_member_outputs(outputs), outputs["live"], outputs["checkpoints"])
    return no_classification_data_marker()


def train_classifier(params: Params, member: str, data_dir: Path, model_out: Path, logits_out: Path,
                     metrics_out: Path, checkpoint_dir: Path, live_dir: Path) -> dict:
    """Train one member (k folds when `classifier.folds` > 1) and write its model, logits and metrics.

    Args:
        params: validated params (reads classifier, seed, device).
        member: a timm model name listed in `classifier.members`.
        data_dir: the processed folder (images/, labels.csv, classes.json, splits.json).
        model_out: models/classifier/<member>.pt (see `model.read_classifier_file`).
        logits_out: models/classifier/<member>.npz, every view of `logits.VIEWS` for val and test (and
            out-of-fold train logits when folds > 1).
        metrics_out: metrics/classifier/<member>.json: accuracy and macro_f1 per split, no timings.
        checkpoint_dir: last.pt / best.pt (per fold in `fold<i>/`); a rerun with the same params resumes.
        live_dir: dvclive folder (per fold in `fold<i>/`).
    Returns:
        The metrics written ({split: {'accuracy', 'macro_f1'}}; empty on DDP ranks other than 0), or, when
        no image has a label, the "no classification data" marker every output then holds.
    Raises:
        ConfigError: a member not in classifier.members, an impossible combination, unavailable weights.
        DataError: labels that do not match classes.json, a class without training images, no val images.
    """
    outputs = {"model": Path(model_out), "logits": Path(logits_out), "metrics": Path(metrics_out),
               "checkpoints": Path(checkpoint_dir), "live": Path(live_dir)}
    if not has_classification_data(data_dir):
        _check_settings(params, member, DistInfo())  # params mistakes are reported all the same
        return _write_no_data(outputs)
    device = choose_device(params.device)
    info = init_distributed(device)
    try:
        _check_settings(params, member, info)
        runtime = make_runtime(device, params.classifier.train.amp, params.classifier.train.channels_last)
        with deterministic(device.type == "cpu"):
            return _train(params, member, Path(data_dir), outputs, runtime, info)
    finally:
        shutdown(info)
