"""End to end in a real browser: Debian's Chromium driven by Playwright against the
portal served by uvicorn on 127.0.0.1.

Screenshots of the main pages go to ``$PORTAL_SCREENSHOTS`` when set (docs/ uses them),
else to the test's temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.portal.conftest import OPERATOR_PASSWORD, PASSWORD_A, Server, World, serve

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def load_plugins() -> str:
    return "json,folder,portal,pdf,xml,csv,sftp"


@pytest.fixture
def server(world: World) -> Iterator[Server]:
    # what a utility would offer; the test formats stay out of the screenshots
    world.gw.config.plugins.setdefault("portal", {})["signup_formats"] = [
        "pdf", "ubl", "cii", "facturx", "csv"]
    with serve(world) as s:
        yield s


@pytest.fixture
def formats() -> list[str]:
    return ["pdf", "ubl"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("PORTAL_SCREENSHOTS") or tmp_path / "shots")
    target.mkdir(parents=True, exist_ok=True)
    return target


def _shot(page: Page, directory: Path, name: str) -> None:
    path = directory / f"portal-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one


def _public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return public.decode() + " janis@laptop"


def _archived(server: Server, invoice_id: str, fmt: str) -> bytes:
    gw = server.world.gw
    doc = next(d for d in gw.store.documents(invoice_id) if d.format == fmt)
    return gw.archive.get(doc.sha256)


def test_customer_journey(server: Server, browser: Browser, shots: Path) -> None:
    world = server.world
    context = browser.new_context(accept_downloads=True, locale="lv-LV",
                                  viewport={"width": 1280, "height": 860})
    page = context.new_page()

    # Not logged in: the archive sends us to the login page, in Latvian by default.
    page.goto(f"{server.url}/invoices")
    expect(page).to_have_url(f"{server.url}/login?next=%2Finvoices")
    expect(page.locator("h2")).to_have_text("Ienākt")
    _shot(page, shots, "login-lv")

    page.fill("input[name=email]", "janis@example.lv")
    page.fill("input[name=password]", PASSWORD_A)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{server.url}/invoices")
    page.mouse.move(0, 0)  # not resting on a link after the page changed under it
    rows = page.locator("#invoice-list tbody tr")
    expect(rows).to_have_count(3)

    # The invoice whose e-mail bounced is there, marked as such, with a notice.
    failed_number = world.a_numbers[0]
    failed_row = page.locator(f'tr[data-invoice="{failed_number}"]')
    expect(failed_row.locator("[data-status=st_email_failed]")).to_have_text(
        "E-pasts nav piegādāts")
    expect(page.locator(".notice").first).to_contain_text("mailbox unavailable")
    _shot(page, shots, "invoices-lv")

    # Filter by period: only the September invoice is left.
    page.fill("input[name=start]", "2026-09-01")
    page.fill("input[name=end]", "2026-09-30")
    page.click(".filters button[type=submit]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-invoice", "E2609-00123")

    # One delivered invoice: amounts, due date, payment reference, downloads.
    number = world.a_numbers[1]
    page.goto(f"{server.url}/invoices")
    page.click(f"text={number}")
    expect(page.locator("#invoice-number")).to_have_text(number)
    expect(page.locator("#payment-reference")).to_have_text(f"Rekins {number}")
    expect(page.locator("#due-date")).to_have_text("31.10.2026")
    invoice_id = world.gw.store.find_invoice("LV40003000001", number).id  # type: ignore[union-attr]
    for fmt, ext, magic in (("pdf", "pdf", b"%PDF-"), ("ubl", "xml", b"<?xml")):
        with page.expect_download() as info:
            page.click(f'a.file[data-format="{fmt}"]')
        download = info.value
        data = Path(download.path()).read_bytes()
        assert data.startswith(magic)
        assert data == _archived(server, invoice_id, fmt)
        stored = next(d for d in world.gw.store.documents(invoice_id) if d.format == fmt)
        assert download.suggested_filename == stored.filename
        assert stored.filename.startswith(number) and stored.filename.endswith(ext)
    page.reload()
    history = page.locator("#history")
    expect(history).to_contain_text("Skatīts portālā")
    expect(history).to_contain_text("Lejupielādēts portālā: PDF")
    expect(history).to_contain_text("Nosūtīts pa e-pastu")
    _shot(page, shots, "invoice-lv")

    # The failed one says why and still offers the documents.
    page.goto(f"{server.url}/invoices/{world.failed_id}")
    expect(page.locator("#email-failed")).to_contain_text("550 5.1.1")
    expect(page.locator("#history")).to_contain_text("E-pasts nav piegādāts")
    expect(page.locator("#history")).to_contain_text("Publicēts portālā")
    _shot(page, shots, "invoice-email-failed-lv")

    # Sign up for e-invoices: new address, XML only, English.
    page.click("nav.tabs >> text=E-rēķini")
    page.uncheck('input[name=formats][value="pdf"]')
    page.check('input[name=formats][value="cii"]')
    page.check("input[name=email_on]")
    page.fill("input[name=addresses]", "janis.berzins@example.lv, gramatvediba@example.lv")
    key = _public_key()
    page.check('input[name="on:sftp-mailbox"]')
    page.fill('textarea[name="sftp-mailbox:authorized_keys"]', key)
    page.check('input[name=language][value="en"]')
    _shot(page, shots, "einvoice-lv")
    page.click("#save")
    expect(page.locator("#saved")).to_contain_text("apply from the next invoice on")
    customer = world.gw.store.get_customer("100234567")
    assert customer is not None
    assert sorted(customer.formats) == ["cii", "ubl"]
    assert customer.language == "en"
    email = customer.channel("email")
    assert email is not None and email.settings["to"] == [
        "janis.berzins@example.lv", "gramatvediba@example.lv"]
    assert email.fallback == "portal"
    mailbox = customer.channel("sftp-mailbox")
    assert mailbox is not None and mailbox.settings["authorized_keys"] == [key]
    last = world.gw.store.customer_changes("100234567")[-1]
    assert last["actor"] == "portal:janis@example.lv"
    expect(page.locator("#changes")).to_contain_text("portal:janis@example.lv")
    _shot(page, shots, "einvoice-en")

    # English pages after the language change.
    page.goto(f"{server.url}/invoices")
    expect(page.locator("h1")).to_have_text("Invoices")
    _shot(page, shots, "invoices-en")
    page.goto(f"{server.url}/invoices/{world.failed_id}")
    expect(page.locator("#email-failed")).to_contain_text("We could not e-mail this invoice")
    _shot(page, shots, "invoice-email-failed-en")

    # Log out: the archive is closed again.
    page.click("#logout")
    expect(page).to_have_url(f"{server.url}/login")
    page.goto(f"{server.url}/invoices")
    expect(page).to_have_url(f"{server.url}/login?next=%2Finvoices")
    context.close()


def test_operator_retries_a_failed_delivery(server: Server, browser: Browser,
                                            shots: Path) -> None:
    world = server.world
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{server.url}/lang/en?next=/login")
    page.fill("input[name=email]", "operator@daugavas.lv")
    page.fill("input[name=password]", OPERATOR_PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{server.url}/operator")
    failed = page.locator("#failed tbody tr")
    expect(failed).to_have_count(1)
    expect(failed.first).to_contain_text("550 5.1.1")
    expect(page.locator("#customers")).to_contain_text("Ziemeļu Ceptuve SIA")
    _shot(page, shots, "operator-en")

    # The customer fixed the address; the operator sends the invoice again.
    customer = world.gw.store.get_customer("100234567")
    assert customer is not None
    world.gw.store.put_customer(customer, actor="test")
    failed.first.locator("input[type=checkbox]").check()
    page.click("#retry")
    expect(page.locator("#operator-message")).to_contain_text("Deliveries queued again: 1")
    # Its mailbox still bounces (the fixture's delivery kept its settings snapshot).
    statuses = {d.status for d in world.gw.store.deliveries(invoice_id=world.failed_id)
                if d.label == "email"}
    assert statuses == {"failed"}
    attempts = [d.attempts for d in world.gw.store.deliveries(invoice_id=world.failed_id)
                if d.label == "email"]
    assert attempts == [1]
    page.fill("form.search input[name=ref]", world.a_numbers[0])
    page.click("form.search button")
    expect(page.locator("h1")).to_contain_text(world.a_numbers[0])
    expect(page.locator("#deliveries")).to_contain_text("fallback for")
    _shot(page, shots, "operator-invoice-en")
    context.close()
