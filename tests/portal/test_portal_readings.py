"""Meter readings from the customer portal: the utility plugin's page, added through the
portal's ``portal_register_pages`` hook, against the portal served by uvicorn (httpx) and
in Chromium (the docs screenshot).

Customer A (100234567, lv) has metering point MP-A, customer B (200987654, en) MP-B.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from plugins.utility.models import (
    Contract,
    MeteringPoint,
    PostalAddress,
    TariffComponent,
    UtilityCustomer,
    VatRate,
)
from plugins.utility.store import StoredReading, UtilityStore
from tests.portal.conftest import (
    OPERATOR_PASSWORD,
    PASSWORD_A,
    PASSWORD_B,
    Server,
    World,
    csrf_of,
    serve,
)

A, B = "100234567", "200987654"
A_EMAIL, B_EMAIL = "janis@example.lv", "anna@ceptuve.lv"
START = dt.date(2025, 1, 1)


@pytest.fixture
def load_plugins() -> str:
    return "json,folder,portal,utility"


def utility_db(world: World) -> Path:
    source = world.gw.plugins.sources.get("utility")
    return Path(source.data_dir / source.settings.database)


def arrive(world: World, day: dt.date) -> None:
    """Readings sent from now on arrive on ``day`` (the window is judged by arrival)."""
    world.gw.plugins.sources.get("utility").today = lambda: day


def readings(world: World, mp: str) -> list[StoredReading]:
    store = UtilityStore(utility_db(world))
    try:
        return store.readings(mp)
    finally:
        store.close()


@pytest.fixture
def server(world: World) -> Iterator[Server]:
    # Its own connection: the utility source's store belongs to the thread that opens it.
    store = UtilityStore(utility_db(world))
    address = PostalAddress(line1="Brīvības iela 1", city="Rīga", postal_code="LV-1001")
    store.put_vat_rate(VatRate(rate=Decimal(21), valid_from=dt.date(2013, 1, 1)))
    store.put_tariff(TariffComponent(code="MAJAS", component="energy", basis="kwh",
                                     name_lv="Elektroenerģija", name_en="Electricity",
                                     price=Decimal("0.1389"), valid_from=dt.date(2020, 1, 1)))
    for customer, name, mp, opening in ((A, "Jānis Bērziņš", "MP-A", "1000"),
                                        (B, "Ziemeļu Ceptuve SIA", "MP-B", "5000")):
        store.put_customer(UtilityCustomer(id=customer, name=name, address=address))
        store.put_contract(Contract(number=f"K-{customer}", customer=customer, start=START))
        store.put_metering_point(MeteringPoint(
            id=mp, contract=f"K-{customer}", meter=f"LV-{mp}", tariff="MAJAS",
            address=address, start_reading=Decimal(opening)))
    store.close()
    with serve(world) as s:
        yield s


def send(client: httpx.Client, **fields: str) -> httpx.Response:
    form = client.get("/readings")
    assert form.status_code == 200, form.text
    return client.post("/readings", data={"csrf": csrf_of(form.text), **fields})


def test_reading_from_the_portal(server: Server) -> None:
    world = server.world
    client = server.login(A_EMAIL, PASSWORD_A)
    page = client.get("/readings")
    assert page.status_code == 200
    assert "Skaitītāja rādījums" in page.text and 'href="/readings"' in page.text
    assert 'data-mp="MP-A"' in page.text and "MP-B" not in page.text
    # The tab is on the portal's own pages too.
    assert 'href="/readings"' in client.get("/invoices").text

    arrive(world, dt.date(2025, 10, 28))
    answer = send(client, metering_point="MP-A", value="1234,5", date="2025-10-28")
    assert answer.status_code == 200, answer.text
    assert "Rādījums 1234,5 kWh (28.10.2025) saņemts: patēriņš 234,5 kWh" in answer.text
    assert "2025-10 rēķinā" in answer.text
    last = readings(world, "MP-A")[-1]
    assert (last.value, last.date, last.how, last.by) == (
        Decimal("1234.5"), dt.date(2025, 10, 28), "portal", A_EMAIL)
    assert str(last.period) == "2025-10"
    assert 'data-mp="MP-A"' in answer.text and "1234,5 kWh" in answer.text

    # Lower than the previous reading: refused, nothing stored, the page says why.
    arrive(world, dt.date(2025, 10, 30))
    lower = send(client, metering_point="MP-A", value="1200", date="2025-10-30")
    assert lower.status_code == 409
    assert ("Rādījums 1200 ir mazāks par iepriekšējo rādījumu 1234,5 (28.10.2025), tāpēc "
            "tas netika pieņemts") in lower.text
    assert "Skaitītājs ir nomainīts" in lower.text
    assert len(readings(world, "MP-A")) == 2
    # ... unless the meter was replaced.
    change = send(client, metering_point="MP-A", value="15", date="2025-10-30",
                  meter_change="1", new_meter="LV-NEW-1")
    assert change.status_code == 200, change.text
    assert "patēriņš 15,0 kWh" in change.text
    assert readings(world, "MP-A")[-1].meter_change

    # Sent outside the window: not November's reading; it settles on December's invoice.
    arrive(world, dt.date(2025, 11, 15))
    outside = send(client, metering_point="MP-A", value="40", date="2025-11-15")
    assert outside.status_code == 200, outside.text
    assert ("Rādījums nodots 15.11.2025, ārpus nodošanas laika (27. līdz 3. datums; "
            "pēdējais bija 27.10.2025–03.11.2025): tas nav 2025-11 rādījums") in outside.text
    assert "izlīdzinās starpību 2025-12 rēķinā" in outside.text
    assert str(readings(world, "MP-A")[-1].period) == "2025-12"
    # The window is judged by the day it is sent, not the date typed with it.
    arrive(world, dt.date(2025, 11, 28))
    typed = send(client, metering_point="MP-A", value="41", date="2025-11-16")
    assert typed.status_code == 200, typed.text
    assert "nodots 28.11.2025, 2025-11 nodošanas laikā" in typed.text
    last = readings(world, "MP-A")[-1]
    assert (str(last.period), last.date, last.arrived) == (
        "2025-11", dt.date(2025, 11, 16), dt.date(2025, 11, 28))

    # In English (B's language, or the switch), the CLI's wording.
    client.get("/lang/en")
    english = send(client, metering_point="MP-A", value="39", date="2025-11-20")
    assert english.status_code == 409
    assert "39 is lower than the previous reading 41 of 16.11.2025, so it was refused" \
        in english.text
    future = send(client, metering_point="MP-A", value="50", date="2025-11-29")
    assert future.status_code == 409 and "cannot be dated after today" in future.text
    assert [r.how for r in readings(world, "MP-A")] == ["contract", "portal", "portal",
                                                        "portal", "portal"]


def test_csrf_is_enforced(server: Server) -> None:
    client = server.login(A_EMAIL, PASSWORD_A)
    for data in ({"metering_point": "MP-A", "value": "1100", "date": "2025-10-28"},
                 {"metering_point": "MP-A", "value": "1100", "date": "2025-10-28",
                  "csrf": "0" * 64}):
        answer = client.post("/readings", data=data)
        assert answer.status_code == 403
        assert "Forma ir novecojusi" in answer.text
    # A token from another session does not work either.
    other = server.login(B_EMAIL, PASSWORD_B)
    token = csrf_of(other.get("/readings").text)
    answer = client.post("/readings", data={"metering_point": "MP-A", "value": "1100",
                                            "date": "2025-10-28", "csrf": token})
    assert answer.status_code == 403
    assert len(readings(server.world, "MP-A")) == 1
    # Not logged in: to the login page, nothing stored.
    anonymous = server.client().post("/readings", data={"metering_point": "MP-A",
                                                         "value": "1100"})
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login")
    assert len(readings(server.world, "MP-A")) == 1


def test_customers_see_and_send_only_their_own(server: Server) -> None:
    world = server.world
    a = server.login(A_EMAIL, PASSWORD_A)
    b = server.login(B_EMAIL, PASSWORD_B)
    answer = send(a, metering_point="MP-B", value="6000", date="2025-10-28")
    assert answer.status_code == 404
    assert "Šāda skaitītāja jums nav." in answer.text
    assert "MP-B" not in answer.text and "5000" not in answer.text
    assert len(readings(world, "MP-B")) == 1
    page_b = b.get("/readings").text
    assert 'data-mp="MP-B"' in page_b and "MP-A" not in page_b
    assert "Meter reading" in page_b  # B's language is English
    answer = send(b, metering_point="MP-B", value="6000", date="2025-10-28")
    assert answer.status_code == 200 and "consumption 1000 kWh" in answer.text
    last = readings(world, "MP-B")[-1]
    assert (last.how, last.by) == ("portal", B_EMAIL)
    assert "6000" not in a.get("/readings").text
    # The operator is not a customer: no reading page.
    operator = server.login("operator@daugavas.lv", OPERATOR_PASSWORD)
    assert operator.get("/readings").status_code == 404


def test_reading_page_screenshot(server: Server, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    target = Path(os.environ.get("PORTAL_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(locale="lv-LV", viewport={"width": 1280, "height": 860})
            page.goto(f"{server.url}/login?next=%2Freadings")
            page.fill("input[name=email]", A_EMAIL)
            page.fill("input[name=password]", PASSWORD_A)
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{server.url}/readings")
            expect(page.locator("nav.tabs a.on")).to_have_text("Skaitītāja rādījums")
            page.select_option("select[name=metering_point]", "MP-A")
            page.fill("input[name=value]", "1234,5")
            page.fill("input[name=date]", "2025-10-28")
            page.click("#send-reading")
            expect(page.locator("#reading-ok")).to_contain_text("saņemts")
            expect(page.locator('tr[data-mp="MP-A"]')).to_contain_text("1234,5 kWh")
            page.mouse.move(0, 0)
            path = target / "portal-reading-lv.png"
            page.screenshot(path=str(path), full_page=True)
            assert path.stat().st_size > 10_000
        finally:
            browser.close()
    last = readings(server.world, "MP-A")[-1]
    assert (last.how, last.by) == ("portal", A_EMAIL)
