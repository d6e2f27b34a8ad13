"""Connections to destinations a customer chose: never into the gateway's own network.

A customer may set the host of an SFTP push (and, through plugins, of other channels).
Left alone, that host could be ``127.0.0.1``, the cloud's metadata address
``169.254.169.254`` or a private address of the operator's network, and the invoice
history would tell the customer which ports answer. So every such connection goes
through :func:`connect`:

* the name is resolved once, and every address it resolves to must be public:
  loopback, link-local, private, shared (CGNAT), multicast, unspecified and reserved
  addresses are refused;
* the connection is made to that checked address (not resolved again, so a DNS answer
  that changes in between cannot slip through), and the address actually connected to
  is checked again;
* an operator opens networks with an allow-list in gateway.toml::

      [network]
      allow = ["10.20.0.0/16", "127.0.0.1/32"]

The customer sees one generic refusal whatever the reason; the operator's log has the
address and why it was refused.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger("gateway.netguard")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: what the customer reads: the same words for every refused destination
REFUSED = ("this destination is not allowed: the gateway does not connect to local or "
           "private network addresses for customers; ask the operator")


class NetworkPolicy(BaseModel):
    """``[network]`` in gateway.toml."""

    model_config = ConfigDict(extra="forbid")

    allow: list[IPNetwork] = Field(
        default_factory=list,
        description="Networks customer destinations may reach although they are local or "
        "private, e.g. ['10.20.0.0/16']")


class DestinationRefused(OSError):
    """The destination resolves to an address customers may not reach."""

    def __init__(self, detail: str) -> None:
        super().__init__(REFUSED)
        #: for the operator's log only
        self.detail = detail


_policy: list[NetworkPolicy] = [NetworkPolicy()]


def configure(policy: NetworkPolicy) -> None:
    """Make ``policy`` the one this process applies (set by the gateway at start, since
    channels are called through a hook contract that carries no configuration)."""
    _policy[0] = policy


def current() -> NetworkPolicy:
    return _policy[0]


def why_refused(address: IPAddress, policy: NetworkPolicy | None = None) -> str | None:
    """Why a customer destination may not use ``address``, or None when it may."""
    policy = policy or current()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in net for net in policy.allow if net.version == address.version):
        return None
    for kind in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:
        return "not globally routable"
    return None


def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    """The checked (family, sockaddr) pairs of ``host``; refuses if any is not allowed,
    so that a name cannot mix a public address with a private one."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    checked = []
    for family, _, _, _, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        reason = why_refused(address)
        if reason is not None:
            raise DestinationRefused(f"{host} resolves to {address} ({reason}); add the "
                                     "network to [network] allow in gateway.toml to permit it")
        checked.append((family, sockaddr))
    if not checked:
        raise OSError(f"cannot resolve {host}: no addresses")
    return checked


def connect(host: str, port: int, *, timeout: float) -> socket.socket:
    """A TCP connection to a customer-chosen destination, checked as described above.

    Raises :class:`DestinationRefused` (never connected) or :class:`OSError`.
    """
    last: OSError | None = None
    for family, sockaddr in resolve(host, port):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
            peer = ipaddress.ip_address(str(sock.getpeername()[0]).split("%", 1)[0])
            reason = why_refused(peer)
            if reason is not None:
                raise DestinationRefused(f"{host} connected to {peer} ({reason})")
            return sock
        except DestinationRefused:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            last = exc
    assert last is not None
    raise last


def refused(where: str, exc: DestinationRefused, **context: Any) -> str:
    """Log the detail for the operator; return the generic text for the customer."""
    log.warning("customer destination refused", extra={"where": where, "detail": exc.detail,
                                                        **context})
    return f"{where}: {REFUSED}"
