"""Run the ``gateway`` command line, killing itself with SIGKILL at a chosen point.

    python tests/chaos/runner.py POINT N -- push --no-deliver batch/

kills the process the N-th time it reaches POINT (``none`` never kills). The points are
the moments the crash-safety promise is about; SIGKILL gives the code no chance to
clean up, exactly like a power cut or the OOM killer:

render    while rendering a document (before it reaches the archive)
archive   after a document is in the archive, before the database knows it
accepted  after an invoice and its outbox rows are committed, before any delivery
claimed   after deliveries are leased (a batch) or one's attempt begins, before the
          channel sends anything
state     after a channel recorded per-recipient progress, before it returned
sent      after the channel delivered, before the database records it
rename    in the middle of an atomic write: the temporary file is complete, not renamed
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from typing import Any

POINTS = ("render", "archive", "accepted", "claimed", "state", "sent", "rename")


def _killer(point: str, after: int) -> Any:
    hits = 0

    def hit(name: str) -> None:
        nonlocal hits
        if name != point:
            return
        hits += 1
        if hits >= after:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    return hit


def _wrap(owner: Any, attr: str, before: Any = None, after: Any = None) -> None:
    original = getattr(owner, attr)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if before:
            before(*args, **kwargs)
        result = original(*args, **kwargs)
        if after:
            after(result)
        return result

    setattr(owner, attr, wrapper)


def install(point: str, after: int) -> None:
    from gateway.core import documents, fsutil, pipeline, storage
    from gateway.core.archive import Archive

    hit = _killer(point, after)
    _wrap(pipeline.Gateway, "render", before=lambda *a, **k: hit("render"))
    _wrap(Archive, "put", after=lambda result: hit("archive"))
    # The SQL both stores share: the same kill points on SQLite and PostgreSQL.
    _wrap(storage.SQLStore, "insert_invoice", after=lambda result: hit("accepted"))
    _wrap(storage.SQLStore, "claim_deliveries", after=lambda result: result and hit("claimed"))
    _wrap(storage.SQLStore, "begin_attempt",
          after=lambda result: result is not None and hit("claimed"))
    _wrap(storage.SQLStore, "mark_delivered", before=lambda *a, **k: hit("sent"))
    _wrap(documents.DeliveryState, "set", after=lambda result: hit("state"))
    real_replace = os.replace

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        hit("rename")
        real_replace(src, dst, *args, **kwargs)

    fsutil.os.replace = replace  # type: ignore[assignment]


def main() -> None:
    point, after, sep, *args = sys.argv[1:]
    assert sep == "--", "usage: runner.py POINT N -- gateway arguments"
    if point != "none":
        if point not in POINTS:
            raise SystemExit(f"unknown kill point {point!r}; known: {', '.join(POINTS)}")
        install(point, int(after))
    from gateway.cli import main as gateway_main

    gateway_main(args)


if __name__ == "__main__":
    main()
