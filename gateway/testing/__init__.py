"""Testing helpers for gateway plugins, shipped with the gateway.

A pytest plugin (registered through the ``pytest11`` entry point, so installing the
gateway is enough) provides fixtures; the conformance suites check a plugin against
the contract in one call::

    from gateway.testing import check_channel, check_format

    def test_markdown_conforms():
        check_format("markdown")

    def test_ledger_conforms(tmp_path):
        path = tmp_path / "ledger.jsonl"
        check_channel("ledger", {"path": str(path)},
                      observe=lambda: path.read_text() if path.exists() else "")

Fixtures (see :mod:`gateway.testing.pytest_plugin`): ``gateway_factory``, ``gw``,
``customer``, ``sample_invoice``, ``clock``, ``run_dispatcher`` and
``recording_channel``.
"""

from gateway.testing.conformance import (
    ConformanceError,
    Report,
    check_channel,
    check_format,
    check_source,
    invoice_differences,
)
from gateway.testing.harness import Clock, add_customer, make_gateway, run_dispatcher
from gateway.testing.network import NetworkUsed, no_network
from gateway.testing.recording import RecordingChannel
from gateway.testing.samples import SAMPLES, sample_data, sample_invoice

__all__ = [
    "SAMPLES", "Clock", "ConformanceError", "NetworkUsed", "RecordingChannel", "Report",
    "add_customer",
    "check_channel", "check_format", "check_source", "invoice_differences", "make_gateway",
    "no_network", "run_dispatcher", "sample_data", "sample_invoice",
]
