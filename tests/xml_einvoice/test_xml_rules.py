"""Broken documents are reported with the official rule id, severity and location."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway import Finding, complete
from tests.xml_einvoice.xml_helpers import CII, EXAMPLE_JSON, OFFICIAL, UBL, read, render, rules

BUSINESS = next(p for p in EXAMPLE_JSON if p.name == "electricity-business.json")


@pytest.fixture(scope="module")
def ubl_doc() -> bytes:
    return render(complete(read(BUSINESS)), "ubl")


@pytest.fixture(scope="module")
def cii_doc() -> bytes:
    return render(complete(read(BUSINESS)), "cii")


def replace(doc: bytes, pattern: str, replacement: str) -> bytes:
    changed, n = re.subn(pattern.encode(), replacement.encode(), doc, count=1, flags=re.S)
    assert n == 1, f"{pattern!r} not in document"
    return changed


def finding(findings: list[Finding], rule: str) -> Finding:
    return next(f for f in findings if f.rule == rule)


def test_valid_documents_have_no_findings(ubl_doc: bytes, cii_doc: bytes) -> None:
    assert [f for f in UBL.validate(ubl_doc) if f.fatal] == []
    assert [f for f in CII.validate(cii_doc) if f.fatal] == []


def test_wrong_total_reports_br_co_15_with_xpath(ubl_doc: bytes) -> None:
    broken = replace(ubl_doc, r'<cbc:TaxInclusiveAmount currencyID="EUR">[0-9.]+<',
                     '<cbc:TaxInclusiveAmount currencyID="EUR">1.00<')
    findings = UBL.validate(broken)
    f = finding(findings, "BR-CO-15")
    assert f.fatal and f.severity == "fatal"
    assert f.path == "/Invoice[1]"  # BR-CO-15 is asserted on the document root
    assert "Invoice total amount with VAT" in f.message
    assert f.term == "BT-112"
    assert not f.message.startswith("[BR-CO-15]")


def test_wrong_amount_due_in_cii_reports_br_co_16(cii_doc: bytes) -> None:
    broken = replace(cii_doc, r"<ram:DuePayableAmount>[0-9.]+<",
                     "<ram:DuePayableAmount>0.01<")
    assert "BR-CO-16" in rules(CII.validate(broken))


def test_missing_mandatory_element_is_an_xsd_finding(ubl_doc: bytes) -> None:
    broken = replace(ubl_doc, r"<cbc:IssueDate>[^<]+</cbc:IssueDate>\s*", "")
    findings = UBL.validate(broken)
    xsd = finding(findings, "XSD")
    assert "cbc:DueDate" in xsd.message or "cbc:IssueDate" in xsd.message
    assert xsd.path.startswith("/Invoice/")
    assert "BR-03" in rules(findings)  # the schematron names the business rule too


def test_missing_seller_name_reports_br_06(cii_doc: bytes) -> None:
    broken = replace(cii_doc, r"(<ram:SellerTradeParty>.*?)<ram:Name>[^<]+</ram:Name>",
                     r"\1")
    assert "BR-06" in rules(CII.validate(broken))


def test_wrong_currency_code_reports_the_code_list_rule(ubl_doc: bytes) -> None:
    broken = ubl_doc.replace(b"<cbc:DocumentCurrencyCode>EUR<",
                             b"<cbc:DocumentCurrencyCode>EUX<")
    assert "BR-CL-04" in rules(UBL.validate(broken))


def test_wrong_unit_code_reports_br_cl_23(standards_dir: Path, cii_doc: bytes) -> None:
    broken = replace(cii_doc, r'unitCode="KWH"', 'unitCode="KILOWATT"')
    assert "BR-CL-23" in rules(CII.validate(broken))


def test_wrong_vat_category_reports_br_cl_17_or_18(ubl_doc: bytes) -> None:
    broken = replace(ubl_doc, r"<cac:ClassifiedTaxCategory>\s*<cbc:ID>S<",
                     "<cac:ClassifiedTaxCategory><cbc:ID>Q<")
    assert rules(UBL.validate(broken)) & {"BR-CL-17", "BR-CL-18"}


def test_missing_peppol_buyer_endpoint_reports_peppol_rule(ubl_doc: bytes) -> None:
    broken = replace(ubl_doc, r'(<cac:AccountingCustomerParty>\s*<cac:Party>\s*)'
                              r'<cbc:EndpointID[^>]*>[^<]+</cbc:EndpointID>\s*', r"\1")
    f = finding(UBL.validate(broken), "PEPPOL-EN16931-R010")
    assert f.path == "/Invoice[1]/cac:AccountingCustomerParty[1]/cac:Party[1]"
    assert f.message == "Buyer electronic address MUST be provided"


def test_peppol_rules_apply_to_cii_only_when_claimed(standards_dir: Path, cii_doc: bytes) -> None:
    no_buyer_ref = replace(cii_doc, r"<ram:BuyerReference>[^<]+</ram:BuyerReference>\s*", "")
    no_order = replace(no_buyer_ref, r"<ram:BuyerOrderReferencedDocument>.*?"
                                     r"</ram:BuyerOrderReferencedDocument>\s*", "")
    assert "PEPPOL-EN16931-R003" not in rules(CII.validate(no_order))
    claimed = no_order.replace(b"<ram:ID>urn:cen.eu:en16931:2017</ram:ID>",
                               b"<ram:ID>urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu"
                               b":2017:poacc:billing:3.0</ram:ID>")
    assert "PEPPOL-EN16931-R003" in rules(CII.validate(claimed))


def test_warnings_are_not_fatal(standards_dir: Path) -> None:
    # The CEN credit note example passes with advisory findings only (if any).
    path = next(p for p in OFFICIAL if p.name == "ubl-tc434-creditnote1.xml")
    findings = UBL.validate(path.read_bytes())
    assert all(f.severity in ("warning", "information") for f in findings)


def test_wrong_syntax_for_the_format_is_one_clear_finding(cii_doc: bytes) -> None:
    findings = UBL.validate(cii_doc)
    assert len(findings) == 1
    assert findings[0].rule == "GW-XML"
    assert "is not a UBL 2.1 Invoice or CreditNote" in findings[0].message


def test_invoice_without_buyer_endpoint_renders_but_is_not_peppol_valid() -> None:
    # Nothing is invented: the missing endpoint stays missing, validation names the rule.
    invoice = complete(read(BUSINESS))
    buyer = invoice.buyer.model_copy(update={"electronic_address": None})
    xml = render(invoice.model_copy(update={"buyer": buyer}), "ubl")
    assert b"EndpointID>LV40103987654" not in xml
    assert "PEPPOL-EN16931-R010" in rules(UBL.validate(xml))
