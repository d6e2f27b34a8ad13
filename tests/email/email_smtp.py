"""Helpers for the e-mail tests: a scripted aiosmtpd handler, a test format, config,
customers. (Not in conftest.py: test modules import these by name.)"""

from __future__ import annotations

import email
import socket
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from gateway.core.customers import Customer
from gateway.core.dispatcher import Dispatcher, DispatchSummary
from gateway.core.documents import Bundle, Document, RenderContext
from gateway.core.model import Invoice
from gateway.core.pipeline import Gateway
from gateway.hookspecs import hookimpl

USER, PASSWORD, PASSWORD_ENV = "gateway", "Slepena-parole-ā1", "EMAIL_TEST_SMTP_PASSWORD"
SENDER = "Daugavas Elektrība <rekini@daugavas-elektriba.lv>"
PORTAL = "https://e-rekini.example.lv"
JANIS = "janis.berzins@example.lv"


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path


def make_certificate(directory: Path) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "cert.pem", directory / "key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                            serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    login: bytes | None

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class Handler:
    """Records what it accepts; faults are scripted by the test."""

    received: list[Received] = field(default_factory=list)
    #: address → reply to RCPT TO (e.g. "550 5.1.1 no such user")
    refuse: dict[str, str] = field(default_factory=dict)
    #: replies to the next DATA commands, used up one by one (e.g. "421 4.3.2 busy")
    data_replies: list[str] = field(default_factory=list)
    #: drop the connection after receiving the data of the next N messages
    drop_after_data: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: SMTP, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.drop_after_data:
                self.drop_after_data -= 1
                assert server.transport is not None
                server.transport.abort()
                return "250 never seen by the client"
            if self.data_replies:
                return self.data_replies.pop(0)
            self.received.append(Received(
                envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content,
                tls=session.ssl is not None  # STARTTLS
                or server.transport.get_extra_info("ssl_object") is not None,  # implicit
                login=session.auth_data.login if session.authenticated else None))
            number = len(self.received)
        return f"250 2.0.0 OK queued as Q{number}"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


class CountingController(Controller):
    """Counts the SMTP sessions it serves (one per TCP connection)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sessions = 0

    def factory(self) -> SMTP:
        self.sessions += 1
        return super().factory()


@dataclass
class SmtpServer:
    handler: Handler
    port: int
    security: str
    controller: CountingController | None = None
    password: str = PASSWORD

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    @property
    def connections(self) -> int:
        # aiosmtpd opens one connection of its own when it starts, to check it is up
        assert self.controller is not None
        return self.controller.sessions - 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BinFormat:
    """A render-only test format whose bytes survive only a byte-exact transfer:
    NUL, lone CR and LF, lines with only a dot, invalid UTF-8."""

    name = "bin"
    media_type = "application/octet-stream"
    extension = "bin"
    description = "test bytes"
    can_parse = False
    can_validate = False

    def render(self, invoice: Invoice, context: RenderContext) -> bytes:
        return (f"{invoice.number}\r\n.\r\n".encode() + b"\x00\xff\xfe\r\rx\n\n.\n"
                + "Rēķins ☀".encode() + bytes(range(256)))

    def sniff(self, head: bytes, filename: str) -> bool:
        return False


class BinPlugin:
    @hookimpl
    def gateway_register_formats(self, register: Any) -> None:
        register(BinFormat())


def email_config(server: SmtpServer, tls_files: TlsFiles, *, extra: str = "",
                 dispatcher: str = "base_delay = 0") -> str:
    return (
        f'[gateway]\nportal_url = "{PORTAL}"\n\n[dispatcher]\n{dispatcher}\n\n'
        f'[plugins.email]\nhost = "127.0.0.1"\nport = {server.port}\n'
        f'security = "{server.security}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_ENV}"\nfrom = "{SENDER}"\n'
        f'ca_file = "{tls_files.cert}"\nconnect_timeout = 5\ntimeout = 10\n{extra}'
    )


def email_customer(gw: Gateway, *, to: tuple[str, ...] = (JANIS,), language: str = "lv",
                   formats: tuple[str, ...] = ("json", "bin"), customer_id: str = "100234567",
                   match: tuple[str, ...] = ("C-100234567",), fallback: str | None = None,
                   extra_channels: tuple[dict[str, Any], ...] = (),
                   settings: dict[str, Any] | None = None) -> Customer:
    channel: dict[str, Any] = {"channel": "email",
                               "settings": {"to": list(to), **(settings or {})}}
    if fallback:
        channel["fallback"] = fallback
    customer = Customer.model_validate({
        "id": customer_id, "name": "Jānis Bērziņš", "language": language,
        "formats": list(formats), "match": list(match),
        "channels": [channel, *extra_channels]})
    gw.check_customer(customer)
    gw.store.put_customer(customer, actor="test")
    return customer


def push(gw: Gateway, data: dict[str, Any]) -> str:
    result = gw.push(Invoice.model_validate(data), source="test")
    assert result.status == "accepted", result.error
    assert result.invoice_id is not None
    return result.invoice_id


def bundle_for(gw: Gateway, invoice_id: str, *, key: str | None = None) -> Bundle:
    """The bundle the dispatcher would build, for calling the channel directly."""
    record = gw.store.get_invoice(invoice_id)
    assert record is not None
    customer = gw.store.get_customer(record.customer_id)
    assert customer is not None
    documents = tuple(Document(d.format, d.media_type, d.filename, gw.archive.get(d.sha256))
                      for d in gw.store.documents(invoice_id))
    return Bundle(invoice_id=invoice_id, invoice=gw.load_invoice(invoice_id),
                  customer_id=customer.id, customer_name=customer.name,
                  language=customer.language, documents=documents,
                  idempotency_key=key or f"{invoice_id}:email", portal_url=PORTAL)


def deliver_all(gw: Gateway) -> DispatchSummary:
    return Dispatcher(gw).run()
