"""Settings of the Peppol plugin: ``[plugins.peppol]`` in gateway.toml, and per customer.

The access point's own settings (certificate, trust, SML zone) live in
``[plugins.peppol]``; a customer's ``peppol`` channel may add ``participant`` (the
receiver, when the invoice's BT-49 is not the one to use), ``document_type`` and
``process``. Secrets never sit in the file: the key comes from a file readable only by
the gateway or from an environment variable named here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PRODUCTION_SML = "edelivery.tech.ec.europa.eu"
TEST_SML = "acc.edelivery.tech.ec.europa.eu"


class PeppolSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # ---- per customer (channel settings)
    participant: str | None = Field(
        None, description="Receiver participant id (ICD:VALUE, e.g. 0218:40003009497); "
        "default: the invoice's buyer electronic address BT-49 with its scheme")
    document_type: str | None = Field(
        None, description="Document type identifier; default: BIS Billing 3.0 invoice or "
        "credit note, by the UBL document")
    process: str = Field("urn:fdc:peppol.eu:2017:poacc:billing:01:1.0",
                         description="Process identifier (cenbii-procid-ubl)")
    format: str = Field("ubl", description="Which rendered document is sent (UBL BIS 3.0)")

    # ---- the access point (gateway.toml [plugins.peppol])
    network: Literal["production", "test", "private"] = Field(
        "test", description="Which SML and PKI: production, test, or a private network "
        "(then sml_zone and the *_ca_file settings are required)")
    sml_zone: str | None = Field(None, description="SML DNS zone; default by 'network'")
    dns_server: str | None = Field(
        None, description="host:port of the DNS server to ask (default: the system's)")
    sender: str | None = Field(
        None, description="Sender participant id; default: the seller's BT-34 with scheme")
    certificate_file: str | None = Field(None, description="AP certificate (PEM)")
    certificate_env: str | None = Field(None, description="Env var holding the AP cert PEM")
    key_file: str | None = Field(None, description="AP private key (PEM, mode 600)")
    key_env: str | None = Field(None, description="Env var holding the AP private key PEM")
    key_password_env: str | None = Field(None, description="Env var with the key's password")
    root_ca_file: str | None = Field(None, description="Trusted root CA(s), PEM")
    ap_ca_file: str | None = Field(None, description="AP issuing CA(s), PEM")
    smp_ca_file: str | None = Field(None, description="SMP issuing CA(s), PEM")
    smp_url: str | None = Field(
        None, description="Skip the SML and ask this SMP (a private network with one SMP)")
    timeout: float = Field(30.0, gt=0, le=600, description="Seconds per network exchange")
    max_message_bytes: int = Field(
        100 * 1024 * 1024, gt=0, description="Largest AS4 message received or sent")
    lookup_cache_seconds: float = Field(
        300.0, ge=0, le=86400, description="How long an SML/SMP answer is reused for the "
        "next invoices to the same participant (0: ask every time)")
    receive_concurrency: int = Field(
        4, ge=1, le=64, description="Messages read and verified at once by 'serve peppol' "
        "(each may hold up to max_message_bytes in memory)")
    allow_http: bool = Field(
        False, description="Accept http:// endpoints (tests on 127.0.0.1; production is "
        "TLS only)")

    def zone(self) -> str:
        if self.sml_zone:
            return self.sml_zone.strip(".")
        return PRODUCTION_SML if self.network == "production" else TEST_SML
