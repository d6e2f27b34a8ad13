"""Every official example: parses, converts to both syntaxes, stays valid, keeps its terms."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway import complete
from tests.xml_einvoice.xml_helpers import (
    CII,
    EXAMPLE_JSON,
    FORMATS,
    OFFICIAL,
    UBL,
    business_terms,
    fatal,
    read,
    render,
)


def test_the_official_examples_are_there(standards_dir: Path) -> None:
    assert len(OFFICIAL) == 10


@pytest.mark.parametrize("path", OFFICIAL, ids=lambda p: p.name)
def test_official_example_is_valid_as_given(path: Path) -> None:
    fmt = UBL if path.parent.name == "ubl" else CII
    assert fatal(fmt.validate(path.read_bytes())) == []


@pytest.mark.parametrize("target", ["ubl", "cii"])
@pytest.mark.parametrize("path", OFFICIAL, ids=lambda p: p.name)
def test_official_example_converts_to_valid_xml_and_back(path: Path, target: str) -> None:
    original = complete(read(path))
    xml = render(original, target)
    assert fatal(FORMATS[target].validate(xml)) == []
    back = complete(next(FORMATS[target].parse(xml, "converted")))
    assert business_terms(back) == business_terms(original)


@pytest.mark.parametrize("target", ["ubl", "cii"])
@pytest.mark.parametrize("path", EXAMPLE_JSON, ids=lambda p: p.name)
def test_gateway_examples_render_fully_valid(path: Path, target: str) -> None:
    invoice = complete(read(path))
    xml = render(invoice, target)
    assert fatal(FORMATS[target].validate(xml)) == []
    assert render(invoice, target) == xml, "same invoice, same bytes"
    back = complete(next(FORMATS[target].parse(xml, "rendered")))
    assert business_terms(back) == business_terms(invoice)


def test_peppol_is_applied_to_ubl_from_json_and_checked() -> None:
    business = next(p for p in EXAMPLE_JSON if p.name == "electricity-business.json")
    xml = render(complete(read(business)), "ubl")
    assert b"urn:fdc:peppol.eu:2017:poacc:billing:3.0" in xml
    assert b'<cbc:EndpointID schemeID="9939">LV40103987654</cbc:EndpointID>' in xml
    assert b'<cbc:CompanyID schemeID="0218">40003000001</cbc:CompanyID>' in xml


def test_ubl_to_cii_to_ubl_is_the_same_business_case(standards_dir: Path) -> None:
    # The two tc434 "example 5" files are the same invoice in both syntaxes.
    ubl = complete(read(next(p for p in OFFICIAL if p.name == "ubl-tc434-example5.xml")))
    cii = complete(read(next(p for p in OFFICIAL if p.name == "CII_example5.xml")))
    assert ubl.number == cii.number
    assert ubl.require_totals() == cii.require_totals()
    assert [line.net_amount for line in ubl.lines] == [line.net_amount for line in cii.lines]


def test_unknown_elements_are_kept_in_extensions_not_dropped(
        standards_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    # CII_example5 has a second seller tax registration under a scheme EN 16931 has
    # no term for, and a tax point date as DateString.
    path = next(p for p in OFFICIAL if p.name == "CII_example5.xml")
    invoice = read(path)
    assert invoice.extensions == {}
    data = path.read_bytes().replace(
        b"<ram:BuyerReference>", b"<ram:Reference>ORDER-CHANNEL-7</ram:Reference>"
        b"<ram:BuyerReference>", 1)
    # The CLI's logging setup stops "gateway" loggers propagating to the root logger,
    # so listen on the plugin's logger itself.
    logger = logging.getLogger("gateway.xml_einvoice")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level("WARNING", logger="gateway.xml_einvoice"):
            extended = next(CII.parse(data, "extended.xml"))
    finally:
        logger.removeHandler(caplog.handler)
    path_key = ("/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/"
                "ram:ApplicableHeaderTradeAgreement/ram:Reference")
    assert extended.extensions == {path_key: "ORDER-CHANNEL-7"}
    assert "ram:Reference has no place in the EN 16931 model" in caplog.text


PEPPOL = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"


@pytest.mark.parametrize("target", ["ubl", "cii"])
@pytest.mark.parametrize("path", OFFICIAL, ids=lambda p: p.name)
def test_forcing_peppol_leaves_only_peppol_data_rules(path: Path, target: str) -> None:
    # The CEN and XRechnung examples do not claim Peppol and lack what it requires
    # (endpoints, buyer reference, EAS codes...). Claimed anyway, the only fatal
    # findings must be Peppol's own (or its national) rules about that data: never
    # XSD, EN 16931 or syntax rules, which would mean our mapping is wrong.
    xml = render(complete(read(path)), target, specification_id=PEPPOL)
    fatal_rules = {f.rule for f in FORMATS[target].validate(xml) if f.fatal}
    assert all(r.startswith("PEPPOL-") or (r[:2].isalpha() and r[2:5] == "-R-")
               for r in fatal_rules), fatal_rules
    if path.name.startswith("peppol-"):
        assert fatal_rules == set()
