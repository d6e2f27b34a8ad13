"""The sweep: what the database says is due goes (back) on the queue.

Messages get lost — Redis restarts without persistence, a worker dies holding one, a
push could not reach the broker — and none of that matters, because every so often
one worker compares the database with the queue: dead workers' leases on this host are
released, and every due render job and delivery is queued. Duplicates this creates are
harmless (the worker's lease decides), and a busy queue is not flooded: while the
backlog is long, the sweep waits for it to drain.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import asdict, dataclass
from typing import Any

from gateway.workers.app import (
    DELIVER_BATCH,
    DELIVER_QUEUE,
    RENDER_QUEUE,
    QueueUnavailable,
    broker_backlog,
    enqueue_deliveries,
    enqueue_renders,
    safe_url,
)

log = logging.getLogger("gateway.workers")
SWEEP_LOCK = "gateway:sweep"
MAX_BACKLOG = 1000  # a longer queue holds enough work; the next sweep looks again


@dataclass
class SweepResult:
    renders: int = 0
    deliveries: int = 0
    released: int = 0
    skipped: bool = False

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items()}


def sweep(gw: Any, app: Any, *, exclusive: bool = False, limit: int = MAX_BACKLOG,
          ) -> SweepResult:
    """Queue every due render job and delivery (up to ``limit`` of each).

    ``exclusive``: skip when another worker swept less than a period ago (a lock in
    Redis that expires by itself; losing it costs one extra sweep, nothing more).
    """
    from gateway.core.dispatcher import Dispatcher, _process_alive

    result = SweepResult()
    settings = gw.config.queue
    if exclusive and settings is not None:
        ttl = max(1, int(settings.sweep_seconds * 0.8))
        try:
            with app.connection_for_write() as conn:
                taken = conn.default_channel.client.set(
                    SWEEP_LOCK, f"{socket.gethostname()}:{os.getpid()}", nx=True, ex=ttl)
        except Exception as exc:  # kombu's and redis's own errors
            raise QueueUnavailable(f"queue {safe_url(app)} unreachable ({exc})") from None
        if not taken:
            result.skipped = True
            return result
    result.released = Dispatcher(gw).release_dead_workers()
    host = socket.gethostname()
    for invoice_id, owner in gw.store.render_leases():
        owner_host, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        if owner_host == host and pid.isdigit() and not _process_alive(int(pid)) \
                and gw.store.expire_render_lease(invoice_id, owner):
            result.released += 1
    backlog = broker_backlog(app)
    if backlog[RENDER_QUEUE] < limit:
        renders = gw.store.due_renders(limit - backlog[RENDER_QUEUE])
        enqueue_renders(app, renders)
        result.renders = len(renders)
    if backlog[DELIVER_QUEUE] * DELIVER_BATCH < limit:
        deliveries = gw.store.due_delivery_ids(limit)
        enqueue_deliveries(app, deliveries)
        result.deliveries = len(deliveries)
    if result.renders or result.deliveries or result.released:
        log.info("sweep", extra=result.as_dict())
    return result
