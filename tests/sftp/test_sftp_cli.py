"""``gateway customer sftp-key`` and ``gateway serve sftp`` as an operator uses them."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest
from sftp_servers import (
    DISPATCH_CONFIG,
    deliver,
    free_port,
    invoice,
    pub,
    push,
    sftp_customer,
    wait_for_port,
)

from plugins.sftp.keys import parse_public_key

A = "100234567"


def test_key_add_list_remove_takes_effect_at_once(gateway_factory, run_cli, client_keys,
                                                  invoice_data, mailbox_server):
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "folder"}])
    erp = parse_public_key(pub(client_keys["erp"]))

    added = run_cli("customer", "sftp-key", "add", A, f"{client_keys['erp']}.pub")

    assert added.exit_code == 0, added.output
    assert "now also receives invoices in its SFTP mailbox" in added.output
    assert erp.fingerprint in added.output
    listed = run_cli("customer", "sftp-key", "list", A)
    assert listed.output.strip() == f"ssh-ed25519 {erp.fingerprint} erp"
    again = run_cli("customer", "sftp-key", "add", A, f"{client_keys['erp']}.pub")
    assert "can already log in" in again.output
    shown = run_cli("customer", "show", A)
    assert f"sftp-key add {erp.fingerprint}" in shown.output  # in the change history

    push(gw, invoice(invoice_data, "E2611-00123"))
    deliver(gw)
    server = mailbox_server(gw)
    assert server.client(A, client_keys["erp"]).listdir("/outbox") == ["E2611-00123.json"]

    removed = run_cli("customer", "sftp-key", "remove", A, erp.fingerprint)

    assert removed.exit_code == 0, removed.output
    with pytest.raises(paramiko.AuthenticationException):
        server.client(A, client_keys["erp"])


@pytest.mark.parametrize(("content", "message"), [
    ("", "expected one public key line"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n", "expected one public key line"),
    ("ssh-ed25519 AAAA", "damaged or truncated"),
    ("hello", "not an OpenSSH public key line"),
])
def test_key_add_explains_a_bad_key_file(gw, run_cli, tmp_path, content, message):
    sftp_customer(gw, [{"channel": "folder"}])
    bad = tmp_path / "bad.pub"
    bad.write_text(content)

    result = run_cli("customer", "sftp-key", "add", A, str(bad))

    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert str(bad) in result.output


def test_key_commands_name_unknown_customers_and_keys(gw, run_cli, client_keys):
    sftp_customer(gw, [{"channel": "folder"}])
    missing = run_cli("customer", "sftp-key", "add", "nobody", f"{client_keys['erp']}.pub")
    assert missing.exit_code == 1 and "unknown customer 'nobody'" in missing.output
    gone = run_cli("customer", "sftp-key", "remove", A, "SHA256:nope")
    assert gone.exit_code == 1 and "has no SFTP key SHA256:nope" in gone.output


def test_serve_sftp_runs_until_interrupted(gateway_factory, client_keys, invoice_data,
                                          tmp_path: Path):
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-mailbox",
                        "settings": {"authorized_keys": [pub(client_keys["erp"])]}}])
    push(gw, invoice(invoice_data, "E2611-00123"))
    deliver(gw)
    data_dir = gw.config.data_dir
    port = free_port()
    # Ctrl-C as in a terminal: a process started in the background by a shell without
    # job control (as a CI runner may start the suite) inherits SIGINT ignored, and
    # Python then keeps ignoring it, as Unix asks; the server must see the default.
    proc = subprocess.Popen(
        [sys.executable, "-c", "from gateway.cli import main; main()", "--data-dir",
         str(data_dir), "serve", "sftp", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_for_port(port, proc=proc)
        key = paramiko.PKey.from_path(data_dir / "sftp" / "host_key")
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {key.get_name()} {key.get_base64()}\n")
        batch = tmp_path / "batch"
        batch.write_text("ls -1 /outbox\n")
        done = subprocess.run(
            ["sftp", "-b", str(batch), "-i", str(client_keys["erp"]), "-P", str(port),
             "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
             "-o", "IdentitiesOnly=yes", f"{A}@127.0.0.1"],
            capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "E2611-00123.json" in done.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()  # not left running after the test
            raise
    assert proc.returncode == 0, err
    assert f"127.0.0.1:{port}" in err and "SHA256:" in err
    assert "Traceback" not in err


def test_serve_sftp_on_a_busy_port_is_one_clear_line(gw, run_cli):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = run_cli("serve", "sftp", "--port", str(port))
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
