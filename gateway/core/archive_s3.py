"""The archive on S3-compatible object storage (AWS S3, SeaweedFS, MinIO, Ceph RGW, …).

``[archive] url = "s3://bucket/prefix"``. The endpoint and the credentials come from the
environment as for every AWS tool (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION`` or a profile), never from the
configuration file; ``[archive] endpoint_url`` may name a non-secret endpoint instead.

Objects are written with ``If-None-Match: *``: the first writer of a key wins, and a
second put of the same key only checks that the stored body is the same document.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from typing import Any

from gateway.core.archive import check_digest, key_for, overwrite_refused
from gateway.errors import ConfigError, StorageError

# Documents are bounded by the renderers; this bounds a read of a damaged or foreign object.
MAX_OBJECT_BYTES = 256 * 1024 * 1024
# Recently read or written documents, per process: the deliveries of one invoice (folder,
# SFTP, portal) read the same documents one after another, and an object never changes
# under its key, so a copy is as good as a read. Bounded, so a worker's memory stays flat.
CACHE_BYTES = 32 * 1024 * 1024
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_EXISTS = {"412", "PreconditionFailed"}


class S3Archive:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None) -> None:
        if not bucket:
            raise ConfigError("archive url s3://…: the bucket name is missing")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or None
        self.region = region
        self.location = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._local = threading.local()
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_bytes = 0
        self._cache_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, endpoint_url: str | None = None,
                 region: str | None = None) -> S3Archive:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        return cls(bucket, prefix, endpoint_url=endpoint_url, region=region)

    @property
    def client(self) -> Any:
        # boto3 clients are thread-safe but not fork-safe: a Celery prefork child, or a
        # thread of the portal, builds its own on first use.
        pid = os.getpid()
        cached = getattr(self._local, "client", None)
        if cached is None or cached[0] != pid:
            import boto3
            from botocore.config import Config as BotoConfig

            client = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region,
                config=BotoConfig(connect_timeout=5, read_timeout=60,
                                  retries={"mode": "standard", "max_attempts": 5},
                                  s3={"addressing_style": "path"}))
            cached = (pid, client)
            self._local.client = cached
        return cached[1]

    def key(self, sha256: str) -> str:
        return f"{self.prefix}/{key_for(sha256)}" if self.prefix else key_for(sha256)

    def put(self, content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key(digest), Body=content,
                                   IfNoneMatch="*", ContentType="application/octet-stream",
                                   Metadata={"sha256": digest})
        except Exception as exc:
            if _code(exc) not in _EXISTS:
                raise StorageError(self._explain(exc, "write", digest) +
                                   "; nothing was written") from None
            # Already there (another worker, or a rerun): keep it if it is this document.
            found = self._read(digest)
            if found is not None and hashlib.sha256(found).hexdigest() != digest:
                raise overwrite_refused(digest, self.location,
                                        hashlib.sha256(found).hexdigest()) from None
        self._remember(digest, content)
        return digest

    def get(self, sha256: str) -> bytes:
        with self._cache_lock:
            cached = self._cache.get(sha256)
            if cached is not None:
                self._cache.move_to_end(sha256)
                return cached
        content = self._read(sha256)
        if content is None:
            raise StorageError(f"archived document {sha256} is missing from {self.location}")
        if hashlib.sha256(content).hexdigest() != sha256:
            raise StorageError(f"archived document {sha256} was changed in {self.location}")
        self._remember(sha256, content)
        return content

    def _remember(self, sha256: str, content: bytes) -> None:
        if len(content) > CACHE_BYTES // 16:
            return
        with self._cache_lock:
            if sha256 in self._cache:
                return
            self._cache[sha256] = content
            self._cache_bytes += len(content)
            while self._cache_bytes > CACHE_BYTES:
                _, dropped = self._cache.popitem(last=False)
                self._cache_bytes -= len(dropped)

    def check(self, sha256: str) -> str | None:
        # Always the stored object, never the cache: this is what `gateway verify` asks.
        content = self._read(sha256)
        if content is None:
            return "missing"
        digest = hashlib.sha256(content).hexdigest()
        return None if digest == sha256 else f"changed (now {digest[:12]}…)"

    def leftovers(self) -> list[str]:
        # Single-part puts are atomic on S3: an interrupted one leaves nothing behind.
        return []

    def _read(self, sha256: str) -> bytes | None:
        check_digest(sha256)
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key(sha256))
        except Exception as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise StorageError(self._explain(exc, "read", sha256)) from None
        body = obj["Body"]
        try:
            if int(obj.get("ContentLength") or 0) > MAX_OBJECT_BYTES:
                raise StorageError(f"archived document {sha256} in {self.location} is larger "
                                   f"than {MAX_OBJECT_BYTES // 2**20} MiB; not read")
            return body.read(MAX_OBJECT_BYTES + 1)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(self._explain(exc, "read", sha256)) from None
        finally:
            body.close()

    def _explain(self, exc: Exception, what: str, sha256: str) -> str:
        code = _code(exc)
        where = f"{self.location}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")
        if code == "NoSuchBucket":
            return f"cannot {what} document {sha256[:12]}…: bucket {self.bucket!r} does not exist"
        if code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}:
            return (f"cannot {what} document {sha256[:12]}… in {where}: access denied ({code}); "
                    "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
        if type(exc).__name__ == "NoCredentialsError":
            return (f"cannot {what} {where}: no S3 credentials (set AWS_ACCESS_KEY_ID and "
                    "AWS_SECRET_ACCESS_KEY)")
        return f"cannot {what} document {sha256[:12]}… in {where}: {exc}"


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
