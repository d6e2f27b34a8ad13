"""The HTTP API for billing systems, over real HTTP (httpx) against uvicorn."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from tests.portal.conftest import SELLER, Server


def _invoice(load_example: Any, number: str = "E2612-00777") -> dict[str, Any]:
    data = copy.deepcopy(load_example("electricity-household.json"))
    data["number"] = number
    data["issue_date"] = "2026-12-03"
    data["due_date"] = "2026-12-31"
    return data


def test_push_status_and_documents(server: Server, load_example: Any) -> None:
    token = server.token("billing")
    with server.client(headers={"Authorization": f"Bearer {token}"}) as api:
        body = json.dumps(_invoice(load_example)).encode()
        r = api.post("/api/v1/invoices", content=body,
                     headers={"Content-Type": "application/json"})
        assert r.status_code == 201, r.text
        out = r.json()
        assert out["status"] == "accepted"
        assert out["customer"] == "100234567"
        invoice = out["invoice"]
        assert invoice["number"] == "E2612-00777"
        assert invoice["amount_due"] == "78.72"
        assert {d["format"] for d in invoice["documents"]} == {"portal-test-pdf",
                                                               "portal-test-xml"}
        # delivered at once: the e-mail channel accepted it
        # "channel" is the type (the test's e-mail channel), "label" the customer's name
        # for it; "channel_type" stays one release as a deprecated alias of "channel"
        assert [(d["channel"], d["label"], d["channel_type"], d["status"])
                for d in invoice["deliveries"]] == [
            ("testmail", "email", "testmail", "delivered")]

        r = api.get(f"/api/v1/invoices/{out['id']}")
        assert r.status_code == 200
        assert r.json()["deliveries"][0]["receipt"].startswith("mail:")
        by_number = api.get("/api/v1/invoices", params={"number": "E2612-00777"})
        assert by_number.status_code == 200 and by_number.json() == r.json()
        assert api.get("/api/v1/invoices", params={"number": "nope"}).status_code == 404
        assert api.get("/api/v1/invoices").status_code == 400

        gw = server.world.gw
        for doc in invoice["documents"]:
            r = api.get(doc["url"])
            assert r.status_code == 200
            assert r.headers["content-type"].startswith(doc["media_type"])
            sha = next(d.sha256 for d in gw.store.documents(out["id"])
                       if d.format == doc["format"])
            assert r.content == gw.archive.get(sha)

        # The same invoice again: nothing new, 200 and the same id.
        r = api.post("/api/v1/invoices", content=body,
                     headers={"Content-Type": "application/json"})
        assert r.status_code == 200
        assert r.json()["status"] == "unchanged"
        assert r.json()["id"] == out["id"]

        # The same number with other content is refused, not overwritten.
        changed = _invoice(load_example)
        changed["lines"][0]["quantity"] = "400"
        r = api.post("/api/v1/invoices", json=changed)
        assert r.status_code == 409
        assert "already accepted" in r.json()["message"]


def test_rejection_carries_the_same_findings_as_the_cli(server: Server, load_example: Any,
                                                        run_cli: Any, tmp_path: Path) -> None:
    bad = _invoice(load_example, "E2612-00999")
    bad["totals"] = {"line_net_total": "1.00", "total_without_vat": "1.00",
                     "total_with_vat": "1.21", "amount_due": "1.21", "vat_total": "0.21"}
    bad["lines"][0]["quantity"] = "-x"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    cli = run_cli("validate", "--json", str(path))
    assert cli.exit_code == 1
    expected = {(f["rule"], f["location"]) for f in map(json.loads, cli.output.splitlines())
                if f["severity"] == "fatal"}
    assert expected

    token = server.token("billing")
    with server.client(headers={"Authorization": f"Bearer {token}"}) as api:
        r = api.post("/api/v1/invoices", json=bad)
    assert r.status_code == 422, r.text
    out = r.json()
    assert out["status"] == "rejected"
    assert out["number"] == "E2612-00999"
    got = {(f["rule"], f["location"]) for f in out["errors"] if f["severity"] == "fatal"}
    assert got == expected
    assert all(f["message"] for f in out["errors"])
    assert server.world.gw.store.find_invoice(SELLER, "E2612-00999") is None


def test_totals_mismatch_names_the_rule(server: Server, load_example: Any) -> None:
    bad = _invoice(load_example, "E2612-01000")
    bad["totals"] = {"line_net_total": "1.00", "total_without_vat": "1.00",
                     "total_with_vat": "1.21", "amount_due": "1.21", "vat_total": "0.21"}
    token = server.token("billing")
    with server.client(headers={"Authorization": f"Bearer {token}"}) as api:
        r = api.post("/api/v1/invoices", json=bad)
    assert r.status_code == 422
    rules = {f["rule"] for f in r.json()["errors"]}
    assert any(rule.startswith("BR-") for rule in rules), rules


def test_unreadable_body_is_a_clear_400(server: Server) -> None:
    token = server.token("billing")
    with server.client(headers={"Authorization": f"Bearer {token}"}) as api:
        r = api.post("/api/v1/invoices", content=b'{"number": ',
                     headers={"Content-Type": "application/json"})
        assert r.status_code == 400
        error = r.json()["errors"][0]
        assert error["rule"] == "GW-INPUT"
        assert "not valid JSON" in error["message"]
        r = api.post("/api/v1/invoices", content=b"\x00\x01binary",
                     headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 400
        assert "not a format the gateway can read" in r.json()["message"]


def test_tokens_are_required_and_scoped_to_one_seller(server: Server,
                                                      load_example: Any) -> None:
    world = server.world
    with server.client() as api:
        r = api.get(f"/api/v1/invoices/{world.a_ids[0]}")
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        r = api.get(f"/api/v1/invoices/{world.a_ids[0]}",
                    headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401
        r = api.post("/api/v1/invoices", json=_invoice(load_example))
        assert r.status_code == 401

    other = server.token("other-utility", seller="LV40003999999")
    with server.client(headers={"Authorization": f"Bearer {other}"}) as api:
        # Another seller's token neither reads nor pushes this seller's invoices.
        r = api.get(f"/api/v1/invoices/{world.a_ids[0]}")
        assert r.status_code == 404
        r = api.get(f"/api/v1/invoices/{world.a_ids[0]}/documents/portal-test-pdf")
        assert r.status_code == 404
        r = api.get("/api/v1/invoices", params={"number": world.a_numbers[0]})
        assert r.status_code == 404
        r = api.post("/api/v1/invoices", json=_invoice(load_example, "E2612-00888"))
        assert r.status_code == 403
        assert "LV40003999999" in r.json()["message"]
    assert world.gw.store.find_invoice(SELLER, "E2612-00888") is None


def test_revoked_token_stops_working(server: Server) -> None:
    from plugins.portal.db import PortalDB

    token = server.token("old-billing")
    with server.client(headers={"Authorization": f"Bearer {token}"}) as api:
        assert api.get(f"/api/v1/invoices/{server.world.a_ids[0]}").status_code == 200
        db = PortalDB(server.world.data_dir / "portal.db")
        assert db.revoke_token("old-billing")
        db.close()
        assert api.get(f"/api/v1/invoices/{server.world.a_ids[0]}").status_code == 401


def test_openapi_describes_the_api(server: Server) -> None:
    with server.client() as api:
        spec = api.get("/api/v1/openapi.json").json()
    paths = spec["paths"]
    assert set(paths) == {"/api/v1/invoices", "/api/v1/invoices/{invoice_id}",
                          "/api/v1/invoices/{invoice_id}/documents/{format_name}"}
    push = paths["/api/v1/invoices"]["post"]
    assert set(push["requestBody"]["content"]) == {"application/json", "application/xml"}
    assert {"201", "200", "422", "409"} <= set(push["responses"])
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "lines" in spec["components"]["schemas"]["Invoice"]["properties"]
    delivery = spec["components"]["schemas"]["DeliveryOut"]["properties"]
    assert delivery["channel_type"]["deprecated"] is True
    assert "channel type" in delivery["channel"]["description"]
    assert "customer's name" in delivery["label"]["description"]
    # every $ref resolves
    text = json.dumps(spec)
    import re

    for ref in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        assert ref in spec["components"]["schemas"], ref
