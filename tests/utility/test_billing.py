"""Invoice composition and the month end through a real gateway (SQLite store, archive,
folder channel): prices and VAT by validity date, fees, estimates and their settlement,
issue and due dates, numbering, and nothing issued twice."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from gateway.core import Gateway, complete
from plugins.utility.dates import Period
from plugins.utility.models import Contract, MeteringPoint, TariffComponent, VatRate
from plugins.utility.run import drafts, run_month
from plugins.utility.store import UtilityError
from tests.utility.conftest import ADDRESS, add_contract, gateway_customer, reading, source

pytestmark = pytest.mark.both_stores  # the utility's tables on SQLite and PostgreSQL

D = dt.date
OCT = Period(2026, 10)
NOV = Period(2026, 11)


def month(gw: Gateway, period: Period, as_of: dt.date, **kw: Any) -> Any:
    return run_month(gw, source(gw).biller(), period, as_of=as_of, **kw)


def issued(gw: Gateway, number: str) -> Any:
    record = gw.find(number)
    return gw.load_invoice(record.id)


def setup(gw: Gateway, *, paper: bool = False, n: int = 1, **kw: Any) -> str:
    mp = add_contract(source(gw).store, n, **kw)
    gateway_customer(gw, f"C{n}", paper=paper)
    return mp


def add(gw: Gateway, mp: str, day: dt.date, value: int | str, *,
        arrived: dt.date | None = None, **kw: Any) -> Any:
    """A reading that arrives on ``arrived`` (default: the day it was taken)."""
    return source(gw).store.add_reading(reading(mp, day, value, **kw), today=arrived or day)


def test_invoice_from_an_in_window_reading(utility_gw: Gateway) -> None:
    gw = utility_gw
    mp = setup(gw)
    add(gw, mp, D(2026, 10, 28), 1158)   # Wednesday
    summary = month(gw, OCT, D(2026, 10, 29))
    assert summary.issued == ["E2610-00001"] and not summary.errors
    inv = issued(gw, "E2610-00001")
    assert [(ln.item.sellers_id, ln.quantity, ln.net_amount) for ln in inv.lines] == [
        ("energy", 158, Decimal("21.95")),              # 158 × 0.1389 = 21.9462
        ("distribution-kwh", 158, Decimal("6.75")),     # 158 × 0.0427 = 6.7466
        ("distribution-fixed", 1, Decimal("8.40")),
    ]
    totals = inv.require_totals()
    assert totals.total_without_vat == Decimal("37.10")
    assert totals.vat_total == Decimal("7.79")
    assert totals.amount_due == Decimal("44.89")
    assert inv.vat_breakdown[0].rate == Decimal(21)
    assert inv.currency == "EUR" and not inv.charges
    # References: buyer reference = contract, payment reference = invoice + contract.
    assert inv.buyer_reference == "K1" and inv.contract_reference == "K1"
    assert inv.payment.remittance_information == "Rekins E2610-00001 ligums K1"
    assert inv.payment.credit_transfers[0].account_id == "LV62HABA0551234567890"
    assert inv.payment.credit_transfers[0].bic == "HABALV22"
    assert inv.seller.electronic_address.scheme == "9939"
    assert inv.seller.electronic_address.value == inv.seller.vat_id == "LV40003000001"
    # A household has no Peppol endpoint: the invoice is plain EN 16931.
    assert inv.buyer.electronic_address is None
    assert inv.specification_id == "urn:cen.eu:en16931:2017" and inv.business_process is None
    assert len(inv.notes) == 1    # Peppol: one document note
    assert "E2610-00001" in inv.notes[0].text and "K1" in inv.notes[0].text
    assert "vairāk nekā vienu darba dienu" in inv.notes[0].text
    # E-invoice: the next working day after the reading; the base term (15 days) + 5.
    assert inv.issue_date == D(2026, 10, 29)
    assert inv.due_date == D(2026, 11, 18)
    assert inv.payment_terms == "Apmaksāt līdz 18.11.2026 (20 dienas no rēķina datuma)."
    assert inv.invoice_period.start == D(2026, 10, 1)
    assert inv.invoice_period.end == D(2026, 10, 31)
    # Delivered through the folder channel.
    delivered = gw.config.data_dir / "out" / "C1" / "E2610-00001.json"
    assert json.loads(delivered.read_text())["number"] == "E2610-00001"
    assert summary.delivered == 1


def test_paper_fee_is_a_vat_inclusive_document_charge(utility_gw: Gateway) -> None:
    gw = utility_gw
    mp = setup(gw, paper=True)
    add(gw, mp, D(2026, 10, 28), 1158)
    month(gw, OCT, D(2026, 11, 10))
    inv = issued(gw, "E2610-00001")
    [charge] = inv.charges
    assert charge.amount == Decimal("2.07")          # 2.50 / 1.21 = 2.066
    assert charge.vat_category == "S" and charge.vat_rate == Decimal(21)
    assert "2,50" in charge.reason
    assert money_with_vat(charge.amount, 21) == Decimal("2.50")
    totals = inv.require_totals()
    assert totals.charges_total == Decimal("2.07")
    assert totals.total_without_vat == Decimal("39.17")
    # Without the fee 44.89 (VAT 7.79); with it exactly 2.50 more, of which 0.43 VAT:
    # round(39.17 × 0.21) = 8.23 would make it 2.51, so the breakdown states 8.22.
    assert totals.vat_total == Decimal("8.22")
    assert totals.amount_due == Decimal("47.39")
    # Paper: issued on the 10th (a Tuesday), due at the end of that month.
    assert inv.issue_date == D(2026, 11, 10) and inv.due_date == D(2026, 11, 30)


def money_with_vat(net: Decimal, rate: int) -> Decimal:
    return (net * (100 + rate) / 100).quantize(Decimal("0.01"))


def _history(gw: Gateway, mp: str) -> None:
    # The opening reading (1 Aug 2025, 1000) and one on 27 Sep 2025 (9000) lie more
    # than 12 months before the last reading: the average uses 28 Oct 2025 → 28 Sep 2026.
    add(gw, mp, D(2025, 9, 27), 9000)
    for i in range(11):
        p = Period(2025, 10).shift(i)
        add(gw, mp, D(p.year, p.month, 28), 9300 + 332 * i)
    add(gw, mp, D(2026, 9, 28), 12950)


def test_missing_reading_is_estimated_from_12_months(utility_gw: Gateway) -> None:
    gw = utility_gw
    mp = setup(gw, start=D(2025, 8, 1))
    _history(gw, mp)
    summary = month(gw, Period(2026, 9), D(2026, 10, 15))
    assert summary.issued == ["E2609-00001"]
    summary = month(gw, OCT, D(2026, 11, 4))
    assert summary.estimated == 1
    inv = issued(gw, "E2610-00001")
    energy = inv.lines[0]
    # (12950 − 9300) kWh over 335 days × 31 days of October = 337.8 → 338
    assert energy.quantity == Decimal(338)
    assert "Aprēķināts" in energy.note
    assert "aprēķināts" in inv.notes[0].text
    # No reading: issued the working day after the window closed (Tue 3 Nov → Wed 4 Nov).
    assert inv.issue_date == D(2026, 11, 4)
    # The real reading later: the difference is settled on the next invoice.
    add(gw, mp, D(2026, 11, 28), 13650)
    month(gw, NOV, D(2026, 12, 15))
    nov = issued(gw, "E2611-00001")
    lines = [(ln.item.sellers_id, ln.quantity) for ln in nov.lines]
    assert lines == [("energy", 700), ("energy-settlement", -338),
                     ("distribution-kwh", 700), ("distribution-kwh-settlement", -338),
                     ("distribution-fixed", 1)]
    assert "E2610-00001" in nov.lines[1].note
    assert "E2610-00001" in nov.notes[0].text
    # 362 kWh net: (362 × 0.1389 → 97.23 − 46.95) + (29.89 − 14.43) + 8.40
    assert nov.require_totals().total_without_vat == Decimal("74.14")
    # Settled: December starts from the actual reading with nothing estimated.
    state = source(gw).store.get_bill("K1", NOV).data["meters"]["MP1"]
    assert state["estimated_kwh"] == "0" and state["billed_cumulative"] == "13650"


def test_young_contract_estimates_from_fewer_months(utility_gw: Gateway) -> None:
    gw = utility_gw
    mp = setup(gw, start=D(2026, 6, 1), opening="0")
    for day, value in ((D(2026, 7, 28), 100), (D(2026, 8, 28), 200), (D(2026, 9, 28), 310)):
        add(gw, mp, day, value)
    month(gw, Period(2026, 9), D(2026, 10, 15))
    month(gw, OCT, D(2026, 11, 15))
    # 310 kWh over 119 days × 31 = 80.8 → 81
    assert issued(gw, "E2610-00001").lines[0].quantity == Decimal(81)


@pytest.mark.parametrize(("expected_kwh", "kwh"), [("150", Decimal(131)), (None, Decimal(0))])
def test_new_contract_without_history(utility_gw: Gateway, expected_kwh: str | None,
                                      kwh: Decimal) -> None:
    gw = utility_gw
    setup(gw, start=D(2026, 10, 5), opening="0", expected_kwh=expected_kwh)
    month(gw, OCT, D(2026, 11, 15))
    inv = issued(gw, "E2610-00001")
    # 27 of 31 days: 150 × 27 / 31 = 130.6 → 131; without a declared figure 0 kWh.
    assert inv.lines[0].quantity == kwh
    fixed = inv.lines[2]
    assert fixed.quantity == Decimal("0.8710") and fixed.net_amount == Decimal("7.32")
    assert inv.invoice_period.start == D(2026, 10, 5)


def test_prices_and_vat_follow_their_validity_dates(utility_gw: Gateway) -> None:
    gw = utility_gw
    store = source(gw).store
    with pytest.raises(UtilityError, match="overlaps"):
        store.put_vat_rate(VatRate(rate=Decimal(22), valid_from=D(2027, 1, 1)))
    store.put_vat_rate(VatRate(rate=Decimal(21), valid_from=D(2013, 1, 1),
                               valid_to=D(2026, 12, 31)))
    store.put_vat_rate(VatRate(rate=Decimal(22), valid_from=D(2027, 1, 1)))
    energy = dict(code="MAJAS", component="energy", basis="kwh", name_lv="E", name_en="E")
    with pytest.raises(UtilityError, match="overlaps"):
        store.put_tariff(TariffComponent(**energy, price=Decimal("0.2"),
                                         valid_from=D(2027, 1, 1)))
    store.put_tariff(TariffComponent(**energy, price=Decimal("0.1389"),
                                     valid_from=D(2020, 1, 1), valid_to=D(2026, 12, 31)))
    store.put_tariff(TariffComponent(**energy, price=Decimal("0.2000"),
                                     valid_from=D(2027, 1, 1)))
    mp = setup(gw)
    add(gw, mp, D(2026, 12, 30), 1100)
    add(gw, mp, D(2027, 1, 28), 1200)
    month(gw, Period(2026, 12), D(2027, 1, 4))
    month(gw, Period(2027, 1), D(2027, 2, 15))
    dec, jan = issued(gw, "E2612-00001"), issued(gw, "E2701-00001")
    assert dec.lines[0].price.net == Decimal("0.1389") and dec.lines[0].vat.rate == 21
    assert jan.lines[0].price.net == Decimal("0.2000") and jan.lines[0].vat.rate == 22
    assert jan.vat_breakdown[0].rate == Decimal(22)
    # Reading Wed 30 Dec → next working day is Mon 4 Jan (31 Dec, 1 Jan, weekend).
    assert dec.issue_date == D(2027, 1, 4)


def test_leap_february(utility_gw: Gateway) -> None:
    gw = utility_gw
    setup(gw, start=D(2028, 2, 15), opening="0", expected_kwh="290")
    month(gw, Period(2028, 2), D(2028, 3, 6))
    inv = issued(gw, "E2802-00001")
    assert inv.invoice_period.end == D(2028, 2, 29)
    assert inv.lines[0].quantity == Decimal(150)                 # 290 × 15 / 29
    assert inv.lines[2].quantity == Decimal("0.5172")           # 15 / 29 days
    # The window closes Fri 3 March 2028 → issued Mon 6 March. A paper invoice would be
    # issued Fri 10 March and due 31 March (21 days): the e-invoice gets no fewer.
    assert inv.issue_date == D(2028, 3, 6) and inv.due_date == D(2028, 3, 27)


def test_waiting_until_issue_date_and_rerun_issues_nothing_twice(utility_gw: Gateway) -> None:
    gw = utility_gw
    mp = setup(gw, paper=True)
    add(gw, mp, D(2026, 10, 28), 1100)
    early = month(gw, OCT, D(2026, 11, 5))
    assert not early.issued and early.waiting[0].message == "to be issued on 2026-11-10"
    assert gw.store.list_invoices() == []
    first = month(gw, OCT, D(2026, 11, 10))
    again = month(gw, OCT, D(2026, 11, 20))
    assert first.issued == ["E2610-00001"] and not again.issued and again.already == 1
    assert len(gw.store.list_invoices()) == 1


def test_crash_after_push_is_adopted_not_pushed_again(utility_gw: Gateway) -> None:
    gw = utility_gw
    mp = setup(gw)
    add(gw, mp, D(2026, 10, 28), 1100)
    biller = source(gw).biller()
    # Push as a run would, then "crash" before the bill is marked issued.
    [draft] = list(drafts(biller, OCT, D(2026, 11, 15), lambda c: False))
    assert gw.push(draft.invoice, customer_id="C1").status == "accepted"
    assert source(gw).store.get_bill("K1", OCT).status == "reserved"
    # A reading arrives before the rerun; it must not change what was pushed.
    add(gw, mp, D(2026, 11, 2), 1130)
    summary = month(gw, OCT, D(2026, 11, 15))
    assert summary.issued == ["E2610-00001"] and not summary.errors
    bill = source(gw).store.get_bill("K1", OCT)
    assert bill.status == "issued" and bill.data["meters"]["MP1"]["kwh"] == "100"
    assert len(gw.store.list_invoices()) == 1
    # The reading settles in November instead: 30 kWh since the October reading, and
    # November (no reading of its own) estimated from it for 3–30 November.
    month(gw, NOV, D(2026, 12, 15))
    nov = issued(gw, "E2611-00001")
    assert nov.lines[0].quantity == Decimal(30)
    assert "03.11.2026" in nov.lines[1].note and nov.lines[1].quantity > 0


def test_numbers_are_sequential_per_month_and_months_in_order(utility_gw: Gateway) -> None:
    gw = utility_gw
    for n in (1, 2, 3):
        mp = setup(gw, n=n)
        add(gw, mp, D(2026, 10, 28), 1100)
    assert month(gw, OCT, D(2026, 11, 15)).issued == ["E2610-00001", "E2610-00002",
                                                      "E2610-00003"]
    dec = month(gw, Period(2026, 12), D(2027, 1, 15))
    assert not dec.issued and len(dec.errors) == 3
    assert "bill 2026-11 first" in dec.errors[0].message


def test_customer_unknown_to_the_gateway_is_a_clear_error(utility_gw: Gateway) -> None:
    gw = utility_gw
    add_contract(source(gw).store)
    summary = month(gw, OCT, D(2026, 11, 15))
    assert summary.errors[0].message.startswith("contract K1: customer C1 is not a gateway "
                                                "customer; add it with 'gateway customer add")


def test_contract_with_two_metering_points_waits_for_both(utility_gw: Gateway) -> None:
    gw = utility_gw
    store = source(gw).store
    setup(gw)
    store.put_metering_point(MeteringPoint(id="MP1b", contract="K1", meter="M1b",
                                           tariff="MAJAS", address=ADDRESS,
                                           start_reading=Decimal(500)))
    add(gw, "MP1", D(2026, 10, 28), 1100)
    add(gw, "MP1b", D(2026, 11, 2), 520)     # Monday
    month(gw, OCT, D(2026, 11, 3))
    inv = issued(gw, "E2610-00001")
    assert len(inv.lines) == 6 and inv.invoiced_object is None
    assert {a.value for ln in inv.lines for a in ln.item.attributes if a.value.startswith(
        "MP")} == {"MP1", "MP1b"}
    assert inv.issue_date == D(2026, 11, 3)


def test_business_buyer_gets_vat_endpoint_and_completes(utility_gw: Gateway) -> None:
    gw = utility_gw
    mp = setup(gw, vat_id="LV40103987654")
    add(gw, mp, D(2026, 10, 28), 1100)
    month(gw, OCT, D(2026, 11, 15))
    inv = issued(gw, "E2610-00001")
    assert inv.buyer.electronic_address.scheme == "9939"
    assert inv.buyer.vat_id == "LV40103987654"
    assert inv.business_process == "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
    assert inv.specification_id is None     # the UBL writer's default: Peppol BIS 3.0
    assert complete(inv) == inv


def test_contract_refers_to_known_customer(utility_gw: Gateway) -> None:
    with pytest.raises(UtilityError, match="field customer: no customer 'NOPE'"):
        source(utility_gw).store.put_contract(Contract(number="K9", customer="NOPE",
                                                       start=D(2026, 1, 1)))


def test_source_protocol_yields_due_invoices_without_issuing(utility_gw: Gateway) -> None:
    from gateway import Source

    gw = utility_gw
    src = source(gw)
    assert isinstance(src, Source) and src.name == "utility"
    mp = setup(gw)
    add(gw, mp, D(2026, 10, 28), 1100)
    [invoice] = list(src.invoices({"period": "2026-10", "as_of": D(2026, 11, 15)}))
    assert invoice.number == "E2610-00001" and invoice.buyer_reference == "K1"
    assert complete(invoice).require_totals().amount_due > 0
    assert src.store.get_bill("K1", OCT).status == "reserved"
    assert list(src.invoices({"period": "2026-10", "as_of": D(2026, 10, 28)})) == []
    # The month end then pushes the same number.
    assert month(gw, OCT, D(2026, 11, 15)).issued == ["E2610-00001"]


def test_seller_and_payee_come_from_configuration(gateway_factory: Any) -> None:
    from tests.utility.conftest import seed_prices

    gw = gateway_factory(config="""
[plugins.utility]
seller_name = "Kurzemes Enerģija SIA"
seller_vat_id = "LV40003999999"
seller_registration_id = "40003999999"
bank_name = "Luminor Bank AS"
bic = "RIKOLV2X"
iban = "LV97RIKO0002013187654"
invoice_prefix = "KE-"
payment_reference = "{contract}/{invoice}"
paper_fee = "3.00"
""")
    seed_prices(source(gw).store)
    mp = setup(gw, paper=True)
    add(gw, mp, D(2026, 10, 28), 1100)
    assert month(gw, OCT, D(2026, 11, 15)).issued == ["KE-2610-00001"]
    inv = issued(gw, "KE-2610-00001")
    assert inv.seller.name == "Kurzemes Enerģija SIA"
    assert inv.seller.electronic_address.value == "LV40003999999"
    assert inv.payment.credit_transfers[0].account_id == "LV97RIKO0002013187654"
    assert inv.payment.credit_transfers[0].bic == "RIKOLV2X"
    assert "Luminor Bank AS" in inv.payment.means_text
    assert inv.payment.remittance_information == "K1/KE-2610-00001"
    assert inv.charges[0].amount == Decimal("2.48")       # 3.00 / 1.21


@pytest.mark.parametrize(("setting", "message"), [
    ('iban = "not an iban"', "[plugins.utility] iban"),
    ('payment_reference = "{invoice}"', "must contain both {invoice} and {contract}"),
    ("issue_day = 20", "[plugins.utility] issue_day"),
])
def test_bad_configuration_is_a_clear_error(gateway_factory: Any, setting: str,
                                            message: str) -> None:
    from gateway.errors import ConfigError

    with pytest.raises(ConfigError) as exc:
        gateway_factory(config=f"[plugins.utility]\n{setting}\n")
    assert message in str(exc.value)
