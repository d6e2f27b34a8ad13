"""A whole Peppol network on 127.0.0.1: a test PKI, dnsmasq as the SML's DNS, an HTTP
SMP serving documents signed with the test SMP key, and gateways as access points."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.core.config import load_config
from gateway.core.customers import Customer
from gateway.core.pipeline import Gateway
from gateway.plugins import get_plugin_manager
from plugins.peppol.access_point import close_all
from plugins.peppol.identifiers import BILLING_PROCESS, BIS_CREDIT_NOTE, BIS_INVOICE
from plugins.peppol.testkit import Issued, TestPKI, service_metadata, sign_metadata
from tests.peppol.network import Dnsmasq, SmpServer, free_port

REPO = Path(__file__).resolve().parents[2]
ZONE = "sml.peppol.test"
SELLER = "9939:LV40003000001"
BUYER = "9939:LV40103987654"
GATEWAY = str(Path(sys.executable).parent / "gateway")


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    return TestPKI.create()


@pytest.fixture(autouse=True)
def _fresh_access_points() -> Iterator[None]:
    yield
    close_all()  # one cached access point per data dir; tests use fresh dirs


def business_invoice() -> dict[str, Any]:
    return copy.deepcopy(json.loads((REPO / "examples" / "electricity-business.json")
                                    .read_text(encoding="utf-8")))


class Network:
    def __init__(self, root: Path, pki: TestPKI, dnsmasq: Dnsmasq, smp: SmpServer) -> None:
        self.root, self.pki, self.dnsmasq, self.smp = root, pki, dnsmasq, smp
        self.trust = pki.write_trust(root / "trust")
        self.servers: list[subprocess.Popen[bytes]] = []

    def config(self, seat_id: str, ap: Issued, **extra: Any) -> str:
        d = self.root / seat_id
        cert, key = ap.write(d / "pki", "ap")
        lines = ["[plugins.peppol]", 'network = "private"', f'sml_zone = "{ZONE}"',
                 f'dns_server = "{self.dnsmasq.server}"', "allow_http = true", "timeout = 10",
                 f'certificate_file = "{cert}"', f'key_file = "{key}"']
        lines += [f'{k} = "{v}"' for k, v in self.trust.items()]
        lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
        return "\n".join(lines) + "\n"

    def data_dir(self, seat_id: str, ap: Issued | None = None, **extra: Any) -> Path:
        d = self.root / seat_id / "data"
        d.mkdir(parents=True, exist_ok=True)
        (d / "gateway.toml").write_text(
            self.config(seat_id, ap or self.pki.access_point(seat_id), **extra),
            encoding="utf-8")
        return d

    def gateway(self, data_dir: Path) -> Gateway:
        return Gateway(load_config(data_dir), get_plugin_manager())

    def register(self, participant: str, endpoint_url: str, ap_cert: Any,
                 doctypes: tuple[str, ...] = (BIS_INVOICE, BIS_CREDIT_NOTE)) -> None:
        """SML (DNS) and SMP entries: ``participant`` receives at ``endpoint_url``."""
        for doctype in doctypes:
            self.smp.publish(participant, doctype, sign_metadata(
                service_metadata(participant, doctype, BILLING_PROCESS, endpoint_url,
                                 ap_cert), self.pki.smp()))
        self.dnsmasq.register(participant, self.smp.url)

    def serve(self, data_dir: Path) -> str:
        """``gateway serve peppol`` under uvicorn in its own process; its AS4 URL."""
        return self.serve_args(data_dir)

    def serve_args(self, data_dir: Path, *args: str) -> str:
        port = free_port()
        log = (data_dir / "server.log").open("ab")
        proc = subprocess.Popen([GATEWAY, "--data-dir", str(data_dir), "--log-level", "info",
                                 "serve", "peppol", "--port", str(port), *args],
                                stdout=log, stderr=subprocess.STDOUT, cwd=self.root,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.servers.append(proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"gateway serve peppol exited: "
                                   f"{(data_dir / 'server.log').read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return f"http://127.0.0.1:{port}/as4"
            time.sleep(0.1)
        raise RuntimeError("gateway serve peppol did not start")

    def close(self) -> None:
        for proc in self.servers:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def network(tmp_path: Path, pki: TestPKI) -> Iterator[Network]:
    dnsmasq, smp = Dnsmasq(tmp_path, ZONE), SmpServer()
    dnsmasq.start()
    net = Network(tmp_path, pki, dnsmasq, smp)
    try:
        yield net
    finally:
        net.close()
        dnsmasq.stop()
        smp.close()


def add_customer(gw: Gateway, **data: Any) -> Customer:
    customer = Customer.model_validate(data)
    gw.check_customer(customer)
    gw.store.put_customer(customer, actor="test")
    return customer


def make_pair(network: Network, *serve_args: str, **b_settings: Any) -> dict[str, Any]:
    """A (seat PLV000001) sends for the seller; B (PLV000002) serves the buyer, whose
    invoices go to a folder. B's server runs; A is an in-process gateway."""
    b_dir = network.data_dir("PLV000002", **b_settings)
    b = network.gateway(b_dir)
    add_customer(b, id="ceptuve", name="Ziemeļu Ceptuve SIA", formats=["ubl"],
                 match=[BUYER], channels=[{"channel": "folder", "name": "erp",
                                           "settings": {"path": "erp-inbox/{customer}"}}])
    b.close()
    url = network.serve_args(b_dir, *serve_args)
    network.register(BUYER, url, network.pki.access_point("PLV000002").certificate)
    a_dir = network.data_dir("PLV000001")
    a = network.gateway(a_dir)
    add_customer(a, id="ceptuve", name="Ziemeļu Ceptuve SIA", formats=["ubl"],
                 match=["LV40103987654"],
                 channels=[{"channel": "peppol", "fallback": "folder"}])
    return {"a": a, "a_dir": a_dir, "b_dir": b_dir, "url": url, "network": network}


@pytest.fixture
def two_gateways(network: Network) -> Iterator[dict[str, Any]]:
    pair = make_pair(network)
    try:
        yield pair
    finally:
        pair["a"].close()
