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
import select
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


class Traffic:
    """What this process sent the server: statements, and round trips (the times it
    waited for an answer). Read by tests and benches; counting costs an addition."""

    def __init__(self) -> None:
        self.statements = 0
        self.round_trips = 0

    def reset(self) -> None:
        self.statements = self.round_trips = 0


class _TxState:
    """What a transaction's cursors share: whether answers are pending, and whether
    every statement waits for its answer (after a SAVEPOINT)."""

    __slots__ = ("eager", "unread")

    def __init__(self) -> None:
        self.unread = False
        self.eager = False


class _Cursor:
    """A psycopg cursor that takes the ``?`` SQL the stores are written in.

    Inside a transaction it runs in pipeline mode: a statement is sent at once but its
    answer is waited for only when a result is read (``fetch*``, ``rowcount``), so
    statements whose results nobody reads travel together with the next one that is
    read, or with the COMMIT. An error is then raised where the answers are read (at the
    latest by the ``tx`` block's end), which is all a caller that catches it around the
    block needs. After a SAVEPOINT every statement waits for its answer, so that code
    which rolls back to the savepoint on a statement's error sees it at that statement.
    """

    def __init__(self, conn: psycopg.Connection[Any], pipeline: psycopg.Pipeline,
                 traffic: Traffic, state: _TxState) -> None:
        self._conn = conn
        self._cursor = conn.cursor()
        self._pipeline = pipeline
        self._traffic = traffic
        self._state = state  # shared by the transaction's cursors

    def _answers(self) -> None:
        if self._state.unread:
            self._pipeline.sync()
            self._traffic.round_trips += 1
            self._state.unread = False

    @property
    def rowcount(self) -> int:
        self._answers()
        return self._cursor.rowcount

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        """Send one statement; the returned cursor holds its result (as sqlite3's
        ``Connection.execute`` does), so two sent together can both be read."""
        result = _Cursor(self._conn, self._pipeline, self._traffic, self._state)
        result._cursor.execute(_pg_sql(sql), params)
        self._traffic.statements += 1
        self._state.unread = True
        if self._state.eager or sql.lstrip()[:9].upper() == "SAVEPOINT":
            self._state.eager = True
            self._answers()
        return result

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        self._cursor.executemany(_pg_sql(sql), params)
        self._traffic.statements += len(params)
        self._state.unread = True
        if self._state.eager:
            self._answers()

    def fetchone(self) -> Any:
        self._answers()
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        self._answers()
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


def _create_schema(conn: psycopg.Connection[Any], schema: str) -> None:
    """``CREATE SCHEMA IF NOT EXISTS`` is not safe against itself: two sessions can both
    find the schema missing, and the second then fails on pg_namespace's unique index
    (the threads of one process opening a plugin's database for the first time meet
    exactly there). The schema exists afterwards either way, which is all that is asked."""
    try:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateSchema):
        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                        (schema,)).fetchone() is None:
            raise


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
        self.traffic = Traffic()
        # Connect once now, so that a wrong URL or a server that is down is one clear
        # line at start-up rather than a pool timeout on the first query.
        try:
            with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
                if schema:
                    _create_schema(conn, schema)
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

    def _getconn(self, pool: psycopg_pool.ConnectionPool[Any]) -> psycopg.Connection[Any]:
        """A pooled connection the server has not closed.

        An idle connection has nothing to read unless the server ended it (a restart,
        ``pg_terminate_backend``, an idle timeout: it sends its last word and closes),
        so a readable socket is checked locally, without a round trip, and that
        connection is replaced.
        """
        for _ in range(self._max_size + 2):
            conn = pool.getconn()
            try:
                readable = select.select([conn.fileno()], [], [], 0)[0]
            except (OSError, ValueError, psycopg.Error):
                readable = [True]
            if not readable and not conn.closed:
                return conn
            with contextlib.suppress(psycopg.Error, OSError):
                conn.close()
            pool.putconn(conn)  # a closed connection is dropped and replaced by the pool
        raise psycopg.OperationalError("every pooled connection was closed by the server")

    @contextlib.contextmanager
    def tx(self, *, durable: bool = True) -> Iterator[Any]:
        pool = self._connections()
        conn: psycopg.Connection[Any] | None = None
        try:
            for tries_left in (2, 1, 0):
                conn = self._getconn(pool)
                try:
                    # BEGIN waits for its answer: a connection the server dropped a
                    # moment ago (its last word may not have reached us yet) fails here,
                    # before anything of the transaction ran, and is replaced.
                    conn.execute("BEGIN")
                    self.traffic.statements += 1
                    self.traffic.round_trips += 1
                    break
                except psycopg.OperationalError:
                    pool.putconn(conn)
                    conn = None
                    if not tries_left:
                        raise
                    _discard_dropped(pool)
            assert conn is not None
            try:
                # The rest runs in pipeline mode: statements whose results nobody reads
                # travel with the next one that is read, COMMIT with the last ones.
                with conn.pipeline() as pipeline:
                    cursor = _Cursor(conn, pipeline, self.traffic, _TxState())
                    if durable:
                        cursor.execute("SET LOCAL synchronous_commit = on")
                    yield cursor
                    conn.execute("COMMIT")
                    self.traffic.statements += 1
                self.traffic.round_trips += 1
            except BaseException:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    with contextlib.suppress(psycopg.Error):
                        conn.execute("ROLLBACK")
                raise
        except psycopg.IntegrityError:
            raise
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StorageError(self.explain(exc)) from None
        finally:
            if conn is not None:
                pool.putconn(conn)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.queries([(sql, params)])[0]

    def queries(self, reads: Sequence[tuple[str, Sequence[Any]]]) -> list[list[Row]]:
        for tries_left in range(2, -1, -1):
            conn: psycopg.Connection[Any] | None = None
            pool = self._connections()
            try:
                conn = self._getconn(pool)
                self.traffic.statements += len(reads)
                self.traffic.round_trips += 1
                if len(reads) == 1:
                    return [conn.execute(_pg_sql(reads[0][0]), reads[0][1]).fetchall()]
                with conn.pipeline():
                    cursors = [conn.execute(_pg_sql(sql), params) for sql, params in reads]
                    return [cursor.fetchall() for cursor in cursors]
            except psycopg.OperationalError as exc:
                # A read is safe to repeat: a dropped connection is replaced.
                if not tries_left:
                    raise StorageError(self.explain(exc)) from None
                _discard_dropped(self._connections())
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                raise StorageError(self.explain(exc)) from None
            finally:
                if conn is not None:
                        pool.putconn(conn)
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
