"""The dispatcher: works off the durable outbox, one leased delivery at a time.

Several dispatcher processes may share one data directory: a delivery is leased in the
database before it is attempted, and a crashed worker's lease expires so that another
worker picks the delivery up. Channels make a repeated attempt harmless (stable
Message-IDs, content-checked uploads, per-recipient progress in ``DeliveryState``).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import inspect
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.core.documents import Bundle, DeliveryState, Document, Receipt, RetryPolicy
from gateway.core.limits import cap_text
from gateway.core.model import Invoice
from gateway.core.pipeline import Gateway
from gateway.core.storage import (
    DEAD,
    FAILED,
    RETRY,
    ChannelLimit,
    DeliveryRecord,
    NewDelivery,
    channel_names,
)
from gateway.errors import ConfigError, DeliveryError, GatewayError, PluginError, StorageError

log = logging.getLogger("gateway.dispatcher")
_T = TypeVar("_T")


@dataclass
class DispatchSummary:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    dead: int = 0
    lost: int = 0  # leases that expired under this worker; another worker carries on
    errors: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.delivered + self.retrying + self.failed + self.dead


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _LeaseKeeper:
    """Renews the lease of the delivery a channel is working on, so that a slow delivery
    is not taken over by another worker.

    One thread for a whole run, woken only when a delivery takes longer than a third of
    the lease: a thread per delivery cost more than the rest of a fast delivery.
    """

    def __init__(self, store: Any, worker: str, lease_seconds: float) -> None:
        self.store, self.worker, self.lease_seconds = store, worker, lease_seconds
        self.period = lease_seconds / 3
        self._cv = threading.Condition()
        self._current: tuple[int, float] | None = None  # (delivery, last renewed)
        self._stopped = False
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def keep(self, delivery_id: int) -> Iterator[None]:
        # No notify: waking the thread for every delivery cost more than the delivery.
        # It looks twice per period, so a lease is renewed within half of it.
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lease-keeper",
                                                daemon=True)
                self._thread.start()
            self._current = (delivery_id, time.monotonic())
        try:
            yield
        finally:
            with self._cv:
                self._current = None

    def _run(self) -> None:
        with self._cv:
            while not self._stopped:
                self._cv.wait(self.period / 2)
                if self._stopped or self._current is None:
                    continue
                delivery_id, renewed = self._current
                if time.monotonic() - renewed < self.period:
                    continue
                self._cv.release()  # a slow database must not hold up the delivery
                try:
                    if not self.store.renew_lease(delivery_id, self.worker,
                                                  self.lease_seconds):
                        log.warning("lease on delivery %s was lost while sending",
                                    delivery_id)
                except GatewayError as exc:  # a locked database: try again next period
                    log.warning("could not renew lease on delivery %s: %s", delivery_id, exc)
                finally:
                    self._cv.acquire()
                if self._current is not None and self._current[0] == delivery_id:
                    self._current = (delivery_id, time.monotonic())

    def close(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join()


class Dispatcher:
    """Delivers what is due in the outbox."""

    def __init__(self, gateway: Gateway, *, worker: str | None = None,
                 rng: random.Random | None = None) -> None:
        self.gw = gateway
        self.worker = worker or new_worker_id()
        self.settings = gateway.config.dispatcher
        self._rng = rng or random.Random()
        self.limits = {name: ChannelLimit(lim.concurrency, lim.per_second, lim.burst)
                       for name, lim in self.settings.limits.items()}
        # run() makes its own and stops it at the end; this one serves attempt() calls
        # made directly (its thread, a daemon, starts only if one is slow).
        self._lease_keeper = _LeaseKeeper(gateway.store, self.worker,
                                          self.settings.lease_seconds)
        self._customers: dict[str, tuple[str, str] | None] = {}

    def run(self, *, limit: int | None = None, delivery_id: int | None = None,
            on_progress: Callable[[DeliveryRecord, str], None] | None = None) -> DispatchSummary:
        """Deliver every due delivery (or just ``delivery_id``); return what happened.

        Due deliveries are leased in batches (``[dispatcher] batch``, one transaction
        each); each attempt is then counted just before its channel is called and its
        outcome recorded right after, so that a crash anywhere costs no more than
        before: leased but unsent deliveries come back when the lease runs out (at
        once on this host, see :meth:`release_dead_workers`) with no attempt spent.

        Channel sessions (connections) stay open for the whole run and are closed at the
        end, also when a delivery raises. When only a rate limit holds due deliveries
        back, the run waits for the next slot rather than leaving them for later.
        """
        summary = DispatchSummary()
        self._customers = {}
        self.release_dead_workers()
        self._lease_keeper = _LeaseKeeper(self.gw.store, self.worker,
                                          self.settings.lease_seconds)
        # A delivery that failed in this run waits for the next one, even when its
        # backoff is already over: one run never spends several attempts in a row.
        started = time.time()
        store = self.gw.store
        batch: collections.deque[DeliveryRecord] = collections.deque()
        throttled_once = False
        with contextlib.ExitStack() as stack:
            stack.callback(self._lease_keeper.close)
            sessions: dict[str, Any] = {}
            while limit is None or summary.attempted < limit:
                if not batch:
                    want = 1 if delivery_id is not None else self.settings.batch
                    if limit is not None:
                        want = min(want, limit - summary.attempted)
                    batch.extend(store.claim_deliveries(
                        self.worker, self.settings.lease_seconds, want, limits=self.limits,
                        due_before=started, delivery_id=delivery_id))
                if not batch:
                    until = store.throttled_until(self.limits) if self.limits else None
                    if until is None or delivery_id is not None:
                        # The slot may have opened between the claim and this look:
                        # one more claim before giving up.
                        if throttled_once or not self.limits or delivery_id is not None:
                            break
                        throttled_once = True
                        continue
                    throttled_once = False
                    time.sleep(min(max(until - time.time(), 0.01), 1.0))
                    continue
                throttled_once = False
                record = batch.popleft()
                outcome = self._attempt_leased(record, stack, sessions)
                if outcome == "lost":
                    summary.lost += 1
                    continue
                setattr(summary, outcome, getattr(summary, outcome) + 1)
                if on_progress:
                    on_progress(record, outcome)
                if delivery_id is not None:
                    break
            # Stopped early (limit reached): hand the rest of the batch back at once.
            for record in batch:
                store.expire_lease(record.id, self.worker)
            # The outcomes were committed without waiting for the disk; a finished run
            # leaves none of them to a power cut.
            store.flush()
        return summary

    def deliver_ids(self, delivery_ids: list[int]) -> DispatchSummary:
        """Attempt each of these deliveries that is due now (a task from the queue).

        Each is leased first: one that is delivered, leased by a live worker or waiting
        for its retry is left alone, so a duplicated task does nothing.
        """
        summary = DispatchSummary()
        store = self.gw.store
        with contextlib.ExitStack() as stack:
            stack.callback(self._lease_keeper.close)
            sessions: dict[str, Any] = {}
            for delivery_id in delivery_ids:
                for record in store.claim_deliveries(self.worker, self.settings.lease_seconds,
                                                     1, limits=self.limits,
                                                     delivery_id=delivery_id):
                    outcome = self._attempt_leased(record, stack, sessions)
                    setattr(summary, outcome, getattr(summary, outcome) + 1)
        return summary

    def _attempt_leased(self, record: DeliveryRecord, stack: contextlib.ExitStack,
                        sessions: dict[str, Any]) -> str:
        """Count the attempt and make it, in the channel's session for this run;
        "lost" when the lease ran out before anything was sent."""
        store = self.gw.store
        channel_limit = self.limits.get(record.channel_type)
        while isinstance(begun := store.begin_attempt(
                record.id, self.worker, self.settings.lease_seconds,
                channel_type=record.channel_type, limit=channel_limit), float):
            time.sleep(min(begun, 1.0))  # the channel type's rate: wait for a slot
        if begun is None:
            log.warning("lease on delivery %s was lost before sending", record.id)
            return "lost"
        attempt_id, attempts = begun
        record = dataclasses.replace(record, attempts=attempts,
                                     lease_expires=time.time() + self.settings.lease_seconds)
        if record.channel_type not in sessions:
            try:
                sessions[record.channel_type] = self._open_session(stack, record.channel_type)
            except Exception as exc:
                # A server that refuses the connection fails this attempt (with backoff)
                # instead of leaving the delivery leased until it expires.
                retryable = exc.retryable if isinstance(exc, DeliveryError) else True
                return self._failed(record, attempt_id, f"cannot open a {record.channel_type} "
                                    f"session: {exc}", retryable=retryable)
        return self.attempt(record, attempt_id, session=sessions[record.channel_type])

    def release_dead_workers(self) -> int:
        """End the leases of workers on this host whose process is gone.

        After a crash, a rerun need not wait ``lease_seconds`` for the dead worker's
        leases to run out: its process id shows it is dead. A worker on another host,
        or one whose process id is alive (or reused), keeps its lease until it expires.
        """
        host = socket.gethostname()
        released = 0
        for record in self.gw.store.deliveries(statuses=["delivering"]):
            owner_host, _, rest = (record.lease_owner or "").partition(":")
            pid = rest.partition(":")[0]
            if owner_host != host or not pid.isdigit() or _process_alive(int(pid)):
                continue
            if self.gw.store.expire_lease(record.id, record.lease_owner or ""):
                log.info("lease of a dead worker released", extra={
                    "delivery": record.id, "worker": record.lease_owner})
                released += 1
        return released

    def _open_session(self, stack: contextlib.ExitStack, channel_type: str) -> Any:
        channel = self._channel_or_none(channel_type)
        opener = getattr(channel, "session", None)
        return stack.enter_context(opener()) if callable(opener) else None

    def _channel_or_none(self, name: str) -> Any:
        return self.gw.plugins.channels.items[name].obj \
            if name in self.gw.plugins.channels else None

    def attempt(self, record: DeliveryRecord, attempt_id: int | None = None,
                session: Any = None) -> str:
        """One attempt at a leased delivery; returns delivered/retrying/failed/dead.

        ``attempt_id`` is the attempt :meth:`Store.begin_attempt` opened; without it
        the attempt is opened here. ``session`` is what the channel's ``session()``
        context yielded for this run; it reaches ``deliver`` when ``deliver`` has a
        ``session`` parameter."""
        store = self.gw.store
        # begin_attempt proved the lease a moment ago; a caller without it has not.
        proven = attempt_id is not None
        if attempt_id is None:
            attempt_id = store.start_attempt(record.id, self.worker)
        try:
            channel = self.gw.plugins.channels.get(record.channel_type)
            settings = self.gw.channel_settings(
                channel, record.settings,
                context=f"channel {record.channel_type} ({record.label})")
            bundle = self._bundle(record)
            state = DeliveryState(
                dict(record.state),
                lambda data: self._persist(record.id, lambda: store.save_delivery_state(
                    record.id, self.worker, data)))
            # Everything before this point may be slow (archive reads): never start
            # sending on a lease that another worker may already hold. The lease was
            # renewed when the attempt began; renew again only if that is a while ago.
            began = record.lease_expires - self.settings.lease_seconds \
                if proven and record.lease_expires else 0.0
            if time.time() - began > self.settings.lease_seconds / 3 and not \
                    store.renew_lease(record.id, self.worker, self.settings.lease_seconds):
                store.finish_attempt(attempt_id, "abandoned",
                                     "lease lost before sending", None)
                log.warning("lease on delivery %s was lost before sending", record.id)
                return "lost"
            extra = {"session": session} if _takes_session(channel) else {}
            with self._lease_keeper.keep(record.id):
                receipt = channel.deliver(bundle, settings, state, **extra)
            if not isinstance(receipt, Receipt):
                raise PluginError(f"channel {record.channel_type!r} returned {receipt!r}, "
                                  "not a Receipt")
        except DeliveryError as exc:
            return self._failed(record, attempt_id, str(exc), retryable=exc.retryable,
                                recipients=exc.recipients, retry_after=exc.retry_after)
        except (PluginError, ConfigError) as exc:
            # The channel is missing or its settings are wrong: no retry can help until an
            # operator fixes it, so fail now and let the fallback take over.
            return self._failed(record, attempt_id, str(exc), retryable=False)
        except GatewayError as exc:
            return self._failed(record, attempt_id, str(exc), retryable=True)
        except Exception as exc:  # a plugin bug: keep the delivery, retry later
            log.exception("channel %s raised on delivery %s", record.channel_type, record.id)
            return self._failed(record, attempt_id, f"{type(exc).__name__}: {exc}",
                                retryable=True)
        receipt_data = _receipt_json(receipt, record.channel_type)
        if not self._record_delivered(record, receipt.id, receipt_data, attempt_id):
            log.warning("lease on delivery %s was lost before it was recorded", record.id)
        log.info("delivered", extra={"delivery": record.id, "invoice": record.invoice_id,
                                     "channel": record.channel_type, "label": record.label,
                                     "receipt": receipt.id})
        self.gw.plugins.notify(
            "gateway_delivery_succeeded", invoice_id=record.invoice_id,
            channel=record.channel_type, label=record.label, receipt=receipt)
        return "delivered"

    def _record_delivered(self, record: DeliveryRecord, receipt_id: str,
                          receipt_data: dict[str, Any], attempt_id: int) -> bool:
        """Record a sent delivery (see :meth:`_persist`), its lease kept meanwhile."""
        with self._lease_keeper.keep(record.id):
            return self._persist(record.id, lambda: self.gw.store.mark_delivered(
                record.id, self.worker, receipt_id, receipt_data, attempt_id=attempt_id))

    def _persist(self, delivery_id: int, write: Callable[[], _T]) -> _T:
        """Write what a receiver did (a delivery sent, a recipient done, an attempt's
        outcome), trying again while the database is unreachable.

        The receiver has it now: a delivery whose outcome the database never heard of
        is sent again once its lease runs out, and for e-mail that is a second copy. A
        dropped connection or a restarting server must not cost that, so the write is
        retried for up to RECORD_PATIENCE seconds. Trying again is safe: these writes
        apply only while this worker holds the lease, so a first try whose COMMIT did
        reach the server makes the next one change nothing.
        """
        deadline = time.monotonic() + RECORD_PATIENCE
        delay = 0.05
        while True:
            try:
                return write()
            except StorageError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("delivery %s: could not record what the receiver did yet; "
                            "trying again: %s", delivery_id, exc)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _bundle(self, record: DeliveryRecord) -> Bundle:
        store, archive = self.gw.store, self.gw.archive
        invoice_record, stored = store.invoice_with_documents(record.invoice_id)
        if invoice_record is None:
            raise GatewayError(f"delivery {record.id}: invoice {record.invoice_id} is missing")
        by_format = {d.format: d for d in stored}
        documents = []
        for name in record.formats:
            doc = by_format.get(name)
            if doc is None:
                raise ConfigError(f"delivery {record.id}: no archived {name!r} document")
            documents.append(Document(doc.format, doc.media_type, doc.filename,
                                      archive.get(doc.sha256)))
        # Name and language only, read once per customer and run: parsing the whole
        # customer for every delivery was a fifth of a fast delivery's cost. A change
        # made during a run shows from the next run on.
        if record.customer_id not in self._customers:
            customer = store.get_customer(record.customer_id)
            self._customers[record.customer_id] = (
                (customer.name, customer.language) if customer else None)
        cached = self._customers[record.customer_id]
        return Bundle(
            invoice_id=record.invoice_id,
            invoice=Invoice.model_validate_json(invoice_record.invoice_json),
            customer_id=record.customer_id,
            customer_name=cached[0] if cached else record.customer_id,
            language=cached[1] if cached else "en",
            documents=tuple(documents),
            idempotency_key=record.idempotency_key,
            portal_url=self.gw.config.gateway.portal_url,
            reason=record.reason,
        )

    def retry_policy(self, channel_type: str) -> RetryPolicy:
        """``[dispatcher.retry.<type>]`` over the channel's own ``retry`` over the
        ``[dispatcher]`` defaults, field by field."""
        own = getattr(self._channel_or_none(channel_type), "retry", None) or RetryPolicy()
        operator = self.settings.retry.get(channel_type)
        def pick(name: str) -> Any:
            for source in (operator, own):
                value = getattr(source, name, None)
                if value is not None:
                    return value
            return getattr(self.settings, name)
        return RetryPolicy(pick("max_attempts"), pick("base_delay"), pick("max_delay"))

    def backoff(self, attempts: int, policy: RetryPolicy | None = None) -> float:
        """Exponential backoff with jitter: base · 2^(n-1), capped, times 0.5…1.0."""
        base = self.settings.base_delay if policy is None else policy.base_delay
        cap = self.settings.max_delay if policy is None else policy.max_delay
        assert base is not None and cap is not None
        delay = min(cap, base * 2 ** max(attempts - 1, 0))
        return delay * (0.5 + self._rng.random() / 2)

    def _failed(self, record: DeliveryRecord, attempt_id: int, error: str, *, retryable: bool,
                recipients: dict[str, str] | None = None,
                retry_after: float | None = None) -> str:
        store = self.gw.store
        if recipients:
            error = f"{error} ({'; '.join(f'{k}: {v}' for k, v in recipients.items())})"
        # A remote server's reply or a plugin's message can be any size; it is stored in
        # the attempt, the delivery and the history, so it is cut once, here.
        error = cap_text(error)
        too_old = time.time() - record.queued_since > self.settings.max_age_hours * 3600
        policy = self.retry_policy(record.channel_type)
        assert policy.max_attempts is not None
        if retryable and record.attempts < policy.max_attempts and not too_old:
            status, outcome = RETRY, "retrying"
            # The receiver's own Retry-After wins over our backoff guess.
            delay = retry_after if retry_after is not None else \
                self.backoff(record.attempts, policy)
            next_at = time.time() + delay
        else:
            status, outcome = (DEAD, "dead") if retryable else (FAILED, "failed")
            next_at = time.time()
        fallback = None
        if status != RETRY and record.fallback:
            fb = record.fallback
            # A fallback snapshot queued before core migration 0003 has the old words.
            fb_type, fb_label = channel_names(fb)
            fallback = NewDelivery(
                label=fb_label or "", channel_type=fb_type or "", settings=fb["settings"],
                formats=fb["formats"], fallback=fb.get("fallback"),
                idempotency_key=f"{record.invoice_id}:{fb_label}:fallback:{record.id}",
                fallback_for=record.id,
                reason=f"{record.label} failed: {error}")
        self._persist(record.id, lambda: store.mark_failed(
            record.id, self.worker, status, error, next_at, fallback,
            attempt_id=attempt_id, outcome="retry" if retryable else "failed"))
        log.warning("delivery %s", outcome, extra={
            "delivery": record.id, "invoice": record.invoice_id,
            "channel": record.channel_type, "label": record.label,
            "attempt": record.attempts, "error": error})
        self.gw.plugins.notify(
            "gateway_delivery_failed", invoice_id=record.invoice_id,
            channel=record.channel_type, label=record.label, error=error,
            permanent=status != RETRY, retry_at=next_at if status == RETRY else None)
        return outcome


#: How long a sent delivery's record is retried while the database is unreachable
#: (a failover or restart takes seconds; beyond this the lease decides, as after a crash).
RECORD_PATIENCE = 30.0

#: A receipt's structured data is stored with every delivery: bounded.
MAX_RECEIPT_DATA = 64 * 1024


def _receipt_json(receipt: Receipt, channel_type: str) -> dict[str, Any]:
    """The receipt as stored. A value JSON cannot hold becomes its text, and data over
    MAX_RECEIPT_DATA is replaced by its size, rather than losing the record of a delivery
    that happened."""
    data = json.dumps(dict(receipt.data), default=str)
    if len(data) > MAX_RECEIPT_DATA:
        log.warning("channel %s returned %d bytes of receipt data; stored its size only",
                    channel_type, len(data))
        data = json.dumps({"truncated": True, "bytes": len(data)})
    return {"detail": receipt.detail[:2000], "recipients": json.loads(json.dumps(
        dict(receipt.recipients), default=str)), "data": json.loads(data)}


def _takes_session(channel: Any) -> bool:
    """Whether ``channel.deliver`` accepts the session (newer channels) or not (older)."""
    try:
        return "session" in inspect.signature(channel.deliver).parameters
    except (TypeError, ValueError):
        return False
