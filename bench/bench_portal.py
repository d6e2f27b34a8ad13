"""Benchmark: the customer portal on one uvicorn worker with N archived invoices
(default 100,000) in SQLite.

Measured over real HTTP on 127.0.0.1, with logged-in sessions (cookies) and bearer
tokens, C client threads (default 4) each on one keep-alive connection:

* invoice list   GET /invoices                       (a customer's archive page)
* invoice page   GET /invoices/{id}                  (amounts, downloads, history)
* download       GET /invoices/{id}/documents/pdf    (archived bytes, ~60 KB)
* API status     GET /api/v1/invoices/{id}           (JSON with deliveries)

Peers in the same run, same client, same machine:

* bare Starlette on the same uvicorn: one route returning the same archived file with
  no session, no database (the framework's floor for a download);
* Python's http.server (ThreadingHTTPServer) serving the same file;
* the list query alone: ``Store.list_invoices`` + ``deliveries`` in-process, no HTTP.

Peak memory is the server process's peak resident set (VmHWM).

    python3 bench/bench_portal.py [--invoices 100000] [--requests 2000] [--clients 4]

Prints a table and writes bench/results/portal.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("GATEWAY_LOAD_PLUGINS", "json,folder,portal")

import httpx  # noqa: E402

from gateway.core import Customer, Gateway, Invoice, complete, load_config  # noqa: E402
from gateway.core.pipeline import content_hash, invoice_id_for  # noqa: E402
from gateway.core.storage import _event_hash  # noqa: E402
from gateway.plugins import get_plugin_manager  # noqa: E402

PER_CUSTOMER = 20
PASSWORD = "benchmark-password"
SELLER = "LV40003000001"


# --------------------------------------------------------------------------- data


def build(data_dir: Path, count: int) -> dict[str, Any]:
    """Bulk-load invoices as the pipeline stores them (one transaction, not one per
    invoice: pushing 100,000 invoices through rendering would take the whole run)."""
    gw = Gateway(load_config(data_dir), get_plugin_manager())
    template = json.loads((REPO / "examples" / "electricity-household.json").read_text())
    done = complete(Invoice.model_validate(template))
    base_json = done.model_dump_json(exclude_none=True)
    pdfs = []
    rng = random.Random(7)
    for i in range(50):
        blob = b"%PDF-1.7\n" + rng.randbytes(60_000) + f"\n%{i}\n%%EOF\n".encode()
        pdfs.append((gw.archive.put(blob), len(blob)))
    customers = max(1, count // PER_CUSTOMER)
    for c in range(customers):
        customer = Customer(id=f"C{c:06d}", name=f"Klients {c}", formats=["pdf"],
                            channels=[{"channel": "portal"}])
        gw.store.put_customer(customer, actor="bench") if c < 1 else None
    gw.close()

    db = sqlite3.connect(data_dir / "gateway.db")
    db.execute("PRAGMA synchronous=OFF")
    now = time.time()
    ids: list[tuple[str, str]] = []
    with db:
        db.executemany(
            "INSERT OR REPLACE INTO customers (id, customer_json, updated_at) VALUES (?, ?, ?)",
            [(f"C{c:06d}", Customer(id=f"C{c:06d}", name=f"Klients {c}", formats=["pdf"],
                                    channels=[{"channel": "portal"}]).model_dump_json(), now)
             for c in range(customers)])
        batch_inv, batch_doc, batch_del, batch_ev = [], [], [], []
        for n in range(count):
            customer_id = f"C{n % customers:06d}"
            month = n // customers
            year, mon = 2020 + month // 12, month % 12 + 1
            number = f"E{year % 100:02d}{mon:02d}-{n:07d}"
            invoice_id = invoice_id_for(SELLER, number)
            text = base_json.replace(done.number, number)
            issue = f"{year}-{mon:02d}-04"
            batch_inv.append((invoice_id, SELLER, number, customer_id,
                              content_hash(done), text, "380", issue, f"{year}-{mon:02d}-28",
                              "EUR", "78.72", done.buyer.name, customer_id, "bench", now))
            sha, size = pdfs[n % len(pdfs)]
            batch_doc.append((invoice_id, "pdf", f"{number}.pdf", "application/pdf", sha, size))
            batch_del.append((invoice_id, customer_id, "portal", "portal", "{}", '["pdf"]',
                              f"{invoice_id}:portal", "delivered", 1, now,
                              f"portal:{invoice_id}", now, now))
            prev = "0" * 64
            for seq, kind, data in ((1, "accepted", {"number": number}),
                                    (2, "rendered", {"format": "pdf", "sha256": sha}),
                                    (3, "delivered", {"channel": "portal", "label": "portal"})):
                payload = json.dumps(data, sort_keys=True)
                digest = _event_hash(prev, invoice_id, seq, now, kind, payload)
                batch_ev.append((invoice_id, seq, now, kind, payload, prev, digest))
                prev = digest
            if n % customers == 0:
                ids.append((customer_id, invoice_id))
            if len(batch_inv) >= 5000:
                _flush(db, batch_inv, batch_doc, batch_del, batch_ev)
        _flush(db, batch_inv, batch_doc, batch_del, batch_ev)
    db.close()

    from plugins.portal.db import PortalDB
    from plugins.portal.security import hash_password, new_token, token_hash

    portal = PortalDB(data_dir / "portal.db")
    hashed = hash_password(PASSWORD)
    for c in range(min(customers, 64)):
        portal.add_account(email=f"c{c}@example.lv", password_hash=hashed, role="customer",
                           customer_id=f"C{c:06d}", created_by="bench")
    token = new_token()
    portal.add_token("bench", SELLER, token_hash(token))
    portal.close()
    sample = {}
    check = sqlite3.connect(data_dir / "gateway.db")
    for c in range(min(customers, 64)):
        row = check.execute("SELECT id FROM invoices WHERE customer_id = ? LIMIT 1",
                            (f"C{c:06d}",)).fetchone()
        sample[f"c{c}@example.lv"] = row[0]
    check.close()
    return {"token": token, "sample": sample, "customers": customers,
            "file": gw.archive.path_for(pdfs[0][0])}


def _flush(db: sqlite3.Connection, inv: list[Any], doc: list[Any], dlv: list[Any],
           ev: list[Any]) -> None:
    db.executemany("INSERT INTO invoices (id, seller_key, number, customer_id, content_hash, "
                   "invoice_json, type_code, issue_date, due_date, currency, amount_due, "
                   "buyer_name, contract_reference, source, created_at) VALUES "
                   "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", inv)
    db.executemany("INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)", doc)
    db.executemany("INSERT INTO deliveries (invoice_id, customer_id, label, channel_type, "
                   "settings_json, formats_json, idempotency_key, status, attempts, "
                   "next_attempt_at, receipt_id, created_at, updated_at) VALUES "
                   "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", dlv)
    db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", ev)
    for batch in (inv, doc, dlv, ev):
        batch.clear()


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_main(kind: str, data_dir: str, port: int, file: str) -> None:
    """Runs in the child process."""
    import uvicorn

    if kind == "portal":
        from plugins.portal.app import create_app

        app: Any = create_app(load_config(Path(data_dir)), get_plugin_manager())
    elif kind == "starlette":
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route

        def download(request: Any) -> Response:
            return Response(Path(file).read_bytes(), media_type="application/pdf")

        app = Starlette(routes=[Route("/file", download)])
    else:
        import functools
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        class Quiet(SimpleHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def translate_path(self, path: str) -> str:
                return file

        ThreadingHTTPServer(("127.0.0.1", port),
                            functools.partial(Quiet, directory="/")).serve_forever()
        return
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


@contextlib.contextmanager
def server(kind: str, data_dir: Path, file: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, str(data_dir),
                             str(port), str(file)])
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{kind} server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def peak_rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", text)
    return round(int(found.group(1)) / 1024, 1) if found else 0.0


# --------------------------------------------------------------------------- load


def login(base: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=60)
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert csrf
    r = client.post("/login", data={"email": email, "password": PASSWORD,
                                    "csrf": csrf.group(1)})
    assert r.status_code == 303, r.text
    return client


def run_load(name: str, clients: list[httpx.Client], url_for: Callable[[int], str],
             requests: int, expect: Callable[[httpx.Response], bool],
             pid: int | None) -> dict[str, Any]:
    latencies: list[float] = []
    lock = threading.Lock()
    errors = 0
    per_client = requests // len(clients)

    def work(index: int, client: httpx.Client) -> None:
        nonlocal errors
        mine = []
        bad = 0
        for _ in range(per_client):
            url = url_for(index)
            start = time.perf_counter()
            r = client.get(url)
            mine.append(time.perf_counter() - start)
            if not expect(r):
                bad += 1
        with lock:
            latencies.extend(mine)
            errors += bad

    for c in clients:  # warm up: first request on each connection
        c.get(url_for(0))
    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "name": name, "requests": len(latencies), "seconds": round(elapsed, 3),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 2),
        "errors": errors, "peak_rss_mb": peak_rss_mb(pid) if pid else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        kind, data_dir, port, file = args.serve
        serve_main(kind, data_dir, int(port), file)
        return

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-portal-") as tmp:
        data_dir = Path(tmp) / "data"
        t0 = time.perf_counter()
        setup = build(data_dir, args.invoices)
        load_seconds = time.perf_counter() - t0
        print(f"loaded {args.invoices:,} invoices for {setup['customers']:,} customers "
              f"in {load_seconds:.1f} s", file=sys.stderr)
        emails = list(setup["sample"])[: args.clients]
        sample = setup["sample"]
        with server("portal", data_dir, setup["file"]) as (base, pid):
            clients = [login(base, e) for e in emails]
            ok = lambda r: r.status_code == 200  # noqa: E731
            results.append(run_load("portal: invoice list (20 per customer)", clients,
                                    lambda i: "/invoices", args.requests, ok, pid))
            results.append(run_load("portal: invoice page", clients,
                                    lambda i: f"/invoices/{sample[emails[i]]}",
                                    args.requests, ok, pid))
            results.append(run_load("portal: PDF download (60 KB, archive)", clients,
                                    lambda i: f"/invoices/{sample[emails[i]]}/documents/pdf",
                                    args.requests, ok, pid))
            for c in clients:
                c.close()
            api = [httpx.Client(base_url=base, timeout=60,
                                headers={"Authorization": f"Bearer {setup['token']}"})
                   for _ in emails]
            results.append(run_load("API: GET /api/v1/invoices/{id}", api,
                                    lambda i: f"/api/v1/invoices/{sample[emails[i]]}",
                                    args.requests, ok, pid))
            results.append(run_load("API: document download", api,
                                    lambda i: f"/api/v1/invoices/{sample[emails[i]]}"
                                              "/documents/pdf", args.requests, ok, pid))
            for c in api:
                c.close()
        for kind, label in (("starlette", "peer: bare Starlette on uvicorn, same file"),
                            ("http.server", "peer: Python http.server, same file")):
            with server(kind, data_dir, setup["file"]) as (base, pid):
                plain = [httpx.Client(base_url=base, timeout=60) for _ in emails]
                results.append(run_load(label, plain, lambda i: "/file", args.requests,
                                        ok, pid))
                for c in plain:
                    c.close()
        gw = Gateway(load_config(data_dir), get_plugin_manager())
        latencies = []
        start = time.perf_counter()
        for n in range(args.requests):
            t = time.perf_counter()
            customer = f"C{n % setup['customers']:06d}"
            for r in gw.store.list_invoices(customer_id=customer, limit=1000):
                gw.store.deliveries(invoice_id=r.id)
            latencies.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - start
        gw.close()
        latencies.sort()
        results.append({"name": "peer: list query in-process (no HTTP, no HTML)",
                        "requests": args.requests, "seconds": round(elapsed, 3),
                        "requests_per_s": round(args.requests / elapsed, 1),
                        "p50_ms": round(statistics.median(latencies) * 1000, 2),
                        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
                        "errors": 0, "peak_rss_mb": None})

    print(f"\nPortal, one uvicorn worker, {args.invoices:,} invoices in SQLite, "
          f"{args.clients} clients\n")
    head = f"{'scenario':<48} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'RSS MB':>7}"
    print(head)
    print("-" * len(head))
    for r in results:
        rss = "" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:.1f}"
        print(f"{r['name']:<48} {r['requests_per_s']:>8.1f} {r['p50_ms']:>8.2f} "
              f"{r['p99_ms']:>8.2f} {r['errors']:>6} {rss:>7}")
    out = {"benchmark": "portal", "invoices": args.invoices, "clients": args.clients,
           "python": platform.python_version(), "machine": platform.machine(),
           "cpus": os.cpu_count(), "load_seconds": round(load_seconds, 1), "results": results}
    target = REPO / "bench" / "results" / "portal.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {target}")


if __name__ == "__main__":
    main()
