"""sftp-push's session and receipt, against real OpenSSH sshd servers on 127.0.0.1.

The session the channel yields holds the run's connections: one per destination, reused
by every delivery to it and closed when the run ends. The receipt says where each file
went, its size and sha256, and which host key the server proved it holds.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from sftp_servers import DISPATCH_CONFIG, OpenSshServer, deliver, invoice, push, sftp_customer

from gateway import Bundle, DeliveryState, Document
from plugins.sftp.keys import parse_public_key


def _bundle(inv: Any, number: str) -> Bundle:
    content = json.dumps({"number": number}).encode()
    return Bundle(invoice_id=number, invoice=inv, customer_id="100234567",
                  customer_name="B", language="lv", idempotency_key=f"test:{number}",
                  documents=(Document("json", "application/json", f"{number}.json",
                                      content),))


def _state() -> DeliveryState:
    return DeliveryState({}, lambda _data: None)


def test_a_session_lends_one_connection_per_destination_and_closes_them(
        gateway_factory: Any, sshd: OpenSshServer, tmp_path: Path, client_keys: dict[str, Path],
        invoice_data: dict[str, Any]) -> None:
    gw = gateway_factory(config=DISPATCH_CONFIG)  # allows the loopback servers
    other = OpenSshServer(tmp_path / "sshd-2", client_keys["erp"])
    other.start()
    try:
        channel = gw.plugins.channels.get("sftp-push")
        first = channel.Settings.model_validate(sshd.settings())
        second = channel.Settings.model_validate(other.settings())
        inv = invoice(invoice_data, "E2611-00001")
        with channel.session() as session:
            receipts = [channel.deliver(_bundle(inv, f"N-{i}"), s, _state(), session=session)
                        for i, s in enumerate([first, second, first, second, first])]
            connections = list(session._open.values())
            assert (session.connections_opened, session.reused) == (2, 3)
            assert all(c.alive() for c in connections)
        assert not any(c.alive() for c in connections)  # the run's end closed them
        assert (sshd.logins(), other.logins()) == (1, 1)
        assert [r.data["connection"] for r in receipts] == [
            "new", "new", "reused", "reused", "reused"]
        assert sorted(p.name for p in sshd.upload.iterdir()) == ["N-0.json", "N-2.json",
                                                                "N-4.json"]
        assert sorted(p.name for p in other.upload.iterdir()) == ["N-1.json", "N-3.json"]
    finally:
        other.stop()


def test_without_a_session_each_delivery_has_its_own_connection(
        gateway_factory: Any, sshd: OpenSshServer, invoice_data: dict[str, Any]) -> None:
    gw = gateway_factory(config=DISPATCH_CONFIG)
    channel = gw.plugins.channels.get("sftp-push")
    settings = channel.Settings.model_validate(sshd.settings())
    inv = invoice(invoice_data, "E2611-00001")
    for i in range(2):
        receipt = channel.deliver(_bundle(inv, f"N-{i}"), settings, _state())
        assert receipt.data["connection"] == "new"
    assert sshd.logins() == 2


def test_the_receipt_names_host_files_sizes_digests_and_the_host_key(
        gateway_factory: Any, sshd: OpenSshServer, invoice_data: dict[str, Any],
        run_cli: Any) -> None:
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-push", "name": "erp",
                        "settings": sshd.settings(filename="{number}.{ext}")}])
    invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))
    assert deliver(gw).delivered == 1
    (d,) = gw.store.deliveries(invoice_id=invoice_id)
    data = d.receipt["data"]
    uploaded = sshd.upload / "E2611-00123.json"
    (doc,) = gw.store.documents(invoice_id)
    host_key = parse_public_key(sshd.host_key)
    assert data == {
        "host": "127.0.0.1", "port": sshd.port, "user": "root",
        "host_key": f"ssh-ed25519 {host_key.fingerprint}", "directory": str(sshd.upload),
        "files": {str(uploaded): {"size": uploaded.stat().st_size, "sha256": doc.sha256,
                                  "outcome": "uploaded"}},
        "connection": "new"}
    assert doc.size == uploaded.stat().st_size
    # the history keeps it, and `gateway status` shows it
    (event,) = [e for e in gw.store.events(invoice_id) if e.kind == "delivered"]
    assert event.data["data"] == data
    shown = run_cli("status", "E2611-00123")
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert f"host_key=ssh-ed25519 {host_key.fingerprint}" in text
    assert f'"sha256":"{doc.sha256}"' in text.replace(" ", "")
    as_json = json.loads(run_cli("status", "E2611-00123", "--json").output)
    assert as_json["deliveries"][0]["receipt_data"]["data"] == data


def test_a_dispatcher_run_shares_its_session_across_invoices(
        gateway_factory: Any, sshd: OpenSshServer, invoice_data: dict[str, Any]) -> None:
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-push", "settings": sshd.settings()}])
    ids = [push(gw, invoice(invoice_data, f"E2611-{i:05d}")) for i in range(3)]
    assert deliver(gw).delivered == 3
    said = [gw.store.deliveries(invoice_id=i)[0].receipt["data"]["connection"] for i in ids]
    assert said == ["new", "reused", "reused"]
    assert sshd.logins() == 1
    # the next run is a new session: a new connection
    push(gw, invoice(invoice_data, "E2611-00099"))
    assert deliver(gw).delivered == 1
    assert sshd.logins() == 2


def test_a_session_connection_the_server_dropped_is_replaced_without_failing(
        gateway_factory: Any, sshd: OpenSshServer, invoice_data: dict[str, Any]) -> None:
    """The server ends the session's idle connection (its sshd child is killed): the
    next delivery of the run opens a new one and succeeds, costing no attempt."""
    gw = gateway_factory(config=DISPATCH_CONFIG)
    channel = gw.plugins.channels.get("sftp-push")
    settings = channel.Settings.model_validate(sshd.settings())
    inv = invoice(invoice_data, "E2611-00001")
    with channel.session() as session:
        channel.deliver(_bundle(inv, "N-0"), settings, _state(), session=session)
        assert sshd.proc is not None
        children = Path(f"/proc/{sshd.proc.pid}/task/{sshd.proc.pid}/children")
        for pid in children.read_text().split():  # the connection's own sshd processes
            os.kill(int(pid), signal.SIGKILL)
        receipt = channel.deliver(_bundle(inv, "N-1"), settings, _state(), session=session)
        assert receipt.data["connection"] == "new"
        assert session.connections_opened == 2
    assert sshd.logins() == 2
    assert sorted(p.name for p in sshd.upload.iterdir()) == ["N-0.json", "N-1.json"]
