"""The Celery application: its settings, its three tasks and how to send them.

Tasks carry ids only. ``gateway.render`` renders one invoice pushed with ``--queue``,
``gateway.deliver`` attempts a few deliveries, ``gateway.sweep`` re-queues what the
database says is due. A worker process builds its own :class:`Gateway` (database
connection, archive client, plugins) on its first task, after the fork.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from gateway.core.config import Config
from gateway.errors import ConfigError, GatewayError, StorageError

log = logging.getLogger("gateway.workers")

RENDER_QUEUE = "gateway.render"
DELIVER_QUEUE = "gateway.deliver"
DELIVER_BATCH = 20  # ids per deliver task: channel sessions are shared within a task


class QueueUnavailable(GatewayError):
    """The broker could not be reached; the work is safe in the database."""


class WorkerRuntime:
    """What one worker process needs, built lazily after the fork."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._pid = 0
        self._gateway: Any = None
        self._worker = ""

    @property
    def gateway(self) -> Any:
        if self._pid != os.getpid():
            from gateway.core.dispatcher import new_worker_id
            from gateway.core.pipeline import Gateway

            self._gateway = Gateway(self.config)
            self._worker = new_worker_id()
            self._pid = os.getpid()
        return self._gateway

    @property
    def worker(self) -> str:
        _ = self.gateway
        return self._worker


def make_celery(config: Config) -> Any:
    """The Celery app for this configuration (``[queue]`` must be present)."""
    if config.queue is None:
        raise ConfigError("no [queue] section in gateway.toml: the gateway runs in-process "
                          "(add [queue] url = \"redis://…\" to use workers; docs/scale.md)")
    from celery import Celery

    settings = config.queue
    app = Celery("gateway", broker=settings.url, set_as_current=False)
    app.conf.update(
        task_serializer="json", accept_content=["json"], task_ignore_result=True,
        # A task is acknowledged when it ends, and given back when its process dies:
        # the lease in the database, not the broker, decides who acts.
        task_acks_late=True, task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=DELIVER_QUEUE,
        task_routes={"gateway.render": {"queue": RENDER_QUEUE},
                     "gateway.deliver": {"queue": DELIVER_QUEUE},
                     "gateway.sweep": {"queue": DELIVER_QUEUE}},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_transport_options={"visibility_timeout": 3600, "socket_timeout": 10,
                                  "socket_connect_timeout": 5},
        task_publish_retry_policy={"max_retries": 3, "interval_start": 0.2,
                                   "interval_step": 0.5, "interval_max": 1.0},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        beat_schedule={"gateway-sweep": {"task": "gateway.sweep",
                                         "schedule": settings.sweep_seconds}},
    )
    runtime = WorkerRuntime(config)
    app.gateway_runtime = runtime
    # Tasks are not shared (Celery's default would add them to every app made later in
    # this process): each app's tasks must use its own configuration.

    @app.task(name="gateway.render", shared=False)
    @_database_may_be_away("gateway.render")
    def render(invoice_id: str) -> str:
        gw = runtime.gateway
        outcome, delivery_ids = gw.render_queued(invoice_id, runtime.worker)
        if delivery_ids:
            try:
                enqueue_deliveries(app, delivery_ids)
            except QueueUnavailable as exc:  # the sweep will find them due
                log.warning("could not queue deliveries of %s: %s", invoice_id, exc)
        return outcome

    @app.task(name="gateway.deliver", shared=False)
    @_database_may_be_away("gateway.deliver")
    def deliver(delivery_ids: list[int]) -> dict[str, int]:
        from gateway.core.dispatcher import Dispatcher

        summary = Dispatcher(runtime.gateway, worker=runtime.worker).deliver_ids(
            [int(i) for i in delivery_ids])
        return {"delivered": summary.delivered, "retrying": summary.retrying,
                "failed": summary.failed + summary.dead, "lost": summary.lost}

    @app.task(name="gateway.sweep", shared=False)
    @_database_may_be_away("gateway.sweep")
    def sweep_task() -> dict[str, int]:
        from gateway.workers.sweep import sweep

        return sweep(runtime.gateway, app, exclusive=True).as_dict()

    return app


def _database_may_be_away(task: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A task that cannot reach the database (dropped connection, restarting server)
    or, half-way, the broker (a Redis restart) logs one line and ends: what it was to do
    is still due in the database, and the sweep queues it again once both answer. No
    traceback, no broker retry."""
    def wrap(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def run(*args: Any) -> Any:
            try:
                return function(*args)
            except (StorageError, QueueUnavailable) as exc:
                away = "database" if isinstance(exc, StorageError) else "queue"
                log.warning(f"{away} unreachable; the sweep will queue this work again",
                            extra={"task": task, "ids": list(args), "error": str(exc)})
                return {"error": str(exc)}
        return run
    return wrap


def _send(app: Any, name: str, queue: str, args_list: Iterable[Sequence[Any]]) -> int:
    """Publish tasks over one connection; :class:`QueueUnavailable` if the broker is away."""
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for args in args_list:
                app.send_task(name, args=list(args), queue=queue, producer=producer,
                              retry=True)
                sent += 1
    except Exception as exc:
        raise QueueUnavailable(f"queue {safe_url(app)} unreachable after {sent} tasks "
                               f"({type(exc).__name__}: {exc})") from None
    return sent


def enqueue_renders(app: Any, invoice_ids: Sequence[str]) -> int:
    return _send(app, "gateway.render", RENDER_QUEUE, ([i] for i in invoice_ids))


def enqueue_deliveries(app: Any, delivery_ids: Sequence[int]) -> int:
    chunks = (list(delivery_ids[i:i + DELIVER_BATCH])
              for i in range(0, len(delivery_ids), DELIVER_BATCH))
    return _send(app, "gateway.deliver", DELIVER_QUEUE, ([chunk] for chunk in chunks))


def broker_backlog(app: Any) -> dict[str, int]:
    """Messages waiting in each queue (not yet taken by a worker)."""
    try:
        with app.connection_for_read() as conn:
            client = conn.default_channel.client
            return {q: int(client.llen(q)) for q in (RENDER_QUEUE, DELIVER_QUEUE)}
    except Exception as exc:
        raise QueueUnavailable(f"queue {safe_url(app)} unreachable ({exc})") from None


def safe_url(app: Any) -> str:
    """The broker URL without its password, for messages."""
    from urllib.parse import urlsplit

    url = str(app.conf.broker_url or "")
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
