"""Distributed chaos: three Celery workers on Redis + S3 (+ the configured store), killed
and restarted while they render and deliver to a folder and to an SFTP server.

Faults, from inside and outside:

* pool processes SIGKILL themselves at random crash-safety points (while rendering,
  after archiving, after leasing a delivery, after sending but before recording it),
* a whole worker (parent, pool and beat) is SIGKILLed and a new one started,
* one pool process of a worker is SIGKILLed from outside at a random moment,
* Redis is killed and restarted without persistence (every queued message is lost).

Then the faults stop, two clean workers finish the work, and everything is counted at
the receivers: every document of every invoice present once, intact, and published once
(the SFTP server's log of renames), nothing left half-written, ``gateway verify`` clean.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.harness import Sshd, Verdict
from tests.distributed.cluster import Cluster
from tests.distributed.services import RedisServer, S3Server


@dataclass
class DistributedReport(Verdict):
    seed: int
    invoices: int
    faults: dict[str, int] = field(default_factory=dict)
    self_kills: dict[str, int] = field(default_factory=dict)  # by crash point
    invoices_stored: int = 0
    deliveries_not_delivered: int = 0
    expected: dict[str, int] = field(default_factory=dict)
    present: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    corrupt: dict[str, int] = field(default_factory=dict)
    temp_left: dict[str, int] = field(default_factory=dict)
    verify_ok: bool = False
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def run_distributed_round(work: Path, *, redis: RedisServer, s3: S3Server, bucket: str,
                          seed: int, invoices: int = 30, chaos_seconds: float = 20.0,
                          self_kill_probability: float = 0.08, workers: int = 3,
                          store_url: str | None = None) -> DistributedReport:
    started = time.monotonic()
    rng = random.Random(seed)
    report = DistributedReport(seed, invoices)
    sshd = Sshd(work / "sshd")
    sshd.start()
    chaos_log = work / "self-kills.log"
    try:
        cluster = Cluster(
            work / "cluster", queue_url=redis.url, archive_url=f"s3://{bucket}/chaos{seed}",
            env={**s3.env(), "GATEWAY_CHAOS_LOG": str(chaos_log)},
            plugins=("json", "csv", "folder", "sftp"), formats=("json", "csv"),
            channels=[{"channel": "folder", "name": "box",
                       "settings": {"path": str(work / "cluster" / "folder-receiver")}},
                      {"channel": "sftp-push", "name": "erp", "settings": sshd.settings()}],
            lease_seconds=2.0, sweep_seconds=1.0, store_url=store_url)
        faults: dict[str, int] = {}
        for n in range(workers):
            cluster.start_worker(1, chaos=self_kill_probability, seed=seed * 100 + n)
        batch = cluster.write_batch(invoices, prefix=f"D{seed}", files=3)
        deadline = time.monotonic() + chaos_seconds
        pushed = 0
        forced = ["kill-pool-process", "restart-redis", "kill-worker"]
        rng.shuffle(forced)
        while time.monotonic() < deadline:
            if pushed < len(batch):
                cluster.gateway("push", "--queue", str(batch[pushed]))
                pushed += 1
            # Each kind of fault at least once, then at random.
            fault = forced.pop() if forced else rng.choice(
                ["kill-worker", "kill-pool-process", "restart-redis", "kill-pool-process",
                 "none"])
            if fault == "kill-worker":
                alive = [p for p in cluster.workers if p.poll() is None]
                if alive:
                    victim = rng.choice(alive)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(victim.pid, signal.SIGKILL)
                    victim.wait(10)
                    cluster.workers.remove(victim)
                    cluster.start_worker(1, chaos=self_kill_probability,
                                         seed=rng.randrange(1 << 30))
            elif fault == "kill-pool-process":
                alive = [p for p in cluster.workers if p.poll() is None]
                children = [c for p in alive for c in cluster.worker_children(p)]
                if children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(rng.choice(children), signal.SIGKILL)
            elif fault == "restart-redis":
                redis.restart()
            faults[fault] = faults.get(fault, 0) + 1
            time.sleep(rng.uniform(0.3, 1.5))
        for path in batch[pushed:]:
            cluster.gateway("push", "--queue", str(path))
        report.faults = faults
        # Faults over: the chaos workers go, two clean workers finish what is left.
        cluster.stop_workers(kill=True)
        if chaos_log.exists():
            for line in chaos_log.read_text().splitlines():
                point = line.split()[-1]
                report.self_kills[point] = report.self_kills.get(point, 0) + 1
        # Every invoice is pushed again, as a billing system retries: "unchanged".
        cluster.gateway("push", "--queue", *map(str, batch))
        cluster.start_worker(1)
        cluster.start_worker(1)
        try:
            cluster.wait_until_done(invoices, invoices * 2, timeout=240)
        except AssertionError as exc:
            report.problems.append(str(exc))
        cluster.stop_workers()
        _count(cluster, sshd, report, invoices)
    finally:
        sshd.stop()
    report.seconds = round(time.monotonic() - started, 1)
    return report


def _count(cluster: Cluster, sshd: Sshd, report: DistributedReport, invoices: int) -> None:
    from gateway.core.config import load_config
    from gateway.core.pipeline import Gateway

    old_env = dict(os.environ)
    os.environ.update({k: v for k, v in cluster.env.items() if k.startswith("AWS_")})
    gw = Gateway(load_config(cluster.data))
    try:
        records = gw.store.list_invoices(limit=invoices * 2)
        report.invoices_stored = len(records)
        if len(records) != invoices:
            report.problems.append(f"{invoices - len(records)} invoices lost")
        undelivered = [d for d in gw.store.deliveries() if d.status != "delivered"]
        report.deliveries_not_delivered = len(undelivered)
        if undelivered:
            report.problems.append(f"{len(undelivered)} deliveries not delivered")
        docs = {d.filename: d.sha256 for r in records for d in gw.store.documents(r.id)}
    finally:
        gw.close()
        os.environ.clear()
        os.environ.update(old_env)
    if len(docs) != invoices * 2:
        report.problems.append(f"{invoices * 2 - len(docs)} documents never rendered")
    renames = sshd.renames()
    for channel, directory, temp in (("folder", cluster.folder, ".tmp-"),
                                     ("sftp-push", sshd.upload, ".")):
        visible = {p.name: p for p in directory.iterdir() if not p.name.startswith(".")}
        report.expected[channel] = len(docs)
        report.present[channel] = len(set(visible) & set(docs))
        report.corrupt[channel] = sum(
            1 for name, path in visible.items()
            if hashlib.sha256(path.read_bytes()).hexdigest() != docs.get(name))
        report.temp_left[channel] = sum(1 for p in directory.iterdir()
                                        if p.name.startswith(temp))
        # The folder channel never overwrites and a name exists once in a directory; the
        # SFTP server logs every rename that published a file.
        report.duplicates[channel] = sum(n - 1 for n in renames.values() if n > 1) \
            if channel == "sftp-push" else 0
        if report.present[channel] != len(docs):
            report.problems.append(f"{channel}: {len(docs) - report.present[channel]} "
                                   "documents never arrived")
        for what in ("corrupt", "duplicates"):
            if getattr(report, what)[channel]:
                report.problems.append(f"{channel}: {getattr(report, what)[channel]} {what}")
    verified = cluster.gateway("verify", check=False)
    report.verify_ok = verified.returncode == 0
    if not report.verify_ok:
        report.problems.append(f"gateway verify: {verified.stdout}{verified.stderr}")
