"""How big one input may be: the ``[limits]`` table of gateway.toml, in one place.

Every limit is checked as early as the input allows, before the work it bounds: a
file's size before it is read, a request's body while it arrives, an invoice's line
count before its lines become objects, a CSV invoice's rows while they are read. The
refusal names the input, the invoice and the field, and the setting that raises it::

    [limits]
    lines_per_invoice = 1000        # invoice lines (BG-25) in one invoice
    rows_per_csv_invoice = 2000     # CSV rows that make up one invoice (lines, charges, ...)
    bytes_per_file = 67108864       # a file read whole (JSON, XML, PDF); 64 MiB
    bytes_per_request = 16777216    # one HTTP API request body; 16 MiB
    invoices_per_request = 100      # invoices in one HTTP API request
    api_workers = 2                 # API pushes worked on at once (the rest wait)
    error_chars = 2000              # an error text stored in the database

A CSV batch file is streamed invoice by invoice, so it has no file-size limit: each of
its invoices is bounded by ``rows_per_csv_invoice`` instead.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gateway.errors import Finding, InputError, InvoiceRejected

MiB = 2**20


class Limits(BaseModel):
    """The ``[limits]`` table; the defaults keep one gateway process under 1 GiB."""

    model_config = ConfigDict(extra="forbid")

    # 1,000 lines rendered as PDF + UBL + CSV take about 16 s of CPU and 350 MiB; 2,000
    # already 32 s and 630 MiB (bench/bench_limits.py): an API request must end in 30 s.
    lines_per_invoice: int = Field(1_000, ge=1, description="Invoice lines in one invoice")
    rows_per_csv_invoice: int = Field(2_000, ge=1, description="CSV rows of one invoice")
    bytes_per_file: int = Field(64 * MiB, ge=1024, description="A file read whole")
    bytes_per_request: int = Field(16 * MiB, ge=1024, description="One API request body")
    invoices_per_request: int = Field(100, ge=1, description="Invoices in one API request")
    api_workers: int = Field(2, ge=1, le=64, description="API pushes worked on at once")
    error_chars: int = Field(2000, ge=200, description="An error text stored in the database")


_active: list[Limits] = [Limits()]


def configure(limits: Limits) -> None:
    """Make ``limits`` the ones this process enforces.

    The model's loader runs deep inside format plugins, behind a hook contract that
    passes no configuration, and one process serves one configuration: so the gateway
    sets its limits here when it starts, and :func:`current` reads them.
    """
    _active[0] = limits


def current() -> Limits:
    return _active[0]


def size_text(n: int) -> str:
    return f"{n / MiB:,.1f} MiB" if n >= MiB else f"{n:,} bytes"


def check_file_size(size: int, *, source: str) -> None:
    """Refuse a file read whole before it is read."""
    limit = current().bytes_per_file
    if size > limit:
        raise InputError(f"file is {size_text(size)}; the limit is {size_text(limit)} "
                         "(limits.bytes_per_file in gateway.toml)", source=source)


def check_lines(count: int, *, number: str | None, source: str | None,
                setting: str = "lines_per_invoice", path: str = "lines") -> None:
    """Refuse an invoice with too many lines before its lines are built."""
    limit = getattr(current(), setting)
    if count > limit:
        what = "CSV rows" if setting == "rows_per_csv_invoice" else "lines"
        raise InvoiceRejected([Finding(
            "GW-LIMIT", path, f"{count:,} {what} in one invoice; the limit is {limit:,} "
            f"(limits.{setting} in gateway.toml)", term="BG-25")], invoice=number, source=source)


def cap_text(text: str, limit: int | None = None) -> str:
    """An error text short enough to store: the start, and how much was cut."""
    limit = limit or current().error_chars
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters cut)"
