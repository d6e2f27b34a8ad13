"""Versioned schema migrations, applied by yoyo-migrations.

Each dialect has its own folder of numbered migrations (``migrations/sqlite``,
``migrations/postgresql``); a migration is never edited once released, a change is a
new file. yoyo records what it applied in ``_yoyo_migration`` and holds a lock while it
applies, so several processes that start at once upgrade a database exactly once.

Opening a store brings its schema up to date (the embedded default must keep working
with no extra command after an upgrade of the gateway); ``gateway db upgrade`` does the
same explicitly and ``gateway db status`` shows where a database stands. The check on
open reads yoyo's table directly (one indexed read) and starts yoyo only when something
is pending: yoyo's own check opens a second connection and costs several milliseconds,
and every ``gateway`` command opens the store.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.core.storage.database import MIGRATION_WAIT
from gateway.errors import StorageError

if TYPE_CHECKING:
    from gateway.core.storage.database import Database

CORE_MIGRATIONS = Path(__file__).with_name("migrations")
TABLE = "_yoyo_migration"


@dataclass(frozen=True)
class MigrationState:
    id: str
    applied_at: dt.datetime | None  # None: pending


def known(source: Path, dialect: str) -> list[str]:
    """The migration ids of ``source`` for one dialect, in order."""
    folder = source / dialect
    if not folder.is_dir():
        raise StorageError(f"no {dialect} migrations in {source}")
    return sorted(p.stem for p in folder.iterdir()
                  if p.suffix in (".py", ".sql") and not p.name.startswith(("_", ".")))


def applied(db: Database) -> dict[str, dt.datetime | None]:
    """Migration id → when it was applied; empty for a database yoyo never touched."""
    try:
        rows = db.query(f"SELECT migration_id, applied_at_utc FROM {TABLE}")
    except StorageError as exc:
        if "no such table" in str(exc) or "does not exist" in str(exc):
            return {}
        raise
    return {r["migration_id"]: _when(r["applied_at_utc"]) for r in rows}


def _when(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return None


def status(db: Database, source: Path = CORE_MIGRATIONS) -> list[MigrationState]:
    done = applied(db)
    return [MigrationState(m, done.get(m)) for m in known(source, db.dialect)]


def pending(db: Database, source: Path = CORE_MIGRATIONS) -> list[str]:
    done = applied(db)
    ids = known(source, db.dialect)
    return [m for m in ids if m not in done]


def upgrade(db: Database, source: Path = CORE_MIGRATIONS, *,
            break_lock: bool = False) -> list[str]:
    """Apply what is pending; returns the ids applied (none when up to date).

    ``break_lock`` first removes the migration lock of a process that died while it
    upgraded (``gateway db upgrade --break-lock``)."""
    from yoyo import get_backend, read_migrations
    from yoyo.exceptions import LockTimeout

    with db.migration_lock() as sole:
        # Checked again under the lock: the opener that waited finds the work done.
        todo = pending(db, source)
        if not todo:
            return []
        try:
            backend = get_backend(db.yoyo_url(), migration_table=TABLE)
            if break_lock or sole:
                backend.break_lock()
        except Exception as exc:  # yoyo raises the driver's own errors
            raise StorageError(f"database {db.label}: cannot start the migration: "
                               f"{exc}") from None
        try:
            migrations = read_migrations(str(source / db.dialect))
            with backend.lock(timeout=MIGRATION_WAIT):
                todo_now = backend.to_apply(migrations)
                backend.apply_migrations(todo_now)
            return [m.id for m in todo_now]
        except LockTimeout as exc:
            holder = str(exc).split(" has locked", 1)[0]
            raise StorageError(
                f"database {db.label}: another upgrade holds the migration lock ({holder}); "
                "if that process is gone, run `gateway db upgrade --break-lock`") from None
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(f"database {db.label}: migration failed and was rolled back: "
                               f"{exc}") from None
        finally:
            backend.connection.close()


def ensure_current(db: Database, source: Path = CORE_MIGRATIONS) -> None:
    """Upgrade when something is pending; refuse a schema newer than this code.

    Migration ids are ``<source>-<number>-<what>`` (``core-0001-baseline``,
    ``portal-0001-baseline``): plugins' migrations share the database and yoyo's table,
    and only a migration of the same source that this code does not know is "newer".
    """
    done = applied(db)
    ids = known(source, db.dialect)
    sources = {m.split("-", 1)[0] for m in ids}
    newer = sorted(m for m in done if m.split("-", 1)[0] in sources and m not in ids)
    if newer:
        raise StorageError(
            f"database {db.label} was upgraded by a newer gateway (migration {newer[-1]}); "
            "run that version or newer")
    if any(m not in done for m in ids):
        upgrade(db, source)
