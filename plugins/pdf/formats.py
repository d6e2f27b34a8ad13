"""The two formats: a readable PDF invoice, and Factur-X (PDF/A-3b with the CII XML)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from gateway import Finding, InputError, Invoice, PluginError, RenderContext

from .facturx_read import FACTURX_EN16931, extract
from .health import check_once
from .render import PdfSettings, Renderer, parse_settings
from .typst_engine import TypstRenderer

log = logging.getLogger("gateway.pdf")


_renderer: Renderer | None = None
_typst: TypstRenderer | None = None


def renderer() -> Renderer:
    """The process-wide weasyprint renderer: fonts, stylesheets, templates loaded once."""
    global _renderer
    if _renderer is None:
        _renderer = Renderer()
    return _renderer


def typst_renderer() -> TypstRenderer:
    """The process-wide Typst renderer: fonts and template sets are loaded once."""
    global _typst
    if _typst is None:
        _typst = TypstRenderer()
    return _typst


def render_pdf(invoice: Invoice, language: str, settings: PdfSettings, *,
               variant: str | None = None) -> bytes:
    """One invoice as PDF with the engine the settings choose."""
    if settings.engine != "weasyprint":  # None: settings made in code, not parsed
        return typst_renderer().pdf(invoice, language, settings, variant=variant)
    check_once()
    return renderer().pdf(invoice, language, settings, variant=variant)


def facturx_pdf(invoice: Invoice, language: str, settings: PdfSettings, xml: bytes) -> bytes:
    """The invoice as PDF/A-3b with ``xml`` embedded as factur-x.xml (EN 16931 profile)."""
    import facturx

    pdf = render_pdf(invoice, language, settings, variant=FacturXFormat.variant)
    metadata = {
        "author": invoice.seller.name,
        "keywords": "Factur-X, Invoice",
        "title": f"{invoice.seller.name}: {invoice.number}",
        "subject": f"Factur-X {invoice.number}",
    }
    lang = "lv-LV" if language.startswith("lv") else "en-GB"
    # "Alternative": the XML is an equivalent representation of the invoice (Factur-X
    # 1.0.07 for the EN 16931 profile), not just data accompanying a PDF.
    out = facturx.generate_from_binary(pdf, xml, flavor="factur-x", level="en16931",
                                       check_xsd=False, pdf_metadata=metadata, lang=lang,
                                       afrelationship="alternative")
    return _settle(bytes(out), invoice)


def render_document(format_name: str, invoice: Invoice, language: str,
                    settings: PdfSettings, xml: bytes | None) -> bytes:
    """What :meth:`PdfFormat.render` / :meth:`FacturXFormat.render` return, from plain
    arguments (so that a worker process can do it)."""
    if xml is not None:
        return facturx_pdf(invoice, language, settings, xml)
    return render_pdf(invoice, language, settings)


class PdfFormat:
    name: ClassVar[str] = "pdf"
    media_type: ClassVar[str] = "application/pdf"
    extension: ClassVar[str] = "pdf"
    description: ClassVar[str] = ("Readable A4 invoice (Latvian/English labels, EPC payment "
                                  "QR code), typeset by Typst or weasyprint")
    can_parse: ClassVar[bool] = False
    can_validate: ClassVar[bool] = False
    variant: ClassVar[str | None] = None

    def __init__(self) -> None:
        self.data_dir: Path | None = None
        self.raw_settings: dict[str, Any] = {}
        self.settings = PdfSettings()
        self._option_cache: dict[str, PdfSettings] = {}

    def configure(self, settings: Mapping[str, Any], data_dir: Path) -> None:
        self.data_dir = data_dir
        self.raw_settings = dict(settings)
        self.settings = parse_settings(settings, data_dir=data_dir,
                                       where=f"[plugins.{self.name}]")
        self._option_cache.clear()
        if self.settings.engine == "weasyprint":  # the harfbuzz check is weasyprint's
            check_once()

    def settings_for(self, options: Mapping[str, Any] | None) -> PdfSettings:
        """The configured settings with a customer's ``format_options`` on top."""
        if not options:
            return self.settings
        key = repr(sorted(options.items()))
        cached = self._option_cache.get(key)
        if cached is None:
            merged = {**self.raw_settings, **options}
            cached = parse_settings(merged, data_dir=self.data_dir,
                                    where=f"format options of {self.name}")
            self._option_cache[key] = cached
        return cached

    def render(self, invoice: Invoice, context: RenderContext) -> bytes:
        return render_pdf(invoice, context.language, self.settings_for(context.options),
                          variant=self.variant)

    def embedded(self, context: RenderContext) -> bytes | None:
        """The XML this format embeds (none in a plain PDF)."""
        return None

    def render_batch(self, items: Sequence[tuple[Invoice, RenderContext]],
                     ) -> list[bytes | Exception]:
        """Many invoices at once in the warm process pool (``processes``), in order; an
        invoice that fails gets its exception in its place."""
        from .batch import render_jobs

        jobs: list[Any] = []
        for invoice, context in items:
            try:
                jobs.append((self.name, invoice, context.language,
                             self.settings_for(context.options), self.embedded(context)))
            except Exception as exc:  # e.g. the CII XML could not be rendered
                jobs.append(exc)
        return render_jobs(jobs, processes=self.settings.processes)

    def sniff(self, head: bytes, filename: str) -> bool:
        return False

    def parse(self, data: bytes, source: str) -> Iterator[Invoice]:
        raise InputError("a plain PDF invoice cannot be read back; only a Factur-X/ZUGFeRD "
                         "PDF with embedded XML can", source=source)

    def validate(self, data: bytes) -> list[Finding]:
        return []


class FacturXFormat(PdfFormat):
    """The same PDF as PDF/A-3b with the CII XML embedded as ``factur-x.xml``.

    The XML comes from the registered ``cii`` format (``context.render_other``), so this
    plugin does not import the XML plugin; the ``factur-x`` library does the embedding
    (file specification with AFRelationship, Factur-X XMP extension schema).
    """

    name: ClassVar[str] = "facturx"
    description: ClassVar[str] = ("Factur-X / ZUGFeRD 2 (EN 16931 profile): the PDF invoice "
                                  "as PDF/A-3b with the CII XML embedded")
    can_parse: ClassVar[bool] = True
    can_validate: ClassVar[bool] = True
    variant: ClassVar[str | None] = "pdf/a-3b"

    def __init__(self, base: PdfFormat | None = None) -> None:
        super().__init__()
        self.base = base
        self._cii: Any = None

    def configure(self, settings: Mapping[str, Any], data_dir: Path) -> None:
        # Factur-X looks like the plain PDF unless [plugins.facturx] says otherwise.
        inherited = dict(self.base.raw_settings) if self.base is not None else {}
        super().configure({**inherited, **settings}, data_dir)

    def embedded(self, context: RenderContext) -> bytes | None:
        try:
            # The target decides the identifiers: whatever specification the invoice came
            # with (Peppol, XRechnung), the XML of a Factur-X EN 16931 PDF says so (BT-24).
            return context.render_other("cii", {"specification_id": FACTURX_EN16931})
        except LookupError:
            raise PluginError("facturx needs the 'cii' format to embed the XML, and no "
                              "renderer for other formats was given") from None

    def render(self, invoice: Invoice, context: RenderContext) -> bytes:
        return facturx_pdf(invoice, context.language, self.settings_for(context.options),
                           self.embedded(context))

    def sniff(self, head: bytes, filename: str) -> bool:
        return head.lstrip()[:5] == b"%PDF-"

    # ------------------------------------------------------------------ reading

    def cii(self) -> Any:
        """The registered ``cii`` format, found through the public plugin manager."""
        if self._cii is None:
            from gateway.plugins import get_plugin_manager

            formats = get_plugin_manager().formats
            if "cii" not in formats:
                raise PluginError("reading Factur-X needs the 'cii' format (plugin 'xml'), "
                                  "which is not installed or is disabled")
            self._cii = formats.get("cii")
        return self._cii

    def versions(self) -> list[dict[str, str]]:
        """The embedded XML is checked as ``cii``; the container by this plugin."""
        rows = [{**row, "check": f"embedded XML: {row['check']}"}
                for row in getattr(self.cii(), "versions", list)()]
        rows.append({"check": "PDF container", "rules": "PDF/A-3 identification (A, B, U) "
                     "in the XMP and the XML as associated file (warnings only)",
                     "version": "", "source": "plugin pdf", "missing": ""})
        return rows

    def embedded_xml(self, data: bytes, source: str) -> bytes:
        """The Factur-X/ZUGFeRD XML inside a PDF, or an :class:`InputError` saying why not."""
        return extract(data, source).xml

    def parse(self, data: bytes, source: str) -> Iterator[Invoice]:
        embedded = extract(data, source)
        yield from self.cii().parse(embedded.xml, f"{source}!{embedded.name}")

    def validate(self, data: bytes) -> list[Finding]:
        """The embedded invoice by the official rules; the container's flaws as warnings."""
        try:
            embedded = extract(data, "")
        except InputError as exc:
            return [Finding("FACTURX-XML", "/", str(exc))]
        findings = list(embedded.container) + embedded.profile_findings()
        findings += [Finding(f.rule, f"{embedded.name}:{f.path}", f.message, f.severity,
                             f.term) for f in self.cii().validate(embedded.xml)]
        return findings


def _settle(data: bytes, invoice: Invoice) -> bytes:
    """Make the Factur-X file consistent and reproducible.

    The factur-x library stamps the clock into the XMP, the document information and
    the embedded file, and names pypdf as producer in the XMP while the information
    dictionary names the typesetter; PDF/A wants the two to agree. Dating everything by the
    issue date makes the same invoice give the same bytes, as the plain PDF does.
    """
    import pikepdf

    stamp = invoice.issue_date.strftime("%Y%m%d")
    pdf_date = f"D:{stamp}000000+00'00'"
    xmp_date = invoice.issue_date.isoformat() + "T00:00:00+00:00"
    with pikepdf.open(io.BytesIO(data)) as pdf:
        # weasyprint names itself as /Producer, Typst as /Creator.
        engine = pdf.docinfo.get("/Producer") or pdf.docinfo.get("/Creator") or "invoice-gateway"
        producer = f"{engine}; factur-x"
        with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
            meta["pdf:Producer"] = producer
            # PDF/A: every information-dictionary entry must be mirrored in the XMP.
            meta["pdf:Keywords"] = str(pdf.docinfo.get("/Keywords", ""))
            meta["xmp:CreateDate"] = xmp_date
            meta["xmp:ModifyDate"] = xmp_date
        pdf.docinfo["/Producer"] = producer
        pdf.docinfo["/CreationDate"] = pdf_date
        pdf.docinfo["/ModDate"] = pdf_date
        for spec in pdf.attachments.values():
            spec.obj.EF.F.Params.ModDate = pikepdf.String(pdf_date)
        buffer = io.BytesIO()
        pdf.save(buffer, deterministic_id=True)
    return buffer.getvalue()
