"""Exports of a big customer's history are bounded: the CSVs stream page by page in
constant memory, and a PDF over ``export_pdf_invoices`` is refused with the months
offered instead, so no export holds its request for minutes."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from pypdf import PdfReader

from plugins.portal import pages
from tests.portal.conftest import PASSWORD_A, World, serve


def test_the_csv_exports_stream_in_pages_oldest_first(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pages, "EXPORT_PAGE", 2)  # three invoices: two pages
    with serve(world) as server:
        a = server.login("janis@example.lv", PASSWORD_A)
        r = a.get("/export/2026.csv")
        assert r.status_code == 200
        assert "content-length" not in r.headers  # streamed as it is written
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
        assert [row[0] for row in rows[1:]] == ["E2609-00123", "E2610-00123", "E2611-00123"]
        r = a.get("/export/2026-10.csv")
        assert r.headers["content-disposition"] == \
            'attachment; filename="invoices-100234567-2026-10.csv"'
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
        assert [row[0] for row in rows[1:]] == ["E2610-00123"]
        assert a.get("/export/2026-13.csv").status_code == 404


def test_a_pdf_over_the_limit_is_refused_with_the_months_offered(world: World) -> None:
    world.gw.config.plugins.setdefault("portal", {})["export_pdf_invoices"] = 2
    with serve(world) as server:
        a = server.login("janis@example.lv", PASSWORD_A)
        r = a.get("/export/2026.pdf")
        assert r.status_code == 413
        assert "3 rēķini" in r.text and "ne vairāk kā 2" in r.text
        assert 'href="/export/2026-09.pdf"' in r.text
        r = a.get("/export/2026-09.pdf")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf"
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages)
        assert "E2609-00123" in text
        assert "E2610-00123" not in text


def test_the_lines_export_streams(world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "json,folder,portal,csv")
    from gateway.plugins import get_plugin_manager
    from tests.portal.conftest import TestPlugin

    world.gw.plugins = get_plugin_manager(extra=(("portal-tests", TestPlugin()),))
    monkeypatch.setattr(pages, "EXPORT_PAGE", 2)
    with serve(world) as server:
        a = server.login("janis@example.lv", PASSWORD_A)
        r = a.get("/export/2026.lines.csv")
        assert r.status_code == 200, r.text
        assert "content-length" not in r.headers
        numbers = [line.split(";")[0] for line in r.content.decode("utf-8-sig").splitlines()[1:]]
        assert numbers == ["E2609-00123"] * 3 + ["E2610-00123"] * 3 + ["E2611-00123"] * 3


def test_the_operators_failed_list_is_cut_with_the_count(
        world: World, load_example: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.core import Dispatcher, Invoice
    from plugins.portal import operator
    from tests.portal.conftest import OPERATOR_PASSWORD

    gw = world.gw
    customer = gw.store.get_customer("100234567")
    assert customer is not None
    gw.store.put_customer(customer.model_copy(update={"channels": [
        customer.channels[0].model_copy(update={"settings": {"to": ["x@bounce.example"]}})]}),
        actor="test")
    data = load_example("electricity-household.json")
    data["number"] = "E2612-00123"
    assert gw.push(Invoice.model_validate(data), source="test").status == "accepted"
    Dispatcher(gw).run()
    monkeypatch.setattr(operator, "FAILED_ROWS", 1)
    with serve(world) as server:
        op = server.login("operator@daugavas.lv", OPERATOR_PASSWORD)
        page = op.get("/operator").text
    assert page.count('name="delivery"') == 1
    assert "Parādītas 1 no 2" in page


def test_an_invoice_pushed_while_an_export_streams_moves_no_other_row_out(
        world: World, load_example: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The export reads a page at a time; an invoice pushed between two pages (the month
    end runs while the customer downloads the year) neither hides an older row nor
    repeats one."""
    from gateway.core import Invoice
    from plugins.portal.state import Portal
    from tests.portal.conftest import _variant

    monkeypatch.setattr(pages, "EXPORT_PAGE", 2)
    portal = Portal(world.gw.config, world.gw.plugins)
    try:
        rows = pages._oldest_first(portal, "100234567", issued_from="2026-01-01",
                                   issued_to="2026-12-31")
        numbers = [next(rows).number, next(rows).number]  # the first page
        data = _variant(load_example("electricity-household.json"), "E2612-00123",
                        "2026-12-03", "2026-12-31", ("2026-11-01", "2026-11-30"))
        assert world.gw.push(Invoice.model_validate(data), source="test").status == "accepted"
        numbers += [r.number for r in rows]
    finally:
        portal.close()
    assert numbers == ["E2609-00123", "E2610-00123", "E2611-00123", "E2612-00123"]
