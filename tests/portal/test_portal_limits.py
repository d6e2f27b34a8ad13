"""API limits over real HTTP: request bodies bounded as they arrive, and a big push
worked on off the event loop so that other clients are answered meanwhile."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway import Invoice, RenderContext
from gateway.core.limits import Limits
from tests.portal.conftest import Server, World, serve


def _invoice(load_example: Any, number: str, lines: int = 1) -> dict[str, Any]:
    data = copy.deepcopy(load_example("electricity-household.json"))
    data["number"] = number
    line = data["lines"][0]
    if lines > 1:
        data["lines"] = [{**line, "id": str(i + 1)} for i in range(lines)]
        data.pop("totals", None)
        data.pop("vat_breakdown", None)
    return data


def _with_limits(world: World, **limits: Any) -> World:
    world.gw.config = world.gw.config.model_copy(update={"limits": Limits(**limits)})
    return world


def test_a_body_over_the_request_limit_is_refused_while_it_arrives(
        world: World, load_example: Any) -> None:
    with serve(_with_limits(world, bytes_per_request=4096)) as server:
        token = server.token("billing")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        big = json.dumps({**_invoice(load_example, "E-BIG"), "note": "x" * 10_000}).encode()
        with server.client(headers=headers) as api:
            r = api.post("/api/v1/invoices", content=big)
            assert r.status_code == 413
            assert "limits.bytes_per_request" in r.json()["error"]

            def chunks() -> Iterator[bytes]:  # no Content-Length: chunked encoding
                for i in range(0, len(big), 1000):
                    yield big[i:i + 1000]

            r = api.post("/api/v1/invoices", content=chunks())
            assert r.status_code == 413
            small = json.dumps(_invoice(load_example, "E-SMALL")).encode()
            assert api.post("/api/v1/invoices", content=small).status_code == 201
    assert server.world.gw.store.find_invoice("LV40003000001", "E-BIG") is None


def test_an_invoice_over_the_line_limit_is_refused_with_422_naming_the_field(
        server: Server, load_example: Any) -> None:
    token = server.token("billing")
    body = json.dumps(_invoice(load_example, "E-LINES", lines=10_001)).encode()
    with server.client(headers={"Authorization": f"Bearer {token}"}) as api:
        r = api.post("/api/v1/invoices", content=body,
                     headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    out = r.json()
    assert out["number"] == "E-LINES"
    assert out["errors"][0]["rule"] == "GW-LIMIT"
    assert out["errors"][0]["location"] == "lines"


def test_a_push_being_worked_on_does_not_hold_up_other_clients(
        server: Server, load_example: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """While one push is in the middle of rendering (held there by the test), another
    client's push and status request are answered: the work runs off the event loop,
    and more than one push may be worked on at once (limits.api_workers)."""
    entered, release = threading.Event(), threading.Event()
    # The class of the registered instance: conftest may be imported under two names.
    xml_format = type(server.world.gw.plugins.formats.get("portal-test-xml"))
    render = xml_format.render

    def held_render(self: Any, invoice: Invoice, context: RenderContext) -> bytes:
        if invoice.number == "E-HELD":
            entered.set()
            release.wait(60)
        return render(self, invoice, context)

    monkeypatch.setattr(xml_format, "render", held_render)
    token = server.token("billing")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    finished: list[str] = []

    def push_held() -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as api:
            r = api.post("/api/v1/invoices", content=json.dumps(
                _invoice(load_example, "E-HELD")).encode())
            finished.append(f"held {r.status_code}")

    thread = threading.Thread(target=push_held)
    thread.start()
    try:
        assert entered.wait(30), "the held push never reached rendering"
        with server.client(headers=headers) as api:
            r = api.post("/api/v1/invoices",
                         content=json.dumps(_invoice(load_example, "E-QUICK")).encode())
            assert r.status_code == 201, r.text
            finished.append("small push")
            assert api.get(f"/api/v1/invoices/{r.json()['id']}").status_code == 200
            finished.append("status")
    finally:
        release.set()
        thread.join(timeout=120)
    assert finished == ["small push", "status", "held 201"]


def test_a_request_with_more_invoices_than_the_limit_is_refused_whole(
        world: World, load_example: Any) -> None:
    with serve(_with_limits(world, invoices_per_request=3)) as server:
        token = server.token("billing")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        batch = [_invoice(load_example, f"E-B{i}") for i in range(4)]
        with server.client(headers=headers) as api:
            r = api.post("/api/v1/invoices", content=json.dumps(batch).encode())
            assert r.status_code == 413
            assert "4 invoices in one request; the limit is 3" in r.json()["error"]
            assert api.post("/api/v1/invoices",
                            content=json.dumps(batch[:3]).encode()).status_code == 201
    store = server.world.gw.store
    assert store.find_invoice("LV40003000001", "E-B3") is None
    assert store.find_invoice("LV40003000001", "E-B2") is not None
