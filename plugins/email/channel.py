"""The ``email`` channel: one message per invoice to the customer's recipients.

Per-recipient progress lives in the delivery's durable state (``state.done``): a
recipient whose server accepted the message is never sent it again, neither by a
retry nor by a rerun after a crash. The one window no protocol closes is a crash
between the server's "250" and the state write; the stable Message-ID lets the
receiving side recognise such a repeat.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from gateway import Bundle, DeliveryError, DeliveryState, Receipt
from plugins.email.message import build_message
from plugins.email.settings import EmailSettings
from plugins.email.transport import (
    Connection,
    Disconnected,
    Outcome,
    Pool,
    ServerKey,
)


class EmailChannel:
    name: ClassVar[str] = "email"
    description: ClassVar[str] = "E-mail via SMTP (STARTTLS/TLS, login, DKIM), per-recipient"
    Settings: ClassVar[type[BaseModel]] = EmailSettings

    def __init__(self) -> None:
        self._local = threading.local()
        self.data_dir = Path(".")

    def configure(self, settings: dict[str, Any], data_dir: Path) -> None:
        self.data_dir = data_dir

    # ------------------------------------------------------------------ batch

    @contextlib.contextmanager
    def session(self) -> Iterator[Pool]:
        """Keep one connection per server open for the whole dispatcher batch."""
        outer: Pool | None = getattr(self._local, "pool", None)
        if outer is not None:
            yield outer
            return
        pool = Pool()
        self._local.pool = pool
        try:
            yield pool
        finally:
            self._local.pool = None
            pool.close()

    # ------------------------------------------------------------------ delivery

    def deliver(self, bundle: Bundle, settings: Any, state: DeliveryState,
                session: Pool | None = None) -> Receipt:
        settings = self._resolve_paths(settings)
        built = build_message(bundle, settings)
        receipt_id = f"email:{built.message_id.strip('<>')}"
        pending = [r for r in settings.recipients if not state.done(r)]
        outcome = Outcome()
        if pending:
            # The dispatcher hands over the pool of its session(); a direct call (the
            # CLI's test send) opens its own.
            pool: Pool | None = session or getattr(self._local, "pool", None)
            if pool is None:
                with self.session() as own:
                    outcome = self._send(own, settings, pending, built.data, built.smtputf8)
            else:
                outcome = self._send(pool, settings, pending, built.data, built.smtputf8)
            if outcome.accepted:
                # One write for all recipients of this transaction: they accepted
                # together, so a crash must not remember only some of them.
                state.set("done", {**state.get("done", {}), **outcome.accepted})
        done: dict[str, str] = dict(state.get("done", {}))
        server = ServerKey.of(settings)
        report = {r: f"accepted ({done[r]})" if r in done
                  else outcome.temporary.get(r) or outcome.permanent.get(r) or "not sent"
                  for r in settings.recipients}
        if outcome.sender_refused:
            raise DeliveryError(
                f"{server} refused the sender {settings.sender.addr_spec} "
                f"({outcome.sender_refused}); check the from and username settings",
                retryable=True, recipients=report)
        if outcome.temporary:
            raise DeliveryError(
                f"SMTP {_codes(outcome.temporary)} for {_count(outcome.temporary, settings)}: "
                f"deferred by {server}, will retry", retryable=True, recipients=report)
        if outcome.permanent:
            refused = _count(outcome.permanent, settings)
            if done and settings.on_partial_refusal == "delivered":
                return Receipt(id=receipt_id, detail=f"Message-ID {built.message_id} via "
                               f"{server}; refused {refused}", recipients=report,
                               data=_receipt_data(built.message_id, server, done,
                                                  outcome.permanent))
            raise DeliveryError(
                f"SMTP {_codes(outcome.permanent)} for {refused}: refused permanently by "
                f"{server}", retryable=False, recipients=report)
        return Receipt(id=receipt_id, detail=f"Message-ID {built.message_id} via {server}",
                       recipients=done, data=_receipt_data(built.message_id, server, done, {}))

    def _send(self, pool: Pool, settings: EmailSettings, pending: list[str], data: bytes,
              smtputf8: bool) -> Outcome:
        sender = settings.sender.addr_spec
        for _ in range(2):
            conn, reused = pool.take(settings)
            try:
                outcome = conn.transact(sender, pending, data, smtputf8)
            except Disconnected as exc:
                pool.discard(conn, polite=False)
                # An idle pooled connection the server has timed out breaks at MAIL FROM:
                # nothing was sent yet, so one fresh connection is safe.
                if reused and exc.before_data:
                    continue
                raise DeliveryError(str(exc), retryable=True,
                                    recipients=dict.fromkeys(pending, "not sent")) from None
            self._after(pool, conn, outcome, settings)
            return outcome
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _after(pool: Pool, conn: Connection, outcome: Outcome, settings: EmailSettings) -> None:
        if outcome.closing:
            pool.discard(conn, polite=False)
        elif conn.sent >= settings.max_messages_per_connection:
            pool.discard(conn)

    def _resolve_paths(self, settings: EmailSettings) -> EmailSettings:
        """Relative key and CA paths are inside the data directory, like the folder channel."""
        updates = {}
        for name in ("dkim_key_file", "ca_file"):
            value = getattr(settings, name)
            if value and not Path(value).is_absolute():
                updates[name] = str(self.data_dir / value)
        return settings.model_copy(update=updates) if updates else settings


def _codes(replies: dict[str, str]) -> str:
    """The reply codes first: they are what an operator scans a status table for."""
    return "/".join(dict.fromkeys(r.split(" ", 1)[0] for r in replies.values()))


def _count(recipients: dict[str, str], settings: EmailSettings) -> str:
    total = len(settings.recipients)
    names = ", ".join(recipients)
    if total == 1:
        return names
    return f"{len(recipients)} of {total} recipients ({names})"


def _receipt_data(message_id: str, server: ServerKey, accepted: dict[str, str],
                  refused: dict[str, str]) -> dict[str, Any]:
    """What ``gateway status`` shows: the Message-ID, the server, and each recipient's
    reply (the server's queue id for those who accepted)."""
    return {"message_id": message_id, "server": str(server), "accepted": dict(accepted),
            "refused": dict(refused)}
