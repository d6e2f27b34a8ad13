"""Connections that never log in cannot lock the SFTP server: each source address may
keep only a few waiting, all sources together a bounded number, each for a short login
timeout; a real ERP from another address still logs in. Real sockets on loopback
(127.0.0.2 is another source address on the same host)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sftp_servers import DISPATCH_CONFIG, RunningMailbox, deliver, invoice, pub, push, sftp_customer

from gateway.core import Gateway, load_config
from gateway.plugins import get_plugin_manager

A = "100234567"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def mailbox(tmp_path: Path, client_keys: dict[str, Path]) -> Iterator[RunningMailbox]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "gateway.toml").write_text(DISPATCH_CONFIG)
    gw = Gateway(load_config(data_dir), get_plugin_manager())
    sftp_customer(gw, [{"channel": "sftp-mailbox",
                        "settings": {"authorized_keys": [pub(client_keys["erp"])]}}])
    data = json.loads((EXAMPLES / "electricity-household.json").read_text())
    push(gw, invoice(data, "E2611-00123"))
    deliver(gw)
    server = RunningMailbox(gw, tmp_path / "mailbox")
    yield server
    server.stop()
    gw.close()


def _idle(port: int, source: str, count: int) -> list[socket.socket]:
    """``count`` TCP connections from ``source`` that say nothing."""
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


def _closed_by_server(s: socket.socket) -> bool:
    s.settimeout(5)
    try:
        return s.recv(4096) == b"" or _closed_by_server(s)
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_idle_connections_from_one_address_do_not_lock_out_a_real_client(
        mailbox: RunningMailbox, client_keys: dict[str, Path]) -> None:
    server = mailbox.server
    assert server.max_unauthenticated_per_source < 40 < 64  # the defaults
    idle = _idle(mailbox.port, "127.0.0.2", 40)
    try:
        # All but the first few are hung up on at once.
        refused = [s for s in idle[server.max_unauthenticated_per_source:]
                   if _closed_by_server(s)]
        assert len(refused) == 40 - server.max_unauthenticated_per_source
        client = mailbox.client(A, client_keys["erp"])
        try:
            assert client.listdir("/outbox") == ["E2611-00123.json"]
        finally:
            client.close()
    finally:
        for s in idle:
            s.close()
    reasons = [e["reason"] for e in mailbox.refusals() if e["event"] == "connect"]
    assert any("from 127.0.0.2 have not logged in yet" in r for r in reasons)


def test_waiting_connections_are_bounded_in_total_and_dropped_after_the_timeout(
        mailbox: RunningMailbox, client_keys: dict[str, Path]) -> None:
    server = mailbox.server
    server.login_timeout = 1.0
    server.max_unauthenticated = 6
    sources = [f"127.0.1.{i}" for i in range(1, 5)]
    idle = [s for source in sources for s in _idle(mailbox.port, source, 2)]
    try:
        hung_up = [s for s in idle if _closed_by_server(s)]
        # 6 wait; the other 2 were refused at once; the 6 are dropped after the timeout.
        assert len(hung_up) == 8
        reasons = [e["reason"] for e in mailbox.refusals()]
        assert sum("6 connections are waiting to log in" in r for r in reasons) == 2
        # Not even a banner within the login timeout (not paramiko's 15 s default).
        def dropped() -> list[dict[str, Any]]:
            return [e for e in mailbox.audit() if e["event"] == "connect"
                    and e["outcome"] == "failed"]

        deadline = time.monotonic() + 10  # the server writes its audit line after the close
        while len(dropped()) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(dropped()) == 6, dropped()
        # and then a real client gets in again
        client = mailbox.client(A, client_keys["erp"])
        with contextlib.closing(client):
            assert client.listdir("/outbox") == ["E2611-00123.json"]
    finally:
        for s in idle:
            s.close()


def test_a_logged_in_client_does_not_count_as_waiting(mailbox: RunningMailbox,
                                                      client_keys: dict[str, Path]) -> None:
    server = mailbox.server
    server.max_unauthenticated_per_source = 1
    clients: list[Any] = []
    try:
        for _ in range(3):  # one waiting place is enough for any number of logins
            clients.append(mailbox.client(A, client_keys["erp"]))
        assert all(c.listdir("/outbox") for c in clients)
    finally:
        for c in clients:
            c.close()
