"""Fees: exact amounts including VAT, validity dates, and the reconnection fee's
conditions (households, a second disconnection for late payment within a year)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from gateway.core import Gateway
from plugins.utility.dates import Period
from plugins.utility.models import Fee
from plugins.utility.store import UtilityError, UtilityStore
from plugins.utility.supply import disconnect, fee_decision, reconnect, year_before
from tests.utility.conftest import add_contract, source
from tests.utility.test_billing import add, issued, month, setup

pytestmark = pytest.mark.both_stores  # the utility's tables on SQLite and PostgreSQL

D = dt.date
OCT, NOV = Period(2026, 10), Period(2026, 11)


def late(store: UtilityStore, *days: dt.date, contract: str = "K1") -> None:
    """Late-payment disconnections on ``days``, each but the last reconnected after a day."""
    for i, day in enumerate(days):
        disconnect(store, contract, day, "late-payment", by="operator")
        if i < len(days) - 1:
            reconnect(store, contract, day + dt.timedelta(days=1), by="operator")


# ---------------------------------------------------------------- reconnection fee


def test_reconnection_fee_billed_once_exactly_with_its_reason(utility_gw: Gateway) -> None:
    gw = utility_gw
    mp = setup(gw)
    store = source(gw).store
    late(store, D(2026, 3, 10), D(2026, 10, 15))
    r = reconnect(store, "K1", D(2026, 10, 20), by="operator")
    assert r.fee and "again within a year (2026-03-10 and 2026-10-15)" in r.reason
    add(gw, mp, D(2026, 10, 28), 1000)
    month(gw, OCT, D(2026, 10, 29))
    inv = issued(gw, "E2610-00001")
    [recon] = [ln for ln in inv.lines if ln.item.sellers_id == "reconnection"]
    assert recon.net_amount == Decimal("42.34")
    assert "20.10.2026" in recon.note and "10.03.2026" in recon.note
    assert "15.10.2026" in recon.note and "51,23" in recon.note
    assert recon.item.description == recon.note      # printed under the item in the PDF
    # 0 kWh + 8.40 fixed: 8.40 + VAT 1.76 = 10.16; with the fee exactly 51.23 more,
    # of which exactly 8.89 VAT (round(50.74 × 0.21) = 10.66 would be 8.90).
    totals = inv.require_totals()
    assert totals.vat_total == Decimal("1.76") + Decimal("8.89")
    assert totals.amount_due == Decimal("10.16") + Decimal("51.23")
    add(gw, mp, D(2026, 11, 28), 1010)
    month(gw, NOV, D(2026, 12, 15))
    nov = issued(gw, "E2611-00001")
    assert not [ln for ln in nov.lines if ln.item.sellers_id == "reconnection"]
    assert store.reconnections("K1")[-1].billed_in == "2026-10"


@pytest.mark.parametrize(("earlier", "fee"), [
    (D(2025, 10, 16), True),    # the day after the anniversary: within a year
    (D(2025, 10, 15), False),   # the anniversary: a full year, not "again within a year"
    (D(2025, 10, 14), False),   # the day before the anniversary
])
def test_within_a_year_edges(store: UtilityStore, earlier: dt.date, fee: bool) -> None:
    add_contract(store)
    late(store, earlier, D(2026, 10, 15))
    assert reconnect(store, "K1", D(2026, 10, 16), by="op").fee is fee


def test_within_a_year_from_a_leap_day(store: UtilityStore) -> None:
    assert year_before(D(2028, 2, 29)) == D(2027, 2, 28)
    add_contract(store)
    late(store, D(2027, 3, 1), D(2028, 2, 29))
    assert reconnect(store, "K1", D(2028, 3, 1), by="op").fee
    add_contract(store, 2)
    late(store, D(2027, 2, 28), D(2028, 2, 29), contract="K2")
    assert not reconnect(store, "K2", D(2028, 3, 1), by="op").fee


def test_first_disconnection_for_late_payment_is_free(store: UtilityStore) -> None:
    add_contract(store)
    disconnect(store, "K1", D(2026, 10, 15), "late-payment", by="op")
    r = reconnect(store, "K1", D(2026, 10, 16), by="op")
    assert not r.fee and "first for late payment within a year" in r.reason
    assert store.unbilled_reconnections("K1", D(2026, 12, 31)) == []


@pytest.mark.parametrize("reason", ["customer-request", "safety", "other"])
def test_other_reasons_are_free_and_do_not_count(store: UtilityStore, reason: str) -> None:
    add_contract(store)
    disconnect(store, "K1", D(2026, 3, 1), reason, by="op")            # type: ignore[arg-type]
    reconnect(store, "K1", D(2026, 3, 2), by="op")
    disconnect(store, "K1", D(2026, 10, 15), "late-payment", by="op")
    assert not reconnect(store, "K1", D(2026, 10, 16), by="op").fee  # first late one
    disconnect(store, "K1", D(2026, 11, 1), reason, by="op")           # type: ignore[arg-type]
    r = reconnect(store, "K1", D(2026, 11, 2), by="op")
    assert not r.fee and f"was for {reason}" in r.reason


def test_business_customers_pay_no_reconnection_fee(store: UtilityStore) -> None:
    add_contract(store, vat_id="LV40103987654")
    late(store, D(2026, 3, 10), D(2026, 10, 15))
    r = reconnect(store, "K1", D(2026, 10, 16), by="op")
    assert not r.fee and "business" in r.reason


def test_reconnection_needs_a_recorded_disconnection(store: UtilityStore) -> None:
    add_contract(store)
    with pytest.raises(UtilityError, match="no disconnection in force"):
        reconnect(store, "K1", D(2026, 10, 16), by="op")
    disconnect(store, "K1", D(2026, 10, 15), "late-payment", by="op")
    with pytest.raises(UtilityError, match="already disconnected since 2026-10-15"):
        disconnect(store, "K1", D(2026, 10, 16), "late-payment", by="op")
    with pytest.raises(UtilityError, match="no contract 'K9'"):
        reconnect(store, "K9", D(2026, 10, 16), by="op")
    d = store.disconnections("K1")[0]
    assert (d.reason, d.by) == ("late-payment", "op")
    assert fee_decision(store, "K1", d)[0] is False


# ---------------------------------------------------------------- fees as data


@pytest.mark.parametrize(("made_on", "fee"), [
    (D(2020, 12, 31), None),          # the day before the paper fee's validity
    (D(2021, 1, 1), Decimal("2.07")),  # the first day
    (D(2021, 1, 2), Decimal("2.07")),
])
def test_paper_fee_only_from_2021(utility_gw: Gateway, made_on: dt.date,
                                  fee: Decimal | None) -> None:
    gw = utility_gw
    mp = setup(gw, paper=True, start=D(2020, 9, 1))
    add(gw, mp, D(2020, 11, 28), 1100)
    month(gw, Period(2020, 11), made_on)
    inv = issued(gw, "E2011-00001")
    assert inv.issue_date == made_on          # made late: dated the day it was made
    assert [c.amount for c in inv.charges] == ([fee] if fee else [])


def test_fee_schedule_is_data_with_validity(utility_gw: Gateway) -> None:
    gw = utility_gw
    store = source(gw).store
    store.put_fee(Fee(code="paper", amount=Decimal("2.50"), valid_from=D(2021, 1, 1),
                      valid_to=D(2026, 12, 31)))
    store.put_fee(Fee(code="paper", amount=Decimal("3.10"), valid_from=D(2027, 1, 1)))
    with pytest.raises(UtilityError, match="overlaps"):
        store.put_fee(Fee(code="paper", amount=Decimal("9"), valid_from=D(2026, 6, 1)))
    mp = setup(gw, paper=True)
    add(gw, mp, D(2026, 11, 28), 1100)
    add(gw, mp, D(2026, 12, 28), 1200)
    month(gw, NOV, D(2026, 12, 10))
    month(gw, Period(2026, 12), D(2027, 1, 11))
    assert issued(gw, "E2611-00001").charges[0].amount == Decimal("2.07")   # 2.50
    dec = issued(gw, "E2612-00001")
    assert dec.charges[0].amount == Decimal("2.56") and "3,10" in dec.charges[0].reason
    assert [f.amount for f in store.fees("paper")] == [Decimal("2.50"), Decimal("3.10")]


def test_reconnection_fee_by_the_day_of_the_reconnection(utility_gw: Gateway) -> None:
    gw = utility_gw
    store = source(gw).store
    store.put_fee(Fee(code="reconnection", amount=Decimal("51.23"),
                      valid_to=D(2026, 10, 19)))
    store.put_fee(Fee(code="reconnection", amount=Decimal("60.00"),
                      valid_from=D(2026, 10, 20)))
    mp = setup(gw)
    late(store, D(2026, 3, 10), D(2026, 10, 15))
    reconnect(store, "K1", D(2026, 10, 20), by="op")
    add(gw, mp, D(2026, 10, 28), 1000)
    month(gw, OCT, D(2026, 10, 29))
    [recon] = [ln for ln in issued(gw, "E2610-00001").lines
               if ln.item.sellers_id == "reconnection"]
    assert recon.net_amount == Decimal("49.59") and "60,00" in recon.note


def test_import_file_takes_fees(run_cli: Any, tmp_path: Any) -> None:
    setup_file = tmp_path / "fees.toml"
    setup_file.write_text('[[fee]]\ncode = "paper"\namount = "2.50"\n'
                          'valid_from = "2021-01-01"\n\n[[fee]]\ncode = "reconnection"\n'
                          'amount = "51.23"\n', encoding="utf-8")
    result = run_cli("utility", "import", str(setup_file))
    assert result.exit_code == 0, result.output
    assert "2 fees" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[[fee]]\ncode = "parking"\namount = "1"\n', encoding="utf-8")
    result = run_cli("utility", "import", str(bad))
    assert result.exit_code != 0 and "[[fee]] #1, field code" in result.output
