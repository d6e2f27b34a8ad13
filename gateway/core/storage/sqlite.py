"""The embedded default: one SQLite file in the data directory, WAL mode, safe for several
processes (each write transaction takes the file's write lock up front)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from gateway.core.storage.database import (
    MIGRATION_WAIT,
    RELAXED_WINDOW,
    Database,
    Row,
    process_migration_lock,
)
from gateway.core.storage.store import SQLStore
from gateway.errors import StorageError


class SQLiteDatabase(Database):
    dialect: ClassVar[str] = "sqlite"
    integrity_errors: ClassVar[tuple[type[BaseException], ...]] = (sqlite3.IntegrityError,)

    def __init__(self, path: Path, *, timeout: float = 15.0, synchronous: str = "FULL") -> None:
        self.path = path
        self.label = str(path)
        # The dispatcher renews its lease from a second thread while a channel delivers;
        # one connection must not interleave two threads' transactions.
        self._lock = threading.RLock()
        self._synchronous = synchronous.upper()
        self._relaxed = False  # the connection is at synchronous=NORMAL right now
        self._synced_at = time.monotonic()
        self._unsynced = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                                              check_same_thread=False)
        except sqlite3.Error as exc:
            raise StorageError(explain(exc, path)) from None
        except OSError as exc:
            raise StorageError(f"cannot open {path}: {exc.strerror}") from None
        try:
            self.connection.row_factory = sqlite3.Row
            self._enter_wal(timeout)
            self.connection.execute(f"PRAGMA synchronous={synchronous}")
            self.connection.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            # Not left to the garbage collector: an opener that retries (a delivery
            # thread finding the file locked at startup) would pile up open files.
            self.connection.close()
            raise StorageError(explain(exc, path)) from None

    def _enter_wal(self, timeout: float) -> None:
        # Switching a new file to WAL needs its exclusive lock, and SQLite answers "locked"
        # at once, without its busy handler, when another opener is switching it too.
        # WAL is a property of the file: once any opener has switched it, this one is a no-op.
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def close(self) -> None:
        with self._lock:
            if self._unsynced:
                self._sync_wal()
            self.connection.close()

    def flush(self) -> None:
        with self._lock:
            if self._unsynced:
                self._sync_wal()

    def _sync_wal(self) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(f"{self.path}-wal", os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self._unsynced = False
        self._synced_at = time.monotonic()

    def _set_relaxed(self, relaxed: bool) -> None:
        if relaxed != self._relaxed:
            self.connection.execute(
                f"PRAGMA synchronous={'NORMAL' if relaxed else self._synchronous}")
            self._relaxed = relaxed

    @contextlib.contextmanager
    def tx(self, *, durable: bool = True) -> Iterator[Any]:
        """BEGIN IMMEDIATE: take the write lock up front so that readers never deadlock.

        In WAL mode a commit at ``synchronous=NORMAL`` is not flushed, and the next
        commit at FULL flushes it with its own; a relaxed commit that finds the last
        flush older than the window is made a full one.
        """
        db = self.connection
        with self._lock:
            relaxed = (not durable and self._synchronous == "FULL"
                       and time.monotonic() - self._synced_at < RELAXED_WINDOW)
            try:
                self._set_relaxed(relaxed)
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(explain(exc, self.path)) from None
            try:
                yield db
            except sqlite3.IntegrityError:
                self._rollback()
                raise
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageError(explain(exc, self.path)) from None
            except BaseException:
                self._rollback()
                raise
            else:
                try:
                    db.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._rollback()
                    raise StorageError(explain(exc, self.path)) from None
                if relaxed:
                    self._unsynced = True
                elif self._synchronous == "FULL":
                    self._unsynced = False
                    self._synced_at = time.monotonic()

    def _rollback(self) -> None:
        # SQLite may already have rolled back by itself (disk full, I/O error).
        if self.connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.connection.execute("ROLLBACK")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            with self._lock:
                return self.connection.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(explain(exc, self.path)) from None

    def serialize(self, cur: Any, key: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE already lets one writer in at a time."""

    @property
    def skip_locked(self) -> str:
        return ""

    def yoyo_url(self) -> str:
        return f"sqlite:///{self.path.resolve()}"

    @contextlib.contextmanager
    def migration_lock(self) -> Iterator[bool]:
        """This process's threads take turns, then processes take an ``flock`` on a file
        beside the database. The kernel drops the flock when its holder dies, so unlike
        the migration tool's lock row (which yoyo writes over a shared-cache connection
        that fails at once, without waiting, when two threads of one process meet, and
        then leaves the row behind) it can never be left over."""
        key = str(self.path.resolve())
        with process_migration_lock(key):
            try:
                fd = os.open(f"{key}.migrating", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise StorageError(f"cannot open {key}.migrating: {exc.strerror}") from None
            try:
                deadline = time.monotonic() + MIGRATION_WAIT
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise StorageError(
                                f"database {key}: another process has been upgrading its "
                                f"schema for {MIGRATION_WAIT:.0f} s") from None
                        time.sleep(0.05)
                yield True
            finally:
                os.close(fd)  # releases the flock


class SQLiteStore(SQLStore):
    """The embedded default store (``gateway.db`` in the data directory)."""

    def __init__(self, path: Path, *, timeout: float = 15.0, upgrade: bool = True) -> None:
        self.path = path
        database = SQLiteDatabase(path, timeout=timeout)
        super().__init__(database, upgrade=upgrade)
        # Tests and tools reach the raw connection (busy timeouts, integrity checks).
        self._db = database.connection


def explain(exc: sqlite3.Error, path: Path) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"database {path} is locked by another process; try again when it is done"
    if "readonly" in text or "read-only" in text:
        return f"database {path} is read-only; nothing was changed"
    if "disk is full" in text or "full" in text:
        return f"no space left for {path}; nothing was changed"
    if "disk I/O error" in text:
        return (f"cannot write to database {path} (disk I/O error: is the disk full or "
                "failing?); the unfinished change was rolled back")
    if "unable to open" in text:
        return f"cannot open database {path} (is the data directory writable?)"
    return f"database {path}: {text}"


__all__ = ["SQLiteDatabase", "SQLiteStore", "explain"]
