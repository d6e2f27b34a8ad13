"""E-invoice sign-up over HTTP: validation, what is kept, and 'from the next invoice on'."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from gateway.core import Dispatcher, Invoice
from tests.portal.conftest import PASSWORD_A, Server, csrf_of


@pytest.fixture
def load_plugins() -> str:
    return "json,folder,portal,sftp"


def _post(client: httpx.Client, **fields: Any) -> httpx.Response:
    data = {"csrf": csrf_of(client.get("/einvoice").text), **fields}
    return client.post("/einvoice", data=data)


def test_bad_input_is_named_and_nothing_changes(server: Server) -> None:
    gw = server.world.gw
    a = server.login("janis@example.lv", PASSWORD_A)
    before = gw.store.get_customer("100234567")
    r = _post(a, language="lv")
    assert r.status_code == 400 and "vismaz vienu formātu" in r.text
    r = _post(a, formats="portal-test-pdf", email_on="1", addresses="")
    assert r.status_code == 400 and "vismaz vienu e-pasta adresi" in r.text
    r = _post(a, formats="portal-test-pdf", email_on="1", addresses="janis@, x@example.lv")
    assert r.status_code == 400 and "Nederīga e-pasta adrese: janis@" in r.text
    r = _post(a, formats="portal-test-pdf", **{
        "on:sftp-push": "1", "sftp-push:host": "sftp.example.lv", "sftp-push:user": "janis",
        "sftp-push:host_key": "not a key", "sftp-push:port": "22"})
    assert r.status_code == 400
    assert "sftp-push" in r.text and "host_key" in r.text
    r = _post(a, formats="no-such-format")
    assert r.status_code == 400
    assert gw.store.get_customer("100234567") == before
    # Resubmitting what is already set changes nothing and records nothing.
    changes = len(gw.store.customer_changes("100234567"))
    r = _post(a, formats=["portal-test-pdf", "portal-test-xml"], email_on="1",
              addresses="janis@example.lv", language="lv")
    assert r.status_code == 200
    assert len(gw.store.customer_changes("100234567")) == changes + 1  # portal channel added
    r = _post(a, formats=["portal-test-pdf", "portal-test-xml"], email_on="1",
              addresses="janis@example.lv", language="lv")
    assert "Nekas netika mainīts" in r.text
    assert len(gw.store.customer_changes("100234567")) == changes + 1


def test_paper_invoice_choice(server: Server) -> None:
    gw = server.world.gw
    a = server.login("janis@example.lv", PASSWORD_A)
    assert _post(a, formats="portal-test-pdf", paper="1").status_code == 200
    customer = gw.store.get_customer("100234567")
    assert customer is not None and customer.paper is True
    assert 'name="paper" value="1" checked' in a.get("/einvoice").text
    assert _post(a, formats="portal-test-pdf").status_code == 200
    customer = gw.store.get_customer("100234567")
    assert customer is not None and customer.paper is False


def test_operator_channels_are_kept(server: Server) -> None:
    gw = server.world.gw
    customer = gw.store.get_customer("100234567")
    assert customer is not None
    with_folder = customer.model_copy(update={"channels": [
        *customer.channels, customer.channels[0].model_copy(update={
            "channel": "folder", "name": "archive-copy", "settings": {}, "fallback": None})]})
    gw.store.put_customer(with_folder, actor="operator")
    a = server.login("janis@example.lv", PASSWORD_A)
    r = _post(a, formats="portal-test-xml", language="en")  # e-mail switched off
    assert r.status_code == 200
    after = gw.store.get_customer("100234567")
    assert after is not None
    assert [c.label for c in after.channels] == ["archive-copy", "portal"]


def test_changes_apply_from_the_next_invoice_on(server: Server, load_example: Any) -> None:
    world = server.world
    gw = world.gw
    old = {d.label: d.formats for d in gw.store.deliveries(invoice_id=world.a_ids[1])}
    a = server.login("janis@example.lv", PASSWORD_A)
    r = _post(a, formats="portal-test-xml", email_on="1",
              addresses="gramatvediba@example.lv", **{
                  "on:sftp-mailbox": "1", "sftp-mailbox:filename": "{number}.{ext}"})
    assert r.status_code == 200, r.text
    data = copy.deepcopy(load_example("electricity-household.json"))
    data["number"] = "E2612-00123"
    result = gw.push(Invoice.model_validate(data), source="test")
    assert result.status == "accepted", result.error
    Dispatcher(gw).run()
    new = {d.label: d for d in gw.store.deliveries(invoice_id=result.invoice_id)}
    assert set(new) == {"email", "sftp-mailbox", "portal"}
    assert new["email"].settings["to"] == ["gramatvediba@example.lv"]
    assert new["email"].formats == ["portal-test-xml"]
    assert new["sftp-mailbox"].settings["filename"] == "{number}.{ext}"
    after = gw.store.get_customer("100234567")
    assert after is not None and after.paper is False
    assert [d.format for d in gw.store.documents(result.invoice_id)] == ["portal-test-xml"]
    # the earlier invoice keeps what it was sent with
    assert {d.label: d.formats for d in gw.store.deliveries(invoice_id=world.a_ids[1])} == old
    change = gw.store.customer_changes("100234567")[-1]
    assert change["actor"] == "portal:janis@example.lv"
    assert "gramatvediba@example.lv" in change["after_json"]
    assert "janis@example.lv" in (change["before_json"] or "")
