"""The portal's per-thread gateways and portal tables are closed once their thread has
ended: the web server's worker threads come and go (anyio ends one idle for ten
seconds), and a portal that runs for months must not keep a database connection open
for every thread it ever had."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from gateway.core import Gateway
from gateway.errors import StorageError
from plugins.portal.db import PortalDB
from plugins.portal.state import Portal


def _closed(query: Any) -> bool:
    try:
        query()
    except StorageError as exc:
        assert "closed database" in str(exc)
        return True
    return False


def test_what_an_ended_thread_held_is_closed_and_a_live_ones_is_not(
        gateway_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "json,folder,portal")
    gw = gateway_factory()
    portal = Portal(gw.config, gw.plugins)
    held: dict[str, tuple[Gateway, PortalDB]] = {}
    release = threading.Event()

    def use(name: str, stay: bool = False) -> None:
        held[name] = (portal.gw, portal.db)
        if stay:
            release.wait(60)

    live = threading.Thread(target=use, args=("live", True))
    try:
        live.start()
        deadline = time.monotonic() + 30
        while "live" not in held:
            assert time.monotonic() < deadline, "the live thread never opened its gateway"
            time.sleep(0.01)
        for name in ("ended", "next"):
            thread = threading.Thread(target=use, args=(name,))
            thread.start()
            thread.join(30)
        ended_gw, ended_db = held["ended"]
        assert _closed(ended_gw.store.count_invoices)
        assert _closed(lambda: ended_db.db.query("SELECT 1"))
        live_gw, live_db = held["live"]
        assert live_gw.store.count_invoices() == 0
        assert live_db.db.query("SELECT 1 AS one")[0]["one"] == 1
        # this thread's own are its own, and keep working
        assert portal.gw.store.count_invoices() == 0
        assert portal.gw is portal.gw and portal.db is portal.db
    finally:
        release.set()
        live.join(30)
        portal.close()
    assert _closed(live_gw.store.count_invoices)  # the portal's end closes the rest
