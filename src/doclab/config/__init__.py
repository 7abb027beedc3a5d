"""Typed, validated view of params.yaml.

    params = load_params("params.yaml")
    params.detector.shrink_ratio  # float, already range-checked
"""
from __future__ import annotations

from pathlib import Path

import yaml

from doclab.config.classification import (
    ClassifierAugmentParams,
    ClassifierParams,
    ClassifierTrainParams,
    EnsembleParams,
)
from doclab.config.detection import (
    AugmentParams,
    DetectorParams,
    DetectorTrainParams,
    LossParams,
    PostprocessParams,
    TuneParams,
    TuneSpace,
)
from doclab.config.schema import (
    DataParams,
    Params,
    PreprocessParams,
    SourceParams,
    SplitParams,
    SyntheticParams,
)
from doclab.config.validate import ConfigError, build, to_dict

__all__ = [
    "AugmentParams", "ClassifierAugmentParams", "ClassifierParams", "ClassifierTrainParams", "ConfigError",
    "DataParams", "DetectorParams", "DetectorTrainParams", "EnsembleParams", "LossParams", "Params",
    "PostprocessParams", "PreprocessParams", "SourceParams", "SplitParams", "SyntheticParams", "TuneParams",
    "TuneSpace", "build", "load_params", "to_dict",
]


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file.

    Args:
        path: YAML file (normally the repo's params.yaml, possibly rewritten by `dvc exp run -S`).
    Returns:
        The validated `Params`.
    Raises:
        ConfigError: one line naming the file and the offending key.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: params file not found") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{line} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    try:
        return build(Params, raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
