"""File names on the far side: a per-customer pattern filled from the invoice."""

from __future__ import annotations

import string
from typing import Any

from gateway import Bundle, Document, safe_filename

PLACEHOLDERS = {
    "name": "the gateway's file name for the document, e.g. E2611-00123.pdf",
    "stem": "that name without its extension",
    "ext": "the extension (pdf, xml, json, ...)",
    "format": "the format name (pdf, ubl, cii, ...)",
    "number": "the invoice number (BT-1)",
    "seller_vat": "the seller's VAT id, or its other identifier when it has none",
    "customer": "the customer id",
    "issue_date": "the issue date, YYYY-MM-DD",
    "invoice_id": "the gateway's invoice id",
}


def check_pattern(pattern: str) -> str:
    """Validate a pattern at customer-save time, so a typo never reaches delivery."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
    except ValueError as exc:
        raise ValueError(f"file name pattern {pattern!r}: {exc}") from None
    unknown = [f for f in fields if f not in PLACEHOLDERS]
    if unknown:
        raise ValueError(f"file name pattern {pattern!r}: unknown placeholder "
                         f"{{{unknown[0]}}}; known: {', '.join(sorted(PLACEHOLDERS))}")
    if not fields:
        raise ValueError(f"file name pattern {pattern!r} has no placeholder, so every "
                         "invoice would get the same name; use e.g. {name}")
    if "/" in pattern or "\\" in pattern:
        raise ValueError(f"file name pattern {pattern!r} must not contain a directory")
    return pattern


def remote_name(pattern: str, bundle: Bundle, doc: Document) -> str:
    """Fill the pattern. Every value is made safe, so no invoice field can add a
    directory or a leading dot to the name."""
    stem, _, ext = doc.filename.rpartition(".")
    inv = bundle.invoice
    values: dict[str, Any] = {
        "name": doc.filename, "stem": stem or doc.filename, "ext": ext, "format": doc.format,
        "number": inv.number, "seller_vat": inv.seller_key, "customer": bundle.customer_id,
        "issue_date": inv.issue_date.isoformat(), "invoice_id": bundle.invoice_id,
    }
    safe = {k: (v if k == "name" else safe_filename(str(v))) for k, v in values.items()}
    name = pattern.format(**safe)
    # A leading dot would hide the file from the ERP, or collide with our temporary names.
    return safe_filename(name) if name.startswith(".") or "/" in name else name
