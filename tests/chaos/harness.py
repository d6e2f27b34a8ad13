"""The chaos harness: push a batch to real receivers while killing the gateway.

One *round* (one seed) builds a data directory whose customer gets every invoice by
three channels at once: the folder channel (a directory), e-mail (an aiosmtpd server
on 127.0.0.1, to two recipients) and sftp-push (OpenSSH's sshd on 127.0.0.1). It then
runs ``gateway push`` / ``gateway push --no-deliver`` / ``gateway deliver`` (sometimes
two deliverers at once) as subprocesses and kills them with SIGKILL:

* at a random moment (a timer),
* at a chosen point inside the gateway (see ``runner.py``: while rendering, after
  archiving, between recording and sending, after sending but before recording, ...),
* from the SMTP server during the conversation (after RCPT, or after the message was
  stored but before the client read the "250"),
* from a watcher that sees an upload's temporary file appear (during an SFTP upload or
  a folder write).

Then it reruns the gateway without faults until the outbox is empty and counts at the
receivers: every (invoice, channel, recipient) present, how many times it arrived,
whether every visible file is complete, and ``gateway verify``.
"""

from __future__ import annotations

import collections
import contextlib
import email
import email.policy
import getpass
import hashlib
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().parent / "runner.py"
EXAMPLE = REPO / "examples" / "electricity-household.json"
SSHD = "/usr/sbin/sshd"
# The separate sftp-server (not internal-sftp) so that its log of every open and rename
# can go to a file: that log is how the receiver counts what was published.
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
POINTS = ("render", "archive", "accepted", "claimed", "state", "sent", "rename")
CHANNEL_PLUGINS = {"folder": "folder", "email": "email", "sftp-push": "sftp"}
RECIPIENTS = ("janis@example.lv", "gramatvediba@example.lv")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def available_channels() -> list[str]:
    """The chaos channels whose plugins are installed right now (others may land later)."""
    from gateway.plugins import get_plugin_manager

    names = set(get_plugin_manager().channels.names())
    wanted = [c for c in CHANNEL_PLUGINS if c in names]
    if "sftp-push" in wanted and not (Path(SSHD).exists() and Path(SFTP_SERVER).exists()
                                      and _which("ssh-keygen")):
        wanted.remove("sftp-push")
    return wanted


def _which(name: str) -> bool:
    return any((Path(p) / name).exists() for p in os.environ.get("PATH", "").split(":"))


# --------------------------------------------------------------------------- receivers


class Children:
    """The gateway processes alive right now, so that any receiver can kill them."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self.kills_by: collections.Counter[str] = collections.Counter()

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.add(proc)

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.discard(proc)

    def kill_all(self, why: str) -> None:
        with self._lock:
            for proc in self._procs:
                if proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGKILL)
                    self.kills_by[why] += 1


class Trigger:
    """Fires once, on the n-th event of a kind, when armed."""

    def __init__(self) -> None:
        self.kind: str | None = None
        self.countdown = 0
        self._lock = threading.Lock()

    def arm(self, kind: str, countdown: int) -> None:
        with self._lock:
            self.kind, self.countdown = kind, countdown

    def disarm(self) -> None:
        with self._lock:
            self.kind = None

    def fire(self, kind: str) -> bool:
        with self._lock:
            if self.kind != kind:
                return False
            self.countdown -= 1
            if self.countdown > 0:
                return False
            self.kind = None
            return True


class MailSink:
    """An aiosmtpd handler that keeps what arrived, and may kill the sending gateway."""

    def __init__(self, children: Children, trigger: Trigger) -> None:
        self.children = children
        self.trigger = trigger
        self.received: list[tuple[str, str, tuple[str, ...]]] = []  # (message-id, rcpt, shas)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if self.trigger.fire("smtp-rcpt"):
            self.children.kill_all("smtp-rcpt")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        shas = tuple(sorted(
            hashlib.sha256(part.get_payload(decode=True) or b"").hexdigest()
            for part in message.walk() if part.get_filename()))
        message_id = str(message.get("Message-ID", "")).strip().strip("<>")
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append((message_id, rcpt.lower(), shas))
        # Stored, and now the client dies before it reads the "250": the one window in
        # which SMTP itself cannot prevent a second copy.
        if self.trigger.fire("smtp-data"):
            self.children.kill_all("smtp-data")
        return "250 OK queued"


@dataclass
class Sshd:
    root: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.upload = self.root / "upload"
        self.upload.mkdir(exist_ok=True)
        self.log = self.root / "sshd.log"
        for name in ("host", "client"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f",
                            str(self.root / name)], check=True)
        (self.root / "authorized_keys").write_text((self.root / "client.pub").read_text())
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.port = free_port()
        config = self.root / "sshd_config"
        config.write_text(f"""\
Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.root / 'host'}
PidFile {self.root / 'sshd.pid'}
AuthorizedKeysFile {self.root / 'authorized_keys'}
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp {SFTP_SERVER} -e -l VERBOSE 2>>{self.root / 'sftp.log'}
LogLevel VERBOSE
MaxStartups 100
MaxSessions 100
""")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab"))  # noqa: SIM115
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), 0.5):
                return
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not start; see {self.log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def settings(self) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": self.port, "user": getpass.getuser(),
                "host_key": (self.root / "host.pub").read_text().strip(),
                "private_key": str(self.root / "client"), "directory": str(self.upload),
                "timeout": 20}

    def renames(self) -> collections.Counter[str]:
        """How many times each final name was published (renamed into place)."""
        counts: collections.Counter[str] = collections.Counter()
        log = self.root / "sftp.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        for match in re.finditer(r'rename old "[^"]*" new "([^"]*)"', text):
            counts[Path(match.group(1)).name] += 1
        return counts


class UploadWatcher:
    """Kills the gateway when a temporary upload file shows up in a receiver directory."""

    def __init__(self, children: Children, trigger: Trigger, directories: list[Path]) -> None:
        self.children, self.trigger, self.directories = children, trigger, directories
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        seen: set[str] = set()
        while not self.stop.wait(0.003):
            if self.trigger.kind != "upload":
                continue
            for directory in self.directories:
                with contextlib.suppress(FileNotFoundError):
                    for entry in os.scandir(directory):
                        if entry.name.startswith(".") and entry.name not in seen:
                            seen.add(entry.name)
                            if self.trigger.fire("upload"):
                                self.children.kill_all("upload")


# --------------------------------------------------------------------------- the round


class Verdict:
    """What a chaos round's report says: it passed when it found no problems."""

    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}  # type: ignore[call-overload]


@dataclass
class RoundReport(Verdict):
    seed: int
    invoices: int
    channels: list[str]
    runs: int = 0
    kills: int = 0
    kills_by: dict[str, int] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)  # (invoice, recipient) per channel
    unique: dict[str, int] = field(default_factory=dict)
    received: dict[str, int] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    corrupt: dict[str, int] = field(default_factory=dict)  # visible but not the archived bytes
    temp_left: dict[str, int] = field(default_factory=dict)  # hidden temporary names left
    invoices_stored: int = 0
    deliveries_not_delivered: int = 0
    verify_ok: bool = False
    rejected: int = 0
    tracebacks: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


def _invoices(count: int, seed: int) -> list[dict[str, Any]]:
    base = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    out = []
    for i in range(count):
        data = json.loads(json.dumps(base))
        data["number"] = f"CH{seed:03d}-{i:05d}"
        out.append(data)
    return out


class Round:
    def __init__(self, workdir: Path, *, seed: int, invoices: int = 60, kills: int = 6,
                 files: int = 3, channels: list[str] | None = None,
                 lease_seconds: float = 1.5, log: Any = None,
                 store_url: str | None = None) -> None:
        self.work = workdir
        self.store_url = store_url  # None: the embedded SQLite store in the data dir
        self.seed = seed
        self.rng = random.Random(seed)
        self.count = invoices
        self.kills_wanted = kills
        self.files = files
        self.channels = channels if channels is not None else available_channels()
        self.lease_seconds = lease_seconds
        self.data = workdir / "data"
        self.inbox = workdir / "inbox"
        self.folder = workdir / "folder-receiver"
        self.children = Children()
        self.trigger = Trigger()
        self.report = RoundReport(seed, invoices, list(self.channels))
        self.log = log or (lambda *a: None)
        self.pushed = 0
        self.typical_run = 2.0  # seconds; learnt from the runs that finish

    # ------------------------------------------------------------------ setup

    def _env(self) -> dict[str, str]:
        plugins = {"json", *(CHANNEL_PLUGINS[c] for c in self.channels)}
        env = {**os.environ, "GATEWAY_DATA_DIR": str(self.data), "COLUMNS": "200",
               "GATEWAY_LOAD_PLUGINS": ",".join(sorted(plugins)),
               "GATEWAY_LOG_LEVEL": "error"}
        env.pop("GATEWAY_STORE_URL", None)
        if self.store_url:
            env["GATEWAY_STORE_URL"] = self.store_url
        return env

    def _customer(self, smtp_port: int | None, sshd: Sshd | None) -> str:
        channels = []
        if "folder" in self.channels:
            channels.append({"channel": "folder", "name": "box",
                             "settings": {"path": str(self.folder)}})
        if "email" in self.channels:
            channels.append({"channel": "email", "name": "mail", "settings": {
                "to": [RECIPIENTS[0]], "cc": [RECIPIENTS[1]], "host": "127.0.0.1",
                "port": smtp_port, "security": "none",
                "from_address": "Rēķini <rekini@example.lv>", "timeout": 20}})
        if "sftp-push" in self.channels and sshd is not None:
            channels.append({"channel": "sftp-push", "name": "erp",
                             "settings": sshd.settings()})
        lines = ['[[customer]]', 'id = "100234567"', 'name = "Jānis Bērziņš"',
                 'language = "lv"', 'formats = ["json"]', 'match = ["C-100234567"]']
        for pref in channels:
            lines += ["[[customer.channels]]", f"channel = {_toml(pref['channel'])}",
                      f"name = {_toml(pref['name'])}", f"settings = {_toml(pref['settings'])}"]
        return "\n".join(lines) + "\n"

    def _write_batch(self) -> list[Path]:
        self.inbox.mkdir(parents=True, exist_ok=True)
        invoices = _invoices(self.count, self.seed)
        paths = []
        per_file = -(-len(invoices) // self.files)
        for i in range(self.files):
            chunk = invoices[i * per_file:(i + 1) * per_file]
            if chunk:
                path = self.inbox / f"batch-{i:02d}.json"
                path.write_text(json.dumps({"invoices": chunk}), encoding="utf-8")
                paths.append(path)
        return paths

    # ------------------------------------------------------------------ processes

    def _start(self, point: str, after: int, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, str(RUNNER), point, str(after), "--", *args],
            env=self._env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.children.add(proc)
        self.report.runs += 1
        return proc

    def _finish(self, proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, str, str]:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.children.kill_all("timeout")
            out, err = proc.communicate()
            self.report.problems.append(f"a run took longer than {timeout:.0f}s")
        self.children.discard(proc)
        text_out, text_err = out.decode(errors="replace"), err.decode(errors="replace")
        if "Traceback" in text_err or "Traceback" in text_out:
            self.report.tracebacks += 1
            self.report.problems.append(f"traceback: {text_err[-600:]}")
        if proc.returncode == -signal.SIGKILL:
            self.report.kills += 1
            point = proc.args[2] if isinstance(proc.args, list) else "none"
            if point != "none":
                self.children.kills_by[f"point:{point}"] += 1
        return proc.returncode, text_out, text_err

    def _gateway(self, *args: str, timeout: float = 600) -> tuple[int, str, str]:
        return self._finish(self._start("none", 0, *args), timeout)

    def _pending(self) -> int:
        if not self.store_url and not (self.data / "gateway.db").exists():
            return 0
        if self.store_url and not self._query(
                "SELECT 1 FROM information_schema.tables WHERE table_name = 'deliveries'"):
            return 0
        [(n,)] = self._query("SELECT count(*) FROM deliveries WHERE status != 'delivered'")
        return int(n)

    def _chaos_step(self, batch: list[Path]) -> bool:
        """One run under fire; False when there is nothing left to disturb."""
        rng = self.rng
        pending = self._pending()
        if self.pushed >= len(batch) and pending == 0:
            return False
        choices, weights = [], []
        if self.pushed < len(batch):
            # Each push takes the next file or two; earlier files go along and must
            # come out "unchanged", which is the rerun-after-a-crash path.
            self.pushed = min(len(batch), self.pushed + rng.randint(1, 2))
            files = [str(p) for p in batch[:self.pushed]]
            choices += [["push", *files], ["push", "--no-deliver", *files]]
            weights += [3, 2]
        if pending or self.pushed:
            choices += [["deliver"], ["deliver", "+"]]
            weights += [2, 2]
        command = rng.choices(choices, weights=weights)[0]
        if command[0] == "deliver" and self.pushed < len(batch) and not pending:
            command = ["push", *[str(p) for p in batch[:self.pushed]]]
        concurrent = command[-1] == "+"
        args = [a for a in command if a != "+"]
        kinds = ["timer", "point", "point"]
        if "--no-deliver" not in args:  # receivers only see processes that deliver
            if "email" in self.channels:
                kinds.append("smtp")
            if "folder" in self.channels or "sftp-push" in self.channels:
                kinds.append("upload")
        kind = rng.choice(kinds)
        point, after = "none", 0
        if kind == "point":
            point = rng.choice(POINTS)
            after = rng.randint(1, max(1, self.count // max(len(batch), 1)))
        else:
            # Aim at an event the run will really reach: a few more deliveries or
            # uploads than are waiting would let it finish untouched.
            events = max(1, min(15, (pending or self.count // max(len(batch), 1)) // 2))
            if kind == "smtp":
                self.trigger.arm(rng.choice(["smtp-rcpt", "smtp-data"]), rng.randint(1, events))
            elif kind == "upload":
                self.trigger.arm("upload", rng.randint(1, events))
        begun = time.monotonic()
        procs = [self._start(point, after, *args)]
        if concurrent:
            procs.append(self._start("none", 0, *args))
        if kind == "timer":
            # Somewhere within a typical run on this machine, start-up included.
            deadline = begun + rng.uniform(0.1, 1.0) * self.typical_run
            while time.monotonic() < deadline and any(p.poll() is None for p in procs):
                time.sleep(0.005)
            self.children.kill_all("timer")
        self.log(f"  step {args[0]}{' x2' if concurrent else ''} {kind} {point} {after}")
        for proc in procs:
            code, out, err = self._finish(proc, 300)
            if code == 0:
                self.typical_run = 0.7 * self.typical_run + 0.3 * (time.monotonic() - begun)
            if code not in (0, -signal.SIGKILL):
                # Exit code 1 from a push means a refused invoice: never expected here.
                self.report.problems.append(f"{' '.join(args[:2])} exited {code}: "
                                            f"{(err or out)[-400:]}")
        self.trigger.disarm()
        return True

    # ------------------------------------------------------------------ the round

    def run(self) -> RoundReport:
        from aiosmtpd.controller import Controller

        started = time.monotonic()
        self.work.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        (self.data / "gateway.toml").write_text(
            "[dispatcher]\nbase_delay = 0.05\nmax_delay = 0.5\nmax_attempts = 1000\n"
            f"lease_seconds = {self.lease_seconds}\n"
            '[network]\nallow = ["127.0.0.1/32"]  # the test sshd is on loopback\n',
            encoding="utf-8")
        sink = MailSink(self.children, self.trigger)
        controller = None
        sshd = None
        watcher = None
        try:
            smtp_port = None
            if "email" in self.channels:
                smtp_port = free_port()
                controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
                controller.start()
            if "sftp-push" in self.channels:
                sshd = Sshd(self.work / "sshd")
                sshd.start()
            watched = [self.folder] + ([sshd.upload] if sshd else [])
            watcher = UploadWatcher(self.children, self.trigger, watched)
            customers = self.work / "customers.toml"
            customers.write_text(self._customer(smtp_port, sshd), encoding="utf-8")
            code, out, err = self._gateway("customer", "import", str(customers))
            if code != 0:
                raise RuntimeError(f"cannot add the chaos customer: {err or out}")
            batch = self._write_batch()
            steps = 0
            while self.report.kills < self.kills_wanted and steps < self.kills_wanted * 6:
                steps += 1
                if not self._chaos_step(batch):
                    break
            self._settle(batch)
            self._count(sink, sshd)
        finally:
            if watcher is not None:
                watcher.stop.set()
            self.children.kill_all("cleanup")
            if controller is not None:
                controller.stop()
            if sshd is not None:
                sshd.stop()
        self.report.kills_by = dict(self.children.kills_by)
        self.report.seconds = round(time.monotonic() - started, 1)
        return self.report

    def _settle(self, batch: list[Path]) -> None:
        """No more faults: rerun until everything accepted is delivered."""
        self.trigger.disarm()
        code, out, err = self._gateway("push", "--no-deliver", "--json", *map(str, batch))
        statuses = collections.Counter(json.loads(line)["status"]
                                       for line in out.splitlines() if line.startswith("{"))
        self.report.rejected = statuses.get("rejected", 0)
        if code != 0 or sum(statuses.values()) != self.count:
            self.report.problems.append(f"final push: exit {code}, {dict(statuses)}: {err}")
        for _ in range(30):
            self._gateway("deliver")
            waiting = self._query("SELECT status, count(*) FROM deliveries "
                                  "WHERE status != 'delivered' GROUP BY status")
            if not waiting:
                break
            time.sleep(self.lease_seconds)  # leases of killed workers run out
        code, out, err = self._gateway("verify")
        self.report.verify_ok = code == 0
        if code != 0:
            self.report.problems.append(f"gateway verify: {err or out}")

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the store directly, past the gateway, as an auditor would."""
        if self.store_url:
            import psycopg

            with psycopg.connect(self.store_url) as conn:
                return [tuple(r) for r in conn.execute(sql.replace("?", "%s"), params)]
        db = sqlite3.connect(self.data / "gateway.db")
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def _count(self, sink: MailSink, sshd: Sshd | None) -> None:
        report = self.report
        [(stored,)] = self._query("SELECT count(*) FROM invoices")
        report.invoices_stored = stored
        if stored != self.count:
            report.problems.append(f"{self.count - stored} invoices lost")
        [(undelivered,)] = self._query(
            "SELECT count(*) FROM deliveries WHERE status != 'delivered'")
        report.deliveries_not_delivered = undelivered
        if undelivered:
            report.problems.append(f"{undelivered} deliveries not delivered")
        docs = {name: sha for name, sha in self._query("SELECT filename, sha256 FROM documents")}
        for channel, directory, temp in (("folder", self.folder, ".tmp-"),
                                         ("sftp-push", sshd.upload if sshd else None, ".")):
            if channel not in self.channels or directory is None:
                continue
            visible = {p.name: p for p in directory.iterdir() if not p.name.startswith(".")}
            report.expected[channel] = len(docs)
            report.unique[channel] = len(set(visible) & set(docs))
            report.lost[channel] = len(set(docs) - set(visible))
            report.corrupt[channel] = sum(
                1 for name, path in visible.items()
                if hashlib.sha256(path.read_bytes()).hexdigest() != docs.get(name))
            report.temp_left[channel] = sum(1 for p in directory.iterdir()
                                            if p.name.startswith(temp))
            if channel == "sftp-push" and sshd is not None:
                renames = sshd.renames()
                report.received[channel] = sum(renames.values())
                report.duplicates[channel] = sum(n - 1 for n in renames.values() if n > 1)
            else:
                # A name can appear only once in a directory, and the channel never
                # overwrites: publishing it is the rename that made it visible.
                report.received[channel] = len(visible)
                report.duplicates[channel] = 0
        if "email" in self.channels:
            expected = {}
            for invoice_id, receipt in self._query(
                    "SELECT invoice_id, receipt_id FROM deliveries WHERE channel_type = 'email'"):
                shas = tuple(sorted(sha for (sha,) in self._query(
                    "SELECT sha256 FROM documents WHERE invoice_id = ?", (invoice_id,))))
                for rcpt in RECIPIENTS:
                    expected[((receipt or "").removeprefix("email:"), rcpt)] = shas
            got = collections.Counter((mid, rcpt) for mid, rcpt, _ in sink.received)
            report.expected["email"] = len(expected)
            report.received["email"] = sum(got.values())
            report.unique["email"] = len(set(got) & set(expected))
            report.lost["email"] = len(set(expected) - set(got))
            report.duplicates["email"] = sum(n - 1 for n in got.values())
            report.corrupt["email"] = sum(1 for mid, rcpt, shas in sink.received
                                          if expected.get((mid, rcpt)) != shas)
            unknown = set(got) - set(expected)
            if unknown:
                report.problems.append(f"{len(unknown)} e-mails nobody expected")
        for channel in report.expected:
            if report.lost.get(channel):
                report.problems.append(f"{channel}: {report.lost[channel]} never arrived")
            if report.corrupt.get(channel):
                report.problems.append(f"{channel}: {report.corrupt[channel]} corrupt")


def _toml(value: Any) -> str:
    """Enough TOML for the customer file: strings, numbers, lists, inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()
                                if v is not None) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def run_round(workdir: Path, **kwargs: Any) -> RoundReport:
    return Round(workdir, **kwargs).run()
