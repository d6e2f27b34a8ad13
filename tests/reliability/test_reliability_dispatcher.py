"""The dispatcher's promises, on a real SQLite store shared by several workers:
leases that come back, leases kept alive while a channel works, backoff, dead letters,
per-channel concurrency and rate limits, the whole story in ``gateway status``."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from gateway import Bundle, DeliveryError, DeliveryState, Receipt, hookimpl
from gateway.core import Dispatcher, load_invoice
from gateway.core.config import load_config
from gateway.core.pipeline import Gateway
from gateway.core.storage import ChannelLimit, SQLiteStore
from gateway.errors import StorageError
from gateway.plugins import get_plugin_manager
from tests.conftest import add_customer

pytestmark = pytest.mark.both_stores


class ProbeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: str = "ok"  # ok | flaky | down | permanent | hold


class ProbeChannel:
    """Counts every call; ``hold`` blocks until the test releases it."""

    name: ClassVar[str] = "probe"
    description: ClassVar[str] = "test channel"
    Settings: ClassVar[type[BaseModel]] = ProbeSettings

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.release = threading.Event()
        self.entered = threading.Event()
        self.session_error: Exception | None = None
        self.fixed = False
        self._lock = threading.Lock()

    def session(self) -> contextlib.AbstractContextManager[None]:
        if self.session_error is not None:
            raise self.session_error
        return contextlib.nullcontext()

    def deliver(self, bundle: Bundle, settings: Any, state: DeliveryState) -> Receipt:
        with self._lock:
            self.calls.append((bundle.idempotency_key, time.time()))
            count = len(self.calls)
        if settings.mode == "hold":
            self.entered.set()
            assert self.release.wait(30), "test never released the channel"
        down = settings.mode == "down" and not self.fixed
        if down or (settings.mode == "flaky" and count == 1):
            raise DeliveryError("421 try again later", retryable=True)
        if settings.mode == "permanent":
            raise DeliveryError("550 no such mailbox", retryable=False)
        return Receipt(id=f"probe:{bundle.idempotency_key}")


class ProbePlugin:
    def __init__(self, channel: ProbeChannel) -> None:
        self.channel = channel

    @hookimpl
    def gateway_register_channels(self, register: Any) -> None:
        register(self.channel)


def make(gateway_factory: Any, config: str = "") -> tuple[Gateway, ProbeChannel]:
    channel = ProbeChannel()
    gw = gateway_factory(extra_plugins=(("probe", ProbePlugin(channel)),), config=config)
    return gw, channel


def second_gateway(gw: Gateway, channel: ProbeChannel) -> Gateway:
    """Another process's view of the same data directory: its own connection."""
    plugins = get_plugin_manager(extra=(("probe", ProbePlugin(channel)),))
    return Gateway(load_config(gw.config.data_dir), plugins)


def push(gw: Gateway, data: dict[str, Any], number: str = "E2611-00123") -> str:
    data = json.loads(json.dumps(data))
    data["number"] = number
    result = gw.push(load_invoice(data), source=f"{number}.json")
    assert result.status == "accepted", result.error
    assert result.invoice_id
    return result.invoice_id


def probe_customer(gw: Gateway, mode: str = "ok", **kw: Any) -> None:
    add_customer(gw, channels=[{"channel": "probe", "settings": {"mode": mode}}, *kw.pop(
        "more", [])], **kw)


def test_a_crashed_workers_lease_comes_back_and_its_attempt_is_closed(
        gateway_factory: Any, invoice_data: dict[str, Any]) -> None:
    gw, channel = make(gateway_factory)
    probe_customer(gw)
    invoice_id = push(gw, invoice_data)
    # A worker claims and starts, then "dies": its lease is short and never renewed.
    # (a lease long enough that a busy machine cannot outlast it by accident)
    dead = gw.store.claim_delivery("dead-worker", 1.0)
    assert dead is not None
    gw.store.start_attempt(dead.id, "dead-worker")
    assert Dispatcher(gw).run().attempted == 0, "a live lease must not be taken over"
    time.sleep(1.1)
    summary = Dispatcher(gw, worker="rescuer").run()
    assert summary.delivered == 1
    assert len(channel.calls) == 1
    [delivery] = gw.store.deliveries(invoice_id=invoice_id)
    assert delivery.status == "delivered" and delivery.attempts == 2
    outcomes = [(a.worker, a.outcome) for a in gw.store.attempts(delivery.id)]
    assert outcomes == [("dead-worker", "abandoned"), ("rescuer", "delivered")]
    [abandoned] = [a for a in gw.store.attempts(delivery.id) if a.outcome == "abandoned"]
    assert "dead-worker" in (abandoned.error or "") and "lease expired" in (abandoned.error or "")
    kinds = [e.kind for e in gw.store.events(invoice_id)]
    assert kinds[-2:] == ["lease-expired", "delivered"]
    assert gw.store.verify_events(invoice_id) is None


def test_a_slow_delivery_keeps_its_lease_so_no_second_worker_sends_it(
        gateway_factory: Any, invoice_data: dict[str, Any]) -> None:
    # The lease is shorter than the delivery; only the renewal keeps the second worker out.
    gw, channel = make(gateway_factory, config="[dispatcher]\nlease_seconds = 0.6\n")
    probe_customer(gw, mode="hold")
    push(gw, invoice_data)
    other = second_gateway(gw, channel)
    try:
        worker = threading.Thread(target=lambda: Dispatcher(gw, worker="slow").run())
        worker.start()
        assert channel.entered.wait(30)
        tries = 0
        deadline = time.time() + 2.0  # more than three lease lengths
        while time.time() < deadline:
            assert other.store.claim_delivery("intruder", 0.6) is None
            tries += 1
            time.sleep(0.05)
        channel.release.set()
        worker.join(30)
        assert tries > 5
        assert len(channel.calls) == 1
        [delivery] = gw.store.deliveries()
        assert delivery.status == "delivered"
        assert [a.worker for a in gw.store.attempts(delivery.id)] == ["slow"]
    finally:
        channel.release.set()
        other.close()


def test_several_workers_deliver_each_delivery_exactly_once(
        gateway_factory: Any, invoice_data: dict[str, Any]) -> None:
    gw, channel = make(gateway_factory)
    probe_customer(gw)
    for i in range(40):
        push(gw, invoice_data, number=f"E2611-{i:05d}")
    gateways = [second_gateway(gw, channel) for _ in range(4)]
    try:
        threads = [threading.Thread(target=Dispatcher(g, worker=f"w{i}").run)
                   for i, g in enumerate(gateways)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for g in gateways:
            g.close()
    keys = [k for k, _ in channel.calls]
    assert len(keys) == 40 and len(set(keys)) == 40
    assert {d.status for d in gw.store.deliveries()} == {"delivered"}


def test_backoff_grows_with_jitter_and_is_capped(gateway_factory: Any) -> None:
    gw, _ = make(gateway_factory, config="[dispatcher]\nbase_delay = 10\nmax_delay = 100\n")
    dispatcher = Dispatcher(gw)
    for attempts, (low, high) in {1: (5, 10), 2: (10, 20), 3: (20, 40), 4: (40, 80),
                                  5: (50, 100), 9: (50, 100)}.items():
        delays = [dispatcher.backoff(attempts) for _ in range(200)]
        assert low <= min(delays) and max(delays) <= high
        assert len({round(d, 6) for d in delays}) > 150, "jitter spreads the retries"


def test_retries_end_in_a_dead_letter_the_operator_sees_and_can_retry(
        gateway_factory: Any, invoice_data: dict[str, Any], run_cli: Any) -> None:
    gw, channel = make(gateway_factory, config="[dispatcher]\nbase_delay = 0\nmax_attempts = 3\n")
    probe_customer(gw, mode="down")
    invoice_id = push(gw, invoice_data)
    outcomes = [Dispatcher(gw).run() for _ in range(4)]
    assert [(s.retrying, s.dead) for s in outcomes] == [(1, 0), (1, 0), (0, 1), (0, 0)]
    [delivery] = gw.store.deliveries(invoice_id=invoice_id)
    assert delivery.status == "dead" and delivery.attempts == 3
    attempts = gw.store.attempts(delivery.id)
    assert [a.outcome for a in attempts] == ["retry", "retry", "retry"]
    assert all(a.error and "421" in a.error and a.finished_at for a in attempts)

    listing = run_cli("status", "--failed", "--json")
    assert listing.exit_code == 0
    [row] = [json.loads(line) for line in listing.output.splitlines()]
    assert row["status"] == "dead" and row["delivery"] == delivery.id and "421" in row["error"]

    # The receiving side is fixed; the operator sends it around again.
    channel.fixed = True
    retried = run_cli("retry", "--all-failed", "--no-deliver")
    assert retried.exit_code == 0 and "1 deliveries queued again" in retried.output
    again = gw.store.get_delivery(delivery.id)
    assert again is not None and again.status == "retry" and again.attempts == 0
    assert again.requeued_at is not None
    assert len(channel.calls) == 3
    assert Dispatcher(gw).run().delivered == 1
    story = run_cli("status", "E2611-00123", "--json")
    report = json.loads(story.output)
    kinds = [e["kind"] for e in report["events"]]
    assert kinds.count("delivery-retry") == 2 and "delivery-failed" in kinds
    assert kinds[-2:] == ["requeued", "delivered"]
    assert report["deliveries"][0]["status"] == "delivered"
    assert report["deliveries"][0]["receipt"] == "probe:" + delivery.idempotency_key
    history = report["deliveries"][0]["history"]
    assert [a["outcome"] for a in history] == ["retry", "retry", "retry", "delivered"]
    assert all(a["started_at"] <= a["finished_at"] for a in history)
    assert "421" in history[0]["error"] and history[-1]["receipt"].startswith("probe:")


def test_a_permanent_failure_hands_over_to_the_fallback_once(
        gateway_factory: Any, invoice_data: dict[str, Any]) -> None:
    gw, channel = make(gateway_factory)
    add_customer(gw, channels=[
        {"channel": "probe", "name": "mail", "settings": {"mode": "permanent"},
         "fallback": "box"},
        {"channel": "folder", "name": "box"}])
    invoice_id = push(gw, invoice_data)
    Dispatcher(gw).run()
    Dispatcher(gw).run()
    deliveries = gw.store.deliveries(invoice_id=invoice_id)
    by_channel: dict[str, list[str]] = {}
    for d in deliveries:
        by_channel.setdefault(d.label, []).append(d.status)
    # One regular folder delivery plus exactly one fallback for the failed probe.
    assert by_channel == {"mail": ["failed"], "box": ["delivered", "delivered"]}
    [fallback] = [d for d in deliveries if d.fallback_for is not None]
    assert fallback.reason and "550" in fallback.reason
    assert len(channel.calls) == 1


def test_deliveries_older_than_the_age_limit_are_given_up(
        gateway_factory: Any, invoice_data: dict[str, Any]) -> None:
    gw, _ = make(gateway_factory,
                 config="[dispatcher]\nbase_delay = 0\nmax_age_hours = 0.00001\n")
    probe_customer(gw, mode="down")
    invoice_id = push(gw, invoice_data)
    time.sleep(0.05)  # older than 0.036 s
    assert Dispatcher(gw).run().dead == 1
    [delivery] = gw.store.deliveries(invoice_id=invoice_id)
    assert delivery.status == "dead" and delivery.attempts == 1


def test_a_session_that_cannot_open_is_a_failed_attempt_not_a_stuck_lease(
        gateway_factory: Any, invoice_data: dict[str, Any]) -> None:
    gw, channel = make(gateway_factory, config="[dispatcher]\nbase_delay = 0\n")
    probe_customer(gw)
    invoice_id = push(gw, invoice_data)
    channel.session_error = ConnectionRefusedError(111, "Connection refused")
    summary = Dispatcher(gw).run()
    assert summary.retrying == 1
    [delivery] = gw.store.deliveries(invoice_id=invoice_id)
    assert delivery.status == "retry" and delivery.lease_owner is None
    [attempt] = gw.store.attempts(delivery.id)
    assert attempt.outcome == "retry" and "Connection refused" in (attempt.error or "")
    channel.session_error = None
    assert Dispatcher(gw).run().delivered == 1


def test_concurrency_limit_holds_across_processes(
        gateway_factory: Any, invoice_data: dict[str, Any]) -> None:
    gw, channel = make(gateway_factory)
    add_customer(gw, channels=[{"channel": "probe"}, {"channel": "folder"}])
    push(gw, invoice_data, number="A-1")
    push(gw, invoice_data, number="A-2")
    other = second_gateway(gw, channel)
    limits = {"probe": ChannelLimit(concurrency=1)}
    try:
        first = gw.store.claim_delivery("w1", 60, limits=limits)
        assert first is not None and first.channel_type == "probe"
        # The second process may take the folder deliveries but not a second probe one.
        taken = []
        while (record := other.store.claim_delivery("w2", 60, limits=limits)) is not None:
            taken.append(record.channel_type)
        assert taken == ["folder", "folder"]
        assert gw.store.mark_delivered(first.id, "w1", "r", {})
        record = other.store.claim_delivery("w2", 60, limits=limits)
        assert record is not None and record.channel_type == "probe"
    finally:
        other.close()


def test_rate_limit_is_shared_and_spaces_the_attempts(
        gateway_factory: Any, invoice_data: dict[str, Any]) -> None:
    gw, channel = make(gateway_factory,
                       config="[dispatcher.limits.probe]\nper_second = 25\nburst = 2\n")
    probe_customer(gw)
    for i in range(8):
        push(gw, invoice_data, number=f"R-{i}")
    summary = Dispatcher(gw).run()
    assert summary.delivered == 8
    times = sorted(t for _, t in channel.calls)
    # A burst of 2 may start together; after that the budget allows one per 40 ms, so
    # 8 attempts need at least (8 - 2) intervals however fast the machine is.
    assert times[-1] - times[0] >= 6 / 25 - 0.01
    time.sleep(0.1)  # let the 25/s budget of the run above catch up with the clock
    limits = {"probe": ChannelLimit(per_second=0.5)}
    push(gw, invoice_data, number="R-late-1")
    push(gw, invoice_data, number="R-late-2")
    assert gw.store.claim_delivery("w", 60, limits=limits) is not None
    assert gw.store.claim_delivery("w", 60, limits=limits) is None
    until = gw.store.throttled_until(limits)
    assert until is not None and until > time.time() + 1


def _raw(gw: Gateway) -> tuple[Any, type[Exception], str, str]:
    """A plain DB-API connection past the store: (connection, the engine's integrity error,
    its placeholder, the update guard trigger's name)."""
    db = getattr(gw.store, "db", None)
    if db is not None and db.dialect == "postgresql":
        import psycopg

        return (psycopg.connect(db.url), psycopg.errors.RaiseException, "%s",
                "events_append_only ON events")
    return (sqlite3.connect(gw.config.data_dir / "gateway.db"), sqlite3.IntegrityError, "?",
            "events_no_update")


def test_history_is_append_only_and_tampering_is_found(
        gateway_factory: Any, invoice_data: dict[str, Any], run_cli: Any) -> None:
    gw, _ = make(gateway_factory)
    probe_customer(gw)
    invoice_id = push(gw, invoice_data)
    Dispatcher(gw).run()
    db, refused, p, trigger = _raw(gw)
    try:
        with pytest.raises(refused, match="append-only"):
            db.execute(f"UPDATE events SET kind = 'x' WHERE invoice_id = {p}", (invoice_id,))
        db.rollback()
        with pytest.raises(refused, match="append-only"):
            db.execute(f"DELETE FROM events WHERE invoice_id = {p}", (invoice_id,))
        db.rollback()
        # A write killed halfway leaves a temporary file in the archive: noted, not a problem.
        [doc] = gw.store.documents(invoice_id)
        (gw.archive.path_for(doc.sha256).parent / ".tmp-abc123").write_bytes(b"half")
        clean = run_cli("verify")
        assert clean.exit_code == 0, clean.output
        assert "1 temporary file from interrupted writes" in clean.output
        # Someone with write access drops the guard and rewrites history anyway.
        db.execute(f"DROP TRIGGER {trigger}")
        db.execute("UPDATE events SET data_json = '{\"channel\": \"elsewhere\"}' "
                   f"WHERE invoice_id = {p} AND kind = 'delivered'", (invoice_id,))
        db.commit()
    finally:
        db.close()
    result = run_cli("verify")
    assert result.exit_code == 1
    assert "history of invoice E2611-00123: event 4 (delivered) does not match" in result.output


@pytest.mark.sqlite_only
def test_a_locked_database_is_a_clear_error_and_changes_nothing(
        gateway_factory: Any, invoice_data: dict[str, Any]) -> None:
    gw, _ = make(gateway_factory)
    probe_customer(gw)
    path = gw.config.data_dir / "gateway.db"
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        store = gw.store
        assert isinstance(store, SQLiteStore)
        store._db.execute("PRAGMA busy_timeout = 200")
        data = dict(invoice_data)
        with pytest.raises(StorageError, match="locked by another process"):
            gw.push(load_invoice(data), source="locked.json")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert gw.store.list_invoices() == []
    result = gw.push(load_invoice(invoice_data), source="later.json")
    assert result.status == "accepted"
