"""``gateway customer``: the customer registry and each customer's preferences."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import typing
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from gateway.cli.output import echo, out
from gateway.core.customers import ChannelPreference, Customer, load_customers_toml
from gateway.core.pipeline import Gateway
from gateway.core.validation import first_error
from gateway.errors import ConfigError

CHANNEL_HELP = (
    "A channel as 'TYPE key=value ...', repeatable; e.g. \"email to=a@b.lv,c@d.lv "
    "fallback=portal\" or \"folder path=/srv/erp/in\". The keys name, formats and fallback "
    "are preferences; all other keys are the channel's settings (comma = list)."
)


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def parse_channel(gw: Gateway, spec: str) -> ChannelPreference:
    """'email to=a@b.lv,c@d.lv fallback=portal' → ChannelPreference."""
    parts = spec.split()
    if not parts:
        raise click.BadParameter("empty channel")
    kind, pairs = parts[0], parts[1:]
    channel = gw.plugins.channels.get(kind)
    fields = channel.Settings.model_fields
    pref: dict[str, Any] = {"channel": kind}
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} in {spec!r} is not key=value")
        if key in ("name", "fallback"):
            pref[key] = value
        elif key == "formats":
            pref[key] = [v for v in value.split(",") if v]
        else:
            field = fields.get(key)
            is_list = field is not None and typing.get_origin(field.annotation) is list
            settings[key] = [v for v in value.split(",") if v] if is_list else value
    pref["settings"] = settings
    return ChannelPreference.model_validate(pref)


@click.group()
def customer() -> None:
    """Manage customers: formats, channels, language, fallbacks, paper."""


@customer.command("add")
@click.argument("customer_id")
@click.option("--name", required=True)
@click.option("--language", type=click.Choice(["lv", "en"]), default="lv", show_default=True)
@click.option("--format", "formats", multiple=True, help="Format to render (repeatable)")
@click.option("--channel", "channels", multiple=True, help=CHANNEL_HELP)
@click.option("--match", multiple=True, help="Buyer VAT/registration id or reference that "
              "routes invoices to this customer (repeatable)")
@click.option("--paper/--no-paper", default=False, help="Also receives paper invoices")
@click.pass_obj
def add(app: Any, customer_id: str, name: str, language: str, formats: tuple[str, ...],
        channels: tuple[str, ...], match: tuple[str, ...], paper: bool) -> None:
    """Add a customer."""
    gw: Gateway = app.gateway
    if gw.store.get_customer(customer_id) is not None:
        raise ConfigError(f"customer {customer_id!r} exists; change it with 'gateway customer set'")
    data: dict[str, Any] = {"id": customer_id, "name": name, "language": language,
                            "paper": paper, "match": list(match)}
    if formats:
        data["formats"] = list(formats)
    data["channels"] = [parse_channel(gw, c) for c in channels]
    _save(gw, _validated(data))
    out.print(f"customer {customer_id} added")


@customer.command("set")
@click.argument("customer_id")
@click.option("--name")
@click.option("--language", type=click.Choice(["lv", "en"]))
@click.option("--format", "formats", multiple=True, help="Replace the formats (repeatable)")
@click.option("--channel", "channels", multiple=True, help="Replace the channels. " + CHANNEL_HELP)
@click.option("--match", multiple=True, help="Replace the buyer identifiers")
@click.option("--paper/--no-paper", default=None)
@click.option("--option", "options", multiple=True,
              help="Format option FORMAT.KEY=VALUE, e.g. csv.dialect=en (repeatable)")
@click.pass_obj
def set_(app: Any, customer_id: str, name: str | None, language: str | None,
         formats: tuple[str, ...], channels: tuple[str, ...], match: tuple[str, ...],
         paper: bool | None, options: tuple[str, ...]) -> None:
    """Change a customer's preferences; they apply from the next invoice on."""
    gw: Gateway = app.gateway
    current = gw.store.get_customer(customer_id)
    if current is None:
        raise ConfigError(f"unknown customer {customer_id!r}")
    data = current.model_dump()
    for key, value in (("name", name), ("language", language), ("paper", paper)):
        if value is not None:
            data[key] = value
    if formats:
        data["formats"] = list(formats)
    if channels:
        data["channels"] = [parse_channel(gw, c) for c in channels]
    if match:
        data["match"] = list(match)
    for option in options:
        target, sep, value = option.partition("=")
        fmt, dot, key = target.partition(".")
        if not (sep and dot):
            raise click.BadParameter(f"{option!r} is not FORMAT.KEY=VALUE")
        data["format_options"].setdefault(fmt, {})[key] = value
    _save(gw, _validated(data))
    out.print(f"customer {customer_id} updated")


@customer.command("show")
@click.argument("customer_id")
@click.pass_obj
def show(app: Any, customer_id: str) -> None:
    """Show a customer's preferences and who changed them when."""
    gw: Gateway = app.gateway
    current = gw.store.get_customer(customer_id)
    if current is None:
        raise ConfigError(f"unknown customer {customer_id!r}")
    click.echo(json.dumps(current.model_dump(), indent=2, ensure_ascii=False))
    for change in gw.store.customer_changes(customer_id):
        when = dt.datetime.fromtimestamp(change["at"]).strftime("%Y-%m-%d %H:%M:%S")
        what = "created" if change["before_json"] is None else "changed"
        echo(f"{when} {what} by {change['actor']}")


@customer.command("list")
@click.pass_obj
def list_(app: Any) -> None:
    """List customers."""
    gw: Gateway = app.gateway
    table = Table(title="Customers")
    for col in ("id", "name", "language", "formats", "channels", "paper"):
        table.add_column(col)
    for c in gw.store.list_customers():
        channels = ", ".join(p.label + (f" → {p.fallback}" if p.fallback else "")
                             for p in c.channels)
        table.add_row(c.id, c.name, c.language, ", ".join(c.formats), channels or "-",
                      "yes" if c.paper else "no")
    out.print(table)


@customer.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def import_(app: Any, file: Path) -> None:
    """Add or update customers from a TOML file of [[customer]] tables."""
    gw: Gateway = app.gateway
    customers = load_customers_toml(file)
    for c in customers:
        gw.check_customer(c)
    for c in customers:
        gw.store.put_customer(c, actor=f"{actor()} import {file.name}")
    out.print(f"{len(customers)} customers imported from {file}")


def _validated(data: dict[str, Any]) -> Customer:
    from pydantic import ValidationError

    try:
        return Customer.model_validate(data)
    except ValidationError as exc:
        loc, msg = first_error(exc)
        raise ConfigError(f"customer {data.get('id')}: {loc}: {msg}") from None


def _save(gw: Gateway, c: Customer) -> None:
    gw.check_customer(c)
    gw.store.put_customer(c, actor=actor())


def register(cli: click.Group) -> None:
    cli.add_command(customer)
