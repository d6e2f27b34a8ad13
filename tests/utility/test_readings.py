"""Readings: who/how, the window, lower readings, meter changes, late readings, CSV."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from gateway.errors import InputError
from plugins.utility.dates import Period
from plugins.utility.readings_csv import import_csv
from plugins.utility.store import UtilityError, UtilityStore
from tests.utility.conftest import add_contract, reading

pytestmark = pytest.mark.both_stores  # the utility's tables on SQLite and PostgreSQL

D = dt.date
TODAY = D(2026, 12, 31)


def test_in_window_reading_counts_for_its_month_and_records_who_and_how(
        store: UtilityStore) -> None:
    mp = add_contract(store)
    out = store.add_reading(reading(mp, D(2026, 11, 2), 1150, how="portal"),
                            today=D(2026, 11, 2))
    assert out.status == "accepted" and out.message is None
    assert out.consumption == Decimal(150)
    r = store.readings(mp)[-1]
    assert (r.period, r.how, r.by, r.value) == (Period(2026, 10), "portal", "test",
                                                Decimal(1150))
    # The opening reading of the contract is kept as the first one.
    assert store.readings(mp)[0].how == "contract"


def test_zero_consumption_is_a_reading(store: UtilityStore) -> None:
    mp = add_contract(store)
    out = store.add_reading(reading(mp, D(2026, 10, 28), 1000), today=TODAY)
    assert out.status == "accepted" and out.consumption == 0


def test_reading_arriving_outside_window_settles_on_the_next_invoice(
        store: UtilityStore) -> None:
    mp = add_contract(store)
    out = store.add_reading(reading(mp, D(2026, 10, 15), 1100), today=D(2026, 10, 15))
    assert out.status == "accepted"
    assert out.reading.period == Period(2026, 11) and out.reading.timing == "outside"
    assert "outside the reading window" in (out.message or "")
    assert "not the reading of 2026-10" in (out.message or "")
    assert "2026-11 invoice" in (out.message or "")
    assert store.readings(mp)[-1].message == out.message


def test_lower_reading_is_refused_unless_meter_change(store: UtilityStore) -> None:
    mp = add_contract(store)
    store.add_reading(reading(mp, D(2026, 9, 28), 1500), today=TODAY)
    with pytest.raises(UtilityError) as exc:
        store.add_reading(reading(mp, D(2026, 10, 28), 1499), today=TODAY)
    message = str(exc.value)
    assert "MP1" in message and "field value" in message and "1500" in message
    assert "meter change" in message
    assert len(store.readings(mp)) == 2  # nothing stored
    out = store.add_reading(reading(mp, D(2026, 10, 28), 40, meter_change=True,
                                    old_meter_final=Decimal(1620), new_meter="M-NEW"),
                            today=TODAY)
    # 120 kWh on the old meter after the last reading, 40 on the new one.
    assert out.consumption == Decimal(160)
    assert out.reading.cumulative == Decimal(1660)
    assert store.get_metering_point(mp).meter == "M-NEW"
    # After the change, readings continue from the new meter's value.
    out = store.add_reading(reading(mp, D(2026, 11, 27), 90), today=TODAY)
    assert out.consumption == 50 and out.reading.cumulative == Decimal(1710)


def test_meter_change_checks_its_own_values(store: UtilityStore) -> None:
    mp = add_contract(store)
    with pytest.raises(UtilityError, match="old_meter_final"):
        store.add_reading(reading(mp, D(2026, 10, 28), 5, meter_change=True,
                                  old_meter_final=Decimal(999)), today=TODAY)
    with pytest.raises(UtilityError, match="new meter's start"):
        store.add_reading(reading(mp, D(2026, 10, 28), 5, meter_change=True,
                                  new_meter_start=Decimal(10)), today=TODAY)


def test_same_reading_twice_is_unchanged_other_value_same_day_refused(
        store: UtilityStore) -> None:
    mp = add_contract(store)
    store.add_reading(reading(mp, D(2026, 10, 28), 1100), today=TODAY)
    assert store.add_reading(reading(mp, D(2026, 10, 28), 1100), today=TODAY).status == \
        "unchanged"
    with pytest.raises(UtilityError, match="already a reading on that day"):
        store.add_reading(reading(mp, D(2026, 10, 28), 1101), today=TODAY)


def test_readings_in_date_order_not_in_future_known_metering_point(
        store: UtilityStore) -> None:
    mp = add_contract(store)
    store.add_reading(reading(mp, D(2026, 10, 28), 1100), today=TODAY)
    with pytest.raises(UtilityError, match="date order"):
        store.add_reading(reading(mp, D(2026, 10, 20), 1050), today=TODAY)
    with pytest.raises(UtilityError, match="after today"):
        store.add_reading(reading(mp, D(2026, 11, 28), 1200), today=D(2026, 11, 27))
    with pytest.raises(UtilityError, match="no metering point 'NOPE'"):
        store.add_reading(reading("NOPE", D(2026, 10, 28), 1), today=TODAY)


def test_reading_after_the_month_was_invoiced_goes_to_the_next_one(
        store: UtilityStore) -> None:
    mp = add_contract(store)
    bill = store.reserve_bill("K1", Period(2026, 10), "E", D(2026, 11, 4), lambda n: {})
    store.mark_issued("K1", Period(2026, 10), "id", [])
    assert bill.number == "E2610-00001"
    out = store.add_reading(reading(mp, D(2026, 11, 2), 1200), today=D(2026, 11, 2))
    assert out.reading.period == Period(2026, 11) and out.reading.timing == "after-invoice"
    assert "2026-10 invoice of contract K1 was already issued" in (out.message or "")


CSV_OK = """\ufeffmetering_point;date;value;meter_change;by
MP1;28.10.2026;1 150,5;nē;Portal user
MP2;2026-10-29;2000;;
MP1;29.10.2026;1100;;
MP3;30.10.2026;abc;;
MP2;30.10.2026;2010;maybe;
MP9;30.10.2026;1;;
"""


def test_csv_import_row_by_row_with_clear_errors(store: UtilityStore) -> None:
    add_contract(store, 1)
    add_contract(store, 2, opening="1990")
    add_contract(store, 3)
    results = import_csv(store, CSV_OK.encode(), source="oct.csv", by="operator",
                         today=TODAY)
    assert [r.row for r in results] == [2, 3, 4, 5, 6, 7]
    ok = [r for r in results if r.outcome]
    assert len(ok) == 2
    first = ok[0].outcome.reading
    assert first.value == Decimal("1150.5") and first.by == "Portal user" and first.how == "csv"
    assert ok[1].outcome.reading.by == "operator"
    errors = {r.row: r.error for r in results if r.error}
    assert "oct.csv row 4" in errors[4] and "lower than the previous reading" in errors[4]
    assert "field value: expected a number" in errors[5] and "'abc'" in errors[5]
    assert "field meter_change: expected yes or no" in errors[6]
    assert "no metering point 'MP9'" in errors[7]
    # Importing the same file again changes nothing.
    again = import_csv(store, CSV_OK.encode(), source="oct.csv", by="operator", today=TODAY)
    assert [r.outcome.status for r in again if r.outcome] == ["unchanged", "unchanged"]


@pytest.mark.parametrize(("data", "expected"), [
    (b"", "empty file"),
    (b"mp,date,value\n", "lacks column(s) metering_point"),
    (b"metering_point,date,value,colour\n", "unknown column(s) colour"),
    (b"\xff\xfe\x00", "not UTF-8"),
])
def test_csv_unreadable_file(store: UtilityStore, data: bytes, expected: str) -> None:
    with pytest.raises(InputError, match=re.escape(expected)) as exc:
        import_csv(store, data, source="bad.csv", by="x", today=TODAY)
    assert str(exc.value).startswith("bad.csv:")
