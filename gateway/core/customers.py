"""Customers and their preferences: formats, channels, language, fallbacks, paper."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.core.model import Invoice
from gateway.core.validation import first_error
from gateway.errors import ConfigError

Language = Literal["lv", "en"]


class ChannelPreference(BaseModel):
    """One way a customer wants to receive invoices.

    ``settings`` are validated by the channel's own ``Settings`` model. ``fallback``
    names another channel (by preference name, or a channel type such as ``portal``)
    that takes over when this one fails permanently.
    """

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(description="Channel type, e.g. email, sftp-push, folder, portal")
    name: str | None = Field(None, description="Label, unique per customer; default: channel")
    settings: dict[str, Any] = Field(default_factory=dict)
    formats: list[str] | None = Field(
        None, description="Formats for this channel only; default: the customer's formats"
    )
    fallback: str | None = Field(None, description="Channel to use on permanent failure")

    @property
    def label(self) -> str:
        return self.name or self.channel


class Customer(BaseModel):
    """A customer of the gateway: who receives invoices, and how."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    name: str = Field(min_length=1, max_length=200)
    language: Language = "lv"
    formats: list[str] = Field(default_factory=lambda: ["pdf"])
    channels: list[ChannelPreference] = Field(default_factory=list)
    paper: bool = Field(False, description="Also receives paper invoices (the paper fee applies)")
    match: list[str] = Field(
        default_factory=list,
        description=(
            "Buyer identifiers that route an invoice to this customer: VAT id, legal "
            "registration id, buyer identifier (BT-46), electronic address or buyer "
            "reference (BT-10). The customer id itself always matches."
        ),
    )
    format_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-format options, e.g. {csv = {dialect = 'lv'}}"
    )

    @field_validator("channels")
    @classmethod
    def _unique_labels(cls, channels: list[ChannelPreference]) -> list[ChannelPreference]:
        labels = [c.label for c in channels]
        dupes = {x for x in labels if labels.count(x) > 1}
        if dupes:
            raise ValueError(f"channel names must be unique; repeated: {', '.join(sorted(dupes))}")
        return channels

    def channel(self, label: str) -> ChannelPreference | None:
        return next((c for c in self.channels if c.label == label), None)

    def formats_for(self, pref: ChannelPreference) -> list[str]:
        return pref.formats if pref.formats is not None else self.formats


def buyer_keys(invoice: Invoice) -> list[str]:
    """The identifiers of an invoice's buyer that may route it to a customer."""
    b = invoice.buyer
    keys = [b.vat_id, invoice.buyer_reference]
    keys += [i.value for i in b.identifiers]
    if b.legal_registration_id:
        keys.append(b.legal_registration_id.value)
    if b.electronic_address:
        keys.append(b.electronic_address.value)
    return [k for k in keys if k]


def load_customers_toml(path: Path) -> list[Customer]:
    """Read ``[[customer]]`` tables from a TOML file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read customers: {exc}") from None
    customers = []
    for i, raw in enumerate(data.get("customer", [])):
        try:
            customers.append(Customer.model_validate(raw))
        except ValidationError as exc:
            loc, msg = first_error(exc)
            raise ConfigError(f"{path}: customer #{i + 1} ({raw.get('id', '?')}): {loc}: "
                              f"{msg}") from None
    return customers
