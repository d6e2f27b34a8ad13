"""Peppol AS4 throughput on loopback: messages sent and received per second, CPU per
message, peak memory.

    nice python3 bench/bench_peppol.py               # 300 messages
    nice python3 bench/bench_peppol.py --messages 50 # a quick look

Three measurements in one run, on the same invoice (a 3-line UBL BIS 3.0 electricity
bill, ~10 KB) and the same test PKI (RSA 2048):

1. the ``as4`` package alone, in one process, no network: build (SBDH, sign, gzip,
   encrypt) → parse (verify, decrypt) → signed receipt → receipt verified. The floor
   for any Python AS4 stack on ``cryptography``; the gateway's overhead is measured
   against it.
2. sending: ``gateway deliver`` for N pushed invoices whose customer's channel is
   ``peppol``: the SML lookup in dnsmasq and the SMP's signed metadata over HTTP
   (signature and chain checked) — once per message (``lookup_cache_seconds = 0``),
   then again with the default cache — AS4 build, POST, receipt verification, outbox
   and receipt files written, delivery recorded. CPU of the sending process.
3. receiving: ``gateway serve peppol --no-process`` under uvicorn in its own process:
   verify, decrypt, duplicate check, payload fsynced and recorded, signed receipt. CPU
   and peak RSS read from /proc for that process.

CPU seconds, not wall time, are the fair figures on a shared machine. Writes
bench/results/peppol.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.core.dispatcher import Dispatcher  # noqa: E402
from gateway.core.model import Invoice  # noqa: E402
from plugins.peppol.identifiers import BILLING_PROCESS, BIS_INVOICE  # noqa: E402
from plugins.peppol.testkit import TestPKI  # noqa: E402
from tests.peppol.conftest import (  # noqa: E402
    BUYER,
    SELLER,
    ZONE,
    Network,
    add_customer,
    business_invoice,
)
from tests.peppol.network import Dnsmasq, SmpServer  # noqa: E402


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def proc_peak_rss_mib(pid: int) -> float:
    return _status_mib(pid, "VmHWM")


def proc_rss_mib(pid: int) -> float:
    return _status_mib(pid, "VmRSS")


def bench_library(pki: TestPKI, payload: bytes, n: int) -> dict[str, float]:
    from as4.peppol import parse_peppol_message, peppol_security_policy

    from plugins.peppol.pki import Credentials
    from plugins.peppol.transport import builder_args, local_party, sending_exchange

    a, b = pki.access_point("PLV000001"), pki.access_point("PLV000002")
    sender = Credentials(a.certificate, a.key)
    lb = local_party(Credentials(b.certificate, b.key))
    policy = peppol_security_policy(pki.root.certificate, intermediates=[pki.ap_ca.certificate])
    args = builder_args(sender=SELLER, receiver=BUYER, document_type=BIS_INVOICE,
                        process=BILLING_PROCESS, c1_country="LV", instance_id="x")
    build_cpu = parse_cpu = 0.0
    wall = time.perf_counter()
    for i in range(n):
        t0 = time.process_time()
        ex = sending_exchange(sender, b.certificate, f"m{i}@bench")
        headers, body = ex.build(payload, args)
        t1 = time.process_time()
        received = parse_peppol_message(headers, body, lb, security_policy=policy)
        _, signal = received.build_signal()
        t2 = time.process_time()
        ex.receive_signal(signal)
        t3 = time.process_time()
        assert received.successful and ex.successful
        build_cpu += (t1 - t0) + (t3 - t2)
        parse_cpu += t2 - t1
    wall = time.perf_counter() - wall
    return {"messages": n, "round_trips_per_s": round(n / wall, 1),
            "send_side_cpu_ms": round(1000 * build_cpu / n, 2),
            "receive_side_cpu_ms": round(1000 * parse_cpu / n, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" /
                        "peppol.json")
    args = parser.parse_args()
    n = args.messages
    pki = TestPKI.create()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dnsmasq, smp = Dnsmasq(root, ZONE), SmpServer()
        dnsmasq.start()
        net = Network(root, pki, dnsmasq, smp)
        try:
            b_dir = net.data_dir("PLV000002")
            b = net.gateway(b_dir)
            add_customer(b, id="ceptuve", name="Ziemeļu Ceptuve SIA", formats=["ubl"],
                         match=[BUYER], channels=[{"channel": "folder"}])
            b.close()
            url = net.serve_args(b_dir, "--no-process")
            server = net.servers[-1]
            net.register(BUYER, url, pki.access_point("PLV000002").certificate)
            results = {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared",
                "python": platform.python_version(),
            }
            payload = b""
            rss_by_count: dict[int, float] = {}
            total = 0
            for label, seat, cache in (("lookup every message", "PLV000001", 0),
                                       ("lookup cached (default)", "PLV000003", 300)):
                a = net.gateway(net.data_dir(seat, lookup_cache_seconds=cache))
                add_customer(a, id="ceptuve", name="Ziemeļu Ceptuve SIA", formats=["ubl"],
                             match=["LV40103987654"], channels=[{"channel": "peppol"}])
                invoice = business_invoice()
                print(f"{label}: pushing {n} invoices (UBL rendered and validated; not "
                      "timed)...", file=sys.stderr)
                for i in range(n):
                    invoice["number"] = f"{seat}-{i:06d}"
                    assert a.push(Invoice.model_validate(invoice), source="bench").status \
                        == "accepted"
                if not payload:
                    payload = a.archive.get(next(d.sha256 for d in a.store.documents(
                        a.store.invoices_by_number(f"{seat}-000000")[0].id)
                        if d.format == "ubl"))
                    print("as4 alone...", file=sys.stderr)
                    results["payload_bytes"] = len(payload)
                    results["as4_alone"] = bench_library(pki, payload, n)
                print(f"{label}: gateway deliver over loopback...", file=sys.stderr)
                server_cpu0, smp0 = proc_cpu(server.pid), len(smp.requests)
                cpu0, wall0 = time.process_time(), time.perf_counter()
                delivered = 0
                for _ in range(3):  # in thirds, to see whether the server's memory is flat
                    delivered += Dispatcher(a).run(limit=-(-n // 3)).delivered
                    rss_by_count[total + delivered] = round(proc_rss_mib(server.pid), 1)
                wall = time.perf_counter() - wall0
                cpu = time.process_time() - cpu0
                server_cpu = proc_cpu(server.pid) - server_cpu0
                assert delivered == n, delivered
                total += n
                results[f"gateway_loopback, {label}"] = {
                    "messages": n,
                    "messages_per_s": round(n / wall, 1),
                    "sender_cpu_ms_per_message": round(1000 * cpu / n, 2),
                    "receiver_cpu_ms_per_message": round(1000 * server_cpu / n, 2),
                    "smp_requests": len(smp.requests) - smp0,
                }
                a.close()
            results["sender_peak_rss_mib"] = round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
            results["receiver_peak_rss_mib"] = round(proc_peak_rss_mib(server.pid), 1)
            results["receiver_rss_mib_after_messages"] = rss_by_count
        finally:
            net.close()
            dnsmasq.stop()
            smp.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
