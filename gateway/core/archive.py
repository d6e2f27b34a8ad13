"""The document archive: immutable, content-addressed files (sha256) on disk."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path

from gateway.core.fsutil import atomic_write
from gateway.errors import StorageError


class Archive:
    """Stores bytes under their sha256; the same content is stored once, never changed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:]

    def put(self, content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        path = self.path_for(digest)
        if path.exists() and path.stat().st_size == len(content):
            return digest
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
        """None when the document is intact, else what is wrong with it."""
        path = self.path_for(sha256)
        if not path.exists():
            return "missing"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return None if digest == sha256 else f"changed (now {digest[:12]}…)"


def _explain(exc: OSError, where: Path) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"no space left in {where}; nothing was written"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"cannot write to {where} ({exc.strerror}); nothing was written"
    return f"cannot write to {where}: {exc}"
