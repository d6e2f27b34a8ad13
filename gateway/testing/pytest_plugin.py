"""The gateway's pytest plugin: fixtures for testing gateway plugins.

Registered through the ``pytest11`` entry point ``invoice_gateway``; disable it with
``-p no:invoice_gateway``. Every fixture is function-scoped and works in ``tmp_path``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.core.customers import Customer
from gateway.core.dispatcher import DispatchSummary
from gateway.core.model import Invoice
from gateway.core.pipeline import Gateway
from gateway.testing import harness, samples
from gateway.testing.recording import RecordingChannel

GatewayFactory = Callable[..., Gateway]


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[GatewayFactory]:
    """``make(*, extra_plugins=(), config="", data_dir=None, load_entry_points=True)``:
    a gateway on ``tmp_path/data`` (or ``data_dir``) with the installed plugins plus
    ``extra_plugins`` ((name, object) pairs) and ``config`` written as gateway.toml.
    Closed after the test."""
    made: list[Gateway] = []

    def make(*, extra_plugins: tuple[tuple[str, object], ...] = (), config: str = "",
             data_dir: Path | None = None, load_entry_points: bool = True) -> Gateway:
        gw = harness.make_gateway(data_dir or tmp_path / "data", plugins=extra_plugins,
                                  config=config, load_entry_points=load_entry_points)
        made.append(gw)
        return gw

    yield make
    for gw in made:
        gw.close()


@pytest.fixture
def gw(gateway_factory: GatewayFactory) -> Gateway:
    """A gateway on a temporary data directory with the installed plugins."""
    return gateway_factory()


@pytest.fixture
def customer(gw: Gateway) -> Customer:
    """The ``household`` sample's buyer as a customer of ``gw``: JSON, folder channel.
    Add others with :func:`gateway.testing.add_customer`."""
    return harness.add_customer(gw)


@pytest.fixture
def sample_invoice() -> Callable[..., Invoice]:
    """``sample_invoice(name="household", completed=True)``: a fresh sample invoice
    (household, business, credit-note, allowances-charges, multi-page)."""
    return samples.sample_invoice


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> harness.Clock:
    """Installed for the test: ``time.time()`` plus an offset; ``clock.advance(s)``
    jumps over backoff and Retry-After delays without sleeping."""
    return harness.Clock().install(monkeypatch)


@pytest.fixture
def run_dispatcher(clock: harness.Clock) -> Callable[..., DispatchSummary]:
    """``run_dispatcher(gw, advance=0.0, **run_options)``: move the clock, then deliver
    what is due."""

    def run(gw: Gateway, *, advance: float = 0.0, **options: Any) -> DispatchSummary:
        return harness.run_dispatcher(gw, clock=clock, advance=advance, **options)

    return run


@pytest.fixture
def recording_channel() -> RecordingChannel:
    """A fresh :class:`~gateway.testing.RecordingChannel`; register it with
    ``gateway_factory(extra_plugins=[("recording", recording_channel)])``."""
    return RecordingChannel()
