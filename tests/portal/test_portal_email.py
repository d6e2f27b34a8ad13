"""With the real e-mail plugin and a real SMTP server (aiosmtpd on 127.0.0.1) that
refuses one mailbox: the bounced invoice is marked 'e-mail failed' in the portal with
the server's reply, and is there to download."""

from __future__ import annotations

from typing import Any

from aiosmtpd.controller import Controller

from gateway.core import Dispatcher, Invoice
from plugins.portal.db import PortalDB
from tests.conftest import add_customer
from tests.portal.conftest import PASSWORD_A, World, free_port, hash_password, serve


class Refusing:
    def __init__(self) -> None:
        self.received: list[Any] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if address.endswith("@bounce.example"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(envelope)
        return "250 2.0.0 queued"


def test_real_smtp_bounce_shows_in_the_portal(gateway_factory: Any, load_example: Any,
                                              monkeypatch: Any) -> None:
    handler = Refusing()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "json,folder,portal,email")
        gw = gateway_factory(config=f"""
[plugins.email]
host = "127.0.0.1"
port = {port}
security = "none"
from = "rekini@daugavas-elektriba.lv"
""")
        add_customer(gw, id="100234567", formats=["json"], match=["C-100234567"],
                     channels=[{"channel": "email",
                                "settings": {"to": ["janis@bounce.example"]},
                                "fallback": "portal"}])
        add_customer(gw, id="200987654", name="Ziemeļu Ceptuve SIA", formats=["json"],
                     match=["LV40103987654"],
                     channels=[{"channel": "email", "settings": {"to": ["anna@ceptuve.lv"]}}])
        bounced = gw.push(Invoice.model_validate(load_example("electricity-household.json")),
                          source="test")
        sent = gw.push(Invoice.model_validate(load_example("electricity-business.json")),
                       source="test")
        assert bounced.status == sent.status == "accepted"
        Dispatcher(gw).run()
        assert [e.rcpt_tos for e in handler.received] == [["anna@ceptuve.lv"]]
        db = PortalDB(gw.config.data_dir / "portal.db")
        db.add_account(email="janis@example.lv", password_hash=hash_password(PASSWORD_A),
                       role="customer", customer_id="100234567", created_by="test")
        db.close()
        assert bounced.invoice_id is not None
        world = World(gw, [bounced.invoice_id], [], [bounced.number or ""], [],
                      bounced.invoice_id, ["json"])
        with serve(world) as server:
            a = server.login("janis@example.lv", PASSWORD_A)
            listing = a.get("/invoices").text
            assert 'data-status="st_email_failed"' in listing
            assert "Recipient address rejected" in listing
            page = a.get(f"/invoices/{bounced.invoice_id}").text
            assert 'id="email-failed"' in page
            assert "550 5.1.1" in page
            assert "Publicēts portālā" in page
            r = a.get(f"/invoices/{bounced.invoice_id}/documents/json")
            assert r.status_code == 200
            doc = gw.store.documents(bounced.invoice_id)[0]
            assert r.content == gw.archive.get(doc.sha256)
    finally:
        controller.stop()
