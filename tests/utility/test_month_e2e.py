"""A whole month end on generated contracts: readings in (on time, zero, missing, late,
early), invoices out through the gateway to the folder and portal channels, every total checked
against an independent calculation, each kind of invoice valid as UBL and CII."""

from __future__ import annotations

import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from gateway.core import Gateway
from plugins.utility.dates import Period
from plugins.utility.run import run_month
from plugins.utility.synthetic import (
    SyntheticContract,
    gateway_customers,
    generate,
    month_readings,
)
from tests.utility.conftest import source

OCT = Period(2026, 10)
RUN_ON = dt.date(2026, 11, 15)
ENERGY, DISTRIBUTION, FIXED = Decimal("0.1452"), Decimal("0.0427"), Decimal("8.40")
CENT = Decimal("0.01")


def money(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def expected_kwh(c: SyntheticContract) -> Decimal:
    if c.kind in ("on-time", "zero"):
        assert c.reading is not None
        return c.reading[1] - c.history[-1][1]
    # Estimated: average daily use over the last 365 days of readings × 31 days.
    last_day, last = c.history[-1]
    first_day, first = next((d, v) for d, v in c.history
                            if d >= last_day - dt.timedelta(days=365))
    return (Decimal((last - first) * 31) / (last_day - first_day).days).quantize(
        Decimal(1), rounding=ROUND_HALF_UP)


def expected_total(c: SyntheticContract) -> Decimal:
    kwh = expected_kwh(c)
    net = money(kwh * ENERGY) + money(kwh * DISTRIBUTION) + FIXED
    # The paper fee costs exactly 2.50 more, whatever the rounding of the VAT total.
    return net + money(net * Decimal("0.21")) + (Decimal("2.50") if c.paper else 0)


def run(gw: Gateway, n: int) -> tuple[list[SyntheticContract], Any]:
    store = source(gw).store
    contracts = generate(store, n, OCT)
    gateway_customers(gw, contracts, formats=["json"], channels=["folder", "portal"])
    month_readings(store, contracts, today=RUN_ON)
    summary = run_month(gw, source(gw).biller(), OCT, as_of=RUN_ON)
    return contracts, summary


def check(gw: Gateway, contracts: list[SyntheticContract], summary: Any) -> None:
    n = len(contracts)
    assert not summary.errors and not summary.waiting
    assert len(summary.issued) == n and summary.delivery_problems == 0
    assert summary.delivered == n * 2    # folder and portal
    # A reading sent before the window opens ("early") or after it closed ("late") is
    # not the month's reading: those months are estimated too.
    estimated = sum(c.kind in ("missing", "late", "early") for c in contracts)
    assert summary.estimated == estimated
    assert summary.paper == sum(c.paper for c in contracts)
    bills = {b.contract: b for b in source(gw).store.bills(OCT)}
    out = gw.config.data_dir / "out"
    for c in contracts:
        bill = bills[c.number]
        doc = json.loads((out / c.customer / f"{bill.number}.json").read_text())
        assert Decimal(doc["totals"]["amount_due"]) == expected_total(c), c
        assert Decimal(doc["lines"][0]["quantity"]) == expected_kwh(c), c
        assert bill.data["meters"][c.mp]["estimated"] == (c.kind in ("missing", "late",
                                                                     "early"))
        assert doc["buyer_reference"] == c.number
        assert doc["payment"]["remittance_information"] == \
            f"Rekins {bill.number} ligums {c.number}"


@pytest.fixture
def gw(gateway_factory: Any) -> Gateway:
    return gateway_factory()


@pytest.mark.both_stores
def test_month_end_for_generated_contracts(gw: Gateway) -> None:
    contracts, summary = run(gw, 60)
    assert {c.kind for c in contracts} == {"on-time", "zero", "missing", "late", "early"}
    check(gw, contracts, summary)
    # Late readings (sent 4-12 November) are kept and settle on the invoice after
    # November's; early ones (sent 10-26 October) on November's; both say so.
    late = next(c for c in contracts if c.kind == "late")
    kept = source(gw).store.readings(late.mp)[-1]
    assert kept.period == Period(2026, 12) and "outside the reading window" in kept.message
    early = next(c for c in contracts if c.kind == "early")
    assert source(gw).store.readings(early.mp)[-1].period == Period(2026, 11)
    # One invoice of each kind as UBL (Peppol BIS 3.0 rules apply to businesses only;
    # these are households: XSD + EN 16931) and CII, by the official rules.
    bills = {b.contract: b for b in source(gw).store.bills(OCT)}
    for c in contracts[:5]:
        invoice = gw.load_invoice(gw.find(bills[c.number].number).id)
        for name in ("ubl", "cii"):
            assert gw.render(invoice, name, validate=True).content.startswith(b"<?xml")
    # A rerun issues nothing again.
    again = run_month(gw, source(gw).biller(), OCT, as_of=RUN_ON)
    assert again.already == len(contracts) and not again.issued


@pytest.mark.slow
def test_month_end_for_10000_contracts(gw: Gateway) -> None:
    contracts, summary = run(gw, 10_000)
    check(gw, contracts, summary)


def test_month_end_on_worker_processes_archives_what_one_process_renders(gw: Gateway,
                                                                          ) -> None:
    """Worker processes render and validate PDF, UBL and CSV ahead of each push; what is
    archived and delivered is byte for byte what this process renders itself."""
    store = source(gw).store
    contracts = generate(store, 12, OCT)
    gateway_customers(gw, contracts, formats=["pdf", "ubl", "csv"], channels=["folder"])
    month_readings(store, contracts, today=RUN_ON)
    summary = run_month(gw, source(gw).biller(), OCT, as_of=RUN_ON, processes=2,
                        parallel_from=1)
    assert len(summary.issued) == len(contracts) and not summary.errors
    assert summary.prepared == len(contracts)  # every one came from a worker
    assert summary.delivered == len(contracts) and summary.delivery_problems == 0
    for number in summary.issued:
        record = gw.find(number)
        customer = gw.store.get_customer(record.customer_id)
        assert customer is not None
        invoice = gw.load_invoice(record.id)
        documents = gw.store.documents(record.id)
        assert sorted(d.format for d in documents) == ["csv", "pdf", "ubl"]
        for doc in documents:
            mine = gw.render(invoice, doc.format, language=customer.language,
                             customer_id=customer.id).content
            assert gw.archive.get(doc.sha256) == mine, (number, doc.format)
