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


def document_stem(number: str) -> str:
    """The file name stem of an invoice's documents: :func:`safe_filename` of the number
    and, when cleaning changed the number, a short hash of it. Two numbers that clean up
    alike (``A/1`` and ``A_1``, or two long ones cut at the same place) then never share
    a file name in a folder, a mailbox or an output directory; a number that needs no
    cleaning keeps its plain name."""
    safe = safe_filename(number)
    if safe == number:
        return safe
    return f"{safe[:110]}-{hashlib.sha256(number.encode()).hexdigest()[:8]}"


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

    :meth:`render_other` renders the same invoice in another registered format, so that
    a Factur-X PDF can embed the CII XML, or an ``xrechnung`` format can start from the
    ``ubl`` output, without importing the other plugin.
    """

    language: str = "en"
    options: Mapping[str, Any] = field(default_factory=dict)
    customer_id: str | None = None
    render_format: Callable[..., bytes] | None = None

    def render_other(self, format_name: str, options: Mapping[str, Any] | None = None) -> bytes:
        """The invoice rendered by the format ``format_name``, with ``options`` for that
        format (validated by its ``Options`` model when it has one) over its
        ``[plugins.<name>]`` settings. Not validated: the caller checks its own output."""
        if self.render_format is None:
            raise LookupError(f"no renderer available for {format_name!r} in this context")
        if options is None:
            return self.render_format(format_name)
        return self.render_format(format_name, dict(options))


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
    ``data`` is structured proof for people and programs (an HTTP status and the
    receiver's own id, an SMTP queue id, a remote path and size): JSON values only
    (str, int, float, bool, None, lists and string-keyed dicts of them). It is stored
    with the delivery and shown by ``gateway status``.
    """

    id: str
    detail: str = ""
    recipients: Mapping[str, str] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a channel wants temporary failures retried; ``None`` keeps the dispatcher's
    ``[dispatcher]`` setting. A channel sets it as the class attribute ``retry``, an
    operator overrides it per channel type in ``[dispatcher.retry.<channel>]``."""

    max_attempts: int | None = None
    base_delay: float | None = None
    max_delay: float | None = None


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
