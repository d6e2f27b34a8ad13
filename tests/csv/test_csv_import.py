"""Import: `gateway push batch.csv` as a billing system's operator meets it."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway import GatewayError, InputError, Invoice, InvoiceRejected
from plugins.csv import CsvFormat, export_many
from tests.conftest import EXAMPLES, JSON_CUSTOMERS

# A billing system's own column order, a subset of the specification, English dialect.
BILLING_HEADER = [
    "Invoice_Number", "issue_date", "due_date", "currency", "contract_reference",
    "payment_reference", "iban", "payment_means_code", "seller_name", "seller_vat_id",
    "seller_country", "buyer_name", "buyer_id", "buyer_country", "line_id", "item_name",
    "quantity", "unit", "price", "vat_category", "vat_rate",
]


def billing_row(number: str, line: int, **cells: str) -> list[str]:
    row = {
        "Invoice_Number": number, "issue_date": "2026-11-04", "due_date": "2026-11-30",
        "currency": "EUR", "contract_reference": "100234567",
        "payment_reference": f"Rekins {number} ligums 100234567",
        "iban": "LV62HABA0551234567890", "payment_means_code": "58",
        "seller_name": "Daugavas Elektrība AS", "seller_vat_id": "LV40003000001",
        "seller_country": "LV", "buyer_name": "Jānis Bērziņš", "buyer_id": "C-100234567",
        "buyer_country": "LV", "line_id": str(line), "item_name": "Elektroenerģija",
        "quantity": "312", "unit": "KWH", "price": "0,1389", "vat_category": "S",
        "vat_rate": "21",
    }
    row.update(cells)
    return [row[h] for h in BILLING_HEADER]


def test_push_of_an_exported_batch_is_the_same_invoices_as_their_json(
        run_cli: Any, tmp_path: Path, examples: list[Invoice]) -> None:
    assert run_cli("customer", "import", str(JSON_CUSTOMERS)).exit_code == 0
    batch = tmp_path / "batch.csv"
    batch.write_bytes(export_many(examples, "lv"))
    result = run_cli("push", str(batch))
    assert result.exit_code == 0, result.output
    assert "4 accepted" in result.stdout
    # The JSON originals have the same content hash as what came in by CSV, in
    # either dialect: the round trip through the pipeline is exact.
    originals = [str(EXAMPLES / n) for n in ("electricity-household.json",
                 "electricity-paper.json", "electricity-business.json", "credit-note.json")]
    assert "4 unchanged" in run_cli("push", *originals).stdout
    english = tmp_path / "history-en.csv"
    english.write_bytes(export_many(examples, "en"))
    assert "4 unchanged" in run_cli("push", str(english)).stdout


def test_empty_file_and_header_without_rows_are_refused(
        fmt: CsvFormat, tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    only_header = write_csv(BILLING_HEADER, [], name="only-header.csv")
    for path, message in ((empty, "the file is empty"),
                          (only_header, "no invoice rows follow the header")):
        try:
            list(fmt.parse_file(path, str(path)))
        except InputError as exc:
            assert message in str(exc) and str(path) in str(exc)
        else:
            raise AssertionError(f"{path.name} was accepted")


def test_billing_system_columns_in_any_order_make_complete_invoices(
        fmt: CsvFormat, write_csv: Callable[..., Path]) -> None:
    path = write_csv(BILLING_HEADER, [
        billing_row("E-1", 1),
        billing_row("E-1", 2, item_name="Sadales pakalpojums; mainīgā \"daļa\"",
                    price="0,0427"),
        billing_row("E-2", 1, quantity="158", buyer_name="Ilze Kalniņa",
                    buyer_id="C-100345678"),
    ])
    invoices = list(fmt.parse_file(path, str(path)))
    assert all(isinstance(i, Invoice) for i in invoices), invoices
    first, second = invoices
    assert first.number == "E-1" and len(first.lines) == 2
    assert first.lines[1].item.name == 'Sadales pakalpojums; mainīgā "daļa"'
    assert first.lines[1].price.net == Decimal("0.0427")
    assert first.payment_reference == "Rekins E-1 ligums 100234567"
    assert first.totals is None and first.vat_breakdown == [], "left to the core to compute"
    assert second.buyer.name == "Ilze Kalniņa" and second.lines[0].quantity == 158


def test_every_error_names_file_row_column_and_expectation_and_the_rest_goes_through(
        run_cli: Any, gw: Any, write_csv: Callable[..., Path]) -> None:
    run_cli("customer", "import", str(JSON_CUSTOMERS))
    header = [*BILLING_HEADER, "row_type", "total_with_vat", "line_net_total",
              "total_without_vat", "amount_due"]
    totals = ["", "", "", ""]

    def row(number: str, line: int, kind: str = "", t: list[str] = totals, **cells: str):
        return [*billing_row(number, line, **cells), kind, *t]

    path = write_csv(header, [
        row("OK-1", 1),
        row("BAD-NUMBER", 1), row("BAD-NUMBER", 2, quantity="3.5"),        # rows 3-4
        row("BAD-DATE", 1, due_date="30.11.2026"),                         # row 5
        row("BAD-REPEAT", 1), row("BAD-REPEAT", 2, buyer_name="Cits"),     # rows 6-7
        row("BAD-TOTAL", 1, t=["80,00", "43,34", "43,34", "80,00"]),      # row 8
        row("BAD-UNIT", 1, unit="kilovatstundas"),                         # row 9
        row("BAD-KIND", 1, kind="discount"),                               # row 10
        row("BAD-COUNTRY", 1, seller_country=""),                          # row 11
        row("OK-2", 1),
    ])
    result = run_cli("push", "--no-deliver", str(path))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "2 accepted" in result.stdout and "7 rejected" in result.stdout
    err = re.sub(r"\s+", " ", result.stderr)
    src = str(path)
    expectations = [
        ("BAD-NUMBER", "row 4, column quantity (BT-129): expected a number with a decimal "
                       "comma and no thousands separator, e.g. 1234,56 (lv dialect), got '3.5'"),
        ("BAD-DATE", "row 5, column due_date (BT-9): expected an ISO date YYYY-MM-DD"),
        ("BAD-REPEAT", "row 7, column buyer_name (BT-44): expected the same value as on row 6"),
        ("BAD-TOTAL", "[BR-CO-15] row 8, column total_with_vat (BT-112): stated 80.00"),
        ("BAD-UNIT", "row 9, column unit (BT-130)"),
        ("BAD-KIND", "row 10, column row_type: expected one of line, charge, allowance"),
        ("BAD-COUNTRY", "row 11, column seller_country (BT-40): is required but missing"),
    ]
    for number, message in expectations:
        assert f"{src} invoice {number}" in err, number
        assert message in err, (message, err)
    assert gw.store.invoices_by_number("OK-1") and gw.store.invoices_by_number("OK-2")
    assert not gw.store.invoices_by_number("BAD-NUMBER"), "nothing half-imported"
    assert not gw.store.invoices_by_number("BAD-TOTAL")


def test_charge_and_allowance_rows_and_exemption_reasons(
        fmt: CsvFormat, write_csv: Callable[..., Path]) -> None:
    header = [*BILLING_HEADER, "row_type", "line_net_amount", "reason_code",
              "vat_exemption_reason", "vat_exemption_reason_code"]
    path = write_csv(header, [
        [*billing_row("E-5", 1), "line", "", "", "", ""],
        [*billing_row("E-5", 2, item_name="Ziedojums", quantity="1", unit="C62", price="5",
                      vat_category="E", vat_rate="0"), "", "", "", "Atbrīvots", "VATEX-EU-132"],
        [*billing_row("E-5", 0, line_id="", item_name="Papīra rēķina maksa", quantity="",
                      unit="", price=""), "charge", "2,07", "", "", ""],
        [*billing_row("E-5", 0, line_id="", item_name="Atlaide", quantity="", unit="",
                      price=""), "allowance", "-1,00", "95", "", ""],
    ])
    (invoice,) = list(fmt.parse_file(path, str(path)))
    assert isinstance(invoice, Invoice), invoice
    assert [c.amount for c in invoice.charges] == [Decimal("2.07")]
    assert [(a.amount, a.reason_code) for a in invoice.allowances] == [(Decimal("1.00"), "95")]
    exempt = next(b for b in invoice.vat_breakdown if b.category.value == "E")
    assert exempt.exemption_reason == "Atbrīvots" and exempt.taxable_amount == Decimal("5.00")


def test_exempt_line_without_reason_points_at_the_row(
        fmt: CsvFormat, write_csv: Callable[..., Path]) -> None:
    path = write_csv(BILLING_HEADER, [
        billing_row("E-6", 1),
        billing_row("E-6", 2, vat_category="E", vat_rate="0"),
    ])
    (rejected,) = list(fmt.parse_file(path, str(path)))
    assert isinstance(rejected, InvoiceRejected)
    assert rejected.source == str(path) and rejected.invoice == "E-6"
    assert [str(f) for f in rejected.findings] == [
        "[BR-E-10] row 3, column vat_exemption_reason (BT-120): VAT category E needs an "
        "exemption reason or code; state it in vat_breakdown (the column is not in the file)"]


def test_unknown_and_missing_header_columns_stop_the_file_before_any_invoice(
        fmt: CsvFormat, write_csv: Callable[..., Path]) -> None:
    header = [*BILLING_HEADER, "byuer_email", "colour"]
    path = write_csv(header, [[*billing_row("E-1", 1), "x@example.lv", "red"]])
    try:
        list(fmt.parse_file(path, str(path)))
    except InputError as exc:
        message = str(exc)
    assert message.startswith(f"{path}: row 1 (header): unknown column 'byuer_email' "
                              "(did you mean buyer_email?); unknown column 'colour'")
    no_number = write_csv(BILLING_HEADER[1:], [billing_row("E-1", 1)[1:]], name="b.csv")
    try:
        list(fmt.parse_file(no_number, "b.csv"))
    except InputError as exc:
        assert "column invoice_number is missing" in str(exc)
    else:
        raise AssertionError("a header without invoice_number was accepted")


def test_malformed_csv_or_encoding_imports_nothing(
        run_cli: Any, gw: Any, tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    run_cli("customer", "import", str(JSON_CUSTOMERS))
    good = write_csv(BILLING_HEADER, [billing_row("E-1", 1), billing_row("E-2", 1)])
    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_bytes(good.read_bytes() + b'E-3;2026-11-04;"never closed\r\n')
    latin = tmp_path / "latin.csv"
    latin.write_bytes(good.read_bytes() + "E-4;2026-11-04;Rīga\r\n".encode("cp1257"))
    result = run_cli("push", "--no-deliver", str(unclosed), str(latin))
    assert result.exit_code == 1 and "Traceback" not in result.output
    err = re.sub(r"\s+", " ", result.stderr)
    assert f"{unclosed}: row 4: not well-formed CSV" in err
    assert f"{latin}: line 4: not valid UTF-8 (byte 17 of the line)" in err
    assert "0 accepted" in result.stdout
    assert not gw.store.invoices_by_number("E-1")


def test_row_with_a_wrong_number_of_cells_rejects_only_its_invoice(
        fmt: CsvFormat, tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    path = write_csv(BILLING_HEADER, [billing_row("E-1", 1), billing_row("E-2", 1)[:-3],
                                      billing_row("E-3", 1)])
    results = list(fmt.parse_file(path, str(path)))
    assert [type(r).__name__ for r in results] == ["Invoice", "InvoiceRejected", "Invoice"]
    assert str(results[1].findings[0]).startswith(
        "[GW-CSV] row 3: has 18 cells but the header has 21 columns")


def test_sniffing_by_name_and_by_header(fmt: CsvFormat, examples: list[Invoice]) -> None:
    data = export_many(examples[:1], "en")
    assert fmt.sniff(data[:4096], "anything.txt")
    assert fmt.sniff(b"", "BATCH.CSV")
    assert not fmt.sniff(b'{"number": "E-1"}', "invoice.json")
    assert not fmt.sniff(b'{"invoice_number": "E-1", "lines": []}', "invoice.json")
    assert fmt.sniff(b'"Invoice_Number";"issue_date"\r\n', "export")
    assert not fmt.sniff(b"<?xml version='1.0'?><Invoice/>", "invoice.xml")


def test_bytes_and_file_parsing_agree(fmt: CsvFormat, tmp_path: Path,
                                      examples: list[Invoice]) -> None:
    data = export_many(examples, "lv")
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    assert list(fmt.parse(data, "x.csv")) == list(fmt.parse_file(path, "x.csv")) == examples


def test_an_endless_line_is_refused_without_reading_it_whole(
        fmt: CsvFormat, tmp_path: Path) -> None:
    path = tmp_path / "endless.csv"
    with path.open("wb") as fh:
        fh.write(b"invoice_number;item_name\r\nE-1;")
        fh.write(b"x" * (5 * 2**20))
    try:
        list(fmt.parse_file(path, str(path)))
    except InputError as exc:
        assert str(exc) == (f"{path}: line 2 is longer than 4 MiB; expected one CSV row "
                            "per line")
    else:
        raise AssertionError("a 5 MiB line was accepted")


def test_rows_of_one_invoice_must_be_together(fmt: CsvFormat,
                                              write_csv: Callable[..., Path]) -> None:
    path = write_csv(BILLING_HEADER, [billing_row("E-1", 1), billing_row("E-2", 1),
                                      billing_row("E-1", 2)])
    first, second, again = list(fmt.parse_file(path, str(path)))
    assert isinstance(first, Invoice) and isinstance(second, Invoice)
    assert isinstance(again, InvoiceRejected)
    assert str(again.findings[0]) == ("[GW-CSV] row 4, column invoice_number (BT-1): expected "
                                      "the rows of invoice E-1 together: it already ended at "
                                      "row 2")


def test_line_ends_crlf_lf_and_lone_cr_all_read(fmt: CsvFormat, tmp_path: Path,
                                                examples: list[Invoice]) -> None:
    crlf = export_many(examples, "lv")
    for name, data in (("crlf", crlf), ("lf", crlf.replace(b"\r\n", b"\n")),
                       ("cr", crlf.replace(b"\r\n", b"\r"))):
        path = tmp_path / f"{name}.csv"
        path.write_bytes(data)
        assert list(fmt.parse_file(path, name)) == examples, name


def test_lone_cr_lines_across_read_limits(fmt: CsvFormat, tmp_path: Path, monkeypatch: Any,
                                          examples: list[Invoice]) -> None:
    import plugins.csv.reader as reader

    # A small read limit puts many chunk boundaries inside CR-only lines and inside
    # multibyte letters; the reader must join them back exactly.
    monkeypatch.setattr(reader, "MAX_LINE_BYTES", 4096)
    many = [e.model_copy(update={"number": f"{e.number}-{i}"}) for i in range(5)
            for e in examples]
    path = tmp_path / "mac.csv"
    path.write_bytes(export_many(many, "lv").replace(b"\r\n", b"\r"))
    assert path.stat().st_size > 10 * 4096
    assert list(fmt.parse_file(path, "mac.csv")) == many


def test_english_dialect_without_bom(fmt: CsvFormat, write_csv: Callable[..., Path]) -> None:
    path = write_csv(BILLING_HEADER, [billing_row("E-7", 1, price="0.1389"),
                                      billing_row("E-7", 2, price="1,5")],
                     delimiter=",", bom=False)
    assert not path.read_bytes().startswith(b"\xef\xbb\xbf")
    (rejected,) = list(fmt.parse_file(path, "en.csv"))
    assert isinstance(rejected, InvoiceRejected)
    assert str(rejected.findings[0]) == (
        "[GW-CSV] row 3, column price (BT-146): expected a number with a decimal point and "
        "no thousands separator, e.g. 1234.56 (en dialect), got '1,5'")
    fixed = write_csv(BILLING_HEADER, [billing_row("E-7", 1, price="0.1389")],
                      delimiter=",", bom=False, name="fixed.csv")
    (invoice,) = list(fmt.parse_file(fixed, "fixed.csv"))
    assert isinstance(invoice, Invoice) and invoice.lines[0].price.net == Decimal("0.1389")


def test_extra_billing_columns_are_skipped_only_when_configured(
        gateway_factory: Any, write_csv: Callable[..., Path]) -> None:
    header = [*BILLING_HEADER, "Internal_ID"]
    path = write_csv(header, [[*billing_row("E-8", 1), "X-991"]])
    plain = gateway_factory(data_dir=path.parent / "plain")
    try:
        list(plain.read_file(path))
    except InputError as exc:
        assert "unknown column 'internal_id'" in str(exc)
        assert "ignore_columns of [plugins.csv] in gateway.toml" in str(exc)
    else:
        raise AssertionError("an unknown column was accepted without configuration")
    configured = gateway_factory(config='[plugins.csv]\nignore_columns = ["internal_id"]\n',
                                 data_dir=path.parent / "configured")
    (invoice,) = list(configured.read_file(path))
    assert isinstance(invoice, Invoice) and invoice.number == "E-8"
    try:
        gateway_factory(config='[plugins.csv]\nignore_columns = ["buyer_name"]\n',
                        data_dir=path.parent / "clash")
    except GatewayError as exc:
        assert "buyer_name are columns of the specification" in str(exc)
    else:
        raise AssertionError("ignoring a specified column was accepted")
