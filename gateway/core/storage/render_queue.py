"""The render queue: invoices accepted by ``gateway push --queue`` whose documents a worker
renders later.

It lives in the database next to the outbox, so it is durable the moment the push returns
and the message broker holds nothing else: a task carries an invoice id only, a worker
leases the job before it renders (a duplicated message finds the lease taken or the job
done and does nothing), and a lost message is found again by the sweep
(:meth:`RenderQueue.due_renders`). When rendering is done, the documents, the outbox rows
and the job's end are written in one transaction, as a synchronous push writes them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.core.storage.records import DocumentRecord, NewDelivery

#: The condition of a delivery a worker may claim now (three times the current time as
#: parameters). One text for listing, counting and claiming, so that ``gateway queue``'s
#: "due now" is the number the workers would take. Each status is its own branch so that
#: every one can use the (status, next_attempt_at) index.
DUE_DELIVERIES = ("((status = 'pending' AND next_attempt_at <= ?) "
                  "OR (status = 'retry' AND next_attempt_at <= ?) "
                  "OR (status = 'delivering' AND lease_expires < ?))")

if TYPE_CHECKING:
    from gateway.core.storage.store import SQLStore

# pending → rendering → done; a failed attempt goes to retry, or to failed for good.
R_PENDING, R_RENDERING, R_RETRY, R_DONE, R_FAILED = (
    "pending", "rendering", "retry", "done", "failed")


class RenderQueue:
    """The render-queue part of :class:`~gateway.core.storage.store.SQLStore`."""

    @staticmethod
    def _insert_documents(db: Any, documents: Sequence[DocumentRecord]) -> None:
        if documents:
            db.executemany(
                "INSERT INTO documents (invoice_id, format, filename, media_type, "
                "sha256, size) VALUES (?, ?, ?, ?, ?, ?)",
                [(d.invoice_id, d.format, d.filename, d.media_type, d.sha256, d.size)
                 for d in documents])

    @staticmethod
    def _queue_render(db: Any, invoice_id: str, now: float) -> None:
        db.execute("INSERT INTO render_jobs (invoice_id, status, next_attempt_at, created_at, "
                   "updated_at) VALUES (?, 'pending', ?, ?, ?)", (invoice_id, now, now, now))

    def claim_render(self: SQLStore, invoice_id: str, worker: str,
                     lease_seconds: float) -> bool:
        """Lease a due render job to ``worker``; False when it is not due (done, failed,
        leased by a live worker, or waiting for its retry)."""
        now = time.time()
        with self.db.tx() as db:
            cur = db.execute(
                "UPDATE render_jobs SET status = 'rendering', lease_owner = ?, "
                "lease_expires = ?, attempts = attempts + 1, updated_at = ? "
                "WHERE invoice_id = ? AND ((status IN ('pending', 'retry') "
                "AND next_attempt_at <= ?) OR (status = 'rendering' AND lease_expires < ?))",
                (worker, now + lease_seconds, now, invoice_id, now, now))
            return cur.rowcount == 1

    def finish_render(self: SQLStore, invoice_id: str, worker: str,
                      documents: Sequence[DocumentRecord],
                      deliveries: Sequence[NewDelivery]) -> list[int] | None:
        """Record the rendered documents and queue the deliveries, if ``worker`` still holds
        the lease; returns the new deliveries' ids (None when the lease was lost)."""
        now = time.time()
        with self.db.tx() as db:
            cur = db.execute(
                "UPDATE render_jobs SET status = 'done', lease_owner = NULL, "
                "lease_expires = NULL, last_error = NULL, updated_at = ? "
                "WHERE invoice_id = ? AND lease_owner = ? AND status = 'rendering'",
                (now, invoice_id, worker))
            if cur.rowcount != 1:
                return None
            customer_id = db.execute("SELECT customer_id FROM invoices WHERE id = ?",
                                     (invoice_id,)).fetchone()["customer_id"]
            self._insert_documents(db, documents)
            for d in deliveries:
                self._insert_delivery(db, invoice_id, customer_id, d, now)
            events: list[tuple[str, dict[str, Any]]] = [
                ("rendered", {"format": d.format, "sha256": d.sha256, "size": d.size,
                              "worker": worker}) for d in documents]
            events += [d.queued_event() for d in deliveries]
            if events:
                self._append_events(db, invoice_id, events)
            rows = db.execute("SELECT id FROM deliveries WHERE invoice_id = ? AND "
                              "status = 'pending' ORDER BY id", (invoice_id,)).fetchall()
        return [int(r["id"]) for r in rows]

    def fail_render(self: SQLStore, invoice_id: str, worker: str, error: str, *,
                    retry_at: float | None) -> bool:
        """End a failed attempt: retry at ``retry_at``, or fail for good when None."""
        now = time.time()
        status = R_FAILED if retry_at is None else R_RETRY
        with self.db.tx() as db:
            cur = db.execute(
                "UPDATE render_jobs SET status = ?, last_error = ?, next_attempt_at = ?, "
                "lease_owner = NULL, lease_expires = NULL, updated_at = ? "
                "WHERE invoice_id = ? AND lease_owner = ? AND status = 'rendering'",
                (status, error, retry_at or now, now, invoice_id, worker))
            if cur.rowcount != 1:
                return False
            self._append_events(db, invoice_id, [
                ("render-retry" if retry_at else "render-failed",
                 {"error": error, "worker": worker})])
        return True

    def render_job(self: SQLStore, invoice_id: str) -> dict[str, Any] | None:
        row = self.db.one("SELECT * FROM render_jobs WHERE invoice_id = ?", (invoice_id,))
        return dict(row) if row else None

    def due_renders(self: SQLStore, limit: int = 1000) -> list[str]:
        """Invoices whose rendering is due: new, retry time come, or a lease expired."""
        now = time.time()
        rows = self._query(
            "SELECT invoice_id FROM render_jobs WHERE (status IN ('pending', 'retry') AND "
            "next_attempt_at <= ?) OR (status = 'rendering' AND lease_expires < ?) "
            "ORDER BY next_attempt_at LIMIT ?", (now, now, limit))
        return [r["invoice_id"] for r in rows]

    def render_leases(self: SQLStore) -> list[tuple[str, str]]:
        """(invoice id, worker) of every job being rendered now."""
        rows = self._query("SELECT invoice_id, lease_owner FROM render_jobs "
                           "WHERE status = 'rendering'")
        return [(r["invoice_id"], r["lease_owner"] or "") for r in rows]

    def expire_render_lease(self: SQLStore, invoice_id: str, worker: str) -> bool:
        with self.db.tx() as db:
            cur = db.execute("UPDATE render_jobs SET lease_expires = 0 WHERE invoice_id = ? "
                             "AND lease_owner = ? AND status = 'rendering'", (invoice_id, worker))
            return cur.rowcount == 1

    def due_delivery_ids(self: SQLStore, limit: int = 1000) -> list[int]:
        """Deliveries a worker could claim now, without leasing them (the sweep feeds
        these to the queue; the worker's own claim decides)."""
        now = time.time()
        rows = self._query(
            f"SELECT id FROM deliveries WHERE {DUE_DELIVERIES} "
            "ORDER BY next_attempt_at, id LIMIT ?", (now, now, now, limit))
        return [int(r["id"]) for r in rows]

    def queue_counts(self: SQLStore) -> dict[str, int]:
        """How much work is where: render jobs and deliveries by status."""
        counts: dict[str, int] = {}
        for table, prefix in (("render_jobs", "render"), ("deliveries", "delivery")):
            for row in self._query(f"SELECT status, count(*) AS n FROM {table} GROUP BY status"):
                counts[f"{prefix} {row['status']}"] = int(row["n"])
        return counts
