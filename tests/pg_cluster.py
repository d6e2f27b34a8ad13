"""A throwaway PostgreSQL cluster from Debian's ``postgresql`` package, for tests and benches.

``initdb`` and ``pg_ctl`` make and start a cluster in a temporary folder, listening on a
free port on 127.0.0.1 only (other people's tests run on this machine at the same time).
PostgreSQL refuses to run as root, so as root the server runs as ``nobody`` (``setpriv``)
in a folder that user owns. Each test gets a fresh database of its own
(:meth:`PostgresCluster.new_database`); the cluster itself is started once per session.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

USER = "nobody"


def bindir() -> Path:
    """The newest installed server's binaries (``/usr/lib/postgresql/<version>/bin``)."""
    if env := os.environ.get("GATEWAY_PG_BINDIR"):
        return Path(env)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql: "
                           "install Debian's postgresql package (scripts/setup.sh does)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    def __init__(self, *, durable: bool = False) -> None:
        self.bin = bindir()
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="gateway-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam(USER)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as_user = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                             "--clear-groups", "--"]

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": str(self.root)}
        return subprocess.run([*self._as_user, *args], capture_output=True, text=True,
                              env=env, cwd=self.root, timeout=120, check=False)

    def start(self) -> None:
        made = self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "gateway",
                         "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        if made.returncode != 0:
            raise RuntimeError(f"initdb failed: {made.stderr or made.stdout}")
        for _ in range(5):  # another process may take the free port before the server
            self.port = _free_port()
            started = self._pg_ctl_start()
            if started.returncode == 0:
                return
        log = (self.root / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"pg_ctl start failed: {started.stderr}\n{log}")

    def _pg_ctl_start(self) -> subprocess.CompletedProcess[str]:
        # Tests do not survive power cuts anyway; fsync off makes each commit cheap.
        # A bench that measures durable commits keeps PostgreSQL's defaults.
        speed = "" if self.durable else (
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        return self._run(
            str(self.bin / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data),
            "-l", str(self.root / "server.log"),
            "-o", f"-c port={self.port} -c listen_addresses=127.0.0.1 "
                  f"-c unix_socket_directories={self.root} -c max_connections=300"
                  f"{speed}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://gateway@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh empty database; returns its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def restart(self, *, down_seconds: float = 0.0) -> None:
        """Stop with open connections dropped (as a server crash or failover would), stay
        down ``down_seconds``, and start again on the same port, with the same settings."""
        self._run(str(self.bin / "pg_ctl"), "stop", "-m", "immediate", "-D", str(self.data))
        time.sleep(down_seconds)
        started = self._pg_ctl_start()
        if started.returncode != 0:
            raise RuntimeError(f"pg_ctl restart failed: {started.stderr}")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run(str(self.bin / "pg_ctl"), "stop", "-m", "immediate", "-D",
                      str(self.data))
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_cluster(*, durable: bool = False) -> Iterator[PostgresCluster]:
    cluster = PostgresCluster(durable=durable)
    try:
        started = time.monotonic()
        cluster.start()
        cluster.startup_seconds = time.monotonic() - started  # type: ignore[attr-defined]
        yield cluster
    finally:
        cluster.stop()
