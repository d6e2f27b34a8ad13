"""``check_source``: the conformance suite of an invoice source."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.core.model import Invoice
from gateway.core.pipeline import Gateway
from gateway.core.validation import complete
from gateway.errors import GatewayError
from gateway.testing.network import no_network
from gateway.testing.report import Report, Skip, suite_gateway


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
    with suite_gateway(gateway, plugins) as gw, no_network(allow_loopback=True):
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
                raise Skip("deterministic=False")
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
