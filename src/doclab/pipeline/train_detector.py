"""Train DBNet on data/processed: datasets, model, loss, the shared loop, CLEval/IoU validation.

    metrics = train_detector(params, Path("data/processed"), Path("models/detector.pt"),
                             Path("checkpoints/detector"), Path("dvclive/train_detector"))
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from doclab.config import Params, PostprocessParams, to_dict
from doclab.data.records import DataError
from doclab.detection.augment import build_eval_transform, build_train_transform
from doclab.detection.dataset import (
    MAP_KEYS,
    DetectionDataset,
    collate_detection,
    has_detection_data,
    load_ground_truth,
)
from doclab.detection.evaluator import DetectionEvaluator
from doclab.detection.loss import db_loss
from doclab.detection.model import build_detector
from doclab.detection.model_file import (
    init_from_detector,
    no_detection_data_marker,
    pretrained_init,
    save_detector_file,
    save_no_detection_model,
)
from doclab.detection.postprocess import db_postprocess
from doclab.engine.device import Runtime, choose_device, deterministic, make_runtime
from doclab.engine.distributed import DistInfo, init_distributed, shutdown, train_sampler, wrap_model
from doclab.engine.loop import best_weights, fit
from doclab.engine.optim import Schedule, build_optimizer, trainable
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

MONITOR = "cleval/hmean"
# Params that shape training; the fingerprint also covers the data files and this code.
TRAIN_KEYS = ("model", "image_size", "batch_size", "pretrained", "seed", "device", "detector")


def _fingerprint(params: Params, data_dir: Path, init: Path | None, world_size: int, batch: int,
                 accumulation: int) -> str:
    """Hash of the params read, the world size, the resolved batch and accumulation (`batch_size: auto` may
    resolve differently on a resume, changing the steps per epoch), the split/annotation files, init
    weights and the code."""
    plain = to_dict(params)
    plain["detector"]["train"].pop("workers")  # batches do not depend on it (seeds come from the main process)
    config = {"params": {key: plain[key] for key in TRAIN_KEYS}, "world_size": world_size, "batch": batch,
              "accumulation": accumulation}
    return run_fingerprint(__name__, config, [data_dir / "splits.json", data_dir / "annotations.json",
                                              *([init] if init else [])])


def _step_fn(params: Params, runtime: Runtime) -> Callable[[nn.Module, dict], tuple[dict[str, torch.Tensor], int]]:
    """`step(model, batch) -> (loss terms, images)`: forward under autocast, DB loss in fp32."""
    weights = dataclasses.asdict(params.detector.loss)

    def step(model: nn.Module, batch: dict) -> tuple[dict[str, torch.Tensor], int]:
        images = runtime.images(batch["image"])
        targets = {name: batch[name].to(runtime.device, non_blocking=True) for name in MAP_KEYS}
        with runtime.autocast():
            maps = model(images)
        return db_loss(maps, targets, **weights), len(images)
    return step


def evaluate_detector(module: nn.Module, loader: DataLoader, postprocess: PostprocessParams, runtime: Runtime,
                      ground_truth: dict[str, tuple[list[np.ndarray], list[bool]]]) -> dict[str, float]:
    """Score a detector on one split: probability maps -> polygons -> CLEval (competition) and IoU-0.5.

    Args:
        module: the detector in eval mode (forward gives (B, 1, S, S) probabilities).
        loader: eval-transform batches of the split (see `collate_detection`).
        postprocess: turns maps into polygons.
        runtime: device and autocast.
        ground_truth: `load_ground_truth(data_dir, split)`, in processed-image pixels.
    Returns:
        `cleval/...` and `iou/...` metrics (plain floats), see `DetectionEvaluator`.
    """
    evaluator = DetectionEvaluator(ground_truth)
    for batch in loader:
        with runtime.autocast():
            probs = module(runtime.images(batch["image"]))
        maps = probs[:, 0].float().cpu().numpy()
        evaluator.process(batch["key"], db_postprocess(maps, postprocess, scales=batch["scale"],
                                                       original_sizes=batch["original_size"]))
    return evaluator.evaluate()


def _datasets(params: Params, data_dir: Path) -> tuple[DetectionDataset, DetectionDataset]:
    size, rule = params.image_size, params.detector.input
    train = DetectionDataset(data_dir, "train", size, build_train_transform(params.detector.augment, size, rule),
                             params.detector)
    val = DetectionDataset(data_dir, "val", size, build_eval_transform(size, rule), params.detector)
    return train, val


def _write_model(model_out: Path, checkpoint_dir: Path, params: Params) -> dict[str, float]:
    """models/detector.pt from best.pt: weights, backbone name, params; returns the best metrics."""
    best = best_weights(checkpoint_dir)
    save_detector_file(model_out, params.model, best["model"], to_dict(params), best["epoch"], best["metrics"])
    return {**best["metrics"], "best_epoch": best["epoch"]}


def _train(params: Params, data_dir: Path, model_out: Path, checkpoint_dir: Path, live_dir: Path,
           init: Path | None, runtime: Runtime, info: DistInfo, stage: str) -> dict[str, float]:
    train_set, val_set = _datasets(params, data_dir)
    model = build_detector(params.model, params.detector, params.pretrained)
    if init:
        init_from_detector(model, init, verbose=info.is_main)
    runtime.prepare_model(model)
    step = _step_fn(params, runtime)
    settings = params.detector.train
    probe = probe_fn(model, lambda size: collate_detection([train_set[0]] * size), step)
    batch, accumulation = batch_plan(params.batch_size, settings.effective_batch, runtime, info, probe)
    train_loader = seeded_loader(train_set, batch, settings.workers, params.seed, runtime, train=True,
                                 sampler=train_sampler(train_set, info, params.seed), collate=collate_detection,
                                 stream=info.rank)
    if len(train_loader) == 0:
        raise DataError(f"train split has {len(train_set)} detection image(s), fewer than one batch of {batch} "
                        f"per process: lower batch_size")
    val_loader = seeded_loader(val_set, batch, settings.workers, params.seed, runtime, train=False,
                               collate=collate_detection)
    ground_truth = load_ground_truth(data_dir, "val")
    optimizer = build_optimizer(model, settings.optimizer, settings.lr, settings.weight_decay, settings.momentum)
    steps_per_epoch = math.ceil(len(train_loader) / accumulation)
    total_steps = settings.epochs * steps_per_epoch
    schedule = Schedule(optimizer, settings.scheduler, total_steps, steps_per_epoch,
                        warmup_steps(settings.warmup_epochs, steps_per_epoch, total_steps), mode="max")
    if info.is_main:
        print(f"{stage}: {params.model} ({trainable(model.parameters()) / 1e6:.1f} M params) on "
              f"{runtime.device}, {len(train_set)} train / {len(val_set)} val images, batch {batch} x "
              f"{accumulation} accumulation x {info.world_size} process(es), {settings.epochs} epochs")
    expected = _fingerprint(params, data_dir, init, info.world_size, batch, accumulation)
    fit(wrap_model(model, info, runtime.device), train_loader, step,
        lambda module: evaluate_detector(module, val_loader, params.detector.val_postprocess, runtime, ground_truth),
        optimizer, schedule, loop_config(settings, checkpoint_dir, expected, MONITOR, accumulation, "detector"), runtime,
        live_dir, info)
    return _write_model(model_out, checkpoint_dir, params) if info.is_main else {}


def _write_no_data(model_out: Path, checkpoint_dir: Path, live_dir: Path) -> dict:
    """Every output of a data set without text polygons: the "no detection data" marker, nothing trained."""
    if not main_process():
        return {}
    with staged_outputs():  # model and dvclive land together, or none of them
        write_no_data_training(no_detection_data_marker(), live_dir, checkpoint_dir)
        save_no_detection_model(model_out)
    return no_detection_data_marker()


def train_detector(params: Params, data_dir: Path, model_out: Path, checkpoint_dir: Path,
                   live_dir: Path, pretrain_model: Path | None = None, stage: str = "train_detector"
                   ) -> dict[str, float]:
    """Train the detector and write `model_out`.

    Args:
        params: validated params (reads model, image_size, batch_size, pretrained, seed, device,
            detector).
        data_dir: the processed folder (images/, annotations.json, splits.json).
        model_out: models/detector.pt: best weights (by val cleval/hmean), backbone name and the
            params dict, loadable with `torch.load(weights_only=True)` (see `load_detector`).
        checkpoint_dir: last.pt and best.pt; a rerun with the same params, data and code resumes.
        live_dir: dvclive folder (metrics.json, plots/metrics).
        pretrain_model: models/pretrain_detector.pt: training starts from its weights unless it is
            the "no pretraining" marker; else from `detector.train.init_from` when set.
        stage: the name the opening line (model, device, batch plan) starts with; pretraining
            passes its own.
    Returns:
        The best epoch's validation metrics plus `best_epoch` (empty on DDP ranks other than 0); the
        "no detection data" marker when no processed image has text polygons: then nothing is
        trained and every output is that marker (see `pipeline.no_data`).
    Raises:
        ConfigError: device 'cuda' without a GPU.
        DataError: fewer train images than one batch per process.
        FileNotFoundError, CheckpointError: a missing or pickled `detector.train.init_from` or
            `pretrain_model`.
    """
    if not has_detection_data(data_dir):
        return _write_no_data(Path(model_out), Path(checkpoint_dir), Path(live_dir))
    device = choose_device(params.device)
    info = init_distributed(device)
    runtime = make_runtime(device, params.detector.train.amp, params.detector.train.channels_last)
    seed_everything(params.seed)
    init = pretrained_init(pretrain_model) if pretrain_model else None
    init = init or (Path(params.detector.train.init_from) if params.detector.train.init_from else None)
    try:
        with deterministic(device.type == "cpu"):
            return _train(params, Path(data_dir), Path(model_out), Path(checkpoint_dir), Path(live_dir), init, runtime,
                          info, stage)
    finally:
        shutdown(info)
