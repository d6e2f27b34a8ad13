"""The reading window is judged by the day a reading ARRIVES (CLI, CSV, API, portal all
through UtilityStore.add_reading); the meter date is kept as information; an operator's
history correction is explicit and recorded."""

from __future__ import annotations

import datetime as dt

import pytest

from plugins.utility.dates import Period
from plugins.utility.store import UtilityError, UtilityStore
from tests.utility.conftest import add_contract, reading

pytestmark = pytest.mark.both_stores  # the utility's tables on SQLite and PostgreSQL

D = dt.date
OCT, NOV = Period(2026, 10), Period(2026, 11)


@pytest.mark.parametrize(("arrived", "period", "timing"), [
    (D(2026, 10, 26), NOV, "outside"),    # the day before the October window opens
    (D(2026, 10, 27), OCT, "on-time"),    # the first day of the window
    (D(2026, 10, 28), OCT, "on-time"),
    (D(2026, 10, 31), OCT, "on-time"),    # month end inside the window
    (D(2026, 11, 3), OCT, "on-time"),     # the last day
    (D(2026, 11, 4), Period(2026, 12), "outside"),   # the day after: November by estimate
    (D(2026, 10, 10), NOV, "outside"),
])
def test_window_by_arrival_day(store: UtilityStore, arrived: dt.date, period: Period,
                               timing: str) -> None:
    mp = add_contract(store)
    out = store.add_reading(reading(mp, arrived, 1100), today=arrived)
    assert (out.reading.period, out.reading.timing) == (period, timing)
    assert out.reading.arrived == arrived


@pytest.mark.parametrize(("arrived", "period"), [
    (D(2026, 12, 26), Period(2027, 1)),   # year end: before the December window
    (D(2026, 12, 27), Period(2026, 12)),
    (D(2027, 1, 3), Period(2026, 12)),    # across the year end, still December's
    (D(2027, 1, 4), Period(2027, 2)),     # January billed by the estimate
    (D(2028, 2, 29), Period(2028, 2)),    # leap day in February's window
    (D(2028, 3, 3), Period(2028, 2)),
    (D(2028, 3, 4), Period(2028, 4)),
])
def test_window_by_arrival_across_year_and_leap_day(store: UtilityStore, arrived: dt.date,
                                                    period: Period) -> None:
    mp = add_contract(store)
    assert store.add_reading(reading(mp, arrived, 1100), today=arrived).reading.period \
        == period


def test_a_past_meter_date_does_not_make_a_reading_on_time(store: UtilityStore) -> None:
    """Sent on 30 November with the date 28 October: November's reading (it arrived in
    November's window), not October's; the meter date is kept."""
    mp = add_contract(store)
    out = store.add_reading(reading(mp, D(2026, 10, 28), 1100), today=D(2026, 11, 30))
    r = out.reading
    assert r.period == NOV and r.timing == "on-time"
    assert r.date == D(2026, 10, 28) and r.arrived == D(2026, 11, 30)
    assert "dated 28.10.2026, arrived 30.11.2026" in (out.message or "")
    # Sent on 20 November (between windows) with an October date: outside, settles later.
    mp2 = add_contract(store, 2)
    out = store.add_reading(reading(mp2, D(2026, 10, 29), 1100), today=D(2026, 11, 20))
    assert out.reading.period == Period(2026, 12) and out.reading.timing == "outside"


def test_operator_history_correction_is_explicit_and_recorded(store: UtilityStore) -> None:
    mp = add_contract(store)
    out = store.add_reading(reading(mp, D(2026, 10, 28), 1100,
                                    correction="reading lost in the post, letter of 29.10"),
                            today=D(2026, 11, 20))
    r = out.reading
    assert r.period == OCT and r.timing == "correction"
    assert r.correction == "reading lost in the post, letter of 29.10"
    assert "history correction by test" in (out.message or "")
    # A correction of a month already invoiced still only settles on the next one.
    store.reserve_bill("K1", OCT, "E", D(2026, 11, 4), lambda n: {})
    store.mark_issued("K1", OCT, "id", [])
    out = store.add_reading(reading(mp, D(2026, 11, 1), 1150, correction="late letter"),
                            today=D(2026, 11, 21))
    assert out.reading.period == NOV and out.reading.timing == "after-invoice"


def test_customers_cannot_correct_history(store: UtilityStore) -> None:
    mp = add_contract(store)
    with pytest.raises(UtilityError, match="only an operator"):
        store.add_reading(reading(mp, D(2026, 10, 28), 1100, how="portal",
                                  correction="please"), today=D(2026, 11, 20))


def test_meter_date_cannot_be_after_the_arrival(store: UtilityStore) -> None:
    mp = add_contract(store)
    with pytest.raises(UtilityError, match="after today"):
        store.add_reading(reading(mp, D(2026, 10, 29), 1100), today=D(2026, 10, 28))


@pytest.mark.sqlite_only  # a utility.db file of an earlier release
def test_old_database_gets_the_new_columns(tmp_path: object) -> None:
    """Schema changes are additive: a database of the first release opens, its readings
    keep counting as before (NULL timing = on time for their period)."""
    import sqlite3
    from pathlib import Path

    path = Path(str(tmp_path)) / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE readings (id INTEGER PRIMARY KEY, mp TEXT NOT NULL, date TEXT NOT NULL,
            value TEXT NOT NULL, cumulative TEXT NOT NULL, meter_change INTEGER NOT NULL
            DEFAULT 0, old_meter_final TEXT, new_meter_start TEXT, new_meter TEXT,
            period TEXT NOT NULL, how TEXT NOT NULL, by TEXT NOT NULL,
            received_at REAL NOT NULL, message TEXT);
        CREATE TABLE contracts (number TEXT PRIMARY KEY, customer_id TEXT NOT NULL,
            start_date TEXT NOT NULL, expected_kwh TEXT);
        CREATE TABLE reconnections (id INTEGER PRIMARY KEY, contract TEXT NOT NULL,
            date TEXT NOT NULL, by TEXT NOT NULL, billed_in TEXT);
        INSERT INTO readings(mp, date, value, cumulative, period, how, by, received_at)
            VALUES ('MP1', '2026-10-15', '5', '5', '2026-10', 'cli', 'x', 0);
    """)
    db.commit()
    db.close()
    store = UtilityStore(path)
    try:
        [r] = store.readings("MP1")
        assert r.timing is None and r.counts_as_month_reading and r.arrived == r.date
        cols = {row["name"] for row in store.database.query("PRAGMA table_info(reconnections)")}
        assert {"fee", "reason", "disconnection_id"} <= cols
    finally:
        store.close()
    UtilityStore(path).close()  # opening again adds nothing twice


def test_csv_import_correction_is_recorded_per_row_and_checked(store: UtilityStore) -> None:
    from gateway.errors import InputError
    from plugins.utility.readings_csv import import_csv

    mp = add_contract(store)
    data = f"metering_point,date,value\n{mp},28.10.2026,1100\n".encode()
    with pytest.raises(InputError, match="correction: expected the reason"):
        import_csv(store, data, source="old.csv", by="op", today=D(2026, 12, 10),
                   correction="  ")
    [row] = import_csv(store, data, source="old.csv", by="op", today=D(2026, 12, 10),
                       correction="operator's file of October")
    r = row.outcome.reading
    assert (r.period, r.timing, r.correction) == (OCT, "correction",
                                                  "operator's file of October")


def test_tables_live_in_the_configured_store(store: UtilityStore, store_url: str | None,
                                             tmp_path: object) -> None:
    """On the embedded default utility.db in the data dir; with a PostgreSQL store its
    schema ``utility`` there (no utility.db), its migrations recorded by the one tool."""
    from pathlib import Path

    add_contract(store)
    if store_url is None:
        assert store.database.dialect == "sqlite"
        assert (Path(str(tmp_path)) / "utility.db").is_file()
    else:
        assert store.database.dialect == "postgresql"
        assert not (Path(str(tmp_path)) / "utility.db").exists()
        row = store.database.one("SELECT count(*) AS n FROM information_schema.tables "
                                 "WHERE table_schema = 'utility' AND table_name = 'readings'")
        assert row is not None and row["n"] == 1
    done = store.database.query("SELECT migration_id FROM _yoyo_migration")
    assert {r["migration_id"] for r in done} >= {"utility-0001-baseline"}
    assert len(store.readings("MP1")) == 1  # the opening reading
