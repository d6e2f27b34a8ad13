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
        comment longer than the head just gives no answer until the core passes more)."""
        from .safexml import root_tag

        return root_tag(head) in self.roots

    def render(self, invoice: Invoice, context: RenderContext) -> bytes:
        if invoice.extensions:
            # Content read from another document that EN 16931 has no term for cannot
            # be written in either syntax; say so rather than lose it quietly.
            log.warning("invoice %s: %d extension element(s) not written to %s: %s",
                        invoice.number, len(invoice.extensions), self.name,
                        ", ".join(sorted(invoice.extensions)))
        options = context.options or {}
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
    description: ClassVar[str] = (
        "UBL 2.1 Invoice/CreditNote, Peppol BIS Billing 3.0 (EN 16931; XSD + CEN and Peppol "
        "schematron checked)")

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
    description: ClassVar[str] = (
        "UN/CEFACT CII D16B, EN 16931 profile (the Factur-X/ZUGFeRD XML; XSD + CEN "
        "schematron checked, Peppol when claimed)")

    def _writer(self) -> Any:
        from .cii_write import render_cii

        return render_cii

    def _reader(self) -> Any:
        from .cii_read import read_cii

        return read_cii
