"""Formats derived from ``ubl`` or ``cii``: another CustomizationID, extra rules.

A national CIUS (XRechnung, the Latvian e-invoice, a buyer's own rules) is UBL or CII
with its own specification identifier (BT-24) and a few rules more. Deriving one
needs no private import and no copy of the writer::

    from plugins.xml_einvoice import DerivedXmlFormat, Finding

    class XRechnungUbl(DerivedXmlFormat):
        name = "xrechnung-ubl"
        base = "ubl"
        extension = "xrechnung.xml"
        description = "XRechnung 3.0 (UBL)"
        customization_id = ("urn:cen.eu:en16931:2017#compliant#"
                            "urn:xeinkauf.de:kosit:xrechnung_3.0")

        def rules(self, invoice):
            if not invoice.buyer_reference:
                yield Finding("BR-DE-15", "buyer_reference", "Leitweg-ID required",
                              term="BT-10")

Rendering goes through the gateway (``RenderContext.render_other``) with the base
format's render options, so the output is exactly the base writer's, with the derived
CustomizationID. ``validate`` is the base format's official validation (XSD, EN 16931
schematron, Peppol when claimed) plus :meth:`DerivedXmlFormat.document_rules`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Literal

from gateway import Finding, InputError, Invoice, InvoiceRejected, RenderContext

from .formats import CiiFormat, UblFormat, XmlFormat

_BASES: dict[str, type[XmlFormat]] = {"ubl": UblFormat, "cii": CiiFormat}


class DerivedXmlFormat:
    """Base class of a format derived from ``ubl`` or ``cii``; see the module docstring.

    Set ``name``, ``base`` (``"ubl"`` or ``"cii"``), ``extension``, ``description`` and
    ``customization_id``; override :meth:`rules` (checks on the invoice, before
    rendering) and :meth:`document_rules` (checks on the XML, after the official ones).
    """

    name: ClassVar[str]
    base: ClassVar[Literal["ubl", "cii"]]
    extension: ClassVar[str]
    description: ClassVar[str]
    customization_id: ClassVar[str]
    media_type: ClassVar[str] = "application/xml"
    can_parse: ClassVar[bool] = True
    can_validate: ClassVar[bool] = True

    def __init__(self) -> None:
        if getattr(self, "base", None) not in _BASES:
            raise TypeError(f"{type(self).__name__}.base must be one of {sorted(_BASES)}")
        self._base = _BASES[self.base]()

    def rules(self, invoice: Invoice) -> Iterable[Finding]:
        """Extra rules on the invoice; a fatal finding stops rendering."""
        return ()

    def document_rules(self, data: bytes) -> Iterable[Finding]:
        """Extra rules on a rendered or received document."""
        return ()

    def render(self, invoice: Invoice, context: RenderContext) -> bytes:
        problems = [f for f in self.rules(invoice) if f.fatal]
        if problems:
            raise InvoiceRejected(problems, invoice=invoice.number, source=self.name)
        options = {**context.options, "specification_id": self.customization_id}
        return context.render_other(self.base, options)

    def sniff(self, head: bytes, filename: str) -> bool:
        return self._base.sniff(head, filename) and self.customization_id.encode() in head

    def parse(self, data: bytes, source: str) -> Iterator[Invoice]:
        for invoice in self._base.parse(data, source):
            if invoice.specification_id != self.customization_id:
                raise InputError(f"CustomizationID {invoice.specification_id!r} is not "
                                 f"{self.description}", source=source)
            yield invoice

    def validate(self, data: bytes) -> list[Finding]:
        return [*self._base.validate(data), *self.document_rules(data)]

    def configure(self, settings: dict[str, Any], data_dir: Any) -> None:
        self._base.configure(settings, data_dir)
