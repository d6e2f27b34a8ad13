"""Every officially valid third-party file converts to UBL, CII and Factur-X keeping every
business term, or is refused with the one rule that makes the target invalid.

Needs ``../shared/corpus`` (see test_xml_corpus.py); skipped with one line without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from gateway import InvoiceRejected, complete
from gateway.core.config import load_config
from gateway.core.model import Invoice
from gateway.core.pipeline import Gateway
from gateway.plugins import get_plugin_manager
from tests.xml_einvoice.test_xml_corpus import CORPUS
from tests.xml_einvoice.xml_helpers import business_terms

TARGETS = ("ubl", "cii", "facturx")
SUB_INVOICE_LINES = "xrechnung/business-cases__extension__04.02a-INVOICE_ubl.xml"


@pytest.fixture(scope="module")
def valid_files() -> list[Path]:
    if not (CORPUS / "verdicts.json").is_file():
        pytest.skip(f"third-party corpus not found at {CORPUS} (../shared/corpus; CI has it)")
    verdicts = json.loads((CORPUS / "verdicts.json").read_text(encoding="utf-8"))
    return [CORPUS / v["file"] for v in verdicts if v["official_valid"]]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = Gateway(load_config(tmp_path_factory.mktemp("data")), get_plugin_manager())
    yield gateway
    gateway.close()


@pytest.fixture(scope="module")
def invoices(valid_files: list[Path], gw: Gateway) -> dict[str, Invoice]:
    read = {}
    for path in valid_files:
        (item,) = list(gw.read_file(path))
        assert not isinstance(item, Exception), f"{path.name}: {item}"
        read[path.name] = complete(item)
    return read


def _terms(invoice: Invoice) -> dict[str, Any]:
    """Business terms, with the one term a syntax derives where it must: CII states a
    price discount (BT-147) only with the gross price, BT-148 = BT-146 + BT-147."""
    terms = business_terms(invoice)
    for line in terms.get("lines", []):
        price = line.get("price", {})
        if "discount" in price and "gross" not in price:
            price["gross"] = price["net"] + price["discount"]
    return terms


@pytest.mark.parametrize("target", TARGETS)
def test_valid_files_convert_keeping_every_term_or_one_rule_refuses(
        invoices: dict[str, Invoice], gw: Gateway, target: str) -> None:
    problems, kept, refused = [], 0, 0
    for name, invoice in invoices.items():
        try:
            document = gw.render(invoice, target, validate=True)
        except InvoiceRejected as exc:
            rules = {f.rule for f in exc.findings if f.fatal}
            refused += 1
            if len(rules) != 1:
                problems.append(f"{name}: refused by {sorted(rules)}, not by one rule")
            continue
        (back,) = gw.plugins.formats.get(target).parse(document.content, f"{name}.{target}")
        if _terms(complete(back)) != _terms(invoice):
            problems.append(f"{name}: terms changed in {target}")
        else:
            kept += 1
    print(f"{target}: {kept} kept every term, {refused} refused by one rule")
    assert not problems, "\n".join(problems)
    assert kept >= 0.8 * len(invoices)


def test_sub_invoice_lines_are_not_dropped_silently(valid_files: list[Path],
                                                    run_cli: Callable[..., Result],
                                                    tmp_path: Path) -> None:
    source = CORPUS / SUB_INVOICE_LINES
    refused = run_cli("convert", str(source), "--to", "cii", "-o", str(tmp_path / "a.xml"))
    assert refused.exit_code != 0
    assert "SubInvoiceLine" in refused.output and "--allow-loss" in refused.output
    assert not (tmp_path / "a.xml").exists()
    allowed = run_cli("convert", str(source), "--to", "cii", "--allow-loss",
                      "-o", str(tmp_path / "b.xml"))
    assert allowed.exit_code == 0, allowed.output
    checked = run_cli("validate", str(tmp_path / "b.xml"))
    assert checked.exit_code == 0, checked.output


def test_buyer_id_and_global_id_do_not_make_two_ubl_buyer_ids(
        invoices: dict[str, Invoice], gw: Gateway) -> None:
    two = next(i for i in invoices.values() if len(i.buyer.identifiers) > 1)
    with pytest.raises(InvoiceRejected) as info:
        gw.render(two, "ubl")
    assert {f.rule for f in info.value.findings} == {"GW-LOSS"}
    assert "UBL-SR-16" in info.value.findings[0].message
    document = gw.render(two, "ubl", options={"allow_loss": True})
    assert document.content.count(b"<cac:PartyIdentification>") <= len(
        two.seller.identifiers) + 1 + (1 if two.payee else 0)


def test_facturx_output_carries_the_facturx_guideline_id(invoices: dict[str, Invoice],
                                                         gw: Gateway) -> None:
    from plugins.pdf.facturx_read import extract

    peppol = next(i for i in invoices.values()
                  if i.specification_id and "peppol" in i.specification_id)
    document = gw.render(peppol, "facturx", validate=True)
    xml = extract(document.content, "out.pdf").xml
    context = xml.split(b"</rsm:ExchangedDocumentContext>")[0]
    guideline = context.split(b"<ram:GuidelineSpecifiedDocumentContextParameter>")[1]
    assert b"<ram:ID>urn:cen.eu:en16931:2017</ram:ID>" in guideline
    assert b"peppol" not in guideline  # BT-23, the business process, is kept as it came


def test_cii_keeping_a_peppol_id_says_the_peppol_rules_refuse_it(
        invoices: dict[str, Invoice], gw: Gateway) -> None:
    refused = []
    for invoice in invoices.values():
        if invoice.specification_id and "peppol" in invoice.specification_id:
            try:
                gw.render(invoice, "cii")
            except InvoiceRejected as exc:
                refused.append(exc)
    assert refused, "the corpus has Peppol files whose CII the Peppol CII rules refuse"
    for exc in refused:
        for finding in exc.findings:
            if finding.rule.startswith("PEPPOL-"):
                assert "claims Peppol" in finding.message


def test_vat_total_in_accounting_currency_survives_ubl_to_cii(invoices: dict[str, Invoice],
                                                              gw: Gateway) -> None:
    # BT-111 with BT-6 (BR-53): the CEN example in two currencies.
    source = invoices["ubl__examples__ubl-tc434-example10.xml"]
    assert source.vat_accounting_currency and source.vat_accounting_currency != source.currency
    expected = source.require_totals().vat_total_accounting_currency
    assert expected is not None
    cii = gw.render(source, "cii", validate=True).content
    assert (f'<ram:TaxTotalAmount currencyID="{source.vat_accounting_currency}">'
            f"{expected}</ram:TaxTotalAmount>").encode() in cii
    (back,) = gw.plugins.formats.get("cii").parse(cii, "back.cii.xml")
    assert complete(back).require_totals().vat_total_accounting_currency == expected
