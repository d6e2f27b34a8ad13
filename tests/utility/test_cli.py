"""``gateway utility ...`` and ``gateway demo`` as a user runs them: clear one-line
errors for bad input (never a traceback), exit codes, and the whole demo."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

DEMO_TOML = Path(__file__).resolve().parents[2] / "plugins" / "utility" / "demo.toml"
Run = Callable[..., Result]


@pytest.mark.both_stores
def test_import_add_list_bill(run_cli: Run, tmp_path: Path, store_url: str | None) -> None:
    result = run_cli("utility", "import", str(DEMO_TOML))
    assert result.exit_code == 0, result.output
    assert "5 customers, 5 contracts, 5 metering points loaded" in result.output
    # Entering last year's readings today is correcting history: said so, and recorded.
    result = run_cli("utility", "reading", "add", "LV-OBJ-000234567", "18400",
                     "--date", "28.10.2025", "--by", "Jānis", "--correct-history",
                     "paper forms of 2025")
    assert result.exit_code == 0, result.output
    assert "consumption 150 kWh" in result.output and "counts for 2025-10" in result.output
    assert "history correction by Jānis (paper forms of 2025)" in result.output
    result = run_cli("utility", "reading", "add", "LV-OBJ-000234567", "18390",
                     "--date", "2025-11-28")
    assert result.exit_code == 1
    assert "field value: 18390 is lower than the previous reading 18400" in result.output
    assert "Traceback" not in result.output
    csv = tmp_path / "r.csv"
    csv.write_text("metering_point;date;value\nLV-OBJ-000234567;15.11.2025;18500\n"
                   "LV-OBJ-000345678;28.10.2025;x\n", encoding="utf-8")
    result = run_cli("utility", "reading", "import", str(csv), "--correct-history",
                     "operator's file of 2025")
    assert result.exit_code == 1
    assert "counts for 2025-11" in result.output
    assert "row 3: field value: expected a number" in result.output
    assert "1 accepted, 0 already known, 1 refused" in result.output
    result = run_cli("utility", "reading", "list", "LV-OBJ-000234567")
    assert "Jānis" in result.output and "contract" in result.output and "csv" in result.output
    result = run_cli("utility", "reconnection", "L-2025-0004", "--date", "2025-11-20")
    assert result.exit_code == 1 and "no disconnection in force" in result.output
    for day in ("2025-09-10", "2025-11-10"):
        result = run_cli("utility", "disconnection", "L-2025-0004", "--date", day,
                         "--reason", "late-payment")
        assert result.exit_code == 0, result.output
        result = run_cli("utility", "reconnection", "L-2025-0004", "--date",
                         day.replace("-10", "-12", 1)[:8] + "20")
        assert result.exit_code == 0, result.output
    assert "fee: a household disconnected for late payment again within a year " \
        "(2025-09-10 and 2025-11-10); the next invoice bills it" in result.output
    result = run_cli("utility", "supply", "L-2025-0004")
    assert "late-payment" in result.output and "first for late" in result.output
    # No gateway customer yet: a clear error per contract, exit code 1.
    result = run_cli("utility", "bill", "2025-11", "--as-of", "2025-12-15")
    assert result.exit_code == 1
    assert "customer 100234567 is not a gateway customer" in result.output
    for cid, paper in (("100234567", "--no-paper"), ("100345678", "--paper"),
                       ("200987654", "--no-paper"), ("100456789", "--no-paper")):
        result = run_cli("customer", "add", cid, "--name", cid, "--format", "json",
                         "--channel", "folder", paper)
        assert result.exit_code == 0, result.output
    result = run_cli("utility", "bill", "2025-11", "--as-of", "2025-12-09")
    assert "3 invoices issued" in result.output and "1 reconnection fees" in result.output
    assert "1 waiting for their issue date" in result.output
    assert "waiting: L-2025-0002 (2025-12-10); run again on or after 2025-12-10" in \
        result.output
    result = run_cli("utility", "bill", "2025-11", "--as-of", "2025-12-15")
    assert "1 invoices issued" in result.output and "1 with the paper fee" in result.output
    assert "3 issued before" in result.output and "deliveries: 1 delivered" in result.output
    result = run_cli("utility", "contracts")
    assert "E2511-00001" in result.output
    # The payment term each customer gets: 20 days as e-invoice (15 + 5), paper to the
    # end of the month but at least 15 days; the contract's base term is shown.
    assert "15 days (default)" in result.output
    assert "e-invoice: 20 days" in result.output and "paper: end of month" in result.output


def test_cli_reading_window_is_judged_by_today(run_cli: Run) -> None:
    from plugins.utility.dates import local_today, next_window_period, window_period

    assert run_cli("utility", "import", str(DEMO_TOML)).exit_code == 0
    today = local_today()
    result = run_cli("utility", "reading", "add", "LV-OBJ-000234567", "18300",
                     "--date", "2025-10-28")
    assert result.exit_code == 0, result.output
    # A past meter date does not choose the month: the day it arrives (today) does.
    expected = window_period(today) or next_window_period(today).shift(1)
    assert f"counts for {expected}" in result.output
    listed = run_cli("utility", "reading", "list", "LV-OBJ-000234567").output
    assert today.isoformat() in listed


def test_bad_input_is_one_clear_line(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli("utility", "bill", "2026-13")
    assert result.exit_code == 2 and "expected a month as YYYY-MM" in result.output
    bad = tmp_path / "setup.toml"
    bad.write_text('[[contract]]\nnumber = "K1"\ncustomer = "C1"\nstart = "1.1.2026"\n',
                   encoding="utf-8")
    result = run_cli("utility", "import", str(bad))
    assert result.exit_code == 1
    assert f"{bad}: [[contract]] #1, field start:" in result.output
    assert "Traceback" not in result.output
    result = run_cli("utility", "reading", "add", "NOPE", "12")
    assert result.exit_code == 1 and "no metering point 'NOPE'" in result.output
    result = run_cli("utility", "reading", "add", "NOPE", "twelve")
    assert result.exit_code == 2 and "expected a number" in result.output


@pytest.mark.both_stores
def test_gateway_demo(run_cli: Run, tmp_path: Path, store_url: str | None) -> None:
    result = run_cli("demo")
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("1. Supplier data", "Month end 2026-09", "Month end 2026-10",
                 "outside the reading window", "2026-10: 5 invoices issued"):
        assert text in out
    deliveries = tmp_path / "data" / "deliveries"
    pdfs = sorted((deliveries / "print-shop").glob("E2610-*.pdf"))
    assert len(pdfs) == 2 and pdfs[0].read_bytes().startswith(b"%PDF")
    # The bakery's October document is a credit note, in UBL too.
    assert "credit note" in out
    assert list((deliveries / "200987654").glob("E2610-00002*.xml"))
    result = run_cli("status")
    assert "E2610-00005" in result.output
