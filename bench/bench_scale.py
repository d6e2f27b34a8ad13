"""Month end at scale: the embedded default against PostgreSQL + Redis + S3 workers.

    nice python3 bench/bench_scale.py                   # 10,000 invoices
    nice python3 bench/bench_scale.py --invoices 300    # what fits on a busy machine
    nice python3 bench/bench_scale.py --workers 1,2     # fewer distributed runs
    nice python3 bench/bench_scale.py --stop-at 13:00   # stop there, report what ran

Every invoice goes out as PDF + UBL + CSV to three channels: a folder, the customer's
SFTP mailbox and the customer portal (3 deliveries of 3 documents each). Invoices are
spread over ``--customers`` customers. Scenarios, each on a fresh data directory:

* ``embedded`` — the default set-up, no server: SQLite + archive folder; ``gateway push
  --no-deliver`` (accept + render stage) then ``gateway deliver`` (delivery stage), each
  one process.
* ``distributed, N workers`` — PostgreSQL (durable commits) + Redis + SeaweedFS S3, all
  started here on loopback; ``gateway push --queue`` stores the invoices, then N
  ``gateway worker --pool solo`` processes (one process each) render every invoice, then
  N fresh ones deliver. Each stage is timed from the moment all N workers wait on the
  broker to the moment the database says the stage is done.

With ``--stop-at HH:MM`` (a busy machine) each stage stops when its time is up: the
rendering stage leaves ``--deliver-minutes`` for the delivery stage, which delivers what
was rendered. A stopped stage is reported as partial, its figures per invoice it did.

CPU seconds come from the kernel's accounting of each process (``wait4``), so they are
fair on a machine other people use at the same time; the servers' CPU (PostgreSQL
with its backends, Redis, SeaweedFS) is measured from /proc and reported apart. Peak
memory is each process's maximum resident set. Writes bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.distributed.cluster import invoices as make_invoices  # noqa: E402
from tests.distributed.cluster import toml_value  # noqa: E402

FORMATS = ["pdf", "ubl", "csv"]
CHANNELS = ["folder", "sftp-mailbox", "portal"]
PLUGINS = "json,pdf,xml,csv,folder,sftp,portal"
TICKS = os.sysconf("SC_CLK_TCK")
#: epoch seconds at which the delivery stage, and the rendering stage, must stop
STOP = {"deliver": float("inf"), "render": float("inf")}


def time_left(stage: str) -> float:
    return max(STOP[stage] - time.time(), 0.0)


# --------------------------------------------------------------------------- processes


class Measured:
    """A child process whose CPU time and peak RSS are taken from ``wait4``."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(command, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.cpu = 0.0
        self.peak_mb = 0.0
        self.seconds = 0.0
        self.stopped = False  # stopped at its deadline, not finished

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, sig)
        self.wait(timeout)

    def wait(self, timeout: float = 3600) -> int:
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                # out of time: SIGTERM lets it finish what it holds, SIGKILL 30 s later
                self.stopped = True
                os.kill(self.proc.pid, signal.SIGTERM if time.monotonic() < deadline + 30
                        else signal.SIGKILL)
                time.sleep(1.0)
            time.sleep(0.05)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        self.seconds = time.monotonic() - self.started
        self.cpu = usage.ru_utime + usage.ru_stime
        self.peak_mb = usage.ru_maxrss / 1024
        with contextlib.suppress(ProcessLookupError):  # a beat or pool left behind
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
        return self.proc.returncode


def gateway_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", *args]


def run_gateway(env: dict[str, str], log: Path, *args: str,
                stage: str | None = None) -> Measured:
    """Run one gateway command; with a ``stage`` it is stopped when that stage's time is
    up (``proc.stopped``)."""
    proc = Measured(gateway_cmd(*args), env, log)
    code = proc.wait(min(time_left(stage), 6 * 3600) if stage else 6 * 3600)
    if code != 0 and not proc.stopped:
        raise SystemExit(f"gateway {' '.join(args)} failed ({code}); see {log}")
    return proc


def proc_cpu(pid: int, *, children: bool = False) -> float:
    """CPU seconds of a running process (and of its reaped children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICKS


# --------------------------------------------------------------------------- data


def write_inputs(work: Path, count: int, customers: int) -> tuple[list[Path], Path]:
    """Invoice files (1,000 per file) and the customers file."""
    inbox = work / "inbox"
    inbox.mkdir(parents=True)
    invoices = make_invoices(count, "M")
    for i, data in enumerate(invoices):
        customer = f"C-{i % customers:06d}"
        data["buyer"] = {**data["buyer"], "identifiers": [{"value": customer}]}
        data["buyer_reference"] = customer
    files = []
    for start in range(0, count, 1000):
        path = inbox / f"month-{start // 1000:03d}.json"
        path.write_text(json.dumps({"invoices": invoices[start:start + 1000]}))
        files.append(path)
    lines = []
    for c in range(customers):
        cid = f"{c:06d}"
        lines += ["[[customer]]", f'id = "{cid}"', f'name = "Klients {cid}"',
                  'language = "lv"', f"formats = {toml_value(FORMATS)}",
                  f'match = ["C-{cid}"]']
        for channel in CHANNELS:
            lines += ["[[customer.channels]]", f'channel = "{channel}"']
            if channel == "folder":
                lines.append(f'settings = {{ path = "{work / "receiver" / "{customer}"}" }}')
    customers_file = work / "customers.toml"
    customers_file.write_text("\n".join(lines) + "\n")
    return files, customers_file


def base_env(data: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "GATEWAY_DATA_DIR": str(data), "GATEWAY_LOAD_PLUGINS": PLUGINS,
           "GATEWAY_LOG_LEVEL": "warning", "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    env.update(extra or {})
    for name in ("GATEWAY_CONFIG", "GATEWAY_STORE_URL", "GATEWAY_ARCHIVE_URL"):
        if name not in (extra or {}):
            env.pop(name, None)
    return env


# --------------------------------------------------------------------------- scenarios


def orphans_cpu(seconds: float = 10.0) -> float:
    """CPU seconds of descendants left behind by a finished command and reparented to
    this process (a child subreaper): ``gateway push`` renders PDFs in a process pool
    whose multiprocessing fork server nobody waits for, so ``wait4`` on the command
    alone misses the pool's CPU. Only for stages with no other children running."""
    total, deadline = 0.0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            pid, _, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            total += usage.ru_utime + usage.ru_stime
        else:
            time.sleep(0.1)
    return total


def embedded(work: Path, count: int, customers: int) -> dict[str, Any]:
    data = work / "data"
    data.mkdir(parents=True)
    files, customers_file = write_inputs(work, count, customers)
    env = base_env(data)
    run_gateway(env, work / "setup.log", "customer", "import", str(customers_file))
    push = run_gateway(env, work / "push.log", "push", "--no-deliver", *map(str, files),
                       stage="render")
    push.cpu += orphans_cpu()  # the PDF pool's workers, through their fork server
    deliver = run_gateway(env, work / "deliver.log", "deliver", stage="deliver")
    import sqlite3

    with contextlib.closing(sqlite3.connect(data / "gateway.db")) as db:
        rendered = db.execute("SELECT count(*) FROM invoices").fetchone()[0]
        delivered = db.execute("SELECT count(*) FROM deliveries "
                               "WHERE status = 'delivered'").fetchone()[0]
    return _result("embedded (SQLite + folder, in-process)", count, push=push,
                   render=None, deliver=deliver, render_seconds=push.seconds,
                   deliver_seconds=deliver.seconds, workers=1,
                   done={"rendered": rendered, "delivered": delivered,
                         "render_stopped": push.stopped, "deliver_stopped": deliver.stopped})


def distributed(work: Path, count: int, customers: int, workers: int, *, pg: Any,
                redis: Any, s3: Any) -> dict[str, Any]:
    from gateway.core.config import load_config
    from gateway.core.pipeline import Gateway
    from gateway.workers import enqueue_deliveries, enqueue_renders, make_celery

    data = work / "data"
    data.mkdir(parents=True)
    bucket = f"scale-{workers}-{os.getpid()}"
    s3.create_bucket(bucket)
    store_url = pg.new_database()
    (data / "gateway.toml").write_text(
        f'[store]\nurl = "{store_url}"\n[archive]\nurl = "s3://{bucket}/archive"\n'
        f'[queue]\nurl = "{redis.url}"\n')
    files, customers_file = write_inputs(work, count, customers)
    env = base_env(data, s3.env())
    run_gateway(env, work / "setup.log", "customer", "import", str(customers_file))
    push = run_gateway(env, work / "push.log", "push", "--queue", *map(str, files),
                       stage="render")
    flush_broker(redis)  # the stage below hands out the work itself, once

    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("AWS_", "GATEWAY_"))})
    gw = Gateway(load_config(data))
    app = make_celery(gw.config)
    try:
        ids = [r.id for r in gw.store.list_invoices(limit=count + 1)]
        render = run_stage(work, env, workers, "render", redis, pg, s3,
                           start=lambda: enqueue_renders(app, ids),
                           done=lambda c: c.get("render done", 0) >= count, gw=gw,
                           stage="render")
        flush_broker(redis)  # the render tasks queued every delivery; hand them out anew
        due = gw.store.due_delivery_ids(10 ** 9)
        deliver = run_stage(work, env, workers, "deliver", redis, pg, s3,
                            start=lambda: enqueue_deliveries(app, due),
                            done=lambda c: c.get("delivery delivered", 0) >= len(due), gw=gw,
                            stage="deliver")
        counts = gw.store.queue_counts()
    finally:
        gw.close()
        os.environ.clear()
        os.environ.update(saved)
    result = _result(f"distributed (PostgreSQL + Redis + S3), {workers} worker"
                     f"{'s' if workers > 1 else ''}", count, push=push, render=render,
                     deliver=deliver, render_seconds=render["seconds"],
                     deliver_seconds=deliver["seconds"], workers=workers,
                     done={"rendered": counts.get("render done", 0),
                           "delivered": counts.get("delivery delivered", 0),
                           "render_stopped": render["stopped"],
                           "deliver_stopped": deliver["stopped"]})
    result["final_counts"] = counts
    return result


def flush_broker(redis: Any) -> None:
    import redis as redis_client

    redis_client.Redis(port=redis.port).flushall()


def waiting_consumers(redis: Any) -> int:
    """Workers blocked on the broker, waiting for tasks (ready to measure)."""
    import redis as redis_client

    return sum(1 for c in redis_client.Redis(port=redis.port).client_list()
               if c.get("cmd") == "brpop")


def run_stage(work: Path, env: dict[str, str], workers: int, queue: str, redis: Any,
              pg: Any, s3: Any, *, start: Any, done: Any, gw: Any,
              stage: str) -> dict[str, Any]:
    procs = [Measured(gateway_cmd("worker", "--pool=solo", f"--queues={queue}", "--no-beat"),
                      env, work / f"{queue}-worker-{n}.log") for n in range(workers)]
    deadline = time.monotonic() + 120
    while waiting_consumers(redis) < workers:
        if time.monotonic() > deadline:
            raise SystemExit(f"{queue} workers did not start; see {work}")
        time.sleep(0.1)
    # What starting costs (imports, plugins, connections) is reported apart: a worker
    # pays it once, not per invoice.
    startup = [proc_cpu(p.proc.pid) for p in procs]
    servers_before = server_cpu(pg, redis, s3)
    started = time.monotonic()
    start()
    stopped = False
    while not done(gw.store.queue_counts()):
        if not time_left(stage):
            stopped = True
            break
        time.sleep(0.25)
    seconds = time.monotonic() - started
    for p in procs:
        p.stop()
    servers = {k: v - servers_before[k] for k, v in server_cpu(pg, redis, s3).items()}
    return {"seconds": seconds, "cpu": sum(p.cpu for p in procs) - sum(startup),
            "startup_cpu_per_worker": round(sum(startup) / workers, 2),
            "peak_mb": max(p.peak_mb for p in procs),
            "per_worker_cpu": [round(p.cpu - s, 2) for p, s in zip(procs, startup, strict=True)],
            "servers_cpu": servers, "stopped": stopped}


def server_cpu(pg: Any, redis: Any, s3: Any) -> dict[str, float]:
    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
    return {"postgresql": proc_cpu(postmaster, children=True),
            "redis": proc_cpu(redis.proc.pid), "seaweedfs": proc_cpu(s3.pid)}


def _result(name: str, count: int, *, push: Measured, render: dict[str, Any] | None,
            deliver: Any, render_seconds: float, deliver_seconds: float,
            workers: int, done: dict[str, Any]) -> dict[str, Any]:
    """Figures per invoice and delivery done: all of them, or what a stopped stage did."""
    planned = count
    count = max(done["rendered"], 1)
    deliveries = max(done["delivered"], 1)
    if render is None:  # embedded: push renders in-process
        accept_cpu, render_cpu, render_peak = 0.0, push.cpu, push.peak_mb
    else:
        accept_cpu, render_cpu, render_peak = push.cpu, render["cpu"], render["peak_mb"]
        accept_cpu *= count / planned  # accept_cpu / count below: per invoice accepted
    deliver_cpu = deliver.cpu if isinstance(deliver, Measured) else deliver["cpu"]
    deliver_peak = deliver.peak_mb if isinstance(deliver, Measured) else deliver["peak_mb"]
    total = render_seconds + deliver_seconds
    return {
        "scenario": name, "workers": workers, "invoices": count, "deliveries": deliveries,
        "planned_invoices": planned,
        "partial": bool(done["render_stopped"] or done["deliver_stopped"]),
        "stopped": {"render": done["render_stopped"], "deliver": done["deliver_stopped"]},
        "accept_seconds": round(push.seconds, 2) if render is not None else None,
        "render_seconds": round(render_seconds, 2),
        "deliver_seconds": round(deliver_seconds, 2),
        "invoices_per_s": round(count / render_seconds, 2),
        "deliveries_per_s": round(deliveries / deliver_seconds, 1),
        "month_end_invoices_per_s": round(count / total, 2),
        "cpu_ms_per_invoice": {"accept": round(1000 * accept_cpu / count, 2),
                               "render": round(1000 * render_cpu / count, 2),
                               "deliver": round(1000 * deliver_cpu * len(CHANNELS)
                                                / deliveries, 2)},
        "cpu_ms_per_delivery": round(1000 * deliver_cpu / deliveries, 2),
        "servers_cpu_ms_per_invoice": {
            stage: {k: round(1000 * v / (count if stage == "render" else
                                         deliveries / len(CHANNELS)), 2)
                    for k, v in part["servers_cpu"].items()}
            for stage, part in (("render", render), ("deliver", deliver))
            if isinstance(part, dict)},
        "peak_mb": {"accept": round(push.peak_mb) if render is not None else None,
                    "render": round(render_peak), "deliver": round(deliver_peak)},
        "worker_startup_cpu_s": render["startup_cpu_per_worker"] if render else None,
        "per_worker_cpu": {"render": render["per_worker_cpu"] if render else None,
                           "deliver": deliver["per_worker_cpu"]
                           if isinstance(deliver, dict) else None},
    }


# --------------------------------------------------------------------------- main


MONTHS = (100_000, 800_000, 2_000_000)
WINDOW_HOURS = 4
USABLE = 0.8  # of a machine's two cores, leaving room for the OS and bursts


def sizing(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Machines of 2 cores that finish a month end in 4 hours, from measured CPU costs."""
    cpu = result["cpu_ms_per_invoice"]
    workers_ms = cpu["accept"] + cpu["render"] + cpu["deliver"]
    servers = result["servers_cpu_ms_per_invoice"]
    servers_ms = {name: sum(stage.get(name, 0.0) for stage in servers.values())
                  for name in ("postgresql", "redis", "seaweedfs")}
    budget = WINDOW_HOURS * 3600 * 2 * USABLE  # CPU seconds one machine gives in the window
    rows = []
    for month in MONTHS:
        rows.append({
            "invoices": month,
            "worker_cpu_hours": round(month * workers_ms / 1000 / 3600, 1),
            "worker_machines": max(1, -(-month * workers_ms / 1000 // budget)),
            "server_cpu_hours": {k: round(month * v / 1000 / 3600, 1)
                                 for k, v in servers_ms.items()},
            "server_machines": max(1, -(-month * sum(servers_ms.values()) / 1000 // budget)),
        })
    return rows


def report(path: Path) -> None:
    """The README / docs tables from a results file."""
    data = json.loads(path.read_text())
    print("| set-up | invoices/s (render) | deliveries/s | CPU ms per invoice: accept / render "
          "/ deliver | servers' CPU ms per invoice (PG / Redis / S3) | peak MB per process "
          "(render / deliver) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in data["results"]:
        cpu = r["cpu_ms_per_invoice"]
        servers = r["servers_cpu_ms_per_invoice"]
        totals = [sum(stage.get(k, 0.0) for stage in servers.values())
                  for k in ("postgresql", "redis", "seaweedfs")]
        server_text = " / ".join(f"{t:.1f}" for t in totals) if servers else "–"
        done = (f" — **stopped at the deadline**: {r['invoices']:,} of "
                f"{r['planned_invoices']:,} rendered, {r['deliveries']:,} deliveries"
                if r.get("partial") else f", {r['invoices']:,} invoices")
        print(f"| {r['scenario']}{done} | {r['invoices_per_s']} | {r['deliveries_per_s']} | "
              f"{cpu['accept']:.1f} / {cpu['render']:.1f} / {cpu['deliver']:.1f} | "
              f"{server_text} | {r['peak_mb']['render']} / {r['peak_mb']['deliver']} |")
    if data.get("scaling"):
        print(f"\nscaling 1 → 2 workers (wall clock): render {data['scaling']['render_1_to_2']}x, "
              f"deliver {data['scaling']['deliver_1_to_2']}x")
    one = next((r for r in data["results"] if r["workers"] == 1
                and r["scenario"].startswith("distributed")), None)
    if one:
        print("\n| invoices a month | worker CPU hours | 2-core worker machines for 4 h | "
              "servers' CPU hours (PG / Redis / S3) | 2-core server machines |")
        print("|---:|---:|---:|---:|---:|")
        for row in sizing(one):
            sc = row["server_cpu_hours"]
            print(f"| {row['invoices']:,} | {row['worker_cpu_hours']} | "
                  f"{int(row['worker_machines'])} | {sc['postgresql']} / {sc['redis']} / "
                  f"{sc['seaweedfs']} | {int(row['server_machines'])} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, metavar="RESULTS_JSON",
                        help="print the README tables from a results file and stop")
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--stop-at", metavar="HH:MM",
                        help="today's time (local) at which to stop and report what ran")
    parser.add_argument("--deliver-minutes", type=float, default=10,
                        help="with --stop-at: time left for the delivery stage")
    parser.add_argument("--output", type=Path,
                        default=REPO / "bench" / "results" / "scale.json")
    args = parser.parse_args()
    if args.stop_at:
        hour, minute = map(int, args.stop_at.split(":"))
        now = time.localtime()
        STOP["deliver"] = time.mktime((now.tm_year, now.tm_mon, now.tm_mday, hour, minute,
                                       0, 0, 0, -1))
        STOP["render"] = STOP["deliver"] - 60 * args.deliver_minutes
    if args.report:
        report(args.report)
        return
    counts = [int(w) for w in args.workers.split(",") if w]
    customers = min(args.customers, args.invoices)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(tmp)
        if not args.skip_embedded:
            print("embedded …", flush=True)
            # orphaned grandchildren (the PDF pool) come back to be counted: see orphans_cpu
            import ctypes

            ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
            results.append(embedded(root / "embedded", args.invoices, customers))
            _print(results[-1])
        if counts:
            from tests.distributed.services import redis_server, seaweedfs
            from tests.pg_cluster import running_cluster

            with running_cluster(durable=True) as pg, redis_server(root / "redis") as redis, \
                    seaweedfs(root / "s3") as s3:
                for n in counts:
                    if time_left("render") < 120:
                        print(f"distributed, {n} workers: not run, out of time", flush=True)
                        continue
                    print(f"distributed, {n} workers …", flush=True)
                    results.append(distributed(root / f"dist{n}", args.invoices, customers,
                                               n, pg=pg, redis=redis, s3=s3))
                    _print(results[-1])
    by_workers = {r["workers"]: r for r in results if r["scenario"].startswith("distributed")}
    scaling = {}
    if 1 in by_workers and 2 in by_workers:
        scaling = {"render_1_to_2": round(by_workers[2]["invoices_per_s"]
                                          / by_workers[1]["invoices_per_s"], 2),
                   "deliver_1_to_2": round(by_workers[2]["deliveries_per_s"]
                                           / by_workers[1]["deliveries_per_s"], 2)}
        print(f"scaling 1 → 2 workers: render {scaling['render_1_to_2']}x, "
              f"deliver {scaling['deliver_1_to_2']}x")
    out = args.output
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "note": "shared with other engineers' tests: compare CPU, not wall"},
        "formats": FORMATS, "channels": CHANNELS, "customers": customers,
        "results": results, "scaling": scaling}, indent=2))
    print(f"wrote {out}")


def _print(r: dict[str, Any]) -> None:
    cpu = r["cpu_ms_per_invoice"]
    partial = f" PARTIAL (stopped: {r['stopped']})" if r["partial"] else ""
    print(f"  {r['scenario']}{partial}: {r['invoices']} of {r['planned_invoices']} invoices "
          f"rendered, {r['deliveries']} deliveries; "
          f"{r['invoices_per_s']} invoices/s rendered, "
          f"{r['deliveries_per_s']} deliveries/s; CPU ms/invoice accept {cpu['accept']}, "
          f"render {cpu['render']}, deliver {cpu['deliver']}; peak MB {r['peak_mb']}",
          flush=True)


if __name__ == "__main__":
    main()
