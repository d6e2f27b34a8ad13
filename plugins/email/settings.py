"""What the e-mail channel can be told: recipients per customer, the server per gateway.

Both live in one model because the core merges ``[plugins.email]`` from gateway.toml
under each customer's channel settings before validating them; a customer may thus
override a server setting (a dedicated relay), and a typo in either fails when the
customer is saved, not at delivery time.
"""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.utils import getaddresses
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

# Deliberately loose: the server has the last word on an address; this only catches
# what can never work (no @, spaces, a missing domain) when the customer is saved.
_ADDRESS = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\".]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_address(value: str) -> str:
    value = value.strip()
    if not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an e-mail address (expected name@domain.tld)")
    return value


def parse_mailbox(value: str) -> Address:
    """``"Name <addr>"`` or ``addr`` → an Address; the display name may hold any letters."""
    pairs = getaddresses([value])
    if len(pairs) != 1 or not pairs[0][1]:
        raise ValueError(f"{value!r} is not one mailbox (expected 'Name <name@domain.tld>')")
    name, addr = pairs[0]
    check_address(addr)
    local, _, domain = addr.rpartition("@")
    return Address(display_name=name, username=local, domain=domain)


class EmailSettings(BaseModel):
    """Settings of the ``email`` channel (customer settings over ``[plugins.email]``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # --- per customer
    to: list[str] = Field(min_length=1, description="Recipient addresses")
    cc: list[str] = Field(default_factory=list, description="Copy recipients")
    language: Literal["lv", "en"] | None = Field(
        None, description="Language of the message body; default: the customer's language")

    # --- per gateway (normally in [plugins.email])
    host: str = Field("localhost", min_length=1, description="SMTP server")
    port: int | None = Field(None, ge=1, le=65535,
                             description="Default: 587 (starttls), 465 (tls), 25 (none)")
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls: upgrade on the submission port; tls: implicit "
        "TLS (SMTPS); none: plain text, only for a relay on the same host")
    username: str | None = Field(None, description="Login; needs password_env")
    password_env: str | None = Field(
        None, description="Name of the environment variable that holds the password")
    from_address: str = Field(
        None,  # type: ignore[assignment]  # required, but with a message that says where
        validate_default=True, validation_alias=AliasChoices("from", "from_address"),
        description="Sender, e.g. 'Daugavas Elektrība <rekini@example.lv>'")
    reply_to: str | None = Field(None, description="Reply-To address")
    ca_file: str | None = Field(None, description="CA bundle to verify the server with; "
                                "default: the system's trust store")
    verify_tls: bool = Field(True, description="Check the server certificate and host name")
    helo_name: str | None = Field(None, description="Name to announce in EHLO")
    connect_timeout: float = Field(15.0, gt=0, description="Seconds to connect and greet")
    timeout: float = Field(60.0, gt=0, description="Seconds to wait for each reply")
    max_messages_per_connection: int = Field(
        100, ge=1, description="Reconnect after this many messages (many servers cap it)")
    message_id_domain: str | None = Field(
        None, description="Right-hand side of Message-IDs; default: the sender's domain")
    dkim_key_file: str | None = Field(None, description="PEM private key: sign with DKIM")
    dkim_selector: str | None = Field(None, description="DKIM selector (with dkim_key_file)")
    dkim_domain: str | None = Field(None, description="DKIM d= domain; default: sender's")
    on_partial_refusal: Literal["fallback", "delivered"] = Field(
        "fallback", description="When some recipients accepted and others refused for "
        "good: 'fallback' fails the delivery so the fallback applies (and the operator "
        "sees it); 'delivered' counts it as delivered and records the refusals")

    @field_validator("to", "cc")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        cleaned = [check_address(v) for v in values]
        lowered = [v.lower() for v in cleaned]
        dupes = sorted({v for v in lowered if lowered.count(v) > 1})
        if dupes:
            raise ValueError(f"address listed twice: {', '.join(dupes)}")
        return cleaned

    @field_validator("from_address", mode="before")
    @classmethod
    def _sender(cls, value: object) -> object:
        if value is None:
            raise ValueError('no sender: set from = "Name <address>" in [plugins.email] '
                             "of gateway.toml")
        if isinstance(value, str):
            parse_mailbox(value)
        return value

    @field_validator("reply_to")
    @classmethod
    def _mailbox(cls, value: str | None) -> str | None:
        if value is not None:
            parse_mailbox(value)
        return value

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name; put the "
                             "password into an environment variable and name it here")
        return value

    @model_validator(mode="after")
    def _pairs(self) -> EmailSettings:
        if (self.username is None) != (self.password_env is None):
            raise ValueError("username and password_env go together")
        if self.username and self.security == "none" \
                and self.host not in ("localhost", "127.0.0.1", "::1"):
            raise ValueError("a password is never sent unencrypted to another host; "
                             "use security = \"starttls\" or \"tls\"")
        if (self.dkim_key_file is None) != (self.dkim_selector is None):
            raise ValueError("dkim_key_file and dkim_selector go together")
        lowered_to = {a.lower() for a in self.to}
        both = sorted(a for a in self.cc if a.lower() in lowered_to)
        if both:
            raise ValueError(f"address in both to and cc: {', '.join(both)}")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]

    @property
    def recipients(self) -> list[str]:
        return [*self.to, *self.cc]

    @property
    def sender(self) -> Address:
        return parse_mailbox(self.from_address)
