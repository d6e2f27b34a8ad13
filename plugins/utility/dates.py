"""The billing calendar: periods, the reading window, working days, issue and due dates.

Latvian public holidays come from the maintained ``holidays`` package, including the
government's transferred days off *and* the Saturdays that the same Cabinet orders make
working days (``weekend_workdays``, used by its ``is_working_day``), never from a list in
this code.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

WINDOW_FIRST_DAY = 27  # the window of month M opens on the 27th of M ...
WINDOW_LAST_DAY = 3  # ... and closes on the 3rd of M+1, both inclusive
E_INVOICE_EXTRA_DAYS = 5
MAX_PAYMENT_TERM_DAYS = 20
#: The contractual payment term when a contract sets none: the shortest term a paper
#: invoice issued on schedule gives in a 30-day month (issued the 15th, due the 30th).
DEFAULT_PAYMENT_TERM_DAYS = 15
#: The supplier's calendar: windows, arrivals and issue days are Latvian days.
TIMEZONE = "Europe/Riga"


def local_today() -> dt.date:
    """Today in Latvia (the machine may run on UTC: 00:30 in Riga is still 22:30 UTC)."""
    try:
        return dt.datetime.now(ZoneInfo(TIMEZONE)).date()
    except ZoneInfoNotFoundError:  # no tz database: the machine's own day
        return dt.date.today()


@dataclass(frozen=True, order=True)
class Period:
    """A billing month."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Period:
        """'2026-10' → Period(2026, 10); anything else is a ValueError with the format."""
        try:
            year, month = (int(p) for p in text.strip().split("-"))
            if not 1 <= month <= 12 or not 1900 <= year <= 9999:
                raise ValueError
        except ValueError:
            raise ValueError(f"expected a month as YYYY-MM, e.g. 2026-10 (got {text!r})") from None
        return cls(year, month)

    @classmethod
    def of(cls, day: dt.date) -> Period:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def index(self) -> int:
        return self.year * 12 + self.month - 1

    def shift(self, months: int) -> Period:
        i = self.index + months
        return Period(i // 12, i % 12 + 1)

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def last_day(self) -> dt.date:
        return dt.date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    @property
    def days(self) -> int:
        return calendar.monthrange(self.year, self.month)[1]

    @property
    def window(self) -> tuple[dt.date, dt.date]:
        """The reading window: the 27th of this month to the 3rd of the next, inclusive."""
        nxt = self.shift(1)
        return (dt.date(self.year, self.month, WINDOW_FIRST_DAY),
                dt.date(nxt.year, nxt.month, WINDOW_LAST_DAY))


def window_period(day: dt.date) -> Period | None:
    """The period whose reading window contains ``day``, or None between windows."""
    if day.day >= WINDOW_FIRST_DAY:
        return Period.of(day)
    if day.day <= WINDOW_LAST_DAY:
        return Period.of(day).shift(-1)
    return None


def next_window_period(day: dt.date) -> Period:
    """The period a reading taken on ``day`` counts for: its window's, or else the next
    window's (a reading on 15 October is used for October, whose window opens on the 27th)."""
    return window_period(day) or Period.of(day)


@functools.lru_cache(maxsize=64)
def _latvian_calendar(year: int) -> holidays.HolidayBase:
    # The neighbouring years too: a Cabinet order may move a working day across the year
    # end (a day off on 2 January worked on a Saturday in December, or the reverse).
    return holidays.country_holidays("LV", years=(year - 1, year, year + 1))


def is_working_day(day: dt.date) -> bool:
    """Monday to Friday unless a public holiday or a transferred day off, and the
    Saturdays a Cabinet order made working days."""
    return bool(_latvian_calendar(day.year).is_working_day(day))


def is_working_saturday(day: dt.date) -> bool:
    return day.weekday() == 5 and is_working_day(day)


def next_working_day(after: dt.date) -> dt.date:
    """The first working day strictly after ``after``."""
    day = after + dt.timedelta(days=1)
    while not is_working_day(day):
        day += dt.timedelta(days=1)
    return day


def first_working_day_from(day: dt.date) -> dt.date:
    """``day`` itself when it is a working day, else the next one."""
    return day if is_working_day(day) else next_working_day(day)


def end_of_month(day: dt.date) -> dt.date:
    return Period.of(day).last_day


def default_issue_date(period: Period, issue_day: int, last_issue_day: int = 15) -> dt.date:
    """Paper customers: the first working day from the ``issue_day`` (10th) of the next
    month, never after the ``last_issue_day`` (15th)."""
    nxt = period.shift(1)
    day = first_working_day_from(dt.date(nxt.year, nxt.month, issue_day))
    return min(day, dt.date(nxt.year, nxt.month, last_issue_day))


def e_invoice_issue_date(period: Period, readings_complete_on: dt.date | None) -> dt.date:
    """E-invoice customers: the next working day after the last reading of the contract
    arrived; when a reading is missing, the next working day after the window closed."""
    closed = period.window[1]
    return next_working_day(readings_complete_on if readings_complete_on else closed)


def paper_due_date(issue: dt.date, base_term: int = DEFAULT_PAYMENT_TERM_DAYS) -> dt.date:
    """Paper: the end of the month of issue, but never fewer than the contract's base
    term of days from the issue day (an invoice made late, or on 15 February)."""
    return max(end_of_month(issue), issue + dt.timedelta(days=base_term))


def paper_term_days(period: Period, issue_day: int,
                    base_term: int = DEFAULT_PAYMENT_TERM_DAYS) -> int:
    """The days to pay a paper invoice of ``period`` issued on schedule would give."""
    issue = default_issue_date(period, issue_day)
    return (paper_due_date(issue, base_term) - issue).days


def e_invoice_term_days(base_term: int = DEFAULT_PAYMENT_TERM_DAYS,
                        paper_term: int = 0) -> int:
    """The e-invoice benefit: the contract's base term plus 5 days, the extension
    stopping at 20 days from issue; never shorter than the base term itself, nor than
    the ``paper_term`` the same customer would get on paper."""
    extended = min(base_term + E_INVOICE_EXTRA_DAYS, MAX_PAYMENT_TERM_DAYS)
    return max(base_term, extended, paper_term)


def due_date(issue: dt.date, *, e_invoice: bool, base_term: int = DEFAULT_PAYMENT_TERM_DAYS,
             paper_term: int = 0) -> dt.date:
    """The due date of an invoice issued on ``issue``: the whole term counts from the
    issue day, whatever day the invoice was made."""
    if not e_invoice:
        return paper_due_date(issue, base_term)
    return issue + dt.timedelta(days=e_invoice_term_days(base_term, paper_term))
