"""Core migration 0003: a delivery's ``channel`` column (the customer's label for the
channel) became ``label``, so that "channel" means the channel type everywhere.

The history is hash-chained evidence: events written before keep their words
({"channel": label}); new events say {"channel": type, "label": label}; readers take
both (``channel_names``) and ``gateway verify`` stays clean.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.core.config import load_config
from gateway.core.storage import channel_names, connect, open_store
from gateway.core.storage.schema import CORE_MIGRATIONS, known, upgrade
from tests.conftest import REPO

pytestmark = pytest.mark.both_stores

FIXTURES = REPO / "tests" / "fixtures"
DELIVERY_EVENTS = {"queued", "delivered", "delivery-retry", "delivery-failed", "requeued",
                   "lease-expired"}


def test_channel_names_reads_the_old_and_the_new_words() -> None:
    assert channel_names({"channel": "mailbox", "formats": ["json"]}) == (None, "mailbox")
    assert channel_names({"channel": "backup", "channel_type": "folder"}) == ("folder",
                                                                             "backup")
    assert channel_names({"channel": "folder", "label": "mailbox"}) == ("folder", "mailbox")
    assert channel_names({"number": "A-1"}) == (None, None)
    # an old event's type is the one of the invoice's delivery with that label
    store_row = type("Row", (), {"label": "mailbox", "channel_type": "folder"})()
    assert channel_names({"channel": "mailbox"}, [store_row]) == ("folder", "mailbox")
    assert channel_names({"channel": "gone"}, [store_row]) == (None, "gone")


def _load(fixture: str, data: Path) -> dict[str, str]:
    """The fixture's data directory at ``data``; returns its events' stored data by
    (invoice, seq), to compare after the upgrade."""
    shutil.copytree(FIXTURES / fixture / "archive", data / "archive")
    db = sqlite3.connect(data / "gateway.db")
    db.executescript((FIXTURES / fixture / "gateway.sql").read_text(encoding="utf-8"))
    events = {f"{i}:{s}": d for i, s, d in db.execute(
        "SELECT invoice_id, seq, data_json FROM events")}
    db.close()
    return events


@pytest.mark.sqlite_only
@pytest.mark.parametrize("fixture", ["release-0.1", "main-20db686"])
def test_an_older_data_directory_upgrades_verifies_and_names_the_label(
        tmp_path: Path, run_cli: Any, fixture: str) -> None:
    """The first release's data directory, and one made by the gateway just before the
    rename: the upgrade renames the column, leaves every history event as it was, the
    chains verify, and every output says channel (type) and label (the customer's)."""
    data = tmp_path / "data"
    before = _load(fixture, data)
    upgraded = run_cli("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "core-0003-delivery-label" in upgraded.output
    verify = run_cli("verify")
    assert verify.exit_code == 0 and "no problems" in verify.output, verify.output
    db = sqlite3.connect(data / "gateway.db")
    columns = {r[1] for r in db.execute("PRAGMA table_info(deliveries)")}
    after = {f"{i}:{s}": d for i, s, d in db.execute(
        "SELECT invoice_id, seq, data_json FROM events")}
    db.close()
    assert "label" in columns and "channel" not in columns
    assert after == before  # not one byte of the evidence rewritten
    store = open_store(load_config(data))
    try:
        deliveries = store.deliveries()
        assert deliveries and {d.channel_type for d in deliveries} == {"folder"}
        assert {d.label for d in deliveries} <= {"mailbox", "backup"}
        invoice = store.list_invoices()[0]
        for e in store.events(invoice.id):
            if e.kind in DELIVERY_EVENTS:
                # the old words name the label only; its type is the delivery's
                kind, label = channel_names(e.data)
                assert kind in (None, "folder") and label in {"mailbox", "backup"}
    finally:
        store.close()
    story = run_cli("status", invoice.number, "--json")
    assert story.exit_code == 0, story.output
    shown = json.loads(story.output)["deliveries"]
    assert {(d["channel"], d["label"]) for d in shown} <= {("folder", "mailbox"),
                                                         ("folder", "backup")}
    table = run_cli("status")
    assert "folder (mailbox)" in table.output
    # the history table speaks today's words for the old events too (--json: as stored)
    history = run_cli("status", invoice.number).output
    assert "channel=folder, label=mailbox" in history
    assert "channel=mailbox" not in history


@pytest.mark.sqlite_only
def test_a_fallback_queued_before_the_rename_is_followed_and_new_events_use_new_words(
        tmp_path: Path, run_cli: Any) -> None:
    """OLD-B was queued by the gateway before the rename, its "mailbox" delivery holding
    a fallback snapshot in the old words. Its mailbox now holds another file of that
    name (a permanent failure), so the fallback to "backup" is taken from that snapshot,
    and what the history records from now on says channel and label."""
    data = tmp_path / "data"
    _load("main-20db686", data)
    assert run_cli("db", "upgrade").exit_code == 0
    (data / "out" / "mailbox").mkdir(parents=True, exist_ok=True)
    (data / "out" / "mailbox" / "OLD-B.json").write_text("someone else's file")
    delivered = run_cli("deliver")
    assert delivered.exit_code == 0, delivered.output
    store = open_store(load_config(data))
    try:
        (invoice,) = store.invoices_by_number("OLD-B")
        deliveries = store.deliveries(invoice_id=invoice.id)
        assert [(d.label, d.status, d.fallback_for is not None) for d in deliveries] == [
            ("mailbox", "failed", False), ("backup", "delivered", False),
            ("backup", "delivered", True)]
        assert deliveries[2].channel_type == "folder"
        events = store.events(invoice.id)
        old = [e for e in events if e.kind == "queued"]
        assert [e.data for e in old] == [{"channel": "mailbox", "formats": ["json"]},
                                         {"channel": "backup", "formats": ["json"]}]
        new = [e for e in events if e.kind in ("delivered", "delivery-failed")]
        assert {(e.kind, e.data["channel"], e.data["label"]) for e in new} == {
            ("delivery-failed", "folder", "mailbox"), ("delivered", "folder", "backup")}
        fallback = next(e for e in events if e.kind == "fallback")
        assert (fallback.data["from"], fallback.data["to"]) == ("mailbox", "backup")
        assert store.verify_events(invoice.id) is None
    finally:
        store.close()
    assert run_cli("verify").exit_code == 0


def test_the_rename_migration_keeps_the_rows_on_both_engines(
        tmp_path: Path, store_url: str | None) -> None:
    """A database at core-0002 with a delivery and its history, upgraded by opening the
    store: the row reads back with its label, on SQLite and on PostgreSQL."""
    before = tmp_path / "migrations-0002"
    for dialect in ("sqlite", "postgresql"):
        (before / dialect).mkdir(parents=True)
        for name in known(CORE_MIGRATIONS, dialect)[:2]:
            shutil.copy(CORE_MIGRATIONS / dialect / f"{name}.py", before / dialect)
    data = tmp_path / "data"
    data.mkdir()
    db = connect(store_url or data / "gateway.db")
    try:
        assert upgrade(db, before) == ["core-0001-baseline", "core-0002-render-jobs"]
        now = time.time()
        with db.tx() as cur:
            cur.execute(
                "INSERT INTO invoices (id, seller_key, number, customer_id, content_hash, "
                "invoice_json, type_code, issue_date, currency, amount_due, buyer_name, "
                "created_at) VALUES ('i1', 's', 'N-1', 'c1', 'h', '{}', '380', "
                "'2026-11-30', 'EUR', '1.00', 'B', ?)", (now,))
            cur.execute(
                "INSERT INTO deliveries (invoice_id, customer_id, channel, channel_type, "
                "settings_json, formats_json, idempotency_key, status, next_attempt_at, "
                "created_at, updated_at) VALUES ('i1', 'c1', 'accounts', 'email', '{}', "
                "'[\"pdf\"]', 'i1:accounts', 'pending', ?, ?, ?)", (now, now, now))
    finally:
        db.close()
    store = open_store(load_config(data))
    try:
        store.append_event("i1", "queued", {"channel": "accounts", "formats": ["pdf"]})
        (delivery,) = store.deliveries()
        assert (delivery.channel_type, delivery.label) == ("email", "accounts")
        assert store.requeue([delivery.id]) == 0  # pending: nothing to requeue
        assert store.verify_events("i1") is None
    finally:
        store.close()
