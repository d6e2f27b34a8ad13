"""Generated invoices always render to XML that passes XSD + CEN (+ Peppol for UBL)."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import Invoice, InvoiceRejected, complete, load_invoice
from gateway.core.calc import compute_vat_breakdown, line_net_amount
from tests.xml_einvoice.xml_helpers import (
    EXAMPLE_JSON,
    FORMATS,
    business_terms,
    fatal,
    render,
)

BASE = json.loads(next(p for p in EXAMPLE_JSON if p.name == "electricity-business.json")
                  .read_text(encoding="utf-8"))

text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    min_size=1, max_size=40,
).filter(lambda s: s.strip() != "")
quantity = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(100000), places=3)
price = st.decimals(min_value=Decimal(0), max_value=Decimal(5000), places=4)
vat = st.sampled_from([("S", "21"), ("S", "12"), ("S", "5"), ("Z", "0"), ("E", "0"),
                       ("AE", "0")])
EXEMPTIONS = {"E": ("VATEX-EU-132-1B", "Atbrīvots no PVN"),
              "AE": ("VATEX-EU-AE", "Reverse charge")}
unit = st.sampled_from(["KWH", "C62", "H87", "MON", "HUR", "MTQ", "KGM"])


@st.composite
def lines(draw: st.DrawFn) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(min_value=1, max_value=6))):
        category, rate = draw(vat)
        line: dict[str, Any] = {
            "id": str(i + 1),
            "quantity": str(draw(quantity)),
            "unit": draw(unit),
            "price": {"net": str(draw(price))},
            "vat": {"category": category, "rate": rate},
            "item": {"name": draw(text)},
        }
        if draw(st.booleans()):
            line["item"]["description"] = draw(text)
        if draw(st.booleans()):
            line["allowances"] = [{"amount": "0.50", "reason": draw(text)}]
        if draw(st.booleans()):
            line["price"]["base_quantity"] = str(draw(st.sampled_from(["1", "10", "100"])))
        out.append(line)
    return out


@st.composite
def invoices(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["lines"] = draw(lines())
    data["notes"] = [{"text": draw(text)}]
    data["buyer"]["name"] = draw(text)
    if draw(st.booleans()):
        data["charges"] = [{"amount": "2.07", "vat_category": "S", "vat_rate": "21",
                            "reason": draw(text)}]
    if draw(st.booleans()):
        data["allowances"] = [{"amount": "1.00", "vat_category": "S", "vat_rate": "21",
                               "reason_code": "95"}]
    return data


def with_exemption_reasons(invoice: Invoice) -> Invoice:
    """Exempt and reverse-charge VAT need a reason in the breakdown (BR-E-10, BR-AE-10),
    which a billing system states; state it here from the computed breakdown."""
    nets = [line_net_amount(line) for line in invoice.lines]
    breakdown = [
        b.model_copy(update={"exemption_reason_code": EXEMPTIONS[b.category.value][0],
                             "exemption_reason": EXEMPTIONS[b.category.value][1]})
        if b.category.value in EXEMPTIONS else b
        for b in compute_vat_breakdown(invoice, nets)
    ]
    return invoice.model_copy(update={"vat_breakdown": breakdown})


@pytest.mark.parametrize("target", ["ubl", "cii"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=invoices())
def test_generated_invoices_render_to_valid_xml(target: str, data: dict[str, Any]) -> None:
    invoice = with_exemption_reasons(load_invoice(data))
    try:
        invoice = complete(invoice)
    except InvoiceRejected:
        return  # not an invoice the gateway accepts (e.g. the core's own rules say no)
    xml = render(invoice, target)
    assert fatal(FORMATS[target].validate(xml)) == []
    back = complete(next(FORMATS[target].parse(xml, "generated")))
    assert business_terms(back) == business_terms(invoice)


def test_characters_xml_cannot_carry_are_a_clear_rejection() -> None:
    data = copy.deepcopy(BASE)
    data["lines"][0]["item"]["name"] = "Elektroenerģija \uffff"
    invoice = complete(load_invoice(data))
    with pytest.raises(InvoiceRejected) as exc:
        render(invoice, "ubl")
    assert exc.value.findings[0].rule == "GW-XML-CHAR"
