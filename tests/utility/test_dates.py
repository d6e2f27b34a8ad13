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
    e_invoice_term_days,
    is_working_day,
    is_working_saturday,
    next_window_period,
    next_working_day,
    paper_due_date,
    paper_term_days,
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


# ---------------------------------------------------------------- working Saturdays
# The Cabinet moves working days onto Saturdays (e.g. 2 January 2026 off, worked on
# Saturday 17 January; 22 June 2026 off, worked on Saturday 27 June); the ``holidays``
# package lists them as ``weekend_workdays``.


@pytest.mark.parametrize("day", [
    D(2026, 1, 17), D(2026, 6, 27), D(2025, 5, 10), D(2025, 11, 8), D(2024, 12, 14),
    D(2024, 12, 28),
])
def test_working_saturdays_are_working_days(day: dt.date) -> None:
    assert day.weekday() == 5
    assert is_working_day(day) and is_working_saturday(day)


@pytest.mark.parametrize("day", [D(2026, 1, 10), D(2026, 6, 20), D(2026, 7, 4),
                                 D(2026, 1, 18), D(2026, 6, 28)])
def test_other_weekend_days_are_not(day: dt.date) -> None:
    assert not is_working_day(day) and not is_working_saturday(day)


@pytest.mark.parametrize(("after", "expected"), [
    (D(2026, 6, 25), D(2026, 6, 26)),     # the day before: Thursday → Friday
    (D(2026, 6, 26), D(2026, 6, 27)),     # Friday → the working Saturday
    (D(2026, 6, 27), D(2026, 6, 29)),     # the working Saturday → Monday (Sunday is not)
    (D(2026, 1, 16), D(2026, 1, 17)),     # January 2026
    (D(2026, 1, 9), D(2026, 1, 12)),      # an ordinary Saturday is skipped
    (D(2024, 12, 27), D(2024, 12, 28)),   # year end: Saturday 28 Dec 2024 worked
    (D(2024, 12, 28), D(2025, 1, 2)),     # then 30 Dec off, 31 Dec and 1 Jan holidays
])
def test_next_working_day_counts_working_saturdays(after: dt.date, expected: dt.date) -> None:
    assert next_working_day(after) == expected


def test_issue_dates_on_working_saturdays() -> None:
    # Paper: from the 10th; 10 May 2025 is a working Saturday, so that is the issue day.
    assert default_issue_date(Period(2025, 4), 10) == D(2025, 5, 10)
    assert default_issue_date(Period(2024, 11), 14) == D(2024, 12, 14)
    # An ordinary Saturday the 10th moves to Monday.
    assert default_issue_date(Period(2026, 9), 10) == D(2026, 10, 12)
    # E-invoice: all readings in on Friday 27 Dec 2024 → the working Saturday after it.
    assert e_invoice_issue_date(Period(2024, 12), D(2024, 12, 27)) == D(2024, 12, 28)


# ---------------------------------------------------------------- payment terms


@pytest.mark.parametrize(("issue", "expected"), [
    (D(2026, 11, 10), D(2026, 11, 30)),   # on schedule: the end of the month (20 days)
    (D(2026, 11, 15), D(2026, 11, 30)),   # 15 days: exactly the base term
    (D(2026, 11, 16), D(2026, 12, 1)),    # the end of the month would give 14: 15 days
    (D(2026, 11, 30), D(2026, 12, 15)),   # made late: the whole term from the issue day
    (D(2027, 2, 13), D(2027, 2, 28)),     # February: 15 days exactly
    (D(2027, 2, 14), D(2027, 3, 1)),
    (D(2028, 2, 14), D(2028, 2, 29)),     # leap year
    (D(2028, 2, 15), D(2028, 3, 1)),
    (D(2026, 12, 20), D(2027, 1, 4)),     # across the year end
])
def test_paper_due_date_end_of_month_but_never_less_than_the_term(
        issue: dt.date, expected: dt.date) -> None:
    assert paper_due_date(issue, 15) == expected
    assert due_date(issue, e_invoice=False, base_term=15) == expected


@pytest.mark.parametrize(("base", "paper", "expected"), [
    (14, 0, 19),    # base + 5 below the cap
    (15, 0, 20),    # base + 5 on the cap
    (16, 0, 20),    # base + 5 over the cap: the extension stops at 20 days
    (20, 0, 20),    # no room for an extension, never shorter than the base term
    (25, 0, 25),
    (15, 19, 20),   # paper would give a day less, the same, a day more
    (15, 20, 20),
    (15, 21, 21),   # never shorter than on paper, even past 20 days
])
def test_e_invoice_term_is_an_extension(base: int, paper: int, expected: int) -> None:
    assert e_invoice_term_days(base, paper) == expected


@pytest.mark.parametrize(("issue", "expected"), [
    (D(2026, 10, 29), D(2026, 11, 18)),   # 20 days, whatever the end of the month
    (D(2026, 12, 30), D(2027, 1, 19)),    # across the year end
    (D(2028, 2, 9), D(2028, 2, 29)),      # leap day
])
def test_e_invoice_due_date_counts_the_term_from_issue(issue: dt.date,
                                                       expected: dt.date) -> None:
    assert due_date(issue, e_invoice=True, base_term=15, paper_term=20) == expected


@given(issue=st.dates(min_value=D(2024, 1, 1), max_value=D(2030, 12, 31)),
       base=st.integers(1, 60), period=st.tuples(st.integers(2024, 2030), st.integers(1, 12)))
def test_e_invoice_term_never_shorter_than_base_or_paper(
        issue: dt.date, base: int, period: tuple[int, int]) -> None:
    paper = paper_term_days(Period(*period), 10, base)
    days = (due_date(issue, e_invoice=True, base_term=base, paper_term=paper) - issue).days
    assert days >= base and days >= paper
    assert days >= min(base + 5, 20)
    assert days <= max(20, base, paper)
    # A paper invoice never leaves fewer than the base term either.
    assert (due_date(issue, e_invoice=False, base_term=base) - issue).days >= base
