"""``gateway serve sftp``: the SFTP server customer ERPs pull their invoices from.

Every account is a customer id with an ``sftp-mailbox`` channel; it logs in with one of
the public keys in that channel's ``authorized_keys`` (passwords are never accepted) and
sees a virtual tree that exists only in the mailbox index::

    /outbox/    documents published to it and not yet acknowledged
    /archive/   every document ever published to it (read-only)

There is no real directory behind these paths, so no path (``..``, absolute, symlink)
can reach another account's files or the host's. Reading a whole file records a
``downloaded`` event; deleting it from ``/outbox`` or moving it into ``/archive`` records
``acknowledged`` (both with ``via = "sftp-mailbox"``, as the portal records its own
downloads). Every refusal is written to the audit log
(``DATA_DIR/sftp/audit.log``, one JSON object a line) and the ``gateway.sftp`` logger.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import stat
import threading
import time
from pathlib import Path
from typing import Any

import paramiko
from paramiko.sftp import (
    SFTP_FAILURE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
)

from gateway import GatewayError
from plugins.sftp.keys import fingerprint
from plugins.sftp.mailbox import MailboxFile, MailboxIndex, MailboxSettings

log = logging.getLogger("gateway.sftp")
# paramiko logs a port scan or a dropped handshake as an ERROR with a traceback; the
# audit log records those connections in one line, so its own chatter stays quiet.
_ssh_log = logging.getLogger("gateway.sftp.ssh")
_ssh_log.setLevel(logging.CRITICAL)

CHANNEL = "sftp-mailbox"
OUTBOX, ARCHIVE = "outbox", "archive"
MAX_AUTH_TRIES = 6
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message",
                                                                           "asctime"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class AuditLog:
    """Append-only JSON lines: who did what to which path, and whether it was allowed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, *, outcome: str, level: int = logging.INFO,
              **data: Any) -> None:
        entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event,
                 "outcome": outcome, **data}
        line = json.dumps(entry, ensure_ascii=False, default=str)
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        # LogRecord refuses extra keys that shadow its own attributes ("name", "args").
        extra = {k if k not in _RECORD_FIELDS else f"sftp_{k}": v for k, v in data.items()}
        log.log(level, "sftp %s %s", event, outcome, extra=extra)


def load_or_create_host_key(path: Path) -> paramiko.PKey:
    """The server's identity; created (Ed25519) on first start so customers can pin it."""
    if path.exists():
        try:
            return paramiko.PKey.from_path(path)
        except (paramiko.SSHException, OSError, ValueError) as exc:
            raise GatewayError(f"cannot read the SFTP host key {path}: {exc}") from None
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(tmp, path)
    return paramiko.PKey.from_path(path)


class Refused(Exception):
    """A request outside what the account may do; the text says why (for the audit)."""

    def __init__(self, reason: str, code: int = SFTP_PERMISSION_DENIED) -> None:
        super().__init__(reason)
        self.code = code


class MailboxServer:
    """Accepts SSH connections and serves each account its mailbox."""

    def __init__(self, gateway: Any, *, host: str = "127.0.0.1", port: int = 2222,
                 host_key: paramiko.PKey, audit: AuditLog | None = None,
                 max_connections: int = 64, login_timeout: float = 10.0,
                 max_unauthenticated: int = 16, max_unauthenticated_per_source: int = 4) -> None:
        self.gw = gateway
        self.login_timeout = login_timeout
        # Connections that have not logged in yet, in total and per source address: a
        # client (or a scanner) that opens many and sits on them fills only its own
        # share, and only for login_timeout seconds; logged-in ERPs are not counted.
        self.max_unauthenticated = max_unauthenticated
        self.max_unauthenticated_per_source = max_unauthenticated_per_source
        self._unauthenticated: dict[str, int] = {}
        self._count_lock = threading.Lock()
        self.host_key = host_key
        channel = gateway.plugins.channels.get(CHANNEL)
        self.channel = channel
        self.index: MailboxIndex = channel.index
        self.audit = audit or AuditLog(gateway.config.data_dir / "sftp" / "audit.log")
        self.store_lock = threading.Lock()  # the core store's connection is not re-entrant
        self._slots = threading.BoundedSemaphore(max_connections)
        self._transports: set[paramiko.Transport] = set()
        self._closing = threading.Event()
        try:
            self._sock = socket.create_server((host, port), reuse_port=False)
        except OSError as exc:
            raise GatewayError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.host, self.port = self._sock.getsockname()[:2]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.host_key.asbytes())

    def serve_forever(self) -> None:
        self._sock.settimeout(0.5)
        while not self._closing.is_set():
            try:
                conn, addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._closing.is_set():
                    break
                raise
            reason = self._admit(addr[0])
            if reason is not None:
                self.audit.write("connect", outcome="refused", level=logging.WARNING,
                                 peer=f"{addr[0]}:{addr[1]}", reason=reason)
                conn.close()
                continue
            threading.Thread(target=self._handle, args=(conn, addr), daemon=True,
                             name=f"sftp-{addr[0]}:{addr[1]}").start()

    def _admit(self, source: str) -> str | None:
        """Take a slot and a pre-login place for a new connection, or say why not."""
        with self._count_lock:
            waiting = self._unauthenticated.get(source, 0)
            if waiting >= self.max_unauthenticated_per_source:
                return (f"{waiting} connections from {source} have not logged in yet "
                        f"(at most {self.max_unauthenticated_per_source})")
            if sum(self._unauthenticated.values()) >= self.max_unauthenticated:
                return f"{self.max_unauthenticated} connections are waiting to log in"
            if not self._slots.acquire(blocking=False):
                return "too many connections"
            self._unauthenticated[source] = waiting + 1
        return None

    def _logged_in(self, source: str) -> None:
        """One connection from ``source`` is no longer waiting to log in."""
        with self._count_lock:
            left = self._unauthenticated.get(source, 0) - 1
            if left > 0:
                self._unauthenticated[source] = left
            else:
                self._unauthenticated.pop(source, None)

    def shutdown(self) -> None:
        self._closing.set()
        with contextlib.suppress(OSError):
            self._sock.close()
        for transport in list(self._transports):
            transport.close()

    def _handle(self, conn: socket.socket, addr: tuple[Any, ...]) -> None:
        peer = f"{addr[0]}:{addr[1]}"
        place = _WaitingPlace(self, addr[0])
        transport = paramiko.Transport(conn)
        transport.set_log_channel(_ssh_log.name)
        # A client that sends no banner, or stalls the key exchange, is dropped within the
        # login timeout too, not paramiko's own (longer) defaults.
        transport.banner_timeout = transport.handshake_timeout = self.login_timeout
        transport.auth_timeout = self.login_timeout
        self._transports.add(transport)
        try:
            transport.add_server_key(self.host_key)
            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, MailboxSFTP)
            auth = AccountAuth(self, peer, transport, on_login=place.leave)
            try:
                transport.start_server(server=auth)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                self.audit.write("connect", outcome="failed", peer=peer, reason=str(exc))
                return
            # The transport runs in its own thread; wait for it so the slot stays taken,
            # but not for a client that connects and never logs in.
            deadline = time.monotonic() + self.login_timeout
            while transport.is_active() and not self._closing.is_set():
                waiting = not place.left
                if waiting and time.monotonic() > deadline:
                    self.audit.write("login", outcome="refused", level=logging.WARNING,
                                     peer=peer, reason=f"no login within "
                                     f"{self.login_timeout:g} s")
                    break
                transport.join(0.1 if waiting else 0.5)
        finally:
            transport.close()
            self._transports.discard(transport)
            place.leave()
            self._slots.release()

    # ------------------------------------------------------------------ accounts

    def account_settings(self, account: str) -> list[MailboxSettings]:
        """The account's mailbox settings, from the customer's current preferences (so a
        removed key stops working at once)."""
        with self.store_lock:
            customer = self.gw.store.get_customer(account)
        if customer is None:
            return []
        result = []
        for pref in customer.channels:
            if pref.channel == CHANNEL:
                result.append(self.gw.channel_settings(self.channel, pref.settings,
                                                       context=f"customer {account}"))
        return result

    def record_event(self, invoice_id: str, kind: str, data: dict[str, Any]) -> None:
        with self.store_lock:
            self.gw.store.append_event(invoice_id, kind, data)


class _WaitingPlace:
    """A connection's place among those waiting to log in, given up exactly once: at
    login, or when the connection ends without one."""

    def __init__(self, server: MailboxServer, source: str) -> None:
        self.server, self.source = server, source
        self.left = False
        self._lock = threading.Lock()

    def leave(self) -> None:
        with self._lock:
            if self.left:
                return
            self.left = True
        self.server._logged_in(self.source)


class AccountAuth(paramiko.ServerInterface):
    """Public-key logins only, one account per customer."""

    def __init__(self, server: MailboxServer, peer: str,
                 transport: paramiko.Transport | None = None,
                 on_login: Any = None) -> None:
        self.on_login = on_login
        self.server = server
        self.peer = peer
        self.transport = transport
        self.account: str | None = None
        self.failures = 0

    def _failed(self, **data: Any) -> int:
        self.failures += 1
        self.server.audit.write("login", outcome="refused", level=logging.WARNING,
                                peer=self.peer, **data)
        if self.failures >= MAX_AUTH_TRIES and self.transport is not None:
            # Like OpenSSH's MaxAuthTries: a client guessing keys gets disconnected.
            self.transport.close()
        return paramiko.AUTH_FAILED

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_none(self, username: str) -> int:
        return paramiko.AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        return self._failed(account=username, method="password",
                            reason="password login is not allowed; use a key")

    def check_auth_interactive(self, username: str, submethods: str) -> Any:
        return self._failed(account=username, method="keyboard-interactive",
                            reason="only public keys are allowed")

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        blob = key.asbytes()
        try:
            allowed = [k for s in self.server.account_settings(username) for k in s.public_keys()]
        except (GatewayError, ValueError) as exc:
            allowed = []
            log.error("sftp account %s has unusable settings: %s", username, exc)
        if any(k.blob == blob for k in allowed):
            self.account = username
            if self.on_login is not None:
                self.on_login()  # no longer waiting: its source may open another
            return paramiko.AUTH_SUCCESSFUL
        reason = "unknown key" if allowed else "no such account (or it has no keys)"
        return self._failed(account=username, method="publickey",
                            key=f"{key.get_name()} {fingerprint(blob)}", reason=reason)

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_subsystem_request(self, channel: Any, name: str) -> bool:
        if name != "sftp" or self.account is None:
            return self._not_allowed("subsystem", name)
        return bool(super().check_channel_subsystem_request(channel, name))

    def _not_allowed(self, what: str, detail: str = "") -> bool:
        self.server.audit.write(what, outcome="refused", level=logging.WARNING,
                                account=self.account, peer=self.peer, path=detail,
                                reason="only the sftp subsystem is served")
        return False

    def check_channel_exec_request(self, channel: Any, command: bytes) -> bool:
        return self._not_allowed("exec", command.decode(errors="replace")[:200])

    def check_channel_shell_request(self, channel: Any) -> bool:
        return self._not_allowed("shell")

    def check_channel_pty_request(self, channel: Any, *args: Any) -> bool:
        return self._not_allowed("pty")

    def check_port_forward_request(self, address: str, port: int) -> Any:
        return self._not_allowed("port-forward", f"{address}:{port}")

    def check_channel_direct_tcpip_request(self, chanid: int, origin: Any,
                                           destination: Any) -> int:
        self._not_allowed("direct-tcpip", f"{destination[0]}:{destination[1]}")
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


def _attrs(name: str, *, size: int = 0, mtime: float = 0.0, directory: bool = False,
           writable: bool = False) -> paramiko.SFTPAttributes:
    attrs = paramiko.SFTPAttributes()
    attrs.filename = name
    attrs.st_size = size
    attrs.st_uid = attrs.st_gid = 0
    perms = 0o755 if directory and writable else 0o555 if directory else 0o444
    attrs.st_mode = (stat.S_IFDIR if directory else stat.S_IFREG) | perms
    attrs.st_mtime = attrs.st_atime = int(mtime or time.time())
    return attrs


class MailboxSFTP(paramiko.SFTPServerInterface):
    """One logged-in account's view: ``/``, ``/outbox``, ``/archive`` and their files."""

    def __init__(self, server: AccountAuth, *args: Any, **kwargs: Any) -> None:
        super().__init__(server, *args, **kwargs)
        self.auth = server
        self.mailbox = server.server
        self.account = server.account or ""
        self.peer = server.peer

    # ------------------------------------------------------------------ helpers

    def _refuse(self, op: str, path: str, exc: Refused) -> int:
        self.mailbox.audit.write(op, outcome="refused", level=logging.WARNING,
                                 account=self.account, peer=self.peer, path=path,
                                 reason=str(exc))
        return exc.code

    @staticmethod
    def _parts(path: str) -> tuple[str, ...]:
        """Resolve ``path`` inside the virtual root; refuse anything that climbs out."""
        if "\x00" in path:
            raise Refused("path contains a NUL byte")
        parts: list[str] = []
        for comp in path.split("/"):
            if comp in ("", "."):
                continue
            if comp == "..":
                if not parts:
                    raise Refused("path leads outside the mailbox")
                parts.pop()
            else:
                parts.append(comp)
        return tuple(parts)

    def _file(self, parts: tuple[str, ...]) -> MailboxFile:
        if len(parts) != 2 or parts[0] not in (OUTBOX, ARCHIVE):
            raise Refused("not a path of this mailbox (only /outbox and /archive exist)",
                          SFTP_NO_SUCH_FILE if parts[:1] in ((OUTBOX,), (ARCHIVE,))
                          else SFTP_PERMISSION_DENIED)
        found = self.mailbox.index.get(self.account, parts[1])
        if found is None or (parts[0] == OUTBOX and found.acked_at is not None):
            raise Refused("no such file in this mailbox", SFTP_NO_SUCH_FILE)
        return found

    # ------------------------------------------------------------------ session

    def session_started(self) -> None:
        self.mailbox.audit.write("session", outcome="started", account=self.account,
                                 peer=self.peer)

    def session_ended(self) -> None:
        self.mailbox.audit.write("session", outcome="ended", account=self.account,
                                 peer=self.peer)

    def canonicalize(self, path: str) -> str:
        try:
            return "/" + "/".join(self._parts(path))
        except Refused as exc:
            self._refuse("realpath", path, exc)
            raise

    # ------------------------------------------------------------------ reading

    def list_folder(self, path: str) -> Any:
        try:
            parts = self._parts(path)
            if parts == ():
                return [_attrs(OUTBOX, directory=True, writable=True),
                        _attrs(ARCHIVE, directory=True)]
            if parts in ((OUTBOX,), (ARCHIVE,)):
                files = self.mailbox.index.list(self.account, outbox_only=parts[0] == OUTBOX)
                return [_attrs(f.name, size=f.size, mtime=f.published_at) for f in files]
            raise Refused("not a directory of this mailbox", SFTP_NO_SUCH_FILE
                          if parts[0] in (OUTBOX, ARCHIVE) else SFTP_PERMISSION_DENIED)
        except Refused as exc:
            return self._refuse("list", path, exc)

    def stat(self, path: str) -> Any:
        try:
            parts = self._parts(path)
            if parts == ():
                return _attrs("/", directory=True)
            if parts in ((OUTBOX,), (ARCHIVE,)):
                return _attrs(parts[0], directory=True, writable=parts[0] == OUTBOX)
            f = self._file(parts)
            return _attrs(f.name, size=f.size, mtime=f.published_at)
        except Refused as exc:
            return self._refuse("stat", path, exc)

    lstat = stat  # there are no links in the mailbox

    def open(self, path: str, flags: int, attr: Any) -> Any:
        try:
            if flags & WRITE_FLAGS:
                raise Refused("the mailbox is read-only (files may only be deleted from "
                              "/outbox or moved to /archive)")
            f = self._file(self._parts(path))
            try:
                fh = open(self.mailbox.channel.archive.path_for(f.sha256), "rb")  # noqa: SIM115
            except FileNotFoundError:
                # Published by a worker on another machine: the document is in the
                # gateway's archive (S3, docs/scale.md), not in this machine's folder.
                try:
                    fh = io.BytesIO(self.mailbox.gw.archive.get(f.sha256))
                except GatewayError as exc:
                    log.error("archived document %s for %s is unreadable: %s", f.sha256,
                              self.account, exc)
                    return SFTP_FAILURE
            except OSError as exc:
                log.error("archived document %s for %s is unreadable: %s", f.sha256,
                          self.account, exc)
                return SFTP_FAILURE
            return DownloadHandle(self, path, f, fh)
        except Refused as exc:
            return self._refuse("open", path, exc)

    def downloaded(self, path: str, f: MailboxFile) -> None:
        first = self.mailbox.index.mark_downloaded(self.account, f.name)
        self.mailbox.audit.write("download", outcome="complete", account=self.account,
                                 peer=self.peer, path=path, sha256=f.sha256, first=first)
        if first:
            self.mailbox.record_event(f.invoice_id, "downloaded", {
                "via": CHANNEL, "account": self.account, "file": f.name, "format": f.format,
                "sha256": f.sha256, "size": f.size, "peer": self.peer})

    # ------------------------------------------------------------------ acknowledging

    def _acknowledge(self, op: str, path: str, how: str) -> int:
        parts = self._parts(path)
        if len(parts) != 2 or parts[0] != OUTBOX:
            raise Refused("only files in /outbox can be deleted or moved")
        f = self._file(parts)
        if self.mailbox.index.mark_acked(self.account, f.name, how):
            self.mailbox.audit.write(op, outcome="acknowledged", account=self.account,
                                     peer=self.peer, path=path, how=how)
            self.mailbox.record_event(f.invoice_id, "acknowledged", {
                "via": CHANNEL, "account": self.account, "file": f.name, "format": f.format,
                "sha256": f.sha256, "how": how, "peer": self.peer})
        return SFTP_OK

    def remove(self, path: str) -> int:
        try:
            return self._acknowledge("remove", path, "deleted from /outbox")
        except Refused as exc:
            return self._refuse("remove", path, exc)

    def rename(self, oldpath: str, newpath: str) -> int:
        try:
            target = self._parts(newpath)
            if len(target) != 2 or target[0] != ARCHIVE:
                raise Refused(f"files in /outbox can only be moved to /archive, not {newpath}")
            return self._acknowledge("rename", oldpath, "moved to /archive")
        except Refused as exc:
            return self._refuse("rename", f"{oldpath} -> {newpath}", exc)

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        return self.rename(oldpath, newpath)

    # ------------------------------------------------------------------ everything else

    def _denied(self, op: str, path: str, reason: str) -> int:
        return self._refuse(op, path, Refused(reason))

    def mkdir(self, path: str, attr: Any) -> int:
        return self._denied("mkdir", path, "the mailbox is read-only")

    def rmdir(self, path: str) -> int:
        return self._denied("rmdir", path, "the mailbox is read-only")

    def chattr(self, path: str, attr: Any) -> int:
        return self._denied("setstat", path, "the mailbox is read-only")

    def symlink(self, target_path: str, path: str) -> int:
        return self._denied("symlink", f"{path} -> {target_path}",
                            "links cannot be created in the mailbox")

    def readlink(self, path: str) -> Any:
        self._denied("readlink", path, "there are no links in the mailbox")
        return SFTP_OP_UNSUPPORTED


class DownloadHandle(paramiko.SFTPHandle):
    """An open archived document; a read that covers the whole file counts as a download."""

    def __init__(self, owner: MailboxSFTP, path: str, f: MailboxFile, fh: Any) -> None:
        super().__init__(os.O_RDONLY)
        self.owner, self.path, self.file = owner, path, f
        self.readfile = fh
        self._ranges: list[tuple[int, int]] = []

    def read(self, offset: int, length: int) -> Any:
        data = super().read(offset, length)
        if isinstance(data, bytes) and data:
            self._ranges.append((offset, offset + len(data)))
        return data

    def write(self, offset: int, data: bytes) -> int:
        return SFTP_PERMISSION_DENIED

    def stat(self) -> Any:
        return _attrs(self.file.name, size=self.file.size, mtime=self.file.published_at)

    def chattr(self, attr: Any) -> int:
        return SFTP_PERMISSION_DENIED

    def close(self) -> None:
        super().close()
        if _covered(self._ranges) >= self.file.size:
            try:
                self.owner.downloaded(self.path, self.file)
            except Exception:  # the client has its file; a failed record must not hide it
                log.exception("could not record the download of %s", self.path)


def _covered(ranges: list[tuple[int, int]]) -> int:
    """Bytes covered by possibly overlapping, out-of-order reads (clients pipeline)."""
    total, end = 0, 0
    for start, stop in sorted(ranges):
        start = max(start, end)
        if stop > start:
            total += stop - start
            end = stop
    return total
