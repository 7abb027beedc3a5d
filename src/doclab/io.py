"""Atomic file and directory writes: a crash never leaves a half-written output behind."""
from __future__ import annotations

import contextlib
import contextvars
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from doclab.errors import DataError

# While `staged_outputs` is active: the (temp, final) renames it will run at its end.
_STAGED: contextvars.ContextVar[list | None] = contextvars.ContextVar("staged_outputs", default=None)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_prefix(path: Path) -> str:
    """Temp names carry the writer's pid, so a later run can tell a dead writer's leftovers from a live one's."""
    return f".{path.name}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Temp folders this process made: nothing stale can be inside them, so writes there (one per overlay
# in predict) skip the folder scan instead of paying it once per file.
_OWN_TEMP_DIRS: set[Path] = set()


def remove_stale_temps(path: Path) -> None:
    """Delete the temp files/folders of `path` left by writers that died (SIGKILL, power loss)."""
    if any(path.parent == own or own in path.parent.parents for own in _OWN_TEMP_DIRS):
        return
    if not path.parent.is_dir():
        return
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = leftover.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)


def _finish(tmp: Path, path: Path) -> None:
    """Move a finished temp file or folder into place, now or at the end of `staged_outputs`."""
    staged = _STAGED.get()
    if staged is not None:
        staged.append((tmp, path))
    elif tmp.is_dir():
        _swap_directory(tmp, path)
    else:
        os.replace(tmp, path)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to a temp file in the same folder, fsync, then rename over `path` (mode from the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600 whatever the umask
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _finish(Path(tmp), path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: object) -> None:
    """JSON with sorted keys and a trailing newline, so reruns give byte-identical files."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def _swap_directory(tmp: Path, path: Path) -> None:
    old = path.with_name(f".{path.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temp folder beside `path`; on success it replaces `path`, on error it is removed.

    The old `path` survives any failure inside the block, so a stage that crashes keeps
    the previous outputs intact instead of a half-written folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 whatever the umask
    _OWN_TEMP_DIRS.add(tmp)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _OWN_TEMP_DIRS.discard(tmp)
    _finish(tmp, path)


@contextlib.contextmanager
def staged_outputs() -> Iterator[None]:
    """All atomic writes inside the block land together at its end, or none of them if it fails.

    A stage with several outputs (a folder and a metrics file, say) wraps its writing in this, so
    a write that fails (read-only folder, full disk) replaces none of the previous outputs.
    """
    if _STAGED.get() is not None:  # nested: the outer block commits
        yield
        return
    staged: list[tuple[Path, Path]] = []
    token = _STAGED.set(staged)
    try:
        yield
    except BaseException:
        for tmp, _ in staged:
            shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        raise
    finally:
        _STAGED.reset(token)
    for tmp, path in staged:
        _swap_directory(tmp, path) if tmp.is_dir() else os.replace(tmp, path)


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
