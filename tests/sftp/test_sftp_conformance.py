"""SFTP push (against a real OpenSSH server) and the SFTP mailbox (read back through the
gateway's own SFTP server) pass the conformance suite of gateway.testing, on
127.0.0.1."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path
from typing import Any

from sftp_servers import DISPATCH_CONFIG, OpenSshServer, pub

from gateway.core import Gateway
from gateway.testing import check_channel


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _uploaded(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.iterdir())}


def test_sftp_push_conforms(gateway_factory: Any, sshd: OpenSshServer,
                            client_keys: dict[str, Path]) -> None:
    report = check_channel(
        "sftp-push", sshd.settings(), gateway=gateway_factory(config=DISPATCH_CONFIG),
        observe=lambda: _uploaded(sshd.upload),
        # nothing listens there: the server is down, try again later
        retryable=sshd.settings(port=free_port()),
        # the server shows another host key than the customer gave: never send
        permanent=sshd.settings(host_key=pub(client_keys["other"])))
    assert not report.skipped, report.skipped
    assert len(_uploaded(sshd.upload)) == 2


def test_sftp_mailbox_conforms(gateway_factory: Any, client_keys: dict[str, Path],
                               mailbox_server: Any) -> None:
    gw: Gateway = gateway_factory(config=DISPATCH_CONFIG)
    server = mailbox_server(gw)
    clients: list[Any] = []

    def outbox() -> list[str]:
        # The suite's customer is conformance-ok; its account exists once it is saved.
        if not clients:
            clients.append(server.client("conformance-ok", client_keys["erp"]))
        return sorted(clients[0].listdir("/outbox"))

    report = check_channel("sftp-mailbox", {"authorized_keys": [pub(client_keys["erp"])]},
                           gateway=gw, observe=outbox)
    assert "repeat after success changes nothing" in report.passed
    assert len(outbox()) == 2
