"""``gateway demo``: five customers, a year of readings, two month ends, every plugin
that is installed.

The demo adapts to the installation: it picks the richest formats (PDF, UBL, CSV, else
JSON) and channels (folder always, the portal when installed) that are registered, and
says what it chose. It never changes a gateway customer that already exists.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gateway.core import Customer, Gateway
from gateway.errors import GatewayError
from plugins.utility.cli import load_setup, print_summary
from plugins.utility.dates import Period
from plugins.utility.models import Reading, SetupFile
from plugins.utility.readings_csv import import_csv
from plugins.utility.run import RunSummary
from plugins.utility.supply import disconnect, reconnect

DEMO_TOML = Path(__file__).with_name("demo.toml")
SEPTEMBER = Period(2026, 9)
OCTOBER = Period(2026, 10)
#: contract → (metering point, monthly kWh in a typical month)
USE = {
    "L-2025-0001": ("LV-OBJ-000234567", 180),
    "L-2025-0002": ("LV-OBJ-000345678", 90),
    "L-2025-0003": ("LV-OBJ-000987654", 3400),
    "L-2025-0004": ("LV-OBJ-000456789", 260),
    "L-2026-0005": ("LV-OBJ-000567890", 130),
}
#: customer → (role in the story, e-invoice?)
ROLES = {
    "100234567": ("reads on time, e-invoice", False),
    "100345678": ("gets paper (2.50 EUR fee), zero consumption in October", True),
    "200987654": ("business, e-invoice; no September reading: estimated; October shows less "
                  "than estimated: a credit note", False),
    "100456789": ("disconnected for late payment twice within a year: reconnection fee; "
                  "October reading sent too late: estimated", False),
    "100567890": ("new contract; meter changed in September", True),
}
SEASON = [1.35, 1.3, 1.2, 1.05, 0.9, 0.8, 0.75, 0.75, 0.85, 1.0, 1.15, 1.3]  # Jan..Dec


def setup_file() -> SetupFile:
    return SetupFile.model_validate(tomllib.loads(DEMO_TOML.read_text(encoding="utf-8")))


def history(setup: SetupFile) -> Iterator[Reading]:
    """One reading on the 28th of every month from the contract start to August 2026."""
    starts = {c.number: c.start for c in setup.contract}
    opening = {mp.id: mp.start_reading for mp in setup.metering_point}
    for contract, (mp, monthly) in USE.items():
        value = opening[mp]
        period = Period.of(starts[contract])
        while period <= Period(2026, 8):
            day = dt.date(period.year, period.month, 28)
            if day > starts[contract]:
                value += Decimal(round(monthly * SEASON[period.month - 1]))
                yield Reading(metering_point=mp, date=day, value=value, by="demo", how="demo")
            period = period.shift(1)


def pick_formats(gw: Gateway, wanted: list[str]) -> list[str]:
    chosen = [f for f in wanted if f in gw.plugins.formats]
    return chosen or ["json"]


def demo_customers(gw: Gateway) -> list[Customer]:
    portal = "portal" in gw.plugins.channels
    out = []
    for customer in setup_file().customer:
        _, paper = ROLES[customer.id]
        business = customer.vat_id is not None
        formats = pick_formats(gw, ["ubl", "pdf", "csv"] if business else ["pdf"])
        target = "deliveries/print-shop" if paper else "deliveries/{customer}"
        channels: list[dict[str, Any]] = [
            {"channel": "folder", "name": "print-shop" if paper else "mailbox",
             "settings": {"path": target}}]
        if portal:
            channels.append({"channel": "portal"})
        out.append(Customer.model_validate({
            "id": customer.id, "name": customer.name, "language": customer.language,
            "formats": formats, "channels": channels, "paper": paper}))
    return out


def run_demo(gw: Gateway, source: Any, console: Console, *, quiet: bool = False) -> None:
    from plugins.utility.run import run_month

    say = (lambda *a, **k: None) if quiet else console.print
    store = source.store
    done = store.bills()
    if done:
        console.print(f"The demo already ran in {gw.config.data_dir}: "
                      f"{len(done)} invoices ({', '.join(b.number for b in done)}). To see "
                      "it again, use another data directory: gateway --data-dir demo-2 demo")
        return
    setup = setup_file()
    counts = load_setup(store, setup)
    say(f"[bold]1. Supplier data[/bold] → {store.path}: "
        + ", ".join(f"{n} {k}" for k, n in counts.items()))
    say(f"   formats installed: {', '.join(gw.plugins.formats.names())}; channels: "
        f"{', '.join(gw.plugins.channels.names())}")

    for customer in demo_customers(gw):
        role = ROLES[customer.id][0]
        if gw.store.get_customer(customer.id) is not None:
            say(f"   customer {customer.id} exists in the gateway: kept as it is ({role})")
            continue
        gw.check_customer(customer)
        gw.store.put_customer(customer, actor="demo")
        channels = ", ".join(c.label for c in customer.channels)
        say(f"   customer {customer.id} {customer.name}: {role}; formats "
            f"{', '.join(customer.formats)} → {channels}")

    added = 0
    for r in history(setup):
        added += store.add_reading(r, today=r.date).status == "accepted"
    say(f"[bold]2. History[/bold]: {added} monthly readings up to August 2026 (the basis of "
        "estimates)")

    pm = "LV-OBJ-000456789"
    for day in (dt.date(2026, 3, 16), dt.date(2026, 9, 15)):
        disconnect(store, "L-2025-0004", day, "late-payment", by="demo")
        if day.month == 3:
            reconnect(store, "L-2025-0004", dt.date(2026, 3, 18), by="demo")
    say("   L-2025-0004 disconnected for late payment on 16.03.2026 (reconnected 18.03) and "
        "again on 15.09.2026")
    september = {
        dt.date(2026, 9, 22): [("reconnection", "L-2025-0004")],
        dt.date(2026, 9, 28): [Reading(
            metering_point="LV-OBJ-000234567", date=dt.date(2026, 9, 28),
            value=_last(store, "LV-OBJ-000234567") + 176, by="Jānis Bērziņš", how="portal")],
        dt.date(2026, 9, 29): [Reading(
            metering_point="LV-OBJ-000567890", date=dt.date(2026, 9, 29),
            value=Decimal(12), meter_change=True,
            old_meter_final=_last(store, "LV-OBJ-000567890") + 118,
            new_meter_start=Decimal(0), new_meter="M-30567890", by="Sadales tīkls",
            how="cli")],
        dt.date(2026, 9, 30): [Reading(
            metering_point="LV-OBJ-000345678", date=dt.date(2026, 9, 30),
            value=_last(store, "LV-OBJ-000345678") + 93, by="Ilze Kalniņa", how="cli")],
        dt.date(2026, 10, 1): [Reading(
            metering_point=pm, date=dt.date(2026, 9, 30), value=_last(store, pm) + 231,
            by="Pēteris Ozols", how="api")],
    }
    _month(gw, source, store, say, SEPTEMBER, september, run_month=run_month)

    csv_path = gw.config.data_dir / "utility-readings-2026-10.csv"
    rows = [
        ("LV-OBJ-000234567", "27.10.2026", _last(store, "LV-OBJ-000234567") + 214),
        ("LV-OBJ-000567890", "28.10.2026", _last(store, "LV-OBJ-000567890") + 141),
        ("LV-OBJ-000987654", "29.10.2026", _last(store, "LV-OBJ-000987654") + 1450),
    ]
    csv_path.write_text("metering_point;date;value\n" + "".join(
        f"{mp};{day};{value}\n" for mp, day, value in rows), encoding="utf-8")
    october = {
        # The distribution operator's file of the readings it took, sent on 29 October.
        dt.date(2026, 10, 29): [csv_path],
        dt.date(2026, 11, 2): [Reading(
            metering_point="LV-OBJ-000345678", date=dt.date(2026, 11, 2),
            value=_last(store, "LV-OBJ-000345678"), by="Ilze Kalniņa", how="cli")],
        # Taken on 31 October but sent on 10 November, after the window closed.
        dt.date(2026, 11, 10): [Reading(
            metering_point=pm, date=dt.date(2026, 10, 31), value=_last(store, pm) + 352,
            by="Pēteris Ozols", how="api")],
    }
    _month(gw, source, store, say, OCTOBER, october, run_month=run_month)

    data_dir = gw.config.data_dir
    say("[bold]Next[/bold]: look at the files under "
        f"{data_dir / 'deliveries'}, or try\n"
        f"   gateway --data-dir {data_dir} status\n"
        f"   gateway --data-dir {data_dir} utility contracts\n"
        f"   gateway --data-dir {data_dir} utility reading list LV-OBJ-000456789\n"
        f"   gateway --data-dir {data_dir} utility supply L-2025-0004")


def _last(store: Any, mp: str) -> Decimal:
    return store.readings(mp)[-1].value


def _month(gw: Gateway, source: Any, store: Any, say: Any, period: Period,
           events: dict[dt.date, list[Any]], *, run_month: Any) -> None:
    """Live through the days from the window's opening to the 15th of the next month:
    each day the readings (or a CSV file, or a reconnection) that arrive that day, then
    the month-end run of that day, which issues what is due on it."""
    n = 3 if period == SEPTEMBER else 4
    first = period.window[0] - dt.timedelta(days=5)
    last = dt.date(period.shift(1).year, period.shift(1).month, 15)
    say(f"[bold]{n}. Month end {period}[/bold] (reading window {period.window[0]:%d.%m.}–"
        f"{period.window[1]:%d.%m.%Y}; 'gateway utility bill {period}' runs every day "
        f"from {first:%d.%m.} to {last:%d.%m.})")
    table = Table(title=f"Documents for {period}", show_lines=False)
    for col in ("number", "customer", "kWh", "", "issued", "due", "EUR"):
        table.add_column(col, no_wrap=col in ("number", "issued", "due"))
    total = RunSummary(period)

    def row(draft: Any, outcome: str) -> None:
        if outcome != "issued" or draft.invoice is None or draft.plan is None:
            return
        from gateway.core import complete

        invoice = complete(draft.invoice)
        plan = draft.plan
        kind = []
        if plan.credit:
            kind.append("credit note")
        if plan.estimated:
            kind.append("estimated")
        if any(m.settled_kwh for m in plan.meters):
            kind.append("settles estimate")
        if plan.paper_fee:
            kind.append("paper fee")
        if plan.reconnections:
            kind.append("reconnection")
        if any(m.reading and m.reading.meter_change for m in plan.meters):
            kind.append("meter change")
        table.add_row(invoice.number, invoice.buyer.name,
                      str(sum(m.kwh for m in plan.meters)), ", ".join(kind),
                      f"{invoice.issue_date:%d.%m.%y}",
                      f"{invoice.due_date:%d.%m.%y}" if invoice.due_date else "-",
                      ("−" if plan.credit else "") + str(invoice.require_totals().amount_due))

    day = first
    while day <= last:
        for event in events.get(day, []):
            _arrive(store, say, day, event)
        summary = run_month(gw, source.biller(), period, as_of=day, on_draft=row)
        _add_up(total, summary)
        day += dt.timedelta(days=1)
    if table.row_count:
        say(table)
    print_summary(total)


def _arrive(store: Any, say: Any, day: dt.date, event: Any) -> None:
    if isinstance(event, Reading):
        try:
            outcome = store.add_reading(event, today=day)
        except GatewayError as exc:
            say(f"   {day:%d.%m.} ✗ {exc}")
            return
        r = outcome.reading
        say(f"   {day:%d.%m.} reading {r.mp} of {r.date:%d.%m.} via {r.how}: "
            f"{outcome.status}, {_counts(r)}"
            + (f" — {outcome.message}" if outcome.message else ""))
    elif isinstance(event, Path):
        for result in import_csv(store, event.read_bytes(), source=event.name,
                                 by="Sadales tīkls", today=day):
            if result.outcome is None:
                say(f"   {day:%d.%m.} ✗ {result.error}")
                continue
            r = result.outcome.reading
            say(f"   {day:%d.%m.} {event.name} row {result.row}: {r.mp} {r.date:%d.%m.} "
                f"{result.outcome.status}, {_counts(r)}"
                + (f" — {result.outcome.message}" if result.outcome.message else ""))
    else:
        _, contract = event
        r = reconnect(store, contract, day, by="demo")
        say(f"   {day:%d.%m.} reconnection of {contract}: {r.reason}")


def _counts(r: Any) -> str:
    return f"settles on {r.period}" if r.timing in ("outside", "after-invoice") else \
        f"counts for {r.period}"


def _add_up(total: RunSummary, summary: RunSummary) -> None:
    total.issued += summary.issued
    total.errors += summary.errors
    for name in ("estimated", "settled", "paper", "reconnections", "credit_notes",
                 "delivered", "delivery_problems"):
        setattr(total, name, getattr(total, name) + getattr(summary, name))
    total.waiting = summary.waiting
