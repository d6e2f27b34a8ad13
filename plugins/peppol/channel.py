"""The ``peppol`` channel: send a customer's UBL invoice to its Peppol participant.

One delivery = one AS4 message whose MessageId is derived from the delivery's
idempotency key. The built message is written to ``peppol/outbox`` before it is sent,
so a retry after a crash sends the same bytes again; the receiving access point answers
a duplicate with its original receipt, which is verified like any other.

Failures: an unknown participant, a document type the participant does not receive,
``PEPPOL:NOT_SERVICED`` or any other ebMS error are permanent (the customer's fallback,
e.g. e-mail, takes over); DNS, SMP and HTTP transport failures, 5xx and unproven
receipts are retried.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
from cryptography import x509
from lxml import etree
from pydantic import BaseModel

from gateway import Bundle, DeliveryError, DeliveryState, Receipt, atomic_write
from gateway.errors import GatewayError
from plugins.peppol.access_point import AccessPoint, access_point
from plugins.peppol.identifiers import (
    IdentifierError,
    ParticipantId,
    doctype_for,
    receiver_of,
    sender_of,
)
from plugins.peppol.lookup import lookup
from plugins.peppol.settings import PeppolSettings
from plugins.peppol.sml import LookupFailed, NotRegistered
from plugins.peppol.smp import BadMetadata, Endpoint
from plugins.peppol.transport import (
    Outgoing,
    SendFailed,
    build,
    common_name,
    message_id_for,
    post,
    verify_receipt,
)

log = logging.getLogger("gateway.peppol")


def _root_name(content: bytes) -> str:
    """The document's root element name, read without parsing the whole document."""
    for _, element in etree.iterparse(io.BytesIO(content), events=("start",),
                                      resolve_entities=False, no_network=True):
        return etree.QName(element).localname
    return ""


class PeppolChannel:
    name: ClassVar[str] = "peppol"
    description: ClassVar[str] = ("Send UBL (Peppol BIS 3.0) over the Peppol network: SML/SMP "
                                  "lookup, AS4 signed + encrypted, signed receipt kept")
    Settings: ClassVar[type[BaseModel]] = PeppolSettings

    def __init__(self) -> None:
        self.data_dir = Path(".")

    def configure(self, settings: dict[str, Any], data_dir: Path) -> None:
        self.data_dir = data_dir

    @contextlib.contextmanager
    def session(self) -> Iterator[httpx.Client]:
        """One HTTP client (connection pool) for a dispatcher run, handed to ``deliver``.

        The client is yielded, never kept on the channel: one channel object serves every
        dispatcher run in the process (the portal's inline delivery threads, a threaded
        Celery pool), and a client stored on it would be replaced and closed under
        another run's feet when that run ends.
        """
        with httpx.Client(timeout=30.0) as client:
            yield client

    def _ap(self, settings: PeppolSettings) -> AccessPoint:
        try:
            return access_point(settings, self.data_dir)
        except GatewayError as exc:
            raise DeliveryError(str(exc), retryable=False) from None

    def _lookup(self, receiver: ParticipantId, document_type: str, settings: PeppolSettings,
                ap: AccessPoint, client: httpx.Client | None) -> Endpoint:
        try:
            return lookup(receiver, document_type, settings.process, settings=settings,
                          trust=ap.trust, client=client)
        except (NotRegistered, BadMetadata) as exc:
            raise DeliveryError(f"peppol lookup of {receiver}: {exc}",
                                retryable=False) from None
        except LookupFailed as exc:
            raise DeliveryError(f"peppol lookup of {receiver}: {exc}",
                                retryable=True) from None

    def deliver(self, bundle: Bundle, settings: Any, state: DeliveryState,
                session: httpx.Client | None = None) -> Receipt:
        """Send the bundle's UBL; ``session`` is the run's HTTP client from
        :meth:`session` (without one, each request opens and closes its own)."""
        done = state.get("receipt")
        if done:  # sent and verified; only the dispatcher's record was missing
            return Receipt(id=done["id"], detail=done["detail"], recipients=done["recipients"])
        ap = self._ap(settings)
        doc = next((d for d in bundle.documents if d.format == settings.format), None)
        if doc is None:
            raise DeliveryError(f"invoice {bundle.invoice.number}: no {settings.format!r} "
                                "document to send; add it to the customer's formats for "
                                "the peppol channel", retryable=False)
        try:
            receiver = receiver_of(bundle.invoice, settings.participant)
            sender = sender_of(bundle.invoice, settings.sender)
        except IdentifierError as exc:
            raise DeliveryError(str(exc), retryable=False) from None
        message_id = message_id_for(bundle.idempotency_key)
        path = ap.outbox_dir / f"{message_id.split('@', 1)[0]}.json"
        document_type = settings.document_type or doctype_for(_root_name(doc.content))
        key = (receiver.key, document_type, settings.process)
        if path.exists():
            outgoing = Outgoing.from_json(path.read_text(encoding="utf-8"))
            log.info("peppol resend", extra={"message_id": message_id, "url": outgoing.url})
            cached = False
        else:
            endpoint = ap.cached_endpoint(key)
            cached = endpoint is not None
            if endpoint is None:
                endpoint = self._lookup(receiver, document_type, settings, ap, session)
                ap.remember_endpoint(key, endpoint)
            outgoing = build(doc.content, credentials=ap.credentials, url=endpoint.url,
                             receiver_certificate=endpoint.certificate, sender=str(sender),
                             receiver=str(receiver), document_type=document_type,
                             process=settings.process,
                             c1_country=bundle.invoice.seller.address.country,
                             message_id=message_id)
            # Durable before the first byte leaves: a retry must repeat these bytes.
            atomic_write(path, outgoing.to_json().encode())
            state.set("message_id", message_id)
        posted_before = bool(state.get("posted"))
        if not posted_before:
            state.set("posted", True)
        try:
            signal = post(outgoing, timeout=settings.timeout, client=session)
            ack = verify_receipt(outgoing, signal, ap.credentials)
        except SendFailed as exc:
            retryable = exc.retryable
            if exc.unsent or exc.refused:
                ap.forget_endpoint(key)
            # A message that never reached anyone may be rebuilt for a fresh lookup (the
            # participant may have moved); one that may have arrived is only ever resent
            # byte for byte, so that its receipt proves it.
            never_arrived = not posted_before and (exc.unsent or exc.refused)
            if never_arrived and (exc.unsent or cached):
                path.unlink(missing_ok=True)
                state.set("posted", False)
                if exc.refused:  # refused by an endpoint from the cache: look up again
                    retryable = True
            raise DeliveryError(f"peppol to {receiver} ({outgoing.url}): {exc}",
                                retryable=retryable) from None
        digest = hashlib.sha256(ack.receipt).hexdigest()
        receipt_path = ap.receipts_dir / f"{digest}.xml"
        if not receipt_path.exists():
            atomic_write(receipt_path, ack.receipt)
        receiving_ap = common_name(x509.load_der_x509_certificate(outgoing.receiver_certificate))
        buyer = bundle.invoice.buyer.address.country
        ap.store.record_sent(message_id=message_id, sender=str(sender), receiver=str(receiver),
                             document_type=document_type, process=settings.process,
                             c1_country=bundle.invoice.seller.address.country,
                             c4_country=buyer, receiving_ap=receiving_ap,
                             receipt_sha256=digest)
        receipt = {"id": f"peppol:{message_id}",
                   "detail": f"AS4 receipt {ack.receipt_message_id} from {receiving_ap} "
                             f"({outgoing.url}), stored as {receipt_path}",
                   "recipients": {str(receiver): f"receipt sha256:{digest}"}}
        state.set("receipt", receipt)
        log.info("peppol delivered", extra={"message_id": message_id, "receiver": str(receiver),
                                            "receiving_ap": receiving_ap})
        return Receipt(**receipt)
