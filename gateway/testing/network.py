"""A guard that turns any attempt to reach the network into an error."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any


class NetworkUsed(AssertionError):
    """Code that must work offline tried to open a connection."""


def _refuse(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NetworkUsed(f"network access attempted: {what}{args[1:2] or args[:1]}")

    return refuse


@contextlib.contextmanager
def no_network(*, allow_loopback: bool = False) -> Iterator[None]:
    """Refuse every outgoing connection and name lookup while the block runs.

    ``allow_loopback`` lets connections to 127.0.0.1 / ::1 through (a test's own
    servers). Not thread-safe by design: it is meant around a single call.
    """
    saved = (socket.socket.connect, socket.socket.connect_ex, socket.create_connection,
             socket.getaddrinfo)
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if allow_loopback and _is_loopback(address):
            return real_connect(self, address)
        raise NetworkUsed(f"network access attempted: connect to {address!r}")

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _refuse("connect_ex")  # type: ignore[method-assign]
    if not allow_loopback:
        socket.create_connection = _refuse("create_connection")  # type: ignore[assignment]
        socket.getaddrinfo = _refuse("getaddrinfo")  # type: ignore[assignment]
    try:
        yield
    finally:
        (socket.socket.connect, socket.socket.connect_ex, socket.create_connection,  # type: ignore[method-assign]
         socket.getaddrinfo) = saved


def _is_loopback(address: Any) -> bool:
    if isinstance(address, str):  # a Unix socket path
        return True
    try:
        return ipaddress.ip_address(address[0]).is_loopback
    except (ValueError, IndexError, TypeError):
        return False
