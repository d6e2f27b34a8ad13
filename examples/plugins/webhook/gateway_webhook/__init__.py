"""The ``webhook`` channel: POST the UBL invoice, HMAC-signed, with an Idempotency-Key.

Uses the gateway's public API only (``from gateway import ...``); see README.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from gateway import (
    Bundle,
    DeliveryError,
    DeliveryState,
    Receipt,
    RetryPolicy,
    hookimpl,
    secret_from_env,
)

SIGNATURE_HEADER = "Gateway-Signature"
#: Replies the gateway will try again; everything else below 500 is permanent.
RETRY_STATUS = frozenset({408, 425, 429})
Scheme = Literal["http", "https"]


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="Endpoint that receives the UBL document")
    secret_env: str = Field(description="Environment variable holding the HMAC key")
    timeout: float = Field(10.0, gt=0, le=120, description="Seconds per request")
    max_retry_after: float = Field(3600.0, gt=0,
                                   description="A longer Retry-After is capped to this")

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not value.replace("_", "").isalnum() or value[0].isdigit():
            raise ValueError(f"{value!r} is not an environment variable name")
        return value


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The ``Gateway-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from now: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(when.timestamp() - now, 0.0)


class WebhookChannel:
    name: ClassVar[str] = "webhook"
    description: ClassVar[str] = "POST the UBL invoice to an HTTPS endpoint (HMAC-signed)"
    Settings: ClassVar[type[BaseModel]] = WebhookSettings
    requires_formats: ClassVar[tuple[str, ...]] = ("ubl",)
    retry: ClassVar[RetryPolicy] = RetryPolicy(max_attempts=12, base_delay=30,
                                               max_delay=1800)

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        import httpx  # imported when delivering, not on every `gateway` command

        # One connection pool per dispatcher run; deliver gets it as `session`.
        with httpx.Client(follow_redirects=False,
                          headers={"User-Agent": "invoice-gateway-webhook/1.0"}) as client:
            yield client

    def deliver(self, bundle: Bundle, settings: Any, state: DeliveryState,
                session: Any = None) -> Receipt:
        receipt_id = "webhook:" + hashlib.sha256(bundle.idempotency_key.encode()).hexdigest()[:24]
        url = str(settings.url)
        done = state.get("response")
        if done is not None:  # POSTed and acknowledged by an earlier attempt
            return self._receipt(receipt_id, url, done)
        [ubl] = [d for d in bundle.documents if d.format == "ubl"] or [None]
        if ubl is None:
            raise DeliveryError("no UBL document in this delivery; the webhook channel "
                                "needs the ubl format", retryable=False)
        secret = secret_from_env(settings.secret_env, purpose="webhook signing key",
                                 setting="secret_env").encode()
        response = self._post(session, url, ubl.content, ubl.filename, bundle, secret,
                              settings)
        answer = {"status": response.status_code,
                  "request_id": response.headers.get("X-Request-Id"),
                  "bytes": len(ubl.content)}
        state.set("response", answer)
        return self._receipt(receipt_id, url, answer)

    def _post(self, session: Any, url: str, body: bytes, filename: str, bundle: Bundle,
              secret: bytes, settings: Any) -> Any:
        import httpx

        headers = {
            "Content-Type": "application/xml",
            "Idempotency-Key": bundle.idempotency_key,
            SIGNATURE_HEADER: sign(secret, body, int(time.time())),
            "Gateway-Invoice": bundle.invoice.number,
            "Content-Disposition": f'attachment; filename="{filename}"',
        }
        with contextlib.ExitStack() as stack:
            client = session or stack.enter_context(httpx.Client())
            try:
                response = client.post(url, content=body, headers=headers,
                                       timeout=settings.timeout)
            except httpx.HTTPError as exc:
                raise DeliveryError(f"POST {url}: {type(exc).__name__}: {exc}",
                                    retryable=True) from None
        status = response.status_code
        if 200 <= status < 300:
            return response
        reply = f"POST {url}: HTTP {status} {response.reason_phrase}".rstrip()
        if status in (429, 503):
            wait = retry_after_seconds(response.headers.get("Retry-After"), time.time())
            if wait is not None:
                raise DeliveryError(f"{reply}; retry after {wait:.0f} s", retryable=True,
                                    retry_after=min(wait, settings.max_retry_after))
        retryable = status >= 500 or status in RETRY_STATUS
        raise DeliveryError(reply, retryable=retryable)

    @staticmethod
    def _receipt(receipt_id: str, url: str, answer: dict[str, Any]) -> Receipt:
        return Receipt(id=receipt_id, detail=f"POST {url}",
                       recipients={url: f"HTTP {answer['status']}"}, data=answer)


@hookimpl
def gateway_register_channels(register: Any) -> None:
    register(WebhookChannel())
