"""Atomic file and directory writes: a crash never leaves a half-written output behind."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from doclab.errors import DataError


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to a temp file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: object) -> None:
    """JSON with sorted keys and a trailing newline, so reruns give byte-identical files."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temp folder beside `path`; on success it replaces `path`, on error it is removed.

    The old `path` survives any failure inside the block, so a stage that crashes keeps
    the previous outputs intact instead of a half-written folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = path.with_name(f".{path.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def read_json(path: str | Path, hint: str = "", on_duplicate: Callable[[str], None] | None = None) -> object:
    """The one JSON reader: a missing file, bad syntax, non-UTF-8 text or a duplicate key is one DataError line.

    Args:
        path: the file.
        hint: appended to the not-found message (e.g. " (run the preprocess stage)").
        on_duplicate: called with "'key' in <where>" for a repeated key (the first is kept); when
            None, a duplicate key is an error.
    """
    path = Path(path)
    duplicates: list[tuple[str, dict]] = []  # (key, the object it was repeated in)

    def unique_keys(pairs: list[tuple[str, object]]) -> dict:
        out: dict = {}
        for key, value in pairs:
            if key in out:
                duplicates.append((key, out))
                continue
            out[key] = value
        return out

    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f, object_pairs_hook=unique_keys)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found{hint}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: line {exc.lineno}: malformed JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    if duplicates:
        # The hook cannot see where an object sits, so name it afterwards ('images'/'a.jpg'/'words').
        where = _object_locations(doc)
        for key, holder in duplicates:
            location = where.get(id(holder), "a discarded duplicate")
            if on_duplicate is None:
                raise DataError(f"{path}: duplicate key {key!r} in {location}")
            on_duplicate(f"{key!r} in {location}")
    return doc


def _object_locations(doc: object) -> dict[int, str]:
    """{id(object): its path in the document, e.g. "'images'/'a.jpg'/'words'"} for every object."""
    found: dict[int, str] = {}
    stack: list[tuple[object, str]] = [(doc, "")]
    while stack:
        node, location = stack.pop()
        if isinstance(node, dict):
            found[id(node)] = location or "the top-level object"
            children = [(v, f"{location}/{k!r}" if location else repr(k)) for k, v in node.items()]
        elif isinstance(node, list):
            children = [(v, f"{location}[{i}]") for i, v in enumerate(node)]
        else:
            continue
        stack.extend(children)
    return found
