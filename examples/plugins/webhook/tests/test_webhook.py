"""The webhook channel, tested as its author would: gateway.testing's fixtures and
conformance suite, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from gateway_webhook import retry_after_seconds
from gateway_webhook.receiver import Receiver, verify

from gateway.testing import add_customer, check_channel

SECRET = "test-signing-key"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("WRONG_SECRET", "not-the-key")
    with Receiver(SECRET.encode()) as running:
        yield running


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings(url: str, **extra: object) -> dict[str, object]:
    return {"url": url, "secret_env": "WEBHOOK_SECRET", "timeout": 5, **extra}


def test_conformance(receiver: Receiver) -> None:
    report = check_channel(
        "webhook", settings(receiver.url), observe=lambda: len(receiver.requests),
        # nobody listens: retried later
        retryable=settings(f"http://127.0.0.1:{closed_port()}/invoices"),
        # the receiver refuses the signature (401): permanent, the fallback applies
        permanent=settings(receiver.url, secret_env="WRONG_SECRET"))
    assert not report.skipped


def test_the_ubl_is_posted_signed_with_an_idempotency_key(
        gw, sample_invoice, run_dispatcher, receiver: Receiver) -> None:
    add_customer(gw, formats=["ubl"], channels=[{"channel": "webhook",
                                                 "settings": settings(receiver.url)}])
    result = gw.push(sample_invoice(completed=False), source="test")
    assert run_dispatcher(gw).delivered == 1
    [request] = receiver.requests
    assert request.signed and verify(request.headers["Gateway-Signature"], request.body,
                                     SECRET.encode())
    assert request.headers["Idempotency-Key"] == f"{result.invoice_id}:webhook"
    assert request.headers["Content-Type"] == "application/xml"
    assert b"<cbc:ID>E2611-00123</cbc:ID>" in request.body
    [delivery] = gw.store.deliveries()
    assert delivery.receipt["data"] == {"status": 200, "request_id": "req-1",
                                        "bytes": len(request.body)}


def test_429_with_retry_after_is_honoured(gw, sample_invoice, clock, run_dispatcher,
                                          receiver: Receiver) -> None:
    receiver.replies = [(429, {"Retry-After": "120"})]
    add_customer(gw, formats=["ubl"], channels=[{"channel": "webhook",
                                                 "settings": settings(receiver.url)}])
    gw.push(sample_invoice(completed=False), source="test")
    assert run_dispatcher(gw).retrying == 1
    [delivery] = gw.store.deliveries()
    assert "HTTP 429" in delivery.last_error and 119 <= delivery.next_attempt_at - clock() <= 121
    assert run_dispatcher(gw, advance=60).attempted == 0
    assert run_dispatcher(gw, advance=61).delivered == 1
    assert len(receiver.requests) == 2 and len(receiver.accepted) == 1


def test_503_with_an_http_date_and_a_plain_500(gw, sample_invoice, clock, run_dispatcher,
                                               receiver: Receiver) -> None:
    receiver.replies = [(503, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}), (500, {})]
    add_customer(gw, formats=["ubl"], channels=[{"channel": "webhook", "settings": settings(
        receiver.url, max_retry_after=600)}])
    gw.push(sample_invoice(completed=False), source="test")
    assert run_dispatcher(gw).retrying == 1
    [delivery] = gw.store.deliveries()
    assert 599 <= delivery.next_attempt_at - clock() <= 601  # capped by max_retry_after
    assert run_dispatcher(gw, advance=601).retrying == 1  # 500: the gateway's backoff
    assert run_dispatcher(gw, advance=3600).delivered == 1


def test_the_channel_needs_the_ubl_format(gw, receiver: Receiver) -> None:
    from gateway import ConfigError

    with pytest.raises(ConfigError, match="needs the format"):
        add_customer(gw, formats=["json"], channels=[{"channel": "webhook",
                                                      "settings": settings(receiver.url)}])


def test_retry_after_forms() -> None:
    assert retry_after_seconds("30", now=0) == 30
    assert retry_after_seconds("Thu, 01 Jan 1970 00:01:00 GMT", now=0) == 60
    assert retry_after_seconds("soon", now=0) is None
    assert retry_after_seconds(None, now=0) is None
