"""The export as a spreadsheet user meets it: LibreOffice Calc (headless, the Debian
package) opens the CSV with the locale's separator and decimal mark, and we read the
converted workbook with openpyxl: amounts must be numbers, dates dates, Latvian text
intact, and a hostile cell plain text rather than a formula."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl

from gateway import Invoice
from plugins.csv import export_many

# Calc's CSV filter options: separator, quote ("), UTF-8 (76), start at row 1, default
# column types, locale (1062 Latvian, 1033 English US), then "evaluate formulas" set
# to true, so that an unneutralised formula would really be run (the control below).
LOCALES = {"lv": (59, 1062), "en": (44, 1033)}


def calc_options(locale: str) -> str:
    separator, language = LOCALES[locale]
    return f"CSV:{separator},34,76,1,,{language},false,false,false,false,false,0,true"


def open_in_calc(tmp_path: Path, locale: str, *files: Path) -> dict[str, Any]:
    soffice = shutil.which("soffice")
    assert soffice, "LibreOffice is missing: scripts/setup.sh installs libreoffice-calc-nogui"
    out = tmp_path / f"xlsx-{locale}"
    profile = tmp_path / "lo-profile"  # a private profile: parallel runs do not collide
    subprocess.run(
        [soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
         "--infilter=" + calc_options(locale), "--convert-to", "xlsx", "--outdir", str(out),
         *map(str, files)],
        check=True, capture_output=True, timeout=300)
    books = {}
    for f in files:
        sheet = openpyxl.load_workbook(out / f"{f.stem}.xlsx").active
        rows = list(sheet.iter_rows())
        header = [c.value for c in rows[0]]
        books[f.stem] = [dict(zip(header, r, strict=False)) for r in rows[1:]]
    return books


def test_calc_opens_both_dialects_with_numbers_dates_and_latvian_text(
        tmp_path: Path, examples: list[Invoice]) -> None:
    household, paper = examples[0], examples[1]
    address = household.buyer.address.model_copy(update={"line1": "Ganību dambis 24-7\n2. stāvs"})
    buyer = household.buyer.model_copy(update={
        "name": '=HYPERLINK("http://evil.example";"Rēķins")', "address": address})
    hostile = household.model_copy(update={"number": "E-HOSTILE", "buyer": buyer})
    invoices = [household, paper, hostile]
    lv, en = tmp_path / "lv.csv", tmp_path / "en.csv"
    lv.write_bytes(export_many(invoices, "lv"))
    en.write_bytes(export_many(invoices, "en"))
    control = tmp_path / "control.csv"  # what an unprotected export would do
    control.write_bytes(b"\xef\xbb\xbfname;amount\r\n=1+1;12,5\r\n")
    mismatch = tmp_path / "mismatch.csv"  # a lv file opened in an English locale
    mismatch.write_bytes(lv.read_bytes())

    books = open_in_calc(tmp_path, "lv", lv, control) | open_in_calc(tmp_path, "en", en,
                                                                      mismatch)
    for name in ("lv", "en"):
        rows = books[name]
        assert len(rows) == 3 + 4 + 3, "one row per line and per charge"
        first = rows[0]
        totals = household.require_totals()
        assert first["amount_due"].data_type == "n"
        assert Decimal(str(first["amount_due"].value)) == totals.amount_due
        assert Decimal(str(first["price"].value)) == Decimal("0.1389")
        assert first["quantity"].value == 312
        assert first["vat_rate"].value == 21
        assert first["issue_date"].value == dt.datetime(2026, 11, 4), "an ISO date is a date"
        assert first["buyer_name"].value == "Jānis Bērziņš"
        assert first["item_name"].value == "Elektroenerģija"
        charge = rows[6]
        assert charge["item_name"].value == "Papīra rēķina maksa (2,50 EUR ar PVN)"
        assert Decimal(str(charge["line_net_amount"].value)) == Decimal("2.07")
        net = sum(Decimal(str(r["line_net_amount"].value)) for r in rows[3:7])
        assert net == paper.require_totals().total_without_vat
        evil = rows[-1]
        assert evil["buyer_name"].data_type == "s"
        assert evil["buyer_name"].value == """'=HYPERLINK("http://evil.example";"Rēķins")"""
        assert evil["buyer_address_line1"].value == "Ganību dambis 24-7\n2. stāvs"

    control_row = books["control"][0]
    assert control_row["name"].data_type == "f", "Calc really evaluates formulas here"
    assert control_row["amount"].value == 12.5
    wrong_locale = books["mismatch"]
    assert all(r.get("amount_due") is None for r in wrong_locale), (
        "a ; file in an English locale is one column of text: the dialect matters")
