"""Optional detector pretraining: `pretrain` data (the synthetic generator or public sets) -> a DBNet
whose best weights start `train_detector`.

    metrics = pretrain_detector(params, Path("."), Path("models/pretrain_detector.pt"),
                                Path("checkpoints/pretrain_detector"), Path("dvclive/pretrain_detector"))

The pretraining data is preprocessed (the preprocess stage's code, `pretrain` as its data section)
into the persistent checkpoint folder: it is an intermediate, not a DVC output, and preprocessing is
deterministic, so a rerun resumes training from the same files. With `pretrain.source: none` the
stage writes only the "no pretraining" markers, in about a second.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from doclab.config import Params
from doclab.data.records import DataError
from doclab.detection.dataset import has_detection_data
from doclab.detection.model_file import no_pretraining_marker, save_no_pretraining_model
from doclab.io import staged_outputs
from doclab.pipeline.no_data import main_process, write_no_data_training
from doclab.pipeline.preprocess import preprocess
from doclab.pipeline.train_detector import train_detector


def pretraining_params(params: Params) -> Params:
    """`params` as the pretraining run sees them: `pretrain`'s data and training settings, the rest shared."""
    pretrain = params.pretrain
    return dataclasses.replace(params, data=pretrain.data(),
                               detector=dataclasses.replace(params.detector, train=pretrain.train))


def _write_off(model_out: Path, checkpoint_dir: Path, live_dir: Path) -> dict[str, str]:
    """Every output when pretraining is off: the "no pretraining" marker, nothing trained."""
    if main_process():
        with staged_outputs():  # model and dvclive land together, or none of them
            write_no_data_training(no_pretraining_marker(), live_dir, checkpoint_dir)
            save_no_pretraining_model(model_out)
    return no_pretraining_marker()


def pretrain_detector(params: Params, root: Path, model_out: Path, checkpoint_dir: Path,
                      live_dir: Path) -> dict:
    """Pretrain the detector on `pretrain`'s data and write `model_out` (the format of models/detector.pt).

    Args:
        params: validated params (reads seed, model, image_size, batch_size, pretrained, device,
            preprocess, pretrain and `detector` but `detector.train`).
        root: the folder `pretrain.sources` paths start from (the repository root).
        model_out: models/pretrain_detector.pt: best weights by pretraining val cleval/hmean, or the
            "no pretraining" marker (see `model_file.pretrained_init`).
        checkpoint_dir: persistent folder: `data/` (the preprocessed pretraining images),
            `data.json` (their statistics) and `train/` (last.pt, best.pt: a rerun resumes).
        live_dir: dvclive folder (metrics.json, plots/metrics).
    Returns:
        The best pretraining epoch's val metrics plus `best_epoch`, or the marker when off.
    Raises:
        DataError: bad pretraining input, or pretraining sources without any text polygon.
    """
    model_out, checkpoint_dir, live_dir = Path(model_out), Path(checkpoint_dir), Path(live_dir)
    if params.pretrain.source == "none":
        return _write_off(model_out, checkpoint_dir, live_dir)
    run = pretraining_params(params)
    # Under torchrun every rank preprocesses (deterministically) into its own folder: no rank reads
    # a folder another one is still writing, and no process group is needed yet.
    rank = "" if main_process() else f"-rank{os.environ['RANK']}"
    data_dir = checkpoint_dir / f"data{rank}"
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    preprocess(run, Path(root), data_dir, checkpoint_dir / f"data{rank}.json")
    if not has_detection_data(data_dir):
        raise DataError("pretrain.sources: no image has text polygons (pretraining needs a detection data set)")
    return train_detector(run, data_dir, model_out, checkpoint_dir / "train", live_dir, stage="pretrain_detector")
