"""Checking a UBL or CII document by the official rules: XSD, EN 16931, Peppol BIS 3.0.

Compiling the schemas is the slow part (about a second for all of them), so each is
compiled on first use and kept for the life of the process; a batch of documents then
costs only the checks themselves. Saxon's processor is shared and guarded by a lock
because its executables are not documented as thread-safe and the portal validates
from worker threads.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from typing import Any, Literal

from lxml import etree

from gateway import Finding, InputError

from . import resources as res
from .namespaces import (
    CII_NS,
    PEPPOL_BILLING,
    RSM,
    UBL_CREDIT_NOTE,
    UBL_INVOICE,
    UBL_NS,
    short,
    short_svrl,
)
from .safexml import parse_untrusted

Syntax = Literal["ubl", "cii"]
#: Factur-X's rule that BT-24 is one of its profiles' guideline ids.
_FX_GUIDELINE_RULE = "FX-SCH-A-000556"
_PEPPOL_CII_WHY = ("a Peppol BIS Billing 3.0 rule for CII: it applies because the document's "
                   "specification identifier BT-24 claims Peppol; without that claim "
                   "(gateway convert --specification-id urn:cen.eu:en16931:2017) only "
                   "EN 16931 applies")
SVRL = "http://purl.oclc.org/dsdl/svrl"
#: The first business term a rule's message names is the one it checks, e.g.
#: "Invoice total amount with VAT (BT-112) = ..." for BR-CO-15.
_TERM = re.compile(r"\b((?:BT|BG)-\d+)\b")
_SEVERITY = {"fatal": "fatal", "error": "fatal", "warning": "warning",
             "information": "information", "info": "information"}


@dataclass(frozen=True)
class DocumentKind:
    syntax: Syntax
    xsd: str
    en16931: str
    peppol: str


UBL_INVOICE_KIND = DocumentKind("ubl", res.UBL_INVOICE_XSD, res.EN16931_UBL, res.PEPPOL_UBL)
UBL_CREDIT_NOTE_KIND = DocumentKind("ubl", res.UBL_CREDIT_NOTE_XSD, res.EN16931_UBL,
                                    res.PEPPOL_UBL)
CII_KIND = DocumentKind("cii", res.CII_XSD, res.EN16931_CII, res.PEPPOL_CII)
ROOTS = {
    f"{{{UBL_INVOICE}}}Invoice": UBL_INVOICE_KIND,
    f"{{{UBL_CREDIT_NOTE}}}CreditNote": UBL_CREDIT_NOTE_KIND,
    f"{{{RSM}}}CrossIndustryInvoice": CII_KIND,
}


#: Roots of e-invoice syntaxes that predate EN 16931: named, then refused, because no
#: official EN 16931 rule set exists for them.
REFUSED_ROOTS = {
    "{urn:ferd:CrossIndustryDocument:invoice:1p0}CrossIndustryDocument":
        "ZUGFeRD 1.0 (CrossIndustryDocument) predates EN 16931 and is not read; ask the "
        "sender for ZUGFeRD 2.1+ / Factur-X (CII D16B CrossIndustryInvoice)",
    "{urn:un:unece:uncefact:data:standard:CBFBUY:5}Invoice":
        "a ZUGFeRD 1.0 draft (CBFBUY Invoice) predates EN 16931 and is not read; ask the "
        "sender for ZUGFeRD 2.1+ / Factur-X",
}


def unsupported_root(tag: str, wanted: str) -> str:
    """Why a document with root ``tag`` is not read, in one line."""
    return REFUSED_ROOTS.get(tag) or f"root element {short(tag)} is not {wanted}"


def kind_of(root: etree._Element) -> DocumentKind | None:
    return ROOTS.get(root.tag)


def claims_peppol(root: etree._Element, kind: DocumentKind) -> bool:
    if kind.syntax == "ubl":
        ids = root.findall("cbc:CustomizationID", UBL_NS)
    else:
        ids = root.findall("rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContext"
                           "Parameter/ram:ID", CII_NS)
    return any(PEPPOL_BILLING in (e.text or "") for e in ids)


class Validator:
    """XSD + schematron checks with compiled artefacts cached per process."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._schemas: dict[str, etree.XMLSchema] = {}
        self._stylesheets: dict[str, Any] = {}
        self._processor: Any = None

    # ------------------------------------------------------------------ compiled artefacts

    def schema(self, check: str) -> etree.XMLSchema | None:
        """The compiled XSD of ``check``, or None when its artefact is found nowhere."""
        with self._lock:
            if check not in self._schemas:
                artefact = res.resolve(check)
                if artefact.path is None:
                    return None
                # The XSDs come from installed packages or the operator's standards
                # folder, trusted; they import each other by relative path, which needs
                # file access but no network.
                parser = etree.XMLParser(no_network=True, resolve_entities=False)
                doc = etree.parse(str(artefact.path), parser)
                self._schemas[check] = etree.XMLSchema(doc)
            return self._schemas[check]

    def stylesheet(self, check: str) -> Any:
        """The compiled schematron of ``check``, or None when its artefact is missing."""
        with self._lock:
            if check not in self._stylesheets:
                artefact = res.resolve(check)
                if artefact.path is None:
                    return None
                from saxonche import PySaxonProcessor

                if self._processor is None:
                    self._processor = PySaxonProcessor(license=False)
                compiler = self._processor.new_xslt30_processor()
                self._stylesheets[check] = compiler.compile_stylesheet(
                    stylesheet_file=str(artefact.path))
            return self._stylesheets[check]

    def warm_up(self, syntax: Syntax | None = None) -> None:
        """Compile everything now (servers call this at start-up, benchmarks before timing)."""
        for kind in (UBL_INVOICE_KIND, UBL_CREDIT_NOTE_KIND, CII_KIND):
            if syntax in (None, kind.syntax):
                self.schema(kind.xsd)
                self.stylesheet(kind.en16931)
                self.stylesheet(kind.peppol)

    # ------------------------------------------------------------------ checks

    def validate(self, data: bytes, *, expect: Syntax | None = None,
                 source: str = "document") -> list[Finding]:
        try:
            root = parse_untrusted(data, source)
        except InputError as exc:
            return [Finding("GW-XML", "", str(exc))]
        kind = kind_of(root)
        if kind is None or (expect is not None and kind.syntax != expect):
            wanted = {"ubl": "a UBL 2.1 Invoice or CreditNote",
                      "cii": "a CII D16B CrossIndustryInvoice"}.get(expect or "",
                                                                    "UBL 2.1 or CII D16B")
            return [Finding("GW-XML", f"/{short(root.tag)}", unsupported_root(root.tag, wanted))]
        findings = self.check_xsd(root, kind)
        findings += self.check_schematron(data, root, kind)
        return findings

    def check_xsd(self, root: etree._Element, kind: DocumentKind) -> list[Finding]:
        schema = self.schema(kind.xsd)
        if schema is None:
            return [not_checked(kind.xsd)]
        with self._lock:
            if schema.validate(root):
                return []
            errors = list(schema.error_log)
        # libxml2 writes a root in the default namespace (UBL) as "/*".
        root_name = "/" + etree.QName(root).localname
        return [Finding("XSD", _root_path(short(e.path or ""), root_name),
                        f"line {e.line}: {short(e.message)}") for e in errors]

    def check_schematron(self, data: bytes, root: etree._Element,
                         kind: DocumentKind) -> list[Finding]:
        sheets = [kind.en16931]
        if claims_peppol(root, kind):
            sheets.append(kind.peppol)
        findings: list[Finding] = []
        text = _as_text(data, root)
        with self._lock:
            executables = [self.stylesheet(s) for s in sheets]
            findings += [not_checked(s) for s, e in zip(sheets, executables, strict=True)
                         if e is None]
            sheets = [s for s, e in zip(sheets, executables, strict=True) if e is not None]
            executables = [e for e in executables if e is not None]
            try:
                node = self._processor.parse_xml(xml_text=text)
                reports = [e.transform_to_string(xdm_node=node) for e in executables]
            except Exception as exc:  # saxonche raises its own PySaxonApiError
                return [Finding("GW-SCHEMATRON", "", f"schematron could not run: {exc}")]
        for sheet, report in zip(sheets, reports, strict=True):
            found = parse_svrl(report.encode("utf-8"))
            if res.resolve(sheet).profile_rules:
                found = [_as_profile_rule(f) for f in found]
            if sheet == res.PEPPOL_CII:
                # Usually a conversion that kept a Peppol specification id (BT-24): the
                # CII target then answers to the Peppol CII rules too; say why they apply.
                found = [replace(f, message=f"{f.message} ({_PEPPOL_CII_WHY})") if f.fatal
                         else f for f in found]
            findings.extend(found)
        return findings


def _as_profile_rule(finding: Finding) -> Finding:
    """The Factur-X schematron (the fallback for the CEN CII rules) also checks that the
    guideline id is one of Factur-X's own; for an XRechnung or plain EN 16931 document
    that is no EN 16931 matter, so it is reported as a warning. Its other rules stay as
    they are: some restate CEN rules without an id, and a false accept is worse."""
    if finding.rule != _FX_GUIDELINE_RULE or not finding.fatal:
        return finding
    return replace(finding, severity="warning", message=f"{finding.message} (the guideline "
                   "id is not a Factur-X profile's; a Factur-X rule, not EN 16931)")


def not_checked(check: str) -> Finding:
    """A check whose artefact is missing: never a silent pass, so the verdict is fatal."""
    artefact = res.resolve(check)
    return Finding("GW-NOT-CHECKED", "", f"{artefact.title} could not run: no artefact found "
                   f"({artefact.missing}); the document is not known to be valid")


def _root_path(path: str, root_name: str) -> str:
    if path == "/*" or path.startswith("/*/"):
        return root_name + path[2:]
    return path


def _as_text(data: bytes, root: etree._Element) -> str:
    encoding = (root.getroottree().docinfo.encoding or "UTF-8").upper()
    if encoding in ("UTF-8", "UTF8", "US-ASCII", "ASCII"):
        return data.decode("utf-8-sig")
    return etree.tostring(root, encoding="unicode")


def parse_svrl(report: bytes) -> list[Finding]:
    """Failed asserts and successful reports of an SVRL document as findings."""
    findings: list[Finding] = []
    if b"failed-assert" not in report and b"successful-report" not in report:
        return findings  # the common case: nothing to parse out of the report
    tree = etree.fromstring(report, etree.XMLParser(resolve_entities=False, no_network=True,
                                                    huge_tree=True))
    for el in tree.iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
        rule = el.get("id") or "SCHEMATRON"
        severity = _SEVERITY.get((el.get("flag") or "fatal").lower(), "fatal")
        text_el = el.find(f"{{{SVRL}}}text")
        message = " ".join((text_el.text if text_el is not None and text_el.text else "")
                           .split())
        prefix = f"[{rule}]"
        if message.startswith(prefix):
            message = message[len(prefix):].lstrip("-– ").strip()
        term = _TERM.search(message)
        findings.append(Finding(rule, short_svrl(el.get("location") or ""), message,
                                severity=severity,  # type: ignore[arg-type]
                                term=term.group(1) if term else None))
    return findings


_validator: Validator | None = None
_validator_lock = threading.Lock()


def validator() -> Validator:
    """The process-wide validator (compiled artefacts are shared by every caller)."""
    global _validator
    with _validator_lock:
        if _validator is None:
            _validator = Validator()
        return _validator
