"""The public extension API of the XML formats: a format derived from UBL or CII with
another CustomizationID and extra rules, using only the names in ``__all__``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

import plugins.xml_einvoice as xml_einvoice
from gateway import hookimpl
from gateway.core.pipeline import Gateway
from gateway.errors import InvoiceRejected
from gateway.testing import check_format, sample_invoice

PUBLIC = {"CiiFormat", "DerivedXmlFormat", "Finding", "UblFormat", "gateway_register_formats"}
XRECHNUNG = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"


def test_the_public_names_are_listed_in_one_place() -> None:
    assert set(xml_einvoice.__all__) == PUBLIC
    for name in xml_einvoice.__all__:
        assert getattr(xml_einvoice, name) is not None


# The example of docs/plugins.md, written as an integrator would: public names only.
DerivedXmlFormat = xml_einvoice.DerivedXmlFormat
Finding = xml_einvoice.Finding


class XRechnungUbl(DerivedXmlFormat):
    name: ClassVar[str] = "xrechnung-ubl"
    base: ClassVar[Any] = "ubl"
    extension: ClassVar[str] = "xrechnung.xml"
    description: ClassVar[str] = "XRechnung 3.0 (UBL)"
    customization_id: ClassVar[str] = XRECHNUNG

    def rules(self, invoice: Any) -> Iterator[Finding]:
        if not invoice.buyer_reference:
            yield Finding("BR-DE-15", "buyer_reference", "a Leitweg-ID is required",
                          term="BT-10")


class XRechnungCii(XRechnungUbl):
    name: ClassVar[str] = "xrechnung-cii"
    base: ClassVar[Any] = "cii"
    extension: ClassVar[str] = "xrechnung-cii.xml"
    description: ClassVar[str] = "XRechnung 3.0 (CII)"


class Plugin:
    @hookimpl
    def gateway_register_formats(self, register: Any) -> None:
        register(XRechnungUbl())
        register(XRechnungCii())


PLUGIN = (("xrechnung", Plugin()),)


@pytest.mark.parametrize("name", ["xrechnung-ubl", "xrechnung-cii"])
def test_a_derived_format_passes_the_conformance_suite(name: str) -> None:
    report = check_format(name, plugins=PLUGIN)
    assert "valid household" in report.passed and "round trip business" in report.passed


def test_the_derived_document_carries_its_customization_id(
        gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(extra_plugins=PLUGIN)
    doc = gw.render(sample_invoice("business"), "xrechnung-ubl")
    assert f"<cbc:CustomizationID>{XRECHNUNG}</cbc:CustomizationID>" in doc.content.decode()
    assert doc.filename == "E2611-00125.xrechnung.xml"
    # sniffing tells the derived document from plain UBL
    assert gw.detect_format(doc.content, "x.xml", source="x").name == "xrechnung-ubl"
    plain = gw.render(sample_invoice("business"), "ubl").content
    assert gw.detect_format(plain, "x.xml", source="x").name == "ubl"


def test_the_extra_rules_refuse_before_rendering(gateway_factory: Any) -> None:
    gw: Gateway = gateway_factory(extra_plugins=PLUGIN)
    invoice = sample_invoice("household").model_copy(update={"buyer_reference": None})
    with pytest.raises(InvoiceRejected, match=r"\[BR-DE-15\] buyer_reference \(BT-10\)"):
        gw.render(invoice, "xrechnung-ubl")


def test_no_private_module_is_needed() -> None:
    lines = Path(__file__).read_text(encoding="utf-8").splitlines()
    imports = [line for line in lines if line.startswith(("from ", "import "))]
    assert "import plugins.xml_einvoice as xml_einvoice" in imports
    assert not [line for line in imports if "plugins.xml_einvoice." in line]
