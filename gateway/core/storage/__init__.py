"""Invoice, delivery and event storage.

:class:`Store` is the interface the pipeline, dispatcher, CLI and portal use. Two
implementations share one SQL text (:mod:`.store`): :class:`SQLiteStore`, the embedded
default (``gateway.db`` in the data directory), and :class:`PostgresStore`, chosen by
``[store] url = "postgresql://…"`` or ``GATEWAY_STORE_URL``. Their schemas are versioned
migrations (:mod:`.schema`); plugins keep their own tables beside the core's through
:func:`open_database`.

    records.py    the records and the Store protocol
    database.py   the engine-neutral database helper (also for plugins' tables)
    schema.py     migrations (yoyo-migrations), ``gateway db upgrade/status``
    store.py      the SQL both stores share
    sqlite.py     the SQLite engine and store
    postgres.py   the PostgreSQL engine and store
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.core.storage.database import (
    Database,
    PluginDatabase,
    connect,
    open_database,
    placeholders,
    plugin_database,
    store_url,
)
from gateway.core.storage.records import (
    DEAD,
    DELIVERED,
    DELIVERING,
    FAILED,
    GENESIS,
    PENDING,
    RETRY,
    Attempt,
    ChannelLimit,
    DeliveryRecord,
    DocumentRecord,
    Event,
    InvoiceRecord,
    NewDelivery,
    Store,
    _event_hash,
    channel_names,
    event_hash,
)
from gateway.core.storage.sqlite import SQLiteStore
from gateway.core.storage.store import SQLStore

if TYPE_CHECKING:
    from gateway.core.config import Config


def open_store(config: Config, *, upgrade: bool = True) -> SQLStore:
    """The store the configuration names: PostgreSQL for a ``postgresql://`` URL,
    else ``gateway.db`` in the data directory."""
    url = store_url(config)
    if url:
        if url.startswith(("postgresql://", "postgres://")):
            from gateway.core.storage.postgres import PostgresStore

            return PostgresStore(url, upgrade=upgrade)
        if url.startswith("sqlite:///"):
            from pathlib import Path

            return SQLiteStore(Path(url.removeprefix("sqlite://")), upgrade=upgrade)
        connect(url)  # raises the one-line error for an unknown scheme
    return SQLiteStore(config.data_dir / "gateway.db", upgrade=upgrade)


def __getattr__(name: str) -> object:
    # psycopg is an optional extra: import it only for a PostgreSQL store.
    if name in ("PostgresStore", "PostgresDatabase"):
        from gateway.core.storage import postgres

        return getattr(postgres, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEAD", "DELIVERED", "DELIVERING", "FAILED", "GENESIS", "PENDING", "RETRY", "Attempt",
    "ChannelLimit", "Database", "DeliveryRecord", "DocumentRecord", "Event", "InvoiceRecord",
    "NewDelivery", "PluginDatabase", "SQLStore", "SQLiteStore", "Store", "_event_hash",
    "channel_names", "connect", "event_hash",
    "open_database", "open_store", "placeholders", "plugin_database", "store_url",
]
