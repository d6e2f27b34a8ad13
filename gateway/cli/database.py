"""``gateway db upgrade`` and ``gateway db status``: the store's schema version."""

from __future__ import annotations

import json
from typing import Any

import click

from gateway.core.config import load_config
from gateway.core.storage import connect, open_store, store_url
from gateway.core.storage.schema import CORE_MIGRATIONS, status, upgrade


def _database(app: Any) -> Any:
    config = load_config(app.data_dir, app.config_file)
    url = store_url(config)
    return connect(url) if url else connect(config.data_dir / "gateway.db")


@click.group("db")
def db_group() -> None:
    """The store's database: schema version and upgrades."""


@db_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def db_status(app: Any, as_json: bool) -> None:
    """Show which schema migrations the store has and which are pending (exit code 1
    when any is pending)."""
    with _database(app) as db:
        states = status(db, CORE_MIGRATIONS)
        where = db.label
    pending = [s.id for s in states if s.applied_at is None]
    if as_json:
        click.echo(json.dumps({"database": where, "pending": pending, "migrations": [
            {"id": s.id, "applied_at": s.applied_at.isoformat() if s.applied_at else None}
            for s in states]}, indent=2))
    else:
        click.echo(f"database {where}")
        for s in states:
            when = s.applied_at.strftime("%Y-%m-%d %H:%M:%S UTC") if s.applied_at else "pending"
            click.echo(f"  {s.id:<40} {when}")
        click.echo("up to date" if not pending else
                   f"{len(pending)} pending: run `gateway db upgrade`")
    if pending:
        raise SystemExit(1)


@db_group.command("upgrade")
@click.option("--break-lock", is_flag=True,
              help="First remove the lock of an upgrade whose process died (PostgreSQL; "
              "on the embedded default such a lock is removed by itself)")
@click.pass_obj
def db_upgrade(app: Any, break_lock: bool) -> None:
    """Apply the pending schema migrations (safe to run twice, and from several
    machines at once: one applies, the others wait and find nothing to do)."""
    with _database(app) as db:
        done = upgrade(db, CORE_MIGRATIONS, break_lock=break_lock)
        where = db.label
    # Plugins' tables follow when their plugins open them; opening the store here also
    # checks that the upgraded schema is one this gateway can use.
    open_store(load_config(app.data_dir, app.config_file)).close()
    if done:
        click.echo(f"database {where}: applied {', '.join(done)}")
    else:
        click.echo(f"database {where}: up to date")


def register(cli: click.Group) -> None:
    cli.add_command(db_group)
