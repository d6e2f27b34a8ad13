"""An invoice with every business term the model carries survives both syntaxes."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from gateway import InvoiceRejected, complete, load_invoice
from plugins.xml_einvoice.validation import validator
from tests.xml_einvoice.xml_helpers import (
    EXAMPLE_JSON,
    FORMATS,
    business_terms,
    fatal,
    render,
)

BASE = json.loads(next(p for p in EXAMPLE_JSON if p.name == "electricity-business.json")
                  .read_text(encoding="utf-8"))
ADDRESS = {"line1": "Ielas iela 1", "line2": "2. stāvs", "line3": "Korpuss B", "city": "Rīga",
           "postal_code": "LV-1050", "subdivision": "Rīgas novads", "country": "LV"}


def every_term() -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update({
        "tax_point_date_code": "3",
        "project_reference": "PRJ-7",
        "sales_order_reference": "SO-12",
        "receiving_advice_reference": "RA-3",
        "despatch_advice_reference": "DA-4",
        "tender_reference": "TENDER-2026-1",
        "buyer_accounting_reference": "4010:ELEKTR",
        "notes": [{"text": "Paldies!", "subject_code": "AAI"}],
        "preceding_invoices": [{"number": "E2610-00125", "issue_date": "2026-10-04"}],
        "payee": {"name": "Factoring SIA", "identifier": {"value": "5790000436057",
                                                          "scheme": "0088"},
                  "legal_registration_id": {"value": "40003999999", "scheme": "0218"}},
        "tax_representative": {"name": "Nodokļu pārstāvis SIA", "vat_id": "LV40003888888",
                               "address": ADDRESS},
        "delivery": {"party_name": "Ziemeļu Ceptuve, cehs 2",
                     "location_id": {"value": "LV-OBJ-000987654", "scheme": "0088"},
                     "date": "2026-10-31", "address": ADDRESS},
        "supporting_documents": [
            {"id": "METER-2026-10", "description": "Skaitītāja rādījumi",
             "attachment": {"content": base64.b64encode(b"id;kwh\n1;12840\n").decode(),
                            "mime_code": "text/csv", "filename": "readings.csv"}},
            {"id": "TARIFF", "description": "Tarifi", "uri": "https://example.lv/tarifi"},
        ],
        "allowances": [{"amount": "10.00", "base_amount": "1000.00", "percentage": "1",
                        "vat_category": "S", "vat_rate": "21", "reason": "Lojalitāte",
                        "reason_code": "95"}],
        "charges": [{"amount": "2.07", "vat_category": "S", "vat_rate": "21",
                     "reason": "Papīra rēķins", "reason_code": "ABL"}],
    })
    seller = data["seller"]
    seller.update({"identifiers": [{"value": "LV-SUPPLIER-1"}],
                   "tax_registration_id": "LV-TAX-123",
                   "additional_legal_information": "Reģistrēts Uzņēmumu reģistrā"})
    seller["address"] = ADDRESS
    data["buyer"]["trading_name"] = "Ceptuve"
    data["buyer"]["identifiers"] = [{"value": "5790000436057", "scheme": "0088"}]
    data["payment"]["credit_transfers"].append(
        {"account_id": "LV80BANK0000435195001", "account_name": "Daugavas Elektrība AS",
         "bic": "RIKOLV2X"})
    line = data["lines"][0]
    line.update({
        "note": "Rādījums 2026-10-31",
        "object_id": {"value": "METER-778", "scheme": "AFN"},
        "order_line_reference": "3",
        "accounting_reference": "4010",
        "period": {"start": "2026-10-01", "end": "2026-10-31"},
        "allowances": [{"amount": "1.00", "base_amount": "100.00", "percentage": "1",
                        "reason": "Atlaide", "reason_code": "95"}],
        "charges": [{"amount": "1.00", "reason": "Jaudas maksa", "reason_code": "ABK"}],
    })
    # BT-150 equal to the line's unit (Peppol allows no other) is written and read as
    # "same unit as the quantity", i.e. absent.
    line["price"] = {"net": "0.1389", "gross": "0.1500", "discount": "0.0111",
                     "base_quantity": "1"}
    line["item"].update({
        "buyers_id": "B-EL", "standard_id": {"value": "7312345678901", "scheme": "0160"},
        "classifications": [{"value": "65310000", "scheme": "STI"}],
        "origin_country": "LV",
        "attributes": [{"name": "Avots", "value": "Hidro"}],
    })
    data["lines"][1]["price"] = {"net": "1.00", "base_quantity": "100"}
    data["lines"][1]["quantity"] = "100"
    return data


@pytest.fixture(scope="module")
def full_invoice() -> Any:
    # BT-6/BT-111 (VAT in another currency) can only be stated, not computed: add them
    # to the completed invoice, as a billing system would state them.
    invoice = complete(load_invoice(every_term()))
    totals = invoice.require_totals().model_copy(
        update={"vat_total_accounting_currency": invoice.require_totals().vat_total})
    return invoice.model_copy(update={"totals": totals, "vat_accounting_currency": "USD"})


@pytest.mark.parametrize("target", ["ubl", "cii"])
def test_every_term_is_written_valid_and_read_back(full_invoice: Any, target: str) -> None:
    xml = render(full_invoice, target)
    assert fatal(FORMATS[target].validate(xml)) == []
    back = complete(next(FORMATS[target].parse(xml, "all-terms")))
    assert back.extensions == {}
    assert business_terms(back) == business_terms(full_invoice)


def test_card_and_direct_debit_survive_both_syntaxes() -> None:
    data = copy.deepcopy(BASE)
    data["payment"] = {"means_code": "59", "remittance_information": "E2611-00125",
                       "card": {"account_number": "1234", "holder_name": "J BERZINS"},
                       "direct_debit": {"mandate_reference": "MANDATE-9",
                                        "creditor_id": "LV98ZZZ40003000001",
                                        "debited_account": "LV10HABA0000000000001"}}
    invoice = complete(load_invoice(data))
    for target in ("ubl", "cii"):
        xml = render(invoice, target)
        assert fatal(FORMATS[target].validate(xml)) == [], target
        back = complete(next(FORMATS[target].parse(xml, "dd")))
        assert back.payment == invoice.payment, target


def test_credit_note_due_date_without_payment_is_refused_not_dropped() -> None:
    data = copy.deepcopy(BASE)
    data.update({"type_code": "381", "due_date": "2026-11-30"})
    del data["payment"]
    data["preceding_invoices"] = [{"number": "E2610-00125"}]
    invoice = complete(load_invoice(data))
    with pytest.raises(InvoiceRejected) as exc:
        render(invoice, "ubl")
    assert exc.value.findings[0].rule == "GW-UBL-BT9"


def test_two_preceding_invoices_do_not_fit_cii() -> None:
    data = copy.deepcopy(BASE)
    data["preceding_invoices"] = [{"number": "A-1"}, {"number": "A-2"}]
    invoice = complete(load_invoice(data))
    assert b"A-2" in render(invoice, "ubl")
    with pytest.raises(InvoiceRejected) as exc:
        render(invoice, "cii")
    assert exc.value.findings[0].rule == "GW-CII-BG3"


def test_schemas_compile_once_per_process() -> None:
    from plugins.xml_einvoice import resources as res

    v = validator()
    first = v.stylesheet(res.EN16931_UBL)
    assert first is not None and v.stylesheet(res.EN16931_UBL) is first
    assert v.schema(res.CII_XSD) is v.schema(res.CII_XSD)


def test_tax_point_date_with_two_vat_rates() -> None:
    data = copy.deepcopy(BASE)
    data["tax_point_date"] = "2026-10-31"
    data["lines"][1]["vat"] = {"category": "S", "rate": "12"}
    invoice = complete(load_invoice(data))
    assert len(invoice.vat_breakdown) == 2
    for target in ("ubl", "cii"):
        xml = render(invoice, target)
        assert xml.count(b"TaxPointDate>") == 2, "once per document (CII-SR-461)"
        assert fatal(FORMATS[target].validate(xml)) == [], target
        back = complete(next(FORMATS[target].parse(xml, "tp")))
        assert back.tax_point_date == invoice.tax_point_date
