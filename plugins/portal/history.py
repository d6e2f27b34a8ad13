"""An invoice's hash-chained events in words a customer understands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.core.storage import DeliveryRecord, Event, channel_names
from plugins.portal import i18n
from plugins.portal.state import Portal


@dataclass(frozen=True)
class Line:
    at: float
    text: str
    css: str
    detail: str = ""


def _names(data: dict[str, Any], deliveries: list[DeliveryRecord]) -> tuple[str, str]:
    """The channel type and label an event names (in the words of before core migration
    0003 too); a label no delivery has stands for its type."""
    kind, label = channel_names(data, deliveries)
    return kind or label or "", label or ""


def describe(events: list[Event], deliveries: list[DeliveryRecord], portal: Portal,
             lang: str, *, internal: bool = False) -> list[Line]:
    """``internal`` keeps the operator's details (error texts, receipts)."""
    email_types = set(portal.settings.email_channels)
    lines = []
    for e in events:
        data: dict[str, Any] = e.data
        # What the customer reads is their own name for the channel.
        kind, channel = _names(data, deliveries)

        def t(key: str, _lang: str = lang, **values: object) -> str:
            return i18n.text(_lang, key, **values)

        css, detail = "info", ""
        if e.kind == "accepted":
            text = t("ev_accepted")
        elif e.kind == "rendered":
            text = t("ev_rendered", format=str(data.get("format", "")).upper())
        elif e.kind == "queued":
            if not internal:
                continue
            text = t("ev_queued", channel=channel)
        elif e.kind == "delivered":
            css = "ok"
            if kind in email_types:
                text = t("ev_emailed")
                detail = ", ".join(data.get("recipients", {}) or {})
            elif kind == "sftp-mailbox":
                text = t("ev_sftp_mailbox")
            elif kind.startswith("sftp"):
                text = t("ev_sftp")
            elif kind == "portal":
                text = t("ev_portal")
            else:
                text = t("ev_delivered", channel=channel)
        elif e.kind == "delivery-failed":
            css = "bad"
            text = t("ev_email_failed") if kind in email_types else t("ev_failed",
                                                                       channel=channel)
            detail = str(data.get("error", ""))
        elif e.kind == "delivery-retry":
            if not internal:
                continue
            css, text, detail = "wait", t("ev_retry", channel=channel), str(data.get("error"))
        elif e.kind == "fallback":
            if not internal:  # the customer sees where it went, not the mechanics
                continue
            text = t("ev_fallback", to=str(data.get("to", "")))
        elif e.kind == "requeued":
            css, text = "wait", t("ev_requeued", channel=channel)
        elif e.kind == "viewed":
            text = t("ev_viewed")
        elif e.kind == "acknowledged":
            css, text = "ok", t("ev_acknowledged")
        elif e.kind == "downloaded":
            via = str(data.get("via", data.get("channel", "")))
            if via.startswith("sftp"):
                text = t("ev_sftp_downloaded")
            else:
                text = t("ev_downloaded", format=str(data.get("format", "")).upper())
        else:
            text = e.kind
        if internal and not detail:
            detail = ", ".join(f"{k}={v}" for k, v in data.items()
                               if v not in (None, "", [], {}))[:160]
        lines.append(Line(e.at, text, css, detail))
    return lines
