"""The year export is written by the one CSV writer: invoice number and contract
reference that look like formulas open as text; amounts stay numbers."""

from __future__ import annotations

import copy
import csv
import io
import re
from pathlib import Path
from typing import Any

from gateway.core import Dispatcher, Invoice
from gateway.core.csvout import neutralise, restore
from tests.portal.conftest import PASSWORD_A, Server

REPO = Path(__file__).resolve().parents[2]


def test_formula_cells_in_the_year_export_are_neutralised(server: Server,
                                                          load_example: Any) -> None:
    gw = server.world.gw
    data = copy.deepcopy(load_example("electricity-household.json"))
    data["number"] = "=HYPERLINK(\"http://evil.example\";\"x\")"
    data["contract_reference"] = "@SUM(A1:A9)"
    result = gw.push(Invoice.model_validate(data), source="test")
    assert result.status == "accepted", result.error
    Dispatcher(gw).run()
    a = server.login("janis@example.lv", PASSWORD_A)
    text = a.get("/export/2026.csv").content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    row = next(r for r in rows if "HYPERLINK" in r[0])
    assert row[0] == "'=HYPERLINK(\"http://evil.example\";\"x\")"
    assert row[4] == "'@SUM(A1:A9)"
    assert row[9] == "78,72"


def test_numbers_stay_numbers_and_neutralising_round_trips() -> None:
    for cell in ("-78,72", "-5", "12.50"):
        assert neutralise(cell) == cell
    for cell in ("=1+2", "+1", "-1+2", "@x", "\tx", "'=x", "'", "-"):
        assert neutralise(cell).startswith("'")
        assert restore(neutralise(cell)) == cell


def test_no_csv_is_written_around_the_one_writer() -> None:
    """Every CSV the gateway writes goes through gateway.core.csvout.CsvWriter."""
    offenders = []
    for path in [*REPO.joinpath("gateway").rglob("*.py"), *REPO.joinpath("plugins").rglob("*.py")]:
        if path.name == "csvout.py":
            continue
        if re.search(r"\bcsv\.(writer|DictWriter)\(", path.read_text(encoding="utf-8")):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
