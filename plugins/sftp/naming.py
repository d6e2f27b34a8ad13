"""File names on the far side: a per-customer pattern filled from the invoice."""

from __future__ import annotations

import string
from typing import Any

from gateway import Bundle, Document, safe_filename
from gateway.core.documents import document_stem
from gateway.core.text import quoted

PLACEHOLDERS = {
    "name": "the gateway's file name for the document, e.g. E2611-00123.pdf",
    "stem": "that name without its extension",
    "ext": "the extension (pdf, xml, json, ...)",
    "format": "the format name (pdf, ubl, cii, ...)",
    "number": "the invoice number (BT-1), made safe; one that had to be cleaned gets a "
              "short hash so that two numbers never share a name",
    "seller_vat": "the seller's VAT id, or its other identifier when it has none",
    "customer": "the customer id",
    "issue_date": "the issue date, YYYY-MM-DD",
    "invoice_id": "the gateway's invoice id",
}


#: a pattern longer than this is refused when saved; a name is at most NAME_BYTES
MAX_PATTERN = 200
NAME_BYTES = 255


def _pieces(pattern: str) -> list[tuple[str, str | None]]:
    """The pattern as (literal text, placeholder or None) pairs.

    A pattern is data, not a format string: a placeholder is a bare name from
    :data:`PLACEHOLDERS`, never with a format spec (``{number:>99999}``), a conversion
    (``{number!r}``), an index or an attribute.
    """
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"file name pattern is {len(pattern):,} characters long; at most "
                         f"{MAX_PATTERN} are allowed")
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as exc:
        raise ValueError(f"file name pattern {quoted(pattern)}: {exc}") from None
    pieces: list[tuple[str, str | None]] = []
    for literal, field, spec, conversion in parsed:
        if field is not None and (spec or conversion):
            raise ValueError(f"file name pattern {quoted(pattern)}: {{{field}}} must be a bare "
                             "placeholder, without a format spec (':') or conversion ('!')")
        if field is not None and field not in PLACEHOLDERS:
            raise ValueError(f"file name pattern {quoted(pattern)}: unknown placeholder "
                             f"{{{field}}}; known: {', '.join(sorted(PLACEHOLDERS))}")
        pieces.append((literal, field))
    return pieces


def check_pattern(pattern: str) -> str:
    """Validate a pattern at customer-save time, so a typo never reaches delivery."""
    pieces = _pieces(pattern)
    if not any(field for _, field in pieces):
        raise ValueError(f"file name pattern {quoted(pattern)} has no placeholder, so every "
                         "invoice would get the same name; use e.g. {name}")
    if "/" in pattern or "\\" in pattern:
        raise ValueError(f"file name pattern {quoted(pattern)} must not contain a directory")
    return pattern


def remote_name(pattern: str, bundle: Bundle, doc: Document) -> str:
    """Fill the pattern. Every value is made safe, so no invoice field can add a
    directory or a leading dot to the name, and the name is cut to NAME_BYTES."""
    stem, _, ext = doc.filename.rpartition(".")
    inv = bundle.invoice
    values: dict[str, Any] = {
        "name": doc.filename, "stem": stem or doc.filename, "ext": ext, "format": doc.format,
        "number": inv.number, "seller_vat": inv.seller_key, "customer": bundle.customer_id,
        "issue_date": inv.issue_date.isoformat(), "invoice_id": bundle.invoice_id,
    }
    safe = {k: (v if k == "name" else safe_filename(str(v))) for k, v in values.items()}
    # The number as in the document's own name: two numbers that clean up alike differ.
    safe["number"] = document_stem(inv.number)
    # Filled piece by piece, never by str.format: a pattern saved before patterns were
    # checked this strictly still cannot run a format spec here.
    name = "".join(literal + (safe[field] if field else "") for literal, field in _pieces(pattern))
    # A leading dot would hide the file from the ERP, or collide with our temporary names.
    if name.startswith(".") or "/" in name:
        name = safe_filename(name)
    if len(name.encode()) > NAME_BYTES:
        keep = name.encode()[:NAME_BYTES - len(ext) - 1].decode(errors="ignore")
        name = f"{keep}.{ext}"
    return name
