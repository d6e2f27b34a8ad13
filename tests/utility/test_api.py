"""The readings HTTP API over real HTTP: uvicorn on 127.0.0.1, httpx as the client."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from click.testing import Result

from plugins.utility.api import create_app, token_hash
from plugins.utility.store import UtilityStore
from tests.utility.conftest import add_contract, seed_prices

pytestmark = pytest.mark.both_stores  # the utility's tables on SQLite and PostgreSQL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(db: Path) -> Iterator[str]:
    app = create_app(db, today=lambda: CLOCK[0])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                          log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def api(tmp_path: Path, store_url: str | None) -> Iterator[tuple[str, UtilityStore]]:
    store = UtilityStore(tmp_path / "utility.db")
    seed_prices(store)
    add_contract(store)
    store.add_token("meter-app", token_hash("s3cret"))
    with serving(tmp_path / "utility.db") as url:
        yield url, store
    store.close()


AUTH = {"Authorization": "Bearer s3cret"}
#: The day a request arrives at the API (the reading window is judged by it).
CLOCK = [dt.date(2026, 10, 28)]


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    CLOCK[0] = dt.date(2026, 10, 28)
    yield


def test_post_reading_records_api_and_token_name(api: tuple[str, UtilityStore]) -> None:
    url, store = api
    r = httpx.post(f"{url}/readings", headers=AUTH, json={
        "metering_point": "MP1", "date": "2026-10-28", "value": "1158"})
    assert r.status_code == 201, r.text
    assert r.json()["period"] == "2026-10" and r.json()["consumption"] == "158"
    last = store.readings("MP1")[-1]
    assert (last.how, last.by, last.value) == ("api", "meter-app", 1158)
    # The same reading again is not a second reading.
    again = httpx.post(f"{url}/readings", headers=AUTH, json={
        "metering_point": "MP1", "date": "2026-10-28", "value": "1158"})
    assert again.status_code == 200 and again.json()["status"] == "unchanged"
    listed = httpx.get(f"{url}/metering-points/MP1/readings", headers=AUTH).json()
    assert [x["how"] for x in listed] == ["contract", "api"]


def test_api_refuses_with_clear_messages(api: tuple[str, UtilityStore]) -> None:
    url, _ = api
    assert httpx.post(f"{url}/readings", json={}).status_code == 401
    assert httpx.post(f"{url}/readings", headers={"Authorization": "Bearer nope"},
                      json={}).status_code == 401
    lower = httpx.post(f"{url}/readings", headers=AUTH, json={
        "metering_point": "MP1", "date": "2026-10-28", "value": "999"})
    assert lower.status_code == 409
    assert "field value: 999 is lower than the previous reading 1000" in lower.json()["error"]
    bad = httpx.post(f"{url}/readings", headers=AUTH, json={
        "metering_point": "MP1", "date": "28.10.2026", "value": "x", "colour": "red"})
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert "field date" in error and "field value" in error and "field colour" in error
    CLOCK[0] = dt.date(2026, 11, 15)
    late = httpx.post(f"{url}/readings", headers=AUTH, json={
        "metering_point": "MP1", "date": "2026-10-15", "value": "1001"})
    assert late.status_code == 201 and "outside the reading window" in late.json()["message"]
    assert late.json()["timing"] == "outside" and late.json()["period"] == "2026-12"
    assert httpx.get(f"{url}/metering-points/NOPE/readings",
                     headers=AUTH).status_code == 404


def test_api_judges_the_window_by_arrival(api: tuple[str, UtilityStore]) -> None:
    url, store = api
    CLOCK[0] = dt.date(2026, 11, 30)
    r = httpx.post(f"{url}/readings", headers=AUTH, json={
        "metering_point": "MP1", "date": "2026-10-28", "value": "1158"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["period"], body["timing"], body["date"], body["arrived"]) == (
        "2026-11", "on-time", "2026-10-28", "2026-11-30")
    # An operator's system correcting history says so, and it is recorded.
    CLOCK[0] = dt.date(2026, 12, 10)
    r = httpx.post(f"{url}/readings", headers=AUTH, json={
        "metering_point": "MP1", "date": "2026-11-28", "value": "1200",
        "correction": "meter read by the operator on 28.11, entered late"})
    assert r.status_code == 201, r.text
    assert (r.json()["period"], r.json()["timing"]) == ("2026-11", "correction")
    listed = httpx.get(f"{url}/metering-points/MP1/readings", headers=AUTH).json()
    assert listed[-1]["correction"] == "meter read by the operator on 28.11, entered late"
    assert store.readings("MP1")[-1].by == "meter-app"


def test_token_commands(run_cli: Callable[..., Result], store_url: str | None) -> None:
    result = run_cli("utility", "token", "add", "operator")
    assert result.exit_code == 0
    token = result.output.strip().splitlines()[-1]
    assert len(token) >= 40
    assert run_cli("utility", "token", "add", "operator").exit_code == 1
    assert run_cli("utility", "token", "revoke", "operator").exit_code == 0
    assert "no API token named" in run_cli("utility", "token", "revoke", "operator").output
    assert "readings" in run_cli("serve", "--help").output


def test_gateway_serve_readings_in_its_own_process(tmp_path: Path,
                                                    store_url: str | None) -> None:
    """The server process finds the store the way the CLI does (GATEWAY_STORE_URL)."""
    import os
    import subprocess
    import sys

    data = tmp_path / "data"
    store = UtilityStore(data / "utility.db")
    seed_prices(store)
    add_contract(store)
    store.add_token("operator", token_hash("t0ken"))
    store.close()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from gateway.cli import main; main()", "--data-dir",
         str(data), "serve", "readings", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/readings",
                               headers={"Authorization": "Bearer t0ken"},
                               json={"metering_point": "MP1",
                                     "date": dt.date.today().isoformat(), "value": "1042"})
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.stdout.read().decode() if proc.stdout
                                         else "server did not start") from None
                time.sleep(0.1)
        assert r.status_code == 201, r.text
        assert r.json()["consumption"] == "42"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    store = UtilityStore(data / "utility.db")
    assert store.readings("MP1")[-1].by == "operator"
    store.close()
