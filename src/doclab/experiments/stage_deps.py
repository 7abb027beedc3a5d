"""`doclab deps`: derive every stage's code deps in dvc.yaml from the imports of its stage script.

    doclab deps            # exit 1 and list the stages whose deps differ from their import closure
    doclab deps --write    # rewrite those deps (the other deps and the rest of dvc.yaml stay)
"""
from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from doclab.errors import DataError
from doclab.imports import PACKAGE_DIR, stage_code_deps
from doclab.io import atomic_write_text

SOURCE_PREFIX = "src/doclab"


def stage_script(cmd: str) -> str:
    """The `stages/*.py` a stage's `cmd` runs (`python stages/x.py ...`)."""
    words = shlex.split(cmd)
    scripts = [w for w in words if w.endswith(".py")]
    if not scripts:
        raise DataError(f"dvc.yaml: cmd {cmd!r} runs no python script")
    return scripts[0]


def derived_deps(stage: dict, root: Path, package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The stage's deps with the code entries replaced by its import closure: script, code, then the rest."""
    script = stage_script(stage["cmd"])
    others = [d for d in stage.get("deps", []) if d != script and not str(d).startswith(SOURCE_PREFIX)]
    return [script, *stage_code_deps(root / script, package_dir), *others]


def check_stage_deps(root: str | Path, write: bool = False) -> list[str]:
    """Compare (or rewrite) the code deps of every stage in `root`/dvc.yaml.

    Returns:
        The names of the stages whose deps differed (rewritten when `write`).
    """
    path = Path(root) / "dvc.yaml"
    text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    stale = []
    for name, stage in doc.get("stages", {}).items():
        wanted = derived_deps(stage, Path(root))
        if stage.get("deps") != wanted:
            stale.append(name)
            stage["deps"] = wanted
    if write and stale:
        atomic_write_text(path, yaml.safe_dump(doc, sort_keys=False, width=1000))
    return stale
