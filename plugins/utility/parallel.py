"""A month end on every core: worker processes render each invoice's documents ahead.

Most of a push is CPU work that touches no shared state: checking the invoice and
rendering and validating every document its customer gets (PDF, UBL with its official
schematron, CSV). :meth:`gateway.core.Gateway.prepare` does exactly that half; here a
pool of worker processes, each with its own gateway on the same configuration, runs it a
few invoices ahead of the month end, and the month end's own process pushes each invoice
with its prepared documents: archive, one transaction, bookkeeping — in order, one
invoice at a time, as before. Nothing durable happens in a worker, so a crash anywhere
leaves what a crash of the serial month end leaves.

A worker's documents are used only for the very invoice and customer they were made for
(content hash); any failure in a worker makes the push render that invoice itself, which
reports the problem as a push does.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from gateway import Invoice
from gateway.core import Config, Gateway
from gateway.core.pipeline import Prepared

log = logging.getLogger("gateway.utility")
T = TypeVar("T")

#: A month with fewer invoices than this is pushed in this process alone: starting the
#: workers (a Python process each, fonts and schematron compiled) costs about 2 s of CPU
#: each.
PARALLEL_FROM = 64

_worker_gateway: Gateway | None = None


def _exit_with_parent(parent: int) -> None:
    """End this process when the month end that started it is gone (killed, crashed):
    a pool worker would otherwise wait for work forever, a delivery process deliver on."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _start_worker(config: Config, parent: int) -> None:
    global _worker_gateway
    _exit_with_parent(parent)
    _worker_gateway = Gateway(config)


def _prepare(invoice: Invoice, source: str, customer_id: str) -> Prepared | None:
    assert _worker_gateway is not None
    try:
        return _worker_gateway.prepare(invoice, source=source, customer_id=customer_id)
    except Exception:  # the push renders it again and reports the problem itself
        log.debug("preparing invoice %s failed in a worker", invoice.number, exc_info=True)
        return None


def worker_count(processes: int) -> int:
    """``processes`` as configured: 0 is one worker per CPU core."""
    return processes or os.cpu_count() or 1


class PreparePool:
    """Worker processes preparing invoices for one gateway's pushes."""

    def __init__(self, gw: Gateway, processes: int) -> None:
        # spawn: a worker starts from a clean interpreter, not from a copy of a process
        # that holds open databases and threads.
        self._pool = ProcessPoolExecutor(max_workers=processes,
                                         mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start_worker,
                                         initargs=(gw.config, os.getpid()))
        self.processes = processes

    def submit(self, invoice: Invoice, source: str, customer_id: str,
               ) -> Future[Prepared | None]:
        return self._pool.submit(_prepare, invoice, source, customer_id)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def prepared_ahead(gw: Gateway, items: Iterable[T],
                   job: Callable[[T], tuple[Invoice, str, str] | None], *, processes: int,
                   parallel_from: int = PARALLEL_FROM) -> Iterator[tuple[T, Prepared | None]]:
    """``items`` in order, each with its invoice prepared by a worker (or None).

    ``job(item)`` is the (invoice, source, customer id) to prepare for an item, or None.
    The first items are held until ``parallel_from`` of them have a job: then workers
    start and prepare those too (this process renders nothing, so it never loads the
    renderers); a smaller month is handed back unprepared, for the push to render. The
    workers run at most a few invoices each ahead, so memory does not grow with the
    month."""
    workers = worker_count(processes)
    pool: PreparePool | None = None
    deciding = workers > 1
    pending: deque[tuple[T, Future[Prepared | None] | None]] = deque()
    held: list[tuple[T, tuple[Invoice, str, str] | None]] = []
    try:
        for item in items:
            work = job(item)
            if deciding:
                held.append((item, work))
                if sum(w is not None for _, w in held) < parallel_from:
                    continue
                deciding = False
                pool = PreparePool(gw, workers)
                batch, held = held, []
            else:
                batch = [(item, work)]
            for one, one_work in batch:
                future = None
                if pool is not None and one_work is not None:
                    try:
                        future = pool.submit(*one_work)
                    except Exception:  # a broken pool: this process renders the rest
                        log.warning("month-end workers stopped; rendering in this process",
                                    exc_info=True)
                        pool.close()
                        pool = None
                pending.append((one, future))
            while pending and (pool is None or len(pending) > 4 * workers + parallel_from):
                yield _ready(pending.popleft())
        pending.extend((one, None) for one, _ in held)
        while pending:
            yield _ready(pending.popleft())
    finally:
        if pool is not None:
            pool.close()


def _ready(entry: tuple[T, Future[Prepared | None] | None]) -> tuple[T, Prepared | None]:
    item, future = entry
    if future is None:
        return item, None
    try:
        return item, future.result()
    except Exception:  # a worker died: the push renders the invoice itself
        log.warning("a month-end worker failed; this process renders the invoice",
                    exc_info=True)
        return item, None


def _deliver_until_stopped(config: Config, parent: int, stop: Any, done: Any) -> None:
    """A delivery process: deliver what is due, again and again, until told to stop,
    then once more; report what it delivered."""
    from gateway.core import Dispatcher

    _exit_with_parent(parent)
    gw = Gateway(config)
    totals = {"delivered": 0, "retrying": 0, "failed": 0, "dead": 0}
    try:
        while True:
            stopping = stop.is_set()
            summary = Dispatcher(gw).run()
            for key in totals:
                totals[key] += getattr(summary, key)
            if stopping:
                break
            if not summary.attempted:
                stop.wait(0.5)
    finally:
        done.put(totals)
        gw.close()


class DeliveryProcess:
    """Delivers a month end's invoices while it is still pushing, in a process of its
    own (the outbox leases make two dispatchers safe, as with `gateway deliver` beside
    a push). :meth:`finish` waits for it and returns its counts; whatever it could not
    deliver stays due in the outbox for the next dispatcher run."""

    def __init__(self, gw: Gateway) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._done = context.Queue()
        self._process = context.Process(target=_deliver_until_stopped,
                                        args=(gw.config, os.getpid(), self._stop, self._done),
                                        name="month-end-delivery", daemon=True)
        self._process.start()

    def finish(self) -> dict[str, int]:
        self._stop.set()
        totals: dict[str, int] = {}
        while True:
            try:
                totals = self._done.get(timeout=1.0)
                break
            except queue.Empty:
                if not self._process.is_alive():  # it died: the outbox keeps the rest
                    log.warning("the month-end delivery process stopped early")
                    break
        self._process.join()
        return totals
