"""The access point's own records in ``peppol.db`` beside the gateway database.

``inbox``: every AS4 message this access point accepted, keyed by its MessageId (which is
how a duplicate is recognised and answered with the original receipt), with the receipt
that was sent and what became of the invoice. ``transactions``: one row per message sent
or received, the source of the monthly Peppol reports.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import GatewayError

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    message_id TEXT PRIMARY KEY,
    received_at REAL NOT NULL,
    sender TEXT NOT NULL,
    receiver TEXT NOT NULL,
    document_type TEXT NOT NULL,
    process TEXT NOT NULL,
    c1_country TEXT,
    instance_id TEXT,
    sending_ap TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    payload_path TEXT NOT NULL,
    receipt BLOB NOT NULL,
    customer_id TEXT,
    status TEXT NOT NULL DEFAULT 'stored',
    invoice_id TEXT,
    findings TEXT,
    error TEXT,
    processed_at REAL
);
CREATE INDEX IF NOT EXISTS inbox_status ON inbox (status, received_at);
CREATE TABLE IF NOT EXISTS transactions (
    direction TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
    message_id TEXT NOT NULL,
    at REAL NOT NULL,
    sender TEXT NOT NULL,
    receiver TEXT NOT NULL,
    document_type TEXT NOT NULL,
    process TEXT NOT NULL,
    c1_country TEXT,
    c4_country TEXT,
    other_ap TEXT NOT NULL,
    receipt_sha256 TEXT,
    PRIMARY KEY (direction, message_id)
);
CREATE INDEX IF NOT EXISTS transactions_at ON transactions (at);
"""


@dataclass(frozen=True)
class InboxRecord:
    message_id: str
    received_at: float
    sender: str
    receiver: str
    document_type: str
    process: str
    c1_country: str | None
    instance_id: str | None
    sending_ap: str
    payload_sha256: str
    payload_path: str
    receipt: bytes
    customer_id: str | None
    status: str
    invoice_id: str | None
    findings: str | None
    error: str | None
    processed_at: float | None

    @property
    def finding_list(self) -> list[dict[str, Any]]:
        return json.loads(self.findings) if self.findings else []


class PeppolStore:
    """One SQLite file; every call opens a short transaction, safe across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=15, isolation_level=None,
                                   check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise GatewayError(f"{self.path}: {exc}") from None
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # ------------------------------------------------------------------ inbox

    def store_received(self, record: InboxRecord) -> InboxRecord:
        """Insert a received message, or return the one already stored under its
        MessageId (a duplicate): the caller answers with that record's receipt."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM inbox WHERE message_id = ?",
                             (record.message_id,)).fetchone()
            if row is not None:
                return InboxRecord(**dict(row))
            values = record.__dict__
            db.execute(f"INSERT INTO inbox ({', '.join(values)}) VALUES "
                       f"({', '.join('?' * len(values))})", tuple(values.values()))
            db.execute(
                "INSERT OR IGNORE INTO transactions VALUES "
                "('received', ?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL)",
                (record.message_id, record.received_at, record.sender, record.receiver,
                 record.document_type, record.process, record.c1_country,
                 record.sending_ap))
        return record

    def received(self, message_id: str) -> InboxRecord | None:
        rows = self._rows("SELECT * FROM inbox WHERE message_id = ?", (message_id,))
        return InboxRecord(**dict(rows[0])) if rows else None

    def inbox(self, *, statuses: tuple[str, ...] = (), limit: int = 1000) -> list[InboxRecord]:
        where = f"WHERE status IN ({', '.join('?' * len(statuses))})" if statuses else ""
        rows = self._rows(f"SELECT * FROM inbox {where} ORDER BY received_at LIMIT ?",
                          (*statuses, limit))
        return [InboxRecord(**dict(r)) for r in rows]

    def processed(self, message_id: str, status: str, *, invoice_id: str | None,
                  findings: list[dict[str, Any]], error: str | None) -> None:
        with self._tx() as db:
            db.execute("UPDATE inbox SET status = ?, invoice_id = ?, findings = ?, error = ?, "
                       "processed_at = ? WHERE message_id = ?",
                       (status, invoice_id, json.dumps(findings, ensure_ascii=False), error,
                        time.time(), message_id))

    # ------------------------------------------------------------------ sent

    def record_sent(self, *, message_id: str, sender: str, receiver: str, document_type: str,
                    process: str, c1_country: str | None, c4_country: str | None,
                    receiving_ap: str, receipt_sha256: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO transactions VALUES "
                       "('sent', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (message_id, time.time(), sender, receiver, document_type, process,
                        c1_country, c4_country, receiving_ap, receipt_sha256))

    def has_sent(self, message_id: str) -> bool:
        return bool(self._rows("SELECT 1 FROM transactions WHERE direction = 'sent' AND "
                               "message_id = ?", (message_id,)))

    def set_receiver_country(self, message_id: str, country: str) -> None:
        """C4's country, known once the received invoice is read (for the reports)."""
        with self._tx() as db:
            db.execute("UPDATE transactions SET c4_country = ? WHERE direction = 'received' "
                       "AND message_id = ?", (country, message_id))

    def transactions(self, start: float, end: float) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM transactions WHERE at >= ? AND at < ? "
                          "ORDER BY at", (start, end))
        return [dict(r) for r in rows]
