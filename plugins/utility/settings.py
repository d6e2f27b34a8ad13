"""The supplier's configuration: ``[plugins.utility]`` in gateway.toml.

Every field has a default for the demo supplier, so ``gateway demo`` runs without any
configuration; a real supplier sets at least its name, VAT number and bank account.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from plugins.utility.dates import DEFAULT_PAYMENT_TERM_DAYS

Iban = Annotated[str, StringConstraints(strip_whitespace=True,
                                        pattern=r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")]


class SellerAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line1: str = "Elizabetes iela 10"
    city: str = "Rīga"
    postal_code: str = "LV-1010"
    country: str = Field("LV", pattern=r"^[A-Z]{2}$")


class UtilitySettings(BaseModel):
    """The seller (who is also the payee), its bank account, fees and numbering."""

    model_config = ConfigDict(extra="forbid")

    seller_name: str = "Daugavas Elektrība AS"
    seller_trading_name: str | None = "Daugavas Elektrība"
    seller_vat_id: str = Field("LV40003000001", pattern=r"^LV[0-9]{11}$",
                               description="Latvian VAT number, also the Peppol endpoint (9939)")
    seller_registration_id: str = Field("40003000001", pattern=r"^[0-9]{11}$",
                                        description="Unified registration number (0218)")
    seller_address: SellerAddress = Field(default_factory=SellerAddress)
    seller_email: str = "rekini@daugavas-elektriba.lv"
    seller_phone: str = "+371 67000000"
    bank_name: str = "AS Swedbank"
    bic: str = Field("HABALV22", pattern=r"^[A-Z0-9]{8}([A-Z0-9]{3})?$")
    iban: Iban = "LV62HABA0551234567890"
    invoice_prefix: str = Field("E", pattern=r"^[A-Za-z0-9-]{0,10}$")
    payment_reference: str = Field(
        "Rekins {invoice} ligums {contract}",
        description="BT-83; must contain {invoice} and {contract}",
    )
    paper_fee: Decimal = Field(Decimal("2.50"), ge=0, description="EUR including VAT, from "
                               "2021-01-01, when no [[fee]] code = 'paper' was imported")
    reconnection_fee: Decimal = Field(Decimal("51.23"), ge=0, description="EUR including "
                                      "VAT, when no [[fee]] code = 'reconnection' was imported")
    payment_term_days: int = Field(DEFAULT_PAYMENT_TERM_DAYS, ge=1, le=90, description=(
        "The contractual payment term in days from the issue day, for contracts that set "
        "none; e-invoices get 5 more days up to 20"))
    issue_day: int = Field(10, ge=10, le=15, description="Paper invoices are issued from this "
                           "day of the month after the period (10-15)")
    processes: int = Field(0, ge=0, description="Worker processes that render and validate "
                           "a month end's documents ahead of their push; 0 = one per CPU "
                           "core, 1 = all in the month end's own process")
    database: str = Field("utility.db", description="SQLite file, relative to the data dir "
                          "(unused with a PostgreSQL store: schema utility there)")

    @field_validator("payment_reference")
    @classmethod
    def _has_both_numbers(cls, value: str) -> str:
        if "{invoice}" not in value or "{contract}" not in value:
            raise ValueError("must contain both {invoice} and {contract}")
        return value
