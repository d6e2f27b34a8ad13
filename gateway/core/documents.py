"""The values that flow between the core and plugins: documents, bundles, receipts."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.core.model import Invoice

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(stem: str) -> str:
    """A file name that cannot leave its directory: invoice numbers may hold ``/`` or ``..``."""
    cleaned = _UNSAFE_FILENAME.sub("_", stem).strip("._") or "invoice"
    return cleaned[:120]


@dataclass(frozen=True, slots=True)
class Document:
    """One rendered document: the bytes of one invoice in one format."""

    format: str
    media_type: str
    filename: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True, slots=True)
class RenderContext:
    """What a format may know beyond the invoice while rendering.

    ``render_format`` renders the same invoice in another registered format, so that a
    Factur-X PDF can embed the CII XML without importing the XML plugin.
    """

    language: str = "en"
    options: Mapping[str, Any] = field(default_factory=dict)
    customer_id: str | None = None
    render_format: Callable[[str], bytes] | None = None

    def render_other(self, format_name: str) -> bytes:
        if self.render_format is None:
            raise LookupError(f"no renderer available for {format_name!r} in this context")
        return self.render_format(format_name)


@dataclass(frozen=True, slots=True)
class Bundle:
    """What one delivery carries: an invoice and its documents for one customer channel.

    ``idempotency_key`` is stable for (invoice, customer, channel): a channel that can
    (an e-mail Message-ID, an SFTP file name, a folder path) should derive its own
    identifiers from it so that a repeated attempt is recognisable as the same one.
    """

    invoice_id: str
    invoice: Invoice
    customer_id: str
    customer_name: str
    language: str
    documents: tuple[Document, ...]
    idempotency_key: str
    portal_url: str | None = None
    reason: str | None = None  # set when this delivery is a fallback for a failed one


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof that a delivery happened, as the receiving side reported it.

    ``id`` is stable: the same delivery repeated gives the same receipt id.
    ``recipients`` maps each recipient (address, path, account) to what it said.
    """

    id: str
    detail: str = ""
    recipients: Mapping[str, str] = field(default_factory=dict)


class DeliveryState:
    """Durable per-delivery progress a channel may keep between attempts.

    An e-mail channel records each recipient that accepted the message, so a retry
    after a crash never sends to that recipient again. ``save`` writes through to the
    database before it returns.
    """

    def __init__(self, data: dict[str, Any], save: Callable[[dict[str, Any]], None]) -> None:
        self._data = data
        self._save = save

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._data[key] = value
        self._save(dict(self._data))

    def done(self, recipient: str) -> bool:
        return recipient in self._data.get("done", {})

    def mark_done(self, recipient: str, receipt: str) -> None:
        done = dict(self._data.get("done", {}))
        done[recipient] = receipt
        self.set("done", done)

    @property
    def data(self) -> dict[str, Any]:
        return dict(self._data)
