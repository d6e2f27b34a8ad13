"""Helpers for the SFTP tests: a real OpenSSH sshd, the gateway's mailbox server in a
thread, clients (paramiko and OpenSSH's sftp in batch mode), keys made by ssh-keygen."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from gateway import hookimpl, load_invoice
from gateway.core import Dispatcher, Gateway

SSHD = "/usr/sbin/sshd"
# The test servers listen on loopback, which customer destinations may not reach unless
# the operator allows it.
DISPATCH_CONFIG = ("[dispatcher]\nbase_delay = 0\nmax_attempts = 5\n\n"
                   "[network]\nallow = [\"127.0.0.1/32\"]\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, *, proc: subprocess.Popen[Any] | None = None,
                  timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def keygen(path: Path, kind: str = "ed25519") -> Path:
    """A key pair made by OpenSSH's own ssh-keygen; returns the private key path."""
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", path.name, "-f", str(path)],
                   check=True)
    return path


def pub(path: Path) -> str:
    return Path(f"{path}.pub").read_text().strip()


@dataclass
class OpenSshServer:
    """An OpenSSH sshd with its own config, host key and upload directory."""

    root: Path
    client_key: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    upload: Path = field(init=False)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.upload = self.root / "upload"
        self.upload.mkdir(parents=True, exist_ok=True)
        self.log = self.root / "sshd.log"
        (self.root / "authorized_keys").write_text(pub(self.client_key) + "\n")
        self.new_host_key()

    def new_host_key(self, kind: str = "ed25519") -> None:
        key = self.root / f"host_{kind}"
        for p in (key, Path(f"{key}.pub")):
            p.unlink(missing_ok=True)
        keygen(key, kind)
        self.host_key_path = key

    @property
    def host_key(self) -> str:
        return pub(self.host_key_path)

    def start(self, port: int | None = None) -> None:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        self.port = port or self.port or free_port()
        config = self.root / "sshd_config"
        config.write_text(f"""\
Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.host_key_path}
PidFile {self.root}/sshd.pid
AuthorizedKeysFile {self.root}/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
LogLevel VERBOSE
MaxStartups 100
""")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab"))  # noqa: SIM115
        wait_for_port(self.port, proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def logins(self) -> int:
        return self.log.read_text(errors="replace").count("Accepted publickey")

    def settings(self, **extra: Any) -> dict[str, Any]:
        """sftp-push settings for this server (as root, into the upload directory)."""
        return {"host": "127.0.0.1", "port": self.port, "user": "root",
                "host_key": self.host_key, "private_key": str(self.client_key),
                "directory": str(self.upload), **extra}


def invoice(data: dict[str, Any], number: str, **changes: Any) -> Any:
    d = {**data, "number": number, **changes}
    return load_invoice(d)


def deliver(gw: Gateway) -> Any:
    return Dispatcher(gw).run()


class RunningMailbox:
    def __init__(self, gw: Gateway, root: Path) -> None:
        from gateway.core import load_config
        from gateway.plugins import get_plugin_manager
        from plugins.sftp.server import MailboxServer, load_or_create_host_key

        # Its own gateway on the same data directory, as 'gateway serve sftp' is its own
        # process: the server never shares a database connection with the dispatcher.
        self.gw = Gateway(load_config(gw.config.data_dir), get_plugin_manager())
        self.key = load_or_create_host_key(root / "host_key")
        self.server = MailboxServer(self.gw, host="127.0.0.1", port=0, host_key=self.key)
        self.port = self.server.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.known_hosts = root / "known_hosts"
        self.known_hosts.write_text(
            f"[127.0.0.1]:{self.port} {self.key.get_name()} {self.key.get_base64()}\n")
        self.audit_path = self.server.audit.path

    def audit(self) -> list[dict[str, Any]]:
        import json

        if not self.audit_path.exists():
            return []
        return [json.loads(line) for line in self.audit_path.read_text().splitlines()]

    def refusals(self) -> list[dict[str, Any]]:
        return [e for e in self.audit() if e["outcome"] == "refused"]

    def client(self, user: str, key: Path) -> Any:
        """A paramiko SFTP client that checks the server's host key."""
        import paramiko

        ssh = paramiko.SSHClient()
        ssh.load_host_keys(str(self.known_hosts))
        ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
        ssh.connect("127.0.0.1", port=self.port, username=user, key_filename=str(key),
                    look_for_keys=False, allow_agent=False, timeout=10)
        sftp = ssh.open_sftp()
        sftp._ssh = ssh  # keep the client alive with the SFTP session
        return sftp

    def openssh_batch(self, user: str, key: Path, commands: str,
                      cwd: Path) -> subprocess.CompletedProcess[str]:
        """Run OpenSSH's sftp client in batch mode; host key checked strictly."""
        batch = cwd / "batch.txt"
        batch.write_text(commands)
        return subprocess.run(
            ["sftp", "-b", str(batch), "-i", str(key), "-P", str(self.port),
             "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
             "-o", "IdentitiesOnly=yes", "-o", "PasswordAuthentication=no",
             "-o", "BatchMode=yes", f"{user}@127.0.0.1"],
            cwd=cwd, capture_output=True, text=True, timeout=60)

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)
        self.gw.close()




def sftp_customer(gw: Gateway, channels: list[dict[str, Any]], *, customer_id: str = "100234567",
                  match: str = "C-100234567", formats: tuple[str, ...] = ("json",)) -> Any:
    from gateway.core import Customer

    customer = Customer.model_validate({
        "id": customer_id, "name": f"Customer {customer_id}", "formats": list(formats),
        "match": [match], "channels": channels})
    gw.check_customer(customer)
    gw.store.put_customer(customer, actor="test")
    return customer


def push(gw: Gateway, inv: Any, customer_id: str | None = None) -> str:
    result = gw.push(inv, customer_id=customer_id)
    assert result.status == "accepted", result.error
    assert result.invoice_id is not None
    return result.invoice_id


class BigFormat:
    """A format whose documents are big enough (1.28 MB, incompressible) to cut mid-upload."""

    name: ClassVar[str] = "big"
    media_type: ClassVar[str] = "application/octet-stream"
    extension: ClassVar[str] = "bin"
    description: ClassVar[str] = "test: big incompressible document"
    can_parse: ClassVar[bool] = False
    can_validate: ClassVar[bool] = False

    def render(self, invoice: Any, context: Any) -> bytes:
        seed = invoice.number.encode()
        return b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest()
                        for i in range(40_000))

    def sniff(self, head: bytes, filename: str) -> bool:
        return False

    def parse(self, data: bytes, source: str) -> Any:
        return iter(())

    def validate(self, data: bytes) -> list[Any]:
        return []


class BigFormatPlugin:
    @hookimpl
    def gateway_register_formats(self, register: Any) -> None:
        register(BigFormat())
