"""``gateway plugins``, ``gateway formats``, ``gateway channels``: what is installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from gateway.cli.invoices import out


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON")
@click.pass_obj
def plugins(app: Any, as_json: bool) -> None:
    """List every plugin with kind, name, version and where it came from."""
    rows = app.plugins.describe()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Plugins")
    for col in ("plugin", "status", "provides", "distribution", "version", "origin"):
        table.add_column(col)
    for r in rows:
        provides = ", ".join(f"{p['kind']} {p['name']}" for p in r["provides"]) or \
            ", ".join(h.removeprefix("gateway_") for h in r["hooks"])
        status = "ok" if r["status"] == "ok" else f"broken: {r['error']}"
        table.add_row(r["name"], status, provides, r["distribution"] or "-",
                      r["version"] or "-", r["origin"])
    out.print(table)


@click.command()
@click.pass_obj
def formats(app: Any) -> None:
    """List the registered document formats."""
    table = Table(title="Formats")
    for col in ("name", "media type", "ext", "read", "check", "plugin", "description"):
        table.add_column(col)
    for name, reg in sorted(app.plugins.formats.items.items()):
        f = reg.obj
        table.add_row(name, f.media_type, f.extension, "yes" if f.can_parse else "",
                      "yes" if f.can_validate else "", reg.plugin, f.description)
    out.print(table)


@click.command()
@click.pass_obj
def channels(app: Any) -> None:
    """List the registered delivery channels and their settings."""
    table = Table(title="Channels")
    for col in ("name", "settings", "plugin", "description"):
        table.add_column(col)
    for name, reg in sorted(app.plugins.channels.items.items()):
        c = reg.obj
        settings = ", ".join(c.Settings.model_fields)
        table.add_row(name, settings, reg.plugin, c.description)
    out.print(table)


@click.group("plugin")
def plugin_group() -> None:
    """Write plugins: ``gateway plugin new``."""


@plugin_group.command("new")
@click.argument("name")
@click.option("--kind", type=click.Choice(["format", "channel", "source"]), required=True,
              help="What the plugin registers")
@click.option("--directory", type=click.Path(file_okay=False, path_type=Path), default=".",
              show_default=True, help="Where to create the package directory NAME")
def plugin_new(name: str, kind: str, directory: Path) -> None:
    """Create the package NAME (e.g. gateway-ledger): pyproject.toml with the entry point,
    a working skeleton, and tests that use gateway.testing and pass as generated."""
    from gateway.scaffold import Names, generate

    written = generate(name, kind, directory)  # type: ignore[arg-type]
    root = directory / name
    click.echo(f"created {root}/ ({kind} {Names.of(name).plugin!r}): "
               + ", ".join(str(p.relative_to(root)) for p in written))
    click.echo(f"next: cd {root} && pip install -e '.[test]' && python -m pytest -q")


def register(cli: click.Group) -> None:
    for command in (plugins, formats, channels, plugin_group):
        cli.add_command(command)
