"""Run ``gateway worker`` whose pool processes SIGKILL themselves at random moments.

    python tests/distributed/chaos_worker.py PROBABILITY SEED -- worker --concurrency=2

Each time a pool process reaches one of the crash-safety points (while rendering, after
a document is archived, after a delivery is leased, after a channel delivered but before
the database knows), it dies with the given probability, as from the OOM killer. The
Celery parent replaces it; the lease and the sweep must make up for the lost work.
"""

from __future__ import annotations

import os
import random
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

POINTS = ("render", "archive", "claimed", "sent")


def install(probability: float, seed: int) -> None:
    from gateway.core import archive_s3, pipeline, storage
    from gateway.core.archive import FolderArchive
    from tests.chaos.runner import _wrap

    parent = os.getpid()
    rngs: dict[int, random.Random] = {}

    def hit(point: str) -> None:
        pid = os.getpid()
        if pid == parent:  # the Celery parent never works; only pool processes die
            return
        rng = rngs.setdefault(pid, random.Random(f"{seed}:{pid}"))
        if rng.random() < probability:
            with open(os.environ.get("GATEWAY_CHAOS_LOG", os.devnull), "a") as log:
                log.write(f"{pid} {point}\n")
            os.kill(pid, signal.SIGKILL)

    _wrap(pipeline.Gateway, "render", before=lambda *a, **k: hit("render"))
    _wrap(FolderArchive, "put", after=lambda result: hit("archive"))
    _wrap(archive_s3.S3Archive, "put", after=lambda result: hit("archive"))
    _wrap(storage.SQLStore, "claim_deliveries",
          after=lambda result: bool(result) and hit("claimed"))
    _wrap(storage.SQLStore, "mark_delivered", before=lambda *a, **k: hit("sent"))


def main() -> None:
    probability, seed, sep, *args = sys.argv[1:]
    assert sep == "--", "usage: chaos_worker.py PROBABILITY SEED -- worker …"
    install(float(probability), int(seed))
    from gateway.cli import main as gateway_main

    gateway_main(args)


if __name__ == "__main__":
    main()
