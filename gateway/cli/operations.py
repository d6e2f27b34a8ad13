"""Commands for operators: status, deliver, retry, verify."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from typing import Any

import click
from rich.table import Table

from gateway.cli.invoices import err, out, progress_bar
from gateway.cli.output import delivery_name
from gateway.core.pipeline import Gateway
from gateway.core.storage import DEAD, FAILED, RETRY, channel_names


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


@click.command()
@click.argument("invoice", required=False)
@click.option("--failed", is_flag=True, help="Only deliveries that failed or wait for a retry")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def status(app: Any, invoice: str | None, failed: bool, limit: int, as_json: bool) -> None:
    """Show recent invoices, failed deliveries (--failed), or the whole story of INVOICE
    (its number or id): documents, deliveries, every attempt and every event."""
    gw: Gateway = app.gateway
    if invoice:
        _invoice_story(gw, invoice, as_json)
    elif failed:
        rows = gw.store.deliveries(statuses=[FAILED, DEAD, RETRY])
        if as_json:
            for d in rows:
                click.echo(json.dumps({"delivery": d.id, "invoice": d.invoice_id,
                                       "customer": d.customer_id, "channel": d.channel_type,
                                       "status": d.status, "attempts": d.attempts,
                                       "next_attempt_at": d.next_attempt_at
                                       if d.status == RETRY else None,
                                       "error": d.last_error, "label": d.label}))
            return
        table = Table(title="Deliveries that failed or wait for a retry")
        for col in ("delivery", "invoice", "customer", "channel", "status", "attempts",
                    "next attempt", "error"):
            table.add_column(col)
        for d in rows:
            record = gw.store.get_invoice(d.invoice_id)
            table.add_row(str(d.id), record.number if record else d.invoice_id, d.customer_id,
                          delivery_name(d), d.status, str(d.attempts),
                          _when(d.next_attempt_at) if d.status == RETRY else "",
                          (d.last_error or "")[:80])
        out.print(table)
        if not rows:
            out.print("no failed deliveries")
    else:
        records = gw.store.list_invoices(limit=limit)
        table = Table(title=f"Latest {limit} invoices")
        for col in ("invoice", "issued", "customer", "amount due", "deliveries"):
            table.add_column(col)
        for r in records:
            deliveries = ", ".join(f"{delivery_name(d)}: {d.status}"
                                   for d in gw.store.deliveries(invoice_id=r.id))
            table.add_row(r.number, r.issue_date, r.customer_id, f"{r.amount_due} {r.currency}",
                          deliveries or "-")
        out.print(table)


def _invoice_story(gw: Gateway, ref: str, as_json: bool) -> None:
    record = gw.find(ref)
    documents = gw.store.documents(record.id)
    deliveries = gw.store.deliveries(invoice_id=record.id)
    events = gw.store.events(record.id)
    if as_json:
        click.echo(json.dumps({
            "id": record.id, "number": record.number, "customer": record.customer_id,
            "amount_due": record.amount_due, "currency": record.currency,
            "documents": [d.__dict__ for d in documents],
            # "channel" is the channel type, as in the customer's preferences and the
            # hooks; "label" is the customer's name for it (docs/plugins.md, "Words").
            "deliveries": [{"id": d.id, "channel": d.channel_type, "label": d.label,
                            "status": d.status,
                            "attempts": d.attempts, "receipt": d.receipt_id,
                            "receipt_data": d.receipt,
                            "error": d.last_error, "fallback_for": d.fallback_for,
                            "next_attempt_at": d.next_attempt_at if d.status == RETRY else None,
                            "history": [{"started_at": a.started_at,
                                         "finished_at": a.finished_at, "outcome": a.outcome,
                                         "error": a.error, "receipt": a.receipt_id,
                                         "worker": a.worker}
                                        for a in gw.store.attempts(d.id)]}
                           for d in deliveries],
            "events": [{"seq": e.seq, "at": e.at, "kind": e.kind, "data": e.data}
                       for e in events],
        }, indent=2, ensure_ascii=False))
        return
    out.print(f"[bold]Invoice {record.number}[/bold] (id {record.id}) for customer "
              f"{record.customer_id}: {record.amount_due} {record.currency} due "
              f"{record.due_date or '-'}", highlight=False)
    docs = Table(title="Documents")
    for col in ("format", "file", "bytes", "sha256"):
        docs.add_column(col)
    for d in documents:
        docs.add_row(d.format, d.filename, f"{d.size:,}", d.sha256[:16] + "…")
    out.print(docs)
    table = Table(title="Deliveries and attempts")
    for col in ("channel", "status", "attempt", "started", "outcome", "receipt / error"):
        table.add_column(col)
    for d in deliveries:
        attempts = gw.store.attempts(d.id)
        name = delivery_name(d)
        if not attempts:
            table.add_row(name, d.status, "-", "", "", d.reason or "")
        for i, a in enumerate(attempts, 1):
            table.add_row(name if i == 1 else "", d.status if i == 1 else "", str(i),
                          _when(a.started_at), a.outcome or "(running)",
                          a.receipt_id or (a.error or "")[:90])
    out.print(table)
    for d in deliveries:
        data = (d.receipt or {}).get("data") or {}
        if d.receipt_id and (data or (d.receipt or {}).get("recipients")):
            details = {**(d.receipt or {}).get("recipients", {}), **data}
            out.print(f"Receipt of {delivery_name(d)} ({d.receipt_id}): "
                      + ", ".join(f"{k}={_plain(v)}" for k, v in details.items()),
                      highlight=False, markup=False)
    history = Table(title="History (append-only, hash-chained)")
    for col in ("#", "when", "event", "details"):
        history.add_column(col)
    for e in events:
        details = ", ".join(f"{k}={v}" for k, v in _named(e.data, deliveries).items()
                            if v not in (None, "", [], {}))
        history.add_row(str(e.seq), _when(e.at), e.kind, details[:100])
    out.print(history)


@click.command()
@click.option("--loop", is_flag=True, help="Keep running and deliver retries when they are due")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between polls (--loop)")
@click.option("--limit", type=int, help="Stop after this many attempts")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Dispatcher processes working at once (limits per channel type apply "
              "across all of them: [dispatcher.limits.<channel>])")
@click.pass_obj
def deliver(app: Any, loop: bool, interval: float, limit: int | None, workers: int) -> None:
    """Deliver what is due in the outbox (run several at once safely: deliveries are leased)."""
    from gateway.core.dispatcher import Dispatcher

    gw: Gateway = app.gateway
    if workers > 1:
        _deliver_in_processes(app, workers, loop, interval, limit)
        return
    dispatcher = Dispatcher(gw)
    while True:
        due = gw.store.count_due()
        with progress_bar("deliver") as bar:
            task = bar.add_task("deliver", total=due, current="")
            summary = dispatcher.run(limit=limit, on_progress=lambda r, o, t=task: bar.update(
                t, advance=1, current=f"{delivery_name(r)} {o}"))
        if summary.attempted or not loop:
            out.print(f"{summary.delivered} delivered, {summary.retrying} to retry, "
                      f"{summary.failed} failed, {summary.dead} given up", highlight=False)
        if not loop:
            return
        time.sleep(interval)


def _deliver_in_processes(app: Any, workers: int, loop: bool, interval: float,
                          limit: int | None) -> None:
    """Separate processes rather than threads: a channel plugin need not be thread-safe,
    and the leases already make workers on one data directory safe together."""
    import concurrent.futures
    import multiprocessing

    config = app.gateway.config
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_worker, config.data_dir, app.config_file, loop, interval, limit,
                               os.getpid()) for _ in range(workers)]
        totals = [0, 0, 0, 0]
        for future in concurrent.futures.as_completed(futures):
            for i, n in enumerate(future.result()):
                totals[i] += n
    delivered, retrying, failed, dead = totals
    out.print(f"{delivered} delivered, {retrying} to retry, {failed} failed, {dead} given up "
              f"({workers} workers)", highlight=False)


def _worker(data_dir: Any, config_file: Any, loop: bool, interval: float,
            limit: int | None, parent: int) -> tuple[int, int, int, int]:
    from gateway.core.config import load_config
    from gateway.core.dispatcher import Dispatcher

    gw = Gateway(load_config(data_dir, config_file))
    try:
        dispatcher = Dispatcher(gw)
        totals = [0, 0, 0, 0]
        while True:
            summary = dispatcher.run(limit=limit)
            for i, n in enumerate((summary.delivered, summary.retrying, summary.failed,
                                   summary.dead)):
                totals[i] += n
            # A worker whose parent was killed stops too instead of looping on unseen.
            if not loop or os.getppid() != parent:
                return totals[0], totals[1], totals[2], totals[3]
            time.sleep(interval)
    finally:
        gw.close()


@click.command()
@click.argument("deliveries", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="Retry every failed or given-up delivery")
@click.option("--no-deliver", is_flag=True, help="Only queue them")
@click.pass_obj
def retry(app: Any, deliveries: tuple[int, ...], all_failed: bool, no_deliver: bool) -> None:
    """Queue failed deliveries again (ids from 'gateway status --failed') and deliver them."""
    from gateway.core.dispatcher import Dispatcher

    gw: Gateway = app.gateway
    ids = list(deliveries)
    if all_failed:
        ids += [d.id for d in gw.store.deliveries(statuses=[FAILED, DEAD])]
    if not ids:
        raise click.UsageError("give delivery ids or --all-failed")
    count = gw.store.requeue(ids)
    out.print(f"{count} deliveries queued again")
    if not no_deliver and count:
        summary = Dispatcher(gw).run()
        out.print(f"{summary.delivered} delivered, {summary.retrying} to retry, "
                  f"{summary.failed + summary.dead} failed", highlight=False)


@click.command()
@click.pass_obj
def verify(app: Any) -> None:
    """Re-check every archived document against its sha256 and every invoice's history chain.

    Exit code 1 when anything is missing or changed.
    """
    gw: Gateway = app.gateway
    problems = 0
    checked = 0
    for doc in gw.store.all_documents():
        checked += 1
        issue = gw.archive.check(doc.sha256)
        if issue:
            problems += 1
            err.print(f"document {doc.filename} ({doc.format}) of invoice {doc.invoice_id}: "
                      f"{issue}", highlight=False)
    invoices = 0
    offset = 0
    while True:
        batch = gw.store.list_invoices(limit=1000, offset=offset)
        if not batch:
            break
        offset += len(batch)
        for r in batch:
            invoices += 1
            issue = gw.store.verify_events(r.id)
            if issue:
                problems += 1
                err.print(f"history of invoice {r.number}: {issue}", highlight=False)
    out.print(f"checked {checked} documents and the history of {invoices} invoices: "
              f"{problems or 'no'} problem{'s' if problems != 1 else ''}", highlight=False)
    # A write killed halfway leaves its temporary file; never a document, so no problem.
    leftovers = gw.archive.leftovers()
    if leftovers:
        out.print(f"{len(leftovers)} temporary file{'s' if len(leftovers) != 1 else ''} from "
                  f"interrupted writes in {gw.archive.location} (.tmp-*) can be deleted",
                  highlight=False)
    if problems:
        raise SystemExit(1)


def register(cli: click.Group) -> None:
    for command in (status, deliver, retry, verify):
        cli.add_command(command)


def _named(data: dict[str, Any], deliveries: list[Any]) -> dict[str, Any]:
    """An event's data for the table, channel and label first and in today's words:
    events written before core migration 0003 called the label "channel" (``--json``
    shows the data as stored)."""
    if "channel" not in data:
        return data
    channel, label = channel_names(data, deliveries)
    rest = {k: v for k, v in data.items() if k not in ("channel", "channel_type", "label")}
    return {"channel": channel, "label": label, **rest}


def _plain(value: Any) -> str:
    """A receipt value on one line: JSON for lists and dicts, text otherwise."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)
