"""Distributed chaos: three Celery workers on Redis + S3 (+ the configured store), killed
and restarted while they render and deliver to a folder, an SFTP server and an SMTP
server.

Faults, from inside and outside:

* pool processes SIGKILL themselves at random crash-safety points (while rendering,
  after archiving, after leasing a delivery, after sending but before recording it),
* a whole worker (parent, pool and beat) is SIGKILLed and a new one started,
* one pool process of a worker is SIGKILLed from outside at a random moment,
* the SMTP server kills the pool process that sent a message after storing it, before
  that process reads the "250" (the one window in which SMTP cannot prevent a copy),
* Redis is killed and restarted without persistence (every queued message is lost),
* on PostgreSQL: every connection to the store's database is dropped by the server
  (``pg_terminate_backend``) at random moments, every 0.3-2 s, wherever the workers, the
  sweep and the test's own ``gateway push`` are, and the server is once stopped
  (``-m immediate``) and started again.

Then the process faults stop, two clean workers finish the work (connections still
dropped under them), and everything is counted at
the receivers: every document of every invoice present once, intact, and published once
(the SFTP server's log of renames), nothing left half-written, ``gateway verify`` clean.
E-mail (an aiosmtpd server, two recipients) is counted per invoice and recipient: none
missing, attachments intact, and a second copy allowed only with the first copy's
Message-ID, i.e. re-sent after the server's "250" was lost with the worker that read it;
those are reported apart, as ``email_resent_same_message_id``.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.harness import RECIPIENTS, Children, MailSink, Sshd, Trigger, Verdict, free_port
from tests.distributed.cluster import Cluster
from tests.distributed.services import RedisServer, S3Server

DB_FAULTS = ("drop-db-connections", "restart-postgres")


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
    db_connections_dropped: int = 0
    pushes_refused: int = 0  # a push that met a dropped connection, retried as a biller would
    email_resent_same_message_id: int = 0  # the SMTP "250" window: allowed, counted apart
    killed_by_smtp_server: int = 0  # pool processes killed between storing and "250"
    verify_ok: bool = False
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def run_distributed_round(work: Path, *, redis: RedisServer, s3: S3Server, bucket: str,
                          seed: int, invoices: int = 30, chaos_seconds: float = 20.0,
                          self_kill_probability: float = 0.08, workers: int = 3,
                          store_url: str | None = None,
                          postgres: Any = None) -> DistributedReport:
    """One round; ``postgres`` (a :class:`tests.pg_cluster.PostgresCluster` serving
    ``store_url``) adds the database faults."""
    from aiosmtpd.controller import Controller

    started = time.monotonic()
    rng = random.Random(seed)
    report = DistributedReport(seed, invoices)
    sshd = Sshd(work / "sshd")
    sshd.start()
    # The chaos harness's mail receiver; armed, it kills the sending pool process after
    # storing a message, before that process reads the "250".
    senders = _SendingPoolProcess()
    sink = _Sink(senders, Trigger())
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    database = DatabaseFaults(postgres, store_url) if postgres and store_url else None
    chaos_log = work / "self-kills.log"
    try:
        cluster = Cluster(
            work / "cluster", queue_url=redis.url, archive_url=f"s3://{bucket}/chaos{seed}",
            env={**s3.env(), "GATEWAY_CHAOS_LOG": str(chaos_log)},
            plugins=("json", "csv", "folder", "sftp", "email"), formats=("json", "csv"),
            channels=[{"channel": "folder", "name": "box",
                       "settings": {"path": str(work / "cluster" / "folder-receiver")}},
                      {"channel": "sftp-push", "name": "erp", "settings": sshd.settings()},
                      {"channel": "email", "name": "mail", "settings": {
                          "to": [RECIPIENTS[0]], "cc": [RECIPIENTS[1]],
                          "host": "127.0.0.1", "port": smtp.port, "security": "none",
                          "from_address": "Rēķini <rekini@example.lv>", "timeout": 20}}],
            lease_seconds=2.0, sweep_seconds=1.0, store_url=store_url)
        senders.cluster = cluster
        faults: dict[str, int] = {}
        for n in range(workers):
            cluster.start_worker(1, chaos=self_kill_probability, seed=seed * 100 + n)
        batch = cluster.write_batch(invoices, prefix=f"D{seed}", files=3)
        deadline = time.monotonic() + chaos_seconds
        pushed = 0
        forced = ["kill-pool-process", "restart-redis", "kill-worker"]
        kinds = ["kill-worker", "kill-pool-process", "restart-redis", "kill-pool-process",
                 "smtp-data", "none"]
        if database:
            forced.append("restart-postgres")  # dropped connections: database.start()
            database.start(random.Random(seed + 1))
        rng.shuffle(forced)
        # Armed from the start, while e-mail is still to come; again at random later.
        sink.trigger.arm("smtp-data", rng.randint(1, 8))
        faults["smtp-data"] = 1
        # The round lasts chaos_seconds, and long enough for each kind of fault once.
        while time.monotonic() < deadline or forced:
            if pushed < len(batch):
                _push(cluster, report, str(batch[pushed]))
                pushed += 1
            # Each kind of fault at least once, then at random.
            fault = forced.pop() if forced else rng.choice(kinds)
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
            elif fault == "smtp-data":
                sink.trigger.arm("smtp-data", rng.randint(1, 4))
            elif fault == "restart-postgres" and database:
                database.restart(down_seconds=rng.uniform(0.2, 1.5))
            faults[fault] = faults.get(fault, 0) + 1
            time.sleep(rng.uniform(0.3, 1.5))
        for path in batch[pushed:]:
            _push(cluster, report, str(path))
        sink.trigger.disarm()
        report.faults = faults
        report.killed_by_smtp_server = senders.kills_by["smtp-data"]
        # Faults over: the chaos workers go, two clean workers finish what is left.
        cluster.stop_workers(kill=True)
        if chaos_log.exists():
            for line in chaos_log.read_text().splitlines():
                point = line.split()[-1]
                report.self_kills[point] = report.self_kills.get(point, 0) + 1
        # Every invoice is pushed again, as a billing system retries: "unchanged".
        _push(cluster, report, *map(str, batch))
        cluster.start_worker(1)
        cluster.start_worker(1)
        try:
            cluster.wait_until_done(invoices, invoices * 3, timeout=240)  # 3 channels
        except AssertionError as exc:
            report.problems.append(str(exc))
        if database:
            database.stop()
            report.faults["drop-db-connections"] = database.drops
            report.db_connections_dropped = database.dropped
        cluster.stop_workers()
        _count(cluster, sshd, report, invoices)
        _count_email(cluster, sink, report)
    finally:
        if database:
            database.stop()
        smtp.stop()
        sshd.stop()
    report.seconds = round(time.monotonic() - started, 1)
    return report


class _SendingPoolProcess(Children):
    """The SMTP receiver's victim: the pool process on the other end of the session."""

    def __init__(self) -> None:
        super().__init__()
        self.cluster: Cluster | None = None
        self.peer_port = 0

    def kill_all(self, why: str) -> None:
        if self.cluster is None:
            return
        pools = [pid for proc in self.cluster.workers
                 for pid in self.cluster.worker_children(proc)]
        pid = _owner_of_local_port(self.peer_port, pools)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                self.kills_by[why] += 1


class _Sink(MailSink):
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # No await between here and the kill: the port still names this session's client.
        assert isinstance(self.children, _SendingPoolProcess)
        self.children.peer_port = int(session.peer[1])
        return await super().handle_DATA(server, session, envelope)


def _owner_of_local_port(port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the TCP socket bound to 127.0.0.1:``port``."""
    inodes = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                        return pid
    return None


class DatabaseFaults:
    """The server side of lost connections: what a failover, an operator's
    ``pg_terminate_backend`` or an idle-connection killer does to the workers."""

    def __init__(self, postgres: Any, store_url: str) -> None:
        self.postgres = postgres
        self.database = store_url.rsplit("/", 1)[1].split("?", 1)[0]
        self.drops = 0  # times every connection was dropped
        self.dropped = 0  # connections dropped in all
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, rng: random.Random, every: tuple[float, float] = (0.3, 2.0)) -> None:
        """Drop every connection at random moments until :meth:`stop`."""
        def run() -> None:
            while not self._stop.wait(rng.uniform(*every)):
                with contextlib.suppress(Exception):  # the server may be restarting
                    self.dropped += self.drop_connections()
                    self.drops += 1

        self._thread = threading.Thread(target=run, name="drop-db-connections", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def drop_connections(self) -> int:
        """End every session on the store's database; how many there were."""
        import psycopg

        with psycopg.connect(self.postgres.url(), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()", (self.database,)).fetchall()
        return sum(1 for (ended,) in rows if ended)

    def restart(self, down_seconds: float) -> None:
        self.postgres.restart(down_seconds=down_seconds)


def _push(cluster: Cluster, report: DistributedReport, *paths: str, tries: int = 60) -> None:
    """``gateway push --queue`` as a billing system runs it: a push that met a dropped
    connection or a restarting server says so in one line and is pushed again."""
    names = " ".join(Path(p).name for p in paths)
    output = ""
    for _ in range(tries):
        proc = cluster.gateway("push", "--queue", *paths, check=False)
        if proc.returncode == 0:
            return
        output = proc.stdout + proc.stderr
        if "Traceback" in output:
            report.problems.append(f"push {names}: traceback: {output[-800:]}")
            return
        report.pushes_refused += 1
        time.sleep(0.5)
    report.problems.append(f"push {names} kept failing: {output[-800:]}")


@contextlib.contextmanager
def _gateway(cluster: Cluster) -> Iterator[Any]:
    """The cluster's gateway in this process, as an auditor reads it (S3 reached with
    the cluster's credentials, put back afterwards)."""
    from gateway.core.config import load_config
    from gateway.core.pipeline import Gateway

    old_env = dict(os.environ)
    os.environ.update({k: v for k, v in cluster.env.items() if k.startswith("AWS_")})
    gw = Gateway(load_config(cluster.data))
    try:
        yield gw
    finally:
        gw.close()
        os.environ.clear()
        os.environ.update(old_env)


def _count(cluster: Cluster, sshd: Sshd, report: DistributedReport, invoices: int) -> None:
    with _gateway(cluster) as gw:
        records = gw.store.list_invoices(limit=invoices * 2)
        report.invoices_stored = len(records)
        if len(records) != invoices:
            report.problems.append(f"{invoices - len(records)} invoices lost")
        undelivered = [d for d in gw.store.deliveries() if d.status != "delivered"]
        report.deliveries_not_delivered = len(undelivered)
        if undelivered:
            report.problems.append(f"{len(undelivered)} deliveries not delivered")
        docs = {d.filename: d.sha256 for r in records for d in gw.store.documents(r.id)}
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


def _count_email(cluster: Cluster, sink: MailSink, report: DistributedReport) -> None:
    """Per invoice and recipient: one message with the invoice's documents, under the
    Message-ID its delivery recorded; any further copy only under that same Message-ID."""
    with _gateway(cluster) as gw:
        attachments: dict[tuple[str, ...], str] = {}  # sorted sha256s -> invoice
        for record in gw.store.list_invoices(limit=report.invoices * 2):
            shas = tuple(sorted(d.sha256 for d in gw.store.documents(record.id)))
            attachments[shas] = record.id
        # the Message-ID each invoice's e-mail delivery recorded in its receipt
        recorded = {d.invoice_id: d.receipt_id.removeprefix("email:")
                    for d in gw.store.deliveries()
                    if d.receipt_id and d.receipt_id.startswith("email:")}
    copies: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    corrupt = 0
    for message_id, rcpt, shas in sink.received:
        invoice_id = attachments.get(shas)
        if invoice_id is None:
            corrupt += 1
            continue
        copies[(invoice_id, rcpt)].append(message_id)
    expected = {(invoice_id, rcpt) for invoice_id in attachments.values()
                for rcpt in RECIPIENTS}
    report.expected["email"] = len(expected)
    report.present["email"] = len(expected & set(copies))
    report.corrupt["email"] = corrupt
    report.temp_left["email"] = 0
    report.email_resent_same_message_id = sum(len(ids) - len(set(ids))
                                              for ids in copies.values())
    # A copy under another Message-ID is a second, independent send: a true duplicate.
    report.duplicates["email"] = sum(len(set(ids)) - 1 for ids in copies.values())
    wrong_id = sum(1 for (invoice_id, _), ids in copies.items()
                   if recorded.get(invoice_id) not in ids)
    if lost := len(expected - set(copies)):
        report.problems.append(f"email: {lost} (invoice, recipient) never arrived")
    for what in ("corrupt", "duplicates"):
        if getattr(report, what)["email"]:
            report.problems.append(f"email: {getattr(report, what)['email']} {what}")
    if wrong_id:
        report.problems.append(f"email: {wrong_id} arrived under a Message-ID that no "
                               "delivery recorded")
