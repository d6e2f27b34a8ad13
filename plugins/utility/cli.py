"""``gateway utility ...`` (master data, readings, month end) and ``gateway demo``."""

from __future__ import annotations

import datetime as dt
import getpass
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, get_args

import click
from pydantic import ValidationError
from rich.console import Console

from gateway import first_error
from gateway.cli.output import echo
from gateway.errors import GatewayError, InputError
from plugins.utility.dates import Period, local_today
from plugins.utility.models import DisconnectionReason, Reading, SetupFile

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def source_of(app: Any) -> Any:
    return app.gateway.plugins.sources.get("utility")


class PeriodType(click.ParamType):
    name = "YYYY-MM"

    def convert(self, value: Any, param: Any, ctx: Any) -> Period:
        if isinstance(value, Period):
            return value
        try:
            return Period.parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class DecimalType(click.ParamType):
    name = "NUMBER"

    def convert(self, value: Any, param: Any, ctx: Any) -> Decimal:
        try:
            number = Decimal(str(value).replace(",", "."))
        except InvalidOperation:
            self.fail(f"expected a number like 12345 (got {value!r})", param, ctx)
        if not number.is_finite():
            self.fail(f"expected a number like 12345 (got {value!r})", param, ctx)
        return number


DATE = click.DateTime(formats=["%Y-%m-%d", "%d.%m.%Y"])


@click.group()
def utility() -> None:
    """Electricity billing: customers, contracts, metering points, tariffs, readings and
    the month end (one invoice per contract and month, pushed through the gateway)."""


@utility.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def import_setup(app: Any, file: Path) -> None:
    """Load VAT rates, fees, tariffs, customers, contracts and metering points from TOML
    ([[vat]], [[fee]], [[tariff]], [[customer]], [[contract]], [[metering_point]]);
    existing records with the same id are updated."""
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(str(exc), source=str(file)) from None
    try:
        setup = SetupFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = first["loc"]
        where = f"[[{loc[0]}]] #{int(loc[1]) + 1}" if len(loc) > 1 else str(loc[0])
        field = ".".join(str(p) for p in loc[2:]) or "(entry)"
        raise InputError(f"{where}, field {field}: {first['msg']}", source=str(file)) from None
    counts = load_setup(source_of(app).store, setup)
    out.print(", ".join(f"{n} {kind}" for kind, n in counts.items()) + f" loaded from {file}")


def load_setup(store: Any, setup: SetupFile) -> dict[str, int]:
    for v in setup.vat:
        store.put_vat_rate(v)
    for f in setup.fee:
        store.put_fee(f)
    for t in setup.tariff:
        store.put_tariff(t)
    for c in setup.customer:
        store.put_customer(c)
    for k in setup.contract:
        store.put_contract(k)
    for mp in setup.metering_point:
        store.put_metering_point(mp)
    return {"VAT rates": len(setup.vat), "fees": len(setup.fee),
            "tariff prices": len(setup.tariff),
            "customers": len(setup.customer), "contracts": len(setup.contract),
            "metering points": len(setup.metering_point)}


@utility.group()
def reading() -> None:
    """Meter readings: add one, import a CSV file, list a metering point's readings."""


@reading.command("add")
@click.argument("metering_point")
@click.argument("value", type=DecimalType())
@click.option("--date", "day", type=DATE, help="The meter's date of the reading [default: "
              "today]; kept as information: the reading window is judged by today, the day "
              "it arrives")
@click.option("--correct-history", "correction", metavar="REASON",
              help="Operator correcting history: the reading counts for the window of its "
              "--date instead of today's; REASON is recorded with it")
@click.option("--meter-change", is_flag=True, help="The meter was replaced; VALUE is the new "
              "meter's reading")
@click.option("--old-final", type=DecimalType(), help="Meter change: the old meter's last "
              "value [default: the previous reading]")
@click.option("--new-start", type=DecimalType(), default="0", show_default=True,
              help="Meter change: the new meter's value when fitted")
@click.option("--new-meter", help="Meter change: the new meter's number")
@click.option("--by", help="Who sent the reading [default: your user name]")
@click.pass_obj
def reading_add(app: Any, metering_point: str, value: Decimal, day: dt.datetime | None,
                meter_change: bool, old_final: Decimal | None, new_start: Decimal,
                new_meter: str | None, by: str | None, correction: str | None) -> None:
    """Record a reading of METERING_POINT (a zero consumption must be reported too)."""
    source = source_of(app)
    when = day.date() if day else source.today()
    try:
        r = Reading(metering_point=metering_point, date=when, value=value,
                    meter_change=meter_change, old_meter_final=old_final,
                    new_meter_start=new_start, new_meter=new_meter, by=by or _user(),
                    how="cli", correction=correction)
    except ValidationError as exc:
        loc, msg = first_error(exc)
        raise click.BadParameter(f"{loc}: {msg}") from None
    outcome = source.store.add_reading(r, today=source.today())
    _print_outcome(outcome)


def _print_outcome(outcome: Any, prefix: str = "") -> None:
    r = outcome.reading
    if outcome.status == "unchanged":
        out.print(f"{prefix}= {r.mp} {r.date}: {r.value} was already recorded")
        return
    out.print(f"{prefix}✓ {r.mp} {r.date}: {r.value} kWh (consumption {outcome.consumption} "
              f"kWh), counts for {r.period}")
    if outcome.message:
        out.print(f"{prefix}  note: {outcome.message}")


@reading.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--by", help="Who sent the file [default: your user name]")
@click.option("--correct-history", "correction", metavar="REASON",
              help="Operator correcting history: every row counts for the window of its "
              "date instead of today's; REASON is recorded with each")
@click.pass_obj
def reading_import(app: Any, file: Path, by: str | None, correction: str | None) -> None:
    """Import readings from CSV (metering_point,date,value[,meter_change,old_meter_final,
    new_meter_start,new_meter,by]). Each row is accepted or refused on its own; exit
    code 1 if any row was refused."""
    from plugins.utility.readings_csv import import_csv

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(exc.strerror or str(exc), source=str(file)) from None
    source = source_of(app)
    results = import_csv(source.store, data, source=str(file), by=by or _user(),
                         today=source.today(), correction=correction)
    refused = 0
    for result in results:
        if result.outcome is not None:
            _print_outcome(result.outcome, prefix=f"row {result.row}: ")
        else:
            refused += 1
            err.print(f"✗ {result.error}")
    accepted = sum(1 for r in results if r.outcome and r.outcome.status == "accepted")
    out.print(f"{accepted} accepted, {len(results) - accepted - refused} already known, "
              f"{refused} refused")
    if refused:
        raise SystemExit(1)


def _known(app: Any, kind: str, key: str) -> Any:
    """The utility store, once ``key`` is a known contract or metering point."""
    store = source_of(app).store
    get = store.get_contract if kind == "contract" else store.get_metering_point
    if get(key) is None:
        raise GatewayError(f"no {kind} {key!r}")
    return store


@reading.command("list")
@click.argument("metering_point")
@click.pass_obj
def reading_list(app: Any, metering_point: str) -> None:
    """Every reading of METERING_POINT with who sent it and how."""
    store = _known(app, "metering point", metering_point)
    # One line a reading (a table of ten columns is unreadable on 80 columns).
    out.print(f"Readings of {metering_point}: date (arrived) value [register] → the "
              "invoice it counts for, how it arrived")
    for r in store.readings(metering_point):
        change = ", meter change" if r.meter_change else ""
        line = (f"{r.date.isoformat()} (arrived {r.arrived.isoformat()}) {r.value} "
                f"[{r.cumulative}] → {r.period}, {r.timing or 'on-time'}{change}, via "
                f"{r.how} by {r.by}")
        if r.correction:
            line += f", correction: {r.correction}"
        out.print(line + (f"\n    {r.message}" if r.message else ""))


@utility.command("disconnection")
@click.argument("contract")
@click.option("--date", "day", type=DATE, help="Day of the disconnection [default: today]")
@click.option("--reason", required=True,
              type=click.Choice(get_args(DisconnectionReason)),
              help="Why the supply was cut off; only late-payment counts towards the "
              "reconnection fee")
@click.pass_obj
def disconnection(app: Any, contract: str, day: dt.datetime | None, reason: str) -> None:
    """Record that the supply of CONTRACT was cut off, and why."""
    from plugins.utility.supply import disconnect

    when = day.date() if day else source_of(app).today()
    d = disconnect(source_of(app).store, contract, when, reason, by=_user())  # type: ignore[arg-type]
    out.print(f"disconnection of {contract} on {d.date} ({d.reason}) recorded")


@utility.command("reconnection")
@click.argument("contract")
@click.option("--date", "day", type=DATE, help="Day of the reconnection [default: today]")
@click.pass_obj
def reconnection(app: Any, contract: str, day: dt.datetime | None) -> None:
    """Record the reconnection of CONTRACT. The next invoice bills the reconnection fee
    only when the terms say so (a household, disconnected for late payment again within
    a year); the answer says which and why."""
    from plugins.utility.supply import reconnect

    when = day.date() if day else source_of(app).today()
    r = reconnect(source_of(app).store, contract, when, by=_user())
    after = "; the next invoice bills it" if r.fee else ""
    out.print(f"reconnection of {contract} on {r.date} recorded — {r.reason}{after}")


@utility.command("supply")
@click.argument("contract")
@click.pass_obj
def supply(app: Any, contract: str) -> None:
    """Disconnections and reconnections of CONTRACT, with the fee decisions."""
    store = _known(app, "contract", contract)
    out.print(f"Supply of {contract}:")
    events = [(d.date, 0, f"disconnected ({d.reason}) by {d.by}")
              for d in store.disconnections(contract)]
    events += [(r.date, 1, f"reconnected by {r.by} — {r.reason}"
                + (f"; billed in {r.billed_in}" if r.billed_in else ""))
               for r in store.reconnections(contract)]
    for day, _, text in sorted(events):
        out.print(f"{day.isoformat()} {text}")


@utility.command("bill")
@click.argument("period", type=PeriodType())
@click.option("--as-of", type=DATE, help="Issue what is due by this day [default: today]")
@click.option("--no-deliver", is_flag=True, help="Only push; deliver later with "
              "'gateway deliver'")
@click.pass_obj
def bill(app: Any, period: Period, as_of: dt.datetime | None, no_deliver: bool) -> None:
    """Month end for PERIOD (YYYY-MM): one invoice per contract, pushed through the gateway
    to every format and channel its customer chose. Invoices whose issue date is later
    than --as-of wait for a later run; a rerun never issues anything twice."""
    from plugins.utility.run import run_month

    gw = app.gateway
    summary = run_month(gw, source_of(app).biller(), period,
                        as_of=as_of.date() if as_of else local_today(),
                        deliver=not no_deliver)
    print_summary(summary)
    if summary.errors:
        raise SystemExit(1)


def print_summary(summary: Any) -> None:
    for draft in summary.errors:
        err.print(f"✗ {draft.message}")
    out.print(
        f"{summary.period}: {len(summary.issued)} invoices issued ({summary.estimated} "
        f"estimated, {summary.settled} settling an estimate, {summary.credit_notes} credit "
        f"notes, {summary.paper} with the paper fee, {summary.reconnections} reconnection "
        f"fees), {summary.already} issued before, "
        f"{len(summary.waiting)} waiting for their issue date, {len(summary.errors)} errors")
    if summary.waiting:
        dates = sorted({d.plan.scheduled_issue for d in summary.waiting
                        if d.plan is not None})
        shown = ", ".join(f"{d.contract} ({d.plan.scheduled_issue})"
                          for d in summary.waiting[:5]
                          if d.plan is not None)
        more = f" and {len(summary.waiting) - 5} more" if len(summary.waiting) > 5 else ""
        out.print(f"waiting: {shown}{more}; run again on or after {dates[0]}")
    if summary.delivered or summary.delivery_problems:
        out.print(f"deliveries: {summary.delivered} delivered, {summary.delivery_problems} "
                  "to retry or failed (see 'gateway status --failed')")


@utility.command("contracts")
@click.pass_obj
def contracts(app: Any) -> None:
    """Contracts with their metering points, payment term and last invoice. The term is
    the one the customer gets as delivered (paper or e-invoice), in days from the issue
    day: e-invoices add 5 days to the contract's base term, up to 20 days, never fewer
    than on paper."""
    source = source_of(app)
    store = source.store
    biller = source.biller()
    today = local_today()
    customers = store.customers()
    for c in store.contracts():
        last = store.last_issued(c.number)
        name = customers[c.customer].name if c.customer in customers else c.customer
        gw_customer = app.gateway.store.get_customer(c.customer)
        points = ", ".join(f"{mp.id} ({mp.tariff})" for mp in store.metering_points(c.number))
        default = "" if c.payment_term_days else " (default)"
        term = term_text(biller, c, gw_customer.paper if gw_customer else None,
                         Period.of(today).shift(-1))
        invoice = f"{last.number} ({last.period})" if last else "-"
        out.print(f"[bold]{c.number}[/bold] {name}, since {c.start.isoformat()}\n"
                  f"    metering points: {points}\n"
                  f"    base term: {biller.base_term(c)} days{default}; payment term: {term}\n"
                  f"    last invoice: {invoice}")


def term_text(biller: Any, contract: Any, paper: bool | None, period: Period) -> str:
    """The payment term a customer gets, in words: 'e-invoice: 20 days (15 + 5)'."""
    from plugins.utility.dates import e_invoice_term_days

    base = biller.base_term(contract)
    paper_days = biller.paper_term(contract, period)
    e_days = e_invoice_term_days(base, paper_days)
    if paper is None:
        return "not a gateway customer"
    if paper:
        return f"paper: end of month, at least {base} days ({paper_days} for {period})"
    extended = min(base + 5, 20)
    if e_days == paper_days and paper_days > max(base, extended):
        why = f"as on paper for {period}"
    elif e_days == base + 5:
        why = f"{base} + 5"
    elif e_days == extended:
        why = f"{base} + {extended - base}, at most 20"
    else:
        why = "the base term"
    return f"e-invoice: {e_days} days ({why})"


@utility.group()
def token() -> None:
    """API tokens for the readings API ('gateway serve readings')."""


@token.command("add")
@click.argument("name")
@click.pass_obj
def token_add(app: Any, name: str) -> None:
    """Make a token for NAME (recorded as who sent each reading); shown once."""
    import secrets

    from plugins.utility.api import token_hash

    value = secrets.token_urlsafe(32)
    source_of(app).store.add_token(name, token_hash(value))
    out.print(f"API token for {name} (shown once, store it safely):\n{value}")


@token.command("revoke")
@click.argument("name")
@click.pass_obj
def token_revoke(app: Any, name: str) -> None:
    """Revoke the token of NAME."""
    if not source_of(app).store.revoke_token(name):
        raise GatewayError(f"no API token named {name!r}")
    out.print(f"token of {name} revoked")


@click.command("readings")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8091, show_default=True, type=int)
@click.pass_obj
def serve_readings(app: Any, host: str, port: int) -> None:
    """Run the readings HTTP API (POST /readings; tokens: 'gateway utility token add')."""
    import uvicorn

    from plugins.utility.api import create_app

    source = source_of(app)
    web = create_app(source.data_dir / source.settings.database)
    echo(f"readings API on http://{host}:{port}/readings (description: /openapi.json)")
    uvicorn.run(web, host=host, port=port, log_level="warning", access_log=False)


@click.command()
@click.option("--quiet", is_flag=True, help="Only the summary")
@click.pass_obj
def demo(app: Any, quiet: bool) -> None:
    """Run the whole gateway on demo data: a handful of electricity customers, a year of
    meter readings, then two month ends (September and October 2026) through every
    format and channel that is installed. Uses the data directory (--data-dir)."""
    from plugins.utility.demo import run_demo

    run_demo(app.gateway, source_of(app), out, quiet=quiet)
