"""``check_channel``: the conformance suite of a delivery channel."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from gateway.core.dispatcher import Dispatcher, _takes_session
from gateway.core.documents import Bundle, DeliveryState, Receipt
from gateway.core.pipeline import Gateway
from gateway.errors import DeliveryError
from gateway.testing.harness import add_customer
from gateway.testing.report import Report, Skip, suite_gateway
from gateway.testing.samples import sample_invoice

Observe = Callable[[], Any]


def check_channel(name: str, settings: dict[str, Any], *,
                  plugins: Iterable[tuple[str, object]] = (), gateway: Gateway | None = None,
                  observe: Observe | None = None, formats: Sequence[str] | None = None,
                  retryable: dict[str, Any] | None = None,
                  permanent: dict[str, Any] | None = None,
                  sample: str = "household") -> Report:
    """Check the channel ``name`` delivering with the customer settings ``settings``.

    * it is registered with ``name``, ``description``, a pydantic ``Settings`` model
      that accepts ``settings``, ``deliver`` and ``session``;
    * a sample invoice pushed and dispatched is delivered, and its receipt (a stable
      id and JSON-able ``data``) is recorded with the delivery;
    * a repeat of a delivery that succeeded, with its recorded state, returns the
      same receipt id and changes nothing at the receiving end (``observe()`` — a
      function returning what the receiver holds: files, messages, requests — gives
      the same before and after);
    * a worker that lost its lease sends nothing (``observe()`` unchanged) and another
      worker completes the delivery once;
    * ``retryable`` / ``permanent`` are settings under which delivery must fail with
      a :class:`~gateway.DeliveryError` classified that way, and the dispatcher then
      retries (``retry``) or gives up (``failed``); deliver never raises anything else.

    ``formats`` default to the channel's ``requires_formats`` or ``["json"]``; ``sample``
    is the sample invoice delivered (its buyer must be one the channel can reach), under
    a new number for each check.
    """
    report = Report(f"channel {name!r}")
    with suite_gateway(gateway, plugins) as gw:
        channel = None
        with report.check("registered"):
            channel = gw.plugins.channels.get(name)
            assert isinstance(getattr(channel, "description", None), str), "no description"
            assert callable(getattr(channel, "deliver", None)), "no deliver()"
            assert callable(getattr(channel, "session", None)), "no session()"
            gw.channel_settings(channel, settings, context="conformance settings")
        if channel is None:
            return report.raise_for_failures()
        wanted = list(formats or getattr(channel, "requires_formats", ()) or ["json"])
        for fmt in getattr(channel, "requires_formats", ()):
            if fmt not in wanted:
                wanted.append(fmt)
        snapshot = observe or (lambda: None)

        customer_for = _customers(gw, name, wanted)
        ok = None
        record = None
        with report.check("delivers and records a receipt"):
            ok = customer_for("ok", settings)
            delivery_id = _push(gw, ok, sample)
            summary = _dispatch(gw, delivery_id)
            record = gw.store.get_delivery(delivery_id)
            assert record is not None
            assert summary.delivered == 1, f"not delivered: {record.last_error}"
            assert record.receipt_id, "no receipt id recorded"
            assert isinstance((record.receipt or {}).get("data", {}), dict)
        with report.check("repeat after success changes nothing"):
            if record is None or record.status != "delivered":
                raise Skip("the first delivery failed")
            before = snapshot()
            receipt = _deliver_again(gw, channel, record)
            assert isinstance(receipt, Receipt), f"deliver returned {receipt!r}"
            assert receipt.id == record.receipt_id, \
                f"receipt id {receipt.id!r} instead of {record.receipt_id!r}"
            assert snapshot() == before, "the receiver changed on a repeated delivery"
        with report.check("receiver observed"):
            if observe is None:
                # Without observe() the repeat and lease checks see receipts only.
                raise Skip("no observe() given: pass one that returns what the receiver holds")
        with report.check("lost lease sends nothing"):
            if ok is None:
                raise Skip("no customer could be saved with these settings")
            _check_lease_loss(gw, ok, snapshot, sample)
        for kind, bad in (("retryable", retryable), ("permanent", permanent)):
            with report.check(f"{kind} failure classified"):
                if bad is None:
                    raise Skip(f"no {kind} settings given")
                _check_failure(gw, channel, customer_for(kind, bad), sample,
                               retry=kind == "retryable")
    return report.raise_for_failures()


def _customers(gw: Gateway, channel: str, formats: list[str]) -> Callable[..., str]:
    def make(suffix: str, settings: dict[str, Any]) -> str:
        customer_id = f"conformance-{suffix}"
        add_customer(gw, id=customer_id, name=f"Conformance {suffix}", formats=formats,
                     match=[], channels=[{"channel": channel, "name": "checked",
                                          "settings": settings}])
        return customer_id

    return make


_numbers = iter(range(1, 10**9))


def _push(gw: Gateway, customer_id: str, sample: str) -> int:
    invoice = sample_invoice(sample, completed=False).model_copy(
        update={"number": f"CONF-{next(_numbers):05d}"})
    result = gw.push(invoice, source="conformance", customer_id=customer_id)
    assert result.status == "accepted", f"push failed: {result.error}"
    [delivery] = gw.store.deliveries(invoice_id=result.invoice_id)
    return delivery.id


def _dispatch(gw: Gateway, delivery_id: int, worker: str | None = None) -> Any:
    return Dispatcher(gw, worker=worker).run(delivery_id=delivery_id)


def _deliver_again(gw: Gateway, channel: Any, record: Any) -> Any:
    dispatcher = Dispatcher(gw)
    bundle: Bundle = dispatcher._bundle(record)
    settings = gw.channel_settings(channel, record.settings, context="conformance")
    state = DeliveryState(dict(record.state), lambda data: None)
    with contextlib.ExitStack() as stack:
        session = dispatcher._open_session(stack, record.channel_type)
        extra = {"session": session} if _takes_session(channel) else {}
        return channel.deliver(bundle, settings, state, **extra)


def _check_lease_loss(gw: Gateway, customer_id: str, snapshot: Observe, sample: str) -> None:
    delivery_id = _push(gw, customer_id, sample)
    lease = gw.config.dispatcher.lease_seconds
    first = gw.store.claim_delivery("conformance-a", lease, delivery_id)
    assert first is not None, "the delivery was not due"
    gw.store.expire_lease(delivery_id, "conformance-a")
    taken = gw.store.claim_delivery("conformance-b", lease, delivery_id)
    assert taken is not None, "the expired lease could not be taken over"
    before = snapshot()
    outcome = Dispatcher(gw, worker="conformance-a").attempt(first)
    assert outcome == "lost", f"the worker without the lease went on: {outcome}"
    assert snapshot() == before, "the worker without the lease changed the receiver"
    assert Dispatcher(gw, worker="conformance-b").attempt(taken) == "delivered"


def _check_failure(gw: Gateway, channel: Any, customer_id: str, sample: str, *,
                   retry: bool) -> None:
    delivery_id = _push(gw, customer_id, sample)
    record = gw.store.get_delivery(delivery_id)
    assert record is not None
    try:
        _deliver_again(gw, channel, record)
    except DeliveryError as exc:
        kind = "temporary" if retry else "permanent"
        assert exc.retryable == retry, \
            f"DeliveryError(retryable={exc.retryable}) for a {kind} failure: {exc}"
    except Exception as exc:
        raise AssertionError(f"deliver raised {type(exc).__name__} instead of "
                             f"DeliveryError: {exc}") from None
    else:
        raise AssertionError("delivery succeeded with settings meant to fail")
    _dispatch(gw, delivery_id)
    after = gw.store.get_delivery(delivery_id)
    assert after is not None
    expected = "retry" if retry else "failed"
    assert after.status == expected, f"dispatcher left it {after.status}, not {expected}"
    assert after.last_error, "no error recorded"
