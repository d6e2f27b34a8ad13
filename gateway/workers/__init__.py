"""Distributed work: Celery workers on a Redis broker render and deliver (docs/scale.md).

Only with a ``[queue]`` section in gateway.toml; without it everything runs in-process.
The database is the single source of truth: tasks carry ids, workers lease rows before
acting, and :func:`sweep` puts back on the queue whatever the database says is due.
"""

from gateway.workers.app import (
    DELIVER_QUEUE,
    RENDER_QUEUE,
    QueueUnavailable,
    broker_backlog,
    enqueue_deliveries,
    enqueue_renders,
    make_celery,
)
from gateway.workers.sweep import SweepResult, sweep

__all__ = [
    "DELIVER_QUEUE", "RENDER_QUEUE", "QueueUnavailable", "SweepResult", "broker_backlog",
    "enqueue_deliveries", "enqueue_renders", "make_celery", "sweep",
]
