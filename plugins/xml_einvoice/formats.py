"""The ``ubl`` and ``cii`` formats: render, sniff, parse and validate.

lxml, Saxon and the writers are imported on first use so that ``gateway --help`` and
plugins that never touch XML do not pay for them.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from gateway import Finding, InputError, Invoice, InvoiceRejected, RenderContext, load_invoice

log = logging.getLogger("gateway.xml_einvoice")
Syntax = Literal["ubl", "cii"]
_UBL_MARKERS = (b"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
                b"urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2")
_CII_MARKERS = (b"urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",)
_UBL_ROOTS = frozenset({"{urn:oasis:names:specification:ubl:schema:xsd:Invoice-2}Invoice",
                        "{urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2}CreditNote"})
_CII_ROOTS = frozenset(
    {"{urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100}CrossIndustryInvoice"})
_TRUE = {"1", "true", "yes", "on"}


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


class XmlFormat(ABC):
    """Common behaviour of the two syntaxes; subclasses say which one."""

    syntax: ClassVar[Syntax]
    roots: ClassVar[frozenset[str]]
    markers: ClassVar[tuple[bytes, ...]]
    media_type: ClassVar[str] = "application/xml"
    can_parse: ClassVar[bool] = True
    can_validate: ClassVar[bool] = True

    def configure(self, settings: dict[str, Any], data_dir: Any) -> None:
        """``[plugins.ubl] warm_up = true``: compile the schemas at start-up (servers)
        instead of on the first document. Other keys are render options."""
        if _flag(settings.get("warm_up"), False):
            self.warm_up()

    def sniff(self, head: bytes, filename: str) -> bool:
        """By the root element, read with the safe parser past any prolog (a licence
        comment longer than the head just gives no answer until the core passes more).

        XML that breaks before its root (a DOCTYPE bomb, a stray byte order mark, bad
        UTF-8) but names this syntax's namespace is still claimed, so that the user
        hears what is wrong with it rather than "not a format the gateway can read"."""
        from .safexml import root_tag

        tag = root_tag(head)
        if tag is not None:
            return tag in self.roots
        start = head[:1024].lstrip()
        return start.startswith((b"<", b"\xef\xbb\xbf")) and any(
            m in head for m in self.markers)

    def render(self, invoice: Invoice, context: RenderContext) -> bytes:
        options = context.options or {}
        losses = self.losses(invoice)
        if losses and not _flag(options.get("allow_loss"), False):
            # A conversion never drops data quietly: the user sees, in one finding, all
            # that would be lost, and may allow it explicitly (``--allow-loss``).
            lost = "; ".join(f.message for f in losses)
            raise InvoiceRejected(
                [Finding("GW-LOSS", "", f"{self.name} cannot carry "
                         f"{len(losses)} item(s) of this invoice: {lost}; convert with "
                         "--allow-loss to drop them", term=losses[0].term)],
                invoice=invoice.number, source=self.name)
        for finding in losses:
            log.warning("invoice %s: %s: lost in %s, as allowed: %s", invoice.number,
                        finding.path, self.name, finding.message)
        pretty = _flag(options.get("pretty"), True)
        spec = options.get("specification_id") or None
        try:
            return self._writer()(invoice, pretty=pretty, specification_id=spec)
        except ValueError as exc:
            # lxml refuses characters XML 1.0 cannot carry (U+FFFE, U+FFFF); the model
            # lets them through, so name the problem instead of failing as a plugin bug.
            if "XML compatible" not in str(exc):
                raise
            raise InvoiceRejected(
                [Finding("GW-XML-CHAR", "", "a text field holds a character that XML cannot "
                         "carry (such as U+FFFE or U+FFFF); remove it from the invoice")],
                invoice=invoice.number, source=self.name) from None

    def losses(self, invoice: Invoice) -> list[Finding]:
        """What this syntax cannot carry of ``invoice``, one finding per term or element."""
        if not invoice.extensions:
            return []
        # Content read from another document that EN 16931 has no term for (an XRechnung
        # sub-invoice line, a German bank code) cannot be written in either syntax.
        return [Finding("GW-LOSS", "extensions", f"{path} has no EN 16931 term")
                for path in sorted(invoice.extensions)]

    def parse(self, data: bytes, source: str) -> Iterator[Invoice]:
        from .reading import report_unread, unread
        from .safexml import parse_untrusted
        from .validation import kind_of, unsupported_root

        root = parse_untrusted(data, source)
        kind = kind_of(root)
        if kind is None or kind.syntax != self.syntax:
            raise InputError(unsupported_root(root.tag, self.description), source=source)
        seen: set[Any] = set()
        fields = self._reader()(root, seen)
        extensions = unread(root, seen)
        if extensions:
            report_unread(extensions, source)
            fields["extensions"] = extensions
        yield load_invoice(fields, source=source)

    def validate(self, data: bytes) -> list[Finding]:
        from .validation import validator

        return validator().validate(data, expect=self.syntax)

    def versions(self) -> list[dict[str, str]]:
        """The checks :meth:`validate` runs, with rule set, version and source."""
        from . import resources as res
        from .validation import CII_KIND, UBL_CREDIT_NOTE_KIND, UBL_INVOICE_KIND

        kinds = (UBL_INVOICE_KIND, UBL_CREDIT_NOTE_KIND) if self.syntax == "ubl" else (
            CII_KIND,)
        checks = dict.fromkeys(c for k in kinds for c in (k.xsd, k.en16931, k.peppol))
        rows = []
        for check in checks:
            a = res.resolve(check)
            rows.append({"check": a.title, "rules": a.rules, "version": a.version,
                         "source": a.source, "missing": a.missing})
        return rows

    def warm_up(self) -> None:
        """Compile the XSD and schematrons now instead of on the first document."""
        from .validation import validator

        validator().warm_up(self.syntax)

    @abstractmethod
    def _writer(self) -> Any:
        """The syntax's render function (imported lazily: lxml only when used)."""

    @abstractmethod
    def _reader(self) -> Any:
        """The syntax's read function."""


class UblFormat(XmlFormat):
    name: ClassVar[str] = "ubl"
    # Both syntaxes are .xml; the infix keeps E2611-00125.ubl.xml and .cii.xml apart
    # in one folder, archive or e-mail.
    extension: ClassVar[str] = "ubl.xml"
    syntax: ClassVar[Syntax] = "ubl"
    roots = _UBL_ROOTS
    markers = _UBL_MARKERS
    description: ClassVar[str] = (
        "UBL 2.1 Invoice/CreditNote, Peppol BIS Billing 3.0 (EN 16931; XSD + CEN and Peppol "
        "schematron checked)")

    def losses(self, invoice: Invoice) -> list[Finding]:
        from .ubl_write import buyer_identifiers

        lost = super().losses(invoice)
        lost += [Finding("GW-LOSS", "buyer.identifiers", "buyer.identifiers: UBL holds one "
                         f"buyer identifier (UBL-SR-16), so {extra.value} (scheme "
                         f"{extra.scheme or 'none'}) would be dropped", term="BT-46")
                 for extra in buyer_identifiers(invoice)[1:]]
        pay = invoice.payment
        if pay is not None and pay.means_code is None and pay.remittance_information:
            lost.append(Finding(
                "GW-LOSS", "payment.remittance_information", "payment.remittance_information: "
                "UBL carries the payment reference (BT-83) only inside payment means (BG-16), "
                "and this invoice has no payment means code (BT-81)", term="BT-83"))
        return lost

    def _writer(self) -> Any:
        from .ubl_write import render_ubl

        return render_ubl

    def _reader(self) -> Any:
        from .ubl_read import read_ubl

        return read_ubl


class CiiFormat(XmlFormat):
    name: ClassVar[str] = "cii"
    extension: ClassVar[str] = "cii.xml"
    syntax: ClassVar[Syntax] = "cii"
    roots = _CII_ROOTS
    markers = _CII_MARKERS
    description: ClassVar[str] = (
        "UN/CEFACT CII D16B, EN 16931 profile (the Factur-X/ZUGFeRD XML; XSD + CEN "
        "schematron checked, Peppol when claimed)")

    def _writer(self) -> Any:
        from .cii_write import render_cii

        return render_cii

    def _reader(self) -> Any:
        from .cii_read import read_cii

        return read_cii
