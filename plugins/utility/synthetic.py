"""Generated supplier data for the month-end test and benchmark.

``generate`` makes N contracts with a year of monthly readings (bulk-inserted: that is
set-up, not what is measured), then ``month_readings`` sends the month's readings through
the real reading checks, with the mix a supplier sees: most on time, some zero, some
missing, some late (sent after the window) and some early (sent before it): both are
outside the window, so the month is estimated and they settle on a later invoice. Each
reading arrives on the day it was taken.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal

from plugins.utility.dates import Period, next_window_period
from plugins.utility.demo import setup_file
from plugins.utility.store import UtilityStore

KINDS = (("on-time", 0.83), ("zero", 0.03), ("missing", 0.05), ("late", 0.04),
         ("early", 0.05))


@dataclass
class SyntheticContract:
    number: str
    customer: str
    mp: str
    kind: str
    paper: bool
    history: list[tuple[dt.date, Decimal]] = field(default_factory=list)
    reading: tuple[dt.date, Decimal] | None = None


def generate(store: UtilityStore, n: int, period: Period, *, seed: int = 2026,
             paper_share: float = 0.3) -> list[SyntheticContract]:
    """Prices from the demo data, and ``n`` contracts that began 13 months before
    ``period`` with a reading on the 28th of every month until the month before."""
    setup = setup_file()
    for v in setup.vat:
        store.put_vat_rate(v)
    for t in setup.tariff:
        store.put_tariff(t)
    rng = random.Random(seed)
    kinds = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    start_period = period.shift(-13)
    start = start_period.first_day
    contracts = []
    customers, contract_rows, mp_rows, reading_rows = [], [], [], []
    now = time.time()
    address = {"line1": "Brīvības iela 1", "city": "Rīga", "postal_code": "LV-1001",
               "country": "LV"}
    for i in range(1, n + 1):
        c = SyntheticContract(number=f"K{i:06d}", customer=f"C{i:06d}", mp=f"MP{i:06d}",
                              # the first contracts show every kind, even when n is small
                              kind=kinds[i - 1] if i <= len(kinds)
                              else rng.choices(kinds, weights)[0],
                              paper=rng.random() < paper_share)
        customers.append((c.customer, json.dumps({
            "id": c.customer, "name": f"Klients {i}", "address": address,
            "email": f"c{i}@example.lv", "vat_id": None, "registration_id": None,
            "language": "lv" if i % 4 else "en"})))
        contract_rows.append((c.number, c.customer, start.isoformat(), None))
        mp_rows.append((c.mp, c.number, f"M{i:07d}", "MAJAS",
                        json.dumps({**address, "line1": f"Meža iela {i}"})))
        value = Decimal(rng.randrange(1000, 90000))
        monthly = rng.randrange(40, 600)
        c.history.append((start, value))
        p = start_period
        while p < period:
            day = dt.date(p.year, p.month, 28)
            value += Decimal(max(0, monthly + rng.randrange(-30, 31)))
            c.history.append((day, value))
            p = p.shift(1)
        for j, (day, val) in enumerate(c.history):
            reading_rows.append((c.mp, day.isoformat(), str(val), str(val),
                                 str(next_window_period(day)),
                                 "contract" if j == 0 else "demo", "generator", now))
        contracts.append(c)
    with store.tx() as db:
        db.executemany("INSERT INTO customers(id, data) VALUES (?, ?)", customers)
        db.executemany("INSERT INTO contracts(number, customer_id, start_date, expected_kwh) "
                       "VALUES (?,?,?,?)", contract_rows)
        db.executemany("INSERT INTO metering_points VALUES (?,?,?,?,?)", mp_rows)
        db.executemany("INSERT INTO readings(mp, date, value, cumulative, period, how, by, "
                       "received_at) VALUES (?,?,?,?,?,?,?,?)", reading_rows)
    rng2 = random.Random(seed + 1)
    for c in contracts:
        last = c.history[-1][1]
        window_start, window_end = period.window
        if c.kind == "on-time":
            day = window_start + dt.timedelta(days=rng2.randrange(0, 8))
            c.reading = (day, last + rng2.randrange(30, 700))
        elif c.kind == "zero":
            c.reading = (window_start + dt.timedelta(days=rng2.randrange(0, 8)), last)
        elif c.kind == "late":
            c.reading = (window_end + dt.timedelta(days=rng2.randrange(1, 10)),
                         last + rng2.randrange(30, 700))
        elif c.kind == "early":
            c.reading = (dt.date(period.year, period.month, rng2.randrange(10, 27)),
                         last + rng2.randrange(30, 700))
    return contracts


def month_readings(store: UtilityStore, contracts: list[SyntheticContract],
                   today: dt.date) -> int:
    """Send the month's readings through the reading checks, as a supplier gets them:
    every tenth one by itself through the API path, the rest in one CSV file from the
    distribution operator. Returns how many."""
    from plugins.utility.models import Reading
    from plugins.utility.readings_csv import import_csv

    # Each reading arrives on the day it was taken (the window is judged by arrival):
    # the operator's file of a day is one import.
    files: dict[dt.date, list[str]] = {}
    count = 0
    for i, c in enumerate(contracts):
        if c.reading is None:
            continue
        count += 1
        if i % 10 == 0:
            store.add_reading(Reading(metering_point=c.mp, date=c.reading[0],
                                      value=c.reading[1], by=c.customer, how="api"),
                              today=min(c.reading[0], today))
        else:
            files.setdefault(c.reading[0], []).append(
                f"{c.mp},{c.reading[0].isoformat()},{c.reading[1]}")
    refused: list[str | None] = []
    for day, rows in sorted(files.items()):
        results = import_csv(store, ("metering_point,date,value\n" + "\n".join(rows)
                                     + "\n").encode(), source=f"operator-{day}.csv",
                             by="distribution operator", today=min(day, today))
        refused += [r.error for r in results if r.error]
    if refused:
        raise ValueError(f"generated readings refused: {refused[:3]}")
    return count


def gateway_customers(gw: object, contracts: list[SyntheticContract], *,
                      formats: list[str], channels: list[str]) -> None:
    """A gateway customer for every synthetic customer."""
    from gateway.core import Customer

    store = gw.store  # type: ignore[attr-defined]
    for c in contracts:
        store.put_customer(Customer.model_validate({
            "id": c.customer, "name": c.customer, "formats": formats, "paper": c.paper,
            "channels": [{"channel": ch, "settings": {"path": "out/{customer}"}}
                         if ch == "folder" else {"channel": ch} for ch in channels]}),
            actor="generator")
