"""A gateway on a temporary data directory, customers, and a clock a test can move."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.core.config import load_config
from gateway.core.customers import Customer
from gateway.core.dispatcher import Dispatcher, DispatchSummary
from gateway.core.pipeline import Gateway
from gateway.plugins import get_plugin_manager

#: Customer defaults: the buyer of the ``household`` sample.
DEFAULT_CUSTOMER: dict[str, Any] = {
    "id": "100234567", "name": "Jānis Bērziņš", "formats": ["json"],
    "match": ["C-100234567"], "channels": [{"channel": "folder", "name": "mailbox"}],
}


def make_gateway(data_dir: Path, *, plugins: Iterable[tuple[str, object]] = (),
                 config: str = "", load_entry_points: bool = True) -> Gateway:
    """A gateway on ``data_dir`` with the installed plugins plus ``plugins`` (name,
    object) registered for this gateway only; ``config`` is written as gateway.toml."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if config:
        (data_dir / "gateway.toml").write_text(config, encoding="utf-8")
    manager = get_plugin_manager(extra=tuple(plugins), load_entry_points=load_entry_points)
    return Gateway(load_config(data_dir), manager)


def add_customer(gw: Gateway, **data: Any) -> Customer:
    """Save a customer, checked as ``gateway customer add`` checks it (formats and
    channels installed, channel settings valid, formats the channels need present).
    Defaults: the ``household`` sample's buyer, JSON, a folder channel."""
    for key, value in DEFAULT_CUSTOMER.items():
        data.setdefault(key, value)
    customer = Customer.model_validate(data)
    gw.check_customer(customer)
    gw.store.put_customer(customer, actor="test")
    return customer


@dataclass
class Clock:
    """Wall-clock time as the gateway sees it, moved forward by a test.

    While installed, ``time.time()`` returns the real time plus :attr:`offset`: time
    still flows (servers' timeouts keep working) but a test can jump over a backoff or
    a ``Retry-After`` with :meth:`advance` instead of sleeping.
    """

    offset: float = 0.0
    _real: Any = field(default=time.time, repr=False)

    def __call__(self) -> float:
        return self._real() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def install(self, monkeypatch: Any) -> Clock:
        monkeypatch.setattr(time, "time", self)
        return self


def run_dispatcher(gw: Gateway, *, clock: Clock | None = None, advance: float = 0.0,
                   worker: str | None = None, **options: Any) -> DispatchSummary:
    """Move ``clock`` forward by ``advance`` seconds, then deliver what is due."""
    if clock is not None and advance:
        clock.advance(advance)
    return Dispatcher(gw, worker=worker).run(**options)
