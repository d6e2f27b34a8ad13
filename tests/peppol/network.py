"""Real servers for the Peppol tests: dnsmasq as the SML's DNS, an HTTP SMP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from plugins.peppol.identifiers import ParticipantId
from plugins.peppol.sml import SERVICE, dns_name

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dnsmasq:
    """dnsmasq authoritative for one SML zone on a free UDP/TCP loopback port."""

    def __init__(self, workdir: Path, zone: str) -> None:
        self.workdir, self.zone = workdir, zone
        self.records: dict[str, str] = {}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def register(self, participant: str, smp_url: str) -> None:
        self.records[dns_name(ParticipantId.parse(participant), self.zone)] = smp_url
        if self.proc is not None:
            self.restart()

    def _conf(self) -> Path:
        lines = [f"port={self.port}", "listen-address=127.0.0.1", "bind-interfaces",
                 "no-resolv", "no-hosts", "no-poll", f"local=/{self.zone}/",
                 f"pid-file={self.workdir / 'dnsmasq.pid'}", "user=root",
                 f"log-facility={self.workdir / 'dnsmasq.log'}", "log-queries"]
        for name, url in self.records.items():
            lines.append(f"naptr-record={name},100,10,U,{SERVICE},!^.*$!{url}!")
        conf = self.workdir / "dnsmasq.conf"
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return conf

    def start(self, *, keep_port: bool = False) -> None:
        for _ in range(5):
            if not keep_port:
                self.port = free_port(socket.SOCK_DGRAM)
            keep_port = False  # a port taken meanwhile: pick another
            self.proc = subprocess.Popen([DNSMASQ, "--keep-in-foreground",
                                          f"--conf-file={self._conf()}"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if self._ready():
                return
            self.stop()
        raise RuntimeError("dnsmasq did not start")

    def _ready(self) -> bool:
        query = dns.message.make_query(f"probe.{self.zone}", dns.rdatatype.A)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            with contextlib.suppress(dns.exception.Timeout, OSError):
                dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.5)
                return True
            time.sleep(0.05)
        return False

    def restart(self) -> None:
        """Reload the records on the same port (dnsmasq reads NAPTR records at start)."""
        self.stop()
        self.start(keep_port=True)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


class SmpServer:
    """Serves signed service metadata documents by path, as an SMP does, over HTTP."""

    def __init__(self) -> None:
        self.documents: dict[str, bytes] = {}
        self.requests: list[str] = []
        #: called with the path before the answer: a test holds a lookup in flight here
        self.before_answer: Callable[[str], None] | None = None
        documents, requests, smp = self.documents, self.requests, self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                if smp.before_answer is not None:
                    smp.before_answer(self.path)
                body = documents.get(unquote(self.path))
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, participant: str, document_type: str, document: bytes) -> None:
        pid = ParticipantId.parse(participant)
        self.documents[f"/{pid.uri}/services/busdox-docid-qns::{document_type}"] = document

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def running(workdir: Path, zone: str) -> Iterator[tuple[Dnsmasq, SmpServer]]:
    dnsmasq, smp = Dnsmasq(workdir, zone), SmpServer()
    dnsmasq.start()
    try:
        yield dnsmasq, smp
    finally:
        dnsmasq.stop()
        smp.close()
