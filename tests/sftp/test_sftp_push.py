"""sftp-push against a real OpenSSH sshd on 127.0.0.1 (its own config and host key)."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from sftp_servers import (
    DISPATCH_CONFIG,
    BigFormatPlugin,
    OpenSshServer,
    deliver,
    invoice,
    pub,
    push,
    sftp_customer,
)

from gateway.errors import ConfigError


def _delivery(gw: Any, invoice_id: str, channel: str | None = None) -> Any:
    rows = [d for d in gw.store.deliveries(invoice_id=invoice_id)
            if channel is None or d.label == channel]
    assert len(rows) == 1, rows
    return rows[0]


def _archived(gw: Any, invoice_id: str, fmt: str = "json") -> bytes:
    doc = next(d for d in gw.store.documents(invoice_id) if d.format == fmt)
    return gw.archive.get(doc.sha256)


def test_upload_lands_under_the_pattern_name_in_full(gateway_factory, sshd, invoice_data):
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-push", "name": "erp",
                        "settings": sshd.settings(filename="{seller_vat}_{number}.{ext}")}])
    invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))

    summary = deliver(gw)

    assert summary.delivered == 1, gw.store.deliveries(invoice_id=invoice_id)
    uploaded = sshd.upload / "LV40003000001_E2611-00123.json"
    assert uploaded.read_bytes() == _archived(gw, invoice_id)
    assert sorted(p.name for p in sshd.upload.iterdir()) == [uploaded.name]
    d = _delivery(gw, invoice_id)
    assert d.status == "delivered" and d.receipt_id.startswith("sftp-push:")
    (where, said), = d.receipt["recipients"].items()
    assert where.endswith("/LV40003000001_E2611-00123.json") and said.startswith("uploaded")


def test_a_batch_shares_one_connection(gateway_factory, sshd, invoice_data):
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-push", "settings": sshd.settings()}])
    for i in range(5):
        push(gw, invoice(invoice_data, f"E2611-{i:05d}"))

    summary = deliver(gw)

    assert summary.delivered == 5
    assert len(list(sshd.upload.glob("*.json"))) == 5
    assert sshd.logins() == 1
    assert gw.plugins.channels.get("sftp-push").connections_opened == 1


def test_an_identical_file_already_there_counts_as_delivered(gateway_factory, sshd,
                                                               invoice_data):
    # Two channels of one customer pushing to the same place: the second finds the
    # first one's file, byte for byte, and must neither fail nor rewrite it.
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-push", "name": "first", "settings": sshd.settings()},
                       {"channel": "sftp-push", "name": "second", "settings": sshd.settings()}])
    invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))

    assert deliver(gw).delivered == 2

    second = _delivery(gw, invoice_id, "second")
    assert next(iter(second.receipt["recipients"].values())).startswith("already present")
    assert [p.name for p in sshd.upload.iterdir()] == ["E2611-00123.json"]


def test_a_different_file_under_the_name_is_never_overwritten(gateway_factory, sshd,
                                                               invoice_data, tmp_path):
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [
        {"channel": "sftp-push", "name": "erp", "settings": sshd.settings(),
         "fallback": "paper-folder"},
        {"channel": "folder", "name": "paper-folder",
         "settings": {"path": str(tmp_path / "fallback")}}])
    (sshd.upload / "E2611-00123.json").write_bytes(b"someone else's file")
    invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))

    deliver(gw)

    erp = _delivery(gw, invoice_id, "erp")
    assert erp.status == "failed"
    assert "already exists with other content" in erp.last_error
    assert (sshd.upload / "E2611-00123.json").read_bytes() == b"someone else's file"
    assert not list(sshd.upload.glob(".*"))
    assert (tmp_path / "fallback" / "E2611-00123.json").exists()


def test_a_changed_host_key_fails_permanently_before_logging_in(gateway_factory, sshd,
                                                                invoice_data):
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-push", "settings": sshd.settings()}])
    old = sshd.host_key
    sshd.stop()
    sshd.new_host_key()
    sshd.start()
    assert sshd.host_key != old
    invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))

    summary = deliver(gw)

    d = _delivery(gw, invoice_id)
    assert summary.failed == 1 and d.status == "failed" and d.attempts == 1
    assert "host key changed" in d.last_error and "nothing was sent" in d.last_error
    assert list(sshd.upload.iterdir()) == []
    assert sshd.logins() == 0  # the key was checked before any credential went out


def test_a_host_key_of_another_type_is_unknown_and_permanent(gateway_factory, sshd,
                                                             invoice_data, tmp_path):
    from sftp_servers import keygen

    other = keygen(tmp_path / "ecdsa_host", "ecdsa")
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-push", "settings": sshd.settings(host_key=pub(other))}])
    invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))

    deliver(gw)

    d = _delivery(gw, invoice_id)
    assert d.status == "failed" and "unknown host key" in d.last_error
    assert list(sshd.upload.iterdir()) == []


def test_a_refused_login_is_permanent_with_the_key_named(gateway_factory, sshd, invoice_data,
                                                         client_keys):
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-push",
                        "settings": sshd.settings(private_key=str(client_keys["stranger"]))}])
    invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))

    deliver(gw)

    d = _delivery(gw, invoice_id)
    assert d.status == "failed"
    assert "refused login as 'root' with key SHA256:" in d.last_error


def test_a_missing_remote_directory_is_permanent(gateway_factory, sshd, invoice_data):
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-push",
                        "settings": sshd.settings(directory=str(sshd.upload / "nope"))}])
    invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))

    deliver(gw)

    d = _delivery(gw, invoice_id)
    assert d.status == "failed" and "remote directory does not exist" in d.last_error


def test_a_server_that_is_down_is_retried_then_delivered(gateway_factory, sshd, invoice_data):
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-push", "settings": sshd.settings()}])
    invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))
    sshd.stop()

    assert deliver(gw).retrying == 1
    assert "cannot connect" in _delivery(gw, invoice_id).last_error

    sshd.start()
    assert deliver(gw).delivered == 1
    assert (sshd.upload / "E2611-00123.json").read_bytes() == _archived(gw, invoice_id)


@pytest.mark.parametrize(("change", "message"), [
    ({"host_key": "ssh-ed25519 not-base64!"}, "not valid base64"),
    ({"host_key": "ssh-ed25519"}, "not an OpenSSH public key line"),
    ({"host_key": "ssh-dss AAAAB3NzaC1kc3M="}, "unsupported key type"),
    ({"filename": "{numbr}.{ext}"}, "unknown placeholder {numbr}"),
    ({"filename": "invoice.pdf"}, "has no placeholder"),
    ({"filename": "../{name}"}, "must not contain a directory"),
    ({"private_key": None}, "give private_key"),
])
def test_bad_settings_fail_when_the_customer_is_saved(gw, sshd, change, message):
    with pytest.raises(ConfigError, match="customer 100234567, channel sftp-push") as err:
        sftp_customer(gw, [{"channel": "sftp-push", "settings": sshd.settings(**change)}])
    assert message in str(err.value)


# --------------------------------------------------------------------------- faults


class DroppingProxy:
    """A TCP relay to sshd that cuts its first connection after ``cut_after`` bytes from
    the client: the network failing in the middle of an upload."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        self.target_port = target_port
        self.cut_after = cut_after
        self.connections = 0
        self.cuts = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            limit = self.cut_after if self.connections == 1 else None
            pair = (client, upstream)
            threading.Thread(target=self._pump, args=(client, upstream, limit, pair),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None, pair),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, limit: int | None,
              pair: tuple[socket.socket, socket.socket]) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                if limit is not None and sent + len(data) > limit:
                    self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in pair:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._sock.close()


def test_a_connection_dropped_mid_upload_leaves_no_file_and_is_delivered_once(
        gateway_factory, sshd: OpenSshServer, invoice_data):
    gw = gateway_factory(config=DISPATCH_CONFIG, extra_plugins=(("big", BigFormatPlugin()),))
    proxy = DroppingProxy(sshd.port, cut_after=600_000)
    try:
        sftp_customer(gw, [{"channel": "sftp-push",
                            "settings": sshd.settings(port=proxy.port)}], formats=("big",))
        invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))
        final = sshd.upload / "E2611-00123.bin"

        first = deliver(gw)

        assert proxy.cuts == 1 and first.retrying == 1
        d = _delivery(gw, invoice_id)
        assert d.status == "retry" and "connection" in d.last_error.lower()
        assert not final.exists()  # at most a hidden temporary file, never the real name
        assert all(p.name.startswith(".") for p in sshd.upload.iterdir())

        second = deliver(gw)

        assert second.delivered == 1
        assert final.read_bytes() == _archived(gw, invoice_id, "big")
        assert [p.name for p in sshd.upload.iterdir()] == [final.name]
        assert [e.kind for e in gw.store.events(invoice_id)].count("delivered") == 1
        assert _delivery(gw, invoice_id).attempts == 2
        assert deliver(gw).attempted == 0
    finally:
        proxy.close()


def test_a_retry_after_a_partial_success_does_not_upload_again(gateway_factory, sshd,
                                                               invoice_data, tmp_path: Path):
    # The ERP takes files away as soon as they land; after a crash between two documents
    # the retry must not hand it the first one again.
    gw = gateway_factory(config=DISPATCH_CONFIG, extra_plugins=(("big", BigFormatPlugin()),))
    sftp_customer(gw, [{"channel": "sftp-push", "settings": sshd.settings()}],
                  formats=("json", "big"))
    invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))
    blocker = sshd.upload / "E2611-00123.bin"
    blocker.mkdir()  # the second document cannot be renamed into place: a failure

    assert deliver(gw).attempted == 1
    taken = sshd.upload / "E2611-00123.json"
    assert taken.exists()
    taken.unlink()  # the ERP picked it up
    blocker.rmdir()
    gw.store.requeue([_delivery(gw, invoice_id).id])

    assert deliver(gw).delivered == 1
    assert not taken.exists()
    assert (sshd.upload / "E2611-00123.bin").read_bytes() == _archived(gw, invoice_id, "big")
    said = _delivery(gw, invoice_id).receipt["recipients"]
    assert any(v.startswith("uploaded earlier") for v in said.values())


def test_an_encrypted_key_needs_its_passphrase_from_the_environment(
        gateway_factory, sshd, invoice_data, tmp_path, monkeypatch):
    import subprocess

    key = tmp_path / "encrypted"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret", "-f", str(key)],
                   check=True)
    (sshd.root / "authorized_keys").write_text(pub(key) + "\n")
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-push", "settings": sshd.settings(
        private_key=str(key), private_key_passphrase_env="ERP_KEY_PASSPHRASE")}])
    first = push(gw, invoice(invoice_data, "E2611-00001"))
    monkeypatch.delenv("ERP_KEY_PASSPHRASE", raising=False)

    deliver(gw)

    d = _delivery(gw, first)
    # one rule for every secret (gateway.secret_from_env): retried until it is set
    assert d.status == "retry"
    assert (f"passphrase of {key}: environment variable ERP_KEY_PASSPHRASE "
            "(private_key_passphrase_env) is not set") in d.last_error

    monkeypatch.setenv("ERP_KEY_PASSPHRASE", "s3cret")
    second = push(gw, invoice(invoice_data, "E2611-00002"))
    deliver(gw)
    assert _delivery(gw, second).status == "delivered", _delivery(gw, second).last_error
    assert _delivery(gw, first).status == "delivered"  # the outbox drained by itself
    assert (sshd.upload / "E2611-00002.json").exists()


def test_a_password_from_an_unset_variable_is_a_clear_retryable_error(
        gateway_factory, sshd, invoice_data, monkeypatch):
    monkeypatch.delenv("ERP_SFTP_PASSWORD", raising=False)
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-push", "settings": sshd.settings(
        private_key=None, password_env="ERP_SFTP_PASSWORD")}])
    invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))

    deliver(gw)

    d = _delivery(gw, invoice_id)
    # one rule for every secret (gateway.secret_from_env): the operator sets it, the
    # outbox drains by itself
    assert d.status == "retry"
    assert "environment variable ERP_SFTP_PASSWORD (password_env) is not set" in d.last_error
    assert sshd.logins() == 0


def test_a_known_hosts_line_is_accepted_as_host_key(gateway_factory, sshd, invoice_data):
    gw = gateway_factory(config=DISPATCH_CONFIG)
    line = f"[127.0.0.1]:{sshd.port} {sshd.host_key}"  # as ssh-keyscan prints it
    sftp_customer(gw, [{"channel": "sftp-push", "settings": sshd.settings(host_key=line)}])
    invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))

    assert deliver(gw).delivered == 1
    assert _delivery(gw, invoice_id).status == "delivered"
