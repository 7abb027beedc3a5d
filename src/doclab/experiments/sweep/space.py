"""The search space of a sweep: a YAML file mapping params.yaml keys to distributions.

    postprocess.box_thresh: {uniform: [0.2, 0.5]}
    detector.train.lr: {log_uniform: [3.0e-4, 1.0e-2]}
    detector.decoder_channels: {int: [32, 128], step: 32}
    model: {choice: [mobilenetv3_small_100, resnet18]}

Every key must exist in the repository's params.yaml, and every bound and choice must pass
the params schema (`doclab.config.build`), so a trial never fails on a value the space allowed.
"""
from __future__ import annotations

import copy
import difflib
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import optuna
import yaml

from doclab.config import ConfigError, Params, build, read_yaml

Kind = Literal["choice", "uniform", "log_uniform", "int"]
KINDS: tuple[str, ...] = ("choice", "uniform", "log_uniform", "int")
Scalar = str | int | float | bool
# Unquoted, Hydra reads these as booleans, null or special floats rather than strings.
HYDRA_WORDS = frozenset({"true", "false", "null", "none", "inf", "nan", "-inf", "+inf"})


@dataclass(frozen=True)
class Dimension:
    """One searched params key.

    Attributes:
        key: dotted params.yaml key, e.g. 'detector.train.lr'.
        kind: 'choice' (one of `choices`), 'uniform' / 'log_uniform' (a float in [low, high]),
            'int' (an integer in [low, high] on a grid of `step`).
        low, high: bounds of uniform, log_uniform and int (None for choice).
        step: grid of int (1 otherwise).
        choices: the values of choice (empty otherwise).
    """

    key: str
    kind: Kind
    low: float | int | None = None
    high: float | int | None = None
    step: int = 1
    choices: tuple[Scalar, ...] = ()


@dataclass(frozen=True)
class SweepSpace:
    """The dimensions of a sweep, in the order of the space file."""

    source: str
    dimensions: tuple[Dimension, ...]


def _leaf_keys(tree: Mapping, prefix: str = "") -> Iterator[str]:
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            yield from _leaf_keys(value, f"{key}.")
        else:
            yield key


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _bounds(key: str, spec: Mapping, kind: str, where: str) -> tuple[float | int, float | int]:
    bounds = spec[kind]
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(_is_number(b) for b in bounds)):
        hint = " (YAML reads 1e-3 as a string: write 1.0e-3)" if isinstance(bounds, list) and any(
            isinstance(b, str) for b in bounds) else ""
        raise ConfigError(f"{where}: {key}: {kind} needs [low, high], two numbers, got {bounds!r}{hint}")
    low, high = bounds
    if kind == "int" and not all(isinstance(b, int) for b in bounds):
        raise ConfigError(f"{where}: {key}: int needs integer bounds, got {bounds!r}")
    if not low < high:
        raise ConfigError(f"{where}: {key}: {kind} needs low < high, got [{low}, {high}]")
    if kind == "log_uniform" and low <= 0:
        raise ConfigError(f"{where}: {key}: log_uniform needs low > 0, got {low}")
    return low, high


def parse_dimension(key: str, spec: object, where: str) -> Dimension:
    """One `key: {kind: ...}` entry of a space file.

    Args:
        key: the dotted params key.
        spec: its YAML value, e.g. {'uniform': [0.2, 0.5]} or {'int': [32, 128], 'step': 32}.
        where: the space file, for errors.
    Raises:
        ConfigError: one line naming the file, the key and what is wrong.
    """
    kinds = [kind for kind in KINDS if isinstance(spec, Mapping) and kind in spec]
    allowed = {*kinds, "step"} if kinds == ["int"] else set(kinds)
    if len(kinds) != 1 or set(spec) - allowed:
        raise ConfigError(f"{where}: {key}: expected one of {{choice: [...]}}, {{uniform: [low, high]}}, "
                          f"{{log_uniform: [low, high]}}, {{int: [low, high], step: n}}, got {spec!r}")
    kind = kinds[0]
    if kind == "choice":
        choices = spec[kind]
        if not (isinstance(choices, list) and choices
                and all(isinstance(c, Scalar) and (not isinstance(c, float) or math.isfinite(c)) for c in choices)):
            raise ConfigError(f"{where}: {key}: choice needs a non-empty list of strings, numbers or "
                              f"booleans, got {choices!r}")
        return Dimension(key, "choice", choices=tuple(choices))
    low, high = _bounds(key, spec, kind, where)
    step = spec.get("step", 1)
    if kind == "int" and not (isinstance(step, int) and not isinstance(step, bool) and 0 < step <= high - low):
        raise ConfigError(f"{where}: {key}: step needs a positive integer <= high - low, got {step!r}")
    return Dimension(key, kind, low=low, high=high, step=step)


def _with_value(params: Mapping, key: str, value: object) -> dict:
    changed = copy.deepcopy(dict(params))
    *parents, leaf = key.split(".")
    node = changed
    for part in parents:
        node = node[part]
    node[leaf] = value
    return changed


def _check_values(dimension: Dimension, params: Mapping, where: str) -> None:
    """Every choice and both bounds must pass the params schema (type, range, Literal choices)."""
    values = dimension.choices if dimension.kind == "choice" else (dimension.low, dimension.high)
    for value in values:
        shown = float(value) if dimension.kind in ("uniform", "log_uniform") else value
        try:
            build(Params, _with_value(params, dimension.key, shown))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {dimension.key}: {value!r} is not a valid value ({exc})") from None


def load_space(space_file: str | Path, params_file: str | Path) -> SweepSpace:
    """Read and validate a space file against the repository's params.yaml.

    Args:
        space_file: YAML mapping of dotted params keys to distributions (see the module docstring).
        params_file: the params.yaml whose keys the space may name.
    Returns:
        The validated SweepSpace.
    Raises:
        FileNotFoundError: a file is missing.
        ConfigError: not YAML, not a mapping, an unknown key, a bad distribution or an invalid value.
    """
    space_file, params_file = Path(space_file), Path(params_file)
    where = str(space_file)
    for path in (space_file, params_file):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
    try:
        raw = read_yaml(space_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{where}: expected a mapping of params.yaml keys to distributions")
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    known = list(_leaf_keys(params if isinstance(params, Mapping) else {}))
    dimensions = []
    for key, spec in raw.items():
        inside = [name for name in known if name.startswith(f"{key}.")]
        if inside:
            raise ConfigError(f"{where}: {key}: a section of {params_file.name}, name one of its keys "
                              f"(e.g. '{inside[0]}')")
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f", did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{where}: {key}: not a key of {params_file.name}{hint}")
        dimension = parse_dimension(key, spec, where)
        _check_values(dimension, params, where)
        dimensions.append(dimension)
    return SweepSpace(where, tuple(dimensions))


def suggest(trial: optuna.Trial, space: SweepSpace) -> dict[str, Scalar]:
    """Ask `trial` for one value per dimension (Optuna records them under the params keys).

    Returns:
        {dotted key: value}, in the order of the space file.
    """
    values: dict[str, Scalar] = {}
    for dim in space.dimensions:
        if dim.kind == "choice":
            values[dim.key] = trial.suggest_categorical(dim.key, dim.choices)
        elif dim.kind == "int":
            values[dim.key] = trial.suggest_int(dim.key, int(dim.low), int(dim.high), step=dim.step)
        else:
            values[dim.key] = trial.suggest_float(dim.key, float(dim.low), float(dim.high),
                                                  log=dim.kind == "log_uniform")
    return values


def hydra_value(value: object) -> str:
    """A params value in Hydra's override grammar (what `dvc exp run -S` parses).

    Floats use their shortest exact repr; strings that Hydra would read as another type, or
    that hold characters outside names and paths, are single-quoted; lists and mappings (a
    `data.sources` entry) are written recursively as `[a,b]` and `{key:value}`.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(hydra_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{hydra_value(item)}" for key, item in value.items()) + "}"
    if re.fullmatch(r"[A-Za-z_][\w./-]*", value) and value.lower() not in HYDRA_WORDS:
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def override(key: str, value: object) -> str:
    """`key=value` for `dvc exp run -S` (Hydra override syntax, see `hydra_value`)."""
    return f"{key}={hydra_value(value)}"
