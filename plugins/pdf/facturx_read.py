"""Reading Factur-X, ZUGFeRD 2.x and XRechnung-in-PDF files: the invoice XML and the container.

Two questions are kept apart. *Is the invoice valid?* is answered by the embedded XML and
the official rules (the ``cii`` format checks it). *Is the PDF a well-formed Factur-X
container?* is answered here, and its findings are warnings about the file: a producer
that writes the PDF/A identification as XMP elements rather than attributes, or names the
XML ``zugferd-invoice.xml``, has still sent a valid invoice.

Everything read is bounded: the PDF by :data:`MAX_PDF_BYTES`, the embedded XML by
:data:`MAX_XML_BYTES` while it is inflated (a tiny PDF whose stream inflates to gigabytes
is refused as soon as the limit is passed, in constant memory), and a PDF that lost its
end (cut in half in transit) is refused instead of being repaired into something readable.
"""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from gateway import Finding, InputError

MAX_PDF_BYTES = 64 * 1024 * 1024
#: The XML plugin's own limit for one document; an embedded XML larger than that could not
#: be read anyway, so inflating stops there.
MAX_XML_BYTES = 64 * 1024 * 1024
FACTURX_FILENAME = "factur-x.xml"
#: The guideline id (BT-24) of the Factur-X EN 16931 profile, which the gateway writes.
FACTURX_EN16931 = "urn:cen.eu:en16931:2017"
#: What producers call the embedded XML, by lower-cased name: Factur-X and ZUGFeRD 2.1+,
#: ZUGFeRD 2.0 and 1.0 (``ZUGFeRD-invoice.xml``), and XRechnung embedded in a PDF.
EMBEDDED_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml")
_INFLATE_CHUNK = 1024 * 1024
#: The end-of-file marker must be in the last KiB (ISO 32000-1 7.5.5; readers allow some
#: trailing junk after it).
_EOF_WINDOW = 1024

#: Guideline ids (BT-24) of the profiles, most specific first.
PROFILES = (
    ("urn:factur-x.eu:1p0:minimum", "MINIMUM"),
    ("urn:zugferd.de:2p0:minimum", "MINIMUM"),
    ("urn:factur-x.eu:1p0:basicwl", "BASIC WL"),
    ("urn:zugferd.de:2p0:basicwl", "BASIC WL"),
    ("urn:factur-x.eu:1p0:basic", "BASIC"),
    ("urn:zugferd.de:2p0:basic", "BASIC"),
    ("urn:factur-x.eu:1p0:extended", "EXTENDED"),
    ("urn:zugferd.de:2p0:extended", "EXTENDED"),
    ("xrechnung", "XRECHNUNG"),
    ("urn:cen.eu:en16931:2017", "EN 16931"),
)
#: Profiles that are not full EN 16931 invoices: the EN 16931 rules refuse them (BR-16).
PARTIAL_PROFILES = frozenset({"MINIMUM", "BASIC WL"})
_XMP_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                              huge_tree=False)
_PDFAID = "http://www.aiim.org/pdfa/ns/id/"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


@dataclass
class Embedded:
    """The invoice XML found in a PDF, and what the container says about itself."""

    name: str
    xml: bytes
    container: list[Finding] = field(default_factory=list)

    @property
    def profile(self) -> str | None:
        """The Factur-X / ZUGFeRD profile the XML's guideline id (BT-24) names."""
        guideline = guideline_id(self.xml)
        return profile_of(guideline) if guideline else None

    def profile_findings(self) -> list[Finding]:
        """What the profile means for the verdict, as information."""
        profile = self.profile
        if profile in PARTIAL_PROFILES:
            return [Finding("FACTURX-PROFILE", f"{self.name}", f"profile {profile}: not a "
                            "complete EN 16931 invoice (no invoice lines), so the EN 16931 "
                            "rules refuse it; ask the sender for EN 16931 or EXTENDED",
                            severity="information", term="BT-24")]
        return []


def guideline_id(xml: bytes) -> str | None:
    """BT-24 of a CII document, read with the safe parser (None when absent/unreadable)."""
    try:
        root = etree.fromstring(xml, _XMP_PARSER)
    except etree.XMLSyntaxError:
        return None
    for element in root.iter("{*}GuidelineSpecifiedDocumentContextParameter"):
        for child in element:
            if etree.QName(child).localname == "ID" and child.text:
                return child.text.strip()
    return None


def profile_of(guideline_id: str) -> str | None:
    """The Factur-X / ZUGFeRD profile a guideline id (BT-24) names, if any."""
    lowered = guideline_id.strip().lower()
    for marker, profile in PROFILES:
        if marker in lowered:
            return profile
    return None


def extract(data: bytes, source: str, *, max_xml_bytes: int = MAX_XML_BYTES) -> Embedded:
    """The embedded invoice XML of a Factur-X/ZUGFeRD PDF, or :class:`InputError` saying why not."""
    import pikepdf

    if len(data) > MAX_PDF_BYTES:
        raise InputError(f"PDF is larger than {MAX_PDF_BYTES // 2**20} MiB", source=source)
    if not data.lstrip()[:5] == b"%PDF-":
        raise InputError("not a PDF (no %PDF- header)", source=source)
    if b"%%EOF" not in data[-_EOF_WINDOW:]:
        raise InputError("not a readable PDF: it is truncated (no end-of-file marker at its "
                         "end), cut short in transit or storage — send the whole file",
                         source=source)
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            names = {str(name): spec for name, spec in pdf.attachments.items()}
            chosen = _choose(names)
            if chosen is None:
                found = ", ".join(sorted(names)) or "no attachments"
                raise InputError(f"PDF has no embedded factur-x.xml (found: {found}); only a "
                                 "Factur-X/ZUGFeRD PDF can be read", source=source)
            xml = _read_stream(names[chosen].obj, chosen, source, max_xml_bytes)
            container = _container_findings(pdf, chosen)
    except pikepdf.PasswordError:
        raise InputError("the PDF is encrypted (password protected); send the Factur-X "
                         "PDF without encryption", source=source) from None
    except (pikepdf.PdfError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise InputError(f"not a readable PDF: {_pdf_problem(exc)}", source=source) from None
    return Embedded(chosen, xml, container)


def _pdf_problem(exc: Exception) -> str:
    """qpdf names the file it read in its messages; ours is an in-memory stream whose
    Python repr (``stream <_io.BytesIO object at 0x…>: …``) means nothing to a user."""
    return re.sub(r"^(stream )?<_io\.BytesIO object at 0x[0-9a-f]+>:?\s*", "", str(exc)) \
        or type(exc).__name__


def _choose(names: dict[str, Any]) -> str | None:
    by_lower = {name.lower(): name for name in names}
    for wanted in EMBEDDED_NAMES:
        if wanted in by_lower:
            return by_lower[wanted]
    return None


def _read_stream(spec: Any, name: str, source: str, limit: int) -> bytes:
    """The embedded file's bytes, inflated with a bound instead of all at once."""
    import pikepdf

    stream = spec.EF.get("/UF", spec.EF.get("/F"))
    if stream is None:
        raise InputError(f"{name} is listed but has no embedded stream", source=source)
    filters = stream.get("/Filter")
    chain = [] if filters is None else (
        [str(f) for f in filters] if isinstance(filters, pikepdf.Array) else [str(filters)])
    raw = stream.read_raw_bytes()
    if not chain:
        data = raw
    elif chain == ["/FlateDecode"] and "/DecodeParms" not in stream:
        data = _inflate(raw, name, source, limit)
    elif all(f in ("/ASCIIHexDecode", "/ASCII85Decode") for f in chain):
        data = stream.read_bytes()  # these only shrink their input
    else:
        raise InputError(f"{name} is compressed with {' '.join(chain)}; only FlateDecode "
                         "(what Factur-X producers use) is read", source=source)
    if len(data) > limit:
        raise InputError(f"embedded {name} is larger than {limit:,} bytes", source=source)
    return data


def _inflate(raw: bytes, name: str, source: str, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    parts: list[bytes] = []
    size = 0
    pending = raw
    try:
        while True:
            chunk = inflater.decompress(pending, _INFLATE_CHUNK)
            pending = inflater.unconsumed_tail
            size += len(chunk)
            if size > limit:
                raise InputError(f"embedded {name} inflates to more than {limit:,} bytes; "
                                 "refused (the limit for one invoice XML)", source=source)
            parts.append(chunk)
            if inflater.eof or (not chunk and not pending):
                break
    except zlib.error as exc:
        raise InputError(f"embedded {name} is damaged: {exc}", source=source) from None
    return b"".join(parts)


def _container_findings(pdf: Any, name: str) -> list[Finding]:
    """PDF/A-3 identification and the associated-file declaration, as warnings."""
    findings: list[Finding] = []
    root = pdf.Root
    metadata = bytes(root.Metadata.read_bytes()) if "/Metadata" in root else b""
    part, conformance = _pdfa_id(metadata)
    if part != "3" or conformance not in ("A", "B", "U"):
        declared = f"part {part or 'none'}, conformance {conformance or 'none'}"
        findings.append(_warning("FACTURX-PDFA", "/Metadata", "XMP metadata does not declare "
                                 f"PDF/A-3 (A, B or U): {declared}"))
    af = root.get("/AF")
    specs = list(af) if af is not None else []
    listed = [s for s in specs if str(s.get("/UF", s.get("/F", ""))).lower() == name.lower()]
    if not listed:
        findings.append(_warning("FACTURX-AF", "/AF", f"{name} is not listed as an "
                                 "associated file of the document (PDF/A-3 /AF)"))
    elif "/AFRelationship" not in listed[0]:
        findings.append(_warning("FACTURX-AF", f"/AF/{name}", "AFRelationship is missing"))
    return findings


def _pdfa_id(metadata: bytes) -> tuple[str, str]:
    """``pdfaid:part`` and ``pdfaid:conformance``, as attributes or elements, any order."""
    if not metadata.strip():
        return "", ""
    try:
        xmp = etree.fromstring(metadata.strip(), _XMP_PARSER)
    except etree.XMLSyntaxError:
        return "", ""
    values: dict[str, str] = {}
    for element in xmp.iter(f"{{{_RDF}}}Description"):
        for key in ("part", "conformance"):
            attribute = element.get(f"{{{_PDFAID}}}{key}")
            child = element.find(f"{{{_PDFAID}}}{key}")
            text = attribute if attribute is not None else (
                child.text if child is not None else None)
            if text and key not in values:
                values[key] = text.strip()
    return values.get("part", ""), values.get("conformance", "").upper()


def _warning(rule: str, path: str, message: str) -> Finding:
    return Finding(rule, path, message, severity="warning")
