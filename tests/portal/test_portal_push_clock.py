"""A push's own clock (``plugins.portal.push_seconds``): waiting for a busy API worker
and working through a batch both stop in time, and the billing system is told what to
push again; nothing half-done is stored."""

from __future__ import annotations

import copy
import json
import threading
import time
from typing import Any

import httpx
import pytest

from gateway import Invoice, RenderContext
from gateway.core.limits import Limits
from tests.portal.conftest import World, serve

SELLER = "LV40003000001"


def _invoice(load_example: Any, number: str) -> dict[str, Any]:
    data = copy.deepcopy(load_example("electricity-household.json"))
    data["number"] = number
    return data


def _configured(world: World, *, push_seconds: float, api_workers: int = 2) -> World:
    config = world.gw.config
    plugins = {**config.plugins, "portal": {**config.plugin_settings("portal"),
                                            "push_seconds": push_seconds}}
    world.gw.config = config.model_copy(update={
        "plugins": plugins, "limits": Limits(api_workers=api_workers)})
    return world


def _slow_render(monkeypatch: pytest.MonkeyPatch, world: World, number: str,
                 hold: threading.Event, entered: threading.Event,
                 seconds: float = 60) -> None:
    """Rendering of invoice ``number`` waits for ``hold`` (at most ``seconds``)."""
    xml_format = type(world.gw.plugins.formats.get("portal-test-xml"))
    render = xml_format.render

    def held(self: Any, invoice: Invoice, context: RenderContext) -> bytes:
        if invoice.number == number:
            entered.set()
            hold.wait(seconds)
        return render(self, invoice, context)

    monkeypatch.setattr(xml_format, "render", held)


def test_a_push_that_finds_every_worker_busy_is_told_to_come_back(
        world: World, load_example: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    hold, entered = threading.Event(), threading.Event()
    _slow_render(monkeypatch, world, "E-HELD", hold, entered)
    with serve(_configured(world, push_seconds=1, api_workers=1)) as server:
        token = server.token("billing")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        answers: list[int] = []

        def push_held() -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as api:
                answers.append(api.post("/api/v1/invoices", content=json.dumps(
                    _invoice(load_example, "E-HELD")).encode()).status_code)

        thread = threading.Thread(target=push_held)
        thread.start()
        try:
            assert entered.wait(30), "the held push never reached rendering"
            with server.client(headers=headers) as api:
                began = time.monotonic()
                r = api.post("/api/v1/invoices",
                             content=json.dumps(_invoice(load_example, "E-WAITING")).encode())
                took = time.monotonic() - began
                assert r.status_code == 503, r.text
                assert r.headers["Retry-After"] == "5"
                assert "plugins.portal.push_seconds" in r.json()["error"]
                assert took < 10, f"the refusal took {took:.1f} s"
        finally:
            hold.set()
            thread.join(120)
        assert answers == [201]
        assert world.gw.store.find_invoice(SELLER, "E-WAITING") is None
        with server.client(headers=headers) as api:
            r = api.post("/api/v1/invoices",
                         content=json.dumps(_invoice(load_example, "E-WAITING")).encode())
            assert r.status_code == 201, r.text


def test_a_batch_starts_no_invoice_after_the_push_time_and_says_which_to_resend(
        world: World, load_example: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    hold, entered = threading.Event(), threading.Event()
    # The first invoice takes 1.5 s to render, three times the push time.
    _slow_render(monkeypatch, world, "E-D0", hold, entered, seconds=1.5)
    batch = [_invoice(load_example, f"E-D{i}") for i in range(3)]
    with serve(_configured(world, push_seconds=0.5)) as server:
        token = server.token("billing")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with server.client(headers=headers) as api:
            r = api.post("/api/v1/invoices", content=json.dumps(batch).encode())
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"] == "5"
            results = r.json()["results"]
            assert [(o["number"], o["status"]) for o in results] == [
                ("E-D0", "accepted"), ("E-D1", "deferred"), ("E-D2", "deferred")]
            assert "push it again" in results[1]["message"]
            store = world.gw.store
            assert store.find_invoice(SELLER, "E-D1") is None
            assert store.find_invoice(SELLER, "E-D2") is None
            r = api.post("/api/v1/invoices", content=json.dumps(batch).encode())
            assert r.status_code == 201, r.text
            assert "Retry-After" not in r.headers
            assert [o["status"] for o in r.json()["results"]] == [
                "unchanged", "accepted", "accepted"]


def test_a_pdf_export_waits_for_a_worker_no_longer_than_a_push_would(
        world: World, load_example: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """PDF exports and documents made on request share the pushes' workers: with the one
    worker busy, the export answers 503 in time instead of piling up CPU work."""
    from tests.portal.conftest import PASSWORD_A

    hold, entered = threading.Event(), threading.Event()
    _slow_render(monkeypatch, world, "E-HELD", hold, entered)
    with serve(_configured(world, push_seconds=1, api_workers=1)) as server:
        token = server.token("billing")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        def push_held() -> None:
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as api:
                api.post("/api/v1/invoices",
                         content=json.dumps(_invoice(load_example, "E-HELD")).encode())

        thread = threading.Thread(target=push_held)
        thread.start()
        a = server.login("janis@example.lv", PASSWORD_A)
        try:
            assert entered.wait(30), "the held push never reached rendering"
            began = time.monotonic()
            r = a.get("/export/2026.pdf")
            took = time.monotonic() - began
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"] == "5"
            assert took < 10, f"the refusal took {took:.1f} s"
        finally:
            hold.set()
            thread.join(120)
        r = a.get("/export/2026.pdf")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/pdf"
