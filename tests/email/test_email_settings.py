"""Settings are checked when a customer is saved, with the field and what was expected;
and the small pieces of the message that need no server."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core.customers import Customer
from gateway.core.documents import Document
from gateway.errors import ConfigError
from plugins.email.message import attachment_name, attachment_names, message_id
from plugins.email.settings import EmailSettings

SERVER = """
[plugins.email]
host = "smtp.daugavas-elektriba.lv"
username = "gateway"
password_env = "SMTP_PASSWORD"
from = "Daugavas Elektrība <rekini@daugavas-elektriba.lv>"
"""


@pytest.fixture
def gw(gateway_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "json,folder,email")
    return gateway_factory(config=SERVER)


def _check(gw: Any, settings: dict[str, Any]) -> None:
    gw.check_customer(Customer.model_validate({
        "id": "c1", "name": "Jānis", "formats": ["json"],
        "channels": [{"channel": "email", "settings": settings}]}))


def test_server_settings_come_from_gateway_toml(gw: Any) -> None:
    channel = gw.plugins.channels.get("email")
    settings = gw.channel_settings(channel, {"to": ["janis@example.lv"]}, context="test")
    assert settings.host == "smtp.daugavas-elektriba.lv"
    assert settings.effective_port == 587 and settings.security == "starttls"
    assert settings.sender.display_name == "Daugavas Elektrība"
    _check(gw, {"to": ["janis@example.lv"], "cc": ["arhivs@example.lv"]})


@pytest.mark.parametrize(("settings", "expected"), [
    ({}, "setting to: Field required"),
    ({"to": []}, "setting to: List should have at least 1 item"),
    ({"to": ["janis.example.lv"]},
     "setting to: 'janis.example.lv' is not an e-mail address"),
    ({"to": ["a@example.lv", "A@example.lv"]}, "address listed twice: a@example.lv"),
    ({"to": ["a@example.lv"], "cc": ["a@example.lv"]}, "address in both to and cc"),
    ({"to": ["a@example.lv"], "security": "ssl"},
     "setting security: Input should be 'starttls', 'tls' or 'none'"),
    ({"to": ["a@example.lv"], "password_env": "my secret"},
     "'my secret' is not an environment variable name"),
    ({"to": ["a@example.lv"], "security": "none"}, "a password is never sent unencrypted"),
    ({"to": ["a@example.lv"], "from": "nobody"}, "'nobody' is not an e-mail address"),
    ({"to": ["a@example.lv"], "port": 0}, "setting port: Input should be greater than"),
    ({"to": ["a@example.lv"], "dkim_key_file": "dkim.pem"},
     "dkim_key_file and dkim_selector go together"),
    ({"to": ["a@example.lv"], "tu": ["b@example.lv"]}, "setting tu: Extra inputs"),
])
def test_bad_settings_fail_when_the_customer_is_saved(gw: Any, settings: dict[str, Any],
                                                      expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _check(gw, settings)
    assert "customer c1, channel email" in str(caught.value)
    assert expected in str(caught.value)


def test_missing_sender_says_where_to_set_it(gateway_factory: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "json,folder,email")
    gw = gateway_factory()  # no [plugins.email] at all
    with pytest.raises(ConfigError) as caught:
        _check(gw, {"to": ["a@example.lv"]})
    assert 'no sender: set from = "Name <address>" in ' \
        "[plugins.email] of gateway.toml" in str(caught.value)


def test_username_needs_password_env() -> None:
    with pytest.raises(ValueError, match="username and password_env go together"):
        EmailSettings.model_validate({"to": ["a@example.lv"], "from": "r@example.lv",
                                      "username": "gateway"})


def test_ports_by_security() -> None:
    base = {"to": ["a@example.lv"], "from": "r@example.lv"}
    ports = [EmailSettings.model_validate({**base, "security": s}).effective_port
             for s in ("starttls", "tls", "none")]
    assert ports == [587, 465, 25]


@pytest.mark.parametrize(("number", "archived", "expected"), [
    ("E2611-00123", "E2611-00123.pdf", "E2611-00123.pdf"),
    ("RĒĶ-2026/07", "R_-2026_07.pdf", "RĒĶ-2026_07.pdf"),
    ("../../etc/passwd", "etc_passwd.pdf", "etc_passwd.pdf"),
    ("A:B*C", "A_B_C-ubl.xml", "A_B_C-ubl.xml"),
])
def test_attachment_names_keep_latvian_letters_but_not_paths(number: str, archived: str,
                                                              expected: str) -> None:
    doc = Document("pdf", "application/pdf", archived, b"%PDF")
    assert attachment_name(number, doc) == expected


@pytest.mark.parametrize(("number", "archived", "expected"), [
    ("E2611-00123", ["E2611-00123.pdf", "E2611-00123.ubl.xml", "E2611-00123.csv"],
     ["E2611-00123.pdf", "E2611-00123.xml", "E2611-00123.csv"]),
    ("E2611-00123", ["E2611-00123.ubl.xml", "E2611-00123.cii.xml"],  # would clash
     ["E2611-00123.ubl.xml", "E2611-00123.cii.xml"]),
    ("INV.a1", ["INV.a1.pdf"], ["INV.a1.pdf"]),  # a dot in the number is no tag
    ("RĒĶ-2026/07", ["R_-2026_07.ubl.xml", "R_-2026_07-facturx.pdf"],
     ["RĒĶ-2026_07.xml", "RĒĶ-2026_07-facturx.pdf"]),
])
def test_attachment_names_drop_an_unambiguous_syntax_tag(number: str, archived: list[str],
                                                         expected: list[str]) -> None:
    docs = tuple(Document("x", "application/octet-stream", name, b"") for name in archived)
    assert attachment_names(number, docs) == expected


def test_message_without_documents_has_only_the_bodies(invoice_data: dict[str, Any]) -> None:
    import email
    from email import policy

    from gateway import Bundle, complete, load_invoice
    from plugins.email.message import build_message

    invoice = complete(load_invoice(invoice_data))
    bundle = Bundle("id1", invoice, "c1", "Jānis", "en", (), "id1:email", None)
    settings = EmailSettings.model_validate({"to": ["a@example.lv"], "from": "r@example.lv"})
    built = build_message(bundle, settings)
    msg = email.message_from_bytes(built.data, policy=policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    assert list(msg.iter_attachments()) == []
    plain = msg.get_body(("plain",)).get_content()
    assert "portal" not in plain and "Attached" not in plain
    assert all(not part.defects for part in msg.walk())


def test_message_id_is_stable_per_delivery() -> None:
    one = message_id("inv1:email", "example.lv")
    assert one == message_id("inv1:email", "example.lv")
    assert one != message_id("inv1:email:fallback:3", "example.lv")
    assert one.startswith("<") and one.endswith("@example.lv>")
