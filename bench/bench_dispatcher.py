"""The dispatcher's ceiling: deliveries recorded per second, before and after, same run.

    nice python3 bench/bench_dispatcher.py                   # 3,000 deliveries per case
    nice python3 bench/bench_dispatcher.py --deliveries 500  # a quick look

Each case runs in a fresh interpreter (its peak resident memory is its own): it pushes
N invoices (JSON, one channel each; not timed), then times one ``Dispatcher.run()`` that
delivers them all: wall and CPU seconds, deliveries per second, peak RSS. Channels:

* ``null``   an in-process receiver that only returns a receipt, so that the figure is
             the dispatcher's own cost: lease, attempt, bundle read, outcome, history;
* ``folder`` the real folder channel (a content-checked, fsynced atomic write per file).

Code under test: ``main`` is the branch's base (``git archive main``, the release with
one delivery per claim and five transactions per delivery), ``this`` is the working
tree. Stores: the embedded SQLite default and PostgreSQL (a throwaway cluster with its
durable defaults, from tests/pg_cluster.py). Writes bench/results/dispatcher.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "electricity-household.json"


def run_case(args: argparse.Namespace) -> dict[str, Any]:
    """Inside the case's own interpreter: set up, push, time the dispatcher."""
    from pydantic import BaseModel

    import gateway
    from gateway import Receipt, hookimpl
    from gateway.core import Dispatcher, load_invoice
    from gateway.core.config import load_config
    from gateway.core.customers import Customer
    from gateway.core.pipeline import Gateway
    from gateway.plugins import get_plugin_manager

    class NullChannel:
        name = "null"

        class Settings(BaseModel):
            pass

        def deliver(self, bundle: Any, settings: Any, state: Any) -> Receipt:
            return Receipt(id=f"null:{bundle.idempotency_key}")

    class NullPlugin:
        @hookimpl
        def gateway_register_channels(self, register: Any) -> None:
            register(NullChannel())

    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    if args.store_url:
        (data / "gateway.toml").write_text(f'[store]\nurl = "{args.store_url}"\n')
    gw = Gateway(load_config(data), get_plugin_manager(extra=(("null", NullPlugin()),)))
    channel = {"channel": args.channel, "name": "out"}
    if args.channel == "folder":
        channel["settings"] = {"path": str(data / "received")}
    gw.store.put_customer(Customer.model_validate({
        "id": "100234567", "name": "Jānis Bērziņš", "formats": ["json"],
        "match": ["C-100234567"], "channels": [channel]}), actor="bench")
    base = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    for i in range(args.deliveries):
        base["number"] = f"D-{i:06d}"
        result = gw.push(load_invoice(base), source="bench")
        assert result.status == "accepted", result.error
    sent = _count_statements() if args.store_url else [0]
    traffic = getattr(gw.store.db, "traffic", None)
    if traffic is not None:
        traffic.reset()
    wall, cpu = time.perf_counter(), time.process_time()
    summary = Dispatcher(gw).run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert summary.delivered == args.deliveries, summary
    # main's code waits for every statement; this code's wrapper counts its waits
    round_trips = traffic.round_trips if traffic is not None else sent[0]
    gw.close()
    return {"code": args.code, "store": "postgresql" if args.store_url else "sqlite",
            "channel": args.channel, "deliveries": summary.delivered,
            "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "per_s_wall": round(summary.delivered / wall, 1),
            "per_s_cpu": round(summary.delivered / cpu, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "gateway_from": str(Path(gateway.__file__).parents[1]),
            **({"statements_per_delivery": round(sent[0] / summary.delivered, 2),
                "round_trips_per_delivery": round(round_trips / summary.delivered, 2)}
               if args.store_url else {})}


def server_cpu(cluster: Any) -> float:
    """CPU seconds of the PostgreSQL server so far: the postmaster, the backends it
    reaped, and the processes it still runs (from /proc, as on a shared machine only
    per-process accounting is fair)."""
    ticks = os.sysconf("SC_CLK_TCK")
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(stat.parent.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15])  # own and reaped backends
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def _count_statements() -> list[int]:
    """Count the statements psycopg sends from now on (its cursors' execute calls)."""
    import psycopg

    sent = [0]
    for name in ("execute", "executemany"):
        original = getattr(psycopg.Cursor, name)

        def counting(self: Any, *a: Any, _original: Any = original, **k: Any) -> Any:
            sent[0] += len(a[1]) if _original.__name__ == "executemany" else 1
            return _original(self, *a, **k)

        setattr(psycopg.Cursor, name, counting)
    return sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--channels", default="null,folder")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--output", type=Path,
                        default=REPO / "bench" / "results" / "dispatcher.json")
    # one case, in a child process
    parser.add_argument("--case", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code", default="this", help=argparse.SUPPRESS)
    parser.add_argument("--channel", default="null", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--store-url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args)))
        return 0

    sys.path.insert(0, str(REPO))
    from tests.pg_cluster import running_cluster

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-dispatcher-") as tmp_name, \
            running_cluster(durable=True) as cluster:
        tmp = Path(tmp_name)
        # The base release's code, as a plain tree that shadows the editable install.
        main_tree = tmp / "main-code"
        main_tree.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "main", "gateway",
                                  "plugins"], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(main_tree)], input=archive, check=True)
        cases = [(code, store, channel) for channel in args.channels.split(",")
                 for code, store in (("main", "sqlite"), ("this", "sqlite"),
                                     ("main", "postgresql"), ("this", "postgresql"))
                 if not (store == "postgresql" and args.no_postgres)]
        for n, (code, store, channel) in enumerate(cases):
            env = {**os.environ, "GATEWAY_LOAD_PLUGINS": "json,folder"}
            env.pop("GATEWAY_STORE_URL", None)
            if code == "main":
                env["PYTHONPATH"] = str(main_tree)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--case", "--code", code,
                   "--channel", channel, "--deliveries", str(args.deliveries),
                   "--data", str(tmp / f"case-{n}")]
            if store == "postgresql":
                cmd += ["--store-url", cluster.new_database()]
            server_before = server_cpu(cluster)
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False,
                                 cwd=tmp)
            server = server_cpu(cluster) - server_before
            if out.returncode != 0:
                print(out.stderr[-3000:], file=sys.stderr)
                return 1
            result = json.loads(out.stdout.strip().splitlines()[-1])
            if store == "postgresql":  # the server's side of the round trips
                result["server_cpu_s"] = round(server, 2)
                result["server_cpu_ms_per_delivery"] = round(
                    1000 * server / result["deliveries"], 3)
            results.append(result)
            print(f"{code:>5} {store:<10} {channel:<7} {result['deliveries']:>6} deliveries "
                  f"{result['wall_s']:>7.2f} s wall {result['cpu_s']:>7.2f} s CPU "
                  f"{result['per_s_wall']:>8.1f}/s wall {result['per_s_cpu']:>8.1f}/CPU-s "
                  f"peak {result['peak_rss_mb']:>6.1f} MB"
                  + (f" {result['round_trips_per_delivery']:>5.2f} round trips/delivery, "
                     f"server {result['server_cpu_s']:.2f} s CPU"
                     if "round_trips_per_delivery" in result else ""), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "dispatcher", "machine": platform.platform(),
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "note": "shared machine (other engineers' tests ran at the same time); CPU "
                "seconds are the fair comparison",
        "deliveries_per_case": args.deliveries, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
