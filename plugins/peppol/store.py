"""The access point's own records: in ``peppol.db`` beside the gateway database on the
embedded default; with ``[store] url = "postgresql://…"`` in the gateway's database,
schema ``peppol`` (through the gateway's shared database helper, versioned migrations
in ``migrations/``).

``inbox``: every AS4 message this access point accepted, keyed by its MessageId (which is
how a duplicate is recognised and answered with the original receipt), with the receipt
that was sent and what became of the invoice. ``transactions``: one row per message sent
or received, the source of the monthly Peppol reports.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core.storage import PluginDatabase
from gateway.core.storage.database import Cursor, Row

MIGRATIONS = Path(__file__).with_name("migrations")
DATABASE = PluginDatabase("peppol", MIGRATIONS, "peppol.db")


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
    """The access point's tables; every call is one short transaction, safe across threads."""

    def __init__(self, path: Path) -> None:
        """``path``: the SQLite file of the embedded default (``<data dir>/peppol.db``);
        a PostgreSQL store configured for that data directory is used instead."""
        self.path = path
        self.db = DATABASE.open_in(path.parent, path.name)

    def close(self) -> None:
        self.db.close()

    def _tx(self) -> contextlib.AbstractContextManager[Cursor]:
        return self.db.tx()

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        return self.db.query(sql, params)

    # ------------------------------------------------------------------ inbox

    def store_received(self, record: InboxRecord) -> InboxRecord:
        """Insert a received message, or return the one already stored under its
        MessageId (a duplicate): the caller answers with that record's receipt."""
        with self._tx() as db:
            values = record.__dict__
            # ON CONFLICT: two workers receiving the same message at once both see it
            # missing; the second one answers with the first one's record
            inserted = db.execute(
                f"INSERT INTO inbox ({', '.join(values)}) VALUES "
                f"({', '.join('?' * len(values))}) ON CONFLICT (message_id) DO NOTHING",
                tuple(values.values())).rowcount
            if not inserted:
                row = db.execute("SELECT * FROM inbox WHERE message_id = ?",
                                 (record.message_id,)).fetchone()
                return InboxRecord(**_record(row))
            db.execute(
                "INSERT INTO transactions VALUES "
                "('received', ?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL) ON CONFLICT DO NOTHING",
                (record.message_id, record.received_at, record.sender, record.receiver,
                 record.document_type, record.process, record.c1_country,
                 record.sending_ap))
        return record

    def received(self, message_id: str) -> InboxRecord | None:
        rows = self._rows("SELECT * FROM inbox WHERE message_id = ?", (message_id,))
        return InboxRecord(**_record(rows[0])) if rows else None

    def inbox(self, *, statuses: tuple[str, ...] = (), limit: int = 1000) -> list[InboxRecord]:
        where = f"WHERE status IN ({', '.join('?' * len(statuses))})" if statuses else ""
        rows = self._rows(f"SELECT * FROM inbox {where} ORDER BY received_at LIMIT ?",
                          (*statuses, limit))
        return [InboxRecord(**_record(r)) for r in rows]

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
            db.execute("INSERT INTO transactions VALUES "
                       "('sent', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
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


def _record(row: Row) -> dict[str, Any]:
    """A row as InboxRecord's fields (the receipt as bytes on both engines)."""
    fields = dict(row)
    fields["receipt"] = bytes(fields["receipt"])
    return fields
