"""Conformance suites: what every format, channel and source must do, in one call.

    from gateway.testing import check_format

    def test_markdown_conforms():
        check_format("markdown")

Each suite runs its checks on a gateway of its own (a temporary data directory, or the
one given), collects every failure and raises one :class:`ConformanceError` listing
them; on success it returns a :class:`Report` of what was checked and what did not
apply (a render-only format has no round trip).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.core.documents import Bundle, DeliveryState, Receipt
from gateway.core.model import Invoice
from gateway.core.pipeline import Gateway
from gateway.core.validation import complete
from gateway.errors import DeliveryError, GatewayError, InvoiceRejected
from gateway.testing.harness import add_customer, make_gateway
from gateway.testing.network import no_network
from gateway.testing.samples import SAMPLES, sample_invoice


class ConformanceError(AssertionError):
    """A plugin broke the contract; the message lists every failed check."""


@dataclass
class Report:
    """What a suite checked: ``passed`` and ``skipped`` (with the reason) check names."""

    subject: str
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @contextlib.contextmanager
    def check(self, name: str) -> Iterator[None]:
        try:
            yield
        except _Skip as skip:
            self.skipped[name] = str(skip)
        except Exception as exc:  # every failure is reported, the suite goes on
            # pytest's assertion rewriting appends the whole expression: keep our line.
            self.failed[name] = str(exc).split("\n")[0] if isinstance(exc, AssertionError) \
                else f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        else:
            self.passed.append(name)

    def raise_for_failures(self) -> Report:
        if self.failed:
            lines = "\n".join(f"  - {n}: {m}" for n, m in self.failed.items())
            raise ConformanceError(f"{self.subject} fails {len(self.failed)} conformance "
                                   f"check(s):\n{lines}")
        return self


class _Skip(Exception):
    pass


@contextlib.contextmanager
def _gateway(gw: Gateway | None, plugins: Iterable[tuple[str, object]]) -> Iterator[Gateway]:
    if gw is not None:
        yield gw
        return
    with tempfile.TemporaryDirectory(prefix="gateway-conformance-") as tmp:
        made = make_gateway(Path(tmp) / "data", plugins=plugins)
        try:
            yield made
        finally:
            made.close()


#: BT-23/BT-24: every e-invoice syntax must state a process and a specification, so a
#: format may fill them in where the invoice left them empty.
PROFILE_TERMS = frozenset({"specification_id", "business_process"})


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if not path and key in PROFILE_TERMS and a.get(key) is None:
                continue
            out += _differences(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(b)} items instead of {len(a)}"]
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out += _differences(x, y, f"{path}[{i}]")
        return out
    # Decimals compare by value: 8.40 written as 8.4 is the same amount.
    return [] if a == b else [f"{path}: {b!r} instead of {a!r}"]


def invoice_differences(expected: Invoice, actual: Invoice) -> list[str]:
    """Field paths where ``actual`` differs from ``expected`` (both completed); amounts
    compare by value, and a format may fill in the profile terms BT-23/BT-24."""
    return _differences(expected.model_dump(exclude_none=True),
                        actual.model_dump(exclude_none=True))


# ----------------------------------------------------------------------------- formats

#: Inputs no format may read as an invoice, nor crash on.
BAD_INPUTS: tuple[tuple[str, bytes], ...] = (
    ("empty", b""),
    ("binary noise", bytes(range(256)) * 4),
    ("other text", b"Dear customer,\nthis is not an invoice.\n"),
)


def check_format(name: str, *, plugins: Iterable[tuple[str, object]] = (),
                 gateway: Gateway | None = None, samples: Sequence[str] = SAMPLES,
                 language: str = "en", options: dict[str, Any] | None = None) -> Report:
    """Check the format ``name`` on every sample invoice.

    * it is registered with ``name``, ``media_type``, ``extension`` and ``description``;
    * rendering is deterministic (same invoice → same bytes), unless the format says
      ``deterministic = False`` (a PDF with a creation date);
    * the output passes the format's own ``validate`` (when ``can_validate``);
    * ``parse(render(x)) == x`` (when ``can_parse``), field by field;
    * bad input (empty, binary noise, other text, a truncated document) is refused with
      the gateway's own error (``InputError``/``InvoiceRejected``), never a crash;
    * all of it without any network access.

    ``plugins`` are (name, object) pairs to register besides the installed plugins.
    """
    report = Report(f"format {name!r}")
    with _gateway(gateway, plugins) as gw, no_network():
        fmt = None
        with report.check("registered"):
            fmt = gw.plugins.formats.get(name)
            for attr in ("name", "media_type", "extension", "description"):
                value = getattr(fmt, attr, None)
                assert isinstance(value, str) and value, f"{attr} must be a non-empty str"
            for attr in ("can_parse", "can_validate"):
                assert isinstance(getattr(fmt, attr, False), bool), f"{attr} must be a bool"
        if fmt is None:
            return report.raise_for_failures()
        rendered: dict[str, bytes] = {}
        for sample in samples:
            invoice = sample_invoice(sample)
            with report.check(f"render {sample}"):
                doc = gw.render(invoice, name, language=language, options=options,
                                validate=False)
                assert isinstance(doc.content, bytes) and doc.content, "rendered nothing"
                rendered[sample] = doc.content
            if sample not in rendered:
                continue
            content = rendered[sample]
            with report.check(f"deterministic {sample}"):
                if not getattr(fmt, "deterministic", True):
                    raise _Skip("the format says deterministic = False")
                again = gw.render(invoice, name, language=language, options=options,
                                  validate=False).content
                assert again == content, "two renders of the same invoice differ"
            with report.check(f"valid {sample}"):
                if not fmt.can_validate:
                    raise _Skip("can_validate is False")
                fatal = [str(f) for f in fmt.validate(content) if f.fatal]
                assert not fatal, f"own validation fails: {'; '.join(fatal[:5])}"
            with report.check(f"round trip {sample}"):
                if not fmt.can_parse:
                    raise _Skip("can_parse is False")
                parsed = list(fmt.parse(content, f"sample {sample}"))
                assert len(parsed) == 1, f"read {len(parsed)} invoices from one"
                [back] = parsed
                assert isinstance(back, Invoice), f"read {back!r}"
                own_id = getattr(fmt, "customization_id", None)
                if own_id and back.specification_id == own_id:  # a derived format's BT-24
                    back = back.model_copy(update={"specification_id":
                                                   invoice.specification_id})
                diff = invoice_differences(invoice, complete(back))
                assert not diff, "parse(render(x)) != x: " + "; ".join(diff[:5])
        if fmt.can_parse:
            truncated = next(iter(rendered.values()), b"")
            inputs = (*BAD_INPUTS, ("truncated document", truncated[:len(truncated) // 2]))
            for label, data in inputs:
                with report.check(f"refuses {label}"):
                    _assert_refused(fmt, data)
        if fmt.can_validate:
            with report.check("validate refuses noise"):
                try:
                    findings = fmt.validate(BAD_INPUTS[1][1])
                except GatewayError:
                    pass
                else:
                    assert any(f.fatal for f in findings), "noise validated as fine"
    return report.raise_for_failures()


def _assert_refused(fmt: Any, data: bytes) -> None:
    try:
        results = list(fmt.parse(data, "conformance"))
    except GatewayError:
        return
    invoices = [r for r in results if not isinstance(r, InvoiceRejected)]
    assert not invoices, f"read {len(invoices)} invoice(s) from it"


# ----------------------------------------------------------------------------- channels

Observe = Callable[[], Any]


def check_channel(name: str, settings: dict[str, Any], *,
                  plugins: Iterable[tuple[str, object]] = (), gateway: Gateway | None = None,
                  observe: Observe | None = None, formats: Sequence[str] | None = None,
                  retryable: dict[str, Any] | None = None,
                  permanent: dict[str, Any] | None = None) -> Report:
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

    ``formats`` default to the channel's ``requires_formats`` or ``["json"]``.
    """
    report = Report(f"channel {name!r}")
    with _gateway(gateway, plugins) as gw:
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
            delivery_id = _push(gw, ok, "household")
            summary = _dispatch(gw, delivery_id)
            record = gw.store.get_delivery(delivery_id)
            assert record is not None
            assert summary.delivered == 1, f"not delivered: {record.last_error}"
            assert record.receipt_id, "no receipt id recorded"
            assert isinstance((record.receipt or {}).get("data", {}), dict)
        with report.check("repeat after success changes nothing"):
            if record is None or record.status != "delivered":
                raise _Skip("the first delivery failed")
            before = snapshot()
            receipt = _deliver_again(gw, channel, record)
            assert isinstance(receipt, Receipt), f"deliver returned {receipt!r}"
            assert receipt.id == record.receipt_id, \
                f"receipt id {receipt.id!r} instead of {record.receipt_id!r}"
            assert snapshot() == before, "the receiver changed on a repeated delivery"
        with report.check("lost lease sends nothing"):
            if ok is None:
                raise _Skip("no customer could be saved with these settings")
            _check_lease_loss(gw, ok, snapshot)
        for kind, bad in (("retryable", retryable), ("permanent", permanent)):
            with report.check(f"{kind} failure classified"):
                if bad is None:
                    raise _Skip(f"no {kind} settings given")
                _check_failure(gw, channel, customer_for(kind, bad), retry=kind == "retryable")
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
    from gateway.core.dispatcher import Dispatcher

    return Dispatcher(gw, worker=worker).run(delivery_id=delivery_id)


def _deliver_again(gw: Gateway, channel: Any, record: Any) -> Any:
    from gateway.core.dispatcher import Dispatcher, _takes_session

    dispatcher = Dispatcher(gw)
    bundle: Bundle = dispatcher._bundle(record)
    settings = gw.channel_settings(channel, record.settings, context="conformance")
    state = DeliveryState(dict(record.state), lambda data: None)
    with contextlib.ExitStack() as stack:
        session = dispatcher._open_session(stack, record.channel_type)
        extra = {"session": session} if _takes_session(channel) else {}
        return channel.deliver(bundle, settings, state, **extra)


def _check_lease_loss(gw: Gateway, customer_id: str, snapshot: Observe) -> None:
    from gateway.core.dispatcher import Dispatcher

    delivery_id = _push(gw, customer_id, "business")
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


def _check_failure(gw: Gateway, channel: Any, customer_id: str, *, retry: bool) -> None:
    delivery_id = _push(gw, customer_id, "household")
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


# ----------------------------------------------------------------------------- sources


def check_source(name: str, options: dict[str, Any], *,
                 plugins: Iterable[tuple[str, object]] = (), gateway: Gateway | None = None,
                 minimum: int = 1, deterministic: bool = True) -> Report:
    """Check the source ``name`` reading with ``options``.

    * it is registered with ``name``, ``description`` and ``invoices``;
    * ``invoices(options)`` yields at least ``minimum`` :class:`~gateway.Invoice` objects
      with distinct numbers, each of which the core completes without a fatal finding;
    * a second call gives the same invoices (unless ``deterministic=False``);
    * bad options are refused with the gateway's own error, not a crash;
    * all of it without network access beyond loopback.
    """
    report = Report(f"source {name!r}")
    with _gateway(gateway, plugins) as gw, no_network(allow_loopback=True):
        source = None
        with report.check("registered"):
            source = gw.plugins.sources.get(name)
            assert isinstance(getattr(source, "description", None), str), "no description"
        if source is None:
            return report.raise_for_failures()
        first: list[Any] = []
        with report.check("yields complete invoices"):
            first = list(source.invoices(dict(options)))
            assert len(first) >= minimum, f"{len(first)} invoices, expected >= {minimum}"
            assert all(isinstance(i, Invoice) for i in first), "yields non-Invoice values"
            numbers = [i.number for i in first]
            assert len(set(numbers)) == len(numbers), "invoice numbers repeat"
            for invoice in first:
                complete(invoice, source=f"source {name}")
        with report.check("deterministic"):
            if not deterministic:
                raise _Skip("deterministic=False")
            second = list(source.invoices(dict(options)))
            assert [i.model_dump(mode="json") for i in second] == \
                [i.model_dump(mode="json") for i in first], "a second call differs"
        with report.check("refuses bad options"):
            try:
                list(source.invoices({"conformance-unknown-option": object()}))
            except GatewayError:
                pass
            except (TypeError, KeyError, ValueError) as exc:
                raise AssertionError(f"bad options crash with {type(exc).__name__}: "
                                     f"{exc}") from None
    return report.raise_for_failures()
