"""Scoping, CSRF, cookies, throttling, invitations: what a portal must get right."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from plugins.portal.db import PortalDB
from tests.portal.conftest import (
    OPERATOR_PASSWORD,
    PASSWORD_A,
    PASSWORD_B,
    Server,
    World,
    csrf_of,
    serve,
)


def test_customer_a_cannot_reach_customer_b_invoices(server: Server) -> None:
    world = server.world
    gw = world.gw
    a = server.login("janis@example.lv", PASSWORD_A)
    b_id, b_number = world.b_ids[0], world.b_numbers[0]
    b_docs = gw.store.documents(b_id)
    nothing = a.get("/invoices/000000000000000000000000")
    assert nothing.status_code == 404
    here = re.compile(r'next=[^"]*')  # the language links point back at the page
    guesses = [f"/invoices/{b_id}", f"/invoices/{b_number}",
               *(f"/invoices/{b_id}/documents/{d.format}" for d in b_docs),
               *(f"/invoices/{b_number}/documents/{d.format}" for d in b_docs),
               *(f"/invoices/{d.sha256}" for d in b_docs),
               *(f"/invoices/{d.sha256}/documents/{d.format}" for d in b_docs),
               *(f"/invoices/{world.a_ids[0]}/documents/{d.sha256}" for d in b_docs)]
    for url in guesses:
        r = a.get(url)
        assert r.status_code == 404, url
        # indistinguishable from an invoice that does not exist
        assert here.sub("", r.text) == here.sub("", nothing.text), url
    listing = a.get("/invoices").text
    assert b_number not in listing
    assert a.get(f"/invoices?contract={b_number}").text.count("data-invoice=") == 0
    for year in ("2026",):
        export = a.get(f"/export/{year}.csv").text
        assert b_number not in export and world.a_numbers[0] in export
    # B sees its own invoice and none of A's.
    b = server.login("anna@ceptuve.lv", PASSWORD_B)
    assert b.get(f"/invoices/{b_id}").status_code == 200
    for ref in [*world.a_ids, *world.a_numbers]:
        assert b.get(f"/invoices/{ref}").status_code == 404
    # History of B's invoice records no view by A.
    assert not any(e.kind == "viewed" and e.data.get("account") != "account:2"
                   for e in gw.store.events(b_id))


def test_customers_are_not_operators(server: Server) -> None:
    a = server.login("janis@example.lv", PASSWORD_A)
    assert a.get("/operator").status_code == 404
    assert a.get(f"/operator/invoices/{server.world.b_ids[0]}").status_code == 404
    r = a.post("/operator/retry", data={"csrf": csrf_of(a.get("/invoices").text),
                                        "delivery": "1"})
    assert r.status_code == 404
    op = server.login("operator@daugavas.lv", OPERATOR_PASSWORD)
    assert op.get("/operator").status_code == 200
    # an operator has no customer archive of its own
    assert op.get("/invoices").status_code == 404


def test_pages_need_a_session(server: Server) -> None:
    with server.client() as anon:
        for url in ("/invoices", f"/invoices/{server.world.a_ids[0]}",
                    f"/invoices/{server.world.a_ids[0]}/documents/portal-test-pdf",
                    "/einvoice", "/export/2026.csv", "/operator"):
            r = anon.get(url)
            assert r.status_code == 303, url
            assert r.headers["location"].startswith("/login?next=")


def test_every_form_checks_csrf(server: Server) -> None:
    world = server.world
    a = server.login("janis@example.lv", PASSWORD_A)
    before = world.gw.store.get_customer("100234567")
    r = a.post("/einvoice", data={"formats": "portal-test-xml", "language": "en"})
    assert r.status_code == 403
    r = a.post("/einvoice", data={"formats": "portal-test-xml", "language": "en",
                                  "csrf": "0" * 64})
    assert r.status_code == 403
    assert world.gw.store.get_customer("100234567") == before
    # A token issued to another session does not work in this one.
    b = server.login("anna@ceptuve.lv", PASSWORD_B)
    r = a.post("/einvoice", data={"formats": "portal-test-xml",
                                  "csrf": csrf_of(b.get("/einvoice").text)})
    assert r.status_code == 403
    assert a.post("/logout", data={}).status_code == 403
    assert a.get("/invoices").status_code == 200  # still logged in
    with server.client() as anon:
        anon.get("/login")
        r = anon.post("/login", data={"email": "janis@example.lv", "password": PASSWORD_A})
        assert r.status_code == 403
    op = server.login("operator@daugavas.lv", OPERATOR_PASSWORD)
    assert op.post("/operator/retry", data={"delivery": "1"}).status_code == 403
    assert op.post("/operator/invite", data={"customer_id": "100234567"}).status_code == 403


def _cookie_header(response: httpx.Response, name: str) -> str:
    return next(v for v in response.headers.get_list("set-cookie") if v.startswith(name + "="))


def test_session_cookie_flags(server: Server) -> None:
    with server.client() as c:
        page = c.get("/login")
        r = c.post("/login", data={"email": "janis@example.lv", "password": PASSWORD_A,
                                   "csrf": csrf_of(page.text)})
    cookie = _cookie_header(r, "portal_session").lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain http on loopback
    assert r.headers["location"] == "/invoices"


def test_secure_cookies_when_configured(world: World) -> None:
    world.gw.config.plugins.setdefault("portal", {})["secure_cookies"] = True
    with serve(world) as server, server.client() as c:
        page = c.get("/login")
        assert "secure" in _cookie_header(page, "portal_anon").lower()


def test_logout_ends_the_session_on_the_server(server: Server) -> None:
    a = server.login("janis@example.lv", PASSWORD_A)
    stolen = a.cookies.get("portal_session")
    r = a.post("/logout", data={"csrf": csrf_of(a.get("/invoices").text)})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    with server.client() as thief:
        thief.cookies.set("portal_session", stolen or "")
        assert thief.get("/invoices").status_code == 303


def test_login_is_throttled(server: Server) -> None:
    with server.client() as c:
        def attempt(email: str, password: str) -> httpx.Response:
            return c.post("/login", data={"email": email, "password": password,
                                          "csrf": csrf_of(c.get("/login").text)})

        for _ in range(3):  # login_attempts = 3 in the test configuration
            r = attempt("janis@example.lv", "wrong password")
            assert r.status_code == 401
            assert "Nepareizs e-pasts vai parole" in r.text
        r = attempt("janis@example.lv", PASSWORD_A)  # even the right password now waits
        assert r.status_code == 429
        assert re.search(r"pēc \d+ min", r.text)
        # another account from the same address still gets in
        assert attempt("anna@ceptuve.lv", PASSWORD_B).status_code == 303


def test_unknown_and_known_emails_get_the_same_answer(server: Server) -> None:
    with server.client() as c:
        r1 = c.post("/login", data={"email": "nobody@example.lv", "password": "x" * 12,
                                    "csrf": csrf_of(c.get("/login").text)})
        r2 = c.post("/login", data={"email": "anna@ceptuve.lv", "password": "x" * 12,
                                    "csrf": csrf_of(c.get("/login").text)})
    assert r1.status_code == r2.status_code == 401
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", r1.text) == strip.sub("", r2.text)


def test_no_open_redirect_after_login(server: Server) -> None:
    with server.client() as c:
        for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            page = c.get("/login")
            r = c.post("/login", data={"email": "janis@example.lv", "password": PASSWORD_A,
                                       "csrf": csrf_of(page.text), "next": target})
            assert r.headers["location"] == "/invoices", target
        assert c.get("/lang/en?next=//evil.example").headers["location"] == "/"


def test_passwords_are_stored_as_argon2_hashes(world: World) -> None:
    db = PortalDB(world.data_dir / "portal.db")
    try:
        for account in db.accounts():
            assert account.password_hash.startswith("$argon2id$")
    finally:
        db.close()
    raw = (world.data_dir / "portal.db").read_bytes()
    assert PASSWORD_A.encode() not in raw


def test_security_headers(server: Server) -> None:
    with server.client() as c:
        r = c.get("/login")
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("repeat", [False, True])
def test_invitation_creates_one_account(server: Server, run_cli: Any, repeat: bool) -> None:
    result = run_cli("portal", "invite", "200987654")
    assert result.exit_code == 0, result.output
    link = result.output.strip()
    path = "/invite/" + link.rsplit("/invite/", 1)[1]
    with server.client() as c:
        form = c.get(path)
        assert form.status_code == 200
        data = {"email": "peteris@ceptuve.lv", "password": "pietiekami-gara",
                "password2": "pietiekami-gara", "csrf": csrf_of(form.text)}
        short = c.post(path, data={**data, "password": "short", "password2": "short"})
        assert short.status_code == 400 and "vismaz 10" in short.text
        r = c.post(path, data=data)
        assert r.status_code == 303
        if repeat:
            again = c.post(path, data={**data, "email": "other@ceptuve.lv"})
            assert again.status_code == 404
            assert "jau izmantots" in again.text
    b = server.login("peteris@ceptuve.lv", "pietiekami-gara")
    listing = b.get("/invoices").text
    assert server.world.b_numbers[0] in listing
    assert server.world.a_numbers[0] not in listing


def test_operator_invitation_from_the_page(server: Server) -> None:
    op = server.login("operator@daugavas.lv", OPERATOR_PASSWORD)
    page = op.get("/operator").text
    r = op.post("/operator/invite", data={"customer_id": "200987654",
                                          "email": "juris@ceptuve.lv", "csrf": csrf_of(page)})
    assert r.status_code == 200
    link = re.search(r"<code>([^<]+/invite/[^<]+)</code>", r.text)
    assert link
    path = "/invite/" + link.group(1).rsplit("/invite/", 1)[1]
    assert op.post("/operator/invite", data={"customer_id": "nobody",
                                             "csrf": csrf_of(page)}).status_code == 404
    with server.client() as c:
        form = c.get(path)
        assert 'value="juris@ceptuve.lv"' in form.text
        # the address the operator fixed wins over what the form sends
        r = c.post(path, data={"email": "someone@else.lv", "password": "garāka-parole-1",
                               "password2": "garāka-parole-1", "csrf": csrf_of(form.text)})
        assert r.status_code == 303
    juris = server.login("juris@ceptuve.lv", "garāka-parole-1")
    assert server.world.b_numbers[0] in juris.get("/invoices").text
