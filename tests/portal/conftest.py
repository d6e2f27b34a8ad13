"""Portal fixtures: a gateway with two customers and a few invoices, the portal served by
uvicorn on 127.0.0.1 in a thread, accounts and API tokens.

Only the json, folder and portal plugins are loaded (GATEWAY_LOAD_PLUGINS), plus two
small formats and an e-mail-like channel defined here, so that these tests do not
depend on the state of the other plugins being written in the same tree.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher
from pydantic import BaseModel, ConfigDict

from gateway import Bundle, DeliveryError, DeliveryState, Invoice, Receipt, RenderContext, hookimpl
from gateway.core import Dispatcher, Gateway
from plugins.portal.app import create_app
from plugins.portal.db import PortalDB
from plugins.portal.security import new_token, token_hash
from tests.conftest import add_customer

PASSWORD_A = "ļoti-slepena-parole-A"
PASSWORD_B = "very-secret-password-B"
OPERATOR_PASSWORD = "operator-password-123"
SELLER = "LV40003000001"


class SamplePdf:
    """A real (one-page) PDF per invoice, different for every invoice number."""

    name: ClassVar[str] = "portal-test-pdf"
    media_type: ClassVar[str] = "application/pdf"
    extension: ClassVar[str] = "pdf"
    description: ClassVar[str] = "Test PDF"
    can_parse: ClassVar[bool] = False
    can_validate: ClassVar[bool] = False

    def render(self, invoice: Invoice, context: RenderContext) -> bytes:
        import pikepdf

        pdf = pikepdf.new()
        pdf.add_blank_page()
        pdf.docinfo["/Title"] = f"Invoice {invoice.number}"
        out = io.BytesIO()
        pdf.save(out, deterministic_id=True)
        return out.getvalue()

    def sniff(self, head: bytes, filename: str) -> bool:
        return False


class SampleXml:
    name: ClassVar[str] = "portal-test-xml"
    media_type: ClassVar[str] = "application/xml"
    extension: ClassVar[str] = "xml"
    description: ClassVar[str] = "Test XML"
    can_parse: ClassVar[bool] = False
    can_validate: ClassVar[bool] = False

    def render(self, invoice: Invoice, context: RenderContext) -> bytes:
        total = invoice.require_totals().amount_due
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Invoice><ID>{invoice.number}</ID>'
                f"<Due>{total}</Due></Invoice>\n").encode()

    def sniff(self, head: bytes, filename: str) -> bool:
        return False


class MailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: list[str]


class TestMail:
    """Stands in for the e-mail channel: addresses at bounce.example are refused the
    way an SMTP server refuses them (550, permanent); others are written to a folder."""

    name: ClassVar[str] = "testmail"
    description: ClassVar[str] = "Test mail"
    Settings: ClassVar[type[BaseModel]] = MailSettings

    def __init__(self) -> None:
        self.data_dir = Path(".")

    def configure(self, settings: dict[str, Any], data_dir: Path) -> None:
        self.data_dir = data_dir

    def session(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def deliver(self, bundle: Bundle, settings: Any, state: DeliveryState) -> Receipt:
        refused = [a for a in settings.to if a.endswith("@bounce.example")]
        if refused:
            raise DeliveryError(f"550 5.1.1 <{refused[0]}>: mailbox unavailable",
                                retryable=False)
        box = self.data_dir / "mailbox"
        box.mkdir(exist_ok=True)
        for address in settings.to:
            (box / f"{bundle.idempotency_key.replace(':', '_')}-{address}").write_text(
                bundle.invoice.number)
        return Receipt(id=f"mail:{bundle.idempotency_key}",
                       recipients={a: "250 OK" for a in settings.to})


class TestPlugin:
    @hookimpl
    def gateway_register_formats(self, register: Any) -> None:
        register(SamplePdf())
        register(SampleXml())

    @hookimpl
    def gateway_register_channels(self, register: Any) -> None:
        register(TestMail())


CONFIG = """
[gateway]
portal_url = "http://127.0.0.1"

[dispatcher]
max_attempts = 2
base_delay = 0

[plugins.portal]
email_channels = ["testmail"]
login_attempts = 3
"""

FORMATS = ["portal-test-pdf", "portal-test-xml"]

# The fixture accounts' hashes use cheap argon2 parameters (kept in the hash itself, so
# logging in verifies cheaply too); hashes the portal makes use the library defaults.
_FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@functools.cache
def hash_password(password: str) -> str:
    return _FAST.hash(password)


@dataclass
class World:
    gw: Gateway
    a_ids: list[str]  # customer A's invoices, newest first
    b_ids: list[str]
    a_numbers: list[str]
    b_numbers: list[str]
    failed_id: str  # A's invoice whose e-mail failed
    formats: list[str]

    @property
    def data_dir(self) -> Path:
        return self.gw.config.data_dir


def _variant(data: dict[str, Any], number: str, issued: str, due: str,
             period: tuple[str, str]) -> dict[str, Any]:
    item = copy.deepcopy(data)
    item["number"] = number
    item["issue_date"] = issued
    item["due_date"] = due
    item["invoice_period"] = {"start": period[0], "end": period[1]}
    if item.get("payment", {}).get("remittance_information"):
        item["payment"]["remittance_information"] = f"Rekins {number}"
    return item


@pytest.fixture
def load_plugins() -> str:
    """Entry-point plugins the portal tests load; a module may override this fixture."""
    return "json,folder,portal"


@pytest.fixture
def formats() -> list[str]:
    """The customers' formats; the browser tests use the real PDF and UBL plugins."""
    return FORMATS


@pytest.fixture
def world(gateway_factory: Any, load_example: Any, monkeypatch: pytest.MonkeyPatch,
          load_plugins: str, formats: list[str]) -> World:
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", load_plugins)
    gw = gateway_factory(extra_plugins=(("portal-tests", TestPlugin()),), config=CONFIG)
    add_customer(gw, id="100234567", name="Jānis Bērziņš", language="lv", formats=formats,
                 match=["C-100234567"],
                 channels=[{"channel": "testmail", "name": "email",
                            "settings": {"to": ["janis@example.lv"]}, "fallback": "portal"}])
    add_customer(gw, id="200987654", name="Ziemeļu Ceptuve SIA", language="en",
                 formats=formats, match=["LV40103987654"],
                 channels=[{"channel": "portal"}])
    household = load_example("electricity-household.json")
    business = load_example("electricity-business.json")
    a_numbers, b_numbers = [], []
    pushes = [
        (household, "E2609-00123", "2026-09-03", "2026-09-30", ("2026-08-01", "2026-08-31")),
        (household, "E2610-00123", "2026-10-03", "2026-10-31", ("2026-09-01", "2026-09-30")),
    ]
    for data, number, issued, due, period in pushes:
        result = gw.push(Invoice.model_validate(_variant(data, number, issued, due, period)),
                         source="test")
        assert result.status == "accepted", result.error
        a_numbers.append(number)
    Dispatcher(gw).run()
    # The newest invoice of A goes to a mailbox that refuses it: e-mail fails, the
    # portal takes over as the fallback.
    customer = gw.store.get_customer("100234567")
    assert customer is not None
    bouncing = customer.model_copy(update={"channels": [
        customer.channels[0].model_copy(update={"settings": {"to": ["janis@bounce.example"]}})]})
    gw.store.put_customer(bouncing, actor="test")
    result = gw.push(Invoice.model_validate(household), source="test")
    assert result.status == "accepted", result.error
    a_numbers.append(household["number"])
    gw.store.put_customer(customer, actor="test")
    result = gw.push(Invoice.model_validate(business), source="test")
    assert result.status == "accepted", result.error
    b_numbers.append(business["number"])
    Dispatcher(gw).run()
    a_ids = [r.id for r in gw.store.list_invoices(customer_id="100234567")]
    b_ids = [r.id for r in gw.store.list_invoices(customer_id="200987654")]
    failed = gw.store.find_invoice(SELLER, household["number"])
    assert failed is not None
    db = PortalDB(gw.config.data_dir / "portal.db")
    db.add_account(email="janis@example.lv", password_hash=hash_password(PASSWORD_A),
                   role="customer", customer_id="100234567", created_by="test")
    db.add_account(email="anna@ceptuve.lv", password_hash=hash_password(PASSWORD_B),
                   role="customer", customer_id="200987654", created_by="test")
    db.add_account(email="operator@daugavas.lv", password_hash=hash_password(OPERATOR_PASSWORD),
                   role="operator", customer_id=None, created_by="test")
    db.close()
    return World(gw, a_ids, b_ids, list(reversed(a_numbers)), b_numbers, failed.id, formats)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    world: World

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=30, **kwargs)

    def login(self, email: str, password: str) -> httpx.Client:
        client = self.client()
        page = client.get("/login")
        response = client.post("/login", data={"email": email, "password": password,
                                               "csrf": csrf_of(page.text), "next": ""})
        assert response.status_code == 303, response.text
        return client

    def token(self, name: str, seller: str = SELLER) -> str:
        token = new_token()
        db = PortalDB(self.world.data_dir / "portal.db")
        db.add_token(name, seller, token_hash(token))
        db.close()
        return token


def csrf_of(html: str) -> str:
    import re

    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


@contextlib.contextmanager
def serve(world: World) -> Iterator[Server]:
    app = create_app(world.gw.config, world.gw.plugins)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", world)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(world: World) -> Iterator[Server]:
    with serve(world) as s:
        yield s
