"""The store's SQL, shared by SQLite and PostgreSQL.

:class:`SQLStore` implements :class:`~gateway.core.storage.records.Store` on any
:class:`~gateway.core.storage.database.Database`; the engine files add only how to
connect and what their errors mean. Every change that belongs together (an invoice with
its documents, outbox rows and history; a delivery's outcome with its attempt and its
history event) is one transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from gateway.core.customers import Customer
from gateway.core.storage.database import Cursor, Database, Row, placeholders
from gateway.core.storage.records import (
    DELIVERING,
    GENESIS,
    RETRY,
    Attempt,
    ChannelLimit,
    DeliveryRecord,
    DocumentRecord,
    Event,
    InvoiceKey,
    InvoiceRecord,
    NewDelivery,
    event_hash,
)
from gateway.core.storage.render_queue import DUE_DELIVERIES, RenderQueue
from gateway.core.storage.schema import CORE_MIGRATIONS, ensure_current
from gateway.errors import StorageError


class SQLStore(RenderQueue):
    """The gateway's store on a :class:`Database`; see :class:`Store` for the contract.

    Durability: an accepted invoice, a customer change, a requeue are on disk when the
    call returns. The dispatcher's bookkeeping (leases, attempts, outcomes) is committed
    at once too, so a killed process loses none of it, but without waiting for the disk
    each time (``durable=False``): a power cut may forget the last fraction of a second
    of it (see :meth:`Database.tx`), and those deliveries are sent again, which channels
    make harmless (content-checked files and uploads, per-recipient progress and stable
    Message-IDs for e-mail). One disk flush per delivery was the dispatcher's ceiling.
    """

    def __init__(self, db: Database, *, upgrade: bool = True) -> None:
        self.db = db
        #: delivery id → its invoice, for the deliveries this store claimed (a hint)
        self._claimed: dict[int, str] = {}
        try:
            if upgrade:
                ensure_current(db, CORE_MIGRATIONS)
        except BaseException:
            db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def flush(self) -> None:
        """Put the dispatcher's relaxed commits on disk now."""
        self.db.flush()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.db.query(sql, params)

    # ------------------------------------------------------------------ customers

    def put_customer(self, customer: Customer, actor: str) -> None:
        now = time.time()
        new = customer.model_dump_json()
        with self.db.tx() as db:
            self.db.serialize(db, f"customer:{customer.id}")
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
                "INSERT INTO customer_keys (key, customer_id) VALUES (?, ?) "
                "ON CONFLICT DO NOTHING",
                [(key, customer.id) for key in sorted({customer.id, *customer.match})])
            db.execute(
                "INSERT INTO customer_changes (customer_id, at, actor, before_json, after_json) "
                "VALUES (?, ?, ?, ?, ?)",
                (customer.id, now, actor, before, new),
            )

    def get_customer(self, customer_id: str) -> Customer | None:
        row = self.db.one("SELECT customer_json FROM customers WHERE id = ?", (customer_id,))
        return Customer.model_validate_json(row["customer_json"]) if row else None

    def list_customers(self) -> list[Customer]:
        rows = self._query("SELECT customer_json FROM customers ORDER BY id")
        return [Customer.model_validate_json(r["customer_json"]) for r in rows]

    def find_customer(self, keys: Collection[str]) -> Customer | None:
        """The customer whose id or match list holds one of ``keys`` (lowest id wins)."""
        keys = list(keys)
        if not keys:
            return None
        row = self.db.one(
            "SELECT c.customer_json FROM customer_keys k JOIN customers c ON c.id = "
            f"k.customer_id WHERE k.key IN ({placeholders(len(keys))}) ORDER BY c.id "
            "LIMIT 1", keys)
        return Customer.model_validate_json(row["customer_json"]) if row else None

    def customer_changes(self, customer_id: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT at, actor, before_json, after_json FROM customer_changes "
            "WHERE customer_id = ? ORDER BY id", (customer_id,))
        return [dict(r) for r in rows]

    # ------------------------------------------------------------------ invoices

    def find_invoice(self, seller_key: str, number: str) -> InvoiceRecord | None:
        row = self.db.one("SELECT * FROM invoices WHERE seller_key = ? AND number = ?",
                          (seller_key, number))
        return InvoiceRecord(**dict(row)) if row else None

    def get_invoice(self, invoice_id: str) -> InvoiceRecord | None:
        row = self.db.one("SELECT * FROM invoices WHERE id = ?", (invoice_id,))
        return InvoiceRecord(**dict(row)) if row else None

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

    def invoices_oldest_first(self, *, customer_id: str | None = None,
                              after: InvoiceKey | None = None, limit: int = 500,
                              issued_from: str | None = None,
                              issued_to: str | None = None) -> list[InvoiceRecord]:
        """Oldest first (issue date, number, id), the page after the invoice whose key
        is ``after``. A page is found by that key, not by its position, so invoices
        stored while a long export reads neither push a row out of it nor into it twice."""
        where, params = _invoice_filter(customer_id, None, issued_from, issued_to)
        if after is not None:
            where += f"{' AND' if where else 'WHERE'} (issue_date, number, id) > (?, ?, ?)"
            params.extend(after)
        rows = self._query(f"SELECT * FROM invoices {where} ORDER BY issue_date, number, id "
                           "LIMIT ?", [*params, limit])
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
                       deliveries: Sequence[NewDelivery], *, render_later: bool = False) -> None:
        """Store an invoice, its documents and its outbox rows in one transaction
        (``render_later``: no documents yet, but a render job for a worker)."""
        now = time.time()
        r = record
        try:
            with self.db.tx() as db:
                db.execute(
                    "INSERT INTO invoices (id, seller_key, number, customer_id, content_hash, "
                    "invoice_json, type_code, issue_date, due_date, currency, amount_due, "
                    "buyer_name, contract_reference, source, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (r.id, r.seller_key, r.number, r.customer_id, r.content_hash,
                     r.invoice_json, r.type_code, r.issue_date, r.due_date, r.currency,
                     r.amount_due, r.buyer_name, r.contract_reference, r.source, r.created_at))
                self._insert_documents(db, documents)
                for d in deliveries:
                    self._insert_delivery(db, r.id, r.customer_id, d, now)
                if render_later:
                    self._queue_render(db, r.id, now)
                events: list[tuple[str, dict[str, Any]]] = [("accepted", {
                    "number": r.number, "customer": r.customer_id,
                    "content_hash": r.content_hash, "source": r.source})]
                events += [("rendered", {"format": d.format, "sha256": d.sha256,
                                         "size": d.size}) for d in documents]
                events += [d.queued_event() for d in deliveries]
                self._append_events(db, r.id, events)
        except self.db.integrity_errors:
            raise StorageError(
                f"invoice {r.number} of {r.seller_key} was stored concurrently") from None

    @staticmethod
    def _insert_delivery(db: Cursor, invoice_id: str, customer_id: str,
                         d: NewDelivery, now: float) -> None:
        db.execute(
            "INSERT INTO deliveries (invoice_id, customer_id, label, channel_type, "
            "settings_json, formats_json, fallback_json, idempotency_key, status, "
            "next_attempt_at, fallback_for, reason, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?) "
            "ON CONFLICT (idempotency_key) DO NOTHING",
            (invoice_id, customer_id, d.label, d.channel_type, json.dumps(d.settings),
             json.dumps(d.formats), json.dumps(d.fallback) if d.fallback else None,
             d.idempotency_key, now, d.fallback_for, d.reason, now, now))

    def invoice_with_documents(self, invoice_id: str,
                               ) -> tuple[InvoiceRecord | None, list[DocumentRecord]]:
        """An invoice and its documents (what a delivery sends), read together."""
        invoice, documents = self.db.queries([
            ("SELECT * FROM invoices WHERE id = ?", (invoice_id,)),
            ("SELECT * FROM documents WHERE invoice_id = ? ORDER BY format", (invoice_id,))])
        return (InvoiceRecord(**dict(invoice[0])) if invoice else None,
                [DocumentRecord(**dict(r)) for r in documents])

    def documents(self, invoice_id: str) -> list[DocumentRecord]:
        rows = self._query("SELECT * FROM documents WHERE invoice_id = ? ORDER BY format",
                           (invoice_id,))
        return [DocumentRecord(**dict(r)) for r in rows]

    def all_documents(self, *, page: int = 1000) -> Iterator[DocumentRecord]:
        """Every document, read a page at a time: flat memory for any archive size, and
        no read transaction held open while the caller re-hashes files."""
        after: tuple[str, str] = ("", "")
        while True:
            rows = self._query(
                "SELECT * FROM documents WHERE invoice_id > ? OR (invoice_id = ? AND "
                "format > ?) ORDER BY invoice_id, format LIMIT ?",
                (after[0], after[0], after[1], page))
            for row in rows:
                yield DocumentRecord(**dict(row))
            if len(rows) < page:
                return
            after = (rows[-1]["invoice_id"], rows[-1]["format"])

    # ------------------------------------------------------------------ events

    def append_event(self, invoice_id: str, kind: str, data: dict[str, Any]) -> Event:
        with self.db.tx() as db:
            return self._append_events(db, invoice_id, [(kind, data)])[-1]

    def _append_events(self, db: Cursor, invoice_id: str,
                       events: Sequence[tuple[str, dict[str, Any]]], *,
                       head: tuple[str, Cursor] | None = None) -> list[Event]:
        """Extend the invoice's chain; writers to one invoice take turns (on PostgreSQL
        two transactions would otherwise both read the same last link). ``head`` is
        :meth:`_chain_head` already asked for this invoice in this transaction."""
        if head is None or head[0] != invoice_id:
            head = self._chain_head(db, invoice_id)
        last = head[1].fetchone()
        seq, prev = (last["seq"], last["hash"]) if last else (0, GENESIS)
        made, rows = [], []
        for kind, data in events:
            seq += 1
            at = time.time()
            payload = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
            digest = event_hash(prev, invoice_id, seq, at, kind, payload)
            rows.append((invoice_id, seq, at, kind, payload, prev, digest))
            made.append(Event(invoice_id, seq, at, kind, data, prev, digest))
            prev = digest
        db.executemany(
            "INSERT INTO events (invoice_id, seq, at, kind, data_json, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        return made

    def _chain_head(self, db: Cursor, invoice_id: str) -> tuple[str, Cursor]:
        """Take the invoice's history turn and ask for its last link (read later)."""
        self.db.serialize(db, f"history:{invoice_id}")
        return invoice_id, db.execute(
            "SELECT seq, hash FROM events WHERE invoice_id = ? ORDER BY seq DESC LIMIT 1",
            (invoice_id,))

    def _outcome_head(self, db: Cursor, delivery_id: int) -> tuple[str, Cursor] | None:
        """The chain head of a claimed delivery's invoice, asked for before the outcome's
        UPDATE is answered, so that both travel in one round trip."""
        invoice_id = self._claimed.pop(delivery_id, None)
        return self._chain_head(db, invoice_id) if invoice_id else None

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
            expected = event_hash(prev, r["invoice_id"], r["seq"], r["at"], r["kind"],
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
        claimed = self._claim(worker, lease_seconds, 1, delivery_id, limits, due_before,
                              count_attempt=True)
        return claimed[0] if claimed else None

    def claim_deliveries(self, worker: str, lease_seconds: float, count: int, *,
                         limits: Mapping[str, ChannelLimit] | None = None,
                         due_before: float | None = None,
                         delivery_id: int | None = None,
                         ) -> list[DeliveryRecord]:
        """Lease up to ``count`` due deliveries to ``worker`` in one transaction, in due
        order. The rules are :meth:`claim_delivery`'s, applied row by row, so a batch
        never takes more than a channel type's concurrency limit or rate allows.

        A leased delivery is not yet an attempt: :meth:`begin_attempt` counts it just
        before the channel is called, so a worker that dies with part of its batch
        unsent uses up no attempt of those deliveries.
        """
        return self._claim(worker, lease_seconds, count, delivery_id, limits, due_before,
                           count_attempt=False)

    def begin_attempt(self, delivery_id: int, worker: str, lease_seconds: float, *,
                      channel_type: str | None = None, limit: ChannelLimit | None = None,
                      ) -> tuple[int, int] | float | None:
        """Renew the lease, count the attempt and open its row, just before sending;
        returns (attempt id, attempts so far), or None when the lease was lost.

        With the ``limit`` of a rate-limited ``channel_type`` the attempt also takes its
        slot of the shared budget here, at the moment it starts; when there is none yet
        nothing changes and the seconds to wait are returned (a float).
        """
        now = time.time()
        with self.db.tx(durable=False) as db:
            if channel_type is not None and limit is not None and limit.per_second:
                self.db.serialize(db, f"channel-limit:{channel_type}")
                if self._blocked_channels(db, {channel_type: ChannelLimit(
                        per_second=limit.per_second, burst=limit.burst)}, now):
                    tat = db.execute("SELECT tat FROM channel_rate WHERE channel_type = ?",
                                     (channel_type,)).fetchone()["tat"]
                    return max(tat - (limit.burst - 1) / limit.per_second - now, 0.001)
                self._spend_rate(db, channel_type, limit, now)
            counted = db.execute(
                "UPDATE deliveries SET attempts = attempts + 1, lease_expires = ?, "
                "updated_at = ? WHERE id = ? AND lease_owner = ? AND status = 'delivering' "
                "RETURNING attempts", (now + lease_seconds, now, delivery_id, worker))
            # Opened only if the lease was held, decided by the database: the two
            # statements reach a server together (one round trip, not two).
            opened = db.execute(
                "INSERT INTO attempts (delivery_id, started_at, worker) SELECT ?, ?, ? "
                "WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = ? AND lease_owner = ? "
                "AND status = 'delivering') RETURNING id",
                (delivery_id, now, worker, delivery_id, worker))
            row = counted.fetchone()
            attempt = opened.fetchone()
            if row is None or attempt is None:
                return None
            return int(attempt["id"]), int(row["attempts"])

    def _claim(self, worker: str, lease_seconds: float, count: int, delivery_id: int | None,
               limits: Mapping[str, ChannelLimit] | None, due_before: float | None, *,
               count_attempt: bool) -> list[DeliveryRecord]:
        now = time.time()
        limits = limits or {}
        retry_due = now if due_before is None else min(now, due_before)
        clauses: list[str] = []
        params: list[Any] = [now, retry_due, now]
        if delivery_id is not None:
            clauses.append("AND id = ?")
            params.append(delivery_id)
        # A lease forgotten in a power cut only makes the delivery due again at once.
        with self.db.tx(durable=False) as db:
            # Limits are shared budgets: claimers of one limited channel type take turns.
            for channel_type in sorted(limits):
                self.db.serialize(db, f"channel-limit:{channel_type}")
            blocked = self._blocked_channels(db, limits, now)
            if blocked:
                clauses.append(f"AND channel_type NOT IN ({placeholders(len(blocked))})")
                params.extend(blocked)
            rows = db.execute(
                f"SELECT id, status, lease_owner, channel_type, invoice_id, label "
                f"FROM deliveries WHERE {DUE_DELIVERIES} {' '.join(clauses)} "
                f"ORDER BY next_attempt_at, id LIMIT ? {self.db.skip_locked}",
                [*params, count]).fetchall()
            taken: list[int] = []
            per_type: dict[str, int] = {}
            counted = ", attempts = attempts + 1" if count_attempt else ""
            for row in rows:
                channel_type = row["channel_type"]
                limit = limits.get(channel_type)
                if limit is not None and taken and self._blocked_channels(
                        db, {channel_type: limit}, now):
                    continue
                if limit is not None and limit.per_second:
                    if count_attempt:
                        self._spend_rate(db, channel_type, limit, now)
                    elif per_type.get(channel_type, 0) >= limit.burst:
                        # A batch's attempts take their rate slots when they begin
                        # (begin_attempt); more than a burst would only wait leased.
                        continue
                per_type[channel_type] = per_type.get(channel_type, 0) + 1
                if row["status"] == DELIVERING:
                    self._close_abandoned(db, row, now)
                # Updated one by one so that the next row's concurrency check sees it.
                db.execute(
                    "UPDATE deliveries SET status = 'delivering', lease_owner = ?, "
                    f"lease_expires = ?, updated_at = ?{counted} WHERE id = ?",
                    (worker, now + lease_seconds, now, row["id"]))
                taken.append(row["id"])
            if not taken:
                return []
            full = {r["id"]: r for r in db.execute(
                f"SELECT * FROM deliveries WHERE id IN ({placeholders(len(taken))})",
                taken).fetchall()}
        if len(self._claimed) > 10_000:  # leases lost or handed back: hints only
            self._claimed.clear()
        self._claimed.update((i, full[i]["invoice_id"]) for i in taken)
        return [_delivery(full[i]) for i in taken]

    def _close_abandoned(self, db: Cursor, row: Row, now: float) -> None:
        cur = db.execute(
            "UPDATE attempts SET finished_at = ?, outcome = 'abandoned', error = ? "
            "WHERE delivery_id = ? AND finished_at IS NULL",
            (now, f"worker {row['lease_owner']} stopped before it finished "
             "(lease expired)", row["id"]))
        if cur.rowcount == 0:
            return  # leased in a batch, never begun: nothing happened to tell
        self._append_events(db, row["invoice_id"], [("lease-expired", {
            "channel": row["channel_type"], "label": row["label"], "worker": row["lease_owner"],
            "abandoned_attempts": cur.rowcount})])

    @staticmethod
    def _spend_rate(db: Cursor, channel_type: str, limit: ChannelLimit, now: float) -> None:
        assert limit.per_second
        tat = db.execute("SELECT tat FROM channel_rate WHERE channel_type = ?",
                         (channel_type,)).fetchone()
        db.execute(
            "INSERT INTO channel_rate (channel_type, tat) VALUES (?, ?) "
            "ON CONFLICT (channel_type) DO UPDATE SET tat = excluded.tat",
            (channel_type, max(tat["tat"] if tat else now, now) + 1.0 / limit.per_second))

    @staticmethod
    def _blocked_channels(db: Cursor, limits: Mapping[str, ChannelLimit],
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
        with self.db.tx() as db:
            cur = db.execute(
                "UPDATE deliveries SET lease_expires = ? WHERE id = ? AND lease_owner = ? "
                "AND status = 'delivering'",
                (now + lease_seconds, delivery_id, worker))
            return cur.rowcount == 1

    def expire_lease(self, delivery_id: int, worker: str) -> bool:
        """End a lease now, for a worker known to be dead; the next claim takes the
        delivery over as it would after the lease ran out."""
        with self.db.tx() as db:
            cur = db.execute(
                "UPDATE deliveries SET lease_expires = 0 WHERE id = ? AND lease_owner = ? "
                "AND status = 'delivering'", (delivery_id, worker))
            return cur.rowcount == 1

    def start_attempt(self, delivery_id: int, worker: str) -> int:
        with self.db.tx() as db:
            row = db.execute(
                "INSERT INTO attempts (delivery_id, started_at, worker) VALUES (?, ?, ?) "
                "RETURNING id", (delivery_id, time.time(), worker)).fetchone()
            return int(row["id"])

    def finish_attempt(self, attempt_id: int, outcome: str, error: str | None,
                       receipt_id: str | None) -> None:
        with self.db.tx() as db:
            self._finish_attempt(db, attempt_id, outcome, error, receipt_id)

    @staticmethod
    def _finish_attempt(db: Cursor, attempt_id: int, outcome: str, error: str | None,
                        receipt_id: str | None) -> None:
        db.execute(
            "UPDATE attempts SET finished_at = ?, outcome = ?, error = ?, receipt_id = ? "
            "WHERE id = ? AND finished_at IS NULL",
            (time.time(), outcome, error, receipt_id, attempt_id))

    def save_delivery_state(self, delivery_id: int, worker: str, state: dict[str, Any]) -> None:
        with self.db.tx() as db:
            db.execute("UPDATE deliveries SET state_json = ?, updated_at = ? WHERE id = ? "
                       "AND lease_owner = ?",
                       (json.dumps(state), time.time(), delivery_id, worker))

    def mark_delivered(self, delivery_id: int, worker: str, receipt_id: str,
                       receipt: dict[str, Any], *, attempt_id: int | None = None) -> bool:
        """Record the receipt (and close ``attempt_id``) in one transaction; False when
        the worker no longer held the lease."""
        now = time.time()
        with self.db.tx(durable=False) as db:
            if attempt_id is not None:
                self._finish_attempt(db, attempt_id, "delivered", None, receipt_id)
            d = db.execute(
                "UPDATE deliveries SET status = 'delivered', receipt_id = ?, receipt_json = ?, "
                "lease_owner = NULL, lease_expires = NULL, last_error = NULL, updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND status = 'delivering' "
                "RETURNING invoice_id, channel_type, label",
                (receipt_id, json.dumps(receipt), now, delivery_id, worker))
            head = self._outcome_head(db, delivery_id)
            d = d.fetchone()
            if d is None:
                return False
            self._append_events(db, d["invoice_id"], [("delivered", {
                "receipt": receipt_id, **receipt,
                "channel": d["channel_type"], "label": d["label"]})], head=head)
        return True

    def mark_failed(self, delivery_id: int, worker: str, status: str, error: str,
                    next_attempt_at: float, fallback: NewDelivery | None, *,
                    attempt_id: int | None = None, outcome: str | None = None) -> bool:
        """Record a failed attempt (closing ``attempt_id`` as ``outcome``), queue the
        fallback if any, in one transaction; False when the lease was lost."""
        now = time.time()
        with self.db.tx(durable=False) as db:
            if attempt_id is not None:
                self._finish_attempt(db, attempt_id, outcome or status, error, None)
            d = db.execute(
                "UPDATE deliveries SET status = ?, last_error = ?, next_attempt_at = ?, "
                "lease_owner = NULL, lease_expires = NULL, updated_at = ? "
                "WHERE id = ? AND lease_owner = ? AND status = 'delivering' "
                "RETURNING invoice_id, customer_id, channel_type, label",
                (status, error, next_attempt_at, now, delivery_id, worker))
            head = self._outcome_head(db, delivery_id)
            d = d.fetchone()
            if d is None:
                return False
            kind = "delivery-retry" if status == RETRY else "delivery-failed"
            events: list[tuple[str, dict[str, Any]]] = [
                (kind, {"channel": d["channel_type"], "label": d["label"], "error": error,
                        "status": status})]
            if fallback is not None:
                self._insert_delivery(db, d["invoice_id"], d["customer_id"], fallback, now)
                events.append(("fallback", {"from": d["label"], "to": fallback.label,
                                            "reason": fallback.reason}))
            self._append_events(db, d["invoice_id"], events, head=head)
        return True

    def get_delivery(self, delivery_id: int) -> DeliveryRecord | None:
        row = self.db.one("SELECT * FROM deliveries WHERE id = ?", (delivery_id,))
        return _delivery(row) if row else None

    def deliveries(self, *, invoice_id: str | None = None,
                   statuses: Sequence[str] | None = None) -> list[DeliveryRecord]:
        clauses, params = [], []
        if invoice_id is not None:
            clauses.append("invoice_id = ?")
            params.append(invoice_id)
        if statuses:
            clauses.append(f"status IN ({placeholders(len(statuses))})")
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
        with self.db.tx() as db:
            for delivery_id in delivery_ids:
                d = db.execute(
                    "UPDATE deliveries SET status = 'retry', next_attempt_at = ?, attempts = 0, "
                    "requeued_at = ?, updated_at = ? "
                    "WHERE id = ? AND status IN ('failed', 'dead', 'retry') "
                    "RETURNING invoice_id, channel_type, label",
                    (now, now, now, delivery_id)).fetchone()
                if d is not None:
                    count += 1
                    self._append_events(db, d["invoice_id"],
                                        [("requeued", {"channel": d["channel_type"],
                                                       "label": d["label"]})])
        return count

    def count_due(self) -> int:
        """How many deliveries :meth:`due_delivery_ids` would list now, counted by the
        database: the backlog may be millions of rows, none of which is read here."""
        now = time.time()
        rows = self._query(f"SELECT count(*) AS n FROM deliveries WHERE {DUE_DELIVERIES}",
                           (now, now, now))
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


def _delivery(row: Row) -> DeliveryRecord:
    d = dict(row)
    return DeliveryRecord(
        id=d["id"], invoice_id=d["invoice_id"], customer_id=d["customer_id"],
        label=d["label"], channel_type=d["channel_type"],
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
