"""Received messages → invoices: each stored message goes through the pipeline as an
incoming invoice for the customer that the receiving participant belongs to.

The official rules (XSD, EN 16931 and Peppol BIS schematron) run on the document as it
arrived and every finding is kept with the message and in the invoice's event log; an
invoice the gateway cannot accept stays in the inbox with its reason (``gateway peppol
inbox``), never dropped. The original UBL is archived and delivered as it arrived.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
from typing import Any

from lxml import etree

from gateway import Document, InvoiceRejected, safe_filename
from gateway.errors import GatewayError
from plugins.peppol.access_point import AccessPoint

log = logging.getLogger("gateway.peppol")
SBDH_NS = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclasses.dataclass(frozen=True)
class Envelope:
    """What the SBDH says, and the business document it carries."""

    sender: str
    receiver: str
    instance_id: str | None
    c1_country: str | None
    document: bytes


def open_sbd(data: bytes) -> Envelope:
    root = etree.fromstring(data, _PARSER)
    header = root.find(f"{{{SBDH_NS}}}StandardBusinessDocumentHeader")
    if header is None:
        raise GatewayError("the payload has no StandardBusinessDocumentHeader")
    body = next((child for child in root if isinstance(child.tag, str)
                 and child is not header), None)
    if body is None:
        raise GatewayError("the SBD carries no business document")
    country = None
    for scope in header.iterfind(f"{{{SBDH_NS}}}BusinessScope/{{{SBDH_NS}}}Scope"):
        if scope.findtext(f"{{{SBDH_NS}}}Type") == "COUNTRY_C1":
            country = scope.findtext(f"{{{SBDH_NS}}}InstanceIdentifier")
    return Envelope(
        sender=header.findtext(f"{{{SBDH_NS}}}Sender/{{{SBDH_NS}}}Identifier", ""),
        receiver=header.findtext(f"{{{SBDH_NS}}}Receiver/{{{SBDH_NS}}}Identifier", ""),
        instance_id=header.findtext(
            f"{{{SBDH_NS}}}DocumentIdentification/{{{SBDH_NS}}}InstanceIdentifier"),
        c1_country=country,
        document=_standalone(body))


def _standalone(element: etree._Element) -> bytes:
    """The business document on its own, without the SBD's namespace declarations."""
    document = copy.deepcopy(element)
    etree.cleanup_namespaces(document)
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8")


def _finding(f: Any) -> dict[str, Any]:
    return {"rule": f.rule, "severity": f.severity, "path": f.path, "term": f.term,
            "message": f.message}


def process_one(gw: Any, ap: AccessPoint, message_id: str) -> str:
    """Push one stored message; returns the new inbox status."""
    record = ap.store.received(message_id)
    if record is None or record.status != "stored":
        return record.status if record else "missing"
    source = f"peppol:{message_id}"
    findings: list[dict[str, Any]] = []
    invoice_id = None
    try:
        data = (ap.directory / record.payload_path).read_bytes()
        if hashlib.sha256(data).hexdigest() != record.payload_sha256:
            raise GatewayError(f"{record.payload_path} does not match its recorded digest")
        envelope = open_sbd(data)
        document = envelope.document
        fmt = gw.detect_format(document, "received.ubl.xml", source=source)
        if getattr(fmt, "can_validate", False):
            findings = [_finding(f) for f in fmt.validate(document)]
        parsed = list(gw.read_bytes(document, source=source, filename="received.ubl.xml"))
        if len(parsed) != 1:
            raise GatewayError(f"expected one invoice in the document, found {len(parsed)}")
        invoice = parsed[0]
        if isinstance(invoice, InvoiceRejected):
            raise invoice
        received = Document(fmt.name, fmt.media_type,
                            f"{safe_filename(invoice.number)}.{fmt.extension}", document)
        result = gw.push(invoice, source=source, customer_id=record.customer_id,
                         received=received)
        if result.error is not None:
            raise result.error
        invoice_id = result.invoice_id
        ap.store.set_receiver_country(message_id, invoice.buyer.address.country)
        if result.status == "accepted" and invoice_id:
            gw.store.append_event(invoice_id, "peppol-received", {
                "message_id": message_id, "sender": record.sender,
                "sending_ap": record.sending_ap, "findings": findings})
        status, error = "accepted", None
    except (GatewayError, OSError, etree.XMLSyntaxError) as exc:
        status, error = "rejected", str(exc)
        if isinstance(exc, InvoiceRejected):
            findings += [_finding(f) for f in exc.findings]
    ap.store.processed(message_id, status, invoice_id=invoice_id, findings=findings,
                       error=error)
    level = logging.INFO if status == "accepted" else logging.WARNING
    log.log(level, "peppol invoice %s", status, extra={
        "message_id": message_id, "invoice": invoice_id, "customer": record.customer_id,
        "findings": len(findings), "error": error})
    return status


def process_pending(gw: Any, ap: AccessPoint) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in ap.store.inbox(statuses=("stored",)):
        status = process_one(gw, ap, record.message_id)
        counts[status] = counts.get(status, 0) + 1
    return counts
