"""Fees including VAT cost the customer exactly their amount, of which exactly their VAT
part, on any invoice — and every EN 16931 calculation rule still holds, by the gateway's
own validation (``complete``) and, for a sample, the official XSD + schematron."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import Gateway, Invoice, complete
from plugins.utility.billing import Biller, MeterBill, MeterState, Plan, fee_parts
from plugins.utility.dates import Period
from plugins.utility.models import Contract, MeteringPoint, TariffComponent
from plugins.utility.settings import UtilitySettings
from plugins.utility.store import Reconnection, StoredReading, UtilityStore
from tests.utility.conftest import ADDRESS, add_contract, seed_prices

D = dt.date
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def biller() -> Iterator[Biller]:
    with tempfile.TemporaryDirectory() as work:
        store = UtilityStore(Path(work) / "u.db")
        seed_prices(store)
        add_contract(store)
        yield Biller(store, UtilitySettings())
        store.close()


def make_plan(biller: Biller, *, kwh: Decimal, prices: tuple[Decimal, Decimal, Decimal],
              vat: Decimal, paper_fee: Decimal | None, reconnection_fees: list[Decimal],
              business: bool = False) -> Plan:
    """A month's plan with the given consumption, prices, VAT rate and fees."""
    store = biller.store
    customer = store.get_customer("C1")
    if business:
        customer = customer.model_copy(update={"vat_id": "LV40103987654"})
    mp = MeteringPoint(id="MP1", contract="K1", meter="M1", tariff="X", address=ADDRESS)
    tariffs = [TariffComponent(code="X", component=c, basis=b, name_lv=c, name_en=c,
                               price=p, valid_from=D(2020, 1, 1))
               for (c, b), p in zip((("energy", "kwh"), ("distribution-kwh", "kwh"),
                                     ("distribution-fixed", "month")), prices, strict=True)]
    state = MeterState(Decimal(1000), Decimal(1000), D(2026, 9, 28))
    after = MeterState(1000 + kwh, 1000 + kwh, D(2026, 10, 28))
    read = StoredReading(id=2, mp="MP1", date=D(2026, 10, 28), value=1000 + kwh,
                         cumulative=1000 + kwh, meter_change=False, period=Period(2026, 10),
                         how="cli", by="test", message=None)
    meter = MeterBill(mp, state, kwh, Decimal(0), False, None, Decimal(0), [], read,
                      D(2026, 10, 28), after)
    reconnections = [Reconnection(i + 1, "K1", D(2026, 10, 20), "op", True, "fee", None, None)
                     for i in range(len(reconnection_fees))]
    contract = Contract(number="K1", customer="C1", start=D(2025, 1, 1))
    return Plan(contract, customer, Period(2026, 10), D(2026, 10, 1), [meter],
                {"MP1": tariffs}, vat, paper_fee is not None, D(2026, 10, 29),
                D(2026, 10, 29), D(2026, 11, 18), 20, reconnections, paper_fee,
                reconnection_fees)


def with_and_without(biller: Biller, plan: Plan) -> tuple[Invoice, Invoice]:
    bare = dataclasses.replace(plan, paper_fee=None, reconnections=[], reconnection_fees=[])
    # complete(): the gateway's EN 16931 validation; it raises on any broken rule.
    return (complete(biller.invoice(plan, "E2610-00001")),
            complete(biller.invoice(bare, "E2610-00001")))


def check_exact(biller: Biller, plan: Plan) -> Invoice:
    fees = [f for f in (plan.paper_fee, *plan.reconnection_fees) if f]
    fee, base = with_and_without(biller, plan)
    t, b = fee.require_totals(), base.require_totals()
    assert t.amount_due - b.amount_due == sum(fees, Decimal(0))
    assert (t.vat_total or 0) - (b.vat_total or 0) == sum(
        (fee_parts(f, plan.vat_rate)[1] for f in fees), Decimal(0))
    # The kWh lines are there (the consumption is billed, not only the fees).
    assert len(fee.lines) >= 3
    # The stated VAT stays within BR-CO-17's rounding tolerance (and a cent per fee).
    [breakdown] = fee.vat_breakdown
    exact = (breakdown.taxable_amount * plan.vat_rate / 100).quantize(CENT, "ROUND_HALF_UP")
    assert abs(breakdown.tax_amount - exact) <= CENT * len(fees)
    return fee


money_st = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("200"), places=2)
price_st = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.5"), places=4)


@settings(max_examples=600, deadline=None)
@given(kwh=st.integers(0, 30000), energy=price_st, distribution=price_st,
       fixed=st.decimals(min_value=Decimal(0), max_value=Decimal(60), places=2),
       vat=st.sampled_from([Decimal(21), Decimal(12), Decimal(5), Decimal("22.5")]),
       paper=st.one_of(st.none(), st.just(Decimal("2.50")), money_st),
       reconnections=st.lists(st.one_of(st.just(Decimal("51.23")), money_st), max_size=2))
def test_any_invoice_pays_exactly_the_fees(biller: Biller, kwh: int, energy: Decimal,
                                           distribution: Decimal, fixed: Decimal,
                                           vat: Decimal, paper: Decimal | None,
                                           reconnections: list[Decimal]) -> None:
    plan = make_plan(biller, kwh=Decimal(kwh), prices=(energy, distribution, fixed), vat=vat,
                     paper_fee=paper, reconnection_fees=reconnections)
    if paper is None and not reconnections:
        assert with_and_without(biller, plan)[0] == with_and_without(biller, plan)[1]
        return
    check_exact(biller, plan)


@pytest.mark.parametrize("kwh", range(0, 40))
def test_the_terms_fees_at_21_percent_over_consecutive_consumptions(biller: Biller,
                                                                    kwh: int) -> None:
    """The terms' own figures, on 40 consecutive consumptions (every rounding case of
    the VAT total): +2.50 for paper, +51.23 of which 8.89 VAT for a reconnection."""
    prices = (Decimal("0.1389"), Decimal("0.0427"), Decimal("8.40"))
    for paper, recon in ((Decimal("2.50"), []), (None, [Decimal("51.23")]),
                         (Decimal("2.50"), [Decimal("51.23")])):
        plan = make_plan(biller, kwh=Decimal(kwh), prices=prices, vat=Decimal(21),
                         paper_fee=paper, reconnection_fees=recon)
        check_exact(biller, plan)


def test_official_rules_agree_on_a_sample(gateway_factory: Any) -> None:
    """A seeded sample through the official XSD + EN 16931 schematron (+ Peppol BIS for
    the business ones), UBL and CII, half of them ones whose VAT had to be stated."""
    gw: Gateway = gateway_factory()
    with tempfile.TemporaryDirectory() as work:
        store = UtilityStore(Path(work) / "u.db")
        seed_prices(store)
        add_contract(store)
        b = Biller(store, UtilitySettings())
        rng = random.Random(18)
        stated = plain = 0
        for _ in range(500):
            if stated >= 4 and plain >= 4:
                break
            plan = make_plan(
                b, kwh=Decimal(rng.randrange(0, 5000)),
                prices=(Decimal(rng.randrange(1, 5000)) / 10000,
                        Decimal(rng.randrange(1, 5000)) / 10000, Decimal("8.40")),
                vat=Decimal(21), paper_fee=Decimal("2.50"),
                reconnection_fees=[Decimal("51.23")] * rng.randrange(0, 2),
                business=rng.random() < 0.5)
            raw = b.invoice(plan, "E2610-00001")
            if (stated if raw.vat_breakdown else plain) >= 4:
                continue
            stated += bool(raw.vat_breakdown)
            plain += not raw.vat_breakdown
            invoice = check_exact(b, plan)
            for name in ("ubl", "cii"):
                # validate=True raises InvoiceRejected with the failed official rules.
                assert gw.render(invoice, name, validate=True).content.startswith(b"<?xml")
        store.close()
        assert stated == plain == 4
