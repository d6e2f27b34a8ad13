"""What every request needs: settings, a gateway (store + archive) and the portal tables,
one of each per thread because SQLite connections must not be shared concurrently."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.core import Config, Gateway
from gateway.core.storage import DEAD, DELIVERING, FAILED, PENDING, RETRY, DeliveryRecord
from gateway.plugins import Plugins, get_plugin_manager
from plugins.portal.db import PortalDB, PortalDBs
from plugins.portal.inline import InlineDelivery
from plugins.portal.perthread import PerThread


class PortalSettings(BaseModel):
    """``[plugins.portal]`` in gateway.toml."""

    model_config = ConfigDict(extra="ignore")

    secure_cookies: bool | None = Field(
        None, description="Mark cookies Secure; default: when the request came over https")
    session_hours: float = Field(12.0, gt=0)
    login_attempts: int = Field(5, ge=1, description="Failed logins per e-mail per window")
    login_attempts_per_ip: int = Field(20, ge=1)
    login_window_minutes: float = Field(15.0, gt=0)
    invitation_days: float = Field(14.0, gt=0)
    page_size: int = Field(20, ge=1, le=500)
    deliver_on_push: bool = Field(True, description="API: deliver right after accepting")
    deliver_on_retry: bool = Field(True, description="Operator retry: deliver at once")
    # A request never waits for a slow customer server longer than this: the deliveries
    # are in the outbox already, and the dispatcher finishes what is still pending.
    deliver_wait_seconds: float = Field(
        5.0, ge=0, le=25, description="API push, operator retry: the most a request waits "
        "for its deliveries; the rest are answered as pending")
    # Together with limits.lines_per_invoice (one invoice renders in about 15 s at the
    # default) this keeps every push under 30 s however many invoices it carries.
    push_seconds: float = Field(
        15.0, gt=0, le=25, description="API push: no further invoice of the request is "
        "started after this (counted once the body has arrived, waiting for a worker "
        "included)")
    email_channels: list[str] = Field(
        default_factory=lambda: ["email"],
        description="Channel types whose failure shows as 'e-mail failed'")
    signup_channels: list[str] | None = Field(
        None, description="Channel types besides e-mail offered at sign-up, each with a "
        "form made from its settings; default: every installed channel named sftp*")
    signup_formats: list[str] | None = Field(
        None, description="Formats a customer may choose; default: every installed format "
        "except json")
    # About 9 ms of CPU per row (weasyprint lays the table out whole): 1,000 rows keep
    # the request near 10 s; a bigger year is offered month by month, or as CSV.
    export_pdf_invoices: int = Field(
        1000, ge=1, description="Invoices in one PDF history export (the CSV exports "
        "stream and have no limit)")
    default_language: str = "lv"


class Portal:
    def __init__(self, config: Config, plugins: Plugins | None = None) -> None:
        self.config = config
        self.plugins = plugins or get_plugin_manager()
        self.settings = PortalSettings.model_validate(config.plugin_settings("portal"))
        self.dbs = PortalDBs(config.data_dir / "portal.db")
        self._gateways: PerThread[Gateway] = PerThread(
            lambda: Gateway(self.config, self.plugins), Gateway.close)
        self.secret = self.db.secret()
        #: customer pages added by other plugins (:mod:`plugins.portal.extensions`)
        self.pages: list[Any] = []
        self._push_limiter: Any = None
        self.inline = InlineDelivery(config, self.plugins,
                                     workers=max(2, config.limits.api_workers))

    def push_limiter(self) -> Any:
        """CPU-heavy requests worked on at once (``limits.api_workers``): API pushes,
        documents rendered on request, PDF exports. Made on first use, in the event loop,
        because an anyio limiter belongs to the running loop."""
        if self._push_limiter is None:
            import anyio

            self._push_limiter = anyio.CapacityLimiter(self.config.limits.api_workers)
        return self._push_limiter

    @contextlib.contextmanager
    def heavy_work(self, wait: float) -> Iterator[bool]:
        """For a sync route (in its worker thread): hold one of the workers that API
        pushes hold too while CPU-heavy work runs; yields False when none came free
        within ``wait`` seconds, so the route answers "busy" instead of piling up."""
        import anyio
        import anyio.from_thread

        borrower = object()

        async def acquire() -> bool:
            with anyio.move_on_after(wait):
                await self.push_limiter().acquire_on_behalf_of(borrower)
                return True
            return False

        held = anyio.from_thread.run(acquire)
        try:
            yield held
        finally:
            if held:
                anyio.from_thread.run_sync(self.push_limiter().release_on_behalf_of,
                                           borrower)

    @property
    def db(self) -> PortalDB:
        return self.dbs.get()

    @property
    def gw(self) -> Gateway:
        return self._gateways.get()

    def close(self) -> None:
        self.inline.close()
        self._gateways.close()
        self.dbs.close()

    # ------------------------------------------------------------------ helpers

    def is_email(self, delivery: DeliveryRecord) -> bool:
        return delivery.channel_type in self.settings.email_channels

    def signup_channels(self) -> list[Any]:
        names = self.settings.signup_channels
        if names is None:
            names = [n for n in self.plugins.channels.names() if n.startswith("sftp")]
        return [self.plugins.channels.get(n) for n in names if n in self.plugins.channels]

    def signup_formats(self) -> list[Any]:
        names = self.settings.signup_formats
        if names is None:
            names = [n for n in self.plugins.formats.names() if n != "json"]
        return [self.plugins.formats.get(n) for n in names if n in self.plugins.formats]


@dataclass(frozen=True)
class InvoiceStatus:
    key: str  # a text id: st_delivered, st_email_failed, ...
    css: str
    error: str | None = None


def invoice_status(portal: Portal, deliveries: list[DeliveryRecord]) -> InvoiceStatus:
    """One line per invoice: an e-mail failure wins over everything, because that is what
    the customer must know (the invoice did not reach the mailbox)."""
    for d in deliveries:
        if portal.is_email(d) and d.status in (FAILED, DEAD):
            return InvoiceStatus("st_email_failed", "bad", d.last_error)
    if any(d.status in (FAILED, DEAD) for d in deliveries):
        failed = next(d for d in deliveries if d.status in (FAILED, DEAD))
        return InvoiceStatus("st_failed", "bad", failed.last_error)
    if any(d.status in (PENDING, RETRY, DELIVERING) for d in deliveries):
        return InvoiceStatus("st_pending", "wait")
    if deliveries:
        return InvoiceStatus("st_delivered", "ok")
    return InvoiceStatus("st_portal", "ok")
