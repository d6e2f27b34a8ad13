"""A full or read-only data directory gives one clear line and corrupts nothing.

These run the real ``gateway`` command in a subprocess: the file-size limit
(RLIMIT_FSIZE) makes every write past a few kilobytes fail the way a full disk does,
and a read-only directory is read-only even for root once the process has lost
CAP_DAC_OVERRIDE (``setpriv``).
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import JSON_CUSTOMERS


def gateway(data_dir: Path, *args: str, preexec: Any = None,
            wrapper: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    # Only the plugins under test: the others may be half-written in a shared tree.
    env = {**os.environ, "GATEWAY_DATA_DIR": str(data_dir), "COLUMNS": "200",
           "GATEWAY_LOAD_PLUGINS": "json,folder"}
    return subprocess.run([*wrapper, sys.executable, "-m", "gateway", *args], env=env,
                          capture_output=True, text=True, preexec_fn=preexec, timeout=120,
                          check=False)


def write_batch(directory: Path, count: int, invoice_data: dict[str, Any]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        data = json.loads(json.dumps(invoice_data))
        data["number"] = f"F-{i:04d}"
        path = directory / f"f-{i:04d}.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        paths.append(path)
    return paths


def assert_intact(data_dir: Path) -> int:
    """The database passes SQLite's own check, every stored document is in the archive
    with its hash, no temporary file is left; returns the number of stored invoices."""
    db = sqlite3.connect(data_dir / "gateway.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        invoices = db.execute("SELECT count(*) FROM invoices").fetchone()[0]
        documents = db.execute("SELECT count(*) FROM documents").fetchone()[0]
        assert documents == invoices  # one JSON document each
    finally:
        db.close()
    verify = gateway(data_dir, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert not [p for p in (data_dir / "archive").rglob(".tmp-*")]
    return int(invoices)


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout


def test_a_full_disk_stops_cleanly_and_a_rerun_finishes_the_batch(
        tmp_path: Path, invoice_data: dict[str, Any]) -> None:
    data_dir = tmp_path / "data"
    assert gateway(data_dir, "customer", "import", str(JSON_CUSTOMERS)).returncode == 0
    batch = write_batch(tmp_path / "in", 40, invoice_data)
    size = (data_dir / "gateway.db").stat().st_size

    def disk_nearly_full() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 40_000, size + 40_000))

    full = gateway(data_dir, "push", *map(str, batch), preexec=disk_nearly_full)
    assert full.returncode == 1
    no_traceback(full)
    error = full.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: ")
    assert "gateway.db" in error or "archive" in error
    assert "full" in error or "no space" in error
    stored = assert_intact(data_dir)
    assert 0 < stored < 40, "the limit should hit in the middle of the batch"

    rerun = gateway(data_dir, "push", *map(str, batch))
    assert rerun.returncode == 0, rerun.stderr
    assert f"{40 - stored} accepted, {stored} unchanged" in rerun.stdout
    assert assert_intact(data_dir) == 40
    delivered = sorted(p.name for p in (data_dir / "deliveries" / "100234567").iterdir())
    assert delivered == [f"F-{i:04d}.json" for i in range(40)]


def test_a_read_only_data_directory_is_refused_and_left_as_it_was(
        tmp_path: Path, invoice_data: dict[str, Any]) -> None:
    data_dir = tmp_path / "data"
    assert gateway(data_dir, "customer", "import", str(JSON_CUSTOMERS)).returncode == 0
    [first, second] = write_batch(tmp_path / "in", 2, invoice_data)
    assert gateway(data_dir, "push", str(first)).returncode == 0
    before = {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
    modes = {p: p.stat().st_mode for p in [data_dir, *data_dir.rglob("*")]}
    for path in modes:
        path.chmod(path.stat().st_mode & ~0o222)
    # root ignores file modes unless it gives up the capability to do so
    wrapper: tuple[str, ...] = ()
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to drop root's DAC override"
        wrapper = (setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner")
    try:
        result = gateway(data_dir, "push", str(second), wrapper=wrapper)
        story = gateway(data_dir, "verify", wrapper=wrapper)
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
    assert result.returncode == 1
    no_traceback(result)
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: database {data_dir / 'gateway.db'} is read-only; nothing was changed")
    after = {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
    assert after == before
    no_traceback(story)
    assert assert_intact(data_dir) == 1


def test_deliver_with_several_worker_processes_sends_each_once(
        tmp_path: Path, invoice_data: dict[str, Any]) -> None:
    data_dir = tmp_path / "data"
    assert gateway(data_dir, "customer", "import", str(JSON_CUSTOMERS)).returncode == 0
    batch = write_batch(tmp_path / "in", 30, invoice_data)
    assert gateway(data_dir, "push", "--no-deliver", *map(str, batch)).returncode == 0
    result = gateway(data_dir, "deliver", "--workers", "3")
    assert result.returncode == 0, result.stderr
    assert "30 delivered, 0 to retry, 0 failed, 0 given up (3 workers)" in result.stdout
    db = sqlite3.connect(data_dir / "gateway.db")
    try:
        assert db.execute("SELECT count(*), count(DISTINCT delivery_id) FROM attempts "
                          "WHERE outcome = 'delivered'").fetchone() == (30, 30)
    finally:
        db.close()
    delivered = sorted(p.name for p in (data_dir / "deliveries" / "100234567").iterdir())
    assert delivered == [f"F-{i:04d}.json" for i in range(30)]


def test_a_concurrency_limit_of_one_holds_across_worker_processes(
        tmp_path: Path, invoice_data: dict[str, Any]) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "gateway.toml").write_text("[dispatcher.limits.folder]\nconcurrency = 1\n")
    assert gateway(data_dir, "customer", "import", str(JSON_CUSTOMERS)).returncode == 0
    batch = write_batch(tmp_path / "in", 24, invoice_data)
    assert gateway(data_dir, "push", "--no-deliver", *map(str, batch)).returncode == 0
    result = gateway(data_dir, "deliver", "--workers", "3")
    assert result.returncode == 0, result.stderr
    assert "24 delivered" in result.stdout
    db = sqlite3.connect(data_dir / "gateway.db")
    try:
        spans = db.execute("SELECT started_at, finished_at FROM attempts ORDER BY started_at"
                           ).fetchall()
    finally:
        db.close()
    assert len(spans) == 24
    # An attempt lies inside its lease; with one lease at a time, no two overlap.
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start
