"""``gateway db status`` / ``gateway db upgrade`` cover the plugins' own tables, found
through the ``gateway_register_databases`` hook: on the embedded default each plugin's
file in the data directory, on PostgreSQL each plugin's schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from gateway import hookimpl
from gateway.core.config import load_config
from gateway.core.storage import PluginDatabase, connect
from gateway.plugins import get_plugin_manager

pytestmark = pytest.mark.both_stores

BUILT_IN = ["core", "peppol", "portal", "sftp", "utility"]
FILES = {"peppol": "peppol.db", "portal": "portal.db", "sftp": "sftp/mailbox.db",
         "utility": "utility.db"}


def notes_migrations(root: Path, count: int) -> Path:
    """A third-party plugin's migrations: ``notes-0001`` … for both dialects."""
    for dialect in ("sqlite", "postgresql"):
        folder = root / "notes-migrations" / dialect
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(1, count + 1):
            sql = ("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"
                   if n == 1 else f"ALTER TABLE notes ADD COLUMN extra{n} TEXT")
            (folder / f"notes-{n:04d}-step.sql").write_text(sql + ";\n")
    return root / "notes-migrations"


class NotesPlugin:
    """A plugin the core has never heard of, with tables of its own."""

    def __init__(self, migrations: Path) -> None:
        self.database = PluginDatabase("notes", migrations, "notes/notes.db")

    @hookimpl
    def gateway_register_databases(self, register: Any) -> None:
        register(self.database)


class BrokenPlugin:
    @hookimpl
    def gateway_register_databases(self, register: Any) -> None:
        raise RuntimeError("cannot find my migrations")


def cli(data: Path, *extra: tuple[str, object]) -> Any:
    from gateway.cli import cli as root

    plugins = get_plugin_manager(extra=extra)

    def run(*args: str) -> Result:
        return CliRunner().invoke(root, ["--data-dir", str(data), *args], obj=plugins,
                                  catch_exceptions=False)

    return run


def status(run: Any) -> tuple[int, dict[str, Any]]:
    result = run("db", "status", "--json")
    return result.exit_code, json.loads(result.stdout)


def test_status_and_upgrade_cover_every_plugins_tables(
        tmp_path: Path, store_url: str | None) -> None:
    data = tmp_path / "data"
    run = cli(data)
    code, before = status(run)
    assert code == 1
    names = [d["name"] for d in before["databases"]]
    assert names == BUILT_IN
    assert {"portal-0001-baseline", "sftp-0001-mailbox", "utility-0001-baseline",
            "peppol-0001-baseline", "core-0001-baseline"} <= set(before["pending"])
    if store_url is None:
        # status only looks: a plugin file that does not exist is not made
        assert [d["created"] for d in before["databases"]] == [True, False, False, False,
                                                                False]
        assert not (data / "portal.db").exists()

    upgraded = run("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    for name in BUILT_IN:
        assert f"{name}: database" in upgraded.output
    assert "portal-0001-baseline" in upgraded.output
    code, after = status(run)
    assert code == 0 and after["pending"] == []
    assert "up to date" in run("db", "upgrade").output.splitlines()[-1]

    config = load_config(data)
    for name, sqlite_file in FILES.items():
        if store_url is None:
            assert (data / sqlite_file).exists()
            db = connect(data / sqlite_file)
        else:  # each plugin in its own schema of the one database, not in a file
            assert not (data / sqlite_file).exists()
            db = connect(store_url, schema=name)
        with db:
            applied = [r["migration_id"] for r in db.query(
                "SELECT migration_id FROM _yoyo_migration ORDER BY migration_id")]
        assert applied and all(m.startswith(f"{name}-") for m in applied), (name, applied)
    # the plugins open what the upgrade made, with nothing left to apply
    from plugins.portal.db import PortalDB

    portal = PortalDB(config.data_dir / "portal.db")
    try:
        assert len(portal.secret()) == 64
    finally:
        portal.close()


def test_a_third_party_plugins_migrations_are_found_and_applied(
        tmp_path: Path, store_url: str | None) -> None:
    data = tmp_path / "data"
    notes = NotesPlugin(notes_migrations(tmp_path, 1))
    run = cli(data, ("notes", notes))
    assert run("db", "upgrade").exit_code == 0
    # The plugin's next release adds a migration: status shows it, upgrade applies it.
    notes_migrations(tmp_path, 2)
    code, before = status(run)
    assert code == 1 and before["pending"] == ["notes-0002-step"]
    [entry] = [d for d in before["databases"] if d["name"] == "notes"]
    assert [m["id"] for m in entry["migrations"]] == ["notes-0001-step", "notes-0002-step"]
    text = run("db", "status").output
    assert "notes-0002-step" in text and "1 pending: run `gateway db upgrade`" in text
    upgraded = run("db", "upgrade")
    assert "notes: database" in upgraded.output and "applied notes-0002-step" in upgraded.output
    with notes.database.open(load_config(data)) as db:
        with db.tx() as cur:
            cur.execute("INSERT INTO notes (id, text, extra2) VALUES (1, ?, ?)",
                        ("hello", "x"))
        assert db.one("SELECT text, extra2 FROM notes")["text"] == "hello"  # type: ignore[index]
        assert db.dialect == ("postgresql" if store_url else "sqlite")
    assert status(run)[0] == 0


def test_a_plugin_whose_hook_fails_is_named_and_the_others_still_upgrade(
        tmp_path: Path, store_url: str | None) -> None:
    data = tmp_path / "data"
    run = cli(data, ("broken", BrokenPlugin()))
    upgraded = run("db", "upgrade")
    assert upgraded.exit_code == 1
    assert "plugin broken: gateway_register_databases failed: cannot find my migrations" \
        in upgraded.stderr
    assert "Traceback" not in upgraded.output
    assert "portal: database" in upgraded.stdout
    code, after = status(run)
    assert code == 1 and after["pending"] == []  # all else is current; the failure shows
