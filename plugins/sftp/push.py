"""The ``sftp-push`` channel: uploads each document to the customer's own SFTP server.

The server's host key is checked before any credential is sent; an unknown or changed
key is a permanent failure (the customer's fallback applies), never a prompt. Each file
is written under a temporary dot-name and renamed into place, so an ERP polling the
directory never picks up half a file. A file already there with the same bytes counts
as delivered; with other bytes it is left alone and the delivery fails permanently.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import posixpath
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway import Bundle, DeliveryError, DeliveryState, Receipt, secret_from_env
from gateway.core import netguard
from plugins.sftp.keys import fingerprint, host_key_types, parse_public_key
from plugins.sftp.naming import check_pattern, remote_name

#: connections kept open at once during a dispatcher run; the oldest is closed first
MAX_POOLED = 16
_USER = re.compile(r"^[^\s\x00-\x1f\x7f:/]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def check_host(value: str) -> str:
    """A host name (RFC 1123) or an IP address, nothing that could smuggle more."""
    import ipaddress

    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(value.strip("[]")))
    name = value.removesuffix(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise ValueError("expected a host name such as sftp.example.lv, or an IP address")
    return value


class PushSettings(BaseModel):
    """Where and how to upload for one customer."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, description="The customer's SFTP server")
    port: int = Field(22, ge=1, le=65535)
    user: str = Field(min_length=1)
    host_key: str = Field(
        description="The server's public host key as an OpenSSH line ('ssh-ed25519 AAAA…'), "
        "e.g. from the server's /etc/ssh/ssh_host_ed25519_key.pub or ssh-keyscan")
    private_key: str | None = Field(
        None, description="Private key file; relative paths are inside the data directory")
    private_key_passphrase_env: str | None = Field(
        None, description="Environment variable holding the private key's passphrase")
    password_env: str | None = Field(
        None, description="Environment variable holding the password (when no key is used)")
    directory: str = Field(".", description="Remote directory (must exist)")
    filename: str = Field("{name}", description="File name pattern, e.g. "
                          "'{seller_vat}_{number}.{ext}'")
    # Bounded: a customer's slow (or tarpit) server must not hold a dispatcher for ever.
    timeout: float = Field(30.0, gt=0, le=120,
                           description="Seconds for connecting and each reply (at most 120)")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_host(value)

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        if len(value) > 64 or not _USER.match(value):
            raise ValueError("expected a login name of at most 64 characters without spaces, "
                             "control characters, ':' or '/'")
        return value

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: str) -> str:
        if len(value) > 1024 or _CONTROL.search(value):
            raise ValueError("expected a directory path of at most 1,024 characters without "
                             "control characters")
        return value

    @field_validator("host_key")
    @classmethod
    def _host_key(cls, value: str) -> str:
        parse_public_key(value, known_hosts=True)
        return value

    @field_validator("filename")
    @classmethod
    def _filename(cls, value: str) -> str:
        return check_pattern(value)

    @model_validator(mode="after")
    def _credentials(self) -> PushSettings:
        if not self.private_key and not self.password_env:
            raise ValueError("give private_key (a key file) or password_env (the name of an "
                             "environment variable holding the password)")
        return self


@dataclass
class _Connection:
    transport: Any
    sftp: Any
    #: the host key the server presented, as "ssh-ed25519 SHA256:…" (checked on connect)
    host_key: str = ""

    def alive(self) -> bool:
        return bool(self.transport.is_active())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sftp.close()
        with contextlib.suppress(Exception):
            self.transport.close()


class _ConnectionLost(Exception):
    """The SSH connection broke while talking to the server."""


class PushSession:
    """The SSH connections of one dispatcher run, one per destination (server, port,
    login, host key and credential), reused by every delivery to it in that run.

    What :meth:`SftpPushChannel.session` yields and ``deliver`` receives. A run that
    reaches many customers' servers keeps at most :data:`MAX_POOLED` open, closing the
    oldest first; :meth:`close` (at the end of the run) closes the rest. One run, one
    thread: a session is not shared between dispatchers running at once.
    """

    def __init__(self) -> None:
        self._open: dict[tuple[Any, ...], _Connection] = {}
        #: SSH connections this session opened
        self.connections_opened = 0
        #: deliveries that used a connection opened for an earlier one
        self.reused = 0

    def take(self, key: tuple[Any, ...]) -> _Connection | None:
        conn = self._open.get(key)
        if conn is not None and not conn.alive():
            self.drop(key, conn)
            return None
        if conn is not None:
            self.reused += 1
        return conn

    def keep(self, key: tuple[Any, ...], conn: _Connection) -> None:
        self.connections_opened += 1
        while len(self._open) >= MAX_POOLED:
            oldest = next(iter(self._open))
            self.drop(oldest, self._open[oldest])
        self._open[key] = conn

    def drop(self, key: tuple[Any, ...], conn: _Connection) -> None:
        conn.close()
        if self._open.get(key) is conn:
            del self._open[key]

    def close(self) -> None:
        open_now, self._open = self._open, {}
        for conn in open_now.values():
            conn.close()


class SftpPushChannel:
    name: ClassVar[str] = "sftp-push"
    description: ClassVar[str] = "Upload to the customer's SFTP server (host key verified)"
    Settings: ClassVar[type[BaseModel]] = PushSettings

    def __init__(self) -> None:
        self.data_dir = Path(".")
        #: how many SSH connections were opened (the benchmark and tests read it)
        self.connections_opened = 0

    def configure(self, settings: dict[str, Any], data_dir: Path) -> None:
        self.data_dir = data_dir

    @contextlib.contextmanager
    def session(self) -> Iterator[PushSession]:
        """A :class:`PushSession` for one dispatcher run: one connection per destination,
        open until the run ends (also when a delivery raised)."""
        session = PushSession()
        try:
            yield session
        finally:
            session.close()

    # ------------------------------------------------------------------ delivery

    def deliver(self, bundle: Bundle, settings: Any, state: DeliveryState,
                session: PushSession | None = None) -> Receipt:
        """Upload every document; ``session`` (the run's :class:`PushSession`) lends an
        open connection to this destination, without one a connection is opened for
        this delivery and closed after it."""
        s: PushSettings = settings
        where = f"sftp://{s.user}@{s.host}:{s.port}"
        key = (s.host, s.port, s.user, s.host_key, s.private_key, s.password_env)
        for first_try in (True, False):
            conn = session.take(key) if session is not None else None
            was_pooled = conn is not None
            if conn is None:
                conn = self._connect(s)
                if session is not None:
                    session.keep(key, conn)
            try:
                files = self._upload_all(conn.sftp, bundle, s, state)
            except _ConnectionLost as exc:
                self._drop(session, key, conn)
                if was_pooled and first_try:
                    continue  # an idle pooled connection may have timed out: one fresh try
                raise DeliveryError(f"{where}: connection lost: {exc}", retryable=True) from None
            except BaseException:
                self._drop(session, key, conn)
                raise
            if session is None:
                conn.close()
            break
        recipients = {f"{where}/{path.lstrip('/')}": f"{f['outcome']}, sha256 {f['sha256']}"
                      for path, f in files.items()}
        digest = hashlib.sha256(
            "\x1f".join([bundle.idempotency_key, *sorted(recipients)]).encode()).hexdigest()
        return Receipt(id=f"sftp-push:{digest[:32]}", detail=f"{where}/{s.directory}",
                       recipients=recipients,
                       data={"host": s.host, "port": s.port, "user": s.user,
                             "host_key": conn.host_key, "directory": s.directory,
                             "files": files, "connection": "reused" if was_pooled else "new"})

    def _upload_all(self, sftp: Any, bundle: Bundle, s: PushSettings,
                    state: DeliveryState) -> dict[str, dict[str, Any]]:
        """Remote path → {"size", "sha256", "outcome"} for every document."""
        where = f"sftp://{s.user}@{s.host}:{s.port}"
        files: dict[str, dict[str, Any]] = {}
        for doc in bundle.documents:
            name = remote_name(s.filename, bundle, doc)
            final = posixpath.join(s.directory, name)
            if state.done(final):
                # Uploaded by an earlier attempt: the ERP may already have taken it away,
                # so uploading again would hand it the invoice twice.
                outcome = "uploaded earlier"
            else:
                tag = hashlib.sha256(
                    f"{bundle.idempotency_key}\x1f{name}".encode()).hexdigest()
                tmp = posixpath.join(s.directory, f".{name}.{tag[:12]}.part")
                outcome = self._upload_one(sftp, final, tmp, doc.content, doc.sha256, where)
                state.mark_done(final, doc.sha256)
            files[final] = {"size": len(doc.content), "sha256": doc.sha256,
                            "outcome": outcome}
        return files

    def _upload_one(self, sftp: Any, final: str, tmp: str, content: bytes, sha256: str,
                    where: str) -> str:
        existing = self._remote_digest(sftp, final, len(content), where)
        if existing == sha256:
            return "already present"
        if existing is not None:
            raise DeliveryError(f"{where}: {final} already exists with other content; not "
                                "overwritten", retryable=False)
        with _sftp_errors(where, tmp, missing="the remote directory does not exist"):
            # The temporary name is stable per delivery, so a retry overwrites what a
            # dropped connection left behind instead of piling up fragments. confirm=True
            # costs a round trip but catches a write error on a pipelined upload, which
            # paramiko would otherwise swallow, before a short file is renamed into place.
            sftp.putfo(io.BytesIO(content), tmp, file_size=len(content), confirm=True)
        try:
            with _sftp_errors(where, final):
                sftp.rename(tmp, final)
        except (DeliveryError, _Missing) as exc:
            # SFTP rename never replaces a file: someone else wrote the name meanwhile.
            if self._remote_digest(sftp, final, len(content), where) == sha256:
                with contextlib.suppress(OSError):
                    sftp.remove(tmp)
                return "already present"
            if isinstance(exc, _Missing):
                raise DeliveryError(f"{where}: {tmp} vanished before it could be renamed",
                                    retryable=True) from None
            with contextlib.suppress(OSError):
                sftp.remove(tmp)
            raise
        return "uploaded"

    @staticmethod
    def _remote_digest(sftp: Any, path: str, expected_size: int, where: str) -> str | None:
        """sha256 of the remote file, None when there is none; a differing size is enough
        to know it differs without reading it."""
        try:
            with _sftp_errors(where, path):
                attrs = sftp.stat(path)
        except _Missing:
            return None
        if attrs.st_size != expected_size:
            return f"size {attrs.st_size}"
        digest = hashlib.sha256()
        with _sftp_errors(where, path), sftp.open(path, "rb") as fh:
            fh.prefetch(attrs.st_size)
            for chunk in iter(lambda: fh.read(65536), b""):
                digest.update(chunk)
        return digest.hexdigest()

    # ------------------------------------------------------------------ connections

    @staticmethod
    def _drop(session: PushSession | None, key: tuple[Any, ...], conn: _Connection) -> None:
        if session is not None:
            session.drop(key, conn)
        else:
            conn.close()

    def _connect(self, s: PushSettings) -> _Connection:
        import paramiko

        where = f"sftp://{s.user}@{s.host}:{s.port}"
        expected = parse_public_key(s.host_key, known_hosts=True)
        credential = self._credential(s, where)
        try:
            sock = netguard.connect(s.host, s.port, timeout=s.timeout)
        except netguard.DestinationRefused as exc:
            raise DeliveryError(netguard.refused(where, exc), retryable=False) from None
        except OSError as exc:
            raise DeliveryError(f"{where}: cannot connect: {exc.strerror or exc}",
                                retryable=True) from None
        transport = paramiko.Transport(sock)
        transport.banner_timeout = transport.handshake_timeout = s.timeout
        transport.auth_timeout = s.timeout
        transport.get_security_options().key_types = host_key_types(expected)
        conn = _Connection(transport, None)
        try:
            try:
                transport.start_client(timeout=s.timeout)
            except paramiko.ssh_exception.IncompatiblePeer as exc:
                if "host key" in str(exc):
                    raise DeliveryError(
                        f"{where}: unknown host key: the server offers no {expected.type} "
                        f"key, and the customer settings expect {expected.type} "
                        f"{expected.fingerprint}; nothing was sent", retryable=False) from None
                raise DeliveryError(f"{where}: SSH negotiation failed: {exc}",
                                    retryable=False) from None
            got = transport.get_remote_server_key()
            if not expected.matches(got):
                raise DeliveryError(
                    f"{where}: host key changed: the server presented {got.get_name()} "
                    f"{fingerprint(got.asbytes())}, the customer settings expect "
                    f"{expected.type} {expected.fingerprint}; nothing was sent. If the "
                    "server's key was replaced on purpose, update host_key",
                    retryable=False)
            conn.host_key = f"{got.get_name()} {fingerprint(got.asbytes())}"
            try:
                if isinstance(credential, str):
                    transport.auth_password(s.user, credential)
                else:
                    transport.auth_publickey(s.user, credential)
            except paramiko.AuthenticationException:
                how = "password" if isinstance(credential, str) else \
                    f"key {fingerprint(credential.asbytes())}"
                raise DeliveryError(f"{where}: the server refused login as {s.user!r} with "
                                    f"{how}", retryable=False) from None
            conn.sftp = paramiko.SFTPClient.from_transport(transport)
            conn.sftp.get_channel().settimeout(s.timeout)
        except DeliveryError:
            conn.close()
            raise
        except (paramiko.SSHException, EOFError, OSError) as exc:
            conn.close()
            raise DeliveryError(f"{where}: SSH connection failed: {exc or type(exc).__name__}",
                                retryable=True) from None
        self.connections_opened += 1
        return conn

    def _credential(self, s: PushSettings, where: str) -> Any:
        import paramiko

        if s.private_key:
            path = Path(s.private_key).expanduser()
            if not path.is_absolute():
                path = self.data_dir / path
            passphrase = secret_from_env(
                s.private_key_passphrase_env, purpose=f"{where}: passphrase of {path}",
                setting="private_key_passphrase_env").encode() \
                if s.private_key_passphrase_env else None
            try:
                return paramiko.PKey.from_path(path, passphrase)
            except FileNotFoundError:
                raise DeliveryError(f"{where}: private key file {path} not found",
                                    retryable=False) from None
            except (paramiko.PasswordRequiredException, TypeError):
                # TypeError: the cryptography library's word for a missing passphrase.
                raise DeliveryError(
                    f"{where}: private key {path} is encrypted; set "
                    f"private_key_passphrase_env to a variable holding its passphrase",
                    retryable=False) from None
            except (paramiko.SSHException, OSError, ValueError) as exc:
                raise DeliveryError(f"{where}: cannot read private key {path}: {exc}",
                                    retryable=False) from None
        return secret_from_env(s.password_env or "", purpose=where)


class _Missing(Exception):
    """The remote path does not exist."""


@contextlib.contextmanager
def _sftp_errors(where: str, path: str, *, missing: str | None = None) -> Iterator[None]:
    """Sort SFTP failures into: missing file, permanent refusal, lost connection, retry.

    ``missing`` turns "no such file" into a permanent error with that explanation
    (uploading into a directory that is not there cannot succeed on a retry).
    """
    import paramiko

    try:
        yield
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENOENT:
            if missing is None:
                raise _Missing(path) from None
            raise DeliveryError(f"{where}: {path}: {missing}", retryable=False) from None
        if isinstance(exc, PermissionError):
            raise DeliveryError(f"{where}: permission denied for {path}",
                                retryable=False) from None
        if exc.errno == errno.EACCES:
            raise DeliveryError(f"{where}: permission denied for {path}",
                                retryable=False) from None
        if isinstance(exc, (socket.timeout, ConnectionError)):
            raise _ConnectionLost(str(exc) or type(exc).__name__) from None
        # A generic SFTP failure (disk full, quota): an operator on the far side may fix it.
        raise DeliveryError(f"{where}: {path}: {exc}", retryable=True) from None
    except (EOFError, paramiko.SSHException) as exc:
        raise _ConnectionLost(str(exc) or type(exc).__name__) from None
