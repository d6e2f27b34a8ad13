"""Benchmark: SFTP push and pull of N invoices (default 1,000) on 127.0.0.1.

Push: the gateway delivers every invoice's document to a real OpenSSH sshd, measured
end to end through the dispatcher (outbox, attempts, receipts, events) and through the
sftp-push channel alone; the yardstick is OpenSSH's ``sftp -b`` uploading the same files
to the same server over one connection.

Pull: the gateway's mailbox server (``gateway serve sftp``, its own process) is read by
paramiko's client and by OpenSSH's ``sftp -b``; the yardstick is OpenSSH's sftp
downloading the same files from OpenSSH's own sshd.

Peak memory is the peak resident set of the process doing the measured work (the
gateway for push, the client and the gateway server for pull), reset per phase.

    python3 bench/bench_sftp.py [--count 1000]

Prints a table and writes bench/results/sftp.json.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.core import Customer, Dispatcher, Gateway, load_config, load_invoice  # noqa: E402
from gateway.plugins import get_plugin_manager  # noqa: E402

CUSTOMER = "100234567"


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f",
                    str(path)], check=True)
    return path


def reset_peak(pid: int | str = "self") -> None:
    """Linux: make VmHWM (peak RSS) restart from the current RSS."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/clear_refs", "w") as fh:
        fh.write("5")


def peak_mb(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(args: list[str]) -> tuple[float, float]:
    """Run a client to completion; (seconds, its peak RSS in MB).

    The peak is sampled from /proc while it runs: wait4's ru_maxrss would include the
    forked Python parent's memory from before exec.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while proc.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        error = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"{args[0]} failed: {error}")
    return elapsed, peak


def sftp_args(key: Path, port: int, known_hosts: Path, batch: Path, target: str) -> list[str]:
    return ["sftp", "-q", "-b", str(batch), "-i", str(key), "-P", str(port),
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", target]


class Sshd:
    def __init__(self, root: Path, client_key: Path) -> None:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.root = root
        self.port = free_port()
        self.host_key = keygen(root / "host_ed25519")
        (root / "authorized_keys").write_text(Path(f"{client_key}.pub").read_text())
        config = root / "sshd_config"
        config.write_text(f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
                          f"PidFile {root}/sshd.pid\nAuthorizedKeysFile {root}/authorized_keys\n"
                          "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
                          "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n")
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                                     stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        self.pub = Path(f"{self.host_key}.pub").read_text().strip()
        self.known_hosts = root / "known_hosts"
        kind, b64 = self.pub.split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {kind} {b64}\n")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def row(name: str, files: int, size: int, seconds: float, peak: float,
        note: str = "") -> dict[str, Any]:
    return {"name": name, "files": files, "mb": round(size / 1e6, 3),
            "seconds": round(seconds, 3), "files_per_s": round(files / seconds, 1),
            "mb_per_s": round(size / 1e6 / seconds, 2), "peak_rss_mb": round(peak, 1),
            "note": note}


# --------------------------------------------------------------------------- phases


def make_gateway(data_dir: Path, channels: list[dict[str, Any]]) -> Gateway:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "gateway.toml").write_text(
        '[dispatcher]\nbase_delay = 0\n\n[network]\nallow = ["127.0.0.1/32"]\n')
    gw = Gateway(load_config(data_dir), get_plugin_manager())
    customer = Customer.model_validate({"id": CUSTOMER, "name": "Bench", "formats": ["json"],
                                        "match": ["C-100234567"], "channels": channels})
    gw.check_customer(customer)
    gw.store.put_customer(customer, actor="bench")
    return gw


def push_invoices(gw: Gateway, count: int) -> None:
    base = json.loads((REPO / "examples" / "electricity-household.json").read_text())
    for i in range(count):
        data = copy.deepcopy(base)
        data["number"] = f"B2611-{i:06d}"
        result = gw.push(load_invoice(data))
        if result.status != "accepted":
            raise RuntimeError(f"push failed: {result.error}")


def documents(gw: Gateway) -> list[tuple[str, bytes]]:
    out = []
    for record in gw.store.list_invoices(limit=10**9):
        for doc in gw.store.documents(record.id):
            out.append((doc.filename, gw.archive.get(doc.sha256)))
    return out


def bench_push(work: Path, count: int, key: Path, sshd: Sshd) -> list[dict[str, Any]]:
    results = []
    upload = work / "push-gateway"
    upload.mkdir()
    settings = {"host": "127.0.0.1", "port": sshd.port, "user": "root", "host_key": sshd.pub,
                "private_key": str(key), "directory": str(upload)}
    gw = make_gateway(work / "data-push", [{"channel": "sftp-push", "settings": settings}])
    push_invoices(gw, count)
    docs = documents(gw)
    size = sum(len(c) for _, c in docs)

    reset_peak()
    start = time.perf_counter()
    summary = Dispatcher(gw).run()
    elapsed = time.perf_counter() - start
    assert summary.delivered == count, summary
    assert len(list(upload.iterdir())) == count
    results.append(row("push: gateway dispatcher → sshd (end to end)", count, size, elapsed,
                       peak_mb(), "outbox lease, attempt, receipt and event per invoice"))

    # The channel alone, as the dispatcher calls it, minus the database bookkeeping.
    from gateway.core import Bundle, DeliveryState, Document

    channel = gw.plugins.channels.get("sftp-push")
    upload2 = work / "push-channel"
    upload2.mkdir()
    s = channel.Settings.model_validate({**settings, "directory": str(upload2)})
    inv = load_invoice(json.loads((REPO / "examples" / "electricity-household.json").read_text()))
    bundles = [Bundle(invoice_id=str(i), invoice=inv, customer_id=CUSTOMER, customer_name="B",
                      language="lv", documents=(Document("json", "application/json", name,
                                                         content),),
                      idempotency_key=f"bench:{i}", ) for i, (name, content) in enumerate(docs)]
    reset_peak()
    start = time.perf_counter()
    with channel.session() as session:
        for b in bundles:
            channel.deliver(b, s, DeliveryState({}, lambda _d: None), session=session)
    elapsed = time.perf_counter() - start
    results.append(row("push: sftp-push channel only → sshd", count, size, elapsed,
                       peak_mb(), f"{channel.connections_opened - 1} connection(s)"))

    # Yardstick: OpenSSH's client uploading the same files over one connection.
    local = work / "files"
    local.mkdir()
    for name, content in docs:
        (local / name).write_bytes(content)
    upload3 = work / "push-openssh"
    upload3.mkdir()
    batch = work / "put.batch"
    batch.write_text(f"cd {upload3}\nlcd {local}\nput *\n")
    elapsed, peak = run_child(sftp_args(key, sshd.port, sshd.known_hosts, batch,
                                        "root@127.0.0.1"))
    assert len(list(upload3.iterdir())) == count
    results.append(row("push yardstick: OpenSSH sftp -b put → sshd", count, size, elapsed,
                       peak, "no temporary name, no content check"))
    gw.close()
    return results


def bench_pull(work: Path, count: int, key: Path, sshd: Sshd) -> list[dict[str, Any]]:
    import paramiko

    results = []
    pub = Path(f"{key}.pub").read_text().strip()
    data_dir = work / "data-pull"
    gw = make_gateway(data_dir, [{"channel": "sftp-mailbox",
                                  "settings": {"authorized_keys": [pub]}}])
    push_invoices(gw, count)
    docs = documents(gw)
    size = sum(len(c) for _, c in docs)
    reset_peak()
    start = time.perf_counter()
    summary = Dispatcher(gw).run()
    elapsed = time.perf_counter() - start
    assert summary.delivered == count, summary
    results.append(row("mailbox: publish via dispatcher (no bytes copied)", count, size,
                       elapsed, peak_mb(), "index rows only; bytes stay in the archive"))
    gw.close()

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from gateway.cli import main; main()", "--data-dir",
         str(data_dir), "serve", "sftp", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        host_key = paramiko.PKey.from_path(data_dir / "sftp" / "host_key")
        known = work / "known_hosts_gateway"
        known.write_text(f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n")

        # paramiko client
        reset_peak()
        reset_peak(server.pid)
        start = time.perf_counter()
        ssh = paramiko.SSHClient()
        ssh.load_host_keys(str(known))
        ssh.connect("127.0.0.1", port=port, username=CUSTOMER, key_filename=str(key),
                    look_for_keys=False, allow_agent=False)
        sftp = ssh.open_sftp()
        got = 0
        for name in sftp.listdir("/outbox"):
            with sftp.open(f"/outbox/{name}") as fh:
                fh.prefetch()
                got += len(fh.read())
        ssh.close()
        elapsed = time.perf_counter() - start
        assert got == size, (got, size)
        results.append(row("pull: paramiko client ← gateway mailbox", count, size, elapsed,
                           peak_mb(), f"gateway server peak {peak_mb(server.pid):.1f} MB"))

        # OpenSSH sftp client against the gateway
        target = work / "pull-openssh-gateway"
        target.mkdir()
        batch = work / "get.batch"
        batch.write_text(f"lcd {target}\nget /outbox/*\n")
        reset_peak(server.pid)
        elapsed, peak = run_child(sftp_args(key, port, known, batch, f"{CUSTOMER}@127.0.0.1"))
        assert len(list(target.iterdir())) == count
        results.append(row("pull: OpenSSH sftp -b get ← gateway mailbox", count, size, elapsed,
                           peak, f"gateway server peak {peak_mb(server.pid):.1f} MB"))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(20)

    # Yardstick: the same files from OpenSSH's own server.
    source = work / "files"
    target = work / "pull-openssh-sshd"
    target.mkdir()
    batch = work / "get-sshd.batch"
    batch.write_text(f"lcd {target}\nget {source}/*\n")
    elapsed, peak = run_child(sftp_args(key, sshd.port, sshd.known_hosts, batch,
                                        "root@127.0.0.1"))
    assert len(list(target.iterdir())) == count
    results.append(row("pull yardstick: OpenSSH sftp -b get ← sshd", count, size, elapsed,
                       peak))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "sftp.json")
    args = parser.parse_args()
    for tool in ("sftp", "ssh-keygen", "/usr/sbin/sshd"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (Debian: openssh-client, openssh-server)")
    with tempfile.TemporaryDirectory(prefix="bench-sftp-") as tmp:
        work = Path(tmp)
        key = keygen(work / "client")
        (work / "sshd").mkdir()
        sshd = Sshd(work / "sshd", key)
        try:
            results = bench_push(work, args.count, key, sshd)
            results += bench_pull(work, args.count, key, sshd)
        finally:
            sshd.stop()
    width = max(len(r["name"]) for r in results)
    print(f"{'':{width}}  {'files':>6} {'MB':>7} {'s':>7} {'files/s':>8} {'MB/s':>7} "
          f"{'peak MB':>8}")
    for r in results:
        print(f"{r['name']:{width}}  {r['files']:>6} {r['mb']:>7.2f} {r['seconds']:>7.2f} "
              f"{r['files_per_s']:>8.1f} {r['mb_per_s']:>7.2f} {r['peak_rss_mb']:>8.1f}"
              + (f"  ({r['note']})" if r["note"] else ""))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "benchmark": "sftp", "count": args.count, "python": platform.python_version(),
        "machine": platform.machine(), "cpus": os.cpu_count(),
        "openssh": subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip(),
        "results": results}, indent=2) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
