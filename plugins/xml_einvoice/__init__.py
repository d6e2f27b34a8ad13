"""XML e-invoices: Peppol BIS Billing 3.0 UBL (``ubl``) and CII D16B EN 16931 (``cii``).

Both formats render from the invoice model, read back into it (XXE-safe), and check a
document by the official rules: the UBL 2.1 / CII D16B XSD, the CEN EN 16931 schematron
and, for documents that claim it, the Peppol BIS 3.0 schematron. The artefacts come from
registry packages or the standards folder (:mod:`.resources`); the model's code lists are
generated from the CEN schematron (:mod:`.codelists`).

The public API for other plugins is ``__all__`` below, and nothing else: derive a
national or buyer-specific format with :class:`DerivedXmlFormat` (another
CustomizationID, extra rules; see :mod:`plugins.xml_einvoice.derived` and
docs/plugins.md, "Deriving a format from UBL or CII"). Render options of ``ubl`` and
``cii`` (``[plugins.ubl]``, a customer's ``format_options``, or ``render_other``):
``pretty`` (default true), ``specification_id`` (BT-24, the CustomizationID) and
``allow_loss`` (convert even what the syntax cannot carry; each dropped item is logged).
"""

from __future__ import annotations

from typing import Any

from gateway import Finding, hookimpl

from .derived import DerivedXmlFormat
from .formats import CiiFormat, UblFormat

__all__ = ["CiiFormat", "DerivedXmlFormat", "Finding", "UblFormat", "gateway_register_formats"]


@hookimpl
def gateway_register_formats(register: Any) -> None:
    register(UblFormat())
    register(CiiFormat())
