"""The PostgreSQL store: the same SQL as the embedded default, on a psycopg 3 pool.

Chosen by ``[store] url = "postgresql://user@host/dbname"`` in ``gateway.toml`` or by
``GATEWAY_STORE_URL``. Workers on many machines share it: a delivery lease is taken
with ``SELECT … FOR UPDATE SKIP LOCKED`` (claimers pass over each other's rows instead
of queueing), and appends to one invoice's hash-chained history take turns on a
transaction-scoped advisory lock, so two workers never both extend the chain from the
same link.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg.rows
import psycopg_pool

from gateway.core.storage.database import Database, Row
from gateway.core.storage.store import SQLStore
from gateway.errors import StorageError


@functools.lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    """``?`` placeholders to psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Cursor:
    """A psycopg cursor that takes the ``?`` SQL the stores are written in."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        self._cursor.execute(_pg_sql(sql), params)
        return self

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(_pg_sql(sql), params)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


def _discard_dropped(pool: psycopg_pool.ConnectionPool[Any]) -> None:
    """One pooled connection turned out dropped: the others idle beside it were most
    likely dropped with it (a restart, a failover, an operator ending every session).
    Test them all now, so that the next try gets a live one instead of failing on them
    one by one; this costs a round trip per idle connection, only after a drop."""
    with contextlib.suppress(psycopg.Error, psycopg_pool.PoolTimeout):
        pool.check()


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


class PostgresDatabase(Database):
    dialect: ClassVar[str] = "postgresql"
    integrity_errors: ClassVar[tuple[type[BaseException], ...]] = (psycopg.IntegrityError,)

    def __init__(self, url: str, *, max_size: int = 8, timeout: float = 30.0,
                 schema: str | None = None) -> None:
        if schema is not None and not schema.isidentifier():
            raise StorageError(f"not a schema name: {schema!r}")
        self.url = url
        self.schema = schema
        self.label = redact(url) + (f" (schema {schema})" if schema else "")
        self._max_size = max_size
        self._timeout = timeout
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._pid = 0
        self._lock = threading.Lock()
        # Connect once now, so that a wrong URL or a server that is down is one clear
        # line at start-up rather than a pool timeout on the first query.
        try:
            with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
                if schema:
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        except psycopg.Error as exc:
            raise StorageError(self.explain(exc)) from None
        # relaxed by default: most transactions are the dispatcher's bookkeeping, and the
        # durable ones say so (see tx)
        self._options = "-c synchronous_commit=off" + (
            f" -c search_path={schema}" if schema else "")

    def _connections(self) -> psycopg_pool.ConnectionPool[Any]:
        # A pool does not survive fork (Celery's prefork workers, multiprocessing):
        # a child process makes its own.
        if self._pool is None or self._pid != os.getpid():
            with self._lock:
                if self._pool is None or self._pid != os.getpid():
                    self._pool = psycopg_pool.ConnectionPool(
                        self.url, min_size=1, max_size=self._max_size, open=True,
                        timeout=self._timeout, num_workers=1, name="gateway-store",
                        kwargs={"autocommit": True, "row_factory": psycopg.rows.dict_row,
                                "options": self._options})
                    self._pid = os.getpid()
        return self._pool

    def close(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()
        self._pool = None

    @contextlib.contextmanager
    def tx(self, *, durable: bool = True) -> Iterator[Any]:
        pool = self._connections()
        conn: psycopg.Connection[Any] | None = None
        try:
            for tries_left in (2, 1, 0):
                conn = pool.getconn()
                try:
                    # A connection the server dropped (restart, failover, idle timeout)
                    # fails right here, before anything of the transaction ran, and is
                    # replaced; checking each one before use would cost a round trip.
                    conn.execute("BEGIN")
                    break
                except psycopg.OperationalError:
                    pool.putconn(conn)
                    conn = None
                    if not tries_left:
                        raise
                    _discard_dropped(pool)
            assert conn is not None
            cursor = _Cursor(conn.cursor())
            try:
                if durable:
                    cursor.execute("SET LOCAL synchronous_commit = on")
                yield cursor
            except BaseException:
                with contextlib.suppress(psycopg.Error):
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except psycopg.IntegrityError:
            raise
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StorageError(self.explain(exc)) from None
        finally:
            if conn is not None:
                pool.putconn(conn)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        for tries_left in range(2, -1, -1):
            try:
                with self._connections().connection() as conn:
                    return conn.execute(_pg_sql(sql), params).fetchall()
            except psycopg.OperationalError as exc:
                # A read is safe to repeat: a dropped connection is replaced.
                if not tries_left:
                    raise StorageError(self.explain(exc)) from None
                _discard_dropped(self._connections())
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                raise StorageError(self.explain(exc)) from None
        raise AssertionError("unreachable")

    def flush(self) -> None:
        """Nothing to do: the server's WAL writer flushes relaxed commits within
        3 × wal_writer_delay (600 ms) by itself."""

    def serialize(self, cur: Any, key: str) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (key,))

    @property
    def skip_locked(self) -> str:
        return "FOR UPDATE SKIP LOCKED"

    def yoyo_url(self) -> str:
        url = self.url.replace("postgres://", "postgresql://", 1).replace(
            "postgresql://", "postgresql+psycopg://", 1)
        if self.schema:  # yoyo's own tables go into the plugin's schema too
            url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{self.schema}"
        return url

    def explain(self, exc: BaseException) -> str:
        if isinstance(exc, psycopg_pool.PoolTimeout):
            return (f"database {self.label}: no connection free within {self._timeout:g} s "
                    "(is the server overloaded or max_connections too low?)")
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, psycopg.OperationalError):
            return f"cannot reach database {self.label}: {text}"
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return f"database {self.label}: permission denied ({text}); nothing was changed"
        if isinstance(exc, psycopg.errors.DiskFull):
            return f"database {self.label}: the server's disk is full; nothing was changed"
        return f"database {self.label}: {text}"


class PostgresStore(SQLStore):
    """The store on a PostgreSQL server (``[store] url = "postgresql://…"``)."""

    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        self.url = url
        super().__init__(PostgresDatabase(url), upgrade=upgrade)
