"""The PDF plugin: readable invoices in Latvian and English, and Factur-X PDF/A-3b.

Formats:

``pdf``
    An A4 invoice from a Jinja2 template rendered by weasyprint: labels from a message
    catalogue per language (``messages/*.toml``), babel locale formatting, an EPC QR
    code, the payment block with IBAN and payment reference up front.
``facturx``
    The same PDF as PDF/A-3b with the CII XML of the ``cii`` format embedded as
    ``factur-x.xml`` (EN 16931 profile); reading one hands the XML to the ``cii`` parser.

Configuration (``[plugins.pdf]`` in gateway.toml; see :class:`~.render.PdfSettings`)::

    template_dir = "branding"      # invoice.html / invoice.css / messages/lv.toml overrides
    logo = "branding/logo.svg"
    accent_color = "#00594f"

Batch rendering across processes: :func:`plugins.pdf.batch.render_many`.
"""

from __future__ import annotations

from typing import Any

from gateway import hookimpl

from .formats import FacturXFormat, PdfFormat

__all__ = ["FacturXFormat", "PdfFormat", "gateway_register_formats"]


@hookimpl
def gateway_register_formats(register: Any) -> None:
    pdf = PdfFormat()
    register(pdf)
    register(FacturXFormat(base=pdf))
