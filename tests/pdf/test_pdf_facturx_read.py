"""Reading Factur-X / ZUGFeRD as producers really write it, and refusing what is broken.

The PDFs are made here from the gateway's own Factur-X rendering, changed the way other
producers differ: PDF/A-3 A or U, the PDF/A identification as XMP elements in another
order, the XML called ``zugferd-invoice.xml`` / ``ZUGFeRD-invoice.xml`` / ``xrechnung.xml``,
no output intent; and broken the way files break: cut short, or a stream that inflates
to gigabytes.
"""

from __future__ import annotations

import copy
import io
import json
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import pikepdf
import pytest

from gateway import complete, load_invoice
from gateway.core.config import load_config
from gateway.core.pipeline import Gateway
from gateway.errors import InputError
from gateway.plugins import get_plugin_manager
from plugins.pdf.facturx_read import MAX_XML_BYTES, extract, profile_of

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(load_config(tmp_path_factory.mktemp("data")), get_plugin_manager())
    yield gw
    gw.close()


@pytest.fixture(scope="module")
def facturx(gateway: Gateway) -> bytes:
    data = json.loads((EXAMPLES / "electricity-household.json").read_text(encoding="utf-8"))
    invoice = complete(load_invoice(copy.deepcopy(data)))
    return gateway.render(invoice, "facturx", language="en", validate=False).content


def _edit(data: bytes, change: object) -> bytes:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        change(pdf)  # type: ignore[operator]
        out = io.BytesIO()
        pdf.save(out)
    return out.getvalue()


def _xmp(pdf: pikepdf.Pdf) -> bytes:
    return bytes(pdf.Root.Metadata.read_bytes())


def _set_xmp(pdf: pikepdf.Pdf, xmp: bytes) -> None:
    pdf.Root.Metadata = pdf.make_stream(xmp)


def _rename(pdf: pikepdf.Pdf, name: str) -> None:
    xml = pdf.attachments["factur-x.xml"].get_file().read_bytes()
    del pdf.attachments["factur-x.xml"]
    spec = pikepdf.AttachedFileSpec(pdf, xml, filename=name, mime_type="text/xml",
                                    relationship=pikepdf.Name.Alternative)
    pdf.attachments[name] = spec
    pdf.Root.AF = pikepdf.Array([spec.obj])


def _verdict(gateway: Gateway, data: bytes) -> tuple[set[str], set[str]]:
    """Fatal rules, and the container's warnings (the schematron's own advisory findings
    depend on which artefacts are installed and are not what these tests are about)."""
    findings = gateway.plugins.formats.get("facturx").validate(data)
    return ({f.rule for f in findings if f.fatal},
            {f.rule for f in findings if not f.fatal and f.rule.startswith("FACTURX-")})


def test_the_gateways_own_facturx_is_valid_without_warnings(gateway: Gateway,
                                                             facturx: bytes) -> None:
    assert _verdict(gateway, facturx) == (set(), set())


@pytest.mark.parametrize("level", ["A", "U", "B"])
def test_pdfa3_levels_a_u_b_are_all_factur_x(gateway: Gateway, facturx: bytes,
                                             level: str) -> None:
    data = _edit(facturx, lambda pdf: _set_xmp(pdf, _xmp(pdf).replace(
        b"<pdfaid:conformance>B<", f"<pdfaid:conformance>{level}<".encode())))
    assert _verdict(gateway, data) == (set(), set())


def test_pdfaid_as_attributes_in_another_order(gateway: Gateway, facturx: bytes) -> None:
    def change(pdf: pikepdf.Pdf) -> None:
        xmp = _xmp(pdf)
        for tag in (b"part", b"conformance"):
            start = xmp.index(b"<pdfaid:" + tag + b">")
            end = xmp.index(b"</pdfaid:" + tag + b">") + len(tag) + 11
            xmp = xmp[:start] + xmp[end:]
        xmp = xmp.replace(b"<rdf:Description ", b'<rdf:Description pdfaid:conformance="U" '
                          b'xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/" pdfaid:part="3" ', 1)
        _set_xmp(pdf, xmp)

    data = _edit(facturx, change)
    assert _verdict(gateway, data) == (set(), set())


@pytest.mark.parametrize("name", ["zugferd-invoice.xml", "ZUGFeRD-invoice.xml",
                                  "xrechnung.xml"])
def test_other_embedded_names_are_read_and_checked_under_their_name(
        gateway: Gateway, facturx: bytes, name: str) -> None:
    data = _edit(facturx, lambda pdf: _rename(pdf, name))
    assert _verdict(gateway, data) == (set(), set())
    (invoice,) = gateway.plugins.formats.get("facturx").parse(data, "in.pdf")
    assert invoice.number


def test_no_output_intent_is_not_a_finding(gateway: Gateway, facturx: bytes) -> None:
    data = _edit(facturx, lambda pdf: pdf.Root.__delattr__("OutputIntents"))
    assert _verdict(gateway, data) == (set(), set())


def test_container_flaws_are_warnings_not_an_invalid_invoice(gateway: Gateway,
                                                              facturx: bytes) -> None:
    def change(pdf: pikepdf.Pdf) -> None:
        del pdf.Root.AF
        _set_xmp(pdf, _xmp(pdf).replace(b"<pdfaid:part>3", b"<pdfaid:part>1"))

    fatal, warnings = _verdict(gateway, _edit(facturx, change))
    assert fatal == set()
    assert warnings == {"FACTURX-PDFA", "FACTURX-AF"}


def test_a_pdf_cut_in_half_is_refused(gateway: Gateway, facturx: bytes) -> None:
    half = facturx[: len(facturx) // 2]
    fatal, _ = _verdict(gateway, half)
    assert fatal == {"FACTURX-XML"}
    with pytest.raises(InputError, match="truncated"):
        list(gateway.plugins.formats.get("facturx").parse(half, "half.pdf"))


def test_a_pdf_missing_only_its_last_bytes_is_refused(facturx: bytes) -> None:
    with pytest.raises(InputError, match="truncated"):
        extract(facturx[:-200], "short.pdf")


def test_an_inflation_bomb_is_refused_quickly_in_bounded_memory(facturx: bytes) -> None:
    # 2 GiB of zeros compress to about 2 MB; the PDF stays tiny.
    compressor = zlib.compressobj(9)
    zero = bytes(16 * 1024 * 1024)
    bomb = b"".join(compressor.compress(zero) for _ in range(128)) + compressor.flush()

    def change(pdf: pikepdf.Pdf) -> None:
        stream = pdf.attachments["factur-x.xml"].obj.EF.F
        stream.write(bomb, filter=pikepdf.Name.FlateDecode)

    data = _edit(facturx, change)
    assert len(data) < 8 * 1024 * 1024
    tracemalloc.start()
    started = time.process_time()
    with pytest.raises(InputError, match="inflates to more than"):
        extract(data, "bomb.pdf")
    elapsed = time.process_time() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Refused within a second of CPU (about 0.15 s here: the limit is hit after 64 MiB,
    # not after 2 GiB), holding no more than the limit plus the compressed stream.
    assert elapsed < 1
    assert peak < MAX_XML_BYTES + 16 * 1024 * 1024


def test_zugferd_1_is_refused_by_name(gateway: Gateway, facturx: bytes) -> None:
    old = (b'<?xml version="1.0" encoding="UTF-8"?><rsm:CrossIndustryDocument '
           b'xmlns:rsm="urn:ferd:CrossIndustryDocument:invoice:1p0"/>')

    def change(pdf: pikepdf.Pdf) -> None:
        del pdf.attachments["factur-x.xml"]
        pdf.attachments["ZUGFeRD-invoice.xml"] = pikepdf.AttachedFileSpec(
            pdf, old, filename="ZUGFeRD-invoice.xml")

    data = _edit(facturx, change)
    findings = gateway.plugins.formats.get("facturx").validate(data)
    assert any("ZUGFeRD 1.0" in f.message and f.fatal for f in findings)
    with pytest.raises(InputError, match=r"ZUGFeRD 1\.0"):
        list(gateway.plugins.formats.get("facturx").parse(data, "old.pdf"))


@pytest.mark.parametrize(("guideline", "profile"), [
    ("urn:factur-x.eu:1p0:minimum", "MINIMUM"),
    ("urn:factur-x.eu:1p0:basicwl", "BASIC WL"),
    ("urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic", "BASIC"),
    ("urn:cen.eu:en16931:2017", "EN 16931"),
    ("urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended", "EXTENDED"),
    ("urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0", "XRECHNUNG"),
    ("urn:cen.eu:en16931:2017#compliant#urn:zugferd.de:2p0:basic", "BASIC"),
])
def test_every_profile_is_named(guideline: str, profile: str) -> None:
    assert profile_of(guideline) == profile


@pytest.mark.parametrize("guideline", ["urn:factur-x.eu:1p0:minimum",
                                       "urn:factur-x.eu:1p0:basicwl"])
def test_minimum_and_basic_wl_are_refused_by_en16931_and_say_why(
        gateway: Gateway, facturx: bytes, guideline: str) -> None:
    def change(pdf: pikepdf.Pdf) -> None:
        xml = pdf.attachments["factur-x.xml"].get_file().read_bytes().replace(
            b"<ram:ID>urn:cen.eu:en16931:2017</ram:ID>", f"<ram:ID>{guideline}</ram:ID>".encode())
        pdf.attachments["factur-x.xml"] = pikepdf.AttachedFileSpec(pdf, xml,
                                                                  filename="factur-x.xml")

    findings = gateway.plugins.formats.get("facturx").validate(_edit(facturx, change))
    profile = [f for f in findings if f.rule == "FACTURX-PROFILE"]
    assert len(profile) == 1 and profile[0].severity == "information"
    assert "not a complete EN 16931 invoice" in profile[0].message


def test_not_a_pdf_and_no_attachment_are_one_line_each(gateway: Gateway) -> None:
    with pytest.raises(InputError, match="not a PDF"):
        extract(b"hello", "x.pdf")
    plain = io.BytesIO()
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.save(plain)
    with pytest.raises(InputError, match=r"no embedded factur-x\.xml"):
        extract(plain.getvalue(), "plain.pdf")


def test_a_damaged_pdf_is_named_without_a_python_repr(facturx: bytes) -> None:
    # header and end-of-file marker intact, the body between them destroyed
    damaged = facturx[:9] + b"x" * 4096 + facturx[-1024:]
    with pytest.raises(InputError) as refused:
        extract(damaged, source="damaged.pdf")
    message = str(refused.value)
    assert message.startswith("damaged.pdf: not a readable PDF: ")
    assert "BytesIO" not in message and " at 0x" not in message
