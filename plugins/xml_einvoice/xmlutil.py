"""Small helpers shared by the writers and readers: value formatting and parsing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from lxml import etree


def amount(value: Decimal) -> str:
    """Money with exactly two decimals (BR-DEC-*), never in exponent notation.

    Negative zero (``0 × -0.50``) prints as ``0.00``: the CII schematron reads "-0.00"
    as non-zero (BR-Z-09)."""
    if value.is_zero():
        value = abs(value)
    return f"{value:.2f}"


def number(value: Decimal) -> str:
    """Quantities, prices, rates: as many decimals as needed, no trailing zeros."""
    text = format(abs(value) if value.is_zero() else value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def serialize(root: etree._Element, *, pretty: bool) -> bytes:
    # The declaration in double quotes, as in the official examples (lxml's own uses
    # single quotes, which a few receiving systems' naive checks trip over).
    return _DECLARATION + etree.tostring(root, encoding="UTF-8", pretty_print=pretty)


def parse_decimal(text: str) -> Decimal | str:
    """A Decimal when ``text`` is a plain XSD decimal; the text itself otherwise, so that
    the model's validation names the field and shows the bad value."""
    cleaned = text.strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return cleaned
    return value if value.is_finite() else cleaned


def parse_iso_date(text: str) -> dt.date | str:
    cleaned = text.strip()
    try:
        return dt.date.fromisoformat(cleaned[:10]) if len(cleaned) >= 10 else cleaned
    except ValueError:
        return cleaned


def parse_cii_date(text: str, fmt: str | None) -> dt.date | str:
    """CII dates are ``YYYYMMDD`` (format 102), the only format EN 16931 allows."""
    cleaned = text.strip()
    if fmt not in (None, "102") or len(cleaned) != 8 or not cleaned.isdigit():
        return cleaned
    try:
        return dt.date(int(cleaned[:4]), int(cleaned[4:6]), int(cleaned[6:]))
    except ValueError:
        return cleaned
