"""Invoice, delivery and event storage.

:class:`Store` is the interface the pipeline, dispatcher, CLI and portal use;
:class:`SQLiteStore` is the embedded default (one file in the data directory, WAL mode,
safe for several processes). A PostgreSQL store implements the same methods.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gateway.core.customers import Customer
from gateway.errors import StorageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS invoices (
    id TEXT PRIMARY KEY,
    seller_key TEXT NOT NULL,
    number TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    invoice_json TEXT NOT NULL,
    type_code TEXT NOT NULL,
    issue_date TEXT NOT NULL,
    due_date TEXT,
    currency TEXT NOT NULL,
    amount_due TEXT NOT NULL,
    buyer_name TEXT NOT NULL,
    contract_reference TEXT,
    source TEXT,
    created_at REAL NOT NULL,
    UNIQUE (seller_key, number)
);
CREATE INDEX IF NOT EXISTS invoices_customer ON invoices (customer_id, issue_date);
CREATE INDEX IF NOT EXISTS invoices_number ON invoices (number);
CREATE TABLE IF NOT EXISTS documents (
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    format TEXT NOT NULL,
    filename TEXT NOT NULL,
    media_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (invoice_id, format)
);
CREATE INDEX IF NOT EXISTS documents_sha ON documents (sha256);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    invoice_id TEXT NOT NULL REFERENCES invoices (id),
    customer_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    channel_type TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    formats_json TEXT NOT NULL,
    fallback_json TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_owner TEXT,
    lease_expires REAL,
    last_error TEXT,
    receipt_id TEXT,
    receipt_json TEXT,
    state_json TEXT NOT NULL DEFAULT '{}',
    fallback_for INTEGER,
    reason TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    requeued_at REAL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_invoice ON deliveries (invoice_id);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
    started_at REAL NOT NULL,
    finished_at REAL,
    outcome TEXT,
    error TEXT,
    receipt_id TEXT,
    worker TEXT
);
CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts (delivery_id);
CREATE TABLE IF NOT EXISTS events (
    invoice_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    data_json TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (invoice_id, seq)
);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the invoice history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the invoice history is append-only'); END;
CREATE TABLE IF NOT EXISTS channel_rate (
    channel_type TEXT PRIMARY KEY,
    tat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY,
    customer_json TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS customer_keys (
    key TEXT NOT NULL,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    PRIMARY KEY (key, customer_id)
);
CREATE TABLE IF NOT EXISTS customer_changes (
    id INTEGER PRIMARY KEY,
    customer_id TEXT NOT NULL,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT NOT NULL
);
"""

GENESIS = "0" * 64
PENDING, DELIVERING, RETRY, DELIVERED, FAILED, DEAD = (
    "pending", "delivering", "retry", "delivered", "failed", "dead"
)


@dataclass(frozen=True)
class InvoiceRecord:
    id: str
    seller_key: str
    number: str
    customer_id: str
    content_hash: str
    invoice_json: str
    type_code: str
    issue_date: str
    due_date: str | None
    currency: str
    amount_due: str
    buyer_name: str
    contract_reference: str | None
    source: str | None
    created_at: float


@dataclass(frozen=True)
class DocumentRecord:
    invoice_id: str
    format: str
    filename: str
    media_type: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    invoice_id: str
    customer_id: str
    channel: str
    channel_type: str
    settings: dict[str, Any]
    formats: list[str]
    fallback: dict[str, Any] | None
    idempotency_key: str
    status: str
    attempts: int
    next_attempt_at: float
    lease_owner: str | None
    lease_expires: float | None
    last_error: str | None
    receipt_id: str | None
    receipt: dict[str, Any] | None
    state: dict[str, Any]
    fallback_for: int | None
    reason: str | None
    created_at: float
    updated_at: float
    requeued_at: float | None = None

    @property
    def queued_since(self) -> float:
        """Start of the age limit: creation, or the operator's last ``gateway retry``."""
        return self.requeued_at or self.created_at


@dataclass(frozen=True)
class ChannelLimit:
    """Per channel type limits, as the store enforces them (see ``ChannelLimits``)."""

    concurrency: int | None = None
    per_second: float | None = None
    burst: int = 1


@dataclass(frozen=True)
class NewDelivery:
    channel: str
    channel_type: str
    settings: dict[str, Any]
    formats: list[str]
    fallback: dict[str, Any] | None
    idempotency_key: str
    fallback_for: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Event:
    invoice_id: str
    seq: int
    at: float
    kind: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Attempt:
    id: int
    delivery_id: int
    started_at: float
    finished_at: float | None
    outcome: str | None
    error: str | None
    receipt_id: str | None
    worker: str | None


class Store(Protocol):
    """What the gateway needs from a database."""

    def close(self) -> None: ...
    def put_customer(self, customer: Customer, actor: str) -> None: ...
    def get_customer(self, customer_id: str) -> Customer | None: ...
    def list_customers(self) -> list[Customer]: ...
    def find_customer(self, keys: Collection[str]) -> Customer | None: ...
    def customer_changes(self, customer_id: str) -> list[dict[str, Any]]: ...
    def find_invoice(self, seller_key: str, number: str) -> InvoiceRecord | None: ...
    def get_invoice(self, invoice_id: str) -> InvoiceRecord | None: ...
    def list_invoices(self, *, customer_id: str | None = None, limit: int = 100,
                      offset: int = 0, contract: str | None = None,
                      issued_from: str | None = None,
                      issued_to: str | None = None) -> list[InvoiceRecord]: ...
    def count_invoices(self, *, customer_id: str | None = None, contract: str | None = None,
                       issued_from: str | None = None, issued_to: str | None = None) -> int: ...
    def customer_contracts(self, customer_id: str) -> list[str]: ...
    def invoices_by_number(self, number: str) -> list[InvoiceRecord]: ...
    def insert_invoice(self, record: InvoiceRecord, documents: Sequence[DocumentRecord],
                       deliveries: Sequence[NewDelivery]) -> None: ...
    def documents(self, invoice_id: str) -> list[DocumentRecord]: ...
    def all_documents(self) -> Iterator[DocumentRecord]: ...
    def append_event(self, invoice_id: str, kind: str, data: dict[str, Any]) -> Event: ...
    def events(self, invoice_id: str) -> list[Event]: ...
    def verify_events(self, invoice_id: str) -> str | None: ...
    def claim_delivery(self, worker: str, lease_seconds: float,
                       delivery_id: int | None = None, *,
                       limits: Mapping[str, ChannelLimit] | None = None,
                       due_before: float | None = None,
                       ) -> DeliveryRecord | None: ...
    def start_attempt(self, delivery_id: int, worker: str) -> int: ...
    def finish_attempt(self, attempt_id: int, outcome: str, error: str | None,
                       receipt_id: str | None) -> None: ...
    def save_delivery_state(self, delivery_id: int, worker: str,
                            state: dict[str, Any]) -> None: ...
    def mark_delivered(self, delivery_id: int, worker: str, receipt_id: str,
                       receipt: dict[str, Any]) -> bool: ...
    def mark_failed(self, delivery_id: int, worker: str, status: str, error: str,
                    next_attempt_at: float, fallback: NewDelivery | None) -> bool: ...
    def get_delivery(self, delivery_id: int) -> DeliveryRecord | None: ...
    def deliveries(self, *, invoice_id: str | None = None,
                   statuses: Sequence[str] | None = None) -> list[DeliveryRecord]: ...
    def attempts(self, delivery_id: int) -> list[Attempt]: ...
    def requeue(self, delivery_ids: Sequence[int]) -> int: ...
    def renew_lease(self, delivery_id: int, worker: str, lease_seconds: float) -> bool: ...
    def expire_lease(self, delivery_id: int, worker: str) -> bool: ...
    def throttled_until(self, limits: Mapping[str, ChannelLimit]) -> float | None: ...
    def count_due(self) -> int: ...


def _event_hash(prev: str, invoice_id: str, seq: int, at: float, kind: str, data: str) -> str:
    payload = json.dumps([prev, invoice_id, seq, repr(at), kind, data], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class SQLiteStore:
    """The embedded default store."""

    def __init__(self, path: Path, *, timeout: float = 15.0) -> None:
        self.path = path
        # The dispatcher renews its lease from a second thread while a channel delivers;
        # one connection must not interleave two threads' transactions.
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                                       check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            with self._tx():
                for statement in _statements(SCHEMA):
                    self._db.execute(statement)
                _migrate(self._db)
        except sqlite3.Error as exc:
            raise StorageError(_explain(exc, path)) from None
        except OSError as exc:
            raise StorageError(f"cannot open {path}: {exc.strerror}") from None

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: take the write lock up front so that readers never deadlock."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(_explain(exc, self.path)) from None
            try:
                yield self._db
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageError(_explain(exc, self.path)) from None
            except BaseException:
                self._rollback()
                raise
            else:
                try:
                    self._db.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._rollback()
                    raise StorageError(_explain(exc, self.path)) from None

    def _rollback(self) -> None:
        # SQLite may already have rolled back by itself (disk full, I/O error).
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            with self._lock:
                return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(_explain(exc, self.path)) from None

    # ------------------------------------------------------------------ customers

    def put_customer(self, customer: Customer, actor: str) -> None:
        now = time.time()
        new = customer.model_dump_json()
        with self._tx() as db:
            row = db.execute("SELECT customer_json FROM customers WHERE id = ?",
                             (customer.id,)).fetchone()
            before = row["customer_json"] if row else None
            if before == new:
                return
            db.execute(
                "INSERT INTO customers (id, customer_json, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET customer_json = excluded.customer_json, "
                "updated_at = excluded.updated_at",
                (customer.id, new, now),
            )
            # The routing keys, indexed, so that matching an invoice to its customer does
            # not read every customer (10,000 contracts in a month's run).
            db.execute("DELETE FROM customer_keys WHERE customer_id = ?", (customer.id,))
            db.executemany(
                "INSERT OR IGNORE INTO customer_keys (key, customer_id) VALUES (?, ?)",
                [(key, customer.id) for key in {customer.id, *customer.match}])
            db.execute(
                "INSERT INTO customer_changes (customer_id, at, actor, before_json, after_json) "
                "VALUES (?, ?, ?, ?, ?)",
                (customer.id, now, actor, before, new),
            )

    def get_customer(self, customer_id: str) -> Customer | None:
        rows = self._query("SELECT customer_json FROM customers WHERE id = ?", (customer_id,))
        return Customer.model_validate_json(rows[0]["customer_json"]) if rows else None

    def list_customers(self) -> list[Customer]:
        rows = self._query("SELECT customer_json FROM customers ORDER BY id")
        return [Customer.model_validate_json(r["customer_json"]) for r in rows]

    def find_customer(self, keys: Collection[str]) -> Customer | None:
        """The customer whose id or match list holds one of ``keys`` (lowest id wins)."""
        keys = list(keys)
        if not keys:
            return None
        rows = self._query(
            "SELECT c.customer_json FROM customer_keys k JOIN customers c ON c.id = "
            f"k.customer_id WHERE k.key IN ({', '.join('?' * len(keys))}) ORDER BY c.id "
            "LIMIT 1", keys)
        return Customer.model_validate_json(rows[0]["customer_json"]) if rows else None

    def customer_changes(self, customer_id: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT at, actor, before_json, after_json FROM customer_changes "
            "WHERE customer_id = ? ORDER BY id", (customer_id,))
        return [dict(r) for r in rows]

    # ------------------------------------------------------------------ invoices

    def find_invoice(self, seller_key: str, number: str) -> InvoiceRecord | None:
        rows = self._query("SELECT * FROM invoices WHERE seller_key = ? AND number = ?",
                           (seller_key, number))
        return InvoiceRecord(**dict(rows[0])) if rows else None

    def get_invoice(self, invoice_id: str) -> InvoiceRecord | None:
        rows = self._query("SELECT * FROM invoices WHERE id = ?", (invoice_id,))
        return InvoiceRecord(**dict(rows[0])) if rows else None

    def list_invoices(self, *, customer_id: str | None = None, limit: int = 100,
                      offset: int = 0, contract: str | None = None,
                      issued_from: str | None = None,
                      issued_to: str | None = None) -> list[InvoiceRecord]:
        """Newest first. ``contract`` (BT-12) and the issue dates (ISO, inclusive) narrow
        the list in SQL, so a customer with thousands of invoices pages cheaply."""
        where, params = _invoice_filter(customer_id, contract, issued_from, issued_to)
        rows = self._query(
            f"SELECT * FROM invoices {where} ORDER BY issue_date DESC, number DESC "
            "LIMIT ? OFFSET ?", [*params, limit, offset])
        return [InvoiceRecord(**dict(r)) for r in rows]

    def count_invoices(self, *, customer_id: str | None = None, contract: str | None = None,
                       issued_from: str | None = None, issued_to: str | None = None) -> int:
        where, params = _invoice_filter(customer_id, contract, issued_from, issued_to)
        rows = self._query(f"SELECT count(*) AS n FROM invoices {where}", params)
        return int(rows[0]["n"])

    def customer_contracts(self, customer_id: str) -> list[str]:
        """The contract references (BT-12) on a customer's invoices, sorted."""
        rows = self._query(
            "SELECT DISTINCT contract_reference FROM invoices WHERE customer_id = ? "
            "AND contract_reference IS NOT NULL ORDER BY contract_reference", (customer_id,))
        return [r["contract_reference"] for r in rows]

    def invoices_by_number(self, number: str) -> list[InvoiceRecord]:
        rows = self._query("SELECT * FROM invoices WHERE number = ?", (number,))
        return [InvoiceRecord(**dict(r)) for r in rows]

    def insert_invoice(self, record: InvoiceRecord, documents: Sequence[DocumentRecord],
                       deliveries: Sequence[NewDelivery]) -> None:
        """Store an invoice, its documents and its outbox rows in one transaction."""
        now = time.time()
        with self._tx() as db:
            try:
                db.execute(
                    "INSERT INTO invoices VALUES (:id, :seller_key, :number, :customer_id, "
                    ":content_hash, :invoice_json, :type_code, :issue_date, :due_date, "
                    ":currency, :amount_due, :buyer_name, :contract_reference, :source, "
                    ":created_at)", record.__dict__)
            except sqlite3.IntegrityError:
                raise StorageError(
                    f"invoice {record.number} of {record.seller_key} was stored concurrently"
                ) from None
            db.executemany(
                "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)",
                [(d.invoice_id, d.format, d.filename, d.media_type, d.sha256, d.size)
                 for d in documents])
            for d in deliveries:
                self._insert_delivery(db, record.id, record.customer_id, d, now)
            self._append_event(db, record.id, "accepted", {
                "number": record.number, "customer": record.customer_id,
                "content_hash": record.content_hash, "source": record.source})
            for d in documents:
                self._append_event(db, record.id, "rendered", {
                    "format": d.format, "sha256": d.sha256, "size": d.size})
            for d in deliveries:
                self._append_event(db, record.id, "queued", {
                    "channel": d.channel, "formats": d.formats})

    @staticmethod
    def _insert_delivery(db: sqlite3.Connection, invoice_id: str, customer_id: str,
                         d: NewDelivery, now: float) -> None:
        db.execute(
            "INSERT INTO deliveries (invoice_id, customer_id, channel, channel_type, "
            "settings_json, formats_json, fallback_json, idempotency_key, status, "
            "next_attempt_at, fallback_for, reason, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?) "
            "ON CONFLICT (idempotency_key) DO NOTHING",
            (invoice_id, customer_id, d.channel, d.channel_type, json.dumps(d.settings),
             json.dumps(d.formats), json.dumps(d.fallback) if d.fallback else None,
             d.idempotency_key, now, d.fallback_for, d.reason, now, now))

    def documents(self, invoice_id: str) -> list[DocumentRecord]:
        rows = self._query("SELECT * FROM documents WHERE invoice_id = ? ORDER BY format",
                           (invoice_id,))
        return [DocumentRecord(**dict(r)) for r in rows]

    def all_documents(self) -> Iterator[DocumentRecord]:
        cursor = self._db.execute("SELECT * FROM documents ORDER BY invoice_id, format")
        for row in cursor:
            yield DocumentRecord(**dict(row))

    # ------------------------------------------------------------------ events

    def append_event(self, invoice_id: str, kind: str, data: dict[str, Any]) -> Event:
        with self._tx() as db:
            return self._append_event(db, invoice_id, kind, data)

    @staticmethod
    def _append_event(db: sqlite3.Connection, invoice_id: str, kind: str,
                      data: dict[str, Any]) -> Event:
        last = db.execute(
            "SELECT seq, hash FROM events WHERE invoice_id = ? ORDER BY seq DESC LIMIT 1",
            (invoice_id,)).fetchone()
        seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
        at = time.time()
        payload = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
        digest = _event_hash(prev, invoice_id, seq, at, kind, payload)
        db.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (invoice_id, seq, at, kind, payload, prev, digest))
        return Event(invoice_id, seq, at, kind, data, prev, digest)

    def events(self, invoice_id: str) -> list[Event]:
        rows = self._query("SELECT * FROM events WHERE invoice_id = ? ORDER BY seq",
                           (invoice_id,))
        return [Event(r["invoice_id"], r["seq"], r["at"], r["kind"], json.loads(r["data_json"]),
                      r["prev_hash"], r["hash"]) for r in rows]

    def verify_events(self, invoice_id: str) -> str | None:
        """None when the invoice's history chain is intact, else where it breaks."""
        rows = self._query("SELECT * FROM events WHERE invoice_id = ? ORDER BY seq",
                           (invoice_id,))
        prev = GENESIS
        for r in rows:
            expected = _event_hash(prev, r["invoice_id"], r["seq"], r["at"], r["kind"],
                                   r["data_json"])
            if r["prev_hash"] != prev or r["hash"] != expected:
                return f"event {r['seq']} ({r['kind']}) does not match the chain"
            prev = r["hash"]
        return None

    # ------------------------------------------------------------------ outbox

    def claim_delivery(self, worker: str, lease_seconds: float,
                       delivery_id: int | None = None, *,
                       limits: Mapping[str, ChannelLimit] | None = None,
                       due_before: float | None = None,
                       ) -> DeliveryRecord | None:
        """Lease the next due delivery (or a given one) to ``worker``.

        A delivery whose lease expired (its worker crashed) is due again; the crashed
        worker's unfinished attempt is closed as ``abandoned`` so the story stays whole.
        ``limits`` skip channel types that are at their concurrency limit or rate;
        ``due_before`` leaves out retries that only became due later (a dispatcher run
        passes its start, so a delivery that failed in this run waits for the next
        one, while a fallback queued during the run goes out at once).
        """
        now = time.time()
        clauses: list[str] = []
        retry_due = now if due_before is None else min(now, due_before)
        params: list[Any] = [now, retry_due, now]
        if delivery_id is not None:
            clauses.append("AND id = ?")
            params.append(delivery_id)
        with self._tx() as db:
            blocked = self._blocked_channels(db, limits or {}, now)
            if blocked:
                clauses.append(f"AND channel_type NOT IN ({', '.join('?' * len(blocked))})")
                params.extend(blocked)
            row = db.execute(
                "SELECT id, status, lease_owner, channel_type, invoice_id, channel "
                "FROM deliveries WHERE ((status = 'pending' AND next_attempt_at <= ?) "
                "OR (status = 'retry' AND next_attempt_at <= ?) "
                "OR (status = 'delivering' AND lease_expires < ?)) "
                f"{' '.join(clauses)} ORDER BY next_attempt_at, id LIMIT 1", params).fetchone()
            if row is None:
                return None
            if row["status"] == DELIVERING:
                cur = db.execute(
                    "UPDATE attempts SET finished_at = ?, outcome = 'abandoned', error = ? "
                    "WHERE delivery_id = ? AND finished_at IS NULL",
                    (now, f"worker {row['lease_owner']} stopped before it finished "
                     "(lease expired)", row["id"]))
                self._append_event(db, row["invoice_id"], "lease-expired", {
                    "channel": row["channel"], "worker": row["lease_owner"],
                    "abandoned_attempts": cur.rowcount})
            limit = (limits or {}).get(row["channel_type"])
            if limit is not None and limit.per_second:
                tat = db.execute("SELECT tat FROM channel_rate WHERE channel_type = ?",
                                 (row["channel_type"],)).fetchone()
                db.execute(
                    "INSERT INTO channel_rate (channel_type, tat) VALUES (?, ?) "
                    "ON CONFLICT (channel_type) DO UPDATE SET tat = excluded.tat",
                    (row["channel_type"],
                     max(tat["tat"] if tat else now, now) + 1.0 / limit.per_second))
            db.execute(
                "UPDATE deliveries SET status = 'delivering', lease_owner = ?, "
                "lease_expires = ?, attempts = attempts + 1, updated_at = ? WHERE id = ?",
                (worker, now + lease_seconds, now, row["id"]))
            claimed = db.execute("SELECT * FROM deliveries WHERE id = ?", (row["id"],)).fetchone()
        return _delivery(claimed)

    @staticmethod
    def _blocked_channels(db: sqlite3.Connection, limits: Mapping[str, ChannelLimit],
                          now: float) -> list[str]:
        """Channel types that may not start another attempt right now.

        The rate limit is a generic cell rate algorithm: each channel type keeps a
        "theoretical arrival time" in the database, so all processes share one budget.
        """
        blocked = []
        for channel_type, limit in limits.items():
            if limit.concurrency is not None:
                busy = db.execute(
                    "SELECT count(*) AS n FROM deliveries WHERE channel_type = ? "
                    "AND status = 'delivering' AND lease_expires >= ?",
                    (channel_type, now)).fetchone()["n"]
                if busy >= limit.concurrency:
                    blocked.append(channel_type)
                    continue
            if limit.per_second:
                row = db.execute("SELECT tat FROM channel_rate WHERE channel_type = ?",
                                 (channel_type,)).fetchone()
                tolerance = (limit.burst - 1) / limit.per_second
                if row is not None and row["tat"] - tolerance > now:
                    blocked.append(channel_type)
        return blocked

    def throttled_until(self, limits: Mapping[str, ChannelLimit]) -> float | None:
        """When a rate-limited channel type with due deliveries may start again.

        None when no due delivery is held back by a rate limit (the dispatcher may stop).
        """
        now = time.time()
        soonest = None
        for channel_type, limit in limits.items():
            if not limit.per_second:
                continue
            due = self._query(
                "SELECT 1 FROM deliveries WHERE channel_type = ? AND status IN "
                "('pending', 'retry') AND next_attempt_at <= ? LIMIT 1", (channel_type, now))
            rate = self._query("SELECT tat FROM channel_rate WHERE channel_type = ?",
                               (channel_type,))
            if not due or not rate:
                continue
            at = rate[0]["tat"] - (limit.burst - 1) / limit.per_second
            if at > now and (soonest is None or at < soonest):
                soonest = at
        return soonest

    def renew_lease(self, delivery_id: int, worker: str, lease_seconds: float) -> bool:
        """Extend a lease the worker still holds; False when it was lost."""
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "UPDATE deliveries SET lease_expires = ? WHERE id = ? AND lease_owner = ? "
                "AND status = 'delivering'",
                (now + lease_seconds, delivery_id, worker))
            return cur.rowcount == 1

    def expire_lease(self, delivery_id: int, worker: str) -> bool:
        """End a lease now, for a worker known to be dead; the next claim takes the
        delivery over as it would after the lease ran out."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE deliveries SET lease_expires = 0 WHERE id = ? AND lease_owner = ? "
                "AND status = 'delivering'", (delivery_id, worker))
            return cur.rowcount == 1

    def start_attempt(self, delivery_id: int, worker: str) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO attempts (delivery_id, started_at, worker) VALUES (?, ?, ?)",
                (delivery_id, time.time(), worker))
            return int(cur.lastrowid or 0)

    def finish_attempt(self, attempt_id: int, outcome: str, error: str | None,
                       receipt_id: str | None) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE attempts SET finished_at = ?, outcome = ?, error = ?, receipt_id = ? "
                "WHERE id = ? AND finished_at IS NULL",
                (time.time(), outcome, error, receipt_id, attempt_id))

    def save_delivery_state(self, delivery_id: int, worker: str, state: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute("UPDATE deliveries SET state_json = ?, updated_at = ? WHERE id = ? "
                       "AND lease_owner = ?",
                       (json.dumps(state), time.time(), delivery_id, worker))

    def mark_delivered(self, delivery_id: int, worker: str, receipt_id: str,
                       receipt: dict[str, Any]) -> bool:
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "UPDATE deliveries SET status = 'delivered', receipt_id = ?, receipt_json = ?, "
                "lease_owner = NULL, lease_expires = NULL, last_error = NULL, updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND status = 'delivering'",
                (receipt_id, json.dumps(receipt), now, delivery_id, worker))
            if cur.rowcount != 1:
                return False
            d = db.execute("SELECT invoice_id, channel FROM deliveries WHERE id = ?",
                           (delivery_id,)).fetchone()
            self._append_event(db, d["invoice_id"], "delivered", {
                "channel": d["channel"], "receipt": receipt_id, **receipt})
        return True

    def mark_failed(self, delivery_id: int, worker: str, status: str, error: str,
                    next_attempt_at: float, fallback: NewDelivery | None) -> bool:
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "UPDATE deliveries SET status = ?, last_error = ?, next_attempt_at = ?, "
                "lease_owner = NULL, lease_expires = NULL, updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND status = 'delivering'",
                (status, error, next_attempt_at, now, delivery_id, worker))
            if cur.rowcount != 1:
                return False
            d = db.execute("SELECT invoice_id, customer_id, channel FROM deliveries "
                           "WHERE id = ?", (delivery_id,)).fetchone()
            kind = "delivery-retry" if status == RETRY else "delivery-failed"
            self._append_event(db, d["invoice_id"], kind, {
                "channel": d["channel"], "error": error, "status": status})
            if fallback is not None:
                self._insert_delivery(db, d["invoice_id"], d["customer_id"], fallback, now)
                self._append_event(db, d["invoice_id"], "fallback", {
                    "from": d["channel"], "to": fallback.channel, "reason": fallback.reason})
        return True

    def get_delivery(self, delivery_id: int) -> DeliveryRecord | None:
        rows = self._query("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        return _delivery(rows[0]) if rows else None

    def deliveries(self, *, invoice_id: str | None = None,
                   statuses: Sequence[str] | None = None) -> list[DeliveryRecord]:
        clauses, params = [], []
        if invoice_id is not None:
            clauses.append("invoice_id = ?")
            params.append(invoice_id)
        if statuses:
            clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(statuses)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(f"SELECT * FROM deliveries {where} ORDER BY id", params)
        return [_delivery(r) for r in rows]

    def attempts(self, delivery_id: int) -> list[Attempt]:
        rows = self._query("SELECT * FROM attempts WHERE delivery_id = ? ORDER BY id",
                           (delivery_id,))
        return [Attempt(**dict(r)) for r in rows]

    def requeue(self, delivery_ids: Sequence[int]) -> int:
        """Send failed or dead deliveries around again (``gateway retry``)."""
        now = time.time()
        count = 0
        with self._tx() as db:
            for delivery_id in delivery_ids:
                cur = db.execute(
                    "UPDATE deliveries SET status = 'retry', next_attempt_at = ?, attempts = 0, "
                    "requeued_at = ?, updated_at = ? "
                    "WHERE id = ? AND status IN ('failed', 'dead', 'retry')",
                    (now, now, now, delivery_id))
                if cur.rowcount:
                    count += 1
                    d = db.execute("SELECT invoice_id, channel FROM deliveries WHERE id = ?",
                                   (delivery_id,)).fetchone()
                    self._append_event(db, d["invoice_id"], "requeued", {"channel": d["channel"]})
        return count

    def count_due(self) -> int:
        now = time.time()
        rows = self._query(
            "SELECT count(*) AS n FROM deliveries WHERE (status IN ('pending', 'retry') "
            "AND next_attempt_at <= ?) OR (status = 'delivering' AND lease_expires < ?)",
            (now, now))
        return int(rows[0]["n"])


def _invoice_filter(customer_id: str | None, contract: str | None, issued_from: str | None,
                    issued_to: str | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for column, op, value in (("customer_id", "=", customer_id),
                              ("contract_reference", "=", contract),
                              ("issue_date", ">=", issued_from),
                              ("issue_date", "<=", issued_to)):
        if value:
            clauses.append(f"{column} {op} ?")
            params.append(value)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def _delivery(row: sqlite3.Row) -> DeliveryRecord:
    d = dict(row)
    return DeliveryRecord(
        id=d["id"], invoice_id=d["invoice_id"], customer_id=d["customer_id"],
        channel=d["channel"], channel_type=d["channel_type"],
        settings=json.loads(d["settings_json"]), formats=json.loads(d["formats_json"]),
        fallback=json.loads(d["fallback_json"]) if d["fallback_json"] else None,
        idempotency_key=d["idempotency_key"], status=d["status"], attempts=d["attempts"],
        next_attempt_at=d["next_attempt_at"], lease_owner=d["lease_owner"],
        lease_expires=d["lease_expires"], last_error=d["last_error"],
        receipt_id=d["receipt_id"],
        receipt=json.loads(d["receipt_json"]) if d["receipt_json"] else None,
        state=json.loads(d["state_json"]), fallback_for=d["fallback_for"], reason=d["reason"],
        created_at=d["created_at"], updated_at=d["updated_at"],
        requeued_at=d.get("requeued_at"),
    )


def _statements(script: str) -> Iterator[str]:
    """Split the schema into statements; a trigger body holds ``;`` of its own."""
    buffer = ""
    for part in script.split(";"):
        buffer += part + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                yield buffer.strip()
            buffer = ""


def _migrate(db: sqlite3.Connection) -> None:
    """Columns added after the first release; ``CREATE TABLE IF NOT EXISTS`` skips them."""
    columns = {r["name"] for r in db.execute("PRAGMA table_info(deliveries)")}
    if "requeued_at" not in columns:
        db.execute("ALTER TABLE deliveries ADD COLUMN requeued_at REAL")
    has_keys = db.execute("SELECT 1 FROM customer_keys LIMIT 1").fetchone()
    if not has_keys and db.execute("SELECT 1 FROM customers LIMIT 1").fetchone():
        db.execute("INSERT OR IGNORE INTO customer_keys SELECT id, id FROM customers")
        db.execute("INSERT OR IGNORE INTO customer_keys SELECT j.value, c.id FROM customers c, "
                   "json_each(c.customer_json, '$.match') j")


def _explain(exc: sqlite3.Error, path: Path) -> str:
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
