"""The archive backends, each against the real thing: a folder, and S3 (SeaweedFS)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from gateway.core.archive import ArchiveBackend, FolderArchive, open_archive
from gateway.core.archive_s3 import S3Archive
from gateway.core.config import load_config
from gateway.errors import ConfigError, StorageError
from tests.conftest import GatewayFactory
from tests.distributed.services import S3Server


def _tamper(archive: ArchiveBackend, sha: str, body: bytes) -> None:
    """Replace a stored document behind the archive's back (disk rot, a stray tool)."""
    if isinstance(archive, FolderArchive):
        path = archive.path_for(sha)
        path.chmod(0o644)
        path.write_bytes(body)
    else:
        assert isinstance(archive, S3Archive)
        archive.client.put_object(Bucket=archive.bucket, Key=archive.key(sha), Body=body)


def test_put_stores_under_the_sha256_and_get_returns_the_same_bytes(
        archive: ArchiveBackend) -> None:
    body = b"%PDF-1.7 an invoice\n" * 100
    sha = archive.put(body)
    assert sha == hashlib.sha256(body).hexdigest()
    assert archive.get(sha) == body
    assert archive.check(sha) is None


def test_putting_the_same_document_twice_is_harmless(archive: ArchiveBackend) -> None:
    body = b"<Invoice/>"
    assert archive.put(body) == archive.put(body)
    assert archive.get(hashlib.sha256(body).hexdigest()) == body


def test_many_writers_of_one_document_at_once_all_succeed(archive: ArchiveBackend) -> None:
    body = b"same document from eight workers"
    errors: list[BaseException] = []

    def put() -> None:
        try:
            archive.put(body)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert archive.get(hashlib.sha256(body).hexdigest()) == body


def _reopen(archive: ArchiveBackend) -> ArchiveBackend:
    """The same archive as another process sees it (no cached copies)."""
    if isinstance(archive, S3Archive):
        return S3Archive(archive.bucket, archive.prefix)
    return archive


def test_a_different_body_under_an_existing_key_is_refused_not_overwritten(
        archive: ArchiveBackend) -> None:
    body = b"the original document"
    sha = archive.put(body)
    _tamper(archive, sha, b"a forged document!!!!")  # same length: no shortcut by size
    with pytest.raises(StorageError, match="write-once"):
        archive.put(body)
    assert archive.check(sha) is not None and archive.check(sha).startswith("changed")
    with pytest.raises(StorageError, match="changed"):
        _reopen(archive).get(sha)


def test_the_s3_read_cache_stays_within_its_bound(s3_bucket: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.core import archive_s3

    monkeypatch.setattr(archive_s3, "CACHE_BYTES", 64 * 1024)
    archive = S3Archive(s3_bucket)
    shas = [archive.put(bytes([i]) * 3000) for i in range(60)]  # 180 kB in all
    assert archive._cache_bytes <= 64 * 1024
    assert [archive.get(sha) for sha in shas] == [bytes([i]) * 3000 for i in range(60)]
    assert archive._cache_bytes <= 64 * 1024


def test_a_missing_document_is_reported_with_its_digest(archive: ArchiveBackend) -> None:
    sha = hashlib.sha256(b"never stored").hexdigest()
    assert archive.check(sha) == "missing"
    with pytest.raises(StorageError, match=sha):
        archive.get(sha)


def test_a_malformed_digest_is_refused(archive: ArchiveBackend) -> None:
    with pytest.raises(ValueError, match="sha256"):
        archive.get("../../etc/passwd")


def test_open_archive_follows_the_configuration(tmp_path: Path, s3_bucket: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    assert isinstance(open_archive(load_config(data)), FolderArchive)
    (data / "gateway.toml").write_text(f'[archive]\nurl = "s3://{s3_bucket}/p"\n')
    archive = open_archive(load_config(data))
    assert isinstance(archive, S3Archive) and archive.location == f"s3://{s3_bucket}/p"
    sha = archive.put(b"x")
    assert archive.client.head_object(Bucket=s3_bucket, Key=f"p/{sha[:2]}/{sha[2:]}")
    (data / "gateway.toml").write_text('[archive]\nurl = "ftp://nope"\n')
    with pytest.raises(ConfigError, match="s3://bucket/prefix"):
        open_archive(load_config(data))


def test_s3_errors_are_one_clear_line(s3_env: S3Server, s3_bucket: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist"):
        S3Archive("no-such-bucket").get(hashlib.sha256(b"x").hexdigest())
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(StorageError, match="access denied"):
        S3Archive(s3_bucket).put(b"x")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(StorageError, match="nothing was written"):
        S3Archive(s3_bucket).put(b"y")


def test_push_deliver_and_verify_on_either_archive(
        archive_url: str, gateway_factory: GatewayFactory, invoice_data: dict[str, Any],
        tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    """The whole pipeline on each backend: documents go to the configured archive, the
    folder channel gets them from there, and ``gateway verify`` re-hashes them there."""
    receiver = tmp_path / "receiver"
    data = tmp_path / "data"
    data.mkdir()
    (data / "gateway.toml").write_text(f'[archive]\nurl = "{archive_url}"\n')
    (tmp_path / "c.toml").write_text(
        '[[customer]]\nid = "100234567"\nname = "J"\nformats = ["json"]\n'
        'match = ["C-100234567"]\n[[customer.channels]]\nchannel = "folder"\n'
        f'settings = {{ path = "{receiver}" }}\n')
    invoice = tmp_path / "invoice.json"
    invoice.write_text(json.dumps(invoice_data))
    assert run_cli("customer", "import", str(tmp_path / "c.toml")
               ).exit_code == 0
    result = run_cli("push", str(invoice))
    assert result.exit_code == 0, result.output
    assert "1 delivered" in result.output
    delivered = list(receiver.rglob("*.json"))
    assert len(delivered) == 1
    assert not (data / "archive").exists() or archive_url.startswith(str(data))
    verified = run_cli("verify")
    assert verified.exit_code == 0 and "1 documents" in verified.output, verified.output

    gw = gateway_factory(data_dir=data)
    doc = gw.store.documents(gw.store.list_invoices()[0].id)[0]
    _tamper(gw.archive, doc.sha256, b"tampered")
    verified = run_cli("verify")
    assert verified.exit_code == 1
    assert f"of invoice {doc.invoice_id}: changed" in verified.output
