"""The e-mail channel passes the conformance suite of gateway.testing, against a real
SMTP server (aiosmtpd, STARTTLS and AUTH required) on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable

from email_smtp import SmtpServer, free_port

from gateway.core.pipeline import Gateway
from gateway.testing import check_channel


def test_email_channel_conforms(smtp: SmtpServer,
                                email_gateway: Callable[..., Gateway]) -> None:
    smtp.handler.refuse["nobody@example.lv"] = "550 5.1.1 no such user"
    gw = email_gateway(smtp)
    report = check_channel(
        "email", {"to": ["janis@example.lv"]}, gateway=gw,
        observe=lambda: [(r.rcpt_tos, r.data) for r in smtp.received],
        # nothing listens on that port: the server is down, try again later
        retryable={"to": ["janis@example.lv"], "port": free_port()},
        # the server says the mailbox does not exist: the customer's fallback applies
        permanent={"to": ["nobody@example.lv"]})
    assert not report.skipped, report.skipped
    assert len(smtp.received) == 2  # the first delivery, and the one after the lost lease
    # the receipt says what the server said, for `gateway status`
    data = next(d.receipt for d in gw.store.deliveries() if d.status == "delivered")["data"]
    assert data["message_id"].startswith("<") and data["server"] == f"127.0.0.1:{smtp.port}"
    assert data["accepted"] == {"janis@example.lv": "250 2.0.0 OK queued as Q1"}
