"""``gateway csv export``: the archive's invoices as one spreadsheet file."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from gateway import GatewayError, Invoice
from gateway.cli.output import echo

from . import iter_export, resolve_dialect

PAGE = 500


@click.group("csv")
def csv_group() -> None:
    """CSV tools: export stored invoices for spreadsheets."""


@csv_group.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The CSV file to write (replaced as a whole when complete)")
@click.option("--customer", "customer_id", help="Only this customer's invoices")
@click.option("--dialect", type=click.Choice(["lv", "en"]),
              help="Default: the customer's preference, else lv")
@click.option("--from", "since", type=click.DateTime(["%Y-%m-%d"]),
              help="Issued on or after this date (YYYY-MM-DD)")
@click.option("--to", "until", type=click.DateTime(["%Y-%m-%d"]),
              help="Issued on or before this date (YYYY-MM-DD)")
@click.pass_obj
def export(app: Any, output: Path, customer_id: str | None, dialect: str | None,
           since: dt.datetime | None, until: dt.datetime | None) -> None:
    """Write stored invoices, newest first, one row per line, to OUTPUT.

    Streams: the invoices are read from the database page by page and written as they
    come, so a whole archive can be exported in constant memory.
    """
    gw = app.gateway
    language = "lv"
    options: dict[str, Any] = {}
    if customer_id is not None:
        customer = gw.store.get_customer(customer_id)
        if customer is None:
            raise GatewayError(f"unknown customer {customer_id!r}")
        language, options = customer.language, customer.format_options.get("csv", {})
    chosen = resolve_dialect(dialect or options.get("dialect"), language=language)
    counted = {"invoices": 0}

    def invoices() -> Iterator[Invoice]:
        first = since.date().isoformat() if since else None
        last = until.date().isoformat() if until else None
        offset = 0
        while page := gw.store.list_invoices(customer_id=customer_id, limit=PAGE,
                                             offset=offset):
            offset += len(page)
            for record in page:
                if (first and record.issue_date < first) or (last and record.issue_date > last):
                    continue
                counted["invoices"] += 1
                yield Invoice.model_validate_json(record.invoice_json)

    _write_streamed(output, iter_export(invoices(), chosen))
    echo(f"wrote {output} ({counted['invoices']} invoices, dialect {chosen.name})")


def _write_streamed(path: Path, chunks: Iterator[bytes]) -> None:
    """Write chunks to a temporary file next to ``path`` and rename it into place, so a
    reader never sees half an export and a failure leaves the old file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def register(cli: click.Group) -> None:
    cli.add_command(csv_group)
