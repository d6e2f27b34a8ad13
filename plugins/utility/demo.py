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
    "200987654": ("business, e-invoice; no September reading: estimated, settled in October",
                  False),
    "100456789": ("reconnected after a late-payment disconnection; late reading", False),
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
        added += store.add_reading(r, today=dt.date(2026, 9, 1)).status == "accepted"
    say(f"[bold]2. History[/bold]: {added} monthly readings up to August 2026 (the basis of "
        "estimates)")

    september = [
        Reading(metering_point="LV-OBJ-000234567", date=dt.date(2026, 9, 28),
                value=_last(store, "LV-OBJ-000234567") + 176, by="Jānis Bērziņš", how="cli"),
        Reading(metering_point="LV-OBJ-000345678", date=dt.date(2026, 9, 30),
                value=_last(store, "LV-OBJ-000345678") + 93, by="Ilze Kalniņa", how="cli"),
        Reading(metering_point="LV-OBJ-000567890", date=dt.date(2026, 9, 29),
                value=Decimal(12), meter_change=True,
                old_meter_final=_last(store, "LV-OBJ-000567890") + 118,
                new_meter_start=Decimal(0), new_meter="M-30567890", by="Sadales tīkls",
                how="cli"),
    ]
    _month(gw, source, store, console, say, SEPTEMBER, september, [],
           reconnection=("L-2025-0004", dt.date(2026, 9, 22)),
           as_of=dt.date(2026, 10, 15), run_month=run_month)

    csv_path = gw.config.data_dir / "utility-readings-2026-10.csv"
    rows = [
        ("LV-OBJ-000234567", "27.10.2026", _last(store, "LV-OBJ-000234567") + 214),
        ("LV-OBJ-000345678", "02.11.2026", _last(store, "LV-OBJ-000345678")),
        ("LV-OBJ-000987654", "29.10.2026", _last(store, "LV-OBJ-000987654") + 7010),
        ("LV-OBJ-000456789", "10.10.2026", _last(store, "LV-OBJ-000456789") + 590),
        ("LV-OBJ-000567890", "28.10.2026", _last(store, "LV-OBJ-000567890") + 141),
    ]
    csv_path.write_text("metering_point;date;value\n" + "".join(
        f"{mp};{day};{value}\n" for mp, day, value in rows), encoding="utf-8")
    _month(gw, source, store, console, say, OCTOBER, [], [csv_path], reconnection=None,
           as_of=dt.date(2026, 11, 15), run_month=run_month)

    data_dir = gw.config.data_dir
    say("[bold]Next[/bold]: look at the files under "
        f"{data_dir / 'deliveries'}, or try\n"
        f"   gateway --data-dir {data_dir} status\n"
        f"   gateway --data-dir {data_dir} utility contracts\n"
        f"   gateway --data-dir {data_dir} utility reading list LV-OBJ-000456789")


def _last(store: Any, mp: str) -> Decimal:
    return store.readings(mp)[-1].value


def _month(gw: Gateway, source: Any, store: Any, console: Console, say: Any, period: Period,
           readings: list[Reading], csv_files: list[Path], *,
           reconnection: tuple[str, dt.date] | None, as_of: dt.date, run_month: Any) -> None:
    n = 3 if period == SEPTEMBER else 4
    say(f"[bold]{n}. Month end {period}[/bold] (window {period.window[0]:%d.%m.}–"
        f"{period.window[1]:%d.%m.%Y}, run on {as_of:%d.%m.%Y})")
    for r in readings:
        try:
            outcome = store.add_reading(r, today=as_of)
        except GatewayError as exc:
            say(f"   ✗ {exc}")
            continue
        say(f"   reading {r.metering_point} {r.date:%d.%m.}: {outcome.status}"
            + (f" — {outcome.message}" if outcome.message else ""))
    for path in csv_files:
        for result in import_csv(store, path.read_bytes(), source=path.name, by="demo CSV",
                                 today=as_of):
            if result.outcome is None:
                say(f"   ✗ {result.error}")
                continue
            r = result.outcome.reading
            say(f"   {path.name} row {result.row}: {r.mp} {r.date:%d.%m.} {result.outcome.status}"
                + (f" — {result.outcome.message}" if result.outcome.message else ""))
    if reconnection and not store.unbilled_reconnections(reconnection[0], as_of) \
            and store.last_issued_period(reconnection[0]) is None:
        store.add_reconnection(reconnection[0], reconnection[1], by="demo")
        say(f"   reconnection of {reconnection[0]} on {reconnection[1]:%d.%m.}")
    table = Table(title=f"Invoices for {period}", show_lines=False)
    for col in ("invoice", "customer", "kWh", "", "issued", "due", "EUR"):
        table.add_column(col, no_wrap=col in ("invoice", "issued", "due"))

    def row(draft: Any, outcome: str) -> None:
        if outcome != "issued" or draft.invoice is None or draft.plan is None:
            return
        from gateway.core import complete

        invoice = complete(draft.invoice)
        plan = draft.plan
        kind = []
        if plan.estimated:
            kind.append("estimated")
        if any(m.settled_kwh for m in plan.meters):
            kind.append("settles estimate")
        if plan.paper:
            kind.append("paper fee")
        if plan.reconnections:
            kind.append("reconnection")
        if any(m.reading and m.reading.meter_change for m in plan.meters):
            kind.append("meter change")
        table.add_row(invoice.number, invoice.buyer.name,
                      str(sum(m.kwh for m in plan.meters)), ", ".join(kind),
                      f"{invoice.issue_date:%d.%m.%y}", f"{invoice.due_date:%d.%m.%y}",
                      str(invoice.require_totals().amount_due))

    summary = run_month(gw, source.biller(), period, as_of=as_of, on_draft=row)
    if table.row_count:
        say(table)
    print_summary(summary)
