"""Utility month end: N generated contracts from readings to delivered invoices.

    python3 bench/bench_utility.py                    # 10,000 contracts, PDF + UBL + CSV
    python3 bench/bench_utility.py --contracts 1000   # a quicker look
    python3 bench/bench_utility.py --formats json     # the core alone, without rendering

The default is the real month end: every customer gets a PDF (Typst, the default
engine), a UBL invoice (validated by XSD + EN 16931 + Peppol schematron, as the gateway
does by default) and a CSV, delivered to a folder, the SFTP mailbox and the portal.

Each scenario runs in a fresh process (so peak RSS is its own) on a fresh data directory:

* ``utility month end`` — the subject: the month's readings through the reading checks
  (on time, zero, missing, late, early; an operator's CSV file and single API readings),
  one invoice per contract (estimates, fees), pushed through the gateway and delivered to
  the folder, sftp-mailbox and portal channels; afterwards every invoice's total is checked against
  the month-end test's independent calculation.
* ``utility planning only`` — the source's own work: plan, compose and complete() each
  invoice, no gateway store, no rendering, no delivery.
* ``core push of the same invoices`` — the yardstick: the same invoices, written as JSON
  files beforehand, read and pushed by the core (``gateway push`` path: ``push_many``,
  which renders each batch's PDFs in the PDF plugin's warm process pool) and delivered
  to the same channels. The difference to the subject is what the utility source costs.

There is no third-party peer: no Python package bills electricity from meter readings,
so the core pipeline itself is the comparison. Prints a table and writes
bench/results/utility.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PERIOD = (2026, 10)
RUN_ON = dt.date(2026, 11, 15)


def _gateway(data_dir: Path, formats: list[str]) -> Any:
    from gateway.core import Gateway, load_config
    from gateway.plugins import get_plugin_manager

    gw = Gateway(load_config(data_dir), get_plugin_manager())
    missing = [f for f in formats if f not in gw.plugins.formats]
    if missing:
        raise SystemExit(f"format(s) {', '.join(missing)} not installed")
    return gw


def _channels(gw: Any) -> list[str]:
    return ["folder"] + [name for name in ("sftp-mailbox", "portal")
                         if name in gw.plugins.channels]


def _prepare(data_dir: Path, n: int, formats: list[str]) -> tuple[Any, Any, list[Any]]:
    from plugins.utility.dates import Period
    from plugins.utility.synthetic import gateway_customers, generate

    gw = _gateway(data_dir, formats)
    source = gw.plugins.sources.get("utility")
    contracts = generate(source.store, n, Period(*PERIOD))
    gateway_customers(gw, contracts, formats=formats, channels=_channels(gw))
    return gw, source, contracts


def scenario_month_end(data_dir: Path, n: int, formats: list[str]) -> dict[str, Any]:
    from plugins.utility.dates import Period
    from plugins.utility.run import run_month
    from plugins.utility.synthetic import month_readings

    gw, source, contracts = _prepare(data_dir, n, formats)
    started = time.perf_counter()
    readings = month_readings(source.store, contracts, today=RUN_ON)
    after_readings = time.perf_counter()
    # As `gateway utility bill` runs it: push and deliver (from 64 invoices on, worker
    # processes render ahead and a delivery process delivers while the push goes on).
    summary = run_month(gw, source.biller(), Period(*PERIOD), as_of=RUN_ON, deliver=True)
    done = time.perf_counter()
    # Every total right: each invoice's amount due against the test's own calculation.
    from tests.utility.test_month_e2e import expected_total

    numbers = {b.contract: b.number for b in source.store.bills(Period(*PERIOD))}
    wrong = sum(1 for c in contracts if Decimal(gw.find(numbers[c.number]).amount_due)
                != expected_total(c))
    ok = (len(summary.issued) == n and not summary.errors and wrong == 0
          and summary.delivered == n * len(_channels(gw)))
    return {"seconds": done - started, "readings": readings, "wrong_totals": wrong,
            "phases": {"readings": after_readings - started,
                       "invoices, push and deliver": done - after_readings},
            "issued": len(summary.issued), "estimated": summary.estimated,
            "prepared_by_workers": summary.prepared,
            "delivered": summary.delivered, "ok": ok}


def scenario_planning(data_dir: Path, n: int, formats: list[str]) -> dict[str, Any]:
    from gateway.core import complete
    from plugins.utility.dates import Period
    from plugins.utility.run import drafts
    from plugins.utility.synthetic import month_readings

    _, source, contracts = _prepare(data_dir, n, formats)
    month_readings(source.store, contracts, today=RUN_ON)
    paper = {c.customer: c.paper for c in contracts}
    started = time.perf_counter()
    count = 0
    for draft in drafts(source.biller(), Period(*PERIOD), RUN_ON, paper.get):
        complete(draft.invoice)
        count += 1
    return {"seconds": time.perf_counter() - started, "issued": count, "ok": count == n}


def scenario_core_push(data_dir: Path, n: int, formats: list[str]) -> dict[str, Any]:
    from gateway.core import Dispatcher
    from plugins.utility.dates import Period
    from plugins.utility.run import drafts
    from plugins.utility.synthetic import month_readings

    gw, source, contracts = _prepare(data_dir, n, formats)
    month_readings(source.store, contracts, today=RUN_ON)
    paper = {c.customer: c.paper for c in contracts}
    inbox = data_dir / "inbox"
    inbox.mkdir()
    for draft in drafts(source.biller(), Period(*PERIOD), RUN_ON, paper.get):
        (inbox / f"{draft.invoice.number}.json").write_text(
            draft.invoice.model_dump_json(exclude_none=True), encoding="utf-8")
    started = time.perf_counter()

    def read() -> Any:
        for path in sorted(inbox.iterdir()):
            for invoice in gw.read_file(path):
                yield invoice, str(path)

    accepted = sum(r.status == "accepted" for r in gw.push_many(read()))
    result = Dispatcher(gw).run()
    return {"seconds": time.perf_counter() - started, "issued": accepted,
            "delivered": result.delivered,
            "ok": accepted == n and result.delivered == n * len(_channels(gw))}


SCENARIOS = {
    "utility month end": scenario_month_end,
    "utility planning only": scenario_planning,
    "core push of the same invoices": scenario_core_push,
}


def _child(name: str, n: int, formats: list[str], queue: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-utility-") as work:
        result = SCENARIOS[name](Path(work), n, formats)
    own = resource.getrusage(resource.RUSAGE_SELF)
    # The month end's worker processes (plugins/utility/parallel.py) are direct
    # children, joined when the month end returns.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["cpu_seconds"] = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    result["peak_rss_mb"] = own.ru_maxrss / 1024
    result["children_peak_rss_mb"] = children.ru_maxrss / 1024
    try:  # the PDF plugin's pool workers, if the scenario started them
        from plugins.pdf import batch

        pids = batch.worker_pids()
        result["worker_peak_rss_mb"] = max([_peak_mb(p) for p in pids]
                                           + [result["children_peak_rss_mb"]])
        result["cpu_seconds"] += sum(_cpu_s(p) for p in pids)
        batch.close_pool()
    except ImportError:
        result["worker_peak_rss_mb"] = result["children_peak_rss_mb"]
    queue.put(result)


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=10_000)
    parser.add_argument("--formats", default="pdf,ubl,csv",
                        help="comma-separated formats each customer gets (default "
                        "pdf,ubl,csv: the real month end)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated scenarios to run (default: all)")
    parser.add_argument("--output", type=Path,
                        default=REPO / "bench" / "results" / "utility.json")
    args = parser.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    ctx = multiprocessing.get_context("spawn")
    print(f"utility month end: {args.contracts:,} contracts, formats {', '.join(formats)}",
          flush=True)
    print(f"{'scenario':<32} {'seconds':>9} {'contracts/s':>12} {'CPU s':>8} "
          f"{'peak RSS MB':>12} {'worker MB':>10}  ok")
    rows = []
    for name in [x for x in args.scenarios.split(",") if x]:
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(name, args.contracts, formats, queue))
        proc.start()
        result = queue.get()
        proc.join()
        rate = args.contracts / result["seconds"] if result["seconds"] else 0.0
        result.update(scenario=name, contracts_per_second=rate)
        rows.append(result)
        print(f"{name:<32} {result['seconds']:>9.1f} {rate:>12.1f} "
              f"{result['cpu_seconds']:>8.1f} {result['peak_rss_mb']:>12.0f} "
              f"{result['worker_peak_rss_mb']:>10.0f}  {'yes' if result['ok'] else 'NO'}",
              flush=True)
        for phase, seconds in result.get("phases", {}).items():
            print(f"  {phase:<30} {seconds:>9.1f} {args.contracts / seconds:>12.1f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "utility", "contracts": args.contracts, "formats": formats,
        "channels": ["folder", "sftp-mailbox", "portal"],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": multiprocessing.cpu_count()},
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "results": rows}, indent=2), encoding="utf-8")
    print(f"written to {args.output}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
