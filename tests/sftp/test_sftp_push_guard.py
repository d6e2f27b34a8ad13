"""Customer-chosen SFTP destinations cannot reach the gateway's own network: refused
after resolution and at connect time, the same words for every reason (no port-scan
oracle), the detail for the operator; an operator allow-list opens a network."""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any

import pytest
from sftp_servers import deliver, invoice, push, sftp_customer

from gateway.core import netguard

NO_ALLOW = "[dispatcher]\nbase_delay = 0\nmax_attempts = 5\n"


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1", "169.254.169.254", "fe80::1", "10.1.2.3", "172.16.5.4",
    "192.168.1.1", "100.64.0.1", "fc00::1", "224.0.0.1", "ff02::1", "0.0.0.0", "::",
    "240.0.0.1", "::ffff:127.0.0.1", "::ffff:10.0.0.1"])
def test_local_private_and_special_addresses_are_refused(address: str) -> None:
    assert netguard.why_refused(ipaddress.ip_address(address),
                                netguard.NetworkPolicy()) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert netguard.why_refused(ipaddress.ip_address(address), netguard.NetworkPolicy()) is None


def test_the_operator_allow_list_opens_a_network() -> None:
    policy = netguard.NetworkPolicy.model_validate({"allow": ["127.0.0.0/8", "10.20.0.0/16"]})
    assert netguard.why_refused(ipaddress.ip_address("127.0.0.1"), policy) is None
    assert netguard.why_refused(ipaddress.ip_address("::ffff:127.0.0.1"), policy) is None
    assert netguard.why_refused(ipaddress.ip_address("10.20.3.4"), policy) is None
    assert netguard.why_refused(ipaddress.ip_address("10.21.3.4"), policy) == "private"


def test_a_name_is_checked_after_resolution(gw: Any) -> None:
    with pytest.raises(netguard.DestinationRefused) as caught:
        netguard.resolve("localhost", 22)
    assert "localhost resolves to" in caught.value.detail


@pytest.fixture
def listener() -> Any:
    """A TCP port on loopback that records whether anybody connected."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def _connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def test_sftp_push_to_loopback_is_refused_without_connecting_and_without_an_oracle(
        gateway_factory: Any, sshd: Any, listener: socket.socket, invoice_data: dict[str, Any],
        caplog: pytest.LogCaptureFixture) -> None:
    gw = gateway_factory(config=NO_ALLOW)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    targets = {"sshd": sshd.settings(), "listener": sshd.settings(port=listener.getsockname()[1]),
               "closed": sshd.settings(port=closed_port),
               "named": sshd.settings(host="localhost")}
    sftp_customer(gw, [{"channel": "sftp-push", "name": name, "settings": settings}
                       for name, settings in targets.items()])
    invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))

    with caplog.at_level(logging.WARNING, logger="gateway.netguard"):
        deliver(gw)

    errors = {}
    for d in gw.store.deliveries(invoice_id=invoice_id):
        assert d.status == "failed", d  # permanent: a retry cannot change the answer
        where = d.last_error.split(": ", 1)
        errors[d.label] = where[1]
    # One text for an SSH server, an open port, a closed port and a name: nothing to scan.
    assert set(errors.values()) == {netguard.REFUSED}, errors
    assert not _connected(listener)
    assert sshd.logins() == 0
    assert not list(sshd.upload.iterdir())
    details = [r.detail for r in caplog.records if hasattr(r, "detail")]
    assert any("127.0.0.1 (loopback)" in d for d in details), details
    assert any("localhost resolves to" in d for d in details), details


def test_the_allow_list_lets_the_operator_open_loopback(gateway_factory: Any, sshd: Any,
                                                       invoice_data: dict[str, Any]) -> None:
    gw = gateway_factory(config=NO_ALLOW + '\n[network]\nallow = ["127.0.0.1/32"]\n')
    sftp_customer(gw, [{"channel": "sftp-push", "settings": sshd.settings()}])
    push(gw, invoice(invoice_data, "E2611-00123"))
    assert deliver(gw).delivered == 1
