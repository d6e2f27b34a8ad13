"""An API push never waits long for a slow customer server.

Real servers on 127.0.0.1 (aiosmtpd, OpenSSH's sshd) behind a proxy that accepts and
then stalls: the push answers once ``deliver_wait_seconds`` is spent, saying which
deliveries are still pending; the attempt in flight is finished under its lease (the
dispatcher running meanwhile does not take it over), and after the dispatcher has run
every delivery has arrived exactly once.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from gateway.core import Dispatcher, Gateway
from gateway.core.storage import DELIVERED, DELIVERING
from tests.portal.conftest import FORMATS, TestPlugin, World, serve
from tests.portal.stall_proxy import StallProxy
from tests.sftp.sftp_servers import SSHD, OpenSshServer, free_port, keygen

CUSTOMER = "300000001"
SELLER = "LV40003000001"
WAIT = 1.0  # deliver_wait_seconds: small, so that the test is quick
LEASE = 2.0  # short, so that the in-flight attempt must have its lease renewed


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.original_content)
        return "250 2.0.0 queued"

    def message_ids(self) -> list[str]:
        import email
        from email import policy

        return [str(email.message_from_bytes(m, policy=policy.default)["Message-ID"])
                for m in self.messages]


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(),
                            auth_require_tls=False)
    controller.start()
    yield handler, controller.port
    controller.stop()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[OpenSshServer]:
    if not shutil.which("ssh-keygen") or not Path(SSHD).exists():
        pytest.fail("OpenSSH (openssh-server, openssh-client) is required; run scripts/setup.sh")
    server = OpenSshServer(tmp_path / "sshd", keygen(tmp_path / "erp-key"))
    server.start()
    yield server
    server.stop()


def _config(smtp_port: int, *, smtp_timeout: float = 20, lease: float = LEASE) -> str:
    return f"""
[dispatcher]
base_delay = 0
max_attempts = 5
lease_seconds = {lease}

[network]
allow = ["127.0.0.1/32"]

[plugins.email]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "Daugavas Elektrība <rekini@daugavas-elektriba.lv>"
connect_timeout = {smtp_timeout}
timeout = {smtp_timeout}

[plugins.portal]
deliver_wait_seconds = {WAIT}
"""


def _add_customer(gw: Gateway, channels: list[dict[str, Any]], formats: list[str]) -> None:
    from gateway.core import Customer

    customer = Customer.model_validate({
        "id": CUSTOMER, "name": "Slow Servers SIA", "formats": formats,
        "match": ["LV40300000001"], "channels": channels})
    gw.check_customer(customer)
    gw.store.put_customer(customer, actor="test")


def _gateway(gateway_factory: Any, monkeypatch: pytest.MonkeyPatch, smtp_port: int,
             channels: list[dict[str, Any]], *, smtp_timeout: float = 20) -> Gateway:
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "json,folder,portal,email,sftp")
    gw: Gateway = gateway_factory(extra_plugins=(("portal-tests", TestPlugin()),),
                                  config=_config(smtp_port, smtp_timeout=smtp_timeout))
    _add_customer(gw, channels, FORMATS)
    return gw


def _push(world: World, load_example: Any, number: str) -> tuple[httpx.Response, float]:
    data = copy.deepcopy(load_example("electricity-household.json"))
    data["number"] = number
    with serve(world) as server:
        token = server.token("billing")
        with server.client(headers={"Authorization": f"Bearer {token}",
                                    "Content-Type": "application/json"}) as api:
            began = time.monotonic()
            response = api.post(f"/api/v1/invoices?customer={CUSTOMER}",
                                content=json.dumps(data).encode())
            return response, time.monotonic() - began


def _world(gw: Gateway) -> World:
    return World(gw, [], [], [], [], "", FORMATS)


def _settle(gw: Gateway, invoice_id: str, seconds: float = 60) -> None:
    """Wait until no delivery of the invoice is being sent any more."""
    deadline = time.monotonic() + seconds
    while any(d.status == DELIVERING for d in gw.store.deliveries(invoice_id=invoice_id)):
        assert time.monotonic() < deadline, "the attempt in flight never finished"
        time.sleep(0.1)


@pytest.mark.both_stores
def test_a_push_answers_within_its_wait_and_a_stalled_email_arrives_once(
        gateway_factory: Any, monkeypatch: pytest.MonkeyPatch, load_example: Any,
        inbox: tuple[Inbox, int]) -> None:
    """The SMTP server stalls far longer than the push may wait: the push answers with
    both deliveries pending, the dispatcher delivers the folder one and leaves the
    e-mail being sent alone (its lease is renewed), and once the server answers the
    e-mail is sent once, by the attempt that was in flight."""
    handler, smtp_port = inbox
    proxy = StallProxy(smtp_port)
    try:
        gw = _gateway(gateway_factory, monkeypatch, proxy.port, [
            {"channel": "email", "settings": {"to": ["gramatvediba@example.lv"]}},
            {"channel": "folder", "name": "archive-copy"}])
        response, took = _push(_world(gw), load_example, "E-SLOW-SMTP")
        # Without the wait it would have taken until the SMTP timeout (20 s).
        assert took < WAIT + 8, f"the push took {took:.1f} s"
        assert response.status_code == 201, response.text
        out = response.json()
        deliveries = {d["channel_type"]: d for d in out["invoice"]["deliveries"]}
        assert sorted(out["pending"]) == sorted(d["id"] for d in deliveries.values())
        assert deliveries["email"]["status"] == DELIVERING  # the attempt in flight
        assert deliveries["folder"]["status"] == "pending"  # not begun: the dispatcher's
        assert "deliver_wait_seconds" in out["message"]
        assert proxy.accepted == 1

        # The dispatcher runs while the e-mail is still stuck, after its first lease
        # would have run out: it sends the rest and does not touch the e-mail.
        time.sleep(LEASE + 0.5)
        summary = Dispatcher(gw).run()
        assert (summary.delivered, summary.attempted) == (1, 1)
        email_id = deliveries["email"]["id"]
        assert gw.store.get_delivery(email_id).status == DELIVERING

        proxy.gate.set()  # the server answers at last
        _settle(gw, out["id"])
        assert Dispatcher(gw).run().attempted == 0
        records = gw.store.deliveries(invoice_id=out["id"])
        assert [(d.status, d.attempts) for d in records] == [(DELIVERED, 1)] * 2
        assert len(handler.messages) == 1
        assert proxy.accepted == 1
        copies = list((gw.config.data_dir / "deliveries" / CUSTOMER).rglob("*.*"))
        assert len(copies) == len(FORMATS)
    finally:
        proxy.close()


def test_an_sftp_server_that_never_answers_is_retried_by_the_dispatcher_once(
        gateway_factory: Any, monkeypatch: pytest.MonkeyPatch, load_example: Any,
        inbox: tuple[Inbox, int], sshd: OpenSshServer) -> None:
    """The customer's SFTP server accepts the connection and says nothing: the push
    answers within its wait; the attempt in flight ends by the channel's own timeout as
    a retry (not lost, not left leased); the dispatcher's retry uploads each file once."""
    handler, smtp_port = inbox
    proxy = StallProxy(sshd.port, silent=1)
    proxy.gate.set()  # after the first (silent) connection, the server answers
    try:
        gw = _gateway(gateway_factory, monkeypatch, smtp_port, [
            {"channel": "sftp-push", "name": "erp",
             "settings": sshd.settings(port=proxy.port, timeout=4.0)},
            {"channel": "email", "settings": {"to": ["gramatvediba@example.lv"]}}])
        response, took = _push(_world(gw), load_example, "E-SLOW-SFTP")
        assert took < WAIT + 8, f"the push took {took:.1f} s"
        assert response.status_code == 201, response.text
        out = response.json()
        deliveries = {d["channel_type"]: d for d in out["invoice"]["deliveries"]}
        assert sorted(out["pending"]) == sorted(d["id"] for d in deliveries.values())
        assert deliveries["sftp-push"]["status"] == DELIVERING

        _settle(gw, out["id"])
        sftp = gw.store.get_delivery(deliveries["sftp-push"]["id"])
        assert (sftp.status, sftp.attempts) == ("retry", 1)
        assert [a.outcome for a in gw.store.attempts(sftp.id)] == ["retry"]
        summary = Dispatcher(gw).run()
        assert summary.delivered == 2, summary
        records = gw.store.deliveries(invoice_id=out["id"])
        assert all(d.status == DELIVERED for d in records)
        assert sorted(p.name for p in sshd.upload.iterdir()) == sorted(
            f"E-SLOW-SFTP.{ext}" for ext in ("pdf", "xml"))
        assert len(handler.messages) == 1
        assert Dispatcher(gw).run().attempted == 0
    finally:
        proxy.close()


def test_the_operators_retry_answers_within_the_wait_and_sends_once(
        gateway_factory: Any, monkeypatch: pytest.MonkeyPatch, load_example: Any,
        inbox: tuple[Inbox, int]) -> None:
    """The retry button delivers at once, bounded like a push: the page comes back
    while the SMTP server still stalls, and the e-mail is sent once when it answers."""
    from gateway.core import Invoice
    from plugins.portal.db import PortalDB
    from tests.portal.conftest import OPERATOR_PASSWORD, csrf_of, hash_password

    handler, smtp_port = inbox
    proxy = StallProxy(smtp_port, silent=1)  # the first attempt times out: a retry
    try:
        gw = _gateway(gateway_factory, monkeypatch, proxy.port, [
            {"channel": "email", "settings": {"to": ["gramatvediba@example.lv"]}}],
            smtp_timeout=1)
        data = copy.deepcopy(load_example("electricity-household.json"))
        data["number"] = "E-RETRY"
        result = gw.push(Invoice.model_validate(data), source="test", customer_id=CUSTOMER)
        assert result.invoice_id is not None
        assert Dispatcher(gw).run().retrying == 1
        [delivery] = gw.store.deliveries(invoice_id=result.invoice_id)
        db = PortalDB(gw.config.data_dir / "portal.db")
        db.add_account(email="operator@daugavas.lv", password_hash=hash_password(
            OPERATOR_PASSWORD), role="operator", customer_id=None, created_by="test")
        db.close()
        # The retry meets a server that is slow, not dead: it must outlast the wait.
        gw.config.plugins["email"].update(connect_timeout=20, timeout=20)
        with serve(_world(gw)) as server:
            op = server.login("operator@daugavas.lv", OPERATOR_PASSWORD)
            csrf = csrf_of(op.get("/operator").text)
            began = time.monotonic()
            page = op.post("/operator/retry", data={"csrf": csrf, "delivery": str(delivery.id)})
            took = time.monotonic() - began
            assert page.status_code == 200, page.text
            assert took < WAIT + 8, f"the retry took {took:.1f} s"
            assert gw.store.get_delivery(delivery.id).status == DELIVERING
            proxy.gate.set()
            _settle(gw, result.invoice_id)
        assert Dispatcher(gw).run().attempted == 0
        record = gw.store.get_delivery(delivery.id)
        assert record.status == DELIVERED
        assert [a.outcome for a in gw.store.attempts(delivery.id)] == ["retry", "delivered"]
        assert len(handler.messages) == 1
    finally:
        proxy.close()


@pytest.mark.both_stores
def test_a_server_killed_during_the_attempt_in_flight_loses_nothing(
        tmp_path: Path, gateway_factory: Any, monkeypatch: pytest.MonkeyPatch,
        load_example: Any, inbox: tuple[Inbox, int]) -> None:
    """``gateway serve portal`` as its own process is SIGKILLed while the e-mail of a
    push it answered is still being sent: the dispatcher sees the dead worker, takes the
    delivery over at once (no waiting for the lease) and the e-mail arrives once."""
    import os
    import signal
    import subprocess
    import sys

    from plugins.portal.db import PortalDB
    from plugins.portal.security import new_token, token_hash

    handler, smtp_port = inbox
    proxy = StallProxy(smtp_port)
    data_dir = tmp_path / "served"
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "json,folder,portal,email")
    gw: Gateway = gateway_factory(data_dir=data_dir,
                                  config=_config(proxy.port, smtp_timeout=60, lease=600))
    _add_customer(gw, [{"channel": "email", "settings": {"to": ["gramatvediba@example.lv"]}}],
                  ["json"])
    token = new_token()
    db = PortalDB(data_dir / "portal.db")
    db.add_token("billing", SELLER, token_hash(token))
    db.close()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "portal", "--port", str(port)],
        env={**os.environ, "GATEWAY_DATA_DIR": str(data_dir)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        data = copy.deepcopy(load_example("electricity-household.json"))
        data["number"] = "E-KILLED"
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, headers={
                "Authorization": f"Bearer {token}", "Content-Type": "application/json"}) as api:
            while True:
                try:
                    api.get("/login")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None and time.monotonic() < deadline, \
                        "the portal did not start"
                    time.sleep(0.2)
            r = api.post(f"/api/v1/invoices?customer={CUSTOMER}",
                         content=json.dumps(data).encode())
        assert r.status_code == 201, r.text
        out = r.json()
        [delivery] = out["invoice"]["deliveries"]
        assert out["pending"] == [delivery["id"]]
        assert delivery["status"] == DELIVERING
        proc.send_signal(signal.SIGKILL)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(20)
    try:
        proxy.gate.set()  # the server answers now: too late for the killed attempt
        summary = Dispatcher(gw).run()
        assert (summary.delivered, summary.lost) == (1, 0), summary
        assert gw.store.get_delivery(delivery["id"]).status == DELIVERED
        assert [a.outcome for a in gw.store.attempts(delivery["id"])] == [
            "abandoned", "delivered"]
        time.sleep(0.5)  # let the killed connection's proxy thread pass its bytes, if any
        assert len(handler.messages) == 1
        assert Dispatcher(gw).run().attempted == 0
    finally:
        proxy.close()


def test_a_push_waiting_for_its_deliveries_leaves_the_worker_to_the_next_push(
        gateway_factory: Any, monkeypatch: pytest.MonkeyPatch, load_example: Any,
        inbox: tuple[Inbox, int]) -> None:
    """With one API worker, a push waiting on a stalled SMTP server does not hold it:
    another billing system's push is answered meanwhile."""
    import threading

    from gateway.core.limits import Limits

    handler, smtp_port = inbox
    proxy = StallProxy(smtp_port)
    try:
        gw = _gateway(gateway_factory, monkeypatch, proxy.port, [
            {"channel": "email", "settings": {"to": ["gramatvediba@example.lv"]}}])
        gw.config.plugins["portal"]["deliver_wait_seconds"] = 20
        gw.config = gw.config.model_copy(update={"limits": Limits(api_workers=1)})
        answered: list[str] = []
        with serve(_world(gw)) as server:
            token = server.token("billing")
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

            def push(number: str, query: str = "") -> None:
                data = copy.deepcopy(load_example("electricity-household.json"))
                data["number"] = number
                with httpx.Client(base_url=server.url, headers=headers, timeout=60) as api:
                    r = api.post(f"/api/v1/invoices?customer={CUSTOMER}{query}",
                                 content=json.dumps(data).encode())
                    answered.append(f"{number} {r.status_code}")

            waiting = threading.Thread(target=push, args=("E-WAITS",))
            waiting.start()
            deadline = time.monotonic() + 30
            while proxy.accepted == 0:  # E-WAITS is in its delivery wait
                assert time.monotonic() < deadline, "the first push never began delivering"
                time.sleep(0.05)
            push("E-NEXT", "&deliver=false")
            proxy.gate.set()
            waiting.join(60)
            _settle(gw, gw.store.find_invoice(SELLER, "E-WAITS").id)  # type: ignore[union-attr]
        assert answered == ["E-NEXT 201", "E-WAITS 201"]
        assert len(handler.messages) == 1
    finally:
        proxy.close()


def test_pushes_waiting_on_a_stalled_server_leave_the_web_threads_to_other_requests(
        gateway_factory: Any, monkeypatch: pytest.MonkeyPatch, load_example: Any,
        inbox: tuple[Inbox, int]) -> None:
    """More pushes wait for their deliveries than the web server has worker threads
    (anyio's 40): a synchronous API read is still answered at once, and every e-mail
    arrives once when the server answers."""
    import threading

    pushes = 44
    handler, smtp_port = inbox
    proxy = StallProxy(smtp_port)
    try:
        gw = _gateway(gateway_factory, monkeypatch, proxy.port, [
            {"channel": "email", "settings": {"to": ["gramatvediba@example.lv"]}}])
        gw.config.plugins["portal"]["deliver_wait_seconds"] = 25  # its upper bound
        answered: list[int] = []
        with serve(_world(gw)) as server:
            token = server.token("billing")
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

            def push(number: str) -> None:
                data = copy.deepcopy(load_example("electricity-household.json"))
                data["number"] = number
                with httpx.Client(base_url=server.url, headers=headers, timeout=120) as api:
                    r = api.post(f"/api/v1/invoices?customer={CUSTOMER}",
                                 content=json.dumps(data).encode())
                    answered.append(r.status_code)

            threads = [threading.Thread(target=push, args=(f"E-WAIT-{i:02d}",))
                       for i in range(pushes)]
            for thread in threads:
                thread.start()
            # Well inside the 25 s wait: pushes that each held a thread while waiting left
            # none for the pushes behind them, which were then not even stored.
            deadline = time.monotonic() + 15
            while True:  # every push stored, the first e-mails stuck in the proxy
                counts = gw.store.queue_counts()
                if (counts.get("delivery pending", 0) + counts.get("delivery delivering", 0)
                        == pushes and counts.get("delivery delivering", 0) > 0):
                    break
                assert time.monotonic() < deadline, f"pushes not taken in: {counts}"
                time.sleep(0.1)
            time.sleep(1.0)  # the last ones reach their delivery wait
            assert not answered  # all still waiting
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as api:
                began = time.monotonic()
                found = api.get("/api/v1/invoices", params={"number": "E-WAIT-00"})
                took = time.monotonic() - began
            assert found.status_code == 200, found.text
            assert took < 5, f"a read waited {took:.1f} s for a web server thread"
            proxy.gate.set()
            for thread in threads:
                thread.join(120)
        assert answered == [201] * pushes
        Dispatcher(gw).run()  # what the waits left pending
        assert len(handler.messages) == pushes
        assert len(set(handler.message_ids())) == pushes
    finally:
        proxy.close()
