"""Crash safety, proven by killing the real ``gateway`` command with SIGKILL.

The short version of the chaos rounds runs here; ``python3 bench/bench_chaos.py`` runs
the long one (1,000 invoices, 20+ seeds) and writes the figures for the README.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.harness import POINTS, RUNNER, available_channels, run_round

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "electricity-household.json"


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "GATEWAY_DATA_DIR": str(data_dir), "COLUMNS": "200",
            "GATEWAY_LOAD_PLUGINS": "json,folder"}


def _gateway(data_dir: Path, point: str, after: int,
             *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(RUNNER), point, str(after), "--", *args],
                          env=_env(data_dir), capture_output=True, text=True, timeout=120,
                          check=False)


# The folder channel keeps no per-recipient state; "state" is hit in the rounds below,
# by the e-mail and SFTP channels.
@pytest.mark.parametrize("point", [p for p in POINTS if p != "state"])
def test_a_kill_at_each_moment_loses_nothing_and_sends_nothing_twice(
        tmp_path: Path, point: str) -> None:
    data_dir, receiver = tmp_path / "data", tmp_path / "receiver"
    data_dir.mkdir()
    (data_dir / "gateway.toml").write_text("[dispatcher]\nbase_delay = 0\nlease_seconds = 0.5\n")
    (tmp_path / "c.toml").write_text(
        '[[customer]]\nid = "100234567"\nname = "J"\nformats = ["json"]\n'
        'match = ["C-100234567"]\n[[customer.channels]]\nchannel = "folder"\n'
        f'settings = {{ path = "{receiver}" }}\n')
    assert _gateway(data_dir, "none", 0, "customer", "import", str(tmp_path / "c.toml")
                    ).returncode == 0
    base = json.loads(EXAMPLE.read_text())
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"invoices": [{**base, "number": f"K-{i}"} for i in range(4)]}))

    killed = _gateway(data_dir, point, 2, "push", str(batch))
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert "Traceback" not in killed.stderr

    rerun = _gateway(data_dir, "none", 0, "push", str(batch))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    time.sleep(0.6)  # the killed worker's lease runs out
    assert _gateway(data_dir, "none", 0, "deliver").returncode == 0
    db = sqlite3.connect(data_dir / "gateway.db")
    try:
        assert db.execute("SELECT count(*) FROM invoices").fetchone() == (4,)
        assert db.execute("SELECT status, count(*) FROM deliveries GROUP BY status"
                          ).fetchall() == [("delivered", 4)]
        docs = dict(db.execute("SELECT filename, sha256 FROM documents").fetchall())
    finally:
        db.close()
    visible = {p.name: p for p in receiver.iterdir() if not p.name.startswith(".")}
    assert sorted(visible) == [f"K-{i}.json" for i in range(4)]
    for name, path in visible.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == docs[name]
    verify = _gateway(data_dir, "none", 0, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _check(report: Any) -> None:
    assert report.problems == [], report.as_dict()
    assert report.invoices_stored == report.invoices
    assert report.deliveries_not_delivered == 0
    assert report.verify_ok and report.rejected == 0 and report.tracebacks == 0
    for channel in report.expected:
        assert report.lost[channel] == 0, channel
        assert report.corrupt[channel] == 0, channel
        assert report.unique[channel] == report.expected[channel], channel
    for channel in ("folder", "sftp-push"):
        if channel in report.expected:
            assert report.duplicates[channel] == 0, channel
    if "email" in report.expected:
        # A second copy is possible only when the gateway died after the server stored
        # the message and before the "250" reached it; each such kill can repeat at
        # most one message to its two recipients.
        risky = sum(report.kills_by.get(k, 0) for k in ("smtp-data", "timer", "upload"))
        assert report.duplicates["email"] <= 2 * risky


@pytest.mark.parametrize("seed", [11, 12])
def test_chaos_round_short(tmp_path: Path, seed: int) -> None:
    channels = available_channels()
    assert "folder" in channels
    # Many small files: each push takes only one or two more, so there is work to
    # disturb in many runs, however fast the machine is.
    report = run_round(tmp_path, seed=seed, invoices=60, kills=6, files=12, channels=channels)
    _check(report)
    assert report.kills >= 3, report.as_dict()


def test_chaos_round_short_on_postgresql(tmp_path: Path, postgres_cluster: Any) -> None:
    """The same round on the PostgreSQL store: SKIP LOCKED leases, advisory-locked history
    appends and pooled connections under SIGKILL (a shorter round: CI time)."""
    channels = available_channels()
    report = run_round(tmp_path, seed=21, invoices=40, kills=5, files=10, channels=channels,
                       store_url=postgres_cluster.new_database())
    _check(report)
    assert report.kills >= 3, report.as_dict()
