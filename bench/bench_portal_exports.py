"""Benchmark: a big customer's year exports from the portal, each in a fresh process.

N invoices (default 2,000) of one customer in one year, in SQLite. Each case logs in
and downloads one export through the app (Starlette's TestClient, in-process, no
network), in its own Python process, so that its CPU time and peak RSS are its own:

* ``2026.csv``        one row per invoice (streamed page by page)
* ``2026.lines.csv``  every invoice line (streamed page by page)
* ``2026-03.pdf``     one month as PDF (a year of N > export_pdf_invoices is refused)
* ``2026.pdf``        the whole year as PDF, with export_pdf_invoices raised to N: what
                      the limit prevents

Peer in the same run, also in a fresh process: Python's ``csv.writer`` writing the
same invoice rows (read with ``Store.list_invoices``) to memory, no portal, no HTTP.

    nice python3 bench/bench_portal_exports.py [--invoices 2000]

Prints a table and writes bench/results/portal_exports.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("GATEWAY_LOAD_PLUGINS", "json,folder,portal,csv")

CUSTOMER = "100234567"
EMAIL, PASSWORD = "big@example.lv", "benchmark-password"
CASES = {"history csv": "/export/2026.csv", "lines csv": "/export/2026.lines.csv",
         "one month pdf": "/export/2026-03.pdf", "year pdf (limit raised)": "/export/2026.pdf"}


def make_data(data_dir: Path, count: int) -> None:
    from argon2 import PasswordHasher

    from gateway.core import Customer, Invoice
    from gateway.testing.harness import make_gateway
    from plugins.portal.db import PortalDB

    gw = make_gateway(data_dir, config=f"[plugins.portal]\nexport_pdf_invoices = {count}\n")
    customer = Customer.model_validate({
        "id": CUSTOMER, "name": "Big Customer SIA", "language": "lv", "formats": ["json"],
        "match": ["C-100234567"], "channels": [{"channel": "portal"}]})
    gw.store.put_customer(customer, actor="bench")
    base = json.loads((REPO / "examples" / "electricity-household.json").read_text())
    for i in range(count):
        data = copy.deepcopy(base)
        data["number"] = f"E26-{i:06d}"
        data["issue_date"] = f"2026-{1 + i % 12:02d}-03"
        data["due_date"] = f"2026-{1 + i % 12:02d}-28"
        result = gw.push(Invoice.model_validate(data), source="bench")
        assert result.status == "accepted", result.error
        if i % 500 == 499:
            print(f"  {i + 1:,} invoices pushed", file=sys.stderr, flush=True)
    gw.close()
    db = PortalDB(data_dir / "portal.db")
    db.add_account(email=EMAIL, password_hash=PasswordHasher(time_cost=1, memory_cost=1024,
                                                             parallelism=1).hash(PASSWORD),
                   role="customer", customer_id=CUSTOMER, created_by="bench")
    db.close()


def run_case(data_dir: Path, url: str) -> dict[str, Any]:
    """One export in this process: CPU seconds and peak RSS."""
    import warnings

    from gateway.core import load_config
    from gateway.plugins import get_plugin_manager
    from plugins.portal.app import create_app

    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

    app = create_app(load_config(data_dir), get_plugin_manager())
    with TestClient(app) as client:
        form = client.get("/login").text
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form)
        assert csrf is not None
        client.post("/login", data={"email": EMAIL, "password": PASSWORD,
                                    "csrf": csrf.group(1), "next": ""},
                    follow_redirects=False)
        cpu = time.process_time()
        response = client.get(url)
        cpu = time.process_time() - cpu
    return {"status": response.status_code, "bytes": len(response.content), "cpu_s": cpu,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_peer(data_dir: Path) -> dict[str, Any]:
    import csv
    import io

    from gateway.core import load_config
    from gateway.core.storage import open_store

    store = open_store(load_config(data_dir))
    cpu = time.process_time()
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    offset = 0
    while batch := store.list_invoices(customer_id=CUSTOMER, limit=500, offset=offset):
        for r in batch:
            totals = json.loads(r.invoice_json).get("totals", {})
            writer.writerow([r.number, r.issue_date, r.due_date, r.contract_reference,
                             r.currency, totals.get("total_without_vat"),
                             totals.get("vat_total"), totals.get("total_with_vat"),
                             r.amount_due])
        offset += len(batch)
    size = len(out.getvalue().encode())
    cpu = time.process_time() - cpu
    return {"status": 200, "bytes": size, "cpu_s": cpu,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=2000)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # a child: one case, result as JSON on stdout
        result = run_peer(args.data) if args.case == "peer" else \
            run_case(args.data, CASES[args.case])
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as tmp:
        data_dir = Path(tmp) / "data"
        print(f"pushing {args.invoices:,} invoices of one customer ...", file=sys.stderr)
        make_data(data_dir, args.invoices)
        results = {}
        for case in [*CASES, "peer"]:
            out = subprocess.run([sys.executable, __file__, "--case", case, "--data",
                                  str(data_dir)], check=True, capture_output=True, text=True)
            results[case] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\n{args.invoices:,} invoices of one customer in one year "
          "(CPU time of the export, peak RSS of its process incl. Python and imports)")
    print(f"{'case':<28} {'status':>6} {'bytes':>11} {'CPU s':>7} {'peak MiB':>9}")
    for case, r in results.items():
        name = "peer: csv.writer, same rows" if case == "peer" else case
        print(f"{name:<28} {r['status']:>6} {r['bytes']:>11,} {r['cpu_s']:>7.2f} "
              f"{r['peak_rss_mib']:>9.0f}")
    out_file = REPO / "bench" / "results" / "portal_exports.json"
    out_file.write_text(json.dumps({
        "invoices": args.invoices, "machine": platform.platform(),
        "cpus": os.cpu_count(), "note": "shared 2-core machine; CPU time, not wall time",
        "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
