"""``gateway db upgrade`` and ``gateway db status``: the schema versions of the store and
of the plugins' own tables (declared through ``gateway_register_databases``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from gateway.core.config import Config, load_config
from gateway.core.storage import Database, PluginDatabase, connect, open_store, store_url
from gateway.core.storage.schema import (
    CORE_MIGRATIONS,
    MigrationState,
    known,
    status,
    upgrade,
)
from gateway.errors import GatewayError


@dataclass(frozen=True)
class Target:
    """One database ``gateway db`` looks after: the core store or a plugin's tables."""

    name: str
    migrations: Path
    plugin: PluginDatabase | None  # None: the core store

    def connect(self, config: Config) -> Database:
        if self.plugin is not None:
            return self.plugin.open(config, migrate=False)
        url = store_url(config)
        return connect(url) if url else connect(config.data_dir / "gateway.db")

    def exists(self, config: Config) -> bool:
        return self.plugin.exists(config) if self.plugin is not None else True


def targets(app: Any, config: Config) -> tuple[list[Target], list[str]]:
    """The core store first, then each plugin's database by name; and one line per
    plugin whose ``gateway_register_databases`` failed."""
    found: dict[str, Target] = {}
    problems: list[str] = []
    pm = app.plugins.pm
    for impl in pm.hook.gateway_register_databases.get_hookimpls():
        plugin_name = pm.get_name(impl.plugin) or "?"

        def register(database: PluginDatabase, _plugin: str = plugin_name) -> None:
            if not isinstance(database, PluginDatabase):
                raise TypeError(f"register() takes a PluginDatabase, not {database!r}")
            if database.name == "core" or database.name in found:
                raise ValueError(f"a database named {database.name!r} is already registered")
            found[database.name] = Target(database.name, database.migrations, database)

        kwargs = {"register": register, "config": config}
        try:
            impl.function(**{a: kwargs[a] for a in impl.argnames})
        except Exception as exc:
            problems.append(f"plugin {plugin_name}: gateway_register_databases failed: {exc}")
    core = Target("core", CORE_MIGRATIONS, None)
    return [core, *(found[name] for name in sorted(found))], problems


@contextlib.contextmanager
def _each(app: Any) -> Iterator[tuple[Config, list[Target], list[str]]]:
    config = load_config(app.data_dir, app.config_file)
    found, problems = targets(app, config)
    for line in problems:
        click.echo(f"error: {line}", err=True)
    yield config, found, problems


@click.group("db")
def db_group() -> None:
    """The databases: schema versions and upgrades (the store and plugins' tables)."""


@db_group.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def db_status(app: Any, as_json: bool) -> None:
    """Show which schema migrations each database has and which are pending: the store's,
    then each plugin's (exit code 1 when any is pending)."""
    reports = []
    with _each(app) as (config, found, problems):
        for target in found:
            if target.exists(config):
                with target.connect(config) as db:
                    states = status(db, target.migrations)
                    where = db.label
            else:  # an embedded file its plugin has not made yet: nothing to create here
                states = _unopened(target)
                where = str(config.data_dir / target.plugin.sqlite_file)  # type: ignore[union-attr]
            reports.append({"name": target.name, "database": where,
                            "created": target.exists(config), "states": states})
    pending = [s.id for r in reports for s in r["states"] if s.applied_at is None]
    if as_json:
        click.echo(json.dumps({"pending": pending, "databases": [{
            "name": r["name"], "database": r["database"], "created": r["created"],
            "pending": [s.id for s in r["states"] if s.applied_at is None],
            "migrations": [{"id": s.id, "applied_at": s.applied_at.isoformat()
                            if s.applied_at else None} for s in r["states"]]}
            for r in reports]}, indent=2))
    else:
        for r in reports:
            made = "" if r["created"] else " (not created yet)"
            click.echo(f"{r['name']}: database {r['database']}{made}")
            for s in r["states"]:
                when = s.applied_at.strftime("%Y-%m-%d %H:%M:%S UTC") if s.applied_at \
                    else "pending"
                click.echo(f"  {s.id:<40} {when}")
        click.echo("up to date" if not pending else
                   f"{len(pending)} pending: run `gateway db upgrade`")
    if pending or problems:
        raise SystemExit(1)


def _unopened(target: Target) -> list[MigrationState]:
    return [MigrationState(m, None) for m in known(target.migrations, "sqlite")]


@db_group.command("upgrade")
@click.option("--break-lock", is_flag=True,
              help="First remove the lock of an upgrade whose process died (PostgreSQL; "
              "on the embedded default such a lock is removed by itself)")
@click.pass_obj
def db_upgrade(app: Any, break_lock: bool) -> None:
    """Apply the pending schema migrations of the store and of each plugin's tables (safe
    to run twice, and from several machines at once: one applies, the others wait and
    find nothing to do)."""
    failed = False
    with _each(app) as (config, found, problems):
        for target in found:
            try:
                with target.connect(config) as db:
                    done = upgrade(db, target.migrations, break_lock=break_lock)
                    where = db.label
            except GatewayError as exc:
                # One database that cannot be upgraded does not hold back the others.
                click.echo(f"error: {target.name}: {exc}", err=True)
                failed = True
                continue
            if done:
                click.echo(f"{target.name}: database {where}: applied {', '.join(done)}")
            else:
                click.echo(f"{target.name}: database {where}: up to date")
    # Opening the store also checks that the upgraded schema is one this gateway can use.
    open_store(config).close()
    if failed or problems:
        raise SystemExit(1)


def register(cli: click.Group) -> None:
    cli.add_command(db_group)
