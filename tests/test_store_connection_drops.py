"""The PostgreSQL server drops connections (an operator's ``pg_terminate_backend``, a
failover, a restart): the store and the dispatcher carry on, and nothing that happened
is forgotten. Found by the distributed chaos round (tests/distributed/chaos.py), which
drops every connection every few seconds; here each case is made to happen exactly once.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

import psycopg
import pytest
from pydantic import BaseModel

from gateway import Bundle, DeliveryState, Receipt, hookimpl
from gateway.core import Dispatcher, load_invoice
from gateway.core.storage.postgres import PostgresDatabase
from tests.conftest import add_customer


@pytest.fixture
def store_backend() -> str:
    return "postgresql"


def _drop_every_connection(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
    return len(rows)


def _idle_connections(db: PostgresDatabase, count: int) -> None:
    """Leave ``count`` connections idle in the pool (as a busy worker's pool has)."""
    with contextlib.ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(db.tx()).execute("SELECT 1")


def test_every_pooled_connection_dropped_at_once_the_next_transaction_and_read_work(
        store_url: str) -> None:
    """More dropped connections idle in the pool than a transaction tries: the first
    dropped one makes the pool test the rest, so the next try gets a live one."""
    db = PostgresDatabase(store_url, max_size=8)
    try:
        _idle_connections(db, 6)
        assert _drop_every_connection(store_url) >= 6
        with db.tx() as cur:
            assert cur.execute("SELECT 41 + 1 AS n").fetchone()["n"] == 42
        _idle_connections(db, 6)
        assert _drop_every_connection(store_url) >= 6
        assert db.query("SELECT 42 AS n") == [{"n": 42}]
    finally:
        db.close()


def _drop_the_connection_once_when(store_url: str, condition: str) -> None:
    """The server ends the session of the first transaction that updates a delivery
    so that ``condition`` (on NEW) holds, in the middle of that transaction."""
    with psycopg.connect(store_url, autocommit=True) as conn:
        # A sequence, not a table: it keeps its count when the transaction is lost.
        conn.execute("CREATE SEQUENCE drops")
        conn.execute(f"""
            CREATE FUNCTION drop_the_connection() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF {condition} AND nextval('drops') = 1 THEN
                    PERFORM pg_terminate_backend(pg_backend_pid());
                END IF;
                RETURN NEW;
            END $$""")
        conn.execute("CREATE TRIGGER drop_once BEFORE UPDATE ON deliveries FOR EACH ROW "
                     "EXECUTE FUNCTION drop_the_connection()")


def test_a_connection_dropped_while_recording_a_sent_delivery_is_recorded_once(
        gateway_factory: Any, invoice_data: dict[str, Any], store_url: str) -> None:
    """The server ends the session in the middle of the transaction that records a
    delivery the channel already made. The dispatcher records it again on a new
    connection rather than leave it to the lease (which sends it again: for e-mail, a
    second copy): one attempt, delivered, in the same run."""
    gw = gateway_factory()
    add_customer(gw)
    assert gw.push(load_invoice(invoice_data), source="x.json").status == "accepted"
    _drop_the_connection_once_when(store_url, "NEW.status = 'delivered'")
    summary = Dispatcher(gw).run()
    assert (summary.delivered, summary.retrying, summary.lost) == (1, 0, 0)
    with psycopg.connect(store_url, autocommit=True) as conn:
        assert conn.execute("SELECT last_value FROM drops").fetchone() == (2,)
    [delivery] = gw.store.deliveries()
    assert delivery.status == "delivered" and delivery.receipt_id
    assert [a.outcome for a in gw.store.attempts(delivery.id)] == ["delivered"]
    assert gw.store.verify_events(delivery.invoice_id) is None
    gw.close()


class _Settings(BaseModel):
    pass


class TwoRecipients:
    """Delivers to two recipients, saving its progress after each (as e-mail does)."""

    name: ClassVar[str] = "two-recipients"
    description: ClassVar[str] = "test channel"
    Settings: ClassVar[type[BaseModel]] = _Settings

    def __init__(self) -> None:
        self.sent: list[str] = []

    def deliver(self, bundle: Bundle, settings: Any, state: DeliveryState) -> Receipt:
        for recipient in ("a", "b"):
            if not state.done(recipient):
                self.sent.append(recipient)
                state.mark_done(recipient, "250 OK")
        return Receipt(id=f"two:{bundle.idempotency_key}")

    @hookimpl
    def gateway_register_channels(self, register: Any) -> None:
        register(self)


def test_a_connection_dropped_while_saving_a_channels_progress_costs_no_attempt(
        gateway_factory: Any, invoice_data: dict[str, Any], store_url: str) -> None:
    """The session ends while the channel saves that a recipient has the invoice. The
    save is made again on a new connection: the database's fault is not the channel's
    failure (no attempt spent, no retry), and no recipient gets it twice."""
    channel = TwoRecipients()
    gw = gateway_factory(extra_plugins=(("two", channel),))
    add_customer(gw, channels=[{"channel": "two-recipients", "name": "two"}])
    assert gw.push(load_invoice(invoice_data), source="x.json").status == "accepted"
    _drop_the_connection_once_when(store_url, "NEW.state_json IS DISTINCT FROM OLD.state_json")
    summary = Dispatcher(gw).run()
    assert (summary.delivered, summary.retrying, summary.lost) == (1, 0, 0)
    assert channel.sent == ["a", "b"]
    [delivery] = gw.store.deliveries()
    assert delivery.status == "delivered"
    assert [a.outcome for a in gw.store.attempts(delivery.id)] == ["delivered"]
    gw.close()
