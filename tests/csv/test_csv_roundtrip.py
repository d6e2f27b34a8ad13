"""Round trip invoice → CSV → invoice over generated invoices (hypothesis).

The generated invoices use every column of the specification, with text full of the
things that break CSV files: Latvian letters, quotes, both delimiters, line breaks,
tabs and formula triggers.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import Invoice, complete, load_invoice
from gateway.core import codelists
from gateway.core.calc import compute_vat_breakdown
from plugins.csv import CsvFormat, export_many

TRICKY = [*"aāčēģīķļņšūžAĀČĒĢĪĶĻŅŠŪŽ09 \"';,\n\r\t=+-@|.€", "\r\n", "„“", '""']
# What the model refuses in any text: a byte order mark and bidi controls.
NOT_TEXT = "\ufeff\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_text = st.one_of(
    st.lists(st.sampled_from(TRICKY), min_size=1, max_size=16).map("".join),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"),
                          exclude_characters=NOT_TEXT), min_size=1, max_size=12),
).filter(lambda s: s.strip() != "")
text = _text.map(str.strip)
maybe = lambda s: st.none() | s  # noqa: E731
codes = st.text(st.sampled_from(list("AZ09-:.")), min_size=1, max_size=6)
# Coded fields take their official code lists (the model checks them).
EAS = st.sampled_from(sorted(codelists.EAS_SCHEMES))
REASONS = st.sampled_from(sorted(codelists.ALLOWANCE_REASON_CODES
                                 | codelists.CHARGE_REASON_CODES))
dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31))


def decimals(places: int, low: str = "-1000", high: str = "100000") -> st.SearchStrategy:
    return st.decimals(Decimal(low), Decimal(high), places=places, allow_nan=False,
                       allow_infinity=False)


@st.composite
def periods(draw: Any) -> dict[str, Any] | None:
    start, end = draw(maybe(dates)), draw(maybe(dates))
    if start is None and end is None:
        return None
    if start and end and end < start:
        start, end = end, start
    return {"start": start, "end": end}


@st.composite
def identifier(draw: Any) -> dict[str, Any]:
    return {"value": draw(text), "scheme": draw(maybe(codes))}


@st.composite
def party(draw: Any) -> dict[str, Any]:
    contact = {k: draw(maybe(text)) for k in ("name", "telephone", "email")}
    return {
        "name": draw(text), "trading_name": draw(maybe(text)),
        "identifiers": draw(st.lists(identifier(), max_size=1)),
        "legal_registration_id": draw(maybe(identifier())),
        "vat_id": draw(text),
        "electronic_address": draw(maybe(st.builds(dict, value=text, scheme=EAS))),
        "address": {"line1": draw(maybe(text)), "line2": draw(maybe(text)),
                    "city": draw(maybe(text)), "postal_code": draw(maybe(text)),
                    "country": draw(st.sampled_from(["LV", "LT", "EE", "DE"]))},
        "contact": contact if any(contact.values()) else None,
    }


VAT = st.sampled_from([("S", Decimal("21")), ("S", Decimal("12")), ("S", Decimal("5.5")),
                       ("Z", Decimal("0")), ("E", Decimal("0")), ("AE", Decimal("0")),
                       ("O", None)])


@st.composite
def line(draw: Any, i: int) -> dict[str, Any]:
    category, rate = draw(VAT)
    return {
        "id": draw(st.just(str(i + 1)) | text), "note": draw(maybe(text)),
        "quantity": draw(decimals(4)), "unit": draw(st.sampled_from(["KWH", "MON", "C62"])),
        "price": {"net": draw(decimals(6, "0", "1000")),
                  "base_quantity": draw(maybe(decimals(2, "0.5", "1000")))},
        "period": draw(periods()),
        "vat": {"category": category, "rate": rate},
        "item": {"name": draw(text), "description": draw(maybe(text)),
                 "sellers_id": draw(maybe(text)), "buyers_id": draw(maybe(text))},
    }


@st.composite
def allowance_charge(draw: Any) -> dict[str, Any]:
    category, rate = draw(VAT)
    return {"amount": draw(decimals(2, "0", "500")), "vat_category": category,
            "vat_rate": rate, "reason": draw(text), "reason_code": draw(maybe(REASONS))}


#: document numbers are one line (BT-1, BT-25)
one_line = text.filter(lambda s: "\r" not in s and "\n" not in s)


@st.composite
def invoices(draw: Any, number: str | None = None) -> Invoice:
    means = draw(st.sampled_from(["58", "30", "10"]))
    transfer = {"account_id": draw(text), "account_name": draw(maybe(text)),
                "bic": draw(maybe(text))}
    data = {
        "number": number or draw(one_line), "issue_date": draw(dates),
        "type_code": draw(st.sampled_from(["380", "381", "384", "389", "386", "383"])),
        "currency": draw(st.sampled_from(["EUR", "USD"])), "due_date": draw(dates),
        "tax_point_date": draw(maybe(dates)),
        **{k: draw(maybe(text)) for k in (
            "buyer_reference", "contract_reference", "purchase_order_reference",
            "project_reference", "buyer_accounting_reference", "payment_terms",
            "business_process")},
        "specification_id": draw(st.sampled_from(
            [None, "urn:cen.eu:en16931:2017",
             "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"])),
        "invoiced_object": draw(maybe(identifier())),
        "invoice_period": draw(periods()),
        "preceding_invoices": draw(st.lists(st.builds(dict, number=one_line,
                                                      issue_date=st.none() | dates),
                                             max_size=1)),
        "notes": draw(st.lists(st.builds(dict, text=text, subject_code=st.none() | codes),
                               max_size=1)),
        "seller": draw(party()), "buyer": draw(party()),
        "payment": draw(st.none() | st.just({
            "means_code": means, "means_text": draw(maybe(text)),
            "remittance_information": draw(maybe(text)),
            "credit_transfers": [transfer] if means != "10" else []})),
        "lines": [draw(line(i)) for i in range(draw(st.integers(1, 4)))],
        "charges": draw(st.lists(allowance_charge(), max_size=2)),
        "allowances": draw(st.lists(allowance_charge(), max_size=2)),
    }
    invoice = load_invoice(data)
    nets = [complete_net(x) for x in invoice.lines]
    breakdown = [b.model_copy(update={"exemption_reason": draw(text)})
                 if b.category.value in ("E", "AE", "O") else b
                 for b in compute_vat_breakdown(invoice, nets)]
    invoice = complete(invoice.model_copy(update={"vat_breakdown": breakdown}))
    paid = draw(maybe(decimals(2, "0", "100")))
    if paid is not None:  # a stated paid amount changes the amount due
        totals = invoice.require_totals()
        invoice = complete(invoice.model_copy(update={"totals": totals.model_copy(update={
            "paid_amount": paid, "amount_due": totals.total_with_vat - paid})}))
    return invoice


def complete_net(line: Any) -> Decimal:
    from gateway.core import line_net_amount

    return line_net_amount(line)


ROUND_TRIP = settings(max_examples=100, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@ROUND_TRIP
@given(invoice=invoices(), dialect=st.sampled_from(["lv", "en"]))
def test_invoice_csv_invoice_gives_the_same_model(invoice: Invoice, dialect: str) -> None:
    data = export_many([invoice], dialect)
    assert list(CsvFormat().parse(data, "roundtrip.csv")) == [invoice]


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=st.lists(st.integers(0, 10_000), min_size=2, max_size=4, unique=True).flatmap(
    lambda ns: st.tuples(*[invoices(number=f"E-{n}") for n in ns])),
    dialect=st.sampled_from(["lv", "en"]))
def test_many_invoices_in_one_file_come_back_in_order(batch: tuple[Invoice, ...],
                                                      dialect: str) -> None:
    data = export_many(batch, dialect)
    assert list(CsvFormat().parse(data, "history.csv")) == list(batch)
