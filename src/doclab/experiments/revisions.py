"""Read a project's files as they are at a git revision, a DVC experiment, or in the workspace.

    with Revisions(".") as revisions:
        side = revisions.open("main")          # a branch, tag, sha, experiment name, or "workspace"
        rows = side.read_json("results/test/detection.json")
        side.read_bytes("data/processed/images/a.jpg")   # DVC-tracked files come from the cache

Nothing in the workspace is touched: git-tracked files come from git objects, DVC-tracked ones
from the DVC cache (an experiment's outputs are cached when it ran), as `dvc metrics diff` reads them.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from doclab.errors import DataError

WORKSPACE = "workspace"


class CompareError(DataError):
    """A revision or one of its files cannot be read or compared; the message is one line naming it."""


class RevisionFiles:
    """The files of one revision (see `Revisions.open`).

    Attributes:
        rev: the name it was opened by.
        sha: the commit it resolved to ("workspace" for the work tree).
    """

    def __init__(self, root: Path, rev: str, sha: str, fs: Any | None) -> None:
        self.root, self.rev, self.sha, self._fs = root, rev, sha, fs

    def exists(self, path: str) -> bool:
        """Whether `path` (relative to the project root) exists in this revision (DVC-tracked: whether
        DVC lists it, which for a file inside a tracked folder needs the folder's cache entry)."""
        from dvc_data.index import DataIndexError

        if self._fs is None:
            return (self.root / path).is_file()
        try:
            return self._fs.isfile(path)
        except DataIndexError:
            return False

    def read_bytes(self, path: str) -> bytes:
        """The bytes of `path`; CompareError naming the revision and file when it is absent or uncached."""
        from dvc_data.index import DataIndexError

        uncached = f"{self.rev}: {path}: cannot be read (DVC-tracked, but not in the DVC cache: dvc pull may fetch it)"
        try:
            if self._fs is None:
                return (self.root / path).read_bytes()
            return self._fs.read_bytes(path)
        except DataIndexError:  # a file inside a tracked folder whose folder entry is not cached (DVC 3.67)
            raise CompareError(uncached) from None
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            if self._fs is not None and self.exists(path):  # listed by DVC, but its cache file is missing
                raise CompareError(uncached) from None
            raise CompareError(f"{self.rev}: {path}: not in this revision (was its stage run and committed?)") from None
        except OSError as exc:
            raise CompareError(f"{self.rev}: {path}: cannot be read ({exc.__class__.__name__}: {exc})") from None

    def read_json(self, path: str) -> Any:
        """`path` parsed as JSON; CompareError naming it when absent or malformed."""
        try:
            return json.loads(self.read_bytes(path))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CompareError(f"{self.rev}: {path}: not valid JSON ({exc})") from None


class Revisions:
    """Opens revisions of one DVC project; use as a context manager (it closes DVC's git handles).

    Args:
        root: the project root (a git work tree with dvc.yaml).
    Raises:
        CompareError: not a DVC project inside git.
    """

    def __init__(self, root: str | Path) -> None:
        from dvc.exceptions import NotDvcRepoError
        from dvc.repo import Repo

        self.root = Path(root).resolve()
        try:
            self._repo = Repo(str(self.root))
        except NotDvcRepoError:
            raise CompareError(f"{self.root}: not a DVC project (no .dvc folder)") from None
        self._open: list[Any] = []

    def open(self, rev: str) -> RevisionFiles:
        """The files of `rev`: a git rev, an experiment name (as `dvc exp show` lists), or "workspace".

        Raises:
            CompareError: an unknown revision.
        """
        if rev == WORKSPACE:
            return RevisionFiles(self.root, rev, WORKSPACE, None)
        from dvc.api import DVCFileSystem
        from dvc.scm import RevError, resolve_rev

        try:
            sha = resolve_rev(self._repo.scm, rev)
        except RevError:
            raise CompareError(f"{rev}: not a git revision or experiment of {self.root} (dvc exp show lists "
                               "experiments)") from None
        fs = DVCFileSystem(url=str(self.root), rev=sha)
        self._open.append(fs)
        return RevisionFiles(self.root, rev, sha, fs)

    def close(self) -> None:
        """Release the git handles of every revision opened (DVCFileSystem.close fails in DVC 3.67)."""
        for fs in self._open:
            fs.repo.close()
        self._open.clear()
        self._repo.close()

    def __enter__(self) -> Revisions:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
