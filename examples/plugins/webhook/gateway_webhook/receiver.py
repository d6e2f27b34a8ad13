"""The receiving side: verify a ``Gateway-Signature``, and a small test receiver.

``verify`` is what an ERP's endpoint does with each request. :class:`Receiver` is a
real HTTP server on 127.0.0.1 for tests: it verifies every request, keeps one copy
per Idempotency-Key, and answers with scripted replies (``429`` with ``Retry-After``,
``503``, ...) before accepting.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 16 * 2**20


def verify(header: str, body: bytes, secret: bytes, *, now: float | None = None,
           tolerance: float = 300) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    signed: bool


@dataclass
class Receiver:
    """``with Receiver(secret) as r: ... r.url``; ``r.replies`` are used up first, as
    (status, headers) pairs; then requests are accepted (200)."""

    secret: bytes
    replies: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    accepted: dict[str, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/invoices"

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._answer(413, {})
                    return
                body = self.rfile.read(length)
                signed = verify(self.headers.get("Gateway-Signature", ""), body,
                                receiver.secret)
                key = self.headers.get("Idempotency-Key", "")
                with receiver.lock:
                    receiver.requests.append(Request(self.path, dict(self.headers), body,
                                                     signed))
                    if not signed:
                        status, headers = 401, {}
                    elif receiver.replies:
                        status, headers = receiver.replies.pop(0)
                    else:
                        receiver.accepted.setdefault(key, body)
                        status = 200
                        headers = {"X-Request-Id": f"req-{len(receiver.accepted)}"}
                self._answer(status, headers)

            def _answer(self, status: int, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
