"""The contract where plugin authors hit walls: render another format with options,
Retry-After and retry policies, structured receipts, formats a channel needs, secrets
from the environment, and the channel's session handed to deliver."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from click.testing import Result
from pydantic import BaseModel

from gateway import (
    DeliveryError,
    Invoice,
    Receipt,
    RenderContext,
    RetryPolicy,
    hookimpl,
    secret_from_env,
)
from gateway.core.pipeline import Gateway
from gateway.errors import ConfigError
from gateway.testing import Clock, add_customer, sample_invoice


class ShoutOptions(BaseModel):
    shout: bool = False


class PlainFormat:
    name: ClassVar[str] = "plain"
    media_type: ClassVar[str] = "text/plain"
    extension: ClassVar[str] = "txt"
    description: ClassVar[str] = "the invoice number, optionally shouted"
    can_parse: ClassVar[bool] = False
    can_validate: ClassVar[bool] = False
    Options = ShoutOptions

    def render(self, invoice: Invoice, context: RenderContext) -> bytes:
        text = f"invoice {invoice.number}"
        return (text.upper() if context.options.get("shout") else text).encode()

    def sniff(self, head: bytes, filename: str) -> bool:
        return False


class EnvelopeFormat(PlainFormat):
    """Derived from another format through render_other, with options of its own."""

    name: ClassVar[str] = "envelope"
    Options = None  # type: ignore[assignment]

    def render(self, invoice: Invoice, context: RenderContext) -> bytes:
        return b"[" + context.render_other("plain", {"shout": True}) + b"]"


class Receiver:
    """A channel that records its calls; behaviour is scripted per test."""

    name: ClassVar[str] = "receiver"
    description: ClassVar[str] = "test receiver"
    requires_formats: ClassVar[tuple[str, ...]] = ("plain",)
    retry: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=3, base_delay=10)

    class Settings(BaseModel):
        token_env: str = "RECEIVER_TOKEN"

    def __init__(self) -> None:
        self.failures: list[DeliveryError] = []
        self.sessions: list[Any] = []
        self.opened = 0

    @contextlib.contextmanager
    def session(self) -> Any:
        self.opened += 1
        yield {"connection": self.opened}

    def deliver(self, bundle: Any, settings: Any, state: Any, session: Any) -> Receipt:
        self.sessions.append(session)
        token = secret_from_env(settings.token_env, purpose="receiver token",
                                setting="token_env")
        if self.failures:
            raise self.failures.pop(0)
        return Receipt(id=f"r:{bundle.idempotency_key}", detail="accepted",
                       recipients={"https://erp.example/in": "202 Accepted"},
                       data={"status": 202, "request_id": "req-77", "token_len": len(token)})


class Plugin:
    def __init__(self) -> None:
        self.receiver = Receiver()
        self.failed: list[tuple[str, str, float | None]] = []

    @hookimpl
    def gateway_delivery_failed(self, channel: str, label: str,
                                retry_at: float | None) -> None:
        self.failed.append((channel, label, retry_at))

    @hookimpl
    def gateway_register_formats(self, register: Any) -> None:
        register(PlainFormat())
        register(EnvelopeFormat())

    @hookimpl
    def gateway_register_channels(self, register: Any) -> None:
        register(self.receiver)


@pytest.fixture
def plugin() -> Plugin:
    return Plugin()


@pytest.fixture
def gw_r(gateway_factory: Callable[..., Gateway], plugin: Plugin,
         monkeypatch: pytest.MonkeyPatch) -> Gateway:
    monkeypatch.setenv("RECEIVER_TOKEN", "s3cret")
    gw = gateway_factory(extra_plugins=(("receiver", plugin),),
                         config="[dispatcher]\nbase_delay = 1000\nmax_delay = 1000\n")
    add_customer(gw, formats=["plain", "envelope"], channels=[{"channel": "receiver"}])
    return gw


def test_a_format_renders_another_with_options(gw_r: Gateway) -> None:
    invoice = sample_invoice()
    assert gw_r.render(invoice, "envelope").content == b"[INVOICE E2611-00123]"
    assert gw_r.render(invoice, "plain").content == b"invoice E2611-00123"


def test_options_for_another_format_are_validated(gw_r: Gateway) -> None:
    class Bad(EnvelopeFormat):
        name: ClassVar[str] = "bad"

        def render(self, invoice: Invoice, context: RenderContext) -> bytes:
            return context.render_other("plain", {"shout": "very"})

    gw_r.plugins.formats.register(Bad(), "bad")
    with pytest.raises(ConfigError, match="format bad rendering plain: format plain option "
                                          "shout"):
        gw_r.render(sample_invoice(), "bad")


def test_retry_after_is_honoured_and_the_channel_policy_applies(
        gw_r: Gateway, plugin: Plugin, clock: Clock, run_dispatcher: Any) -> None:
    receiver = plugin.receiver
    receiver.failures = [DeliveryError("429 Too Many Requests", retryable=False,
                                       retry_after=120)]
    gw_r.push(sample_invoice(completed=False), source="t")
    assert run_dispatcher(gw_r).retrying == 1  # retry_after implies retryable
    [d] = gw_r.store.deliveries()
    assert 119 <= d.next_attempt_at - clock() <= 121  # not the 1000 s backoff
    assert plugin.failed == [("receiver", "receiver", d.next_attempt_at)]
    assert run_dispatcher(gw_r, advance=100).attempted == 0
    assert run_dispatcher(gw_r, advance=21).delivered == 1


def test_the_channels_retry_policy_gives_up_after_its_max_attempts(
        gw_r: Gateway, plugin: Plugin, clock: Clock, run_dispatcher: Any) -> None:
    plugin.receiver.failures = [DeliveryError("503", retryable=True) for _ in range(5)]
    gw_r.push(sample_invoice(completed=False), source="t")
    outcomes = [run_dispatcher(gw_r, advance=3600) for _ in range(4)]
    assert [o.retrying for o in outcomes] == [1, 1, 0, 0]
    assert outcomes[2].dead == 1  # max_attempts = 3 from Receiver.retry, not 8


def test_an_operator_overrides_the_channels_policy(
        gateway_factory: Callable[..., Gateway], plugin: Plugin, clock: Clock,
        run_dispatcher: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECEIVER_TOKEN", "s3cret")
    gw = gateway_factory(extra_plugins=(("receiver", plugin),),
                         config="[dispatcher.retry.receiver]\nmax_attempts = 1\n")
    add_customer(gw, formats=["plain"], channels=[{"channel": "receiver"}])
    plugin.receiver.failures = [DeliveryError("503", retryable=True)]
    gw.push(sample_invoice(completed=False), source="t")
    assert run_dispatcher(gw).dead == 1


def test_the_session_value_reaches_deliver(gw_r: Gateway, plugin: Plugin,
                                           run_dispatcher: Any) -> None:
    for number in ("A-1", "A-2"):
        gw_r.push(sample_invoice(completed=False).model_copy(update={"number": number}),
                  source="t")
    assert run_dispatcher(gw_r).delivered == 2
    assert plugin.receiver.sessions == [{"connection": 1}, {"connection": 1}]


def test_a_missing_secret_is_retryable_and_named(gw_r: Gateway,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 run_dispatcher: Any) -> None:
    monkeypatch.delenv("RECEIVER_TOKEN")
    gw_r.push(sample_invoice(completed=False), source="t")
    assert run_dispatcher(gw_r).retrying == 1
    [d] = gw_r.store.deliveries()
    assert d.last_error == ("receiver token: environment variable RECEIVER_TOKEN (token_env) "
                            "is not set")


def test_secret_from_env_counts_empty_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMPTY_SECRET", "")
    with pytest.raises(DeliveryError) as err:
        secret_from_env("EMPTY_SECRET", purpose="x")
    assert err.value.retryable


def test_a_channel_declares_the_formats_it_needs(gw_r: Gateway) -> None:
    with pytest.raises(ConfigError, match=r"customer c2, channel receiver: the receiver "
                                          r"channel needs the format\(s\) plain"):
        add_customer(gw_r, id="c2", formats=["json"], channels=[{"channel": "receiver"}])
    # the channel's own formats count
    add_customer(gw_r, id="c3", formats=["json"],
                 channels=[{"channel": "receiver", "formats": ["plain", "json"]}])


def test_structured_receipt_data_is_shown_by_status(
        gw_r: Gateway, run_dispatcher: Any, run_cli: Callable[..., Result],
        plugin: Plugin) -> None:
    gw_r.push(sample_invoice(completed=False), source="t")
    run_dispatcher(gw_r)
    # run_cli loads the installed plugins only; status reads what the store recorded
    as_json = json.loads(run_cli("status", "E2611-00123", "--json").output)
    [delivery] = as_json["deliveries"]
    assert delivery["channel"] == "receiver" and delivery["label"] == "receiver"
    assert delivery["receipt_data"]["data"] == {"status": 202, "request_id": "req-77",
                                                "token_len": 6}
    text = run_cli("status", "E2611-00123").output
    assert "Receipt of receiver (r:" in text
    assert "status=202, request_id=req-77" in text
    assert "https://erp.example/in=202 Accepted" in text


def _stored_receipt_data(gw: Gateway, plugin: Plugin, run_dispatcher: Any,
                         data: dict[str, Any]) -> Any:
    """Deliver one invoice through a receiver whose receipt carries ``data``; return the
    data as the store kept it."""
    original = plugin.receiver.deliver

    def deliver(bundle: Any, settings: Any, state: Any, session: Any) -> Receipt:
        return Receipt(id=original(bundle, settings, state, session).id, data=data)

    plugin.receiver.deliver = deliver  # type: ignore[method-assign]
    gw.push(sample_invoice(completed=False), source="t")
    assert run_dispatcher(gw).delivered == 1
    [d] = gw.store.deliveries()
    assert d.receipt is not None
    return d.receipt["data"]


def test_receipt_data_that_json_cannot_hold_is_kept_as_text(
        gw_r: Gateway, plugin: Plugin, run_dispatcher: Any) -> None:
    import datetime as dt
    from decimal import Decimal

    stored = _stored_receipt_data(gw_r, plugin, run_dispatcher,
                                  {"amount": Decimal("78.72"), "at": dt.date(2026, 11, 4)})
    assert stored == {"amount": "78.72", "at": "2026-11-04"}


def test_oversized_receipt_data_is_stored_as_its_size(
        gw_r: Gateway, plugin: Plugin, run_dispatcher: Any) -> None:
    stored = _stored_receipt_data(gw_r, plugin, run_dispatcher, {"body": "x" * 100_000})
    assert stored == {"truncated": True, "bytes": 100_012}


def test_delivery_error_refuses_a_negative_retry_after() -> None:
    with pytest.raises(ValueError, match="retry_after"):
        DeliveryError("x", retryable=True, retry_after=-1)
