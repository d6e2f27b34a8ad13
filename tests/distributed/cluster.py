"""A gateway cluster on one machine: a shared data directory (the database), an archive
(S3 or a folder), a Redis broker and any number of ``gateway worker`` processes.

Used by the worker tests, the distributed chaos test and ``bench/bench_scale.py``. Workers
are real processes started with ``python -m gateway worker`` (through
``chaos_worker.py`` when they should kill themselves at random points).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.chaos.harness import _toml as toml_value

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "electricity-household.json"
CHAOS_WORKER = Path(__file__).resolve().parent / "chaos_worker.py"


def invoices(count: int, prefix: str = "Q") -> list[dict[str, Any]]:
    base = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    return [{**base, "number": f"{prefix}-{i:06d}"} for i in range(count)]


class Cluster:
    def __init__(self, work: Path, *, queue_url: str | None, archive_url: str | None = None,
                 env: dict[str, str] | None = None, plugins: Sequence[str] = ("json", "folder"),
                 formats: Sequence[str] = ("json",), channels: Sequence[dict[str, Any]] = (),
                 lease_seconds: float = 3.0, sweep_seconds: float = 1.0,
                 store_url: str | None = None) -> None:
        self.work = work
        self.data = work / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.folder = work / "folder-receiver"
        self.env = {**os.environ, **(env or {}), "GATEWAY_DATA_DIR": str(self.data),
                    "GATEWAY_LOAD_PLUGINS": ",".join(sorted(set(plugins))),
                    "GATEWAY_LOG_LEVEL": "warning", "COLUMNS": "200",
                    "PYTHONPATH": str(REPO)}
        self.env.pop("GATEWAY_CONFIG", None)
        config = ["[dispatcher]", "base_delay = 0.05", "max_delay = 0.5",
                  "max_attempts = 1000", f"lease_seconds = {lease_seconds}",
                  # the test SFTP server is on loopback, which a customer's destination
                  # may reach only when the operator allows it
                  "[network]", 'allow = ["127.0.0.1/32"]']
        if archive_url:
            config += ["[archive]", f"url = {toml_value(archive_url)}"]
        if queue_url:
            config += ["[queue]", f"url = {toml_value(queue_url)}",
                       f"sweep_seconds = {sweep_seconds}",
                       f"render_lease_seconds = {lease_seconds}"]
        if store_url:
            config += ["[store]", f"url = {toml_value(store_url)}"]
        (self.data / "gateway.toml").write_text("\n".join(config) + "\n", encoding="utf-8")
        channels = list(channels) or [{"channel": "folder", "name": "box",
                                       "settings": {"path": str(self.folder)}}]
        lines = ['[[customer]]', 'id = "100234567"', 'name = "Jānis Bērziņš"',
                 'language = "lv"', f"formats = {toml_value(list(formats))}",
                 'match = ["C-100234567"]']
        for pref in channels:
            lines += ["[[customer.channels]]"] + [f"{k} = {toml_value(v)}"
                                                  for k, v in pref.items()]
        (work / "customers.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.workers: list[subprocess.Popen[bytes]] = []
        self._started_with: dict[int, dict[str, Any]] = {}
        self.gateway("customer", "import", str(work / "customers.toml"))

    # ------------------------------------------------------------------ commands

    def gateway(self, *args: str, check: bool = True,
                timeout: float = 600) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "gateway", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"gateway {' '.join(args)}: exit {proc.returncode}\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def write_batch(self, count: int, prefix: str = "Q", files: int = 1) -> list[Path]:
        inbox = self.work / "inbox"
        inbox.mkdir(exist_ok=True)
        all_invoices = invoices(count, prefix)
        paths = []
        for n in range(files):
            part = all_invoices[n::files]
            path = inbox / f"{prefix}-{n}.json"
            path.write_text(json.dumps({"invoices": part}), encoding="utf-8")
            paths.append(path)
        return paths

    def start_worker(self, concurrency: int = 1, *, beat: bool = True,
                     chaos: float = 0.0, seed: int = 0, queues: str = "render,deliver",
                     log_name: str | None = None) -> subprocess.Popen[bytes]:
        args = ["worker", f"--concurrency={concurrency}", f"--queues={queues}",
                "--beat" if beat else "--no-beat"]
        if chaos:
            command = [sys.executable, str(CHAOS_WORKER), str(chaos), str(seed), "--", *args]
        else:
            command = [sys.executable, "-m", "gateway", *args]
        log = (self.work / (log_name or f"worker-{len(self.workers)}.log")).open("ab")
        proc = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.workers.append(proc)
        self._started_with[proc.pid] = {"concurrency": concurrency, "beat": beat,
                                        "chaos": chaos, "seed": seed, "queues": queues,
                                        "log_name": log_name}
        return proc

    def supervise(self) -> int:
        """Start again each worker that exited on its own, as the systemd unit in
        docs/scale.md does (``Restart=always``); the number started again.

        Celery's Redis transport can end a worker with "Unrecoverable error" when the
        broker goes away while the worker gives unacknowledged messages back (seen with
        kombu 5.7); what it held stays due in the database and the sweep queues it again.
        """
        restarted = 0
        for proc in list(self.workers):
            if proc.poll() is None:
                continue
            self.workers.remove(proc)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its orphaned pool, if any
            self.start_worker(**self._started_with.pop(proc.pid))
            restarted += 1
        return restarted

    def worker_children(self, proc: subprocess.Popen[bytes]) -> list[int]:
        """The pool processes of one worker (its children, beat included)."""
        try:
            text = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def stop_workers(self, *, kill: bool = False) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                # The whole session: the pool and beat processes go too.
                os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        for proc in self.workers:
            # A pool process whose parent was killed is orphaned; end the group for sure.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.workers.clear()

    # ------------------------------------------------------------------ state

    def counts(self) -> dict[str, int]:
        proc = self.gateway("queue", "--json", check=False)
        if proc.returncode != 0:
            raise AssertionError(f"gateway queue: {proc.stdout}{proc.stderr}")
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        return dict(data["database"])

    def wait_until_done(self, invoices: int, deliveries: int, timeout: float = 300, *,
                        supervise: bool = False) -> dict[str, int]:
        """Until every render job is done and every delivery delivered (or timeout).

        A look that meets a dropped database connection (the chaos round drops them)
        is repeated; one that ends in a traceback is a failure. ``supervise`` starts
        again a worker that exited on its own meanwhile (see :meth:`supervise`)."""
        deadline = time.monotonic() + timeout
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            if supervise:
                self.supervise()
            try:
                counts = self.counts()
            except AssertionError as exc:
                if "Traceback" in str(exc):
                    raise
                time.sleep(1.0)
                continue
            if counts.get("render done", 0) >= invoices and \
                    counts.get("delivery delivered", 0) >= deliveries:
                return counts
            time.sleep(1.0)
        raise AssertionError(f"not done after {timeout}s: {counts}")
