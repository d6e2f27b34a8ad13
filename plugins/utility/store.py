"""The utility's own tables: customers, contracts, metering points, tariffs, VAT rates,
readings, disconnections and reconnections, fees and the bills issued per contract and
month. On the embedded default they live in ``utility.db`` in the data dir, apart from
the gateway's store; with ``[store] url = "postgresql://…"`` in the gateway's database,
schema ``utility``. The schema is versioned migrations (``migrations/``); a utility.db
of an earlier release is upgraded in place when it is opened."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway import GatewayError
from gateway.core.storage import PluginDatabase
from gateway.core.storage.database import Cursor, Row
from plugins.utility.dates import Period, local_today, next_window_period, window_period
from plugins.utility.models import (
    Contract,
    DisconnectionReason,
    Fee,
    MeteringPoint,
    PostalAddress,
    Reading,
    TariffComponent,
    UtilityCustomer,
    VatRate,
)

MIGRATIONS = Path(__file__).with_name("migrations")
#: the file is a setting ([plugins.utility] database); this is its default
DATABASE = PluginDatabase("utility", MIGRATIONS, "utility.db")

ON_TIME = "on-time"
OUTSIDE = "outside"
AFTER_INVOICE = "after-invoice"
CORRECTION = "correction"

ISSUED = "issued"
RESERVED = "reserved"


class UtilityError(GatewayError):
    """A utility record or reading was refused; the message names the input and field."""


@dataclass(frozen=True)
class StoredReading:
    id: int
    mp: str
    date: dt.date
    value: Decimal
    cumulative: Decimal
    meter_change: bool
    period: Period
    how: str
    by: str
    message: str | None
    received_on: dt.date | None = None
    timing: str | None = None
    correction: str | None = None

    @property
    def counts_as_month_reading(self) -> bool:
        """Arrived in its period's window (or an operator put it there): the month's
        actual reading. Anything else only settles estimates on the invoice it counts for."""
        return self.timing in (None, ON_TIME, CORRECTION)

    @property
    def arrived(self) -> dt.date:
        return self.received_on or self.date


@dataclass(frozen=True)
class ReadingOutcome:
    status: str  # "accepted" or "unchanged"
    reading: StoredReading
    consumption: Decimal
    message: str | None = None


@dataclass(frozen=True)
class Disconnection:
    id: int
    contract: str
    date: dt.date
    reason: str
    by: str


@dataclass(frozen=True)
class Reconnection:
    id: int
    contract: str
    date: dt.date
    by: str
    fee: bool
    reason: str
    disconnection: Disconnection | None
    billed_in: str | None


@dataclass(frozen=True)
class Bill:
    contract: str
    period: Period
    number: str
    status: str
    issue_date: dt.date | None
    data: dict[str, Any]
    invoice_id: str | None


def _d(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


def _fmt(day: dt.date) -> str:
    return day.strftime("%d.%m.%Y")


class UtilityStore:
    def __init__(self, path: Path, *, any_thread: bool = False) -> None:
        """``path``: the SQLite file of the embedded default; a PostgreSQL store
        configured for its data directory is used instead. ``any_thread``: kept for
        callers; the database may be used from any thread."""
        self.path = path
        # Transactions are explicit (BEGIN IMMEDIATE on SQLite), so that a reading check
        # and its insert cannot interleave with another process's.
        self.database = DATABASE.open_in(path.parent, path.name)
        # the open transaction of this thread: reads inside it see its writes
        self._local = threading.local()

    def close(self) -> None:
        self.database.close()

    @contextmanager
    def tx(self) -> Iterator[Cursor]:
        """A transaction; inside another one a savepoint, so that a batch (a CSV file)
        commits once while each row still succeeds or fails on its own."""
        cur: Cursor | None = getattr(self._local, "cur", None)
        if cur is not None:
            cur.execute("SAVEPOINT row")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK TO SAVEPOINT row")
                cur.execute("RELEASE SAVEPOINT row")
                raise
            cur.execute("RELEASE SAVEPOINT row")
            return
        with self.database.tx() as cur:
            self._local.cur = cur
            try:
                yield cur
            finally:
                self._local.cur = None

    def _all(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Row]:
        cur: Cursor | None = getattr(self._local, "cur", None)
        if cur is not None:
            return cur.execute(sql, params).fetchall()
        return self.database.query(sql, params)

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Row | None:
        rows = self._all(sql, params)
        return rows[0] if rows else None

    # ------------------------------------------------------------------ master data

    def put_customer(self, customer: UtilityCustomer) -> None:
        with self.tx() as db:
            db.execute("INSERT INTO customers(id, data) VALUES (?, ?) ON CONFLICT(id) DO "
                       "UPDATE SET data=excluded.data", (customer.id, customer.model_dump_json()))

    def get_customer(self, customer_id: str) -> UtilityCustomer | None:
        row = self._one("SELECT data FROM customers WHERE id=?", (customer_id,))
        return UtilityCustomer.model_validate_json(row["data"]) if row else None

    def customers(self) -> dict[str, UtilityCustomer]:
        return {r["id"]: UtilityCustomer.model_validate_json(r["data"])
                for r in self._all("SELECT id, data FROM customers")}

    def put_contract(self, contract: Contract) -> None:
        if self.get_customer(contract.customer) is None:
            raise UtilityError(f"contract {contract.number}: field customer: no customer "
                               f"{contract.customer!r}; add the customer first")
        with self.tx() as db:
            db.execute(
                "INSERT INTO contracts(number, customer_id, start_date, expected_kwh, "
                "payment_term_days) VALUES (?,?,?,?,?) ON CONFLICT(number) DO UPDATE SET "
                "customer_id=excluded.customer_id, start_date=excluded.start_date, "
                "expected_kwh=excluded.expected_kwh, "
                "payment_term_days=excluded.payment_term_days",
                (contract.number, contract.customer, contract.start.isoformat(),
                 None if contract.expected_kwh is None else str(contract.expected_kwh),
                 contract.payment_term_days))

    def get_contract(self, number: str) -> Contract | None:
        row = self._one("SELECT * FROM contracts WHERE number=?", (number,))
        return _contract(row) if row else None

    def contracts(self) -> list[Contract]:
        return [_contract(r) for r in self._all("SELECT * FROM contracts ORDER BY number")]

    def put_metering_point(self, mp: MeteringPoint, *, by: str = "setup") -> None:
        contract = self.get_contract(mp.contract)
        if contract is None:
            raise UtilityError(f"metering point {mp.id}: field contract: no contract "
                               f"{mp.contract!r}; add the contract first")
        if not self.tariff_exists(mp.tariff):
            raise UtilityError(f"metering point {mp.id}: field tariff: no tariff {mp.tariff!r} "
                               f"(known: {', '.join(self.tariff_codes()) or 'none'})")
        with self.tx() as db:
            exists = db.execute("SELECT 1 FROM metering_points WHERE id=?", (mp.id,)).fetchone()
            db.execute(
                "INSERT INTO metering_points(id, contract, meter, tariff, address) VALUES "
                "(?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET contract=excluded.contract, "
                "meter=excluded.meter, tariff=excluded.tariff, address=excluded.address",
                (mp.id, mp.contract, mp.meter, mp.tariff, mp.address.model_dump_json()))
            if not exists:
                # The opening reading is the baseline of the first bill and the start of
                # the history that estimates average consumption.
                start = contract.start
                db.execute(
                    "INSERT INTO readings(mp, date, value, cumulative, period, how, by, "
                    "received_at, received_on, timing) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (mp.id, start.isoformat(), str(mp.start_reading), str(mp.start_reading),
                     str(next_window_period(start)), "contract", by, time.time(),
                     start.isoformat(), "contract"))

    def metering_points(self, contract: str) -> list[MeteringPoint]:
        return [self._mp(r) for r in self._all(
            "SELECT * FROM metering_points WHERE contract=? ORDER BY id", (contract,))]

    def customer_metering_points(self, customer_id: str
                                 ) -> list[tuple[MeteringPoint, StoredReading]]:
        """A customer's metering points (over all their contracts) with the latest
        reading of each; the portal's reading page shows only these."""
        rows = self._all(
            "SELECT m.* FROM metering_points m JOIN contracts c ON c.number = m.contract "
            "WHERE c.customer_id=? ORDER BY m.contract, m.id", (customer_id,))
        out = []
        for row in rows:
            latest = self._latest_reading(row["id"])
            assert latest is not None  # every metering point has its opening reading
            out.append((self._mp(row), latest))
        return out

    def get_metering_point(self, mp_id: str) -> MeteringPoint | None:
        row = self._one("SELECT * FROM metering_points WHERE id=?", (mp_id,))
        return self._mp(row) if row else None

    def _mp(self, row: Row) -> MeteringPoint:
        return MeteringPoint(id=row["id"], contract=row["contract"], meter=row["meter"],
                             tariff=row["tariff"],
                             address=PostalAddress.model_validate_json(row["address"]))

    # ------------------------------------------------------------------ tariffs and VAT

    def put_tariff(self, t: TariffComponent) -> None:
        with self.tx() as db:
            for row in db.execute("SELECT * FROM tariffs WHERE code=? AND component=? AND "
                                  "valid_from<>?", (t.code, t.component,
                                                    t.valid_from.isoformat())).fetchall():
                if _overlaps(t.valid_from, t.valid_to, _d(row["valid_from"]),
                             _d(row["valid_to"])):
                    raise UtilityError(
                        f"tariff {t.code} component {t.component}: validity from "
                        f"{t.valid_from} overlaps the price valid from {row['valid_from']} "
                        f"to {row['valid_to'] or 'open end'}; close that one first (valid_to)")
            db.execute(
                "INSERT INTO tariffs VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (code, component, "
                "valid_from) DO UPDATE SET basis=excluded.basis, name_lv=excluded.name_lv, "
                "name_en=excluded.name_en, price=excluded.price, valid_to=excluded.valid_to",
                (t.code, t.component, t.basis, t.name_lv, t.name_en, str(t.price),
                 t.valid_from.isoformat(), t.valid_to.isoformat() if t.valid_to else None))

    def tariff_exists(self, code: str) -> bool:
        return self._one("SELECT 1 FROM tariffs WHERE code=?", (code,)) is not None

    def tariff_codes(self) -> list[str]:
        return [r["code"] for r in self._all("SELECT DISTINCT code FROM tariffs ORDER BY code")]

    def tariff_on(self, code: str, day: dt.date) -> list[TariffComponent]:
        """The components of tariff ``code`` valid on ``day``, in a stable order."""
        iso = day.isoformat()
        rows = self._all(
            "SELECT * FROM tariffs WHERE code=? AND valid_from<=? AND (valid_to IS NULL OR "
            "valid_to>=?) ORDER BY CASE basis WHEN 'kwh' THEN 0 ELSE 1 END, component <> 'energy', "
            "component",
            (code, iso, iso))
        return [TariffComponent(code=r["code"], component=r["component"], basis=r["basis"],
                                name_lv=r["name_lv"], name_en=r["name_en"],
                                price=Decimal(r["price"]), valid_from=_d(r["valid_from"]),
                                valid_to=_d(r["valid_to"])) for r in rows]

    def tariffs(self) -> list[Row]:
        return self._all("SELECT * FROM tariffs ORDER BY code, component, valid_from")

    def put_vat_rate(self, v: VatRate) -> None:
        with self.tx() as db:
            for row in db.execute("SELECT * FROM vat_rates WHERE valid_from<>?",
                                  (v.valid_from.isoformat(),)).fetchall():
                if _overlaps(v.valid_from, v.valid_to, _d(row["valid_from"]),
                             _d(row["valid_to"])):
                    raise UtilityError(
                        f"VAT rate {v.rate} from {v.valid_from} overlaps the rate "
                        f"{row['rate']} valid from {row['valid_from']} to "
                        f"{row['valid_to'] or 'open end'}; close that one first (valid_to)")
            db.execute("INSERT INTO vat_rates VALUES (?,?,?) ON CONFLICT (valid_from) DO UPDATE "
                       "SET valid_to=excluded.valid_to, rate=excluded.rate",
                       (v.valid_from.isoformat(), v.valid_to.isoformat() if v.valid_to else None,
                        str(v.rate)))

    def vat_rate_on(self, day: dt.date) -> Decimal:
        iso = day.isoformat()
        row = self._one("SELECT rate FROM vat_rates WHERE valid_from<=? AND (valid_to IS NULL "
                        "OR valid_to>=?)", (iso, iso))
        if row is None:
            raise UtilityError(f"no VAT rate valid on {iso}; add one with 'gateway utility "
                               "import' ([[vat]] rate, valid_from)")
        return Decimal(row["rate"])

    def put_fee(self, fee: Fee) -> None:
        start = fee.valid_from.isoformat() if fee.valid_from else ""
        with self.tx() as db:
            for row in db.execute("SELECT * FROM fees WHERE code=? AND valid_from<>?",
                                  (fee.code, start)).fetchall():
                if _overlaps(fee.valid_from or dt.date.min, fee.valid_to,
                             _d(row["valid_from"]) or dt.date.min, _d(row["valid_to"])):
                    raise UtilityError(
                        f"{fee.code} fee {fee.amount} from {fee.valid_from or 'always'} "
                        f"overlaps the fee {row['amount']} valid from "
                        f"{row['valid_from'] or 'always'} to {row['valid_to'] or 'open end'}; "
                        "close that one first (valid_to)")
            db.execute("INSERT INTO fees VALUES (?,?,?,?) ON CONFLICT (code, valid_from) DO "
                       "UPDATE SET amount=excluded.amount, valid_to=excluded.valid_to",
                       (fee.code, str(fee.amount), start,
                        fee.valid_to.isoformat() if fee.valid_to else None))

    def fees(self, code: str | None = None) -> list[Fee]:
        """The fee schedule as imported (empty: the supplier's defaults apply)."""
        sql, params = "SELECT * FROM fees", ()
        if code is not None:
            sql, params = sql + " WHERE code=?", (code,)
        return [Fee(code=r["code"], amount=Decimal(r["amount"]),
                    valid_from=_d(r["valid_from"]), valid_to=_d(r["valid_to"]))
                for r in self._all(sql + " ORDER BY code, valid_from", params)]

    def vat_rates(self) -> list[Row]:
        return self._all("SELECT * FROM vat_rates ORDER BY valid_from")

    # ------------------------------------------------------------------ readings

    def add_reading(self, r: Reading, *, today: dt.date | None = None) -> ReadingOutcome:
        """Check and store one reading; raise :class:`UtilityError` when it is refused.

        ``today`` is the (Latvian) day the reading arrived, default today: the reading
        window is judged by it, not by the date typed with the reading, which is kept
        as the meter's date. Only ``r.correction`` (an operator correcting history, for
        a reason that is recorded) makes the meter date's window count instead."""
        today = today or local_today()
        who = f"reading for {r.metering_point} on {r.date.isoformat()}"
        mp = self.get_metering_point(r.metering_point)
        if mp is None:
            raise UtilityError(f"{who}: field metering_point: no metering point "
                               f"{r.metering_point!r}")
        if r.date > today:
            raise UtilityError(f"{who}: field date: a reading cannot be dated after today "
                               f"({today.isoformat()})")
        if r.correction and r.how == "portal":
            raise UtilityError(f"{who}: field correction: only an operator corrects history")
        with self.tx() as db:
            latest = self._latest_reading(r.metering_point)
            assert latest is not None  # every metering point has its opening reading
            if r.date < latest.date:
                raise UtilityError(
                    f"{who}: field date: readings come in date order; the latest reading is "
                    f"{latest.value} on {latest.date.isoformat()}")
            if r.date == latest.date:
                if r.value == latest.value and r.meter_change == latest.meter_change:
                    return ReadingOutcome("unchanged", latest, Decimal(0),
                                          "the same reading was already received")
                raise UtilityError(
                    f"{who}: field value: there is already a reading on that day "
                    f"({latest.value}); send a reading for another day")
            if r.meter_change:
                old_final = latest.value if r.old_meter_final is None else r.old_meter_final
                if old_final < latest.value:
                    raise UtilityError(
                        f"{who}: field old_meter_final: {old_final} is lower than the previous "
                        f"reading {latest.value} of {latest.date.isoformat()}")
                if r.value < r.new_meter_start:
                    raise UtilityError(
                        f"{who}: field value: {r.value} is lower than the new meter's start "
                        f"value {r.new_meter_start}")
                consumption = (old_final - latest.value) + (r.value - r.new_meter_start)
            else:
                if r.value < latest.value:
                    raise UtilityError(
                        f"{who}: field value: {r.value} is lower than the previous reading "
                        f"{latest.value} of {latest.date.isoformat()}; if the meter was "
                        "replaced, send it as a meter change")
                old_final = None
                consumption = r.value - latest.value
            period, timing, message = self._period_for(mp.contract, r, today)
            # RETURNING, not lastrowid: PostgreSQL has no lastrowid
            new_id = db.execute(
                "INSERT INTO readings(mp, date, value, cumulative, meter_change, "
                "old_meter_final, new_meter_start, new_meter, period, how, by, received_at, "
                "message, received_on, timing, correction) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id",
                (r.metering_point, r.date.isoformat(), str(r.value),
                 str(latest.cumulative + consumption), int(r.meter_change),
                 None if old_final is None else str(old_final),
                 str(r.new_meter_start) if r.meter_change else None, r.new_meter, str(period),
                 r.how, r.by, time.time(), message, today.isoformat(), timing,
                 r.correction)).fetchone()["id"]
            if r.meter_change and r.new_meter:
                db.execute("UPDATE metering_points SET meter=? WHERE id=?",
                           (r.new_meter, r.metering_point))
            stored = self._reading(db.execute("SELECT * FROM readings WHERE id=?",
                                              (new_id,)).fetchone())
        return ReadingOutcome("accepted", stored, consumption, message)

    def _period_for(self, contract: str, r: Reading, arrived: dt.date
                    ) -> tuple[Period, str, str | None]:
        """The invoice a reading counts for, how it arrived (``timing``) and what to tell
        the sender when that is not simply "on time".

        * arrived in a window (27th to 3rd): the month's reading, whatever its meter date;
        * arrived between windows (4th to 26th of M): M is billed by the estimate and the
          reading settles it on the invoice of M+1;
        * an operator's correction: the window of the meter date, recorded with the reason;
        * for a month already invoiced: it settles on the next invoice."""
        last = self.last_issued_period(contract)
        if r.correction:
            period, timing = next_window_period(r.date), CORRECTION
            message = (f"history correction by {r.by} ({r.correction}): counts for {period} "
                       f"by its meter date {_fmt(r.date)}, not its arrival {_fmt(arrived)}")
        elif (in_window := window_period(arrived)) is not None:
            period, timing, message = in_window, ON_TIME, None
            if window_period(r.date) != in_window:
                message = (f"dated {_fmt(r.date)}, arrived {_fmt(arrived)} in the "
                           f"{in_window} reading window: counts for {in_window}")
        else:
            missed = Period.of(arrived)
            start, end = missed.shift(-1).window
            period, timing = missed.shift(1), OUTSIDE
            message = (f"arrived {_fmt(arrived)}, outside the reading window (27th to 3rd; "
                       f"the last one was {_fmt(start)}–{_fmt(end)}): it is not the reading "
                       f"of {missed}, which is billed by a reading arriving in its window or "
                       f"else by the estimate; it is kept and settles the estimates on the "
                       f"{period} invoice")
        if last is not None and period <= last:
            late, period, timing = period, last.shift(1), AFTER_INVOICE
            message = (f"the {late} invoice of contract {contract} was already issued; the "
                       f"reading is kept and settles the difference on the {period} invoice")
        return period, timing, message

    def _latest_reading(self, mp: str) -> StoredReading | None:
        row = self._one("SELECT * FROM readings WHERE mp=? ORDER BY date DESC, id DESC LIMIT 1",
                        (mp,))
        return self._reading(row) if row else None

    def readings(self, mp: str) -> list[StoredReading]:
        return [self._reading(r) for r in self._all(
            "SELECT * FROM readings WHERE mp=? ORDER BY date, id", (mp,))]

    @staticmethod
    def _reading(row: Row) -> StoredReading:
        return StoredReading(
            id=row["id"], mp=row["mp"], date=dt.date.fromisoformat(row["date"]),
            value=Decimal(row["value"]), cumulative=Decimal(row["cumulative"]),
            meter_change=bool(row["meter_change"]), period=Period.parse(row["period"]),
            how=row["how"], by=row["by"], message=row["message"],
            received_on=_d(row["received_on"]), timing=row["timing"],
            correction=row["correction"])

    # ------------------------------------------------------------------ disconnections

    def add_disconnection(self, contract: str, day: dt.date, reason: DisconnectionReason,
                          by: str) -> Disconnection:
        if self.get_contract(contract) is None:
            raise UtilityError(f"disconnection: field contract: no contract {contract!r}")
        open_ = self.open_disconnection(contract, day)
        if open_ is not None:
            raise UtilityError(f"disconnection of {contract} on {day}: field date: the supply "
                               f"is already disconnected since {open_.date} (record the "
                               "reconnection first)")
        with self.tx() as db:
            cur = db.execute("INSERT INTO disconnections(contract, date, reason, by, "
                             "recorded_at) VALUES (?,?,?,?,?) RETURNING id",
                             (contract, day.isoformat(), reason, by, time.time()))
            new_id = cur.fetchone()["id"]
        found = self._disconnection(new_id)
        assert found is not None
        return found

    def _disconnection(self, id_: int | None) -> Disconnection | None:
        row = self._one("SELECT * FROM disconnections WHERE id=?", (id_,))
        return Disconnection(row["id"], row["contract"], dt.date.fromisoformat(row["date"]),
                             row["reason"], row["by"]) if row else None

    def disconnections(self, contract: str) -> list[Disconnection]:
        return [Disconnection(r["id"], r["contract"], dt.date.fromisoformat(r["date"]),
                              r["reason"], r["by"]) for r in self._all(
            "SELECT * FROM disconnections WHERE contract=? ORDER BY date, id", (contract,))]

    def open_disconnection(self, contract: str, on: dt.date) -> Disconnection | None:
        """The disconnection in force on ``on`` (none reconnected after it)."""
        row = self._one(
            "SELECT d.id FROM disconnections d WHERE d.contract=? AND d.date<=? AND NOT "
            "EXISTS (SELECT 1 FROM reconnections r WHERE r.disconnection_id=d.id) "
            "ORDER BY d.date DESC, d.id DESC LIMIT 1", (contract, on.isoformat()))
        return self._disconnection(row["id"]) if row else None

    # ------------------------------------------------------------------ reconnections

    def add_reconnection(self, contract: str, day: dt.date, by: str, *, fee: bool,
                         reason: str, disconnection: Disconnection | None) -> Reconnection:
        """Record a reconnection; ``fee`` and ``reason`` are decided by the billing rules
        (:func:`plugins.utility.billing.reconnection_fee_applies`) and kept as decided."""
        if self.get_contract(contract) is None:
            raise UtilityError(f"reconnection: field contract: no contract {contract!r}")
        with self.tx() as db:
            cur = db.execute("INSERT INTO reconnections(contract, date, by, disconnection_id, "
                             "fee, reason) VALUES (?,?,?,?,?,?) RETURNING id",
                             (contract, day.isoformat(), by,
                              disconnection.id if disconnection else None, int(fee), reason))
            new_id = cur.fetchone()["id"]
        return self.reconnections(contract, ids=[new_id])[0]

    def reconnections(self, contract: str, *, ids: list[int] | None = None
                      ) -> list[Reconnection]:
        sql = "SELECT * FROM reconnections WHERE contract=?"
        params: list[Any] = [contract]
        if ids is not None:
            sql += f" AND id IN ({','.join('?' * len(ids))})"
            params += ids
        return [Reconnection(r["id"], r["contract"], dt.date.fromisoformat(r["date"]),
                             r["by"], r["fee"] is None or bool(r["fee"]), r["reason"] or "",
                             self._disconnection(r["disconnection_id"]), r["billed_in"])
                for r in self._all(sql + " ORDER BY date, id", params)]

    def unbilled_reconnections(self, contract: str, until: dt.date) -> list[Reconnection]:
        """Reconnections that carry the fee and no invoice has billed yet."""
        return [r for r in self.reconnections(contract)
                if r.fee and r.billed_in is None and r.date <= until]

    # ------------------------------------------------------------------ API tokens

    def add_token(self, name: str, token_hash: str) -> None:
        with self.tx() as db:
            if db.execute("SELECT 1 FROM api_tokens WHERE name=?", (name,)).fetchone():
                raise UtilityError(f"an API token named {name!r} exists; revoke it first")
            db.execute("INSERT INTO api_tokens VALUES (?,?,?)", (token_hash, name, time.time()))

    def revoke_token(self, name: str) -> bool:
        with self.tx() as db:
            return db.execute("DELETE FROM api_tokens WHERE name=?", (name,)).rowcount > 0

    def token_name(self, token_hash: str) -> str | None:
        row = self._one("SELECT name FROM api_tokens WHERE hash=?", (token_hash,))
        return row["name"] if row else None

    # ------------------------------------------------------------------ bills

    def get_bill(self, contract: str, period: Period) -> Bill | None:
        row = self._one("SELECT * FROM bills WHERE contract=? AND period=?",
                        (contract, str(period)))
        return _bill(row) if row else None

    def last_issued(self, contract: str, before: Period | None = None) -> Bill | None:
        sql = "SELECT * FROM bills WHERE contract=? AND status=?"
        params: list[Any] = [contract, ISSUED]
        if before is not None:
            sql += " AND period<?"
            params.append(str(before))
        row = self._one(sql + " ORDER BY period DESC LIMIT 1", tuple(params))
        return _bill(row) if row else None

    def last_issued_period(self, contract: str) -> Period | None:
        bill = self.last_issued(contract)
        return bill.period if bill else None

    def reserve_bill(self, contract: str, period: Period, prefix: str, issue_date: dt.date,
                     data: Callable[[str], dict[str, Any]]) -> Bill:
        """Keep the number of a (contract, month) for good: a rerun after a crash or a
        rejection pushes the same number again."""
        return self.reserve_bills(period, prefix, [(contract, issue_date, data)])[0]

    def reserve_bills(self, period: Period, prefix: str,
                      items: list[tuple[str, dt.date, Callable[[str], dict[str, Any]]]],
                      ) -> list[Bill]:
        """:meth:`reserve_bill` for many contracts in one transaction (one disk sync)."""
        with self.tx() as db:
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) AS seq FROM bills WHERE period=?",
                             (str(period),)).fetchone()["seq"]
            for contract, issue_date, data in items:
                row = db.execute("SELECT * FROM bills WHERE contract=? AND period=?",
                                 (contract, str(period))).fetchone()
                if row is not None:
                    if row["status"] != ISSUED:
                        db.execute("UPDATE bills SET issue_date=?, data=? WHERE contract=? "
                                   "AND period=?", (issue_date.isoformat(),
                                                    json.dumps(data(row["number"])),
                                                    contract, str(period)))
                    continue
                seq += 1
                number = f"{prefix}{period.year % 100:02d}{period.month:02d}-{seq:05d}"
                db.execute("INSERT INTO bills VALUES (?,?,?,?,?,?,?,NULL)",
                           (contract, str(period), number, seq, RESERVED,
                            issue_date.isoformat(), json.dumps(data(number))))
        bills = [self.get_bill(contract, period) for contract, _, _ in items]
        assert all(b is not None for b in bills)
        return bills  # type: ignore[return-value]

    def mark_issued(self, contract: str, period: Period, invoice_id: str,
                    reconnections: list[int]) -> None:
        self.mark_issued_many(period, [(contract, invoice_id, reconnections)])

    def mark_issued_many(self, period: Period,
                         items: list[tuple[str, str, list[int]]]) -> None:
        with self.tx() as db:
            for contract, invoice_id, reconnections in items:
                db.execute("UPDATE bills SET status=?, invoice_id=? WHERE contract=? AND "
                           "period=?", (ISSUED, invoice_id, contract, str(period)))
                db.executemany("UPDATE reconnections SET billed_in=? WHERE id=?",
                               [(str(period), i) for i in reconnections])

    def bills(self, period: Period | None = None) -> list[Bill]:
        if period is None:
            rows = self._all("SELECT * FROM bills ORDER BY period, seq")
        else:
            rows = self._all("SELECT * FROM bills WHERE period=? ORDER BY seq",
                             (str(period),))
        return [_bill(r) for r in rows]


def _overlaps(a0: dt.date, a1: dt.date | None, b0: dt.date | None, b1: dt.date | None) -> bool:
    far = dt.date.max
    assert b0 is not None
    return a0 <= (b1 or far) and b0 <= (a1 or far)


def _contract(row: Row) -> Contract:
    return Contract(number=row["number"], customer=row["customer_id"],
                    start=dt.date.fromisoformat(row["start_date"]),
                    expected_kwh=Decimal(row["expected_kwh"]) if row["expected_kwh"] else None,
                    payment_term_days=row["payment_term_days"])


def _bill(row: Row) -> Bill:
    return Bill(contract=row["contract"], period=Period.parse(row["period"]),
                number=row["number"], status=row["status"], issue_date=_d(row["issue_date"]),
                data=json.loads(row["data"]), invoice_id=row["invoice_id"])
