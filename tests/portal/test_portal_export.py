"""Yearly history export as CSV and PDF, and the contracts page."""

from __future__ import annotations

import csv
import io
from typing import Any

from pypdf import PdfReader

from tests.portal.conftest import PASSWORD_A, PASSWORD_B, Server


def test_csv_history_for_a_year(server: Server) -> None:
    a = server.login("janis@example.lv", PASSWORD_A)
    assert "2026" in a.get("/export").text
    r = a.get("/export/2026.csv")
    assert r.status_code == 200
    assert r.headers["content-disposition"] == \
        'attachment; filename="invoices-100234567-2026.csv"'
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["Numurs", "Izrakstīts", "Apmaksas termiņš"]
    assert [row[0] for row in rows[1:]] == ["E2609-00123", "E2610-00123", "E2611-00123"]
    assert rows[1][9] == "78,72"  # amount due with a decimal comma
    assert rows[3][10] == "E-pasts nav piegādāts"
    assert a.get("/export/2025.csv").content.decode("utf-8-sig").count("\n") == 1


def test_english_csv_uses_commas_and_points(server: Server) -> None:
    b = server.login("anna@ceptuve.lv", PASSWORD_B)
    b.get("/lang/en?next=/export")
    rows = list(csv.reader(io.StringIO(b.get("/export/2026.csv").content.decode("utf-8-sig"))))
    assert rows[0][0] == "Number"
    assert rows[1][0] == "E2611-00125"
    assert rows[1][9] == "2899.95"


def test_pdf_history_for_a_year(server: Server) -> None:
    a = server.login("janis@example.lv", PASSWORD_A)
    r = a.get("/export/2026.pdf")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
    for number in server.world.a_numbers:
        assert number in text
    assert "Jānis Bērziņš" in text
    assert "236,16" in text  # three invoices of 78,72 €
    assert server.world.b_numbers[0] not in text


def test_contracts_page(server: Server) -> None:
    a = server.login("janis@example.lv", PASSWORD_A)
    page = a.get("/contracts").text
    assert 'href="/invoices?contract=100234567"' in page
    filtered = a.get("/invoices?contract=100234567").text
    assert filtered.count("data-invoice=") == 3
    assert a.get("/invoices?status=st_email_failed").text.count("data-invoice=") == 1
    assert a.get("/invoices?start=2026-10-01&end=2026-10-31").text.count("data-invoice=") == 1
    assert a.get("/invoices?start=not-a-date").status_code == 200


def test_lines_link_needs_the_csv_plugin(server: Server) -> None:
    a = server.login("janis@example.lv", PASSWORD_A)
    # the csv plugin is not loaded in this world: no link, and the URL is not there
    assert ".lines.csv" not in a.get("/export").text
    assert a.get("/export/2026.lines.csv").status_code == 404
    assert a.get("/export/2026.exe").status_code == 404


def test_lines_export(world: Any, load_example: Any) -> None:
    from gateway.core import Invoice
    from plugins.portal import exports

    records = world.gw.store.list_invoices(customer_id="100234567")
    content = exports.lines_csv([Invoice.model_validate_json(r.invoice_json)
                                 for r in records], "lv")
    assert content is not None
    text = content.decode("utf-8-sig")
    for number in world.a_numbers:
        rows = [line for line in text.splitlines() if line.startswith(number + ";")]
        assert len(rows) == 3  # three lines per invoice
    assert ";" in text.splitlines()[0]


def test_other_formats_are_made_on_request(server: Server, load_example: Any) -> None:
    from gateway.core import Dispatcher, Invoice

    gw = server.world.gw
    customer = gw.store.get_customer("200987654")
    assert customer is not None
    gw.store.put_customer(customer.model_copy(update={"formats": ["portal-test-pdf"]}),
                          actor="test")
    data = load_example("electricity-business.json")
    data["number"] = "E2612-00125"
    result = gw.push(Invoice.model_validate(data), source="test")
    assert result.status == "accepted", result.error
    Dispatcher(gw).run()
    b = server.login("anna@ceptuve.lv", PASSWORD_B)
    page = b.get(f"/invoices/{result.invoice_id}").text
    assert 'data-format="portal-test-xml"' in page  # offered, though not archived
    r = b.get(f"/invoices/{result.invoice_id}/documents/portal-test-xml")
    assert r.status_code == 200
    assert b"<ID>E2612-00125</ID>" in r.content
    assert [d.format for d in gw.store.documents(result.invoice_id)] == ["portal-test-pdf"]
    # json is not a customer format here, and unknown names are simply not found
    assert b.get(f"/invoices/{result.invoice_id}/documents/json").status_code == 404
    assert b.get(f"/invoices/{result.invoice_id}/documents/nope").status_code == 404


def test_archive_pages(world: Any) -> None:
    from tests.portal.conftest import serve

    world.gw.config.plugins.setdefault("portal", {})["page_size"] = 2
    with serve(world) as server:
        a = server.login("janis@example.lv", PASSWORD_A)
        first = a.get("/invoices").text
        assert first.count("data-invoice=") == 2
        assert "1 / 2" in first and "page_no=2" in first
        second = a.get("/invoices?page_no=2").text
        assert second.count('data-invoice="E2609-00123"') == 1
        assert second.count("data-invoice=") == 1
        assert a.get("/invoices?page_no=3").text.count("data-invoice=") == 0
        assert a.get("/invoices?page_no=0").status_code == 200
        failed = a.get("/invoices?status=st_delivered&page_no=1").text
        assert failed.count("data-invoice=") == 2
