"""The document archive: immutable, content-addressed documents (sha256).

:class:`ArchiveBackend` is what the pipeline, dispatcher, portal and ``gateway verify``
need; :class:`FolderArchive` (the embedded default, a folder in the data directory) and
:class:`~gateway.core.archive_s3.S3Archive` (any S3-compatible object storage) implement
it. Both store a document under its sha256 and never change it: putting a different body
under an existing key — which can only mean the stored copy was damaged — is an error.
"""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from gateway.core.fsutil import atomic_write
from gateway.errors import ConfigError, StorageError

if TYPE_CHECKING:
    from gateway.core.config import Config


@runtime_checkable
class ArchiveBackend(Protocol):
    """Where archived documents live. Every method is safe to call twice."""

    location: str  # for messages: a folder, or s3://bucket/prefix

    def put(self, content: bytes) -> str:
        """Store ``content`` under its sha256 (once) and return the digest."""
        ...

    def get(self, sha256: str) -> bytes:
        """The document, re-hashed; :class:`StorageError` when missing or changed."""
        ...

    def check(self, sha256: str) -> str | None:
        """None when the document is intact, else what is wrong with it."""
        ...

    def leftovers(self) -> list[str]:
        """Traces of interrupted writes an operator may delete (never a document)."""
        ...


def check_digest(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256


def key_for(sha256: str) -> str:
    """``ab/cdef…``: 256 folders (or key prefixes) keep listings short."""
    check_digest(sha256)
    return f"{sha256[:2]}/{sha256[2:]}"


def overwrite_refused(sha256: str, where: str, found: str) -> StorageError:
    return StorageError(
        f"archived document {sha256} in {where} has a different body (sha256 {found[:12]}…); "
        "the archive is write-once, so nothing was overwritten — run 'gateway verify'")


class FolderArchive:
    """Stores bytes under their sha256 in a folder; the same content is stored once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def path_for(self, sha256: str) -> Path:
        return self.root / key_for(sha256)

    def put(self, content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        path = self.path_for(digest)
        if path.exists():
            # Write-once: an existing file is kept, and must be what it claims to be (a
            # size check alone would let a damaged copy of the same length pass).
            found = hashlib.sha256(path.read_bytes()).hexdigest()
            if found == digest:
                return digest
            raise overwrite_refused(digest, self.location, found)
        try:
            atomic_write(path, content, mode=0o444)
        except OSError as exc:
            raise StorageError(_explain(exc, self.root)) from None
        return digest

    def get(self, sha256: str) -> bytes:
        path = self.path_for(sha256)
        try:
            content = path.read_bytes()
        except FileNotFoundError:
            raise StorageError(f"archived document {sha256} is missing from {self.root}") from None
        if hashlib.sha256(content).hexdigest() != sha256:
            raise StorageError(f"archived document {sha256} was changed on disk ({path})")
        return content

    def check(self, sha256: str) -> str | None:
        path = self.path_for(sha256)
        if not path.exists():
            return "missing"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return None if digest == sha256 else f"changed (now {digest[:12]}…)"

    def leftovers(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(str(p) for p in self.root.glob("*/.tmp-*"))


# The name every caller used before there was more than one backend.
Archive = FolderArchive


def open_archive(config: Config) -> ArchiveBackend:
    """The archive the configuration names: ``[archive] url`` (or ``GATEWAY_ARCHIVE_URL``)
    ``s3://bucket/prefix``, else the ``archive`` folder of the data directory."""
    url = config.archive.url
    if not url:
        return FolderArchive(config.data_dir / "archive")
    if url.startswith("s3://"):
        from gateway.core.archive_s3 import S3Archive

        return S3Archive.from_url(url, endpoint_url=config.archive.endpoint_url,
                                  region=config.archive.region)
    if url.startswith("file://") or "://" not in url:
        path = Path(url.removeprefix("file://")).expanduser()
        return FolderArchive(path if path.is_absolute() else config.data_dir / path)
    raise ConfigError(f"archive url {url!r}: expected s3://bucket/prefix or a folder")


def _explain(exc: OSError, where: Path) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"no space left in {where}; nothing was written"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write to {where} ({exc.strerror}); nothing was written"
    return f"cannot write to {where}: {exc}"
