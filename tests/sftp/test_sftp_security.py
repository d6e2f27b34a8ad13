"""What a mailbox account must not do: each attempt is refused and written to the audit log."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
from sftp_servers import (
    DISPATCH_CONFIG,
    RunningMailbox,
    deliver,
    invoice,
    pub,
    push,
    sftp_customer,
)

from gateway.core import Gateway, load_config
from gateway.plugins import get_plugin_manager
from plugins.sftp.keys import parse_public_key

A, B = "100234567", "200987654"
A_FILE, B_FILE = "E2611-00123.json", "E2611-00999.json"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, client_keys) -> Iterator[Any]:
    """One gateway, server and client for the whole module: every attempt here must be
    refused, so none of them changes what the next one sees."""
    root = tmp_path_factory.mktemp("sftp-security")
    data_dir = root / "data"
    data_dir.mkdir()
    (data_dir / "gateway.toml").write_text(DISPATCH_CONFIG)
    gw = Gateway(load_config(data_dir), get_plugin_manager())
    invoice_data = json.loads((EXAMPLES / "electricity-household.json").read_text())
    sftp_customer(gw, [{"channel": "sftp-mailbox",
                        "settings": {"authorized_keys": [pub(client_keys["erp"])]}}])
    sftp_customer(gw, [{"channel": "sftp-mailbox",
                        "settings": {"authorized_keys": [pub(client_keys["other"])]}}],
                  customer_id=B, match="LV40103987654")
    push(gw, invoice(invoice_data, A_FILE.removesuffix(".json")))
    push(gw, invoice(invoice_data, B_FILE.removesuffix(".json")), customer_id=B)
    deliver(gw)
    server = RunningMailbox(gw, root / "mailbox")
    # Every attempt here comes from 127.0.0.1, and a refused client may stay connected
    # until the login timeout: more room than the default per-address share.
    server.server.max_unauthenticated_per_source = 32
    client = server.client(A, client_keys["erp"])
    yield gw, server, client
    client.close()
    server.stop()
    gw.close()


def _refused(server: Any, op: str, fragment: str) -> dict[str, Any]:
    hits = [e for e in server.refusals()
            if e["event"] == op and fragment in e.get("path", "")]
    assert hits, f"no refusal of {op} {fragment!r} in {server.refusals()}"
    assert hits[-1]["account"] == A and hits[-1]["peer"].startswith("127.0.0.1:")
    return hits[-1]


# (what the client does, the logged operation, a fragment of the logged path)
ATTEMPTS = [
    # another customer's files, by every name a client could try
    (lambda s: s.listdir(f"/{B}"), "list", f"/{B}"),
    (lambda s: s.listdir(f"/{B}/outbox"), "list", f"/{B}/outbox"),
    (lambda s: s.listdir(f"/../{B}/outbox"), "list", f"/../{B}"),
    (lambda s: s.open(f"/outbox/{B_FILE}").read(), "open", B_FILE),
    (lambda s: s.open(f"/archive/{B_FILE}").read(), "open", B_FILE),
    (lambda s: s.stat(f"/{B}/outbox/{B_FILE}"), "stat", B_FILE),
    # climbing out with ..
    (lambda s: s.open("/outbox/../../etc/passwd").read(), "open", "../../etc/passwd"),
    (lambda s: s.listdir("../.."), "list", "../.."),
    (lambda s: s.normalize("/outbox/../../.."), "realpath", "/outbox/../../.."),
    # absolute paths of the host
    (lambda s: s.open("/etc/passwd").read(), "open", "/etc/passwd"),
    (lambda s: s.listdir("/etc"), "list", "/etc"),
    (lambda s: s.stat("/root"), "stat", "/root"),
    # links that would point outside
    (lambda s: s.symlink("/etc/passwd", "/outbox/passwd"), "symlink", "/outbox/passwd"),
    (lambda s: s.symlink(f"/../{B}/outbox/{B_FILE}", "/outbox/b"), "symlink", "/outbox/b"),
    (lambda s: s.readlink(f"/outbox/{A_FILE}"), "readlink", A_FILE),
    # writing anywhere
    (lambda s: s.putfo(io.BytesIO(b"x"), "/outbox/new.xml", confirm=False), "open",
     "/outbox/new.xml"),
    (lambda s: s.putfo(io.BytesIO(b"x"), "/archive/new.xml", confirm=False), "open",
     "/archive/new.xml"),
    (lambda s: s.putfo(io.BytesIO(b"x"), "/new.xml", confirm=False), "open", "/new.xml"),
    (lambda s: s.open(f"/outbox/{A_FILE}", "r+").write(b"x"), "open", A_FILE),
    (lambda s: s.open(f"/outbox/{A_FILE}", "a").write(b"x"), "open", A_FILE),
    (lambda s: s.mkdir("/outbox/sub"), "mkdir", "/outbox/sub"),
    (lambda s: s.rmdir("/archive"), "rmdir", "/archive"),
    (lambda s: s.chmod(f"/outbox/{A_FILE}", 0o777), "setstat", A_FILE),
    (lambda s: s.remove(f"/archive/{A_FILE}"), "remove", f"/archive/{A_FILE}"),
    (lambda s: s.rename(f"/outbox/{A_FILE}", "/outbox/renamed.json"), "rename",
     "/outbox/renamed.json"),
    (lambda s: s.rename(f"/outbox/{A_FILE}", "/../elsewhere.json"), "rename",
     "/../elsewhere.json"),
    (lambda s: s.posix_rename(f"/archive/{A_FILE}", "/archive/x.json"), "rename",
     f"/archive/{A_FILE}"),
]


@pytest.mark.parametrize(("attempt", "op", "fragment"), ATTEMPTS,
                         ids=[f"{op}:{frag}" for _, op, frag in ATTEMPTS])
def test_refused_and_logged(setup, attempt, op, fragment):
    gw, server, sftp = setup

    with pytest.raises(OSError):
        attempt(sftp)

    _refused(server, op, fragment)
    # and nothing changed: A's file is still there and unacknowledged
    assert sftp.listdir("/outbox") == [A_FILE]
    with sftp.open(f"/outbox/{A_FILE}") as fh:
        assert fh.read() == gw.archive.get(gw.store.documents(
            gw.store.invoices_by_number("E2611-00123")[0].id)[0].sha256)


def test_listing_shows_only_the_own_files(setup, client_keys):
    _, server, sftp = setup
    assert sftp.listdir("/outbox") == [A_FILE]
    assert sftp.listdir("/archive") == [A_FILE]
    other = server.client(B, client_keys["other"])
    assert other.listdir("/outbox") == [B_FILE]


def test_a_key_of_another_customer_cannot_log_in_as_this_one(setup, client_keys):
    _, server, _ = setup
    with pytest.raises(paramiko.AuthenticationException):
        server.client(A, client_keys["other"])
    refusal = [e for e in server.refusals() if e["event"] == "login"][-1]
    assert refusal["account"] == A and refusal["reason"] == "unknown key"


def test_an_unknown_key_is_refused_and_logged_with_its_fingerprint(setup, client_keys):
    _, server, _ = setup
    with pytest.raises(paramiko.AuthenticationException):
        server.client(A, client_keys["stranger"])
    refusal = [e for e in server.refusals() if e["event"] == "login"][-1]
    stranger = parse_public_key(pub(client_keys["stranger"]))
    assert refusal["key"] == f"ssh-ed25519 {stranger.fingerprint}"
    assert refusal["method"] == "publickey"


def test_an_unknown_account_is_refused_and_logged(setup, client_keys):
    _, server, _ = setup
    with pytest.raises(paramiko.AuthenticationException):
        server.client("root", client_keys["erp"])
    refusal = [e for e in server.refusals() if e["event"] == "login"][-1]
    assert refusal["account"] == "root" and "no such account" in refusal["reason"]


def test_password_login_is_refused_and_logged(setup):
    _, server, _ = setup
    transport = paramiko.Transport(("127.0.0.1", server.port))
    try:
        transport.start_client(timeout=10)
        with pytest.raises(paramiko.AuthenticationException):
            transport.auth_password(A, "correct horse battery staple")
        assert not transport.is_authenticated()
    finally:
        transport.close()
    refusal = [e for e in server.refusals() if e["event"] == "login"][-1]
    assert refusal["method"] == "password" and refusal["account"] == A


def test_no_shell_commands_or_other_subsystems(setup, client_keys):
    _, server, _ = setup
    ssh = paramiko.SSHClient()
    ssh.load_host_keys(str(server.known_hosts))
    ssh.connect("127.0.0.1", port=server.port, username=A,
                key_filename=str(client_keys["erp"]), look_for_keys=False, allow_agent=False)
    try:
        with pytest.raises(paramiko.SSHException):
            ssh.exec_command("cat /etc/passwd")
        with pytest.raises(paramiko.SSHException):
            ssh.invoke_shell()
        channel = ssh.get_transport().open_session()
        with pytest.raises(paramiko.SSHException):
            channel.invoke_subsystem("netconf")
        with pytest.raises(paramiko.ChannelException):
            ssh.get_transport().open_channel("direct-tcpip", ("127.0.0.1", 22),
                                             ("127.0.0.1", 0))
    finally:
        ssh.close()
    refused = {e["event"]: e for e in server.refusals()}
    assert refused["exec"]["path"] == "cat /etc/passwd"
    assert {"pty", "subsystem", "direct-tcpip"} <= set(refused)
    assert refused["subsystem"]["path"] == "netconf"


def test_openssh_client_is_refused_too(setup, client_keys, tmp_path):
    _, server, _ = setup
    work = tmp_path / "erp"
    work.mkdir()
    (work / "evil.xml").write_text("<x/>")
    first = len(server.refusals())
    for command in ("put evil.xml /outbox/evil.xml", "get /../../etc/passwd",
                    f"get /{B}/outbox/{B_FILE}", "ln -s /etc/passwd /outbox/p",
                    "mkdir /outbox/x", f"rm /archive/{A_FILE}"):
        before = len(server.refusals())
        done = server.openssh_batch(A, client_keys["erp"], command + "\n", cwd=work)
        assert done.returncode != 0, command
        assert len(server.refusals()) > before, command
    assert not (work / "passwd").exists() and not (work / B_FILE).exists()
    assert {e["account"] for e in server.refusals()[first:]} == {A}


def test_a_client_guessing_keys_is_disconnected(setup, tmp_path):
    from sftp_servers import keygen

    _, server, _ = setup
    before = len(server.refusals())
    transport = paramiko.Transport(("127.0.0.1", server.port))
    transport.start_client(timeout=10)
    tried = 0
    try:
        for i in range(10):
            guess = paramiko.PKey.from_path(keygen(tmp_path / f"guess{i}"))
            tried += 1
            with contextlib.suppress(paramiko.SSHException, EOFError):
                transport.auth_publickey(A, guess)
            if not transport.is_active():
                break
        assert not transport.is_active() and tried == 6
    finally:
        transport.close()
    assert len([e for e in server.refusals()[before:] if e["event"] == "login"]) == 6


def test_a_connection_that_never_logs_in_is_closed(setup):
    _, server, _ = setup
    server.server.login_timeout = 0.5
    before = len(server.refusals())
    transport = paramiko.Transport(("127.0.0.1", server.port))
    try:
        transport.start_client(timeout=10)
        transport.join(10)  # returns when the server hangs up
        assert not transport.is_active()
    finally:
        transport.close()
        server.server.login_timeout = 30.0
    assert any("no login within 0.5 s" in e["reason"] for e in server.refusals()[before:])
