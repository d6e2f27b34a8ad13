"""The monthly reports a Peppol service provider submits to OpenPeppol.

* Transaction Statistics Report (TSR 1.0): messages sent and received, per transport
  profile, per other service provider + document type + process, and per sender (C1)
  and receiver (C4) country.
* End User Statistics Report (EUSR 1.1): distinct end users that sent (C1, this
  gateway's customers) or received (C4) documents, overall and per document type +
  process and per end-user country.

Both are built from this access point's transaction records, one per AS4 message sent
(written when the delivery's receipt was verified) or received (written with the
message). Delivered ``peppol`` deliveries without a record are reported as a mismatch.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from gateway.errors import GatewayError
from plugins.peppol.identifiers import DOCTYPE_SCHEME, PROCESS_SCHEME, TRANSPORT_PROFILE
from plugins.peppol.store import PeppolStore

TSR_NS = "urn:fdc:peppol:transaction-statistics-report:1.0"
EUSR_NS = "urn:fdc:peppol:end-user-statistics-report:1.1"
PROFILE = "urn:fdc:peppol.eu:edec:bis:reporting:1.0"


@dataclass(frozen=True)
class Report:
    xml: bytes
    summary: str


def month_bounds(month: str) -> tuple[dt.date, dt.date]:
    try:
        year, mon = (int(x) for x in month.split("-"))
        first = dt.date(year, mon, 1)
    except ValueError:
        raise GatewayError(f"month {month!r}: expected YYYY-MM, e.g. 2026-11") from None
    return first, dt.date(year, mon, calendar.monthrange(year, mon)[1])


def _header(root: etree._Element, ns: str, customization: str, first: dt.date,
            last: dt.date, reporter: str) -> None:
    def sub(parent: etree._Element, tag: str, text: str | None = None,
            **attrs: str) -> etree._Element:
        el = etree.SubElement(parent, f"{{{ns}}}{tag}", **attrs)
        if text is not None:
            el.text = text
        return el

    sub(root, "CustomizationID", customization)
    sub(root, "ProfileID", PROFILE)
    header = sub(root, "Header")
    period = sub(header, "ReportPeriod")
    sub(period, "StartDate", first.isoformat())
    sub(period, "EndDate", last.isoformat())
    sub(header, "ReporterID", reporter, schemeID="CertSubjectCN")


def _key(parent: etree._Element, ns: str, meta: str, scheme: str, value: str) -> None:
    el = etree.SubElement(parent, f"{{{ns}}}Key", metaSchemeID=meta, schemeID=scheme)
    el.text = value


def _counts(parent: etree._Element, ns: str, names: tuple[str, ...],
            values: tuple[int, ...]) -> None:
    for name, value in zip(names, values, strict=True):
        etree.SubElement(parent, f"{{{ns}}}{name}").text = str(value)


def transaction_report(rows: list[dict[str, Any]], first: dt.date, last: dt.date,
                       reporter: str) -> Report:
    ns = TSR_NS
    root = etree.Element(f"{{{ns}}}TransactionStatisticsReport", nsmap={None: ns})
    _header(root, ns, "urn:fdc:peppol.eu:edec:trns:transaction-statistics-reporting:1.0",
            first, last, reporter)
    inout = ("Incoming", "Outgoing")

    def pair(selected: Iterable[dict[str, Any]]) -> tuple[int, int]:
        items = list(selected)
        return (sum(r["direction"] == "received" for r in items),
                sum(r["direction"] == "sent" for r in items))

    total = pair(rows)
    _counts(etree.SubElement(root, f"{{{ns}}}Total"), ns, inout, total)
    if rows:
        sub = etree.SubElement(root, f"{{{ns}}}Subtotal", type="PerTP")
        _key(sub, ns, "TP", "Peppol", TRANSPORT_PROFILE)
        _counts(sub, ns, inout, total)
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    country_groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        base = (r["other_ap"], r["document_type"], r["process"])
        groups[base].append(r)
        country_groups[(*base, r["c1_country"] or "ZZ", r["c4_country"] or "ZZ")].append(r)
    for (sp, doc, proc), items in sorted(groups.items()):
        sub = etree.SubElement(root, f"{{{ns}}}Subtotal", type="PerSP-DT-PR")
        _key(sub, ns, "SP", "CertSubjectCN", sp)
        _key(sub, ns, "DT", DOCTYPE_SCHEME, doc)
        _key(sub, ns, "PR", PROCESS_SCHEME, proc)
        _counts(sub, ns, inout, pair(items))
    for (sp, doc, proc, c1, c4), items in sorted(country_groups.items()):
        sub = etree.SubElement(root, f"{{{ns}}}Subtotal", type="PerSP-DT-PR-CC")
        _key(sub, ns, "SP", "CertSubjectCN", sp)
        _key(sub, ns, "DT", DOCTYPE_SCHEME, doc)
        _key(sub, ns, "PR", PROCESS_SCHEME, proc)
        _key(sub, ns, "CC", "SenderCountry", c1)
        _key(sub, ns, "CC", "ReceiverCountry", c4)
        _counts(sub, ns, inout, pair(items))
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return Report(xml, f"{total[0]} received, {total[1]} sent, {len(groups)} "
                       "provider/document/process combinations")


def end_user_report(rows: list[dict[str, Any]], first: dt.date, last: dt.date,
                    reporter: str) -> Report:
    ns = EUSR_NS
    root = etree.Element(f"{{{ns}}}EndUserStatisticsReport", nsmap={None: ns})
    _header(root, ns, "urn:fdc:peppol.eu:edec:trns:end-user-statistics-report:1.1",
            first, last, reporter)
    names = ("SendingEndUsers", "ReceivingEndUsers", "SendingOrReceivingEndUsers")

    # An end user is this access point's client: the sender (C1) of what it sent, the
    # receiver (C4) of what it received.
    def users(items: Iterable[dict[str, Any]]) -> tuple[int, int, int]:
        sending = {r["sender"].lower() for r in items if r["direction"] == "sent"}
        receiving = {r["receiver"].lower() for r in items if r["direction"] == "received"}
        return len(sending), len(receiving), len(sending | receiving)

    def country(r: dict[str, Any]) -> str:
        return (r["c1_country"] if r["direction"] == "sent" else r["c4_country"]) or "ZZ"

    _counts(etree.SubElement(root, f"{{{ns}}}FullSet"), ns, names, users(rows))
    by_dt_pr: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    by_dt_cc: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    by_cc: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_dt_pr[(r["document_type"], r["process"])].append(r)
        by_dt_cc[(r["document_type"], country(r))].append(r)
        by_cc[country(r)].append(r)
    for (doc, proc), items in sorted(by_dt_pr.items()):
        sub = etree.SubElement(root, f"{{{ns}}}Subset", type="PerDT-PR")
        _key(sub, ns, "DT", DOCTYPE_SCHEME, doc)
        _key(sub, ns, "PR", PROCESS_SCHEME, proc)
        _counts(sub, ns, names, users(items))
    for (doc, cc), items in sorted(by_dt_cc.items()):
        sub = etree.SubElement(root, f"{{{ns}}}Subset", type="PerDT-EUC")
        _key(sub, ns, "DT", DOCTYPE_SCHEME, doc)
        _key(sub, ns, "CC", "EndUserCountry", cc)
        _counts(sub, ns, names, users(items))
    for cc, items in sorted(by_cc.items()):
        sub = etree.SubElement(root, f"{{{ns}}}Subset", type="PerEUC")
        _key(sub, ns, "CC", "EndUserCountry", cc)
        _counts(sub, ns, names, users(items))
    total = users(rows)
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return Report(xml, f"{total[0]} sending and {total[1]} receiving end users")


def monthly_reports(store: PeppolStore, month: str, *, reporter: str,
                    sent_deliveries: Iterable[Any] = ()) -> dict[str, Report]:
    """Both reports for ``month`` (UTC), checked against the delivery records."""
    first, last = month_bounds(month)
    start = dt.datetime(first.year, first.month, 1, tzinfo=dt.UTC).timestamp()
    end = (dt.datetime(last.year, last.month, last.day, tzinfo=dt.UTC)
           + dt.timedelta(days=1)).timestamp()
    rows = store.transactions(start, end)
    missing = [d.id for d in sent_deliveries
               if d.channel_type == "peppol" and start <= d.updated_at < end
               and (d.receipt_id or "").startswith("peppol:")
               and not store.has_sent(d.receipt_id.removeprefix("peppol:"))]
    if missing:
        raise GatewayError(f"delivered peppol deliveries {missing} have no transaction "
                           "record; the report would undercount")
    return {"transaction-statistics": transaction_report(rows, first, last, reporter),
            "end-user-statistics": end_user_report(rows, first, last, reporter)}
