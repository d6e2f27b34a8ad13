"""Pull: the gateway's SFTP server, used by paramiko's client and OpenSSH's sftp (batch)."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest
from sftp_servers import DISPATCH_CONFIG, deliver, invoice, pub, push, sftp_customer

A, B = "100234567", "200987654"


@pytest.fixture
def two_mailboxes(gateway_factory, client_keys, invoice_data, mailbox_server) -> Any:
    """Customers A (key 'erp') and B (key 'other'), one delivered invoice each."""
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-mailbox",
                        "settings": {"authorized_keys": [pub(client_keys["erp"])]}}])
    sftp_customer(gw, [{"channel": "sftp-mailbox",
                        "settings": {"authorized_keys": [pub(client_keys["other"])]}}],
                  customer_id=B, match="LV40103987654")
    a_id = push(gw, invoice(invoice_data, "E2611-00123"))
    b_id = push(gw, invoice(invoice_data, "E2611-00999"), customer_id=B)
    assert deliver(gw).delivered == 2
    server = mailbox_server(gw)
    return gw, server, a_id, b_id


def _archived(gw: Any, invoice_id: str) -> bytes:
    doc = gw.store.documents(invoice_id)[0]
    return gw.archive.get(doc.sha256)


def _kinds(gw: Any, invoice_id: str) -> list[str]:
    return [e.kind for e in gw.store.events(invoice_id)]


def test_paramiko_client_downloads_then_acknowledges_by_deleting(two_mailboxes, client_keys):
    gw, server, a_id, _ = two_mailboxes
    sftp = server.client(A, client_keys["erp"])

    assert sorted(sftp.listdir("/")) == ["archive", "outbox"]
    assert sftp.listdir("/outbox") == ["E2611-00123.json"]
    with sftp.open("/outbox/E2611-00123.json") as fh:
        content = fh.read()
    assert content == _archived(gw, a_id)
    assert sftp.stat("/outbox/E2611-00123.json").st_size == len(content)
    assert "downloaded" in _kinds(gw, a_id)
    assert "acknowledged" not in _kinds(gw, a_id)

    sftp.remove("/outbox/E2611-00123.json")

    assert sftp.listdir("/outbox") == []
    assert sftp.listdir("/archive") == ["E2611-00123.json"]
    with sftp.open("/archive/E2611-00123.json") as fh:
        assert fh.read() == content
    kinds = _kinds(gw, a_id)
    assert kinds.index("delivered") < kinds.index("downloaded") \
        < kinds.index("acknowledged")
    assert kinds.count("downloaded") == 1  # the second read is no new receipt
    ack = next(e for e in gw.store.events(a_id) if e.kind == "acknowledged")
    assert ack.data["account"] == A and ack.data["how"] == "deleted from /outbox"
    assert ack.data["via"] == "sftp-mailbox"
    got = next(e for e in gw.store.events(a_id) if e.kind == "downloaded")
    assert got.data["via"] == "sftp-mailbox" and got.data["file"] == "E2611-00123.json"
    assert gw.store.verify_events(a_id) is None
    sftp.close()


def test_openssh_sftp_batch_gets_and_acknowledges_by_moving(two_mailboxes, client_keys,
                                                            tmp_path):
    gw, server, a_id, _ = two_mailboxes
    work = tmp_path / "erp"
    work.mkdir()

    done = server.openssh_batch(A, client_keys["erp"], "cd outbox\nls -1\nget *\n"
                                "rename E2611-00123.json /archive/E2611-00123.json\n"
                                "ls -1 /outbox\n", cwd=work)

    assert done.returncode == 0, done.stderr
    assert (work / "E2611-00123.json").read_bytes() == _archived(gw, a_id)
    ack = next(e for e in gw.store.events(a_id) if e.kind == "acknowledged")
    assert ack.data["how"] == "moved to /archive"
    assert "downloaded" in _kinds(gw, a_id)
    listed = server.client(A, client_keys["erp"])
    assert listed.listdir("/outbox") == []


def test_an_invoice_appears_only_when_its_delivery_runs(gateway_factory, client_keys,
                                                        invoice_data, mailbox_server):
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-mailbox",
                        "settings": {"authorized_keys": [pub(client_keys["erp"])]}}])
    server = mailbox_server(gw)
    sftp = server.client(A, client_keys["erp"])
    invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))
    assert sftp.listdir("/outbox") == []

    deliver(gw)

    assert sftp.listdir("/outbox") == ["E2611-00123.json"]
    d = gw.store.deliveries(invoice_id=invoice_id)[0]
    assert d.status == "delivered" and d.receipt_id.startswith("sftp-mailbox:")
    assert d.receipt["recipients"] == {
        f"sftp://{A}/outbox/E2611-00123.json":
            f"published, sha256 {hashlib.sha256(_archived(gw, invoice_id)).hexdigest()}"}


def test_every_listed_file_is_complete_while_deliveries_run(gateway_factory, client_keys,
                                                            invoice_data, mailbox_server):
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-mailbox",
                        "settings": {"authorized_keys": [pub(client_keys["erp"])]}}])
    server = mailbox_server(gw)
    for i in range(20):
        push(gw, invoice(invoice_data, f"E2611-{i:05d}"))
    sftp = server.client(A, client_keys["erp"])
    worker = threading.Thread(target=deliver, args=(gw,))
    seen: dict[str, bytes] = {}
    worker.start()
    while worker.is_alive() or len(seen) < 20:
        for name in sftp.listdir("/outbox"):
            if name not in seen:
                with sftp.open(f"/outbox/{name}") as fh:
                    seen[name] = fh.read()
        if not worker.is_alive() and len(sftp.listdir("/outbox")) == len(seen):
            break
    worker.join()
    assert len(seen) == 20
    by_name = {d.filename: d.sha256 for r in gw.store.list_invoices(limit=50)
               for d in gw.store.documents(r.id)}
    for name, content in seen.items():
        assert hashlib.sha256(content).hexdigest() == by_name[name]


def test_settings_with_a_bad_key_are_refused_when_saved(gw):
    from gateway.errors import ConfigError

    with pytest.raises(ConfigError, match=r"authorized_keys\[0\]: .*not valid base64"):
        sftp_customer(gw, [{"channel": "sftp-mailbox",
                            "settings": {"authorized_keys": ["ssh-ed25519 %%%"]}}])


def test_a_name_taken_by_another_document_fails_permanently(gateway_factory, client_keys,
                                                            invoice_data, load_example):
    gw = gateway_factory(config=DISPATCH_CONFIG)
    sftp_customer(gw, [{"channel": "sftp-mailbox",
                        "settings": {"authorized_keys": [pub(client_keys["erp"])]}}])
    push(gw, invoice(invoice_data, "E2611-00123"))
    other_seller = {**invoice_data["seller"], "vat_id": "LV40003999999"}
    second = push(gw, invoice(invoice_data, "E2611-00123", seller=other_seller))

    deliver(gw)

    d = gw.store.deliveries(invoice_id=second)[0]
    assert d.status == "failed" and "/outbox/E2611-00123.json is already taken" in d.last_error


def test_the_outbox_holds_the_formats_the_mailbox_channel_wants(gateway_factory, client_keys,
                                                                 invoice_data, mailbox_server):
    from sftp_servers import BigFormatPlugin

    gw = gateway_factory(config=DISPATCH_CONFIG, extra_plugins=(("big", BigFormatPlugin()),))
    sftp_customer(gw, [
        {"channel": "folder", "formats": ["json"]},
        {"channel": "sftp-mailbox", "formats": ["big", "json"],
         "settings": {"authorized_keys": [pub(client_keys["erp"])],
                      "filename": "{seller_vat}_{stem}.{ext}"}}])
    invoice_id = push(gw, invoice(invoice_data, "E2611-00123"))
    deliver(gw)
    sftp = mailbox_server(gw).client(A, client_keys["erp"])

    names = sorted(sftp.listdir("/outbox"))

    assert names == ["LV40003000001_E2611-00123.bin", "LV40003000001_E2611-00123.json"]
    archived = {d.format: gw.archive.get(d.sha256) for d in gw.store.documents(invoice_id)}
    with sftp.open("/outbox/LV40003000001_E2611-00123.bin") as fh:
        fh.prefetch()
        assert fh.read() == archived["big"]  # 1.28 MB, read with pipelined requests
    kinds = [e.kind for e in gw.store.events(invoice_id)]
    assert kinds.count("downloaded") == 1


def test_reading_part_of_a_file_is_no_download(two_mailboxes, client_keys):
    gw, server, a_id, _ = two_mailboxes
    sftp = server.client(A, client_keys["erp"])

    with sftp.open("/outbox/E2611-00123.json") as fh:
        assert len(fh.read(100)) == 100

    assert "downloaded" not in _kinds(gw, a_id)
    assert sftp.listdir("/outbox") == ["E2611-00123.json"]
    partial = [e for e in server.audit() if e["event"] == "download"]
    assert partial == []


def test_authorized_keys_options_are_refused_not_ignored(gw, client_keys):
    from gateway.errors import ConfigError

    restricted = f'from="10.0.0.1" {pub(client_keys["erp"])}'
    with pytest.raises(ConfigError, match=r"authorized_keys options .* are not supported"):
        sftp_customer(gw, [{"channel": "sftp-mailbox",
                            "settings": {"authorized_keys": [restricted]}}])


# The S3 server of the distributed tests (tests/distributed/conftest.py).
from tests.distributed.conftest import s3_bucket, s3_env, s3_server  # noqa: E402, F401


def test_a_document_published_on_another_machine_is_served_from_the_s3_archive(
        gateway_factory, client_keys, invoice_data, mailbox_server, s3_bucket) -> None:  # noqa: F811
    """With the archive on S3, the worker that published a document may run on another
    machine: this machine's archive folder lacks it, and the server reads it from S3."""
    import shutil

    gw = gateway_factory(config=DISPATCH_CONFIG + f'[archive]\nurl = "s3://{s3_bucket}/a"\n')
    sftp_customer(gw, [{"channel": "sftp-mailbox",
                        "settings": {"authorized_keys": [pub(client_keys["erp"])]}}])
    a_id = push(gw, invoice(invoice_data, "E2611-00123"))
    assert deliver(gw).delivered == 1
    shutil.rmtree(gw.config.data_dir / "archive")  # the publishing worker's local copy
    sftp = mailbox_server(gw).client(A, client_keys["erp"])
    with sftp.open("/outbox/E2611-00123.json") as fh:
        assert fh.read() == _archived(gw, a_id)
    assert "downloaded" in _kinds(gw, a_id)
    sftp.close()
