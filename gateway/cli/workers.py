"""Commands for the distributed set-up: worker, sweep, queue (docs/scale.md)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
from typing import Any

import click

from gateway.cli.invoices import out
from gateway.core.pipeline import Gateway


@click.command()
@click.option("-c", "--concurrency", type=click.IntRange(1), default=None,
              help="Worker processes [default: the number of CPUs]")
@click.option("--queues", default="render,deliver", show_default=True,
              help="Which work this worker takes: render, deliver or both")
@click.option("--beat/--no-beat", default=True, show_default=True,
              help="Also schedule the periodic sweep (several workers may: one sweeps)")
@click.option("--max-tasks-per-child", type=click.IntRange(1), default=None,
              help="Replace a worker process after this many tasks")
@click.option("--pool", type=click.Choice(["prefork", "solo", "threads"]), default="prefork",
              show_default=True)
@click.pass_obj
def worker(app: Any, concurrency: int | None, queues: str, beat: bool,
           max_tasks_per_child: int | None, pool: str) -> None:
    """Run a Celery worker that renders queued invoices and delivers due outbox rows.

    Needs a [queue] section in gateway.toml. Safe to start on any number of machines
    that share the database and the archive; stop it with SIGTERM (a task in flight is
    finished, or given back to the queue and to its lease's expiry if it is killed).
    """
    from gateway.workers import DELIVER_QUEUE, RENDER_QUEUE, make_celery

    # Open everything once before forking: a wrong setting fails here, on one line.
    gw: Gateway = app.gateway
    config = gw.config
    celery_app = make_celery(config)
    app.close()
    app._gateway = None
    names = {"render": RENDER_QUEUE, "deliver": DELIVER_QUEUE}
    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in wanted if q not in names]
    if unknown or not wanted:
        raise click.BadParameter(f"unknown queue {', '.join(unknown) or '(none)'}; "
                                 "use render, deliver or both", param_hint="--queues")
    argv = ["worker", f"--pool={pool}", f"--queues={','.join(names[q] for q in wanted)}",
            f"--hostname=gateway-{os.getpid()}@{socket.gethostname()}",
            "--without-gossip", "--without-mingle",
            f"--loglevel={logging.getLevelName(logging.getLogger().getEffectiveLevel())}"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if max_tasks_per_child:
        argv.append(f"--max-tasks-per-child={max_tasks_per_child}")
    if not beat:
        celery_app.worker_main(argv=argv)
        return
    # The beat schedule is only a timer; each worker keeps its own in a private file,
    # removed when it stops: a supervisor restarts workers (docs/scale.md), and one
    # directory per start would pile up in /tmp.
    schedule = tempfile.mkdtemp(prefix="gateway-beat-")
    parent = os.getpid()
    try:
        celery_app.worker_main(argv=[*argv, "--beat", f"--schedule={schedule}/schedule"])
    finally:
        if os.getpid() == parent:  # not a forked pool or beat process unwinding
            shutil.rmtree(schedule, ignore_errors=True)


@click.command()
@click.pass_obj
def sweep(app: Any) -> None:
    """Queue everything the database says is due: render jobs and deliveries whose
    message was lost, whose worker died or whose retry time has come. Safe to run any
    time, any number of times; workers started with --beat do it every sweep_seconds."""
    from gateway.workers import make_celery
    from gateway.workers import sweep as run_sweep

    gw: Gateway = app.gateway
    result = run_sweep(gw, make_celery(gw.config))
    out.print(f"queued {result.renders} render jobs and {result.deliveries} deliveries; "
              f"released {result.released} leases of dead workers", highlight=False)


@click.command("queue")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def queue_status(app: Any, as_json: bool) -> None:
    """Show the work in the database (render jobs, deliveries by status) and the messages
    waiting in the broker."""
    from gateway.workers import QueueUnavailable, broker_backlog, make_celery

    gw: Gateway = app.gateway
    counts = gw.store.queue_counts()
    counts["due now"] = gw.store.count_due()
    backlog: dict[str, int] | str
    try:
        backlog = broker_backlog(make_celery(gw.config))
    except QueueUnavailable as exc:
        backlog = str(exc)
    if as_json:
        click.echo(json.dumps({"database": counts, "broker": backlog}))
        return
    for name, n in sorted(counts.items()):
        out.print(f"{name:>20}  {n}", highlight=False)
    if isinstance(backlog, str):
        out.print(f"{'broker':>20}  {backlog}", highlight=False)
    else:
        for name, n in backlog.items():
            out.print(f"{name:>20}  {n} messages waiting", highlight=False)


def register(cli: click.Group) -> None:
    for command in (worker, sweep, queue_status):
        cli.add_command(command)
