"""The billing calendar: reading windows across month and year ends, leap years, Latvian
holidays (18 November, Midsummer, Easter, Christmas), issue and due dates."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugins.utility.dates import (
    Period,
    default_issue_date,
    due_date,
    e_invoice_issue_date,
    is_working_day,
    next_window_period,
    next_working_day,
    window_period,
)

D = dt.date


def test_period_parse_and_shift_cross_year() -> None:
    assert Period.parse("2026-12").shift(1) == Period(2027, 1)
    assert Period(2027, 1).shift(-13) == Period(2025, 12)
    assert str(Period(2026, 3)) == "2026-03"
    with pytest.raises(ValueError, match="YYYY-MM"):
        Period.parse("2026/10")
    with pytest.raises(ValueError, match="YYYY-MM"):
        Period.parse("2026-13")


@pytest.mark.parametrize(("period", "start", "end"), [
    (Period(2026, 10), D(2026, 10, 27), D(2026, 11, 3)),
    (Period(2026, 12), D(2026, 12, 27), D(2027, 1, 3)),   # crosses the year end
    (Period(2028, 2), D(2028, 2, 27), D(2028, 3, 3)),     # leap year: 29 February inside
    (Period(2027, 2), D(2027, 2, 27), D(2027, 3, 3)),
])
def test_reading_window(period: Period, start: dt.date, end: dt.date) -> None:
    assert period.window == (start, end)
    assert window_period(start) == period
    assert window_period(end) == period
    assert window_period(start - dt.timedelta(days=1)) is None
    assert window_period(end + dt.timedelta(days=1)) is None


def test_leap_day_belongs_to_february() -> None:
    assert window_period(D(2028, 2, 29)) == Period(2028, 2)
    assert Period(2028, 2).days == 29 and Period(2027, 2).days == 28


def test_reading_outside_window_counts_for_the_next_period() -> None:
    assert next_window_period(D(2026, 10, 15)) == Period(2026, 10)
    assert next_window_period(D(2026, 11, 4)) == Period(2026, 11)
    assert next_window_period(D(2027, 1, 2)) == Period(2026, 12)


@pytest.mark.parametrize("day", [
    D(2026, 11, 18),                  # Proclamation Day
    D(2028, 11, 20),                  # 18 Nov 2028 is a Saturday: moved to Monday
    D(2026, 6, 23), D(2026, 6, 24),   # Midsummer
    D(2026, 6, 22),                   # the government's transferred day off in 2026
    D(2027, 3, 26), D(2027, 3, 29),   # Good Friday, Easter Monday 2027
    D(2024, 3, 29), D(2024, 4, 1),    # Easter 2024
    D(2026, 12, 24), D(2026, 12, 31), D(2027, 1, 1),
    D(2026, 5, 4),
])
def test_latvian_holidays_are_not_working_days(day: dt.date) -> None:
    assert day.weekday() < 5
    assert not is_working_day(day)


@pytest.mark.parametrize(("after", "expected"), [
    (D(2026, 11, 17), D(2026, 11, 19)),   # over Proclamation Day
    (D(2028, 11, 17), D(2028, 11, 21)),   # over the weekend and the moved holiday
    (D(2026, 6, 19), D(2026, 6, 25)),     # Midsummer: Mon 22 (transferred), Tue 23, Wed 24
    (D(2024, 3, 28), D(2024, 4, 2)),      # Easter: Good Friday to Easter Monday
    (D(2027, 3, 27), D(2027, 3, 30)),     # reading on the Easter weekend, in the window
    (D(2026, 12, 30), D(2027, 1, 4)),     # New Year's Eve, New Year, weekend
    (D(2026, 10, 30), D(2026, 11, 2)),    # Friday → Monday
    (D(2028, 2, 28), D(2028, 2, 29)),     # leap day is a working Tuesday
])
def test_next_working_day(after: dt.date, expected: dt.date) -> None:
    assert next_working_day(after) == expected


def test_e_invoice_issue_date_follows_the_last_reading() -> None:
    # All readings in on Tuesday 27 Oct → issued Wednesday 28 Oct.
    assert e_invoice_issue_date(Period(2026, 10), D(2026, 10, 27)) == D(2026, 10, 28)
    # December: last reading on 30 Dec → 4 Jan 2027 (31 Dec, 1 Jan, weekend).
    assert e_invoice_issue_date(Period(2026, 12), D(2026, 12, 30)) == D(2027, 1, 4)
    # March 2027: reading on Easter Saturday → Tuesday after Easter Monday.
    assert e_invoice_issue_date(Period(2027, 3), D(2027, 3, 27)) == D(2027, 3, 30)
    # A reading missing: the next working day after the window closed (3 Nov, Tuesday).
    assert e_invoice_issue_date(Period(2026, 10), None) == D(2026, 11, 4)
    # Window of May 2026 closes Wed 3 June → Thursday 4 June.
    assert e_invoice_issue_date(Period(2026, 5), None) == D(2026, 6, 4)


def test_default_issue_date_between_10th_and_15th() -> None:
    assert default_issue_date(Period(2026, 10), 10) == D(2026, 11, 10)   # Tuesday
    assert default_issue_date(Period(2026, 9), 10) == D(2026, 10, 12)    # Sat 10 → Mon 12
    assert default_issue_date(Period(2026, 12), 10) == D(2027, 1, 11)    # crosses the year
    assert default_issue_date(Period(2028, 1), 12) == D(2028, 2, 14)     # Sat 12 → Mon 14
    for month in range(1, 13):
        day = default_issue_date(Period(2027, month), 10)
        assert 10 <= day.day <= 15 and is_working_day(day)


@pytest.mark.parametrize(("issue", "e_invoice", "expected"), [
    (D(2026, 11, 10), False, D(2026, 11, 30)),   # paper: end of the month of issue
    (D(2026, 10, 29), True, D(2026, 11, 5)),     # e-invoice: 5 more days (term 7 days)
    (D(2026, 11, 4), True, D(2026, 11, 30)),     # 5 more days would make 31: capped at 20,
                                                 # never shorter than the default
    (D(2026, 11, 16), True, D(2026, 12, 5)),     # 30 Nov + 5 = 5 Dec, term 19 days
    (D(2026, 11, 14), True, D(2026, 12, 4)),     # term capped at 20 days
    (D(2028, 2, 14), True, D(2028, 3, 5)),       # leap year: 29 Feb + 5 = 5 Mar (term 20)
    (D(2027, 2, 15), True, D(2027, 3, 5)),       # 28 Feb + 5 = 5 Mar (term 18)
    (D(2026, 12, 30), True, D(2027, 1, 5)),      # crosses the year end
])
def test_due_date(issue: dt.date, e_invoice: bool, expected: dt.date) -> None:
    assert due_date(issue, e_invoice=e_invoice) == expected


@given(st.dates(min_value=D(2024, 1, 1), max_value=D(2030, 12, 31)))
def test_e_invoice_term_never_over_20_days_beyond_default(issue: dt.date) -> None:
    default = due_date(issue, e_invoice=False)
    due = due_date(issue, e_invoice=True)
    assert default <= due <= default + dt.timedelta(days=5)
    assert due == default or (due - issue).days <= 20
