"""Whatever a billing system sends, the importer answers with invoices, rejections that
name a row, or one error for the file: never a traceback."""

from __future__ import annotations

import csv
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import InputError, Invoice, InvoiceRejected
from plugins.csv import HEADER, CsvFormat, export_many
from tests.csv.conftest import EXAMPLE_NAMES, completed_example

EXPORT = export_many([completed_example(n) for n in EXAMPLE_NAMES], "lv")
ROWS = list(csv.reader(io.StringIO(EXPORT.decode("utf-8-sig"), newline=""), delimiter=";"))
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
cells = st.one_of(st.text(max_size=12), st.sampled_from(
    ["", "-", "1,5", "1.5", "1e5", "NaN", "2026-02-30", "30.11.2026", "'=1", "X", "charge",
     "allowance", "S", "O", "E", "999999999999999999999", "0", "-0,00"]))


def parse(data: bytes) -> list[Invoice | InvoiceRejected]:
    return list(CsvFormat().parse(data, "fuzz.csv"))


@FUZZ
@given(row=st.integers(1, len(ROWS) - 1), column=st.integers(0, len(HEADER) - 1),
       value=cells)
def test_a_changed_cell_rejects_at_most_its_invoice_naming_a_row(row: int, column: int,
                                                                  value: str) -> None:
    rows = [list(r) for r in ROWS]
    rows[row][column] = value
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(rows)
    results = parse(b"\xef\xbb\xbf" + out.getvalue().encode())
    rejected = [r for r in results if isinstance(r, InvoiceRejected)]
    assert len(rejected) <= 3  # a changed number may split an invoice in three
    for r in rejected:
        assert r.source == "fuzz.csv"
        assert r.findings and all(f.path.startswith("row ") for f in r.findings), r.findings
    if not rejected and HEADER[column] not in ("line_vat_amount", "line_amount_with_vat"):
        assert sum(isinstance(r, Invoice) for r in results) >= 4


@FUZZ
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_input_is_an_input_error_or_a_result(data: bytes) -> None:
    try:
        results = parse(data)
    except InputError as exc:
        assert str(exc).startswith("fuzz.csv: ")
        return
    assert all(isinstance(r, Invoice | InvoiceRejected) for r in results)
