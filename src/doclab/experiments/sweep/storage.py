"""Where a sweep's Optuna study lives: the SQLite file of one clone, or a database server many workers share.

    storage = open_storage("postgresql://user@db-host/sweeps", heartbeat=60)
    with Heartbeat(storage, 60) as beat:
        beat.track([trial_id])          # while its experiment runs

With a shared storage every worker records a heartbeat for the trials it runs; a worker that dies
stops beating, and the next worker to look (`fail_stale`) marks its trials failed after twice the
interval and re-asks each once (Optuna's RetryHeartbeatStaleTrialCallback puts a copy in the study as a
waiting trial, which the next `study.ask()` of any worker gets).
"""
from __future__ import annotations

import importlib.util
import re
import socket
import threading
import time
import warnings
from collections.abc import Iterable
from pathlib import Path

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial

from doclab.experiments.sweep.trials import SweepError

WORKER_ATTR = "worker"
# A stale trial is re-asked once: a second death of the same trial is its own failure, not the worker's.
MAX_RETRY = 1
# Opening tries: the first workers on a new database may collide creating Optuna's tables.
OPEN_ATTEMPTS = 3


def storage_url(url: str) -> str:
    """The SQLAlchemy URL Optuna opens: `postgresql://` (SQLAlchemy's psycopg2 default) uses psycopg 3
    where only that driver is installed (the `postgres` extra); any other URL is passed through."""
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg2") is None \
            and importlib.util.find_spec("psycopg") is not None:
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def shown(url: str) -> str:
    """`url` without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def open_storage(url: str, heartbeat: int | None) -> RDBStorage:
    """Open (and create the tables of) an Optuna database storage.

    Args:
        url: a SQLAlchemy URL: `sqlite:///path`, `postgresql://user:pass@host:port/db`, `mysql+pymysql://...`.
        heartbeat: seconds between a worker's heartbeats (trials silent for twice as long are failed and
            re-asked); None for a storage only one process uses.
    Returns:
        The storage.
    Raises:
        SweepError: the driver is missing or the database cannot be reached, OPEN_ATTEMPTS times
            (one line, password hidden).
    """
    for attempt in range(1, OPEN_ATTEMPTS):
        try:
            return _rdb_storage(url, heartbeat)
        except SweepError:  # workers starting together on a new database race to create its tables
            time.sleep(attempt)
    return _rdb_storage(url, heartbeat)


def _rdb_storage(url: str, heartbeat: int | None) -> RDBStorage:
    """`open_storage` once (its errors as one line)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            options = {} if heartbeat is None else {
                "heartbeat_interval": heartbeat, "grace_period": 2 * heartbeat,
                "heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)}
            return RDBStorage(storage_url(url), **options)
    except ModuleNotFoundError as exc:
        raise SweepError(f"--storage {shown(url)}: the database driver {exc.name!r} is not installed "
                         f"(PostgreSQL: pip install 'doclab[postgres]')") from None
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy's errors carry the server's reason
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise SweepError(f"--storage {shown(url)}: cannot open the study database "
                         f"({reason[0] if reason else type(exc).__name__})") from None


def worker_id(repo: Path) -> str:
    """This worker's name in the study: host and clone, 'gpu-box-2:/home/me/doclab'."""
    return f"{socket.gethostname()}:{repo}"


def trial_id(trial: FrozenTrial | optuna.Trial) -> int:
    # Optuna's storage API addresses trials by id, which its trial objects keep as `_trial_id` only.
    return trial._trial_id


def set_trial_attr(storage: RDBStorage, trial: FrozenTrial, key: str, value: object) -> None:
    """Set a user attribute of a trial read back from the study (the public setter needs the asked Trial)."""
    storage.set_trial_user_attr(trial_id(trial), key, value)


def retried(trial: FrozenTrial) -> list[int]:
    """The trials `trial` re-asks (their workers died), oldest first; [] for a trial asked afresh."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return list(RetryHeartbeatStaleTrialCallback.retry_history(trial))


def fail_stale(study: optuna.Study) -> None:
    """Fail (and re-ask) the trials whose worker stopped beating; nothing without heartbeats."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


class Heartbeat:
    """A daemon thread recording the heartbeat of the tracked trials every `interval` seconds.

    A no-op when `interval` is None (a storage without heartbeats).
    """

    def __init__(self, storage: RDBStorage, interval: int | None) -> None:
        self._storage, self._interval = storage, interval
        self._ids: set[int] = set()
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweep-heartbeat", daemon=True)

    def track(self, ids: Iterable[int]) -> None:
        """Beat for exactly these trial ids from now on (the first beat right away)."""
        with self._lock:
            self._ids = set(ids)
        self._beat()

    def add(self, trial: int) -> None:
        """Beat for one more trial id (the first beat right away)."""
        with self._lock:
            self._ids.add(trial)
        self._beat()

    def _beat(self) -> None:
        if self._interval is None:
            return
        with self._lock:
            for trial in self._ids:
                self._storage.record_heartbeat(trial)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._beat()

    def __enter__(self) -> Heartbeat:
        if self._interval is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
