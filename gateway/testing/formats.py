"""``check_format``: the conformance suite of a format."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gateway.core.model import Invoice
from gateway.core.pipeline import Gateway
from gateway.core.validation import complete
from gateway.errors import GatewayError, InvoiceRejected
from gateway.testing.network import no_network
from gateway.testing.report import Report, Skip, suite_gateway
from gateway.testing.samples import SAMPLES, sample_invoice

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
    with suite_gateway(gateway, plugins) as gw, no_network():
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
                    raise Skip("the format says deterministic = False")
                again = gw.render(invoice, name, language=language, options=options,
                                  validate=False).content
                assert again == content, "two renders of the same invoice differ"
            with report.check(f"valid {sample}"):
                if not fmt.can_validate:
                    raise Skip("can_validate is False")
                fatal = [str(f) for f in fmt.validate(content) if f.fatal]
                assert not fatal, f"own validation fails: {'; '.join(fatal[:5])}"
            with report.check(f"round trip {sample}"):
                if not fmt.can_parse:
                    raise Skip("can_parse is False")
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
