"""What a customer saves at sign-up is checked as data: host, user, directory, language
and file-name pattern; a refusal says which field, once, in plain words."""

from __future__ import annotations

import re

import pytest

from tests.portal.conftest import PASSWORD_A, Server
from tests.portal.test_portal_signup import _post

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@pytest.fixture
def load_plugins() -> str:
    return "json,folder,portal,sftp"


def _push(**settings: str) -> dict[str, str]:
    base = {"host": "sftp.example.lv", "user": "janis", "host_key": HOST_KEY, "port": "22",
            "directory": "/in", "password_env": "ERP_PASSWORD", "filename": "{name}"}
    return {"formats": "portal-test-pdf", "on:sftp-push": "1",
            **{f"sftp-push:{k}": v for k, v in {**base, **settings}.items()}}


@pytest.mark.parametrize("field, value, said", [
    ("host", "sftp.example.lv\r\nX-Evil: 1", "host"),
    ("host", "a b.example", "host"),
    ("host", "-x.example", "host"),
    ("host", "x" * 300, "host"),
    ("user", "janis\nroot", "user"),
    ("user", "ja nis", "user"),
    ("user", "u" * 65, "user"),
    ("directory", "/in\x00/x", "directory"),
    ("directory", "/" + "d" * 2000, "directory"),
    ("filename", "{number:>200000000}", "format spec"),
    ("filename", "{number!r}", "conversion"),
])
def test_a_bad_field_is_refused_and_nothing_is_saved(server: Server, field: str, value: str,
                                                     said: str) -> None:
    gw = server.world.gw
    before = gw.store.get_customer("100234567")
    a = server.login("janis@example.lv", PASSWORD_A)
    r = _post(a, **_push(**{field: value}))
    assert r.status_code == 400, r.text[:500]
    alerts = re.findall(r'<p class="alert bad"[^>]*>([^<]*)</p>', r.text)
    assert len(alerts) == 1, alerts  # said once
    assert said in alerts[0] and "Value error" not in alerts[0]
    if field != "filename":
        assert f"setting {field}:" in alerts[0]
    assert gw.store.get_customer("100234567") == before


def test_a_bad_language_is_refused(server: Server) -> None:
    gw = server.world.gw
    before = gw.store.get_customer("100234567")
    a = server.login("janis@example.lv", PASSWORD_A)
    r = _post(a, formats="portal-test-pdf", language="xx\r\n")
    assert r.status_code == 400
    assert re.findall(r'<p class="alert bad"[^>]*>([^<]*)</p>', r.text) == [
        "language: expected lv or en"]
    assert gw.store.get_customer("100234567") == before


def test_good_fields_pass() -> None:
    from plugins.sftp.push import PushSettings

    for host in ("10.0.0.5", "sftp.example.lv", "[2001:db8::1]", "erp-1.example.lv."):
        settings = PushSettings.model_validate({
            "host": host, "user": "erp-in@example", "host_key": HOST_KEY,
            "directory": "/srv/in box", "password_env": "P"})
        assert settings.user == "erp-in@example"
