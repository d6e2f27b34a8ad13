"""The ``portal`` channel: publishing is idempotent and shows a notice once."""

from __future__ import annotations

from typing import Any

from gateway import Bundle, DeliveryState, Invoice
from gateway.core import Dispatcher
from plugins.portal.channel import PortalChannel
from plugins.portal.db import PortalDB
from tests.portal.conftest import PASSWORD_B, Server, World


def _bundle(world: World, key: str, reason: str | None = None) -> Bundle:
    record = world.gw.store.get_invoice(world.b_ids[0])
    assert record is not None
    return Bundle(invoice_id=record.id, invoice=Invoice.model_validate_json(record.invoice_json),
                  customer_id=record.customer_id, customer_name="x", language="en",
                  documents=(), idempotency_key=key, reason=reason)


def test_publishing_twice_gives_the_same_receipt(world: World) -> None:
    channel = PortalChannel()
    channel.configure({}, world.data_dir)
    state = DeliveryState({}, lambda data: None)
    first = channel.deliver(_bundle(world, "k1"), None, state)
    again = channel.deliver(_bundle(world, "k1"), None, state)
    assert first.id == again.id and first.id.startswith("portal:")
    # a fallback publication of the same invoice keeps the first publication row
    channel.deliver(_bundle(world, "k2", reason="email failed"), None, state)
    db = PortalDB(world.data_dir / "portal.db")
    try:
        row = db.db.one("SELECT count(*) AS n FROM publications WHERE invoice_id = ?",
                        (world.b_ids[0],))
        assert row is not None and row["n"] == 1
    finally:
        db.close()


def test_published_invoice_shows_a_notice_until_viewed(server: Server,
                                                       load_example: Any) -> None:
    world = server.world
    # B's invoice was published by the dispatcher through the portal channel.
    [delivery] = world.gw.store.deliveries(invoice_id=world.b_ids[0])
    assert (delivery.channel_type, delivery.status) == ("portal", "delivered")
    assert delivery.receipt_id is not None and delivery.receipt_id.startswith("portal:")
    b = server.login("anna@ceptuve.lv", PASSWORD_B)
    page = b.get("/invoices").text
    assert "New invoice E2611-00125" in page
    assert b.get(f"/invoices/{world.b_ids[0]}").status_code == 200
    assert "New invoice" not in b.get("/invoices").text
    kinds = [e.kind for e in world.gw.store.events(world.b_ids[0])]
    assert kinds.count("viewed") == 1
    b.get(f"/invoices/{world.b_ids[0]}")
    assert [e.kind for e in world.gw.store.events(world.b_ids[0])].count("viewed") == 1
    assert world.gw.store.verify_events(world.b_ids[0]) is None


def test_email_failure_falls_back_to_the_portal(world: World) -> None:
    deliveries = world.gw.store.deliveries(invoice_id=world.failed_id)
    by_channel = {d.label: d for d in deliveries}
    assert by_channel["email"].status == "failed"
    assert by_channel["portal"].status == "delivered"
    assert by_channel["portal"].fallback_for == by_channel["email"].id
    db = PortalDB(world.data_dir / "portal.db")
    try:
        publication = db.publication(world.failed_id)
    finally:
        db.close()
    assert publication is not None and "550 5.1.1" in (publication.reason or "")
    assert Dispatcher(world.gw).run().attempted == 0  # nothing left to do


def test_prefetch_is_not_a_view(server: Server) -> None:
    world = server.world
    b = server.login("anna@ceptuve.lv", PASSWORD_B)
    r = b.get(f"/invoices/{world.b_ids[0]}", headers={"Sec-Purpose": "prefetch;prerender"})
    assert r.status_code == 200
    assert "New invoice E2611-00125" in b.get("/invoices").text
    assert "viewed" not in [e.kind for e in world.gw.store.events(world.b_ids[0])]
