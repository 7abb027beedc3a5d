"""A throwaway PostgreSQL server for the tests: `initdb` + `pg_ctl` on a free local port, trust auth.

    with postgres_server() as url:      # 'postgresql://doclab@127.0.0.1:PORT/sweeps'
        ...

The server binaries come from Debian's `postgresql` package (`.ci/run` installs it where missing);
without them `find_bindir` returns None and the tests skip. initdb refuses to run as root, so as root
the cluster belongs to the package's `postgres` user (`runuser`), in a folder that user owns.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

USER, DATABASE = "doclab", "sweeps"


def find_bindir() -> Path | None:
    """The folder of initdb and pg_ctl: `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin."""
    candidates = []
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(Path(found.stdout.strip()))
    candidates += [Path(d) for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                           key=lambda d: int(Path(d).parent.name), reverse=True)]
    return next((d for d in candidates if (d / "initdb").is_file() and (d / "pg_ctl").is_file()), None)


def missing_reason() -> str | None:
    """Why no server can start here (None: it can)."""
    if find_bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and no 'postgres' user to run initdb as (Debian's postgresql package adds it)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a cluster with database `sweeps`, yield its URL, stop it and delete it."""
    bindir = find_bindir()
    root = Path(tempfile.mkdtemp(prefix="doclab-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]

    def run(*args: str | Path) -> None:
        subprocess.run([*prefix, *map(str, args)], check=True, capture_output=True, stdin=subprocess.DEVNULL, cwd=root)

    data, port = root / "data", _free_port()
    try:
        run(bindir / "initdb", "-D", data, "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        run(bindir / "pg_ctl", "-D", data, "-l", root / "server.log", "-w", "-o",
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        try:
            run(bindir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE)
            yield f"postgresql://{USER}@127.0.0.1:{port}/{DATABASE}"
        finally:
            run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
