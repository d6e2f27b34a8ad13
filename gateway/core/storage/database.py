"""One database helper for the core store and the plugins' own tables.

:func:`connect` turns a store URL into a :class:`Database`: a file path (or
``sqlite:///path``) gives SQLite, ``postgresql://…`` gives PostgreSQL through a psycopg
connection pool. Code above it writes one SQL text with ``?`` placeholders and reads rows
by column name; the few real differences between the two engines (row locks, history
serialisation, error wording) are methods here, not ``if`` statements in callers.

Plugins keep their tables in the same place as the core (:func:`open_database`): on
PostgreSQL the same database; on the embedded default their own SQLite file in the data
directory, as before, so that a portal page view never waits for the outbox's write lock.
Their schema is versioned by the same migration tool as the core's (see
:mod:`gateway.core.storage.schema`).
"""

from __future__ import annotations

import abc
import contextlib
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from gateway.errors import StorageError

if TYPE_CHECKING:
    from gateway.core.config import Config

Row = Mapping[str, Any]

#: how long a relaxed (``durable=False``) commit may wait for the disk, at most
RELAXED_WINDOW = 0.5

#: how long an opener waits for another process's schema upgrade, at most
MIGRATION_WAIT = 120.0

# One lock per database for the threads of this process: the SFTP server's client
# threads and a dispatcher may open a new plugin database at the same moment.
_migrating: dict[str, threading.Lock] = {}
_migrating_guard = threading.Lock()


@contextlib.contextmanager
def process_migration_lock(key: str) -> Iterator[None]:
    """Let one thread of this process at a time upgrade the database named ``key``."""
    with _migrating_guard:
        lock = _migrating.setdefault(key, threading.Lock())
    if not lock.acquire(timeout=MIGRATION_WAIT):
        raise StorageError(f"database {key}: another thread has been upgrading its schema "
                           f"for {MIGRATION_WAIT:.0f} s")
    try:
        yield
    finally:
        lock.release()


class Cursor(Protocol):
    """The part of a DB-API cursor both engines offer, rows readable by column name."""

    rowcount: int

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Database(abc.ABC):
    """A connection (SQLite) or a pool of them (PostgreSQL), safe to share by threads."""

    dialect: ClassVar[str]
    #: exception types that mean "a unique or foreign key constraint refused the row"
    integrity_errors: ClassVar[tuple[type[BaseException], ...]]
    #: where the data is, for messages (a PostgreSQL URL without its password)
    label: str

    @abc.abstractmethod
    def tx(self, *, durable: bool = True) -> contextlib.AbstractContextManager[Cursor]:
        """A write transaction: committed when the block ends, rolled back on error.

        Database errors leave it as :class:`StorageError` with a sentence a user can act
        on; an integrity error passes through so the caller can word it for its data.

        ``durable=False`` commits without waiting for the disk: the change survives the
        process being killed at once, and a power cut or OS crash only within
        :data:`RELAXED_WINDOW` seconds (SQLite WAL with ``synchronous=NORMAL``, the next
        durable commit flushing it at the latest after that window; PostgreSQL's
        ``synchronous_commit = off``, flushed by the WAL writer within 3 × 200 ms).
        """

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Rows of one read, outside any write transaction."""

    def queries(self, reads: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        """The rows of several reads; a server database answers them in one round trip."""
        return [self.query(sql, params) for sql, params in reads]

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    @abc.abstractmethod
    def serialize(self, cur: Cursor, key: str) -> None:
        """Make writers that pass the same ``key`` in their transactions take turns.

        SQLite writers take turns anyway (``BEGIN IMMEDIATE``); PostgreSQL takes a
        transaction-scoped advisory lock.
        """

    @property
    @abc.abstractmethod
    def skip_locked(self) -> str:
        """The clause that lets concurrent claimers pass over each other's rows."""

    @abc.abstractmethod
    def yoyo_url(self) -> str:
        """The same database as a URL the migration tool understands."""

    @contextlib.contextmanager
    def migration_lock(self) -> Iterator[bool]:
        """Held while the schema is checked and upgraded.

        Yields True when holding it means no other process can be upgrading, so that a
        migration lock row the migration tool finds is a dead process's leftover. The
        default only orders this process's threads (PostgreSQL: the migration tool's own
        lock row orders processes).
        """
        with process_migration_lock(self.label):
            yield False

    @abc.abstractmethod
    def flush(self) -> None:
        """Put relaxed commits on disk now (the end of a dispatcher run)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_url(target: str | os.PathLike[str]) -> bool:
    return "://" in str(target)


def connect(target: str | os.PathLike[str], *, synchronous: str = "FULL",
            schema: str | None = None) -> Database:
    """A :class:`Database` for a path or URL (``sqlite:///…``, ``postgresql://…``).

    ``schema`` (PostgreSQL only) keeps a plugin's tables, and its migration records, in
    a schema of their own, so the same table names work on both engines.
    """
    text = os.fspath(target)
    if text.startswith(("postgresql://", "postgres://")):
        from gateway.core.storage.postgres import PostgresDatabase

        return PostgresDatabase(text, schema=schema)
    if text.startswith("sqlite:///"):
        text = text.removeprefix("sqlite://")
    elif is_url(text):
        scheme = text.split("://", 1)[0]
        raise StorageError(f"store url {scheme}://…: unknown database; use a file path, "
                           "sqlite:///path or postgresql://user@host/dbname")
    from gateway.core.storage.sqlite import SQLiteDatabase

    return SQLiteDatabase(Path(text), synchronous=synchronous)


def store_url(config: Config) -> str | None:
    """The configured server database, or None for the embedded SQLite default."""
    return os.environ.get("GATEWAY_STORE_URL") or config.store.url


def open_database(config: Config, sqlite_file: str | os.PathLike[str], *,
                  migrations: Path | None = None, synchronous: str = "FULL",
                  schema: str | None = None) -> Database:
    """The database a plugin keeps its tables in, its migrations applied.

    ``sqlite_file`` (relative to the data directory) is used on the embedded default;
    with ``[store] url = "postgresql://…"`` the plugin's tables live in that database.
    ``migrations`` is the plugin's folder of migrations, one subfolder per dialect
    (``sqlite/``, ``postgresql/``); their ids must start with the plugin's name.
    ``schema`` is the PostgreSQL schema its tables live in (the plugin's name).
    """
    url = store_url(config)
    db = connect(url, schema=schema) if url else connect(config.data_dir / sqlite_file,
                                                         synchronous=synchronous)
    if migrations is not None:
        from gateway.core.storage.schema import ensure_current

        try:
            ensure_current(db, migrations)
        except BaseException:
            db.close()
            raise
    return db


def plugin_database(data_dir: Path, sqlite_file: str, *, migrations: Path | None = None,
                    synchronous: str = "FULL", schema: str | None = None) -> Database:
    """:func:`open_database` for a plugin that knows only the data directory (a channel
    is configured with it): the store its ``gateway.toml`` or GATEWAY_STORE_URL names."""
    from gateway.core.config import load_config

    return open_database(load_config(data_dir), sqlite_file, migrations=migrations,
                         synchronous=synchronous, schema=schema)


@dataclass(frozen=True)
class PluginDatabase:
    """A plugin's own tables, declared once: where they live and how they migrate.

    The plugin opens them with :meth:`open` (or :meth:`open_in`) and registers the same
    object through the ``gateway_register_databases`` hook, so that ``gateway db status``
    and ``gateway db upgrade`` cover them without the core knowing the plugin.

    ``name``: the plugin's name; its migration ids start with it, and on PostgreSQL its
    tables live in the schema of that name. ``migrations``: a folder with one subfolder
    per dialect (``sqlite/``, ``postgresql/``). ``sqlite_file``: the embedded default's
    file, relative to the data directory. ``synchronous``: SQLite's setting for it.
    """

    name: str
    migrations: Path
    sqlite_file: str
    synchronous: str = "FULL"

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"plugin database name {self.name!r}: use a Python identifier "
                             "(it is also the PostgreSQL schema)")

    def open(self, config: Config, *, migrate: bool = True) -> Database:
        """The database, its migrations applied (unless ``migrate`` is False)."""
        return open_database(config, self.sqlite_file,
                             migrations=self.migrations if migrate else None,
                             synchronous=self.synchronous, schema=self.name)

    def open_in(self, data_dir: Path, sqlite_file: str | None = None) -> Database:
        """:meth:`open` for a plugin that knows only the data directory; ``sqlite_file``
        overrides the declared file (a setting of the plugin)."""
        return plugin_database(data_dir, sqlite_file or self.sqlite_file,
                               migrations=self.migrations, synchronous=self.synchronous,
                               schema=self.name)

    def exists(self, config: Config) -> bool:
        """False for an embedded file not made yet (``gateway db status`` makes none)."""
        return bool(store_url(config)) or (config.data_dir / self.sqlite_file).exists()


def placeholders(n: int) -> str:
    """``?, ?, ?`` for an ``IN (…)`` list of ``n`` values."""
    return ", ".join("?" * n)
