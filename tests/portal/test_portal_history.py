"""An invoice's events in words, as the customer and the operator see them."""

from __future__ import annotations

from typing import Any

from gateway.core.storage import DeliveryRecord, Event
from plugins.portal import history
from plugins.portal.state import PortalSettings
from tests.portal.conftest import OPERATOR_PASSWORD


class _Portal:
    settings = PortalSettings()


def _delivery(label: str, channel_type: str) -> DeliveryRecord:
    return DeliveryRecord(
        id=1, invoice_id="i", customer_id="c", label=label, channel_type=channel_type,
        settings={}, formats=[], fallback=None, idempotency_key=f"i:{label}",
        status="delivered", attempts=1, next_attempt_at=0, lease_owner=None,
        lease_expires=None, last_error=None, receipt_id=None, receipt=None, state={},
        fallback_for=None, reason=None, created_at=0, updated_at=0)


def _event(seq: int, kind: str, **data: object) -> Event:
    return Event("i", seq, 1.8e9 + seq, kind, dict(data), "", "")


def test_every_kind_of_event_in_both_languages() -> None:
    """Events in the words written before core migration 0003: "channel" the label."""
    deliveries = [_delivery("office", "email"), _delivery("erp", "sftp-push"),
                  _delivery("sftp-mailbox", "sftp-mailbox"), _delivery("portal", "portal"),
                  _delivery("print", "folder")]
    events = [
        _event(1, "accepted", number="E1"),
        _event(2, "rendered", format="pdf"),
        _event(3, "queued", channel="office"),
        _event(4, "delivery-retry", channel="office", error="421 busy"),
        _event(5, "delivery-failed", channel="office", error="550 no such user"),
        _event(6, "fallback", to="portal"),
        _event(7, "delivered", channel="portal"),
        _event(8, "delivered", channel="erp"),
        _event(9, "delivered", channel="sftp-mailbox"),
        _event(10, "downloaded", via="sftp-mailbox", format="pdf"),
        _event(11, "acknowledged", via="sftp-mailbox"),
        _event(12, "viewed", via="portal"),
        _event(13, "downloaded", via="portal", format="ubl"),
        _event(14, "delivered", channel="print"),
        _event(15, "requeued", channel="office"),
        _event(16, "delivered", channel="office", recipients={"janis@example.lv": "250"}),
        _event(17, "something-new", x=1),
    ]
    customer = history.describe(events, deliveries, _Portal(), "lv")  # type: ignore[arg-type]
    assert [line.text for line in customer] == [
        "Rēķins saņemts", "Sagatavots PDF", "E-pasts nav piegādāts", "Publicēts portālā",
        "Augšupielādēts SFTP", "Ievietots Jūsu SFTP pastkastītē", "Lejupielādēts no SFTP",
        "Saņemšana apstiprināta (SFTP)", "Skatīts portālā", "Lejupielādēts portālā: UBL",
        "Piegādāts: print", "Atkārtota sūtīšana: office", "Nosūtīts pa e-pastu",
        "something-new"]
    assert customer[2].css == "bad" and customer[2].detail == "550 no such user"
    assert customer[12].detail == "janis@example.lv"
    operator = history.describe(events, deliveries, _Portal(), "en",  # type: ignore[arg-type]
                                internal=True)
    texts = [line.text for line in operator]
    assert "Queued for office" in texts
    assert "Delivery will be retried: office" in texts
    assert "Fallback channel: portal" in texts
    assert "Downloaded over SFTP" in texts
    assert len(operator) == len(events)


def test_events_in_the_new_words_read_the_same() -> None:
    """Since core migration 0003 an event names the channel type and the label; the
    customer reads the same lines as for the history written before."""
    deliveries = [_delivery("office", "email"), _delivery("erp", "sftp-push")]
    old = [_event(1, "queued", channel="office"),
           _event(2, "delivery-failed", channel="office", error="550 no such user"),
           _event(3, "delivered", channel="erp"), _event(4, "requeued", channel="office")]
    new = [_event(e.seq, e.kind, **{**e.data, "channel": ch, "label": e.data["channel"]})
           for e, ch in zip(old, ["email", "email", "sftp-push", "email"], strict=True)]
    for internal in (False, True):
        lines = [history.describe(events, deliveries, _Portal(), "en",  # type: ignore[arg-type]
                                  internal=internal) for events in (old, new)]
        assert [(x.text, x.css) for x in lines[0]] == [(x.text, x.css) for x in lines[1]]
    # a new event needs no delivery to know its type
    (line,) = history.describe(new[2:3], [], _Portal(), "en")  # type: ignore[arg-type]
    assert line.text == "Uploaded over SFTP"


def test_the_operator_sees_each_delivery_by_label_and_channel(server: Any) -> None:
    """The operator's pages name a delivery by the customer's label, with the channel
    type beside it (customer A calls their test e-mail channel "email")."""
    op = server.login("operator@daugavas.lv", OPERATOR_PASSWORD)
    shown = '<td>email <small class="muted">testmail</small>'
    page = op.get(f"/operator/invoices/{server.world.a_ids[0]}")
    assert page.status_code == 200 and shown in page.text
    assert shown in op.get("/operator").text  # the failed delivery in the list
