"""The records the store hands out, the :class:`Store` protocol and the history hash.

Both stores (:mod:`.sqlite`, :mod:`.postgres`) return these plain frozen dataclasses, so
nothing above the store sees a database row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.core.customers import Customer

GENESIS = "0" * 64
PENDING, DELIVERING, RETRY, DELIVERED, FAILED, DEAD = (
    "pending", "delivering", "retry", "delivered", "failed", "dead"
)

#: An invoice's place in the oldest-first order: (issue date, number, id).
InvoiceKey = tuple[str, str, str]


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

    @property
    def key(self) -> InvoiceKey:
        """Its place in the oldest-first order (``Store.invoices_oldest_first``)."""
        return (self.issue_date, self.number, self.id)


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
    label: str  # the customer's name for this channel ("mailbox"); see channel_names()
    channel_type: str  # the channel ("email", "sftp-push")
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
    label: str
    channel_type: str
    settings: dict[str, Any]
    formats: list[str]
    fallback: dict[str, Any] | None
    idempotency_key: str
    fallback_for: int | None = None
    reason: str | None = None

    def queued_event(self) -> tuple[str, dict[str, Any]]:
        """The history event that records this delivery being queued."""
        return "queued", {"channel": self.channel_type, "label": self.label,
                          "formats": self.formats}


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
    def flush(self) -> None: ...
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
    def invoices_oldest_first(self, *, customer_id: str | None = None,
                              after: InvoiceKey | None = None, limit: int = 500,
                              issued_from: str | None = None,
                              issued_to: str | None = None) -> list[InvoiceRecord]: ...
    def customer_contracts(self, customer_id: str) -> list[str]: ...
    def invoices_by_number(self, number: str) -> list[InvoiceRecord]: ...
    def insert_invoice(self, record: InvoiceRecord, documents: Sequence[DocumentRecord],
                       deliveries: Sequence[NewDelivery], *,
                       render_later: bool = False) -> None: ...
    def documents(self, invoice_id: str) -> list[DocumentRecord]: ...
    def invoice_with_documents(self, invoice_id: str,
                               ) -> tuple[InvoiceRecord | None, list[DocumentRecord]]: ...
    def all_documents(self) -> Iterator[DocumentRecord]: ...
    def append_event(self, invoice_id: str, kind: str, data: dict[str, Any]) -> Event: ...
    def events(self, invoice_id: str) -> list[Event]: ...
    def verify_events(self, invoice_id: str) -> str | None: ...
    def claim_delivery(self, worker: str, lease_seconds: float,
                       delivery_id: int | None = None, *,
                       limits: Mapping[str, ChannelLimit] | None = None,
                       due_before: float | None = None,
                       ) -> DeliveryRecord | None: ...
    def claim_deliveries(self, worker: str, lease_seconds: float, count: int, *,
                         limits: Mapping[str, ChannelLimit] | None = None,
                         due_before: float | None = None,
                         delivery_id: int | None = None,
                         ) -> list[DeliveryRecord]: ...
    def begin_attempt(self, delivery_id: int, worker: str, lease_seconds: float, *,
                      channel_type: str | None = None, limit: ChannelLimit | None = None,
                      ) -> tuple[int, int] | float | None: ...
    def start_attempt(self, delivery_id: int, worker: str) -> int: ...
    def finish_attempt(self, attempt_id: int, outcome: str, error: str | None,
                       receipt_id: str | None) -> None: ...
    def save_delivery_state(self, delivery_id: int, worker: str,
                            state: dict[str, Any]) -> None: ...
    def mark_delivered(self, delivery_id: int, worker: str, receipt_id: str,
                       receipt: dict[str, Any], *, attempt_id: int | None = None) -> bool: ...
    def mark_failed(self, delivery_id: int, worker: str, status: str, error: str,
                    next_attempt_at: float, fallback: NewDelivery | None, *,
                    attempt_id: int | None = None, outcome: str | None = None) -> bool: ...
    def get_delivery(self, delivery_id: int) -> DeliveryRecord | None: ...
    def deliveries(self, *, invoice_id: str | None = None,
                   statuses: Sequence[str] | None = None) -> list[DeliveryRecord]: ...
    def attempts(self, delivery_id: int) -> list[Attempt]: ...
    def requeue(self, delivery_ids: Sequence[int]) -> int: ...
    def renew_lease(self, delivery_id: int, worker: str, lease_seconds: float) -> bool: ...
    def expire_lease(self, delivery_id: int, worker: str) -> bool: ...
    def throttled_until(self, limits: Mapping[str, ChannelLimit]) -> float | None: ...
    def count_due(self) -> int: ...
    # The render queue (render_queue.py), for `gateway push --queue` and the workers.
    def claim_render(self, invoice_id: str, worker: str, lease_seconds: float) -> bool: ...
    def finish_render(self, invoice_id: str, worker: str, documents: Sequence[DocumentRecord],
                      deliveries: Sequence[NewDelivery]) -> list[int] | None: ...
    def fail_render(self, invoice_id: str, worker: str, error: str, *,
                    retry_at: float | None) -> bool: ...
    def render_job(self, invoice_id: str) -> dict[str, Any] | None: ...
    def due_renders(self, limit: int = 1000) -> list[str]: ...
    def render_leases(self) -> list[tuple[str, str]]: ...
    def expire_render_lease(self, invoice_id: str, worker: str) -> bool: ...
    def due_delivery_ids(self, limit: int = 1000) -> list[int]: ...
    def queue_counts(self) -> dict[str, int]: ...


def channel_names(data: Mapping[str, Any], deliveries: Iterable[DeliveryRecord] = (),
                  ) -> tuple[str | None, str | None]:
    """``(channel, label)`` named by a history event's data or a stored fallback.

    Since core migration 0003 "channel" is the channel type and "label" the customer's
    name for it. Before, "channel" held the label (and a fallback's "channel_type" the
    type); the history is evidence and is never rewritten, so those events keep their
    words and are read here: data with a "label" is new, data without one is old. An
    old event names no type; the invoice's ``deliveries`` give the one of its label.
    """
    if "label" in data:
        return _text(data.get("channel")), _text(data["label"])
    kind, label = _text(data.get("channel_type")), _text(data.get("channel"))
    if kind is None and label is not None:
        kind = next((d.channel_type for d in deliveries if d.label == label), None)
    return kind, label


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def event_hash(prev: str, invoice_id: str, seq: int, at: float, kind: str, data: str) -> str:
    payload = json.dumps([prev, invoice_id, seq, repr(at), kind, data], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


_event_hash = event_hash  # the name bench/bench_portal.py and older callers import
