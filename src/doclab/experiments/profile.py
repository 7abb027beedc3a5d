"""Params profiles: a YAML file of dotted params.yaml keys -> values (profiles/receipts.yaml), turned into
`dvc exp run -S` arguments, so a profile run is an ordinary DVC experiment whose params show in `dvc exp show`.

    doclab profile profiles/receipts.yaml dvc exp run -n receipts -S detector.train.epochs=8
    # runs: dvc exp run -n receipts -S detector.train.epochs=8 -S data.source="sources" -S ...
"""
from __future__ import annotations

import copy
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

import yaml

from doclab.config import ConfigError, Params, build, load_params, read_yaml


def read_profile(path: str | Path) -> dict[str, object]:
    """{dotted key: value} from a profile file; ConfigError naming the file when it is not such a mapping."""
    path = Path(path)
    try:
        profile = read_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: profile not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the profile ({str(exc).splitlines()[0]})") from None
    if not isinstance(profile, dict) or not all(isinstance(key, str) for key in profile):
        raise ConfigError(f"{path}: expected a mapping of dotted params keys (image_size: 768, detector.train.epochs: 12)")
    return profile


def apply_profile(params: dict, profile: dict[str, object], origin: str = "profile") -> dict:
    """A copy of the raw params.yaml dict with the profile's values set, validated against the schema.

    Raises:
        ConfigError: a key whose parent is not a section of params.yaml, or a value the schema refuses
            (one line naming `origin` and the key).
    """
    applied = copy.deepcopy(params)
    for dotted, value in profile.items():
        *parents, leaf = dotted.split(".")
        section = applied
        for depth, part in enumerate(parents):
            if not isinstance(section.get(part), dict):
                raise ConfigError(f"{origin}: {dotted}: {'.'.join(parents[:depth + 1])} is not a section of params.yaml")
            section = section[part]
        section[leaf] = value
    try:
        build(Params, applied)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    return applied


def set_arguments(profile: dict[str, object], given: Sequence[str] = ()) -> list[str]:
    """`-S key=value` pairs for `dvc exp run`, values in Hydra's override grammar (DVC parses -S with it).

    Args:
        profile: from `read_profile`.
        given: the rest of the command line: keys it already sets with -S/--set-param are left out,
            so a value given by hand wins over the profile's.
    """
    from doclab.experiments.sweep.space import override  # imports optuna: only when a profile is used

    overridden = {value.split("=", 1)[0] for flag, value in zip(given, given[1:]) if flag in ("-S", "--set-param")}
    arguments = []
    for key, value in profile.items():
        if key not in overridden:
            arguments += ["-S", override(key, value)]
    return arguments


def run_profile(profile_path: str | Path, params_path: str | Path, command: Sequence[str]) -> int:
    """`doclab profile`: check the profile against the params file, then run `command` with its -S
    arguments appended (its own -S values win), or print them shell-quoted when there is no command.

    Returns:
        The command's exit status (0 when printing).
    Raises:
        ConfigError: a bad params file or profile (one line naming the file and the key).
    """
    profile = read_profile(profile_path)
    load_params(params_path)  # the file itself first: its errors name it
    apply_profile(read_yaml(Path(params_path).read_text(encoding="utf-8")), profile, str(profile_path))
    arguments = set_arguments(profile, command)
    if not command:
        print(" ".join(shlex.quote(argument) for argument in arguments))
        return 0
    return subprocess.call([*command, *arguments])
