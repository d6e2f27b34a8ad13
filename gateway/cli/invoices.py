"""Commands that take invoices in: push, validate, render, convert, schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway.cli.output import delivery_name, echo, err, out
from gateway.core import limits
from gateway.core.documents import Document
from gateway.core.model import Invoice
from gateway.core.pipeline import Gateway, PushResult
from gateway.core.validation import complete
from gateway.errors import Finding, GatewayError, InputError, InvoiceRejected


def expand(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given; directories contribute their visible files, sorted."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir()
                                if p.is_file() and not p.name.startswith(".")))
        else:
            files.append(path)
    return files


def progress_bar(description: str) -> Progress:
    return Progress(TextColumn(f"[bold]{description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[current]}"), TimeElapsedColumn(),
                    console=err, transient=True, disable=not err.is_terminal)


def read_invoices(gw: Gateway, path: Path) -> Iterator[Invoice | GatewayError]:
    """Invoices from a file, with unreadable ones (or the whole file) as errors."""
    try:
        yield from gw.read_file(path)
    except InputError as exc:
        yield exc


def print_error(error: GatewayError) -> None:
    # Plain lines, never wrapped: operators grep these and paste them into tickets.
    if isinstance(error, InvoiceRejected):
        echo(f"✗ {_who(error)}", err=True)
        for finding in error.findings:
            echo(f"    {finding}", err=True)
    else:
        echo(f"✗ {error}", err=True)


def _who(error: InvoiceRejected) -> str:
    parts = [error.source or "", f"invoice {error.invoice}" if error.invoice else ""]
    return " ".join(p for p in parts if p) or "invoice"


@click.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--customer", help="Deliver to this customer instead of matching the buyer")
@click.option("--no-deliver", is_flag=True, help="Only accept and queue; deliver later with "
              "'gateway deliver'")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON result per invoice")
@click.option("--queue", "use_queue", is_flag=True, help="Check and store the invoices, then "
              "leave rendering and delivery to 'gateway worker' processes ([queue] section)")
@click.pass_obj
def push(app: Any, files: tuple[Path, ...], customer: str | None, no_deliver: bool,
         as_json: bool, use_queue: bool) -> None:
    """Accept invoices (JSON, and every format a plugin can read), render, archive, deliver.

    A bad invoice is reported with the rule and field it breaks; the others still go
    through. Exit code 1 if any invoice was refused.
    """
    from gateway.core.dispatcher import Dispatcher

    gw: Gateway = app.gateway
    celery_app = None
    if use_queue:
        from gateway.workers import make_celery

        celery_app = make_celery(gw.config)  # no [queue] section: one clear error, now
        no_deliver = True
    paths = expand(files)
    results: list[PushResult] = []
    with progress_bar("push") as bar:
        task = bar.add_task("push", total=len(paths), current="")

        def readable() -> Iterator[tuple[Invoice, str]]:
            # Invoices go on to push_many, which renders a batch of them at a time in
            # the formats' process pools; unreadable ones are reported here.
            for path in paths:
                bar.update(task, current=path.name)
                for item in read_invoices(gw, path):
                    if isinstance(item, Invoice):
                        yield item, str(path)
                    else:
                        number = item.invoice if isinstance(item, InvoiceRejected) else None
                        results.append(PushResult("rejected", number, str(path), error=item))
                bar.advance(task)

        if use_queue:  # nothing is rendered here, so nothing to render ahead
            results.extend(gw.push(invoice, source=source, customer_id=customer,
                                   render_later=True) for invoice, source in readable())
        else:
            results.extend(gw.push_many(readable(), customer_id=customer))
    if celery_app is not None:
        _queue_renders(celery_app, [r.invoice_id for r in results
                                    if r.status == "queued" and r.invoice_id])
    summary = None
    if not no_deliver:
        due = gw.store.count_due()
        with progress_bar("deliver") as bar:
            task = bar.add_task("deliver", total=due, current="")

            def advance(record: Any, outcome: str) -> None:
                bar.update(task, advance=1, current=f"{delivery_name(record)} {outcome}")

            summary = Dispatcher(gw).run(on_progress=advance)
    for result in results:
        if result.error is not None:
            print_error(result.error)
    if as_json:
        for r in results:
            click.echo(json.dumps({"status": r.status, "number": r.number, "source": r.source,
                                   "id": r.invoice_id, "customer": r.customer_id,
                                   "error": str(r.error) if r.error else None}))
    else:
        _push_table(gw, results)
        counts = {s: sum(1 for r in results if r.status == s)
                  for s in ("accepted", "queued", "unchanged", "rejected")}
        if not counts["queued"]:
            del counts["queued"]
        line = ", ".join(f"{n} {s}" for s, n in counts.items())
        if summary is not None:
            line += (f"; deliveries: {summary.delivered} delivered, {summary.retrying} to retry, "
                     f"{summary.failed + summary.dead} failed")
        out.print(line, highlight=False)
    if any(r.status == "rejected" for r in results):
        raise SystemExit(1)


def _queue_renders(celery_app: Any, invoice_ids: list[str]) -> None:
    """Hand the stored invoices to the workers; a broker that is away loses nothing."""
    from gateway.workers import QueueUnavailable, enqueue_renders

    try:
        enqueue_renders(celery_app, invoice_ids)
    except QueueUnavailable as exc:
        err.print(f"warning: {exc}; the {len(invoice_ids)} invoices are stored and the "
                  "workers' next sweep renders them", highlight=False)


TABLE_ROWS = 40


def _push_table(gw: Gateway, results: list[PushResult]) -> None:
    """One row per invoice for a small push; for a big batch the refused ones first and
    a count of the rest (a 100,000-invoice table helps nobody)."""
    shown = results
    if len(results) > TABLE_ROWS:
        refused = [r for r in results if r.status == "rejected"]
        shown = (refused + [r for r in results if r.status != "rejected"])[:TABLE_ROWS]
    table = Table(title="Pushed invoices", show_lines=False,
                  caption=f"{len(results) - len(shown)} more not shown; see 'gateway status'"
                  if len(shown) < len(results) else None)
    for col in ("invoice", "source", "status", "customer", "deliveries"):
        table.add_column(col)
    for r in shown:
        deliveries = ""
        if r.invoice_id:
            deliveries = ", ".join(f"{delivery_name(d)}: {d.status}"
                                   for d in gw.store.deliveries(invoice_id=r.invoice_id))
        style = {"accepted": "green", "queued": "cyan", "unchanged": "dim",
                 "rejected": "red"}[r.status]
        table.add_row(r.number or "?", Path(r.source).name, f"[{style}]{r.status}[/{style}]",
                      r.customer_id or "", deliveries or "-")
    out.print(table)


@click.command()
@click.argument("files", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print findings as JSON lines")
@click.option("--versions", is_flag=True,
              help="Print the rule set, version and source of every check, then exit")
@click.pass_obj
def validate(app: Any, files: tuple[Path, ...], as_json: bool, versions: bool) -> None:
    """Check invoices by the official rules: schema (XSD), EN 16931 and Peppol schematron
    for XML, and the model and calculation rules for every format.

    Exit code 0 only when no file has a fatal finding.
    """
    gw: Gateway = app.gateway
    if versions:
        _print_versions(gw, as_json)
        return
    if not files:
        raise click.UsageError("give the files to check (or --versions)")
    any_fatal = False
    for path in expand(files):
        fatal = 0
        for f in _validate_file(gw, path):
            fatal += f.fatal
            if as_json:
                click.echo(json.dumps({"file": str(path), "rule": f.rule, "severity": f.severity,
                                       "location": f.path, "term": f.term,
                                       "message": f.message}, ensure_ascii=False))
            else:
                echo(f"{path}: {f.severity} {f}", err=True)
        any_fatal |= bool(fatal)
        if not as_json:
            verdict = "[green]valid[/green]" if not fatal else f"[red]{fatal} fatal[/red]"
            out.print(f"{path}: {verdict}", highlight=False)
    if any_fatal:
        raise SystemExit(1)


def _print_versions(gw: Gateway, as_json: bool) -> None:
    """Each validating format's checks: which rule set, which version, from where.

    A format says so through an optional ``versions()`` returning dicts with ``check``,
    ``rules``, ``version`` and ``source`` (``source`` empty: the check cannot run)."""
    for fmt in gw.plugins.formats:
        for row in getattr(fmt, "versions", list)():
            if as_json:
                click.echo(json.dumps({"format": fmt.name, **row}, ensure_ascii=False))
            elif row.get("source"):
                click.echo(f"{fmt.name}: {row['check']}: {row['rules']} {row['version']} "
                           f"({row['source']})")
            else:
                click.echo(f"{fmt.name}: {row['check']}: CANNOT RUN — {row['missing']}")


def _validate_file(gw: Gateway, path: Path) -> Iterator[Finding]:
    """Findings of one file, invoice by invoice: a CSV of many invoices is streamed, so
    validating it takes the memory of one invoice, not of the file."""
    source = str(path)
    try:
        fmt = gw.detect_file(path)
        findings: list[Finding] = []
        if getattr(fmt, "can_validate", False):
            # A format with its own validator (XML, Factur-X) reads a file whole anyway.
            limits.check_file_size(path.stat().st_size, source=source)
            findings.extend(fmt.validate(path.read_bytes()))
        validated_fatal = any(f.fatal for f in findings)
    except OSError as exc:
        yield Finding("GW-INPUT", "", f"{source}: {exc.strerror or exc}")
        return
    except InputError as exc:
        yield Finding("GW-INPUT", "", str(exc))
        return
    try:
        for item in gw.read_file(path):
            if isinstance(item, InvoiceRejected):
                findings.extend(item.findings)
            else:
                try:
                    complete(item)
                except InvoiceRejected as exc:
                    findings.extend(exc.findings)
            yield from _dedupe(findings)
            findings = []
    except InputError as exc:
        # The format's own validator already said why the document cannot be read (an
        # unsafe DOCTYPE, say): the reader's refusal of the same would say it twice.
        if not validated_fatal:
            findings.append(Finding("GW-INPUT", "", str(exc)))
    yield from _dedupe(findings)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for f in findings:
        if (f.rule, f.path) not in seen:
            seen.add((f.rule, f.path))
            unique.append(f)
    return unique


def _complete_invoices(gw: Gateway, path: Path) -> Iterator[Invoice]:
    for item in read_invoices(gw, path):
        if isinstance(item, GatewayError):
            raise item
        yield complete(item, source=str(path))


class OutputNames:
    """The names written into a directory in this run: a document whose name is taken
    (two invoices of one file with the same number, say) gets ``-2``, ``-3``, and the
    operator is told, instead of the first file being overwritten without a word."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.used: set[str] = set()

    def target(self, filename: str) -> Path:
        name, n = filename, 1
        stem, dot, ext = filename.rpartition(".")
        while name in self.used:
            n += 1
            name = f"{stem}-{n}{dot}{ext}" if dot else f"{filename}-{n}"
        if name != filename:
            echo(f"note: {filename} was already written in this run; this one is {name}",
                 err=True)
        self.used.add(name)
        return self.directory / name


def _write(path: Path, content: bytes) -> None:
    from gateway.core.fsutil import atomic_write

    atomic_write(path, content)
    out.print(f"wrote {path} ({len(content):,} bytes)", highlight=False)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "-f", "format_names", multiple=True, required=True,
              help="Format to render (repeatable), e.g. pdf, ubl, cii, csv")
@click.option("-o", "--output", "output_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Directory to write into")
@click.option("--language", type=click.Choice(["lv", "en"]), default="en", show_default=True)
@click.pass_obj
def render(app: Any, file: Path, format_names: tuple[str, ...], output_dir: Path,
           language: str) -> None:
    """Render the invoices in FILE without storing or delivering them."""
    gw: Gateway = app.gateway
    names = OutputNames(output_dir)
    for invoice in _complete_invoices(gw, file):
        for name in format_names:
            doc: Document = gw.render(invoice, name, language=language)
            _write(names.target(doc.filename), doc.content)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", "format_name", required=True, help="Target format, e.g. cii, ubl, json")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True,
              help="Output file (one invoice) or directory (several)")
@click.option("--language", type=click.Choice(["lv", "en"]), default="en", show_default=True)
@click.option("--allow-loss", is_flag=True,
              help="Convert even when the target cannot carry every term or element of the "
                   "source (each one dropped is logged); without it such a conversion fails "
                   "with the list of what would be lost")
@click.option("--specification-id", default=None,
              help="BT-24 of the output (e.g. urn:cen.eu:en16931:2017 to drop a Peppol or "
                   "XRechnung claim the source made); by default the source's own is kept")
@click.pass_obj
def convert(app: Any, file: Path, format_name: str, output: Path, language: str,
            allow_loss: bool, specification_id: str | None) -> None:
    """Convert FILE (any readable format) to another format."""
    gw: Gateway = app.gateway
    invoices = list(_complete_invoices(gw, file))
    if not invoices:
        raise GatewayError(f"{file}: no invoices found")
    names = OutputNames(output)
    for invoice in invoices:
        options: dict[str, Any] = {"allow_loss": True} if allow_loss else {}
        if specification_id:
            options["specification_id"] = specification_id
        doc = gw.render(invoice, format_name, language=language, options=options or None)
        target = names.target(doc.filename) if (len(invoices) > 1 or output.is_dir()) \
            else output
        _write(target, doc.content)


@click.command()
def schema() -> None:
    """Print the JSON Schema of the invoice input model (for billing systems)."""
    from gateway.core.model import Invoice

    click.echo(json.dumps(Invoice.model_json_schema(), indent=2, ensure_ascii=False))


def register(cli: click.Group) -> None:
    for command in (push, validate, render, convert, schema):
        cli.add_command(command)
