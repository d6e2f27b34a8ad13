"""The core's one addition for incoming invoices: ``push(received=...)`` archives and
delivers the document as it arrived instead of a rendering of the same format."""

from __future__ import annotations

from pathlib import Path

from gateway import Document, Invoice, complete
from gateway.core.config import load_config
from gateway.core.pipeline import Gateway
from gateway.plugins import get_plugin_manager
from plugins.peppol.incoming import open_sbd
from tests.peppol.conftest import add_customer, business_invoice


def test_push_keeps_the_received_document_and_renders_the_other_formats(
        tmp_path: Path) -> None:
    gw = Gateway(load_config(tmp_path), get_plugin_manager())
    try:
        add_customer(gw, id="ceptuve", name="Ziemeļu Ceptuve SIA", formats=["ubl", "json"],
                     match=["LV40103987654"], channels=[{"channel": "folder"}])
        invoice = Invoice.model_validate(business_invoice())
        arrived = gw.render(complete(invoice), "ubl").content.replace(
            b"<cbc:Note>", b"<!-- as it arrived --><cbc:Note>", 1)
        assert arrived.count(b"as it arrived") == 1
        result = gw.push(invoice, source="peppol:test", customer_id="ceptuve",
                         received=Document("ubl", "application/xml", "E2611-00125.ubl.xml",
                                           arrived))
        assert result.status == "accepted", result.error
        docs = {d.format: d for d in gw.store.documents(result.invoice_id)}
        assert gw.archive.get(docs["ubl"].sha256) == arrived
        assert b'"number"' in gw.archive.get(docs["json"].sha256)  # rendered as usual
    finally:
        gw.close()


def test_the_business_document_is_taken_out_of_the_sbd_without_its_namespaces() -> None:
    sbd = (b'<sh:StandardBusinessDocument xmlns:sh="http://www.unece.org/cefact/namespaces/'
           b'StandardBusinessDocumentHeader"><sh:StandardBusinessDocumentHeader>'
           b"<sh:Sender><sh:Identifier>9939:LV1</sh:Identifier></sh:Sender>"
           b"<sh:Receiver><sh:Identifier>9939:LV2</sh:Identifier></sh:Receiver>"
           b"<sh:BusinessScope><sh:Scope><sh:Type>COUNTRY_C1</sh:Type>"
           b"<sh:InstanceIdentifier>LV</sh:InstanceIdentifier></sh:Scope></sh:BusinessScope>"
           b"</sh:StandardBusinessDocumentHeader>"
           b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>'
           b"</sh:StandardBusinessDocument>")
    envelope = open_sbd(sbd)
    assert (envelope.sender, envelope.receiver, envelope.c1_country) == \
        ("9939:LV1", "9939:LV2", "LV")
    assert b"StandardBusinessDocumentHeader" not in envelope.document
    assert envelope.document.endswith(
        b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>')
