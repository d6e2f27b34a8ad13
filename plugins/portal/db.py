"""The portal's own tables: accounts, sessions, invitations, API tokens, throttling and
publications. On the embedded default they live in ``portal.db`` next to the gateway
database; with ``[store] url = "postgresql://…"`` in the gateway's database, schema
``portal``. Either way the core schema stays the core's and the portal can be dropped
without touching it; the tables are versioned migrations (``migrations/``).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import GatewayError
from gateway.core.storage import PluginDatabase
from gateway.core.storage.database import Row
from plugins.portal.perthread import PerThread

MIGRATIONS = Path(__file__).with_name("migrations")
# Sessions, views and throttling rows may lose the last moment on power loss (WAL stays
# consistent); an fsync per page view would cap the portal's speed.
DATABASE = PluginDatabase("portal", MIGRATIONS, "portal.db", synchronous="NORMAL")


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    customer_id: str | None
    role: str
    password_hash: str
    created_at: float
    created_by: str
    disabled: int

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    seller_key: str
    token_hash: str
    created_at: float
    revoked_at: float | None


@dataclass(frozen=True)
class Publication:
    invoice_id: str
    customer_id: str
    published_at: float
    receipt_id: str
    reason: str | None
    seen_at: float | None


class PortalError(GatewayError):
    """A portal operation a user asked for cannot be done (duplicate e-mail, ...)."""


class PortalDB:
    """The portal's tables; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        """``path``: the SQLite file of the embedded default (``<data dir>/portal.db``);
        a PostgreSQL store configured for that data directory is used instead."""
        self.path = path
        self.db = DATABASE.open_in(path.parent, path.name)

    def close(self) -> None:
        self.db.close()

    def _tx(self) -> Any:
        return self.db.tx()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self.db.one(sql, params)

    # ------------------------------------------------------------------ settings

    def secret(self) -> str:
        """The key that signs CSRF tokens; made once per data directory."""
        row = self._one("SELECT value FROM settings WHERE key = 'secret'")
        if row:
            return str(row["value"])
        with self._tx() as db:
            db.execute("INSERT INTO settings VALUES ('secret', ?) ON CONFLICT DO NOTHING",
                       (secrets.token_hex(32),))
        row = self._one("SELECT value FROM settings WHERE key = 'secret'")
        assert row is not None
        return str(row["value"])

    # ------------------------------------------------------------------ accounts

    def add_account(self, *, email: str, password_hash: str, role: str,
                    customer_id: str | None, created_by: str) -> Account:
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO accounts (email, customer_id, role, password_hash, created_at, "
                    "created_by) VALUES (?, ?, ?, ?, ?, ?)",
                    (email, customer_id, role, password_hash, time.time(), created_by))
        except self.db.integrity_errors:
            raise PortalError(f"an account for {email} already exists") from None
        account = self.account_by_email(email)
        assert account is not None
        return account

    def account_by_email(self, email: str) -> Account | None:
        row = self._one("SELECT * FROM accounts WHERE lower(email) = lower(?)", (email,))
        return Account(**dict(row)) if row else None

    def account(self, account_id: int) -> Account | None:
        row = self._one("SELECT * FROM accounts WHERE id = ?", (account_id,))
        return Account(**dict(row)) if row else None

    def accounts(self, customer_id: str | None = None) -> list[Account]:
        if customer_id is None:
            rows = self.db.query("SELECT * FROM accounts ORDER BY email")
        else:
            rows = self.db.query("SELECT * FROM accounts WHERE customer_id = ? ORDER BY email",
                                 (customer_id,))
        return [Account(**dict(r)) for r in rows]

    def set_password(self, account_id: int, password_hash: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE accounts SET password_hash = ? WHERE id = ?",
                       (password_hash, account_id))

    # ------------------------------------------------------------------ sessions

    def add_session(self, token_hash: str, account_id: int, lifetime: float) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)",
                       (token_hash, account_id, now, now + lifetime))

    def session_account(self, token_hash: str) -> Account | None:
        row = self._one(
            "SELECT a.* FROM sessions s JOIN accounts a ON a.id = s.account_id "
            "WHERE s.token_hash = ? AND s.expires_at > ? AND a.disabled = 0",
            (token_hash, time.time()))
        return Account(**dict(row)) if row else None

    def drop_session(self, token_hash: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    # ------------------------------------------------------------------ invitations

    def add_invitation(self, token_hash: str, customer_id: str, email: str | None,
                       lifetime: float, created_by: str) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT INTO invitations VALUES (?, ?, ?, ?, ?, ?, NULL)",
                       (token_hash, customer_id, email, now, now + lifetime, created_by))

    def invitation(self, token_hash: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM invitations WHERE token_hash = ? AND used_at IS NULL "
                        "AND expires_at > ?", (token_hash, time.time()))
        return dict(row) if row else None

    def use_invitation(self, token_hash: str, *, email: str, password_hash: str) -> Account:
        """Create the account and spend the invitation in one transaction, so one link
        makes one account even when submitted twice."""
        now = time.time()
        try:
            with self._tx() as db:
                row = db.execute("SELECT * FROM invitations WHERE token_hash = ? AND used_at IS "
                                 "NULL AND expires_at > ?", (token_hash, now)).fetchone()
                if row is None:
                    raise PortalError("this invitation was used already or has expired")
                db.execute("UPDATE invitations SET used_at = ? WHERE token_hash = ?",
                           (now, token_hash))
                db.execute(
                    "INSERT INTO accounts (email, customer_id, role, password_hash, created_at, "
                    "created_by) VALUES (?, ?, 'customer', ?, ?, ?)",
                    (email, row["customer_id"], password_hash, now, f"invitation:{email}"))
        except self.db.integrity_errors:
            raise PortalError(f"an account for {email} already exists") from None
        account = self.account_by_email(email)
        assert account is not None
        return account

    # ------------------------------------------------------------------ API tokens

    def add_token(self, name: str, seller_key: str, token_hash: str) -> None:
        try:
            with self._tx() as db:
                db.execute("INSERT INTO api_tokens (name, seller_key, token_hash, created_at) "
                           "VALUES (?, ?, ?, ?)", (name, seller_key, token_hash, time.time()))
        except self.db.integrity_errors:
            raise PortalError(f"an API token named {name!r} already exists") from None

    def token(self, token_hash: str) -> ApiToken | None:
        row = self._one("SELECT * FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
                        (token_hash,))
        return ApiToken(**dict(row)) if row else None

    def tokens(self) -> list[ApiToken]:
        rows = self.db.query("SELECT * FROM api_tokens ORDER BY name")
        return [ApiToken(**dict(r)) for r in rows]

    def revoke_token(self, name: str) -> bool:
        with self._tx() as db:
            cur = db.execute("UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND "
                             "revoked_at IS NULL", (time.time(), name))
            return cur.rowcount == 1

    # ------------------------------------------------------------------ throttling

    def recent_failures(self, key: str, window: float) -> tuple[int, float | None]:
        """How many failed logins under ``key`` in the window, and the oldest one's time."""
        row = self._one("SELECT count(*) AS n, min(at) AS first FROM login_failures "
                        "WHERE key = ? AND at > ?", (key, time.time() - window))
        assert row is not None
        return int(row["n"]), row["first"]

    def add_failure(self, keys: Sequence[str], window: float) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute("DELETE FROM login_failures WHERE at < ?", (now - window,))
            db.executemany("INSERT INTO login_failures VALUES (?, ?)", [(k, now) for k in keys])

    def clear_failures(self, key: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM login_failures WHERE key = ?", (key,))

    # ------------------------------------------------------------------ publications

    def publish(self, invoice_id: str, customer_id: str, receipt_id: str,
                reason: str | None) -> Publication:
        with self._tx() as db:
            db.execute("INSERT INTO publications (invoice_id, customer_id, published_at, "
                       "receipt_id, reason) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (invoice_id) DO NOTHING",
                       (invoice_id, customer_id, time.time(), receipt_id, reason))
        pub = self.publication(invoice_id)
        assert pub is not None
        return pub

    def publication(self, invoice_id: str) -> Publication | None:
        row = self._one("SELECT * FROM publications WHERE invoice_id = ?", (invoice_id,))
        return Publication(**dict(row)) if row else None

    def unseen(self, customer_id: str, limit: int = 20) -> list[Publication]:
        rows = self.db.query(
            "SELECT * FROM publications WHERE customer_id = ? AND seen_at IS NULL "
            "ORDER BY published_at DESC LIMIT ?", (customer_id, limit))
        return [Publication(**dict(r)) for r in rows]

    def first_view(self, invoice_id: str, account_id: int, what: str) -> bool:
        """Record that an account opened an invoice or downloaded a format; True the first
        time, so the invoice's history gets one event per account and not one per click."""
        seen = self._one("SELECT 1 FROM views WHERE invoice_id = ? AND account_id = ? AND "
                         "what = ?", (invoice_id, account_id, what))
        if seen is not None:  # the common case: read-only, no write lock taken
            return False
        with self._tx() as db:
            cur = db.execute("INSERT INTO views VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                             (invoice_id, account_id, what, time.time()))
            if what == "page":
                db.execute("UPDATE publications SET seen_at = ? WHERE invoice_id = ? AND "
                           "seen_at IS NULL", (time.time(), invoice_id))
            return cur.rowcount == 1


class PortalDBs:
    """One :class:`PortalDB` per thread on SQLite (a connection serves one thread at a
    time), closed once its thread has ended; one shared on PostgreSQL, whose connection
    pool serves them all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._shared: PortalDB | None = None
        self._lock = threading.Lock()
        self._threads: PerThread[PortalDB] = PerThread(self._open, self._close_own)

    def get(self) -> PortalDB:
        return self._shared or self._threads.get()

    def _open(self) -> PortalDB:
        with self._lock:
            if self._shared is not None:
                return self._shared
            db = PortalDB(self.path)
            if db.db.dialect == "postgresql":
                self._shared = db
            return db

    def _close_own(self, db: PortalDB) -> None:
        if db is not self._shared:  # the shared one outlives the thread that opened it
            db.close()

    def close(self) -> None:
        self._threads.close()
        with self._lock:
            shared, self._shared = self._shared, None
        if shared is not None:
            shared.close()
