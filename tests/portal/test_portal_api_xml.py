"""The API reads UBL and CII too (through the xml plugin), and answers with the
official rules' findings when a document breaks them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.core import Invoice, complete
from tests.portal.conftest import SELLER, Server


@pytest.fixture
def load_plugins() -> str:
    return "json,folder,portal,xml"


def _xml(server: Server, load_example: Any, fmt: str, number: str) -> bytes:
    data = copy.deepcopy(load_example("electricity-household.json"))
    data["number"] = number
    invoice = complete(Invoice.model_validate(data))
    return server.world.gw.render(invoice, fmt, language="lv").content


@pytest.mark.parametrize("fmt", ["ubl", "cii"])
def test_push_xml(server: Server, load_example: Any, fmt: str) -> None:
    number = f"X-{fmt.upper()}-0001"
    body = _xml(server, load_example, fmt, number)
    token = server.token("billing")
    with server.client(headers={"Authorization": f"Bearer {token}"}) as api:
        r = api.post("/api/v1/invoices", content=body,
                      headers={"Content-Type": "application/xml"})
        assert r.status_code == 201, r.text
        out = r.json()
        assert out["number"] == number
        assert out["customer"] == "100234567"
        assert out["invoice"]["amount_due"] == "78.72"
        r = api.post("/api/v1/invoices", content=body,
                      headers={"Content-Type": "application/xml"})
        assert r.json()["status"] == "unchanged"
    assert server.world.gw.store.find_invoice(SELLER, number) is not None


def test_broken_ubl_gets_findings(server: Server, load_example: Any) -> None:
    body = _xml(server, load_example, "ubl", "X-UBL-0002")
    broken = body.replace(b"<cbc:PayableAmount", b"<cbc:PayableAmountX", 1).replace(
        b"</cbc:PayableAmount>", b"</cbc:PayableAmountX>", 1)
    token = server.token("billing")
    with server.client(headers={"Authorization": f"Bearer {token}"}) as api:
        r = api.post("/api/v1/invoices", content=broken,
                      headers={"Content-Type": "application/xml"})
    assert r.status_code in (400, 422), r.text
    out = r.json()
    assert out["status"] == "rejected"
    assert out["errors"] and all(e["rule"] and e["message"] for e in out["errors"])
    assert server.world.gw.store.find_invoice(SELLER, "X-UBL-0002") is None


def test_xxe_is_refused(server: Server) -> None:
    evil = (b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
            b'<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2">'
            b"<ID>&e;</ID></Invoice>")
    token = server.token("billing")
    with server.client(headers={"Authorization": f"Bearer {token}"}) as api:
        r = api.post("/api/v1/invoices", content=evil,
                      headers={"Content-Type": "application/xml"})
    assert r.status_code in (400, 422)
    assert "root:" not in r.text
