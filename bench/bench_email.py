"""Benchmark: e-mail delivery of N invoices (default 1,000) to an SMTP server on 127.0.0.1.

The server is aiosmtpd in its own process, with STARTTLS and AUTH required, as a real
submission server would; it counts and discards what it receives.

Measured, messages per second and the peak resident memory of the sending process:

* the gateway end to end: ``Dispatcher.run`` over the outbox (lease, attempt, state,
  receipt, hash-chained event per message), with connection reuse (one connection for
  the batch) and without it (``max_messages_per_connection = 1``: TCP + STARTTLS +
  AUTH for every message);
* the email channel alone (build the MIME message, send, record recipients), reusing
  one connection;
* the peer: a hand-written ``smtplib`` loop sending the same, already built message
  bytes — the ceiling of Python's standard SMTP client on this server — over one
  connection and over a connection per message.

    python3 bench/bench_email.py [--count 1000]

Prints a table and writes bench/results/email.json.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import resource
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.core import (  # noqa: E402
    Bundle,
    Customer,
    DeliveryState,
    Dispatcher,
    Document,
    Gateway,
    load_config,
    load_invoice,
)
from gateway.plugins import get_plugin_manager  # noqa: E402

USER, PASSWORD, PASSWORD_ENV = "gateway", "bench-password", "BENCH_SMTP_PASSWORD"
SENDER = "Daugavas Elektrība <rekini@daugavas-elektriba.lv>"
RECIPIENT = "janis.berzins@example.lv"

SERVER = r'''
import asyncio, logging, signal, ssl, sys, threading, warnings
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

logging.getLogger("mail.log").setLevel(logging.ERROR)
warnings.simplefilter("ignore")
cert, key, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
count = 0

class Sink:
    async def handle_DATA(self, server, session, envelope):
        global count
        count += 1
        return "250 2.0.0 OK"

def auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == b"gateway" \
        and data.password == b"bench-password"
    return AuthResult(success=ok, handled=False)

controller = Controller(Sink(), hostname="127.0.0.1", port=port, tls_context=context,
                        require_starttls=True, authenticator=auth, auth_required=True)
controller.start()
print("ready", flush=True)
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: done.set())
done.wait()
controller.stop()
print(count, flush=True)
'''


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reset_peak() -> None:
    """Linux: make VmHWM (peak RSS) restart from the current RSS."""
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def peak_mb() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_certificate(directory: Path) -> tuple[Path, Path]:
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Server:
    def __init__(self, root: Path) -> None:
        self.cert, key = make_certificate(root)
        self.port = free_port()
        script = root / "smtp_sink.py"
        script.write_text(SERVER, encoding="utf-8")
        self.proc = subprocess.Popen([sys.executable, str(script), str(self.cert), str(key),
                                      str(self.port)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP server did not start")

    def stop(self) -> int:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        return int(out.strip().splitlines()[-1])


def row(name: str, messages: int, seconds: float, peak: float, note: str = "") -> dict[str, Any]:
    return {"name": name, "messages": messages, "seconds": round(seconds, 3),
            "messages_per_s": round(messages / seconds, 1), "peak_rss_mb": round(peak, 1),
            "note": note}


def gateway(root: Path, server: Server, extra: str = "") -> Gateway:
    root.mkdir(parents=True)
    (root / "gateway.toml").write_text(
        f'[gateway]\nportal_url = "https://e-rekini.example.lv"\nvalidate_rendered = false\n'
        f'[plugins.email]\nhost = "127.0.0.1"\nport = {server.port}\n'
        f'username = "{USER}"\npassword_env = "{PASSWORD_ENV}"\nfrom = "{SENDER}"\n'
        f'ca_file = "{server.cert}"\n{extra}', encoding="utf-8")
    gw = Gateway(load_config(root), get_plugin_manager())
    customer = Customer.model_validate({
        "id": "100234567", "name": "Jānis Bērziņš", "language": "lv", "formats": ["json"],
        "match": ["C-100234567"],
        "channels": [{"channel": "email", "settings": {"to": [RECIPIENT]}}]})
    gw.check_customer(customer)
    gw.store.put_customer(customer, actor="bench")
    return gw


def push_invoices(gw: Gateway, count: int) -> list[str]:
    data = json.loads((REPO / "examples" / "electricity-household.json").read_text("utf-8"))
    ids = []
    for n in range(count):
        one = copy.deepcopy(data)
        one["number"] = f"E2611-{n:05d}"
        result = gw.push(load_invoice(one, source="bench"), source="bench")
        if result.status != "accepted" or result.invoice_id is None:
            raise RuntimeError(f"push failed: {result.error}")
        ids.append(result.invoice_id)
    return ids


def timed(work: Callable[[], Any]) -> tuple[float, float]:
    reset_peak()
    start = time.perf_counter()
    work()
    return time.perf_counter() - start, peak_mb()


# --------------------------------------------------------------------------- phases


def dispatcher_phase(root: Path, server: Server, count: int, *, reuse: bool) -> dict[str, Any]:
    gw = gateway(root, server, "" if reuse else "max_messages_per_connection = 1\n")
    push_invoices(gw, count)
    summary = None

    def work() -> None:
        nonlocal summary
        summary = Dispatcher(gw).run()

    elapsed, peak = timed(work)
    assert summary is not None and summary.delivered == count, summary
    gw.close()
    label = "one connection" if reuse else "a connection per message"
    return row(f"gateway dispatcher → SMTP, {label}", count, elapsed, peak,
               "outbox, attempts, state, receipts, events included")


def channel_phase(root: Path, server: Server, count: int) -> tuple[dict[str, Any], bytes]:
    gw = gateway(root, server)
    ids = push_invoices(gw, count)
    channel = gw.plugins.channels.get("email")
    settings = gw.channel_settings(channel, {"to": [RECIPIENT]}, context="bench")
    bundles = []
    for invoice_id in ids:
        documents = tuple(Document(d.format, d.media_type, d.filename,
                                   gw.archive.get(d.sha256))
                          for d in gw.store.documents(invoice_id))
        bundles.append(Bundle(invoice_id, gw.load_invoice(invoice_id), "100234567",
                              "Jānis Bērziņš", "lv", documents, f"{invoice_id}:email",
                              "https://e-rekini.example.lv"))

    def work() -> None:
        with channel.session():
            for bundle in bundles:
                channel.deliver(bundle, settings, DeliveryState({}, lambda data: None))

    elapsed, peak = timed(work)
    from plugins.email.message import build_message

    sample = build_message(bundles[0], settings).data
    gw.close()
    return row("email channel only → SMTP, one connection", count, elapsed, peak,
               "MIME build + send + per-recipient state (in memory)"), sample


def smtplib_phase(server: Server, count: int, message: bytes, *, reuse: bool) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(server.cert))

    def connect() -> smtplib.SMTP:
        smtp = smtplib.SMTP("127.0.0.1", server.port, timeout=30)
        smtp.starttls(context=context)
        smtp.login(USER, PASSWORD)
        return smtp

    def work() -> None:
        smtp = connect()
        for _ in range(count):
            if not reuse:
                smtp.quit()
                smtp = connect()
            smtp.sendmail("rekini@daugavas-elektriba.lv", [RECIPIENT], message)
        smtp.quit()

    elapsed, peak = timed(work)
    label = "one connection" if reuse else "a connection per message"
    return row(f"peer: smtplib loop, prebuilt message, {label}", count, elapsed, peak,
               "sending only: no MIME build, no bookkeeping")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    os.environ[PASSWORD_ENV] = PASSWORD
    os.environ.setdefault("GATEWAY_LOAD_PLUGINS", "json,email")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-email-") as tmp:
        root = Path(tmp)
        server = Server(root)
        try:
            results.append(dispatcher_phase(root / "reuse", server, args.count, reuse=True))
            results.append(dispatcher_phase(root / "noreuse", server, args.count, reuse=False))
            channel_row, message = channel_phase(root / "channel", server, args.count)
            results.append(channel_row)
            results.append(smtplib_phase(server, args.count, message, reuse=True))
            results.append(smtplib_phase(server, args.count, message, reuse=False))
        finally:
            received = server.stop()
    expected = args.count * len(results)
    if received != expected:
        raise SystemExit(f"server received {received} messages, expected {expected}")

    width = max(len(r["name"]) for r in results)
    print(f"\nE-mail delivery of {args.count} invoices ({len(message):,} bytes each, "
          "STARTTLS + AUTH, server on 127.0.0.1)\n")
    print(f"{'':{width}}  {'msg/s':>8}  {'seconds':>8}  {'peak MB':>8}")
    for r in results:
        print(f"{r['name']:{width}}  {r['messages_per_s']:>8}  {r['seconds']:>8}  "
              f"{r['peak_rss_mb']:>8}")
    out = REPO / "bench" / "results" / "email.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "benchmark": "email", "count": args.count, "message_bytes": len(message),
        "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "results": results}, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
