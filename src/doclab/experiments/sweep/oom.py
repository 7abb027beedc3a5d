"""A trial that ran out of GPU memory gets one more try at half the micro-batch.

The micro-batch is `batch_size` (detector, tune, evaluate) or `classifier.batch_size`; the effective
batch (`*.train.effective_batch`) is a separate param, so the retry keeps it: the training loop
accumulates twice as many micro-batches per optimizer step (`doclab.engine.batch.accumulation_steps`).

The verdict comes from the failed experiment's own log (`dvc queue logs <trial>`): PyTorch's
out-of-memory error, the stage DVC was running when it came, and the micro-batch that stage printed
(`batch 8 x 2 accumulation`, the resolved size also under `batch_size: auto`).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from doclab.experiments.sweep.space import Scalar

# torch.cuda.OutOfMemoryError's message, and its class name as a traceback shows it.
OOM_PATTERN = re.compile(r"CUDA out of memory|OutOfMemoryError")
STAGE_PATTERN = re.compile(r"Running stage '([^']+)'")
BATCH_PATTERN = re.compile(r"\bbatch (\d+) x \d+ accumulation")
CLASSIFIER_KEY, DETECTOR_KEY = "classifier.batch_size", "batch_size"


@dataclass(frozen=True)
class OomRetry:
    """What to change for the retry of a trial that ran out of memory.

    Attributes:
        stage: the stage that ran out of memory.
        key: the micro-batch param of that stage.
        failed: the micro-batch it ran out of memory with.
        batch: the retry's micro-batch, half of `failed`.
    """

    stage: str
    key: str
    failed: int
    batch: int


def _configured(key: str, overrides: Mapping[str, Scalar], params_file: Path) -> object:
    """The trial's value of `key`: its override, else params.yaml's."""
    if key in overrides:
        return overrides[key]
    node: object = yaml.safe_load(params_file.read_text(encoding="utf-8")) or {}
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def oom_retry(log: str, overrides: Mapping[str, Scalar], params_file: Path) -> OomRetry | None:
    """The retry of a failed trial, or None when it did not run out of GPU memory (or ran out at batch 1).

    Args:
        log: the trial's experiment log (`dvc queue logs <trial>`).
        overrides: the trial's `-S` values.
        params_file: the repository's params.yaml (for the micro-batch the trial did not override).
    Returns:
        The stage, its micro-batch key, the micro-batch that failed and the halved one.
    """
    oom = OOM_PATTERN.search(log)
    if oom is None:
        return None
    before = log[:oom.start()]
    stages = STAGE_PATTERN.findall(before)
    stage = stages[-1] if stages else "?"
    key = CLASSIFIER_KEY if stage.startswith("train_classifier") else DETECTOR_KEY
    section = before[before.rfind(f"Running stage '{stage}'"):] if stages else before
    printed = BATCH_PATTERN.findall(section)
    value = int(printed[-1]) if printed else _configured(key, overrides, params_file)
    if not isinstance(value, int) or isinstance(value, bool) or value < 2:
        return None
    return OomRetry(stage, key, value, value // 2)
