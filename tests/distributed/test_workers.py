"""Celery workers on a real Redis: ``gateway push --queue`` and ``gateway worker``.

Real worker processes, a real broker and (where the archive matters) a real S3 server.
The database is the single source of truth, so every check counts there and at the
receiver: each invoice rendered once, each delivery attempted once, every file present.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import Result

from gateway.core.config import load_config
from gateway.core.pipeline import Gateway
from gateway.workers import broker_backlog, enqueue_deliveries, enqueue_renders, make_celery
from tests.distributed.cluster import Cluster
from tests.distributed.services import RedisServer, S3Server

# The main paths run on both stores; the broker faults on the distributed set-up
# (PostgreSQL + Redis + S3) only.
both_stores = pytest.mark.both_stores


def _open(cluster: Cluster) -> Gateway:
    return Gateway(load_config(cluster.data))


def _assert_each_once(cluster: Cluster, invoices: int, formats: int) -> None:
    """Every invoice rendered exactly once and every delivery attempted exactly once."""
    gw = _open(cluster)
    try:
        records = gw.store.list_invoices(limit=invoices + 10)
        assert len(records) == invoices
        for record in records:
            kinds = collections.Counter(e.kind for e in gw.store.events(record.id))
            assert kinds["rendered"] == formats, (record.number, kinds)
            assert gw.store.render_job(record.id)["status"] == "done"
            assert gw.store.verify_events(record.id) is None
        deliveries = gw.store.deliveries()
        assert len(deliveries) == invoices
        for d in deliveries:
            attempts = gw.store.attempts(d.id)
            assert [a.outcome for a in attempts] == ["delivered"], (d.id, attempts)
    finally:
        gw.close()
    files = sorted(p.name for p in cluster.folder.iterdir())
    assert len(files) == invoices * formats
    assert not [f for f in files if f.startswith(".tmp-")]


def _wait_for_empty_broker(cluster: Cluster, timeout: float = 60) -> None:
    app = make_celery(load_config(cluster.data))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(broker_backlog(app).values()):
            time.sleep(1.0)  # the last tasks taken are finishing
            return
        time.sleep(0.3)
    raise AssertionError(f"broker still holds {broker_backlog(app)}")


@both_stores
def test_push_queue_stores_and_workers_render_and_deliver(
        store_url: str | None, cluster_factory: Callable[..., Cluster], redis: RedisServer,
        s3_env: S3Server, s3_bucket: str) -> None:
    cluster = cluster_factory(queue_url=redis.url, archive_url=f"s3://{s3_bucket}/a",
                              env=s3_env.env(), plugins=("json", "csv", "folder"),
                              formats=("json", "csv"))
    batch = cluster.write_batch(20, files=2)
    pushed = cluster.gateway("push", "--queue", *map(str, batch))
    assert "20 queued" in pushed.stdout
    counts = cluster.counts()
    assert counts == {"render pending": 20, "due now": 0}  # stored; nothing rendered yet
    cluster.start_worker(1)
    cluster.start_worker(1)
    cluster.wait_until_done(20, 20)
    cluster.stop_workers()
    _assert_each_once(cluster, 20, 2)
    assert "no problems" in cluster.gateway("verify").stdout
    # The archive is the bucket: the data directory holds no documents.
    assert not (cluster.data / "archive").exists()


@both_stores
def test_a_duplicated_task_does_nothing_twice(
        store_url: str | None, cluster_factory: Callable[..., Cluster],
        redis: RedisServer) -> None:
    cluster = cluster_factory(queue_url=redis.url)
    batch = cluster.write_batch(6)
    cluster.gateway("push", "--queue", *map(str, batch))
    app = make_celery(load_config(cluster.data))
    gw = _open(cluster)
    ids = [r.id for r in gw.store.list_invoices()]
    enqueue_renders(app, ids * 3)  # every render task three more times
    cluster.start_worker(2, beat=False)
    cluster.wait_until_done(6, 6)
    _wait_for_empty_broker(cluster)
    delivery_ids = [d.id for d in gw.store.deliveries()]
    gw.close()
    enqueue_deliveries(app, delivery_ids * 3)  # and every delivery task three more times
    _wait_for_empty_broker(cluster)
    cluster.stop_workers()
    _assert_each_once(cluster, 6, 1)


@both_stores
def test_lost_tasks_are_picked_up_by_the_sweep(
        store_url: str | None, cluster_factory: Callable[..., Cluster],
        redis: RedisServer) -> None:
    cluster = cluster_factory(queue_url=redis.url)
    batch = cluster.write_batch(8)
    cluster.gateway("push", "--queue", *map(str, batch))
    redis.restart()  # no persistence: every render message is gone
    # A worker that only renders, and never sweeps: the deliveries' tasks wait in Redis...
    cluster.start_worker(1, beat=False, queues="render")
    time.sleep(3.0)
    assert cluster.counts().get("render pending") == 8, "a lost message was rendered?"
    # ...the sweep (run once by hand, as an operator may) puts the render jobs back.
    swept = cluster.gateway("sweep")
    assert "queued 8 render jobs" in swept.stdout
    cluster.wait_until_done(8, 0)
    cluster.stop_workers()
    redis.restart()  # and now the delivery messages are lost too
    cluster.start_worker(1, beat=True)  # a worker with beat sweeps every second
    cluster.wait_until_done(8, 8)
    cluster.stop_workers()
    _assert_each_once(cluster, 8, 1)


def test_a_redis_restart_under_load_loses_nothing(
        pg_store_url: str, cluster_factory: Callable[..., Cluster], redis: RedisServer) -> None:
    cluster = cluster_factory(queue_url=redis.url)
    batch = cluster.write_batch(40, files=4)
    cluster.start_worker(2)
    cluster.gateway("push", "--queue", *map(str, batch[:2]))
    time.sleep(1.0)
    redis.restart()
    cluster.gateway("push", "--queue", *map(str, batch[2:]))
    time.sleep(0.5)
    redis.stop(kill=True)
    time.sleep(2.0)  # workers keep reconnecting meanwhile
    redis.start()
    # Supervised as docs/scale.md runs workers: one that Celery ends on the broker's
    # loss is started again, and what it held is queued again by the sweep.
    cluster.wait_until_done(40, 40, timeout=180, supervise=True)
    cluster.stop_workers()
    _assert_each_once(cluster, 40, 1)


def test_push_queue_with_the_broker_down_stores_and_says_so(
        pg_store_url: str, cluster_factory: Callable[..., Cluster], redis: RedisServer) -> None:
    cluster = cluster_factory(queue_url=redis.url)
    batch = cluster.write_batch(3)
    redis.stop()
    pushed = cluster.gateway("push", "--queue", *map(str, batch))
    assert "3 queued" in pushed.stdout
    assert "the 3 invoices are stored and the workers' next sweep renders them" in \
        pushed.stderr.replace("\n", " ")
    assert "Traceback" not in pushed.stderr
    redis.start()
    cluster.start_worker(1)
    cluster.wait_until_done(3, 3)
    cluster.stop_workers()
    _assert_each_once(cluster, 3, 1)


def test_without_a_queue_section_everything_runs_in_process(
        run_cli: Callable[..., Result], tmp_path: Path, invoice_data: dict) -> None:
    import json

    (tmp_path / "i.json").write_text(json.dumps(invoice_data))
    result = run_cli("push", "--queue", str(tmp_path / "i.json"))
    assert result.exit_code == 1
    assert "no [queue] section" in result.output
    result = run_cli("worker")
    assert result.exit_code == 1 and "no [queue] section" in result.output


@both_stores
def test_render_queued_is_safe_to_call_again(gw: Gateway, invoice_data: dict) -> None:
    """In-process: the lease decides, so a second call (a duplicated task) does nothing."""
    from gateway.core.model import Invoice
    from tests.conftest import add_customer

    add_customer(gw)
    result = gw.push(Invoice.model_validate(invoice_data), render_later=True)
    assert result.status == "queued" and result.invoice_id
    assert gw.store.documents(result.invoice_id) == []
    assert gw.store.deliveries(invoice_id=result.invoice_id) == []
    outcome, ids = gw.render_queued(result.invoice_id, "w1")
    assert outcome == "rendered" and len(ids) == 1
    for _ in range(2):
        assert gw.render_queued(result.invoice_id, "w2") == ("skipped", [])
    assert len(gw.store.documents(result.invoice_id)) == 1
    # A repeated push of the same invoice is "unchanged", not a second render job.
    again = gw.push(Invoice.model_validate(invoice_data), render_later=True)
    assert again.status == "unchanged"


def test_a_task_that_cannot_reach_the_database_logs_one_line_and_ends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database is away (a restart, a failover): each task says so in one warning,
    without a traceback, and ends; the work stays due in the database for the sweep.
    Each app runs its own tasks: another app made in the same process (with Celery's
    shared tasks, the first one's) does not answer for it."""
    monkeypatch.delenv("GATEWAY_STORE_URL", raising=False)
    apps = []
    for name in ("other", "this"):
        data = tmp_path / name
        data.mkdir()
        # nothing listens on port 1: the connection is refused at once
        (data / "gateway.toml").write_text(
            '[queue]\nurl = "redis://127.0.0.1:1/0"\n'
            f'[store]\nurl = "postgresql://gateway@127.0.0.1:1/{name}"\n')
        apps.append(make_celery(load_config(data)))
    app = apps[-1]
    with _worker_warnings() as records:
        assert "cannot reach database" in app.tasks["gateway.render"]("inv-1")["error"]
        assert "cannot reach database" in app.tasks["gateway.deliver"]([1, 2])["error"]
        assert "cannot reach database" in app.tasks["gateway.sweep"]()["error"]
    assert [r.task for r in records] == ["gateway.render", "gateway.deliver",  # type: ignore[attr-defined]
                                         "gateway.sweep"]
    assert all(r.exc_info is None for r in records)
    assert all("127.0.0.1:1/this:" in r.error for r in records)  # type: ignore[attr-defined]


def test_a_sweep_that_cannot_reach_the_broker_logs_one_line_and_ends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database answers but Redis is away (restarting) when the sweep runs: one
    warning naming the queue, no traceback; the next sweep does the work."""
    monkeypatch.delenv("GATEWAY_STORE_URL", raising=False)
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "json,folder")
    # nothing listens on port 1: the connection is refused at once
    (tmp_path / "gateway.toml").write_text('[queue]\nurl = "redis://:secret@127.0.0.1:1/0"\n')
    app = make_celery(load_config(tmp_path))
    with _worker_warnings() as records:
        error = app.tasks["gateway.sweep"]()["error"]
    assert error.startswith("queue redis://:***@127.0.0.1:1/0 unreachable")
    [record] = records
    assert record.getMessage() == "queue unreachable; the sweep will queue this work again"
    assert record.exc_info is None and record.error == error  # type: ignore[attr-defined]


def test_a_stopped_worker_leaves_no_beat_schedule_behind(
        tmp_path: Path, cluster_factory: Callable[..., Cluster], redis: RedisServer) -> None:
    """Each worker with --beat keeps its schedule in a private directory: gone once the
    worker stops, or a supervisor restarting workers would fill /tmp with them."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    cluster = cluster_factory(queue_url=redis.url, env={"TMPDIR": str(scratch)})
    worker = cluster.start_worker(1)
    deadline = time.monotonic() + 60
    while not list(scratch.glob("gateway-beat-*/schedule*")):  # beat has begun
        assert worker.poll() is None, "the worker ended on its own"
        assert time.monotonic() < deadline, "the worker never started its beat"
        time.sleep(0.2)
    cluster.stop_workers()
    assert worker.returncode is not None
    assert list(scratch.glob("gateway-beat-*")) == []


@contextlib.contextmanager
def _worker_warnings() -> Iterator[list[logging.LogRecord]]:
    """The warnings of gateway.workers, by a handler and level of its own: the CLI's
    logging set-up (run by other tests in this process) may have raised the level or
    stopped propagation."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("gateway.workers")
    level = logger.level
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.slow
def test_queue_counts_a_backlog_of_over_a_million_due_deliveries(
        gateway_factory: Callable[..., Gateway], invoice_data: dict, run_cli: Callable[..., Result],
        redis: RedisServer) -> None:
    """``gateway queue`` counts in the database: a backlog past a million is counted
    whole, not stopped at a cap (nor read into memory to be counted)."""
    import json
    import sqlite3

    from gateway.core import load_invoice
    from gateway.testing import add_customer

    gw = gateway_factory(config=f'[queue]\nurl = "{redis.url}"\n')
    add_customer(gw)
    assert gw.push(load_invoice(invoice_data), source="x.json").status == "accepted"
    path = gw.config.data_dir / "gateway.db"
    gw.close()
    # 1,000,000 copies of the one due delivery, written by SQLite itself: a month end's
    # backlog at a large utility, without pushing a million invoices.
    db = sqlite3.connect(path)
    try:
        columns = [row[1] for row in db.execute("PRAGMA table_info(deliveries)")
                   if row[1] not in ("id", "idempotency_key")]
        names = ", ".join(columns)
        db.execute(f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                   f"WHERE i < 1000000) INSERT INTO deliveries ({names}, idempotency_key) "
                   f"SELECT {names}, idempotency_key || '-' || i FROM deliveries, n")
        db.commit()
    finally:
        db.close()
    result = run_cli("queue", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["database"]["due now"] == 1_000_001
