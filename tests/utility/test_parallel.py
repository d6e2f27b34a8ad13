"""The month end's helper processes (plugins/utility/parallel.py) never outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]

# A month end's process: starts the render workers and the delivery process on a fresh
# data directory, says their pids, then waits to be killed.
MONTH_END = r"""
import sys, time
sys.path.insert(0, {repo!r})
from gateway.core import Gateway, load_config
from pathlib import Path
from plugins.utility.parallel import DeliveryProcess, PreparePool

if __name__ == "__main__":
    gw = Gateway(load_config(Path(sys.argv[1])))
    pool = PreparePool(gw, 2)
    pool._pool.submit(time.sleep, 0).result()  # the workers are up
    delivering = DeliveryProcess(gw)
    time.sleep(1.0)
    print("ready", flush=True)
    time.sleep(600)
"""


def test_killed_month_end_leaves_no_worker_or_delivery_process(tmp_path: Path) -> None:
    script = tmp_path / "month_end.py"
    script.write_text(MONTH_END.format(repo=str(REPO)), encoding="utf-8")
    (tmp_path / "data").mkdir()
    month_end = subprocess.Popen([sys.executable, str(script), str(tmp_path / "data")],
                                 stdout=subprocess.PIPE, text=True)
    try:
        assert month_end.stdout is not None
        assert month_end.stdout.readline().strip() == "ready"
        helpers = psutil.Process(month_end.pid).children()
        # two render workers, the delivery process (and multiprocessing's resource tracker)
        assert len(helpers) >= 3
        os.kill(month_end.pid, signal.SIGKILL)
        month_end.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
                h.is_running() and h.status() != psutil.STATUS_ZOMBIE for h in helpers):
            time.sleep(0.2)
        alive = [h.pid for h in helpers
                 if h.is_running() and h.status() != psutil.STATUS_ZOMBIE]
        assert not alive, f"helpers outlived the killed month end: {alive}"
    finally:
        if month_end.poll() is None:
            month_end.kill()
