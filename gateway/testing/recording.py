"""A channel that records what it is given: for format and hook authors' tests.

Register it for one gateway (``gateway_factory(extra_plugins=[("recording", channel)])``
or the ``recording_channel`` fixture), give a customer ``{"channel": "recording"}``, and
read :attr:`RecordingChannel.bundles` after a dispatcher run. Its settings script
failures, so that a test can see the dispatcher's retries and fallbacks. The gateway's
own channels are tested against real servers; this one stands in where the receiving
side is not the subject of the test.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.core.documents import Bundle, DeliveryState, Receipt
from gateway.errors import DeliveryError
from gateway.hookspecs import hookimpl


class RecordingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail: Literal["never", "retryable", "permanent"] = Field(
        "never", description="Make every delivery fail this way")
    retry_after: float | None = Field(None, ge=0, description="With fail = retryable")


class RecordingChannel:
    """The ``recording`` channel; also the plugin object that registers it."""

    name: ClassVar[str] = "recording"
    description: ClassVar[str] = "Records bundles in memory (tests)"
    Settings: ClassVar[type[BaseModel]] = RecordingSettings

    def __init__(self) -> None:
        #: every bundle delivered, once each, in order
        self.bundles: list[Bundle] = []
        #: every call of deliver, including repeats and failures
        self.calls = 0

    def session(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def deliver(self, bundle: Bundle, settings: Any, state: DeliveryState) -> Receipt:
        self.calls += 1
        if settings.fail == "retryable":
            raise DeliveryError("recording channel told to fail (retryable)", retryable=True,
                                retry_after=settings.retry_after)
        if settings.fail == "permanent":
            raise DeliveryError("recording channel told to fail (permanent)", retryable=False)
        receipt_id = "recording:" + hashlib.sha256(bundle.idempotency_key.encode()).hexdigest()[:24]
        if not state.done("recorded"):
            self.bundles.append(bundle)
            state.mark_done("recorded", receipt_id)
        return Receipt(id=receipt_id, detail="recorded",
                       data={"documents": [d.filename for d in bundle.documents]})

    @hookimpl
    def gateway_register_channels(self, register: Any) -> None:
        register(self)
