"""The utility's own data, validated at the edge (TOML import, CLI, CSV rows).

Customers, contracts, metering points, tariffs and VAT rates are data with validity
dates; nothing a supplier changes over time is a constant in the code.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Id = Annotated[str, StringConstraints(strip_whitespace=True,
                                      pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Kwh = Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=3, allow_inf_nan=False)]
Price = Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=6, allow_inf_nan=False)]

#: How a reading arrived. ``contract`` is the opening reading when a metering point is added.
How = Literal["cli", "csv", "api", "portal", "contract", "demo"]


class _Edge(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PostalAddress(_Edge):
    line1: Name
    city: Name
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=16)] | None \
        = None
    country: str = Field("LV", pattern=r"^[A-Z]{2}$")


class UtilityCustomer(_Edge):
    """A customer of the supplier; ``id`` is also the gateway customer id that receives
    the invoices (formats, channels and whether they get paper are set there)."""

    id: Id
    name: Name
    address: PostalAddress
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    vat_id: str | None = Field(None, pattern=r"^[A-Z]{2}[A-Z0-9]{2,13}$")
    registration_id: str | None = Field(None, pattern=r"^[0-9]{11}$",
                                        description="Unified registration number (businesses)")
    language: Literal["lv", "en"] = "lv"
    household: bool | None = Field(
        None, description="A household (consumer); default: no VAT or registration number")

    @property
    def is_household(self) -> bool:
        if self.household is not None:
            return self.household
        return self.vat_id is None and self.registration_id is None


class Contract(_Edge):
    number: Id
    customer: Id
    start: dt.date
    expected_kwh: Kwh | None = Field(
        None, description="Declared monthly consumption; the estimate while there is no history")
    payment_term_days: int | None = Field(
        None, ge=1, le=90, description="The contractual payment term in days from the issue "
        "day; default: the supplier's payment_term_days (15)")


class MeteringPoint(_Edge):
    id: Id
    contract: Id
    meter: Name = Field(description="Meter number")
    tariff: Id
    address: PostalAddress = Field(description="Object address")
    start_reading: Kwh = Field(Decimal(0), description="Meter reading when the contract began")


class TariffComponent(_Edge):
    """One priced component of a tariff, valid from a date (and until one, inclusive)."""

    code: Id = Field(description="Tariff code, e.g. BASE")
    component: Id = Field(description="e.g. energy, distribution-kwh, distribution-fixed")
    basis: Literal["kwh", "month"]
    name_lv: Name
    name_en: Name
    price: Price = Field(description="EUR per kWh or per month, without VAT")
    valid_from: dt.date
    valid_to: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TariffComponent:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self


#: The fees the billing knows; their amounts and validity are data (``[[fee]]``).
FeeCode = Literal["paper", "reconnection"]


class Fee(_Edge):
    """A fee including VAT, valid from a date (and until one, inclusive): the paper
    invoice fee by the invoice's issue day, the reconnection fee by the reconnection day."""

    code: FeeCode
    amount: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2,
                                     allow_inf_nan=False)] = Field(
        description="EUR including VAT: what the customer pays")
    valid_from: dt.date | None = Field(None, description="None: since always")
    valid_to: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Fee:
        if self.valid_to is not None and self.valid_from is not None \
                and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self


#: Why a supply was cut off; only ``late-payment`` counts towards the reconnection fee.
DisconnectionReason = Literal["late-payment", "customer-request", "safety", "other"]


class VatRate(_Edge):
    rate: Annotated[Decimal, Field(gt=0, lt=100, max_digits=6, decimal_places=2)]
    valid_from: dt.date
    valid_to: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> VatRate:
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self


class Reading(_Edge):
    """A meter reading as it arrives (CLI, CSV row, API, portal form)."""

    metering_point: Id
    date: dt.date
    value: Kwh
    meter_change: bool = False
    old_meter_final: Kwh | None = Field(
        None, description="Meter change: the old meter's last value (default: the previous "
        "reading, i.e. nothing used since)")
    new_meter_start: Kwh = Field(Decimal(0), description="Meter change: the new meter's "
                                 "value when it was fitted")
    new_meter: str | None = Field(None, max_length=64, description="Meter change: its number")
    by: Name = Field(description="Who sent the reading")
    how: How
    correction: Name | None = Field(
        None, description="An operator correcting history: why. The reading then counts "
        "for the window of its meter date instead of the day it arrived (recorded)")


class SetupFile(_Edge):
    """What ``gateway utility import`` reads from TOML."""

    vat: list[VatRate] = Field(default_factory=list)
    fee: list[Fee] = Field(default_factory=list)
    tariff: list[TariffComponent] = Field(default_factory=list)
    customer: list[UtilityCustomer] = Field(default_factory=list)
    contract: list[Contract] = Field(default_factory=list)
    metering_point: list[MeteringPoint] = Field(default_factory=list)
