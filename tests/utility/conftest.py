"""Fixtures for the utility source: a supplier database with one household contract, and
a gateway whose utility source uses the same data directory."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from gateway.core import Customer, Gateway
from plugins.utility.models import (
    Contract,
    MeteringPoint,
    PostalAddress,
    Reading,
    TariffComponent,
    UtilityCustomer,
    VatRate,
)
from plugins.utility.store import UtilityStore

D = dt.date
START = D(2025, 9, 1)
ADDRESS = PostalAddress(line1="Brīvības iela 1", city="Rīga", postal_code="LV-1001")


def seed_prices(store: UtilityStore) -> None:
    store.put_vat_rate(VatRate(rate=Decimal(21), valid_from=D(2013, 1, 1)))
    for component, basis, price in (("energy", "kwh", "0.1389"),
                                    ("distribution-kwh", "kwh", "0.0427"),
                                    ("distribution-fixed", "month", "8.40")):
        store.put_tariff(TariffComponent(
            code="MAJAS", component=component, basis=basis, name_lv=component,
            name_en=component, price=Decimal(price), valid_from=D(2020, 1, 1)))


def add_contract(store: UtilityStore, n: int = 1, *, start: dt.date = START,
                 opening: str = "1000", expected_kwh: str | None = None,
                 vat_id: str | None = None, email: str | None = "x@example.lv") -> str:
    """Customer C{n}, contract K{n}, metering point MP{n}; returns the metering point."""
    store.put_customer(UtilityCustomer(id=f"C{n}", name=f"Customer {n}", address=ADDRESS,
                                       email=email, vat_id=vat_id))
    store.put_contract(Contract(number=f"K{n}", customer=f"C{n}", start=start,
                                expected_kwh=Decimal(expected_kwh) if expected_kwh else None))
    store.put_metering_point(MeteringPoint(id=f"MP{n}", contract=f"K{n}", meter=f"M{n}",
                                           tariff="MAJAS", address=ADDRESS,
                                           start_reading=Decimal(opening)))
    return f"MP{n}"


def reading(mp: str, day: dt.date, value: str | int, **kw: Any) -> Reading:
    return Reading(metering_point=mp, date=day, value=Decimal(str(value)), by="test",
                   how=kw.pop("how", "cli"), **kw)


@pytest.fixture
def store(tmp_path: Path, store_url: str | None) -> Iterator[UtilityStore]:
    """The utility's tables on the store this test runs on (``both_stores`` modules: also
    PostgreSQL, schema ``utility``)."""
    s = UtilityStore(tmp_path / "utility.db")
    seed_prices(s)
    yield s
    s.close()


@pytest.fixture
def utility_gw(gateway_factory: Any) -> Gateway:
    """A gateway (all installed plugins) with demo prices in its utility database."""
    gw = gateway_factory()
    seed_prices(gw.plugins.sources.get("utility").store)
    return gw


def source(gw: Gateway) -> Any:
    return gw.plugins.sources.get("utility")


def gateway_customer(gw: Gateway, customer_id: str, *, paper: bool = False,
                     formats: tuple[str, ...] = ("json",)) -> None:
    customer = Customer.model_validate({
        "id": customer_id, "name": f"Customer {customer_id}", "formats": list(formats),
        "paper": paper,
        "channels": [{"channel": "folder", "settings": {"path": "out/{customer}"}}]})
    gw.check_customer(customer)
    gw.store.put_customer(customer, actor="test")
