"""Invoices → CSV rows: one row per invoice line, then one per document-level charge
and allowance, with the invoice-level columns repeated on each."""

from __future__ import annotations

import datetime as dt
import io
import operator
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from enum import Enum
from typing import Any

from gateway import Invoice
from gateway.core import line_net_amount, money
from gateway.core.csvout import CsvWriter

from .columns import HEADER, INVOICE_COLUMNS, ROW_COLUMNS, Step
from .dialect import BOM, Dialect

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


def getter(path: tuple[Step, ...]) -> Callable[[Any], Any]:
    """A fast reader of one column's value; ``None`` when a parent object is absent."""
    if not path:
        return lambda obj: None
    if any(isinstance(step, int) for step in path):
        return lambda obj: get_path(obj, path)
    read = operator.attrgetter(".".join(str(step) for step in path))

    def get(obj: Any) -> Any:
        try:
            return read(obj)
        except AttributeError:  # None somewhere on the way: the field is not given
            return None

    return get


def cell(value: Any, dialect: Dialect) -> str:
    if value is None:
        return ""
    # Text is neutralised by the writer (gateway.core.csvout), like every CSV cell.
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is Decimal:
        return dialect.number(value)
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


_INVOICE_GETTERS = [getter(c.path) for c in INVOICE_COLUMNS]
_LINE_GETTERS = [(c.name, getter(c.path)) for c in ROW_COLUMNS if c.path]
_AC_GETTERS = [(c.name, getter(c.ac_path)) for c in ROW_COLUMNS if c.ac_path]
_ROW_NAMES = [c.name for c in ROW_COLUMNS]


def invoice_rows(invoice: Invoice, dialect: Dialect) -> Iterator[list[str]]:
    """The rows of one invoice, as cells in :data:`HEADER` order."""
    head = [cell(get(invoice), dialect) for get in _INVOICE_GETTERS]
    reasons = {(b.category, _rate_key(b.rate)): b for b in invoice.vat_breakdown}
    for line in invoice.lines:
        net = line.net_amount if line.net_amount is not None else line_net_amount(line)
        values: dict[str, Any] = {name: get(line) for name, get in _LINE_GETTERS}
        values["row_type"] = "line"
        values["line_net_amount"] = net
        _vat_cells(values, net, line.vat.category, line.vat.rate, reasons)
        yield head + [cell(values.get(name), dialect) for name in _ROW_NAMES]
    document_level = (("charge", invoice.charges, 1), ("allowance", invoice.allowances, -1))
    for kind, items, sign in document_level:
        for ac in items:
            values = {name: get(ac) for name, get in _AC_GETTERS}
            values["row_type"] = kind
            values["line_net_amount"] = sign * ac.amount
            if ac.vat_category is not None:
                _vat_cells(values, sign * ac.amount, ac.vat_category, ac.vat_rate, reasons)
            yield head + [cell(values.get(name), dialect) for name in _ROW_NAMES]


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
    writer = CsvWriter(buffer, delimiter=dialect.delimiter)
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
