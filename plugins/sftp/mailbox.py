"""The ``sftp-mailbox`` channel and its index: which archived documents each customer's
SFTP account sees.

The mailbox holds no copies. Publishing a bundle records, in one transaction, a name
for each of its documents in the customer's account; the bytes stay in the gateway's
content-addressed archive, which only ever contains complete files. So a document is
either not in the mailbox yet or there in full, and all documents of one invoice appear
together.

Delivery receipt: the delivery succeeds when the documents are published (that is all
the gateway can do until the customer logs in). The customer's download and its
acknowledgement (deleting the file from ``/outbox`` or moving it to ``/archive``) are
recorded by the SFTP server as ``downloaded`` and ``acknowledged`` events (with
``via = "sftp-mailbox"``) in the invoice's hash-chained history, after ``delivered``.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway import Bundle, DeliveryError, DeliveryState, Receipt
from gateway.core import Archive
from gateway.core.storage import Database, PluginDatabase
from gateway.core.storage.database import Row
from gateway.errors import StorageError
from plugins.sftp.keys import PublicKey, parse_public_key
from plugins.sftp.naming import check_pattern, remote_name

MIGRATIONS = Path(__file__).with_name("migrations")
DATABASE = PluginDatabase("sftp", MIGRATIONS, "sftp/mailbox.db")


class MailboxSettings(BaseModel):
    """A customer's SFTP mailbox. The login name is the customer id."""

    model_config = ConfigDict(extra="forbid")

    authorized_keys: list[str] = Field(
        default_factory=list,
        description="OpenSSH public key lines allowed to log in; manage them with "
        "'gateway customer sftp-key'")
    filename: str = Field("{name}", description="File name pattern in the mailbox")

    @field_validator("authorized_keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        for i, line in enumerate(value):
            try:
                parse_public_key(line)
            except ValueError as exc:
                raise ValueError(f"authorized_keys[{i}]: {exc}") from None
        return value

    @field_validator("filename")
    @classmethod
    def _filename(cls, value: str) -> str:
        return check_pattern(value)

    def public_keys(self) -> list[PublicKey]:
        return [parse_public_key(line) for line in self.authorized_keys]


@dataclass(frozen=True)
class MailboxFile:
    account: str
    name: str
    sha256: str
    size: int
    invoice_id: str
    format: str
    published_at: float
    downloaded_at: float | None
    acked_at: float | None
    acked_how: str | None


class NameClash(Exception):
    """Another document already has this name in the account's mailbox."""


class MailboxIndex:
    """The mailbox table: ``sftp/mailbox.db`` in the data directory on the embedded
    default, schema ``sftp`` of the gateway's PostgreSQL database when the store is
    there. Shared by the SFTP server's client threads."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / "sftp" / "mailbox.db"
        self._database: Database | None = None
        self._lock = threading.Lock()

    @property
    def db(self) -> Database:
        with self._lock:
            if self._database is None:
                self._database = DATABASE.open_in(self.data_dir)
            return self._database

    def _tx(self) -> Any:
        return self.db.tx()

    def publish(self, account: str, entries: list[tuple[str, str, int, str, str]],
                delivery_key: str) -> list[str]:
        """Publish (name, sha256, size, invoice_id, format) entries together.

        Returns per entry "published" or "already published" (a repeated delivery);
        raises :class:`NameClash` when a name is taken by a different document.
        """
        now = time.time()
        outcomes = []
        with self._tx() as db:
            for name, sha256, size, invoice_id, fmt in entries:
                row = db.execute("SELECT sha256, invoice_id FROM files WHERE account = ? AND "
                                 "name = ?", (account, name)).fetchone()
                if row is not None:
                    if row["sha256"] != sha256:
                        raise NameClash(name)
                    outcomes.append("already published")
                    continue
                db.execute("INSERT INTO files (account, name, sha256, size, invoice_id, format, "
                           "delivery_key, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (account, name, sha256, size, invoice_id, fmt, delivery_key, now))
                outcomes.append("published")
        return outcomes

    def get(self, account: str, name: str) -> MailboxFile | None:
        row = self.db.one("SELECT * FROM files WHERE account = ? AND name = ?",
                          (account, name))
        return _file(row) if row else None

    def list(self, account: str, *, outbox_only: bool) -> list[MailboxFile]:
        where = "AND acked_at IS NULL" if outbox_only else ""
        rows = self.db.query(f"SELECT * FROM files WHERE account = ? {where} ORDER BY name",
                             (account,))
        return [_file(r) for r in rows]

    def mark_downloaded(self, account: str, name: str) -> bool:
        """True the first time a file is downloaded."""
        with self._tx() as db:
            cur = db.execute("UPDATE files SET downloaded_at = ? WHERE account = ? AND name = ? "
                             "AND downloaded_at IS NULL", (time.time(), account, name))
            return cur.rowcount == 1

    def mark_acked(self, account: str, name: str, how: str) -> bool:
        """True when this call acknowledged the file (it was still in the outbox)."""
        with self._tx() as db:
            cur = db.execute("UPDATE files SET acked_at = ?, acked_how = ? WHERE account = ? "
                             "AND name = ? AND acked_at IS NULL",
                             (time.time(), how, account, name))
            return cur.rowcount == 1

    def close(self) -> None:
        with self._lock:
            if self._database is not None:
                self._database.close()
                self._database = None


def _file(row: Row) -> MailboxFile:
    return MailboxFile(row["account"], row["name"], row["sha256"], row["size"],
                       row["invoice_id"], row["format"], row["published_at"],
                       row["downloaded_at"], row["acked_at"], row["acked_how"])


class SftpMailboxChannel:
    name: ClassVar[str] = "sftp-mailbox"
    description: ClassVar[str] = "Publish into the customer's SFTP mailbox ('gateway serve sftp')"
    Settings: ClassVar[type[BaseModel]] = MailboxSettings

    def __init__(self) -> None:
        self.data_dir = Path(".")
        self._index: MailboxIndex | None = None

    def configure(self, settings: dict[str, Any], data_dir: Path) -> None:
        self.data_dir = data_dir
        self._index = None

    @property
    def index(self) -> MailboxIndex:
        if self._index is None:
            self._index = MailboxIndex(self.data_dir)
        return self._index

    @property
    def archive(self) -> Archive:
        return Archive(self.data_dir / "archive")

    def session(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def deliver(self, bundle: Bundle, settings: Any, state: DeliveryState) -> Receipt:
        s: MailboxSettings = settings
        account = bundle.customer_id
        entries = []
        for doc in bundle.documents:
            # The pipeline archived every document before queueing; putting it again
            # costs a stat and guarantees the mailbox never names a missing file.
            self.archive.put(doc.content)
            entries.append((remote_name(s.filename, bundle, doc), doc.sha256, doc.size,
                            bundle.invoice_id, doc.format))
        try:
            outcomes = self.index.publish(account, entries, bundle.idempotency_key)
        except NameClash as exc:
            raise DeliveryError(
                f"SFTP mailbox of {account}: /outbox/{exc} is already taken by another "
                "document; use a more specific file name pattern, e.g. "
                "'{seller_vat}_{number}.{ext}'", retryable=False) from None
        except StorageError as exc:
            raise DeliveryError(f"SFTP mailbox index: {exc}", retryable=True) from None
        recipients = {f"sftp://{account}/outbox/{name}": f"{outcome}, sha256 {sha}"
                      for (name, sha, *_), outcome in zip(entries, outcomes, strict=True)}
        digest = hashlib.sha256("\x1f".join([bundle.idempotency_key, *sorted(recipients)])
                                .encode()).hexdigest()
        return Receipt(id=f"sftp-mailbox:{digest[:32]}",
                       detail=f"published in the SFTP mailbox of {account}; download and "
                       "acknowledgement are recorded as events", recipients=recipients)
