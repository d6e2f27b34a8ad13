"""The invoice model and the EN 16931 rules: every error names rule, field and term."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from gateway.core import complete, load_invoice
from gateway.core.calc import line_net_amount, money
from gateway.core.model import Invoice
from gateway.errors import Finding, InvoiceRejected


def rejected(data: Any) -> list[Finding]:
    with pytest.raises(InvoiceRejected) as info:
        complete(load_invoice(data))
    return info.value.findings


def rules(findings: list[Finding]) -> dict[str, Finding]:
    return {f.rule: f for f in findings}


def test_example_is_completed_with_computed_totals(invoice_data: dict[str, Any]) -> None:
    invoice = complete(load_invoice(invoice_data))
    totals = invoice.require_totals()
    # 312 kWh × 0.1389 = 43.3368 → 43.34; 312 × 0.0427 = 13.3224 → 13.32; 8.40
    assert [line.net_amount for line in invoice.lines] == [
        Decimal("43.34"), Decimal("13.32"), Decimal("8.40")]
    assert totals.line_net_total == Decimal("65.06")
    assert totals.vat_total == Decimal("13.66")  # 65.06 × 21 % = 13.6626
    assert totals.total_with_vat == Decimal("78.72")
    assert totals.amount_due == Decimal("78.72")
    [vat] = invoice.vat_breakdown
    assert (vat.category.value, vat.rate, vat.taxable_amount) == ("S", Decimal("21.00"),
                                                                  Decimal("65.06"))


def test_paper_fee_is_a_document_level_charge(load_example: Any) -> None:
    invoice = complete(load_invoice(load_example("electricity-paper.json")))
    totals = invoice.require_totals()
    assert totals.charges_total == Decimal("2.07")
    # 2.07 net + 21 % VAT = 2.50 EUR gross, the paper invoice fee
    assert money(Decimal("2.07") * Decimal("1.21")) == Decimal("2.50")
    assert totals.total_without_vat == totals.line_net_total + Decimal("2.07")


def test_money_is_decimal_never_float(invoice_data: dict[str, Any]) -> None:
    invoice_data["lines"][0]["price"]["net"] = 0.1  # a float in the input...
    invoice = load_invoice(invoice_data)
    assert isinstance(invoice.lines[0].price.net, Decimal)
    dumped = json.loads(invoice.model_dump_json())
    assert dumped["lines"][0]["price"]["net"] == "0.1"  # ...is exact, and stays text


@pytest.mark.parametrize(
    ("field", "value", "rule", "path"),
    [
        ("totals", {"line_net_total": "65.06", "total_without_vat": "65.06",
                    "vat_total": "13.66", "total_with_vat": "78.00", "amount_due": "78.00"},
         "BR-CO-15", "totals.total_with_vat"),
        ("totals", {"line_net_total": "65.00", "total_without_vat": "65.06",
                    "vat_total": "13.66", "total_with_vat": "78.72", "amount_due": "78.72"},
         "BR-CO-10", "totals.line_net_total"),
        ("totals", {"line_net_total": "65.06", "total_without_vat": "65.06",
                    "vat_total": "13.66", "total_with_vat": "78.72", "amount_due": "70.00"},
         "BR-CO-16", "totals.amount_due"),
    ],
)
def test_stated_totals_must_agree(invoice_data: dict[str, Any], field: str, value: Any,
                                  rule: str, path: str) -> None:
    invoice_data[field] = value
    found = rules(rejected(invoice_data))
    assert rule in found
    assert found[rule].path == path
    assert found[rule].term is not None


def test_correct_stated_totals_are_accepted(invoice_data: dict[str, Any]) -> None:
    invoice_data["totals"] = {"line_net_total": "65.06", "total_without_vat": "65.06",
                              "vat_total": "13.66", "total_with_vat": "78.72",
                              "amount_due": "78.72"}
    assert complete(load_invoice(invoice_data)).require_totals().amount_due == Decimal("78.72")


def test_vat_breakdown_is_checked(invoice_data: dict[str, Any]) -> None:
    invoice_data["vat_breakdown"] = [{"category": "S", "rate": "21", "taxable_amount": "65.06",
                                      "tax_amount": "15.00"}]
    assert "BR-CO-17" in rules(rejected(invoice_data))


def test_missing_buyer_names_the_rule_and_field(invoice_data: dict[str, Any]) -> None:
    del invoice_data["buyer"]
    found = rules(rejected(invoice_data))
    assert found["BR-07"].path == "buyer"
    assert "required" in found["BR-07"].message


def test_missing_buyer_name(invoice_data: dict[str, Any]) -> None:
    del invoice_data["buyer"]["name"]
    finding = rules(rejected(invoice_data))["BR-06/BR-07"]
    assert finding.path == "buyer.name"
    assert finding.term == "BT-27/BT-44"


def test_bad_date_is_reported_with_the_value(invoice_data: dict[str, Any]) -> None:
    invoice_data["issue_date"] = "2026-02-30"
    finding = rules(rejected(invoice_data))["BR-03"]
    assert finding.path == "issue_date"
    assert "2026-02-30" in finding.message


def test_non_numeric_amount(invoice_data: dict[str, Any]) -> None:
    invoice_data["lines"][1]["quantity"] = "three hundred"
    finding = rules(rejected(invoice_data))["BR-22"]
    assert finding.path == "lines[1].quantity"
    assert finding.term == "BT-129"


def test_too_many_decimals_in_an_amount(invoice_data: dict[str, Any]) -> None:
    invoice_data["charges"] = [{"amount": "2.071", "vat_category": "S", "vat_rate": "21",
                                "reason": "fee"}]
    [finding] = rejected(invoice_data)
    assert finding.path == "charges[0].amount"
    assert "2 decimal" in finding.message


def test_misspelt_field_is_an_error_not_ignored(invoice_data: dict[str, Any]) -> None:
    invoice_data["dew_date"] = "2026-12-01"
    [finding] = rejected(invoice_data)
    assert finding.path == "dew_date"
    assert "misspelt" in finding.message


def test_no_lines(invoice_data: dict[str, Any]) -> None:
    invoice_data["lines"] = []
    assert "BR-16" in rules(rejected(invoice_data))


def test_period_end_before_start(invoice_data: dict[str, Any]) -> None:
    invoice_data["invoice_period"] = {"start": "2026-10-31", "end": "2026-10-01"}
    assert rules(rejected(invoice_data))["BR-29"].path == "invoice_period.end"


def test_negative_price(invoice_data: dict[str, Any]) -> None:
    invoice_data["lines"][0]["price"]["net"] = "-0.10"
    assert rules(rejected(invoice_data))["BR-27"].path == "lines[0].price.net"


def test_exempt_category_needs_a_reason(invoice_data: dict[str, Any]) -> None:
    for line in invoice_data["lines"]:
        line["vat"] = {"category": "E", "rate": "0"}
    assert "BR-E-10" in rules(rejected(invoice_data))
    invoice_data["vat_breakdown"] = [{"category": "E", "rate": "0", "taxable_amount": "65.06",
                                      "tax_amount": "0", "exemption_reason": "Art. 52"}]
    invoice = complete(load_invoice(invoice_data))
    assert invoice.vat_breakdown[0].exemption_reason == "Art. 52"


def test_standard_rate_must_be_positive(invoice_data: dict[str, Any]) -> None:
    invoice_data["lines"][0]["vat"]["rate"] = "0"
    assert "BR-S-05" in rules(rejected(invoice_data))


def test_credit_transfer_needs_an_account(invoice_data: dict[str, Any]) -> None:
    invoice_data["payment"]["credit_transfers"] = []
    assert "BR-61" in rules(rejected(invoice_data))


def test_due_date_or_terms_when_amount_due(invoice_data: dict[str, Any]) -> None:
    del invoice_data["due_date"]
    del invoice_data["payment_terms"]
    assert "BR-CO-25" in rules(rejected(invoice_data))


def test_control_characters_are_refused(invoice_data: dict[str, Any]) -> None:
    invoice_data["buyer"]["name"] = "Jānis\x00Bērziņš"
    [finding] = rejected(invoice_data)
    assert finding.path == "buyer.name"


def test_all_findings_are_collected_not_just_the_first(invoice_data: dict[str, Any]) -> None:
    invoice_data["lines"][0]["price"]["net"] = "-1"
    invoice_data["invoice_period"] = {"start": "2026-10-31", "end": "2026-10-01"}
    found = rules(rejected(invoice_data))
    assert {"BR-27", "BR-29"} <= set(found)


def test_line_net_amount_with_base_quantity_and_allowance() -> None:
    invoice = load_invoice({
        "number": "X", "issue_date": "2026-01-01", "currency": "EUR", "due_date": "2026-01-31",
        "seller": {"name": "S", "vat_id": "LV1", "address": {"country": "LV"}},
        "buyer": {"name": "B", "address": {"country": "LV"}},
        "lines": [{"id": "1", "quantity": "250", "unit": "KWH",
                   "price": {"net": "13.50", "base_quantity": "100"},
                   "allowances": [{"amount": "1.00", "reason": "loyalty"}],
                   "vat": {"category": "S", "rate": "21"}, "item": {"name": "energy"}}],
    })
    assert line_net_amount(invoice.lines[0]) == Decimal("32.75")  # 2.5 × 13.50 − 1.00


def test_stated_line_net_amount_must_match(invoice_data: dict[str, Any]) -> None:
    invoice_data["lines"][0]["net_amount"] = "43.00"
    assert rules(rejected(invoice_data))["PEPPOL-EN16931-R120"].path == "lines[0].net_amount"


def test_json_schema_documents_business_terms() -> None:
    schema = Invoice.model_json_schema()
    assert schema["properties"]["number"]["description"].startswith("BT-1:")
    assert "BG-25" in schema["properties"]["lines"]["description"]


def test_credit_note(load_example: Any) -> None:
    invoice = complete(load_invoice(load_example("credit-note.json")))
    assert invoice.is_credit_note
    assert invoice.preceding_invoices[0].number == "E2611-00123"
