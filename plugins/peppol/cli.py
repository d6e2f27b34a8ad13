"""Commands: ``gateway peppol lookup|inbox|process|report`` and ``gateway serve peppol``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from gateway import first_error
from gateway.cli.output import echo
from gateway.errors import ConfigError, GatewayError
from plugins.peppol.settings import PeppolSettings


def settings_of(gw: Any) -> PeppolSettings:
    try:
        return PeppolSettings.model_validate(gw.config.plugin_settings("peppol"))
    except ValidationError as exc:
        loc, msg = first_error(exc)
        raise ConfigError(f"[plugins.peppol] {loc}: {msg}") from None


def _ap(gw: Any) -> Any:
    from plugins.peppol.access_point import access_point

    return access_point(settings_of(gw), gw.config.data_dir)


@click.group("peppol")
def peppol() -> None:
    """The Peppol network: look participants up, see received messages, monthly reports."""


@peppol.command("lookup")
@click.argument("participant")
@click.option("--doctype", default="invoice", show_default=True,
              help="'invoice', 'credit-note' or a full busdox-docid-qns identifier")
@click.option("--process", default=None, help="Process id [default: BIS Billing 3.0]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON")
@click.pass_obj
def lookup_cmd(app: Any, participant: str, doctype: str, process: str | None,
               as_json: bool) -> None:
    """Ask the SML and the participant's SMP where PARTICIPANT (e.g. 0218:40003009497)
    receives a document type, and print the verified endpoint."""
    from plugins.peppol.identifiers import ParticipantId, resolve_doctype
    from plugins.peppol.lookup import load_trust, lookup
    from plugins.peppol.sml import LookupFailed, NotRegistered, dns_name
    from plugins.peppol.smp import BadMetadata

    gw = app.gateway
    settings = settings_of(gw)
    pid = ParticipantId.parse(participant)
    document_type = resolve_doctype(doctype)
    try:
        endpoint = lookup(pid, document_type, process or settings.process, settings=settings,
                          trust=load_trust(settings, gw.config.data_dir))
    except NotRegistered as exc:
        raise GatewayError(f"not registered: {exc}") from None
    except LookupFailed as exc:
        raise GatewayError(f"lookup failed (try again): {exc}") from None
    except BadMetadata as exc:
        raise GatewayError(f"untrusted or unreadable SMP answer: {exc}") from None
    info = {"dns_name": dns_name(pid, settings.zone()), **endpoint.describe()}
    if as_json:
        echo(json.dumps(info, indent=2), keep_newlines=True)
    else:
        width = max(map(len, info))
        for key, value in info.items():
            echo(f"{key:<{width}}  {value}")


@peppol.command("receipt")
@click.argument("message_id")
@click.pass_obj
def receipt_cmd(app: Any, message_id: str) -> None:
    """Prove a sent message: check its stored receipt again against what was signed."""
    import hashlib

    from plugins.peppol.transport import Outgoing, SendFailed, verify_receipt

    gw = app.gateway
    ap = _ap(gw)
    path = ap.outbox_dir / f"{message_id.split('@', 1)[0]}.json"
    if not path.exists():
        raise GatewayError(f"no sent message {message_id} in {ap.outbox_dir}")
    outgoing = Outgoing.from_json(path.read_text(encoding="utf-8"))
    record = next((d for d in gw.store.deliveries(statuses=["delivered"])
                   if d.receipt_id == f"peppol:{outgoing.message_id}"), None)
    if record is None:
        raise GatewayError(f"message {message_id} has no recorded receipt (not delivered yet)")
    digest = next(iter(record.receipt["recipients"].values())).removeprefix("receipt sha256:")
    receipt = (ap.receipts_dir / f"{digest}.xml").read_bytes()
    if hashlib.sha256(receipt).hexdigest() != digest:
        raise GatewayError(f"the stored receipt {digest} does not match its digest")
    try:
        ack = verify_receipt(outgoing, receipt, ap.credentials)
    except SendFailed as exc:
        raise GatewayError(f"the stored receipt does not prove delivery: {exc}") from None
    echo(f"message {outgoing.message_id} (invoice {record.invoice_id}, delivery "
               f"{record.id}) to {outgoing.url}: receipt {ack.receipt_message_id} signed by "
               f"the receiving access point acknowledges everything that was signed "
               f"(sha256 {digest})")


@peppol.command("inbox")
@click.option("--status", type=click.Choice(["stored", "accepted", "rejected"]),
              help="Only messages in this state")
@click.pass_obj
def inbox_cmd(app: Any, status: str | None) -> None:
    """Messages received over Peppol and what became of them."""
    from plugins.peppol.store import PeppolStore

    store = PeppolStore(app.gateway.config.data_dir / "peppol.db")  # no key needed to look
    try:
        records = store.inbox(statuses=(status,) if status else ())
    finally:
        store.close()
    for r in records:
        fatal = sum(1 for f in r.finding_list if f.get("severity") == "fatal")
        echo(f"{r.message_id}  {r.status:<8}  from {r.sender} ({r.sending_ap}) to "
                   f"{r.receiver}  customer={r.customer_id or '-'}  "
                   f"findings={len(r.finding_list)} ({fatal} fatal)"
                   + (f"  error: {r.error}" if r.error else ""))
    if not records:
        echo("no messages", err=True)


@peppol.command("process")
@click.option("--deliver/--no-deliver", default=True, show_default=True)
@click.pass_obj
def process_cmd(app: Any, deliver: bool) -> None:
    """Push stored received messages through the pipeline (the server does this itself;
    use after a crash or with 'serve peppol --no-process')."""
    from gateway.core.dispatcher import Dispatcher
    from plugins.peppol.incoming import process_pending

    gw = app.gateway
    counts = process_pending(gw, _ap(gw))
    if deliver:
        Dispatcher(gw).run()
    echo(", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing to do")


@peppol.command("report")
@click.argument("month", metavar="YYYY-MM")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for the two XML reports [default: print a summary only]")
@click.pass_obj
def report_cmd(app: Any, month: str, out: Path | None) -> None:
    """The monthly Peppol reports (end-user statistics, transaction statistics) for MONTH."""
    from plugins.peppol.reports import month_bounds, monthly_reports

    month_bounds(month)  # a typo in the month is the first thing to report
    gw = app.gateway
    ap = _ap(gw)
    reports = monthly_reports(ap.store, month, reporter=ap.credentials.seat_id,
                              sent_deliveries=gw.store.deliveries(statuses=["delivered"]))
    for name, report in reports.items():
        echo(f"{name}: {report.summary}")
        if out is not None:
            from gateway import atomic_write

            path = out / f"{name}-{month}.xml"
            atomic_write(path, report.xml)
            echo(f"  written to {path}")


@click.command("peppol")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8443, show_default=True, type=click.IntRange(0, 65535))
@click.option("--deliver/--no-deliver", default=True, show_default=True,
              help="Deliver received invoices to customers at once")
@click.option("--process/--no-process", default=True, show_default=True,
              help="Push received messages through the pipeline at once (else they wait "
              "for 'gateway peppol process')")
@click.pass_obj
def serve_peppol(app: Any, host: str, port: int, deliver: bool, process: bool) -> None:
    """Receive AS4 messages at http://HOST:PORT/as4 (put TLS in front of it)."""
    import uvicorn

    from gateway.core.config import load_config
    from gateway.core.pipeline import Gateway
    from plugins.peppol.server import Processor, create_app

    gw = app.gateway
    ap = _ap(gw)
    config = gw.config
    processor = Processor(lambda: Gateway(load_config(config.data_dir, app.config_file),
                                          app.plugins), ap, deliver=deliver) if process else None
    if processor is not None:
        processor.start()
    echo(f"Peppol AS4 endpoint http://{host}:{port}/as4 as {ap.credentials.seat_id}",
               err=True)
    try:
        uvicorn.run(create_app(gw, ap, processor=processor), host=host, port=port,
                    log_level="warning", access_log=False)
    finally:
        if processor is not None:
            processor.stop()


def register(cli: click.Group) -> None:
    if "peppol" not in cli.commands:
        cli.add_command(peppol)
    serve = cli.commands.get("serve")
    if isinstance(serve, click.Group) and "peppol" not in serve.commands:
        serve.add_command(serve_peppol)
