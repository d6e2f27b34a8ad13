"""The store on both engines: concurrent writers, batched leases, schema migrations.

Each test runs on the embedded SQLite store and on a real PostgreSQL server (a
throwaway cluster started by the tests, tests/pg_cluster.py).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.core import load_invoice
from gateway.core.config import load_config
from gateway.core.storage import open_store
from gateway.core.storage.schema import CORE_MIGRATIONS, known
from gateway.errors import StorageError
from tests.conftest import REPO, add_customer

pytestmark = pytest.mark.both_stores

RELEASE_0_1 = REPO / "tests" / "fixtures" / "release-0.1"
CORE_IDS = known(CORE_MIGRATIONS, "sqlite")  # the same ids for both engines

APPEND = """
import sys
from pathlib import Path
from gateway.core.config import load_config
from gateway.core.storage import open_store
from gateway.core.storage.schema import CORE_MIGRATIONS, known
store = open_store(load_config(Path(sys.argv[1])))
for i in range(int(sys.argv[2])):
    for invoice in ("A", "B"):
        store.append_event(invoice, "note", {"writer": sys.argv[3], "i": i})
store.close()
"""


def test_the_history_chain_holds_with_many_writers_at_once(
        tmp_path: Path, store_url: str | None) -> None:
    """Threads (each its own connection) and processes append to the same two invoices'
    histories at once: every event is kept, numbered without a gap, and the chain
    verifies."""
    data = tmp_path / "data"
    config = load_config(data)
    open_store(config).close()
    per_writer = 40
    procs = [subprocess.Popen([sys.executable, "-c", APPEND, str(data), str(per_writer),
                               f"process-{n}"], cwd=REPO) for n in range(3)]
    errors: list[BaseException] = []

    def write(name: str) -> None:
        store = open_store(config)
        try:
            for i in range(per_writer):
                for invoice in ("A", "B"):
                    store.append_event(invoice, "note", {"writer": name, "i": i})
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=write, args=(f"thread-{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert errors == []
    store = open_store(config)
    try:
        for invoice in ("A", "B"):
            events = store.events(invoice)
            assert [e.seq for e in events] == list(range(1, 7 * per_writer + 1))
            writers: dict[str, list[int]] = {}
            for e in events:
                writers.setdefault(e.data["writer"], []).append(e.data["i"])
            # each writer's events in its own order, none lost, none twice
            assert all(v == list(range(per_writer)) for v in writers.values())
            assert len(writers) == 7
            assert store.verify_events(invoice) is None
    finally:
        store.close()


def test_batched_claims_never_lease_one_delivery_to_two_workers(
        gateway_factory: Any, invoice_data: dict[str, Any]) -> None:
    gw = gateway_factory()
    add_customer(gw)
    for i in range(60):
        data = json.loads(json.dumps(invoice_data))
        data["number"] = f"B-{i:03d}"
        assert gw.push(load_invoice(data), source="b.json").status == "accepted"
    claimed: dict[str, list[int]] = {}
    lock = threading.Lock()

    def worker(name: str) -> None:
        store = open_store(gw.config)
        try:
            while batch := store.claim_deliveries(name, 60, 7):
                with lock:
                    claimed.setdefault(name, []).extend(r.id for r in batch)
        finally:
            store.close()

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [d for ids in claimed.values() for d in ids]
    assert sorted(every) == sorted(d.id for d in gw.store.deliveries())
    assert len(every) == len(set(every)) == 60
    for d in gw.store.deliveries():
        # leased, but no attempt spent until the channel is about to be called
        assert d.status == "delivering" and d.attempts == 0
        assert gw.store.attempts(d.id) == []
    first = gw.store.deliveries()[0]
    assert first.lease_owner is not None
    begun = gw.store.begin_attempt(first.id, first.lease_owner, 60)
    assert begun is not None and begun[1] == 1
    assert gw.store.begin_attempt(first.id, "someone-else", 60) is None


def test_invoices_are_read_oldest_first_a_page_after_the_last_key(
        gateway_factory: Any, invoice_data: dict[str, Any]) -> None:
    """The portal's exports read pages by key (issue date, number, id), on either
    engine: ties on the date go by number, and the pages join without a gap."""
    gw = gateway_factory()
    add_customer(gw)
    for i, day in enumerate(["2026-11-04", "2026-10-15", "2026-11-04", "2026-11-01",
                             "2026-11-04"]):
        data = json.loads(json.dumps(invoice_data))
        data["number"], data["issue_date"] = f"K-{i}", day
        assert gw.push(load_invoice(data), source="k.json").status == "accepted"
    customer_id = gw.store.list_invoices(limit=1)[0].customer_id
    numbers: list[str] = []
    after = None
    while page := gw.store.invoices_oldest_first(customer_id=customer_id, after=after,
                                                 limit=2, issued_from="2026-10-01"):
        numbers += [r.number for r in page]
        after = page[-1].key
    assert numbers == ["K-1", "K-3", "K-0", "K-2", "K-4"]
    assert gw.store.invoices_oldest_first(customer_id=customer_id, issued_to="2026-10-31",
                                          limit=10)[0].number == "K-1"


def test_a_schema_newer_than_the_gateway_is_refused(
        gateway_factory: Any, store_url: str | None) -> None:
    gw = gateway_factory()
    db = gw.store.db  # type: ignore[attr-defined]
    with db.tx() as cur:
        cur.execute("INSERT INTO _yoyo_migration (migration_hash, migration_id, "
                    "applied_at_utc) VALUES (?, ?, ?)",
                    ("f" * 64, "core-9999-from-the-future", "2030-01-01 00:00:00"))
    with pytest.raises(StorageError, match=r"newer gateway.*core-9999-from-the-future"):
        open_store(gw.config)


def test_db_status_and_upgrade(tmp_path: Path, run_cli: Any, store_url: str | None) -> None:
    before = run_cli("db", "status")
    assert before.exit_code == 1
    assert "core-0001-baseline" in before.output and "pending: run" in before.output
    [core] = [d for d in json.loads(run_cli("db", "status", "--json").output)["databases"]
              if d["name"] == "core"]
    assert core["pending"] == CORE_IDS
    applied = run_cli("db", "upgrade")
    assert applied.exit_code == 0, applied.output
    assert "applied core-0001-baseline" in applied.output
    again = run_cli("db", "upgrade")
    assert "up to date" in again.output
    after = run_cli("db", "status", "--json")
    assert after.exit_code == 0
    assert json.loads(after.output)["pending"] == []


def test_several_processes_upgrading_at_once_apply_each_migration_once(
        tmp_path: Path, store_url: str | None) -> None:
    env_dir = tmp_path / "data"
    env_dir.mkdir()
    procs = [subprocess.Popen([sys.executable, "-m", "gateway", "--data-dir", str(env_dir),
                               "db", "upgrade"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert sum("applied core-0001-baseline" in out for out, _ in outputs) == 1
    store = open_store(load_config(env_dir))
    try:
        rows = store.db.query("SELECT migration_id FROM _yoyo_migration")
        assert sorted(r["migration_id"] for r in rows) == CORE_IDS
    finally:
        store.close()


def at_once(count: int, action: Callable[[], None]) -> tuple[int, list[BaseException]]:
    """Run ``action`` in ``count`` threads released together; how many still run after
    60 s, and what they raised."""
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            action()
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return sum(t.is_alive() for t in threads), errors


def test_threads_opening_a_new_plugin_database_at_once_all_get_it(
        tmp_path: Path, store_url: str | None) -> None:
    # The SFTP server's client threads and a dispatcher in one process open the mailbox
    # index together. yoyo's SQLite lock row, written over a shared-cache connection,
    # used to fail at once for one thread and stay behind, so every later opener waited
    # 120 s for a lock nobody held.
    from gateway.core.storage import plugin_database
    from plugins.sftp.mailbox import MIGRATIONS

    for round_ in range(40):
        def open_index(data_dir: Path = tmp_path / f"data{round_}") -> None:
            db = plugin_database(data_dir, "sftp/mailbox.db", migrations=MIGRATIONS,
                                 schema="sftp")
            try:
                assert db.query("SELECT count(*) AS n FROM files")[0]["n"] == 0
            finally:
                db.close()

        hanging, errors = at_once(3, open_index)
        assert not hanging, f"round {round_}: an opener hangs"
        assert errors == [], f"round {round_}: {errors}"
        if store_url:
            break  # the schema exists now; later rounds would find nothing to race for
    if not store_url:
        leftover = sqlite3.connect(tmp_path / "data39" / "sftp" / "mailbox.db").execute(
            "SELECT count(*) FROM yoyo_lock").fetchone()[0]
        assert leftover == 0


@pytest.mark.sqlite_only
def test_a_release_0_1_data_directory_upgrades_in_place(
        tmp_path: Path, run_cli: Any) -> None:
    """gateway.db and archive as the release before migrations left them: the upgrade
    keeps every row and the history chains, and the outbox carries on."""
    data = tmp_path / "data"
    shutil.copytree(RELEASE_0_1 / "archive", data / "archive")
    db = sqlite3.connect(data / "gateway.db")
    db.executescript((RELEASE_0_1 / "gateway.sql").read_text(encoding="utf-8"))
    db.close()
    assert run_cli("db", "status").exit_code == 1
    upgraded = run_cli("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    verify = run_cli("verify")
    assert verify.exit_code == 0, verify.output
    assert "3 documents and the history of 3 invoices: no problems" in verify.output
    store = open_store(load_config(data))
    try:
        assert [i.number for i in store.list_invoices()] == ["OLD-2", "OLD-1", "OLD-0"]
        assert sorted(d.status for d in store.deliveries()) == ["delivered", "pending", "retry"]
        assert store.find_customer(["C-100234567"]) is not None
    finally:
        store.close()
    delivered = run_cli("deliver")
    assert delivered.exit_code == 0, delivered.output
    store = open_store(load_config(data))
    try:
        assert {d.status for d in store.deliveries()} == {"delivered"}
        for invoice in store.list_invoices():
            assert store.verify_events(invoice.id) is None
    finally:
        store.close()
    assert sorted(p.name for p in (data / "deliveries" / "100234567").iterdir()) == [
        "OLD-1.json", "OLD-2.json"]


@pytest.mark.sqlite_only
def test_a_database_that_cannot_be_opened_leaves_no_file_open(tmp_path: Path) -> None:
    """Another process holds the file's exclusive lock, so it cannot be switched to WAL:
    the opener says so in one line and keeps no connection (and no open file) behind,
    however long its error is kept."""
    import os

    from gateway.core.storage.sqlite import SQLiteDatabase

    path = tmp_path / "gateway.db"
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN EXCLUSIVE")  # rollback-journal mode: no one may read it now
        with pytest.raises(StorageError, match="is locked by another process") as refused:
            SQLiteDatabase(path, timeout=0.2)
        # SQLite keeps a closed connection's file open while another connection of the
        # process holds a lock on it (closing would drop that lock): released first.
        holder.execute("ROLLBACK")
        target = os.path.realpath(path)
        fds = Path("/proc/self/fd")
        opened = []
        for fd in fds.iterdir():
            try:
                opened.append(os.readlink(fd))
            except OSError:  # the listing's own descriptor, closed meanwhile
                continue
        # ``refused`` still holds the error (and with it the opener's frame)
        assert opened.count(target) == 1, "only the holder's connection has it open"
        assert "gateway.db" in str(refused.value)
    finally:
        holder.close()


@pytest.mark.sqlite_only
def test_a_store_url_that_cannot_work_is_one_clear_line(
        tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_STORE_URL", "mysql://gateway@127.0.0.1/gateway")
    result = subprocess.run([sys.executable, "-m", "gateway", "--data-dir",
                             str(tmp_path / "d"), "status"], capture_output=True, text=True,
                            cwd=REPO, check=False, timeout=60)
    assert result.returncode == 1
    assert "unknown database" in result.stderr and "Traceback" not in result.stderr
    monkeypatch.setenv("GATEWAY_STORE_URL", "postgresql://gateway:secret@127.0.0.1:1/gateway")
    result = subprocess.run([sys.executable, "-m", "gateway", "--data-dir",
                             str(tmp_path / "d"), "status"], capture_output=True, text=True,
                            cwd=REPO, check=False, timeout=60)
    assert result.returncode == 1
    assert "cannot reach database postgresql://gateway:***@127.0.0.1:1/gateway" in result.stderr
    assert "secret" not in result.stderr and "Traceback" not in result.stderr


def test_dropped_server_connections_are_replaced(
        gateway_factory: Any, invoice_data: dict[str, Any], store_backend: str) -> None:
    """The server ends every session (a restart or failover would): the next
    operations work on fresh connections."""
    gw = gateway_factory()
    add_customer(gw)
    assert gw.push(load_invoice(invoice_data), source="x.json").status == \
        "accepted"
    if store_backend == "postgresql":
        import psycopg

        with psycopg.connect(gw.store.db.url, autocommit=True) as conn:  # type: ignore[attr-defined]
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    assert len(gw.store.list_invoices()) == 1
    [record] = gw.store.claim_deliveries("w", 60, 5)
    begun = gw.store.begin_attempt(record.id, "w", 60)
    assert begun is not None
    attempt = begun[0]
    assert gw.store.mark_delivered(record.id, "w", "r", {}, attempt_id=attempt)
    assert gw.store.attempts(record.id)[0].outcome == "delivered"


def test_the_portal_tables_live_in_the_configured_store(
        tmp_path: Path, store_url: str | None) -> None:
    """The portal's accounts, sessions and publications through the shared helper: in
    portal.db on the embedded default, in the gateway's PostgreSQL database (schema
    ``portal``) otherwise, with the same behaviour."""
    from plugins.portal.db import PortalDB, PortalError

    data = tmp_path / "data"
    db = PortalDB(data / "portal.db")
    try:
        account = db.add_account(email="Anna@Example.lv", password_hash="h", role="customer",
                                 customer_id="100234567", created_by="test")
        with pytest.raises(PortalError, match="already exists"):
            db.add_account(email="anna@example.LV", password_hash="h", role="customer",
                           customer_id="100234567", created_by="test")
        assert db.account_by_email("ANNA@example.lv") == account
        db.add_session("t" * 64, account.id, 60)
        assert db.session_account("t" * 64) == account
        db.publish("inv-1", "100234567", "r1", None)
        assert [p.invoice_id for p in db.unseen("100234567")] == ["inv-1"]
        assert db.first_view("inv-1", account.id, "page") is True
        assert db.first_view("inv-1", account.id, "page") is False
        assert db.unseen("100234567") == []
        assert db.secret() == db.secret()
        assert db.db.dialect == ("postgresql" if store_url else "sqlite")
    finally:
        db.close()
    assert (data / "portal.db").exists() == (store_url is None)
    if store_url:
        import psycopg

        with psycopg.connect(store_url) as conn:
            tables = {r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'portal'")}
        assert {"accounts", "sessions", "publications", "_yoyo_migration"} <= tables


def test_the_sftp_mailbox_index_lives_in_the_configured_store(
        tmp_path: Path, store_url: str | None) -> None:
    from plugins.sftp.mailbox import MailboxIndex, NameClash

    index = MailboxIndex(tmp_path / "data")
    try:
        entry = ("F-1.json", "a" * 64, 10, "inv-1", "json")
        assert index.publish("100234567", [entry], "k1") == ["published"]
        assert index.publish("100234567", [entry], "k1") == ["already published"]
        with pytest.raises(NameClash):
            index.publish("100234567", [("F-1.json", "b" * 64, 10, "inv-2", "json")], "k2")
        assert index.mark_downloaded("100234567", "F-1.json") is True
        assert index.mark_downloaded("100234567", "F-1.json") is False
        assert index.mark_acked("100234567", "F-1.json", "deleted") is True
        assert index.list("100234567", outbox_only=True) == []
        [stored] = index.list("100234567", outbox_only=False)
        assert stored.acked_how == "deleted" and stored.size == 10
        assert index.db.dialect == ("postgresql" if store_url else "sqlite")
    finally:
        index.close()
    assert (tmp_path / "data" / "sftp" / "mailbox.db").exists() == (store_url is None)


def test_an_upgrade_lock_left_by_a_dead_process_can_be_broken(
        tmp_path: Path, run_cli: Any, store_url: str | None) -> None:
    from yoyo import get_backend

    from gateway.core.storage.database import connect

    db = connect(store_url or tmp_path / "data" / "gateway.db")
    backend = get_backend(db.yoyo_url(), migration_table="_yoyo_migration")
    backend._insert_lock_row(2**22 + 1, 5)  # a process killed in the middle of an upgrade
    backend.connection.close()
    db.close()
    if store_url is None:
        # On SQLite the upgrade holds an flock that dies with its process, so a lock row
        # found under it is a leftover: removed without being asked.
        result = run_cli("db", "upgrade")
    else:
        result = run_cli("db", "upgrade", "--break-lock")
    assert result.exit_code == 0, result.output
    assert "applied core-0001-baseline" in result.output


def test_count_due_counts_what_due_delivery_ids_lists(
        gateway_factory: Any, invoice_data: dict[str, Any]) -> None:
    """``gateway queue``'s "due now" is a COUNT with the workers' own condition: due
    (pending, retry whose time came, delivering with an expired lease), not the rest."""
    gw = gateway_factory()
    add_customer(gw)
    for n in range(6):
        data = {**invoice_data, "number": f"{invoice_data['number']}-{n}"}
        assert gw.push(load_invoice(data), source=f"{n}.json").status == "accepted"
    pending, delivered, later, retry_now, leased, lease_lost = \
        sorted(d.id for d in gw.store.deliveries())
    store = gw.store
    now = time.time()
    for delivery_id in (delivered, later, retry_now, leased, lease_lost):
        assert store.claim_delivery("w", 600, delivery_id) is not None
    begun = store.begin_attempt(delivered, "w", 600)
    assert isinstance(begun, tuple)
    assert store.mark_delivered(delivered, "w", "r", {}, attempt_id=begun[0])
    assert store.mark_failed(later, "w", "retry", "down", now + 3600, None)
    assert store.mark_failed(retry_now, "w", "retry", "down", now - 1, None)
    assert store.expire_lease(lease_lost, "w")
    due = store.due_delivery_ids(100)
    assert sorted(due) == sorted([pending, retry_now, lease_lost])
    assert store.count_due() == len(due) == 3
    # Nothing due: zero, not an error.
    for delivery_id in due:
        assert store.claim_delivery("w", 600, delivery_id) is not None
    assert store.count_due() == len(store.due_delivery_ids(100)) == 0


def test_openers_creating_the_same_schema_at_once_all_succeed(postgres_cluster: Any) -> None:
    # CREATE SCHEMA IF NOT EXISTS is not safe against itself: two sessions can both find
    # the schema missing, and the second fails on pg_namespace's unique index. Threads of
    # one process opening a plugin's database for the first time meet exactly there.
    from gateway.core.storage.postgres import PostgresDatabase

    url = postgres_cluster.new_database()
    for round_ in range(30):
        def open_schema(schema: str = f"race_{round_}") -> None:
            PostgresDatabase(url, schema=schema).close()

        hanging, errors = at_once(6, open_schema)
        assert not hanging, f"round {round_}: an opener hangs"
        assert errors == [], f"round {round_}: {errors}"
