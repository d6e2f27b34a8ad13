"""The ``portal`` delivery channel: publishing an invoice makes it visible in the portal
with a notice on the customer's overview. It is the fallback when e-mail or SFTP fail
permanently, so it must not fail itself: it only writes one row to the portal's own
database.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from gateway import Bundle, DeliveryError, DeliveryState, Receipt
from plugins.portal.db import PortalDBs


class PortalChannelSettings(BaseModel):
    """Nothing to set per customer. ``[plugins.portal]`` in gateway.toml is merged in by
    the core and holds the web app's settings, so unknown keys are ignored here."""

    model_config = ConfigDict(extra="ignore")


class PortalChannel:
    name: ClassVar[str] = "portal"
    description: ClassVar[str] = "Publish to the customer portal (archive, downloads, notice)"
    Settings: ClassVar[type[BaseModel]] = PortalChannelSettings

    def __init__(self) -> None:
        self._dbs: PortalDBs | None = None
        self.data_dir = Path("gateway-data")

    def configure(self, settings: dict[str, Any], data_dir: Path) -> None:
        if self._dbs is None or self.data_dir != data_dir:
            if self._dbs is not None:
                self._dbs.close()
            self.data_dir = data_dir
            self._dbs = PortalDBs(data_dir / "portal.db")

    def session(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def deliver(self, bundle: Bundle, settings: Any, state: DeliveryState) -> Receipt:
        if self._dbs is None:
            self.configure({}, self.data_dir)
        assert self._dbs is not None
        # The receipt id comes from the idempotency key, so a repeated attempt after a
        # crash yields the same receipt and the publication row is written once.
        receipt_id = "portal:" + hashlib.sha256(bundle.idempotency_key.encode()).hexdigest()[:24]
        try:
            publication = self._dbs.get().publish(bundle.invoice_id, bundle.customer_id,
                                                  receipt_id, bundle.reason)
        except Exception as exc:  # a locked or full disk: the dispatcher retries later
            raise DeliveryError(f"cannot publish to the portal: {exc}", retryable=True) from None
        detail = f"published for customer {bundle.customer_id}"
        if bundle.reason:
            detail += f" (fallback: {bundle.reason})"
        return Receipt(id=receipt_id, detail=detail,
                       recipients={f"portal:{bundle.customer_id}": publication.receipt_id})
