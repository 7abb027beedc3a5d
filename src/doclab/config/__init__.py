"""Typed, validated view of params.yaml.

    params = load_params("params.yaml")
    params.detector.shrink_ratio  # float, already range-checked
"""
from __future__ import annotations

import re
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
    InputParams,
    LossParams,
    PostprocessParams,
    TuneParams,
    TuneSpace,
)
from doclab.config.schema import (
    DataParams,
    ExportParams,
    Params,
    PreprocessParams,
    PretrainParams,
    SourceParams,
    SplitParams,
    SyntheticParams,
)
from doclab.config.validate import ConfigError, build, to_dict

__all__ = [
    "AugmentParams", "ClassifierAugmentParams", "ClassifierParams", "ClassifierTrainParams", "ConfigError",
    "DataParams", "DetectorParams", "DetectorTrainParams", "EnsembleParams", "ExportParams", "InputParams",
    "LossParams", "Params",
    "PostprocessParams", "PreprocessParams", "PretrainParams", "SourceParams", "SplitParams", "SyntheticParams", "TuneParams",
    "TuneSpace", "build", "load_params", "read_yaml", "to_dict",
]


class _ParamsLoader(yaml.SafeLoader):
    """SafeLoader whose floats follow YAML 1.2: `1e-05` is a float, not a string.

    DVC (ruamel, YAML 1.2) writes `dvc exp run -S lr=0.00001` as `lr: 1e-05`; PyYAML's YAML 1.1
    resolver wants a dot in the mantissa and would hand the schema a string.
    """


_FLOAT = re.compile(r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)
_ParamsLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_ParamsLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _unique_mapping(loader: _ParamsLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    """A mapping whose repeated keys are an error (PyYAML would silently keep the last value)."""
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (lines {seen[key] + 1} and {key_node.start_mark.line + 1})",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=True)


_ParamsLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def read_yaml(text: str):
    """Parse YAML as DVC writes it (YAML 1.2 floats), with only plain types (no tags run code)."""
    return yaml.load(text, Loader=_ParamsLoader)


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
        raw = read_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: params file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{line} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if raw is None:
        raise ConfigError(f"{path}: no params in the file (empty or only comments)")
    try:
        return build(Params, raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
