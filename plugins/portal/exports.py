"""A year's invoice history as CSV (for spreadsheets) or PDF (for the records)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.core.csvout import CsvWriter
from gateway.core.storage import InvoiceRecord
from plugins.portal import i18n
from plugins.portal.state import InvoiceStatus

_TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class HistoryRow:
    number: str
    issue_date: str
    due_date: str
    period: str
    contract: str
    currency: str
    net: Decimal
    vat: Decimal
    total: Decimal
    amount_due: Decimal
    status: str

    @classmethod
    def of(cls, record: InvoiceRecord, status: InvoiceStatus, lang: str) -> HistoryRow:
        data = json.loads(record.invoice_json)
        totals = data.get("totals", {})
        period = data.get("invoice_period") or {}
        sign = Decimal(-1) if record.type_code in ("381", "261", "262", "296", "308",
                                                   "532") else Decimal(1)
        return cls(
            number=record.number, issue_date=record.issue_date,
            due_date=record.due_date or "",
            period=f"{period.get('start', '')}…{period.get('end', '')}" if period else "",
            contract=record.contract_reference or "", currency=record.currency,
            net=sign * Decimal(str(totals.get("total_without_vat", "0"))),
            vat=sign * Decimal(str(totals.get("vat_total", "0") or "0")),
            total=sign * Decimal(str(totals.get("total_with_vat", "0"))),
            amount_due=sign * Decimal(record.amount_due),
            status=i18n.text(lang, status.key))


HEADERS = ("number", "issued", "due", "period", "contract", "currency", "net_total",
           "vat_total", "total_with_vat", "amount_due", "status")


def iter_history_csv(rows: Iterable[HistoryRow], lang: str) -> Iterator[bytes]:
    """Latvian spreadsheets expect ';' and a decimal comma; English ones ',' and a point.
    The BOM makes Excel read UTF-8 (ā, š, ž) correctly. Written in chunks of about
    64 KB, so that a long history streams in constant memory."""
    delimiter, comma = (";", True) if lang == "lv" else (",", False)
    out = io.StringIO()
    out.write("\ufeff")
    writer = CsvWriter(out, delimiter=delimiter)
    writer.writerow([i18n.text(lang, h) for h in HEADERS])

    def num(d: Decimal) -> str:
        text = f"{d:.2f}"
        return text.replace(".", ",") if comma else text

    for r in rows:
        writer.writerow([r.number, r.issue_date, r.due_date, r.period, r.contract, r.currency,
                         num(r.net), num(r.vat), num(r.total), num(r.amount_due), r.status])
        if out.tell() > 65536:
            yield out.getvalue().encode("utf-8")
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode("utf-8")


def lines_csv(invoices: Iterable[Any], lang: str) -> bytes | None:
    chunks = iter_lines_csv(invoices, lang)
    return None if chunks is None else b"".join(chunks)


def iter_lines_csv(invoices: Iterable[Any], lang: str) -> Iterator[bytes] | None:
    """Every line of every invoice, in the CSV plugin's own columns and dialects, so the
    export reads back with ``gateway push``, in chunks; None when the CSV plugin is not
    installed."""
    try:
        from plugins.csv import iter_export
    except ImportError:
        return None
    return iter_export(invoices, "lv" if lang == "lv" else "en")


def history_pdf(rows: list[HistoryRow], lang: str, year: int, customer_name: str,
                customer_id: str) -> bytes:
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from weasyprint import HTML  # heavy: only when a PDF is asked for

    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape())
    totals: dict[str, Decimal] = {}
    for r in rows:
        totals[r.currency] = totals.get(r.currency, Decimal(0)) + r.total
    html = env.get_template("export_pdf.html").render(
        rows=rows, year=year, customer_name=customer_name, customer_id=customer_id,
        totals=totals, t=lambda key, **v: i18n.text(lang, key, **v),
        money=lambda a, c: i18n.money(a, c, lang), date=lambda d: i18n.date(d, lang), lang=lang)
    return HTML(string=html, base_url=str(_TEMPLATES)).write_pdf()  # type: ignore[no-any-return]
