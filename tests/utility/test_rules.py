"""The supplier's terms, rule by rule, through a real gateway (SQLite, archive, folder
channel): late readings billed by the estimate and settled on the next invoice, never a
back-dated invoice, no negative bill (a credit note instead)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from gateway.core import Gateway, complete
from plugins.utility.dates import Period
from plugins.utility.supply import disconnect, reconnect
from tests.utility.conftest import source
from tests.utility.test_billing import _history, add, issued, month, setup

pytestmark = pytest.mark.both_stores  # the utility's tables on SQLite and PostgreSQL

D = dt.date
SEP, OCT, NOV = Period(2026, 9), Period(2026, 10), Period(2026, 11)


def kwh_lines(inv: object) -> list[tuple[str, Decimal]]:
    return [(ln.item.sellers_id, ln.quantity) for ln in inv.lines  # type: ignore[attr-defined]
            if ln.item.sellers_id.startswith("energy")]


@pytest.mark.parametrize("arrived", [D(2026, 10, 26), D(2026, 10, 10), D(2026, 11, 4)])
def test_reading_outside_the_window_billed_by_estimate_then_settled(
        utility_gw: Gateway, arrived: dt.date) -> None:
    """Issue 18, rule 1: a reading handed in outside the window is replaced by the
    12-month average; the late reading settles on the next invoice."""
    gw = utility_gw
    mp = setup(gw, start=D(2025, 8, 1))
    _history(gw, mp)                                   # last actual: 28.09.2026, 12950
    month(gw, SEP, D(2026, 10, 15))
    add(gw, mp, arrived, 13300)                        # dated the day it arrived
    period = OCT if arrived < D(2026, 10, 27) else NOV   # the month billed by the estimate
    nxt = period.shift(1)
    if period == NOV:
        # 4 November: October's window closed the day before without a reading.
        month(gw, OCT, D(2026, 11, 4))
        assert kwh_lines(issued(gw, "E2610-00001")) == [("energy", 338)]
    month(gw, period, D(2027, 1, 20) if period == NOV else D(2026, 11, 4))
    est = issued(gw, f"E{period.year % 100}{period.month:02d}-00001")
    [(_, estimate)] = kwh_lines(est)
    assert estimate == Decimal(338 if period == OCT else 327)   # 31 or 30 days × average
    assert "aprēķināts" in est.notes[0].text
    # The next invoice: actual up to the late reading, the estimates credited, and only
    # the days after the late reading estimated.
    month(gw, nxt, D(2027, 1, 20))
    settle = issued(gw, f"E{nxt.year % 100}{nxt.month:02d}-00001")
    lines = kwh_lines(settle)
    credited = -sum(q for sid, q in lines if sid == "energy-settlement")
    actual, rest = (q for sid, q in lines if sid == "energy")
    assert actual == 13300 - 12950
    # The average now runs from the earliest reading at most 365 days before the late
    # one (the history is one reading on the 28th: 9300 + 332 a month from Oct 2025).
    history = [(D(2025, 10, 28), 9300)] + [
        (D(2025 + (9 + i) // 12, (9 + i) % 12 + 1, 28), 9300 + 332 * i) for i in range(1, 11)]
    first_day, first = next(h for h in history if h[0] >= arrived - dt.timedelta(days=365))
    days = (nxt.last_day - arrived).days
    expected = Decimal(13300 - first) * days / (arrived - first_day).days
    assert rest == expected.quantize(Decimal(1), rounding="ROUND_HALF_UP")
    billed_before = estimate + (338 if period == NOV else 0)
    assert credited == billed_before
    assert arrived.strftime("%d.%m.%Y") in settle.notes[0].text


def test_on_time_reading_of_the_next_month_supersedes_a_late_one(utility_gw: Gateway) -> None:
    gw = utility_gw
    mp = setup(gw, start=D(2025, 8, 1))
    _history(gw, mp)
    month(gw, SEP, D(2026, 10, 15))
    add(gw, mp, D(2026, 10, 20), 13200)               # late: October by estimate
    month(gw, OCT, D(2026, 11, 4))
    add(gw, mp, D(2026, 11, 28), 13650)               # November's own reading
    month(gw, NOV, D(2026, 11, 30))
    assert kwh_lines(issued(gw, "E2611-00001")) == [("energy", 700),
                                                   ("energy-settlement", -338)]


def test_past_meter_date_sent_late_does_not_back_date_anything(utility_gw: Gateway) -> None:
    """Issue 18, rules 2 and 3: an October reading typed in at the end of November
    counts for November; `bill 2026-10` on 30 November issues an estimate dated 30.11
    with the full term, not an invoice of 28.10 already overdue."""
    gw = utility_gw
    mp = setup(gw, start=D(2025, 8, 1))
    _history(gw, mp)
    month(gw, SEP, D(2026, 10, 15))
    add(gw, mp, D(2026, 10, 28), 13300, arrived=D(2026, 11, 30))
    summary = month(gw, OCT, D(2026, 11, 30))
    inv = issued(gw, summary.issued[0])
    assert inv.issue_date == D(2026, 11, 30)
    assert inv.due_date == D(2026, 12, 20)            # 15 + 5 days from the issue day
    assert kwh_lines(inv) == [("energy", 338)]        # October: the estimate


@pytest.mark.parametrize(("paper", "made_on", "issue", "due"), [
    (False, D(2026, 10, 29), D(2026, 10, 29), D(2026, 11, 18)),   # on its day
    (False, D(2026, 11, 30), D(2026, 11, 30), D(2026, 12, 20)),   # a month late
    (False, D(2026, 12, 31), D(2026, 12, 31), D(2027, 1, 20)),    # across the year end
    (True, D(2026, 11, 10), D(2026, 11, 10), D(2026, 11, 30)),    # paper on its day
    (True, D(2026, 11, 17), D(2026, 11, 17), D(2026, 12, 2)),     # late: 15 days
    (True, D(2026, 12, 20), D(2026, 12, 20), D(2027, 1, 4)),
])
def test_never_back_dated_and_the_full_term_from_the_issue_day(
        utility_gw: Gateway, paper: bool, made_on: dt.date, issue: dt.date,
        due: dt.date) -> None:
    gw = utility_gw
    mp = setup(gw, paper=paper)
    add(gw, mp, D(2026, 10, 28), 1100)
    month(gw, OCT, made_on)
    inv = issued(gw, "E2610-00001")
    assert (inv.issue_date, inv.due_date) == (issue, due)
    assert inv.issue_date >= made_on


def test_contract_base_term_is_a_setting(utility_gw: Gateway) -> None:
    from plugins.utility.models import Contract

    gw = utility_gw
    mp = setup(gw)
    store = source(gw).store
    k = store.get_contract("K1")
    store.put_contract(Contract(**{**k.model_dump(), "payment_term_days": 10}))
    assert store.get_contract("K1").payment_term_days == 10
    add(gw, mp, D(2026, 10, 28), 1100)
    month(gw, OCT, D(2026, 10, 29))
    # 10 + 5 = 15 days; but paper (issued 10.11, due 30.11) would give 20: no fewer.
    assert issued(gw, "E2610-00001").due_date == D(2026, 11, 18)


def _credit_setup(gw: Gateway, *, paper: bool = False) -> str:
    mp = setup(gw, start=D(2025, 8, 1), paper=paper)
    _history(gw, mp)
    month(gw, SEP, D(2026, 10, 15))
    month(gw, OCT, D(2026, 11, 10 if paper else 4))       # estimated: 338 kWh
    add(gw, mp, D(2026, 11, 28), 12990)                 # only 40 kWh since 28.09
    return mp


def test_settlement_in_credit_is_a_credit_note(utility_gw: Gateway) -> None:
    """Issue 18, rule 5: no 'amount to pay' below zero: a credit note (type 381)
    referencing the invoice whose estimate it corrects."""
    gw = utility_gw
    _credit_setup(gw)
    summary = month(gw, NOV, D(2026, 11, 30))
    assert summary.credit_notes == 1
    note = issued(gw, "E2611-00001")
    assert note.type_code == "381" and note.is_credit_note
    assert [p.number for p in note.preceding_invoices] == ["E2610-00001"]
    totals = complete(note).require_totals()
    # Credited 338 kWh, charged 40 kWh and the month's fixed component:
    # 298 × (0.1389 + 0.0427) − 8.40 → positive: owed to the customer.
    assert totals.amount_due > 0 and totals.amount_due == totals.total_with_vat
    assert note.due_date is None and note.payment is None
    assert "Kredītrēķins rēķiniem E2610-00001" in note.notes[0].text
    assert not note.charges
    for name in ("ubl", "cii"):
        assert gw.render(note, name, validate=True).content.startswith(b"<?xml")
    # December starts from the actual reading with nothing estimated.
    state = source(gw).store.get_bill("K1", NOV).data
    assert state["credit_note"] is True
    assert state["meters"]["MP1"]["billed_cumulative"] == "12990"


def test_credit_note_carries_no_fee_and_the_reconnection_waits(utility_gw: Gateway) -> None:
    gw = utility_gw
    mp = _credit_setup(gw, paper=True)
    store = source(gw).store
    for day in (D(2026, 3, 10), D(2026, 11, 2)):
        disconnect(store, "K1", day, "late-payment", by="op")
        reconnect(store, "K1", day + dt.timedelta(days=1), by="op")
    month(gw, NOV, D(2026, 12, 10))
    note = issued(gw, "E2611-00001")
    assert note.is_credit_note and not note.charges
    assert not [ln for ln in note.lines if ln.item.sellers_id == "reconnection"]
    # December is an ordinary invoice again and bills the fee and the paper fee.
    add(gw, mp, D(2026, 12, 28), 13300)
    month(gw, Period(2026, 12), D(2027, 1, 11))
    dec = issued(gw, "E2612-00001")
    assert not dec.is_credit_note and dec.charges
    assert [ln for ln in dec.lines if ln.item.sellers_id == "reconnection"]


@pytest.mark.parametrize(("value", "credit"), [
    # 300 kWh against 338 estimated: 41.67 − 46.95 + 12.81 − 14.43 + 8.40 = 1.50 net
    (13250, False),
    # 250 kWh: 34.73 − 46.95 + 10.68 − 14.43 + 8.40 = −7.57 net: in credit
    (13200, True),
])
def test_the_sign_of_the_settlement_decides(utility_gw: Gateway, value: int,
                                            credit: bool) -> None:
    gw = utility_gw
    mp = setup(gw, start=D(2025, 8, 1))
    _history(gw, mp)
    month(gw, SEP, D(2026, 10, 15))
    month(gw, OCT, D(2026, 11, 4))
    add(gw, mp, D(2026, 11, 28), value)
    month(gw, NOV, D(2026, 11, 30))
    doc = issued(gw, "E2611-00001")
    totals = complete(doc).require_totals()
    assert doc.is_credit_note is credit
    assert totals.amount_due == (Decimal("9.16") if credit else Decimal("1.82"))


@pytest.mark.parametrize(("run_on", "issued_on"), [
    (D(2024, 12, 27), None),                # the day the reading arrives: waits
    (D(2024, 12, 28), D(2024, 12, 28)),     # the working Saturday after it: issued
    (D(2024, 12, 29), D(2024, 12, 29)),     # a day late: dated when made
])
def test_e_invoice_on_the_working_saturday_after_the_reading(
        utility_gw: Gateway, run_on: dt.date, issued_on: dt.date | None) -> None:
    gw = utility_gw
    mp = setup(gw, start=D(2024, 6, 1))
    add(gw, mp, D(2024, 12, 27), 1500)     # Friday, in December's window
    summary = month(gw, Period(2024, 12), run_on)
    if issued_on is None:
        assert summary.waiting and summary.waiting[0].message == "to be issued on 2024-12-28"
        return
    assert issued(gw, "E2412-00001").issue_date == issued_on
