"""``gateway portal ...`` and ``gateway serve portal``."""

from __future__ import annotations

from typing import Any

import pytest

from plugins.portal.db import PortalDB
from plugins.portal.security import token_hash, verify_password
from tests.conftest import JSON_CUSTOMERS


@pytest.fixture
def cli(run_cli: Any) -> Any:
    result = run_cli("customer", "import", str(JSON_CUSTOMERS))
    assert result.exit_code == 0, result.output
    return run_cli


def test_serve_portal_is_registered(cli: Any) -> None:
    result = cli("serve", "portal", "--help")
    assert result.exit_code == 0
    assert "--port" in result.output


def test_account_with_password_from_prompt(cli: Any, tmp_path: Any) -> None:
    result = cli("portal", "account", "janis@example.lv", "--customer", "100234567",
                 input="garā-parole-123\ngarā-parole-123\n")
    assert result.exit_code == 0, result.output
    db = PortalDB(tmp_path / "data" / "portal.db")
    try:
        account = db.account_by_email("janis@example.lv")
        assert account is not None and account.customer_id == "100234567"
        assert verify_password(account.password_hash, "garā-parole-123")
    finally:
        db.close()
    again = cli("portal", "account", "janis@example.lv", "--customer", "100234567",
                input="garā-parole-123\ngarā-parole-123\n")
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_account_errors_are_one_line(cli: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("OP_PASSWORD", "short")
    r = cli("portal", "account", "op@example.lv", "--operator", "--password-env", "OP_PASSWORD")
    assert r.exit_code == 1 and "at least 10 characters" in r.output
    r = cli("portal", "account", "x@example.lv", "--customer", "nobody",
            "--password-env", "OP_PASSWORD")
    assert r.exit_code == 1 and "unknown customer 'nobody'" in r.output
    r = cli("portal", "account", "x@example.lv", "--password-env", "OP_PASSWORD")
    assert r.exit_code == 2 and "--customer ID or --operator" in r.output
    r = cli("portal", "account", "x@example.lv", "--operator", "--password-env", "UNSET_VAR")
    assert r.exit_code == 1 and "UNSET_VAR is not set" in r.output
    assert "Traceback" not in r.output


def test_tokens(cli: Any, tmp_path: Any) -> None:
    result = cli("portal", "token", "add", "erp", "--seller", "LV40003000001")
    assert result.exit_code == 0
    token = result.output.strip()
    assert len(token) >= 40
    db = PortalDB(tmp_path / "data" / "portal.db")
    try:
        stored = db.token(token_hash(token))
        assert stored is not None and stored.seller_key == "LV40003000001"
        assert token.encode() not in (tmp_path / "data" / "portal.db").read_bytes()
    finally:
        db.close()
    assert "erp\tLV40003000001\tactive" in cli("portal", "token", "list").output
    assert cli("portal", "token", "revoke", "erp").exit_code == 0
    assert "revoked" in cli("portal", "token", "list").output
    assert cli("portal", "token", "revoke", "erp").exit_code == 1


def test_invite_unknown_customer(cli: Any) -> None:
    r = cli("portal", "invite", "nobody")
    assert r.exit_code == 1 and "unknown customer" in r.output


def test_serve_portal_answers_over_http(cli: Any, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    import time

    import httpx

    from tests.portal.conftest import free_port

    port = free_port()
    env = {**os.environ, "GATEWAY_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "portal", "--port",
                             str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.stdout.read().decode() if proc.stdout
                                         else "server did not start") from None
                time.sleep(0.2)
        assert r.status_code == 200
        assert "Klientu portāls" in r.text
        spec = httpx.get(f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=5).json()
        assert "/api/v1/invoices" in spec["paths"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
