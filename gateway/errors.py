"""The gateway's own error types.

Every error that a user can cause derives from :class:`GatewayError`; the CLI prints
those as one line (or one line per finding) and never as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["fatal", "warning", "information"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in an invoice or a document.

    ``rule`` is the official rule id where one exists (``BR-CO-15``,
    ``PEPPOL-EN16931-R001``, ``XSD``), ``path`` points at the field (a dotted model
    path such as ``lines[2].quantity``, or an XPath for XML findings).
    """

    rule: str
    path: str
    message: str
    severity: Severity = "fatal"
    term: str | None = None  # the EN 16931 business term, e.g. "BT-112"

    @property
    def fatal(self) -> bool:
        return self.severity == "fatal"

    def __str__(self) -> str:
        where = self.path or "(document)"
        if self.term:
            where = f"{where} ({self.term})"
        return f"[{self.rule}] {where}: {self.message}"


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """The gateway's configuration or a customer's preferences are wrong."""


class PluginError(GatewayError):
    """A plugin is broken, missing or clashes with another one."""


class StorageError(GatewayError):
    """The data directory or database cannot be used (full, read-only, locked)."""


class InputError(GatewayError):
    """An input file could not be read as invoices at all (wrong format, unsafe XML, ...)."""

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)


@dataclass
class InvoiceRejected(GatewayError):
    """An invoice broke one or more rules; ``findings`` says which and where."""

    findings: list[Finding]
    invoice: str | None = None  # the invoice number, when it could be read
    source: str | None = None  # file name, row, ... where the invoice came from
    warnings: list[Finding] = field(default_factory=list)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.summary())

    def summary(self) -> str:
        who = " ".join(
            part
            for part in (
                self.source or "",
                f"invoice {self.invoice}" if self.invoice else "",
            )
            if part
        )
        head = f"{who}: " if who else ""
        fatal = [f for f in self.findings if f.fatal] or self.findings
        first = str(fatal[0]) if fatal else "rejected"
        more = f" (+{len(fatal) - 1} more)" if len(fatal) > 1 else ""
        return f"{head}{first}{more}"


class DuplicateInvoice(GatewayError):
    """An invoice number was pushed before with different content."""


class DeliveryError(GatewayError):
    """A delivery attempt failed.

    ``retryable`` tells the dispatcher whether to try again later (connection lost,
    4xx SMTP reply) or to give up on this channel and apply the customer's fallback
    (5xx reply, unknown host key, permission denied). ``retry_after`` (seconds) is the
    receiving side's own word on when to try again (an HTTP ``Retry-After``, an SMTP
    greylisting delay): the next attempt is then due no earlier than that, instead of
    after the channel's backoff. It implies ``retryable``.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        recipients: dict[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must be >= 0 seconds")
        self.retryable = retryable or retry_after is not None
        self.retry_after = retry_after
        #: per-recipient error text, for a partial failure
        self.recipients = recipients or {}
