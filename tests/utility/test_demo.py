"""``gateway demo``: the README's first command. The story it tells (on time, paper fee,
estimate and settlement, reconnection, late reading, meter change), and every invoice it
issues valid as UBL (Peppol BIS 3.0) and CII by the official XSD and schematron."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pytest
from rich.console import Console

from gateway.core import Customer, Gateway
from plugins.utility.demo import run_demo, setup_file
from tests.utility.conftest import source


@pytest.fixture
def demo_gw(gateway_factory: Any) -> Gateway:
    """The demo with JSON-only customers (kept by the demo), so the XML is checked here."""
    gw = gateway_factory()
    for c in setup_file().customer:
        gw.store.put_customer(Customer.model_validate({
            "id": c.id, "name": c.name, "formats": ["json"], "paper": c.id in (
                "100345678", "100567890"),
            "channels": [{"channel": "folder"}, {"channel": "portal"}]}), actor="test")
    text = io.StringIO()
    run_demo(gw, source(gw), Console(file=text, width=200))
    gw.demo_output = text.getvalue()  # type: ignore[attr-defined]
    return gw


@pytest.mark.both_stores
def test_demo_story(demo_gw: Gateway) -> None:
    gw = demo_gw
    printed = gw.demo_output  # type: ignore[attr-defined]
    assert "kept as it is" in printed
    assert "outside the reading window" in printed
    numbers = sorted(r.number for r in gw.store.list_invoices())
    assert numbers == [f"E26{m}-0000{i}" for m in ("09", "10") for i in range(1, 6)]
    store = source(gw).store
    sep = {b.contract: b.data["meters"] for b in store.bills()
           if str(b.period) == "2026-09"}
    assert sep["L-2025-0003"]["LV-OBJ-000987654"]["estimated"] is True

    def doc(contract: str, period: str) -> Any:
        bill = next(b for b in store.bills() if b.contract == contract
                    and str(b.period) == period)
        return gw.load_invoice(gw.find(bill.number).id)

    # The bakery used less than estimated: a credit note correcting September's invoice.
    credit = doc("L-2025-0003", "2026-10")
    assert credit.is_credit_note
    assert [p.number for p in credit.preceding_invoices] == [doc("L-2025-0003",
                                                                 "2026-09").number]
    # Second late-payment disconnection within a year: the fee, with the reason.
    reconnected = doc("L-2025-0004", "2026-09")
    [fee] = [ln for ln in reconnected.lines if ln.item.sellers_id == "reconnection"]
    assert "16.03.2026" in fee.note and "15.09.2026" in fee.note
    # His October reading arrived on 10 November: October is billed by the estimate.
    assert doc("L-2025-0004", "2026-10").lines[0].note.startswith("Aprēķināts patēriņš")
    paper = doc("L-2025-0002", "2026-10")
    assert paper.charges[0].amount == Decimal("2.07") and paper.lines[0].quantity == 0
    # Never back-dated; e-invoices get 20 days, paper to the end of the month.
    for record in gw.store.list_invoices():
        invoice = gw.load_invoice(record.id)
        if invoice.due_date is not None:
            assert (invoice.due_date - invoice.issue_date).days >= 15
    # Every delivery went out: folder and portal for each of the 10 invoices.
    assert all(d.status == "delivered" for d in gw.store.deliveries())
    assert len(gw.store.deliveries()) == 20


def test_demo_invoices_are_valid_ubl_and_cii(demo_gw: Gateway) -> None:
    gw = demo_gw
    for record in gw.store.list_invoices():
        invoice = gw.load_invoice(record.id)
        for name in ("ubl", "cii"):
            # validate=True: XSD, EN 16931 schematron and (UBL) Peppol BIS 3.0; raises
            # InvoiceRejected with the failed rules otherwise.
            document = gw.render(invoice, name, validate=True)
            assert document.content.startswith(b"<?xml")


@pytest.mark.both_stores
def test_demo_twice_issues_nothing_new(demo_gw: Gateway) -> None:
    gw = demo_gw
    text = io.StringIO()
    run_demo(gw, source(gw), Console(file=text, width=200), quiet=True)
    assert "The demo already ran" in text.getvalue()
    assert "E2610-00005" in text.getvalue()
    assert len(gw.store.list_invoices()) == 10
