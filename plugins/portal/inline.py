"""Delivery right after a request (an API push, the operator's retry button), for a
bounded time.

The deliveries are already in the durable outbox when this starts, so the request
need not wait for them: it waits at most ``deliver_wait_seconds`` and then answers
with what is still pending. A few long-lived threads do the sending, each with its own
gateway (store connections are not shared between threads) and a dispatcher that
leases every delivery before it tries it. When a request stops waiting, its job starts
no further delivery; the one attempt already in flight is finished by its thread, its
lease renewed meanwhile, so ``gateway deliver --loop`` neither takes it over nor sends
it twice. Should the process die during that attempt, the lease runs out (at once for
a rerun on the same host) and the dispatcher tries again, which the channels make
harmless. Everything not started is left pending for the dispatcher.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from gateway.core import Config, Dispatcher, Gateway
from gateway.core.storage import PENDING
from gateway.plugins import Plugins

log = logging.getLogger("gateway.portal.inline")

#: Rounds of "deliver what is pending" per invoice: a failed delivery adds its fallback,
#: which the next round sends; a fallback chain is short.
ROUNDS = 10
#: How often a request waiting in the event loop looks whether its job is done: a
#: twentieth of a second added to an answer, no thread held meanwhile.
POLL_SECONDS = 0.05


@dataclass
class _Job:
    invoice_ids: tuple[str, ...] = ()
    delivery_ids: tuple[int, ...] = ()
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    #: set when every delivery of the job was attempted; a job that raised (the
    #: database away) is done without it
    attempted: bool = False


class InlineDelivery:
    """``workers`` threads that deliver what requests queued."""

    def __init__(self, config: Config, plugins: Plugins, workers: int) -> None:
        self.config, self.plugins, self.workers = config, plugins, workers
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def deliver(self, *, invoice_ids: list[str] | tuple[str, ...] = (),
                delivery_ids: list[int] | tuple[int, ...] = (), wait: float) -> bool:
        """Deliver the pending deliveries of these invoices (with the fallbacks a
        failure adds), or these deliveries; wait at most ``wait`` seconds. True when
        all of it was attempted in time; False leaves the rest to the dispatcher."""
        job = self._submit(invoice_ids, delivery_ids)
        if job is None:
            return False
        job.done.wait(max(wait, 0.0))
        return self._outcome(job)

    async def deliver_async(self, *, invoice_ids: list[str] | tuple[str, ...] = (),
                            delivery_ids: list[int] | tuple[int, ...] = (),
                            wait: float) -> bool:
        """:meth:`deliver` for a request handler: waits in the event loop, so that a
        request waiting on a slow customer server holds none of the web server's worker
        threads, which every synchronous page and API read needs."""
        import anyio

        job = self._submit(invoice_ids, delivery_ids)
        if job is None:
            return False
        deadline = time.monotonic() + max(wait, 0.0)
        while not job.done.is_set() and time.monotonic() < deadline:
            await anyio.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))
        return self._outcome(job)

    def _submit(self, invoice_ids: list[str] | tuple[str, ...],
                delivery_ids: list[int] | tuple[int, ...]) -> _Job | None:
        if not self.start():
            return None
        job = _Job(tuple(invoice_ids), tuple(delivery_ids))
        self._jobs.put(job)
        return job

    @staticmethod
    def _outcome(job: _Job) -> bool:
        if job.done.is_set():
            return job.attempted
        # Whatever this job has not begun stays pending; the attempt it is in the
        # middle of (if any) is finished by its thread under a renewed lease.
        job.stop.set()
        return False

    def start(self) -> bool:
        """Start the threads (the app does at startup, so that the first request finds
        them ready, each with its gateway open); False once closed."""
        with self._lock:
            if self._closed:
                return False
            while len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, daemon=True,
                                          name=f"deliver-on-request-{len(self._threads)}")
                self._threads.append(thread)
                thread.start()
            return True

    def close(self, wait: float = 5.0) -> None:
        """Start nothing new; give attempts in flight ``wait`` seconds to finish. A
        thread still sending after that is a daemon: its lease keeps the delivery
        from a second sender until it finishes or the process ends."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join(wait / max(len(threads), 1))

    def _work(self) -> None:
        gw: Gateway | None = None
        try:
            # Opened before the first job; a failure (a locked database at startup) is
            # tried again with the next job rather than ending the thread.
            gw = self._open()
            while (job := self._jobs.get()) is not None:
                try:
                    if not job.stop.is_set():
                        gw = gw or Gateway(self.config, self.plugins)
                        self._run(gw, job)
                except Exception:  # the outbox keeps the deliveries; the dispatcher retries
                    log.exception("delivery right after the request failed")
                finally:
                    job.done.set()
        finally:
            if gw is not None:
                gw.close()

    def _open(self) -> Gateway | None:
        try:
            return Gateway(self.config, self.plugins)
        except Exception:
            log.exception("cannot open the gateway for delivery right after requests")
            return None

    def _run(self, gw: Gateway, job: _Job) -> None:
        dispatcher = Dispatcher(gw)
        for delivery_id in job.delivery_ids:
            if job.stop.is_set():
                return
            dispatcher.run(delivery_id=delivery_id)
        for invoice_id in job.invoice_ids:
            for _ in range(ROUNDS):
                due = gw.store.deliveries(invoice_id=invoice_id, statuses=[PENDING])
                if not due:
                    break
                for d in due:
                    if job.stop.is_set():
                        return
                    dispatcher.run(delivery_id=d.id)
        job.attempted = True
