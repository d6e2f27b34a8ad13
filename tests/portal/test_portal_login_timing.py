"""Login costs the same argon2 work for unknown, disabled and known accounts, so its
timing does not tell which e-mail addresses have accounts (checked by counting the
verifications and their parameters, not by a stopwatch)."""

from __future__ import annotations

import sqlite3

import argon2
import pytest
from argon2 import PasswordHasher

import plugins.portal.security as security
from plugins.portal.db import PortalDB
from tests.portal.conftest import Server, csrf_of


class CountingHasher(PasswordHasher):
    """The real hasher, noting the parameters of every hash it verifies against."""

    def __init__(self) -> None:
        super().__init__()
        self.verified: list[argon2.Parameters] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        text = hash.decode() if isinstance(hash, bytes) else hash
        self.verified.append(argon2.extract_parameters(text))
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch: pytest.MonkeyPatch) -> CountingHasher:
    counting = CountingHasher()
    monkeypatch.setattr(security, "_hasher", counting)
    monkeypatch.setattr(security, "_dummy", [])
    return counting


def test_every_failed_login_verifies_one_hash_with_the_same_parameters(
        server: Server, hasher: CountingHasher) -> None:
    db = PortalDB(server.world.data_dir / "portal.db")
    # Accounts the portal makes get hash_password's parameters, like the dummy hash.
    db.add_account(email="real@example.lv", password_hash=security.hash_password("p" * 12),
                   role="customer", customer_id="100234567", created_by="test")
    db.add_account(email="gone@example.lv", password_hash=security.hash_password("p" * 12),
                   role="customer", customer_id="100234567", created_by="test")
    db.close()
    with sqlite3.connect(server.world.data_dir / "portal.db") as conn:
        conn.execute("UPDATE accounts SET disabled = 1 WHERE email = 'gone@example.lv'")
    hasher.verified.clear()
    with server.client() as c:
        for email in ("nobody@example.lv", "real@example.lv", "gone@example.lv", ""):
            before = len(hasher.verified)
            r = c.post("/login", data={"email": email, "password": "wrong-password-1",
                                       "csrf": csrf_of(c.get("/login").text)})
            assert r.status_code == 401
            assert len(hasher.verified) == before + 1, f"{email or 'empty'}: no argon2 work"
    assert all(p == hasher.verified[0] for p in hasher.verified), hasher.verified


def test_a_right_password_still_logs_in(server: Server, hasher: CountingHasher) -> None:
    from tests.portal.conftest import PASSWORD_B

    server.login("anna@ceptuve.lv", PASSWORD_B)
    assert len(hasher.verified) == 1
