"""End to end: Gateway.push → Dispatcher → the email channel → a real SMTP server on
127.0.0.1 (aiosmtpd, STARTTLS and AUTH required); what arrives is parsed with ``email``."""

from __future__ import annotations

import base64
import time
from email.message import EmailMessage

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from email_smtp import (
    JANIS,
    PORTAL,
    USER,
    bundle_for,
    deliver_all,
    email_customer,
    push,
)

from gateway.core.documents import DeliveryState
from gateway.core.pipeline import Gateway
from gateway.core.storage import DELIVERED
from plugins.email.message import message_id


def _only(received: list) -> EmailMessage:
    assert len(received) == 1
    return received[0].message


def _archived(gw: Gateway, invoice_id: str) -> dict[str, bytes]:
    return {d.filename: gw.archive.get(d.sha256) for d in gw.store.documents(invoice_id)}


def test_latvian_message_over_starttls_with_login(smtp, email_gateway, invoice_data) -> None:
    gw = email_gateway(smtp)
    email_customer(gw)
    invoice_id = push(gw, invoice_data)

    summary = deliver_all(gw)

    assert summary.delivered == 1
    got = smtp.received[0]
    assert got.tls and got.login == USER.encode()
    assert got.mail_from == "rekini@daugavas-elektriba.lv"
    assert got.rcpt_tos == [JANIS]
    msg = _only(smtp.received)
    assert all(not part.defects for part in msg.walk())
    headers = got.data.split(b"\r\n\r\n", 1)[0]
    assert headers.isascii()  # Latvian letters only as RFC 2047 encoded words
    assert msg["Subject"] == "Rēķins Nr. E2611-00123 no Daugavas Elektrība"
    assert msg["From"].addresses[0].display_name == "Daugavas Elektrība"
    assert msg["From"].addresses[0].addr_spec == "rekini@daugavas-elektriba.lv"
    assert msg["To"] == JANIS
    assert msg["Message-ID"] == message_id(f"{invoice_id}:email", "daugavas-elektriba.lv")
    assert msg["Date"].datetime is not None
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Content-Language"] == "lv"

    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for body in (plain, html):
        assert "Labdien, Jānis Bērziņš!" in body
        assert "Nr. E2611-00123" in body
        assert "Summa apmaksai" in body and "78,72\xa0€" in body
        assert "Apmaksas termiņš" in body and "30.11.2026." in body
        assert "Maksājuma mērķis" in body and "Rekins E2611-00123 ligums 100234567" in body
        assert PORTAL in body
    assert f'<a href="{PORTAL}">' in html and '<html lang="lv">' in html

    attachments = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    assert list(attachments) == ["E2611-00123.json", "E2611-00123.bin"]
    assert attachments == _archived(gw, invoice_id)  # byte for byte, NUL and lone CR too

    delivery = gw.store.deliveries(invoice_id=invoice_id)[0]
    assert delivery.status == DELIVERED
    assert delivery.receipt_id == "email:" + msg["Message-ID"].strip("<>")
    assert delivery.receipt == {"detail": delivery.receipt["detail"],
                                "recipients": {JANIS: "250 2.0.0 OK queued as Q1"},
                                "data": {"message_id": msg["Message-ID"],
                                         "server": f"127.0.0.1:{smtp.port}",
                                         "accepted": {JANIS: "250 2.0.0 OK queued as Q1"},
                                         "refused": {}}}
    assert delivery.state == {"done": {JANIS: "250 2.0.0 OK queued as Q1"}}


def test_english_message(smtp, email_gateway, invoice_data) -> None:
    gw = email_gateway(smtp)
    email_customer(gw, language="en")
    push(gw, invoice_data)

    deliver_all(gw)

    msg = _only(smtp.received)
    assert msg["Subject"] == "Invoice E2611-00123 from Daugavas Elektrība"
    assert msg["Content-Language"] == "en"
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for body in (plain, html):
        assert "Dear Jānis Bērziņš," in body
        assert "invoice E2611-00123, issued on 4 November 2026" in body
        assert "Amount due" in body and "€78.72" in body
        assert "Due date" in body and "30 November 2026" in body
        assert "Payment reference" in body and "Rekins E2611-00123 ligums 100234567" in body
        assert PORTAL in body
    assert "Labdien" not in plain


def test_language_setting_overrides_customer_language(smtp, email_gateway,
                                                      invoice_data) -> None:
    gw = email_gateway(smtp)
    email_customer(gw, language="lv", settings={"language": "en"})
    push(gw, invoice_data)
    deliver_all(gw)
    assert _only(smtp.received)["Subject"].startswith("Invoice E2611-00123")


def test_credit_note_says_so(smtp, email_gateway, load_example) -> None:
    gw = email_gateway(smtp)
    data = load_example("credit-note.json")
    email_customer(gw)
    from gateway.core.model import Invoice

    result = gw.push(Invoice.model_validate(data), source="test", customer_id="100234567")
    assert result.status == "accepted", result.error
    deliver_all(gw)
    msg = _only(smtp.received)
    assert msg["Subject"].startswith(f"Kredītrēķins Nr. {data['number']}")
    assert "Apmaksas termiņš" not in msg.get_body(("plain",)).get_content()


def test_recipients_cc_and_latvian_file_names(smtp, email_gateway, invoice_data) -> None:
    gw = email_gateway(smtp)
    to = ("gramatvediba@ziemelu-ceptuve.lv", "ilze.kalnina@ziemelu-ceptuve.lv")
    email_customer(gw, to=to, settings={"cc": ["arhivs@ziemelu-ceptuve.lv"]})
    invoice_data["number"] = "RĒĶ-2026/07"
    invoice_id = push(gw, invoice_data)

    deliver_all(gw)

    got = smtp.received[0]
    assert got.rcpt_tos == [*to, "arhivs@ziemelu-ceptuve.lv"]  # one message for all
    msg = _only(smtp.received)
    assert [a.addr_spec for a in msg["To"].addresses] == list(to)
    assert msg["Cc"] == "arhivs@ziemelu-ceptuve.lv"
    assert b"filename*=utf-8''R%C4%92%C4%B6-2026_07.json" in got.data
    parts = list(msg.iter_attachments())
    assert [p.get_filename() for p in parts] == ["RĒĶ-2026_07.json", "RĒĶ-2026_07.bin"]
    assert sorted(p.get_content() for p in parts) == sorted(_archived(gw, invoice_id).values())
    assert msg["Subject"] == "Rēķins Nr. RĒĶ-2026/07 no Daugavas Elektrība"


# aiosmtpd only knows STARTTLS as TLS and warns that AUTH is allowed without it
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls(start_smtp, email_gateway, invoice_data) -> None:
    server = start_smtp("tls")
    gw = email_gateway(server)
    email_customer(gw)
    invoice_id = push(gw, invoice_data)
    summary = deliver_all(gw)
    assert summary.delivered == 1, gw.store.deliveries(invoice_id=invoice_id)[0].last_error
    assert server.received[0].tls and server.received[0].login == USER.encode()


def test_one_connection_for_a_batch(smtp, email_gateway, invoice_data) -> None:
    gw = email_gateway(smtp)
    email_customer(gw)
    for n in range(4):
        invoice_data["number"] = f"E2611-0100{n}"
        push(gw, invoice_data)

    assert deliver_all(gw).delivered == 4

    assert smtp.connections == 1
    assert len({r.message["Message-ID"] for r in smtp.received}) == 4


def test_reconnects_after_max_messages_per_connection(smtp, email_gateway,
                                                      invoice_data) -> None:
    gw = email_gateway(smtp, extra="max_messages_per_connection = 2\n")
    email_customer(gw)
    for n in range(5):
        invoice_data["number"] = f"E2611-0200{n}"
        push(gw, invoice_data)
    assert deliver_all(gw).delivered == 5
    assert smtp.connections == 3


def test_without_a_session_each_delivery_has_its_own_connection(smtp, email_gateway,
                                                                invoice_data) -> None:
    gw = email_gateway(smtp)
    email_customer(gw)
    channel = gw.plugins.channels.get("email")
    settings = gw.channel_settings(channel, {"to": [JANIS]}, context="test")
    for n in range(3):
        invoice_data["number"] = f"E2611-0300{n}"
        bundle = bundle_for(gw, push(gw, invoice_data))
        receipt = channel.deliver(bundle, settings, DeliveryState({}, lambda data: None))
        assert receipt.recipients == {JANIS: f"250 2.0.0 OK queued as Q{n + 1}"}
    assert smtp.connections == 3
    assert len(smtp.received) == 3


def test_pooled_connection_closed_by_the_server_while_idle(start_smtp, email_gateway,
                                                          invoice_data) -> None:
    server = start_smtp(idle_timeout=0.3)
    gw = email_gateway(server)
    email_customer(gw)
    channel = gw.plugins.channels.get("email")
    settings = gw.channel_settings(channel, {"to": [JANIS]}, context="test")
    bundles = []
    for n in range(2):
        invoice_data["number"] = f"E2611-0400{n}"
        bundles.append(bundle_for(gw, push(gw, invoice_data)))
    with channel.session():
        channel.deliver(bundles[0], settings, DeliveryState({}, lambda data: None))
        time.sleep(0.8)  # the server drops the idle connection meanwhile
        receipt = channel.deliver(bundles[1], settings, DeliveryState({}, lambda data: None))
    assert receipt.recipients == {JANIS: "250 2.0.0 OK queued as Q2"}  # no error, no retry
    assert server.connections == 2


def test_dkim_signature_verifies(smtp, email_gateway, invoice_data, tmp_path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "dkim.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    # relative to the data directory
    gw = email_gateway(smtp, extra='dkim_key_file = "dkim.pem"\ndkim_selector = "gw2026"\n')
    email_customer(gw)
    push(gw, invoice_data)
    deliver_all(gw)

    asked: list[bytes] = []

    def dns(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return b"v=DKIM1; k=rsa; p=" + public

    data = smtp.received[0].data
    assert data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(data, dnsfunc=dns)
    assert asked == [b"gw2026._domainkey.daugavas-elektriba.lv."]
    tampered = data.replace(b"Summa apmaksai", b"Summa apmaksaj")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_non_ascii_address_goes_with_smtputf8(smtp, email_gateway, invoice_data) -> None:
    gw = email_gateway(smtp)
    email_customer(gw, to=("jānis@bērziņi.lv",))
    push(gw, invoice_data)
    assert deliver_all(gw).delivered == 1
    assert smtp.received[0].rcpt_tos == ["jānis@bērziņi.lv"]
    assert smtp.received[0].message["To"] == "jānis@bērziņi.lv"


def test_non_ascii_address_without_smtputf8_is_refused_for_good(start_smtp, email_gateway,
                                                               invoice_data) -> None:
    server = start_smtp(smtputf8=False)
    gw = email_gateway(server)
    email_customer(gw, to=("jānis@bērziņi.lv",))
    invoice_id = push(gw, invoice_data)
    assert deliver_all(gw).failed == 1
    error = gw.store.deliveries(invoice_id=invoice_id)[0].last_error or ""
    assert "does not support SMTPUTF8" in error
    assert server.received == []


def test_real_formats_arrive_as_number_dot_extension(smtp, email_gateway, invoice_data,
                                                     monkeypatch) -> None:
    """With the built-in PDF, UBL and CSV formats: the file names the issue asks for."""
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "json,folder,email,pdf,xml,csv")
    gw = email_gateway(smtp)
    email_customer(gw, formats=("pdf", "ubl", "csv"))
    invoice_id = push(gw, invoice_data)

    assert deliver_all(gw).delivered == 1

    msg = _only(smtp.received)
    # raw bytes: get_content() would decode text/csv to str
    parts = {p.get_filename(): (p.get_content_type(), p.get_payload(decode=True))
             for p in msg.iter_attachments()}
    assert sorted(parts) == ["E2611-00123.csv", "E2611-00123.pdf", "E2611-00123.xml"]
    assert parts["E2611-00123.pdf"][0] == "application/pdf"
    assert parts["E2611-00123.pdf"][1].startswith(b"%PDF-")
    assert parts["E2611-00123.csv"][1].startswith(b"\xef\xbb\xbf")  # the BOM survives
    assert sorted(content for _, content in parts.values()) == sorted(
        _archived(gw, invoice_id).values())
