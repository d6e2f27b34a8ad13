"""Invoices → CSV rows: one row per invoice line, then one per document-level charge
and allowance, with the invoice-level columns repeated on each."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator
from decimal import Decimal
from enum import Enum
from typing import Any

from gateway import Invoice
from gateway.core import line_net_amount, money

from .columns import HEADER, INVOICE_COLUMNS, ROW_COLUMNS, Column, Step
from .dialect import BOM, Dialect, neutralise

#: Rows buffered before a chunk is handed out: big enough to amortise the writer
#: calls, small enough to keep a streamed export's memory flat.
CHUNK_ROWS = 512


def get_path(obj: Any, path: tuple[Step, ...]) -> Any:
    for step in path:
        if obj is None:
            return None
        if isinstance(step, int):
            obj = obj[step] if len(obj) > step else None
        else:
            obj = getattr(obj, step)
    return obj


def cell(column: Column, value: Any, dialect: Dialect) -> str:
    if value is None:
        return ""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, Decimal):
        return dialect.number(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return neutralise(str(value))


def invoice_rows(invoice: Invoice, dialect: Dialect) -> Iterator[list[str]]:
    """The rows of one invoice, as cells in :data:`HEADER` order."""
    head = [cell(c, get_path(invoice, c.path), dialect) for c in INVOICE_COLUMNS]
    reasons = {(b.category, _rate_key(b.rate)): b for b in invoice.vat_breakdown}
    for line in invoice.lines:
        net = line.net_amount if line.net_amount is not None else line_net_amount(line)
        values: dict[str, Any] = {"row_type": "line"}
        for c in ROW_COLUMNS:
            if c.path:
                values[c.name] = get_path(line, c.path)
        values["line_net_amount"] = net
        _vat_cells(values, net, line.vat.category, line.vat.rate, reasons)
        yield head + [cell(c, values.get(c.name), dialect) for c in ROW_COLUMNS]
    document_level = (("charge", invoice.charges, 1), ("allowance", invoice.allowances, -1))
    for kind, items, sign in document_level:
        for ac in items:
            values = {"row_type": kind}
            for c in ROW_COLUMNS:
                if c.ac_path:
                    values[c.name] = get_path(ac, c.ac_path)
            values["line_net_amount"] = sign * ac.amount
            if ac.vat_category is not None:
                _vat_cells(values, sign * ac.amount, ac.vat_category, ac.vat_rate, reasons)
            yield head + [cell(c, values.get(c.name), dialect) for c in ROW_COLUMNS]


def _rate_key(rate: Decimal | None) -> Decimal | None:
    return rate.normalize() if rate is not None else None


def _vat_cells(values: dict[str, Any], net: Decimal, category: Any, rate: Decimal | None,
               reasons: dict[Any, Any]) -> None:
    vat = money(net * (rate or Decimal(0)) / 100)
    values["line_vat_amount"] = vat
    values["line_amount_with_vat"] = net + vat
    breakdown = reasons.get((category, _rate_key(rate)))
    if breakdown is not None:
        values["vat_exemption_reason"] = breakdown.exemption_reason
        values["vat_exemption_reason_code"] = breakdown.exemption_reason_code


def iter_csv(invoices: Iterable[Invoice], dialect: Dialect) -> Iterator[bytes]:
    """The CSV of ``invoices`` in chunks of bytes, starting with the BOM and header.

    Takes the invoices lazily, so an export of a whole history can be streamed to a
    file or an HTTP response without holding it in memory.
    """
    buffer = io.StringIO()
    # RFC 4180: CRLF line ends, fields with the delimiter, quotes or line breaks quoted,
    # quotes doubled.
    writer = csv.writer(buffer, delimiter=dialect.delimiter, quotechar='"',
                        quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n", doublequote=True)
    buffer.write(BOM)
    writer.writerow(HEADER)
    pending = 1
    for invoice in invoices:
        for row in invoice_rows(invoice, dialect):
            writer.writerow(row)
            pending += 1
        if pending >= CHUNK_ROWS:
            yield _drain(buffer)
            pending = 0
    if pending or buffer.tell():
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    return data
